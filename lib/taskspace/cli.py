"""Command line: ``taskspace recommend`` ranks a finished run's experts for a new dataset; ``taskspace summary``
prints a run's scores; ``taskspace check-config`` validates a config."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import yaml

from .errors import TaskspaceError


def _summary(args: argparse.Namespace) -> None:
    import pandas as pd

    summary = pd.read_parquet(Path(args.results) / "summary.parquet")
    table = summary.assign(
        mean_optimal_error=100 * summary.mean_optimal_error,
        mean_chosen_error=100 * summary.mean_chosen_error,
        mean_relative_increase=100 * summary.mean_relative_increase,
        median_relative_increase=100 * summary.median_relative_increase,
        top1_hit_rate=100 * summary.top1_hit_rate,
    ).rename(
        columns={
            "mean_optimal_error": "optimal error %",
            "mean_chosen_error": "chosen error %",
            "mean_relative_increase": "mean rel. increase %",
            "median_relative_increase": "median rel. increase %",
            "top1_hit_rate": "top-1 hit %",
            "mean_rank_corr": "rank corr",
            "n_targets": "targets",
        }
    )
    if args.markdown:
        cols = list(table.columns)
        print("| " + " | ".join(cols) + " |")
        print("|" + "---|" * len(cols))
        for row in table.itertuples(index=False):
            print("| " + " | ".join(f"{v:.2f}" if isinstance(v, float) else str(v) for v in row) + " |")
    else:
        print(table.to_string(index=False, float_format=lambda v: f"{v:.2f}"))


def _check_config(args: argparse.Namespace) -> None:
    from .config import validate_config
    from .data import plan_tasks

    from .probes import plan_probe

    config = validate_config(yaml.safe_load(Path(args.config).read_text()) or {})
    specs = plan_tasks(config["data"])
    plan_probe(config, specs)
    tasks = [s for s in specs if s.role == "task"]
    print(f"{args.config}: valid; {len(tasks)} tasks, {sum(s.n_train for s in tasks)} training images")


def _recommend(args: argparse.Namespace) -> None:
    import json
    import warnings

    from .recommend import recommend

    def show(message, category, filename, lineno, file=None, line=None):
        print(f"taskspace: warning: {message}", file=sys.stderr)

    warnings.showwarning = show
    rec = recommend(
        args.run, args.folder, method=args.method, kind=args.kind,
        experts=args.experts.split(",") if args.experts else None, name=args.name, threads=args.threads,
        progress=not args.quiet,
    )
    if args.top:
        rec.table = rec.table.head(args.top)
    if args.json:
        print(json.dumps(rec.as_dict(), indent=2))
        return
    classes = f"{rec.n_classes} classes" if rec.n_classes else "unlabelled"
    skipped = f", {len(rec.skipped)} files skipped" if rec.skipped else ""
    print(f"task {rec.task!r} ({rec.folder}): {rec.n_images} images, {classes}{skipped}")
    print(f"experts ranked by {rec.selector} (lower = better):")
    print(rec.table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="taskspace", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("summary", help="print the summary table of a finished run")
    p.add_argument("results", nargs="?", default="results", help="the run's results folder")
    p.add_argument("--markdown", action="store_true", help="as a Markdown table")
    p.set_defaults(func=_summary)
    p = sub.add_parser(
        "recommend",
        help="rank a finished run's experts for a new dataset",
        description="Embed the images of FOLDER as the run embedded its tasks and print the run's experts ranked by "
        "the method's distance (best first). FOLDER holds one sub-folder of images per class, or only images "
        "(unlabelled: use a label-free method such as pseudotask).",
    )
    p.add_argument("folder", help="the new dataset: FOLDER/<class>/<images>, or FOLDER/<images>")
    p.add_argument("--run", default=".", help="the finished run: its working directory or its results folder")
    p.add_argument("--method", help="an embedding method of the run (default: task2vec, or pseudotask if unlabelled)")
    p.add_argument("--kind", help="which score of the method: asym (default where there is one) or sym")
    p.add_argument("--experts", help="comma-separated experts to rank (default: every expert of the run)")
    p.add_argument("--name", help="the new task's name, which seeds its embedding (default: the folder's name)")
    p.add_argument("--top", type=int, help="print only the best K experts")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="CPU threads (default: all)")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.set_defaults(func=_recommend)
    p = sub.add_parser("check-config", help="validate a config file and plan its tasks, without running anything")
    p.add_argument("config", help="a config YAML file")
    p.set_defaults(func=_check_config)
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except (TaskspaceError, FileNotFoundError) as err:
        print(f"taskspace: {err}", file=sys.stderr)
        return 2
    return 0
