"""Command line: ``taskspace summary`` prints a finished run's scores; ``taskspace check-config`` validates a config."""

from __future__ import annotations

import argparse
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

    config = validate_config(yaml.safe_load(Path(args.config).read_text()) or {})
    specs = plan_tasks(config["data"])
    tasks = [s for s in specs if s.role == "task"]
    print(f"{args.config}: valid; {len(tasks)} tasks, {sum(s.n_train for s in tasks)} training images")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="taskspace", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("summary", help="print the summary table of a finished run")
    p.add_argument("results", nargs="?", default="results", help="the run's results folder")
    p.add_argument("--markdown", action="store_true", help="as a Markdown table")
    p.set_defaults(func=_summary)
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
