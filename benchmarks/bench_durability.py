"""Benchmark of durable writes: what fsyncing every artifact (and its folder) before its name appears costs.

Prints, measured side by side in one run:
  * the demo's cold run (config.yaml, --cores 2) with durable writes (the default) and with TASKSPACE_FSYNC=0 (the
    rename alone), alternately, --repeats times each; with --compare REV, also that git revision's cold run (e.g.
    the revision before durable writes), in the same rotation; medians, each repeat's ratio and the median ratio;
  * how many artifacts a run writes (two fsyncs each: the file, its folder);
  * one atomic write of 1 MB and of 1 kB, fsynced and not (median of --writes), on this file system.

Usage: python benchmarks/bench_durability.py [--repeats 2] [--config config.yaml] [--workdir DIR] [--compare REV]
       [--readme docs/benchmarks.md --block durability]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from generated import write_block  # benchmarks/generated.py

REPO = Path(__file__).resolve().parents[1]


def cold_run(repo: Path, workdir: Path, config: Path, fsync: bool) -> float:
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    shutil.copy(config, workdir / "config.yaml")
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(repo / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(workdir / "config.yaml"), "--cores", "2", "--quiet", "all"]
    env = dict(os.environ, PYTHONPATH=str(repo / "lib"), TASKSPACE_FSYNC="1" if fsync else "0")
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=repo, env=env)
    return time.perf_counter() - start


def artifacts_written(workdir: Path) -> int:
    """Files a run wrote through atomic writes: everything under results/ but the logs and benchmark files."""
    res = workdir / "results"
    return sum(1 for p in res.rglob("*") if p.is_file() and p.relative_to(res).parts[0] not in ("logs", "benchmarks"))


def write_seconds(size: int, writes: int, fsync: bool) -> float:
    from taskspace.io import atomic_path

    os.environ["TASKSPACE_FSYNC"] = "1" if fsync else "0"
    payload = os.urandom(size)
    times = []
    with tempfile.TemporaryDirectory(dir=REPO) as folder:  # the repository's file system, where results/ goes
        for i in range(writes):
            start = time.perf_counter()
            with atomic_path(Path(folder) / f"f{i % 4}.bin") as tmp:
                tmp.write_bytes(payload)
            times.append(time.perf_counter() - start)
    os.environ.pop("TASKSPACE_FSYNC", None)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--config", type=Path, default=REPO / "config.yaml")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "taskspace-bench-durability")
    parser.add_argument("--compare", metavar="REV", help="also time this git revision's cold run, in the rotation")
    parser.add_argument("--writes", type=int, default=40)
    parser.add_argument("--readme", type=Path,
                        help="rewrite the generated block of this markdown page (docs/benchmarks.md)")
    parser.add_argument("--block", default="durability", help="name of the generated block (default: durability)")
    args = parser.parse_args()
    sys.path.insert(0, str(REPO / "lib"))

    lines = []
    sizes = {"1 MB": 1 << 20, "1 kB": 1 << 10}
    lines.append(f"One atomic write on this file system (median of {args.writes}):\n")
    lines.append("| size | renamed only | fsynced (file + folder) | difference |")
    lines.append("|---|---|---|---|")
    for label, size in sizes.items():
        off = write_seconds(size, args.writes, False)
        on = write_seconds(size, args.writes, True)
        lines.append(f"| {label} | {1e3 * off:.2f} ms | {1e3 * on:.2f} ms | {1e3 * (on - off):+.2f} ms |")
    print("\n".join(lines), flush=True)

    variants = {"durable (default)": (REPO, True), "TASKSPACE_FSYNC=0": (REPO, False)}
    other = None
    if args.compare:
        other = args.workdir.parent / f"{args.workdir.name}-rev-{args.compare[:10]}"
        shutil.rmtree(other, ignore_errors=True)
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(other), args.compare], check=True,
                       capture_output=True)
        variants[f"revision {args.compare[:10]}"] = (other, True)
    walls: dict[str, list[float]] = {k: [] for k in variants}
    n_artifacts = None
    try:
        for r in range(args.repeats):
            order = list(variants) if r % 2 == 0 else list(reversed(variants))  # alternate: drift cancels
            for label in order:
                repo, fsync = variants[label]
                work = args.workdir / re.sub(r"\W+", "-", label).strip("-")
                walls[label].append(cold_run(repo, work, args.config, fsync))
                print(f"repeat {r + 1}: {label}: {walls[label][-1]:.1f} s", flush=True)
                if label == "durable (default)":
                    n_artifacts = artifacts_written(work)
    finally:
        if other is not None:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(other)], capture_output=True)
    base = walls["durable (default)"]
    table = [f"\nThe demo's cold run ({args.config.name}, --cores 2), alternately, {args.repeats} repeats; "
             f"{n_artifacts} artifacts written, each fsynced with its folder:\n",
             "| variant | runs (s) | median (s) | durable / variant, per repeat | median ratio |", "|---|---|---|---|---|"]
    for label, w in walls.items():
        ratios = [b / x for b, x in zip(base, w)]
        table.append(f"| {label} | {', '.join(f'{x:.0f}' for x in w)} | {statistics.median(w):.0f} | "
                     f"{', '.join(f'{q:.3f}' for q in ratios)} | {statistics.median(ratios):.3f} |")
    lines += table
    print("\n".join(table))
    if args.readme:
        text = "\n".join(lines)
        write_block(args.readme, args.block, text)


if __name__ == "__main__":
    main()
