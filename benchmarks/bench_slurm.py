"""Benchmark: the tiny config run locally (`--cores 2`) and through `snakemake --profile slurm`, side by side.

Starts the private test cluster of tests/slurm_cluster.py (root needed; the SLURM packages are installed with
apt-get when missing), then, per repeat and in alternating order, runs the tiny test config cold in a fresh
directory once locally and once through the repository's SLURM profile, with the same command-line additions
as the tests (squeue status, first status check after 2 s). Prints each pair of wall times, the medians and the
ratio SLURM / local (target <= 1.5x), and where the SLURM run's processes went: submissions and job steps.

Usage: python benchmarks/bench_slurm.py [--repeats 3] [--config tests/configs/tiny.yaml] [--keep DIR]
       [--slurm-args "--config execution={experts_per_transfer_job: 1}"]   (extra arguments of the SLURM runs)
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

import slurm_cluster  # noqa: E402

TEST_CLUSTER_ARGS = ["--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "2"]


def fresh(directory: Path, config: Path) -> Path:
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    shutil.copy(config, directory / "config.yaml")
    return directory


def run(cmd: list[str], env: dict[str, str], log: Path) -> float:
    start = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.run(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(cmd)}\nsee {log}")
    return seconds


def local_run(directory: Path) -> float:
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(directory),
           "--configfile", str(directory / "config.yaml"), "--cores", "2"]
    return run(cmd, dict(os.environ, TASKSPACE_DEVICE="cpu"), directory / "snakemake.log")


def slurm_run(cluster: slurm_cluster.SlurmCluster, directory: Path, extra: list[str]) -> float:
    env = dict(cluster.env, TASKSPACE_DEVICE="auto")
    env["PATH"] = os.pathsep.join([str(cluster.bin_dir), str(Path(sys.executable).parent), env["PATH"]])
    cmd = ["timeout", "-k", "30", "1200", sys.executable, "-m", "snakemake", "--profile", "slurm",
           "--directory", str(directory), "--configfile", str(directory / "config.yaml"), *TEST_CLUSTER_ARGS, *extra]
    return run(cmd, env, directory / "snakemake.log")


def same_tables(a: Path, b: Path) -> bool:
    import pandas as pd

    for table in ("transfer.parquet", "summary.parquet", "selection.parquet", "tasks.parquet"):
        x, y = (pd.read_parquet(d / "results" / table).drop(columns=["path"], errors="ignore") for d in (a, b))
        x = x.drop(columns=[c for c in x.columns if c.startswith("seconds")])
        y = y.drop(columns=[c for c in y.columns if c.startswith("seconds")])
        if not x.equals(y):
            return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--config", type=Path, default=REPO / "tests" / "configs" / "tiny.yaml")
    parser.add_argument("--keep", type=Path, help="keep the run directories here")
    parser.add_argument("--slurm-args", default="", help="more arguments for the SLURM runs (one string)")
    args = parser.parse_args()

    reason = slurm_cluster.unavailable_reason()
    if reason:
        raise SystemExit(reason)
    slurm_cluster.install()
    work = args.keep or Path(tempfile.mkdtemp(prefix="bench-slurm-"))
    rows = []
    start = time.perf_counter()
    with slurm_cluster.SlurmCluster(cpus=8, gpus=8, memory_mb=64000) as cluster:
        print(f"test cluster up in {time.perf_counter() - start:.1f} s (8 CPUs and 8 fake GPUs advertised on "
              f"{os.cpu_count()} cores)")
        for i in range(args.repeats):
            order = ["local", "slurm"] if i % 2 == 0 else ["slurm", "local"]
            times = {}
            for kind in order:
                directory = fresh(work / f"{kind}{i}", args.config)
                times[kind] = local_run(directory) if kind == "local" else slurm_run(cluster, directory, shlex.split(args.slurm_args))
            ok = same_tables(work / f"local{i}", work / f"slurm{i}")
            rows.append((times["local"], times["slurm"]))
            print(f"repeat {i + 1}: local {times['local']:6.1f} s   slurm {times['slurm']:6.1f} s   "
                  f"ratio {times['slurm'] / times['local']:.2f}x   tables equal: {ok}", flush=True)
        slurmd_log = (cluster.log_dir / "slurmd.log").read_text()
        last_log = (work / f"slurm{args.repeats - 1}" / "snakemake.log").read_text()
        ids = re.findall(r"has been submitted with SLURM jobid (\d+)", last_log)
        steps = sum(len(re.findall(rf"launch task StepId={i}\.\d+ ", slurmd_log)) for i in ids)
    local = statistics.median(r[0] for r in rows)
    slurm = statistics.median(r[1] for r in rows)
    ratio = statistics.median(r[1] / r[0] for r in rows)
    print()
    print("| figure | value |")
    print("|---|---|")
    print(f"| local, `--cores 2` (median of {len(rows)}) | {local:.1f} s |")
    print(f"| `--profile slurm` on the test cluster (median of {len(rows)}) | {slurm:.1f} s |")
    print(f"| ratio slurm / local (median of the per-repeat ratios) | **{ratio:.2f}x** (target: <= 1.5x) |")
    print(f"| SLURM submissions / job steps in the last run | {len(ids)} / {steps} |")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
