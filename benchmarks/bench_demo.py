"""Benchmark of the embedded demo: cold wall time of the default config, and the transfer stage's overhead.

Prints (medians over --repeats):
  * the cold run of config.yaml end to end (install excluded), and the wall time of each stage;
  * the transfer stage run by Snakemake (every (expert, task) pair + the gather), against the forward passes it
    cannot avoid: each expert over each image it scores, once, with the same two workers; and their ratio.

Usage: python benchmarks/bench_demo.py [--repeats 3] [--workdir DIR] [--config config.yaml]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def snakemake(workdir: Path, *args: str) -> float:
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(workdir / "config.yaml"), "--cores", "2", "--quiet", "all", *args]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def import_seconds() -> float:
    """What a fresh process pays once to import torch and torchvision (every Snakemake process that runs pairs)."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch, torchvision"], check=True)
    return time.perf_counter() - start


def forward_only(workdir: Path, workers: int = 2) -> float:
    """Each expert (and the probe) over each task's images once, in ``workers`` threads of one torch thread each."""
    import pandas as pd

    from taskspace.device import configure_threads
    from taskspace.io import read_task
    from taskspace.stages import load_network
    from taskspace.training import to_tensor
    from taskspace.transfer import extract_features
    import torch

    res = workdir / "results"
    tasks = pd.read_parquet(res / "tasks.parquet")
    names = sorted(tasks.task[tasks.role == "task"])
    experts = {n: res / "experts" / f"{n}.pt" for n in names} | {"generic": res / "probe" / "probe.pt"}
    images = {n: read_task(res / "tasks" / f"{n}.h5")[0].images for n in names}
    nets = {e: load_network(str(p)) for e, p in experts.items()}  # loaded before the clock starts
    inputs = {(e, t): to_tensor(images[t], nets[e][1]) for e in experts for t in names}

    def one(pair):
        configure_threads(1)
        extract_features(nets[pair[0]][0], inputs[pair], 256, torch.device("cpu"))

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda _: configure_threads(1), range(workers)))
        start = time.perf_counter()
        list(pool.map(one, list(inputs)))
    return time.perf_counter() - start


def stage_times(workdir: Path) -> dict[str, float]:
    """Wall time per rule, summed over its jobs, from the benchmark TSVs of the rules that write them."""
    import pandas as pd

    out = {}
    for rule_dir in sorted((workdir / "results" / "benchmarks").glob("*")):
        files = [rule_dir] if rule_dir.is_file() else list(rule_dir.glob("*.tsv"))
        out[rule_dir.stem] = sum(float(pd.read_csv(f, sep="\t")["s"].iloc[0]) for f in files)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--config", default=str(REPO / "config.yaml"))
    parser.add_argument("--workdir", default=None, help="where to run (default: a temporary directory)")
    parser.add_argument("--skip-cold", action="store_true", help="reuse a finished run in --workdir")
    args = parser.parse_args()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="taskspace-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    shutil.copy(args.config, workdir / "config.yaml")

    if not args.skip_cold:
        shutil.rmtree(workdir / "results", ignore_errors=True)
        shutil.rmtree(workdir / ".snakemake", ignore_errors=True)
        cold = snakemake(workdir)
        print(f"demo cold run (config {Path(args.config).name}, --cores 2): {cold:.1f} s")
        for rule, seconds in stage_times(workdir).items():
            print(f"  {rule:<16} {seconds:7.1f} s (sum over its jobs)")

    stage, forward = [], []
    for _ in range(args.repeats):
        shutil.rmtree(workdir / "results" / "transfer", ignore_errors=True)
        (workdir / "results" / "transfer.parquet").unlink(missing_ok=True)
        startup = snakemake(workdir, "-n")  # the same command planning only: Snakemake start-up and DAG
        total = snakemake(workdir, "--until", "gather_transfer")
        stage.append((total, startup, import_seconds()))
        forward.append(forward_only(workdir))
    total = statistics.median(t for t, _, _ in stage)
    startup = statistics.median(s for _, s, _ in stage)
    imports = statistics.median(i for _, _, i in stage)
    fwd = statistics.median(forward)
    print(f"transfer stage through Snakemake (all pairs + gather): {total:.1f} s median of {args.repeats}")
    print(f"  of which Snakemake start-up and planning (same command, -n): {startup:.1f} s")
    print(f"unavoidable forward passes (each expert over each image once, 2 workers): {fwd:.1f} s")
    print(f"  and importing torch + torchvision once in that process: {imports:.1f} s")
    print(f"ratio stage / forward: {total / fwd:.2f}x; minus start-up: {(total - startup) / fwd:.2f}x; "
          f"minus start-up and imports: {(total - startup - imports) / fwd:.2f}x")


if __name__ == "__main__":
    main()
