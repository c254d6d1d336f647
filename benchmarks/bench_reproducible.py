"""What pinned numeric kernels cost: a config run cold with the kernels pinned and not, alternately, side by side.

Each round runs the config cold twice in fresh folders, once as published (``TASKSPACE_REPRODUCIBLE`` unset: every
library capped at its AVX2 kernels, each job on its rule's threads; see taskspace.numerics) and once with
``TASKSPACE_REPRODUCIBLE=0`` (the machine's own kernels, the threads Snakemake grants), the order alternating from
round to round. Prints each run's wall time and each stage's (the summed job times of its rules), their medians and
the ratio pinned / unpinned, and whether the pinned runs gave the same tables and arrays bit for bit.

Usage: python benchmarks/bench_reproducible.py [--config config.yaml] [--rounds 2] [--workdir DIR]
       [--torch-home DIR] (for a config with ImageNet weights: where they are installed)
       [--readme docs/operations.md] (write the table between <!-- reproducible:begin --> and :end there)
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "lib"))

from generated import write_block  # noqa: E402  benchmarks/generated.py
from taskspace.numerics import PINNED, SWITCH  # noqa: E402

STAGES = {
    "split": ("split_task", "tabulate_tasks"),
    "probe": ("train_probe", "import_probe", "init_random_probe"),
    "experts": ("train_expert",),
    "transfer": ("transfer_batch", "gather_transfer"),
    "embeddings": ("embed_batch", "gather_embeddings", "compute_distances"),
    "model2vec": ("learn_model2vec",),
    "select + plots": ("score_selection", "plot_selection"),
}


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_cold(workdir: Path, config: Path, pinned: bool) -> float:
    """One cold run of ``config`` in ``workdir`` (emptied first); its wall time."""
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    shutil.copy(config, workdir / "config.yaml")
    for name in ("data",):  # a study's prepared data, relative to the working directory, is shared read-only
        if (config.parent.parent / name).is_dir() and not (workdir / name).exists():
            (workdir / name).symlink_to((config.parent.parent / name).resolve())
    env = {k: v for k, v in os.environ.items() if k not in PINNED}  # as a shell that never imported taskspace
    env[SWITCH] = "1" if pinned else "0"
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(workdir / "config.yaml"), "--cores", "2", "--quiet", "all"]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO, env=env)
    return time.perf_counter() - start


def stages(workdir: Path) -> dict[str, float]:
    per_rule = _load("bench_demo").stage_times(workdir)
    return {stage: sum(per_rule.get(r, 0.0) for r in rules) for stage, rules in STAGES.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=REPO / "config.yaml")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "taskspace-bench-reproducible")
    parser.add_argument("--torch-home", type=Path, help="$TORCH_HOME for the runs (installed ImageNet weights)")
    parser.add_argument("--readme", type=Path, help="a markdown page whose reproducible block to rewrite")
    parser.add_argument("--first", choices=["pinned", "unpinned"], default="pinned", help="which runs first in the "
                        "first round (then they alternate)")
    parser.add_argument("--add", type=Path, nargs=2, metavar=("PINNED_DIR", "UNPINNED_DIR"), action="append",
                        default=[], help="also count the finished cold runs of an earlier invocation (their wall "
                        "times read from a file 'seconds' in each)")
    args = parser.parse_args()
    if args.torch_home:
        os.environ["TORCH_HOME"] = str(args.torch_home)
    compare = _load("compare_runs").compare
    times: dict[bool, list[float]] = {True: [], False: []}
    stage_runs: dict[bool, list[dict]] = {True: [], False: []}
    first_pinned: Path | None = None
    same: list[bool] = []
    for pinned_dir, unpinned_dir in args.add:
        for pinned, workdir in ((True, pinned_dir), (False, unpinned_dir)):
            times[pinned].append(float((workdir / "seconds").read_text()))
            stage_runs[pinned].append(stages(workdir))
            if pinned and first_pinned is None:
                first_pinned = workdir
    order = (True, False) if args.first == "pinned" else (False, True)
    for r in range(args.rounds):
        for pinned in (order if r % 2 == 0 else order[::-1]):
            workdir = args.workdir / f"round{r}-{'pinned' if pinned else 'unpinned'}"
            seconds = run_cold(workdir, args.config.resolve(), pinned)
            (workdir / "seconds").write_text(f"{seconds:.3f}\n")
            times[pinned].append(seconds)
            stage_runs[pinned].append(stages(workdir))
            print(f"round {r + 1}: {'pinned' if pinned else 'unpinned'} {seconds:.1f} s", flush=True)
            if pinned:
                if first_pinned is None:
                    first_pinned = workdir
                else:
                    same.append(compare(first_pinned, workdir) == [])
    med = {p: statistics.median(t) for p, t in times.items()}
    lines = [f"`{args.config.name}` run cold {len(times[True])} time(s) each way, alternately, `--cores 2` (medians):",
             "",
             "| | pinned (published numbers) | unpinned (`TASKSPACE_REPRODUCIBLE=0`) | ratio |", "|---|---|---|---|"]
    runs = lambda p: ", ".join(f"{t:.1f}" for t in times[p])  # noqa: E731
    lines.append(f"| cold run, wall | {med[True]:.1f} s ({runs(True)}) | {med[False]:.1f} s ({runs(False)}) | "
                 f"**{med[True] / med[False]:.2f}x** |")
    for stage in STAGES:
        a = statistics.median(s[stage] for s in stage_runs[True])
        b = statistics.median(s[stage] for s in stage_runs[False])
        if b:
            lines.append(f"| {stage} (its jobs' times summed) | {a:.1f} s | {b:.1f} s | {a / b:.2f}x |")
    if same:
        lines += ["", f"Pinned runs bit-identical to the first: {sum(same)} of {len(same)}."]
    text = "\n".join(lines)
    print()
    print(text)
    if args.readme:
        write_block(args.readme, "reproducible", text)

if __name__ == "__main__":
    main()
