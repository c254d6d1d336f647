"""Benchmark of the embedded demo: cold wall time of the default config, and the transfer stage's overhead.

Prints (medians over --repeats):
  * the cold run of config.yaml end to end (install excluded), the wall time of each stage and the number of
    Python processes the run starts (Snakemake itself and one per script job);
  * with --compare REV, the same cold run of another revision of this repository (a git worktree), run alternately
    with this one, side by side;
  * the transfer stage run by Snakemake (every (expert, task) pair + the gather, nothing reused), against the
    forward passes it cannot avoid: each expert over each image it scores, once, with the same two workers; and
    their ratio.

Usage: python benchmarks/bench_demo.py [--repeats 3] [--workdir DIR] [--config config.yaml] [--compare REV]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def snakemake(workdir: Path, *args: str, repo: Path = REPO) -> float:
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(repo / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(workdir / "config.yaml"), "--cores", "2", "--quiet", "all", *args]
    env = dict(os.environ, PYTHONPATH=str(repo / "lib"))  # that revision's package, in Snakemake and its jobs
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=repo, env=env)
    return time.perf_counter() - start


def processes(workdir: Path, repo: Path = REPO) -> int:
    """Python processes a cold run starts: Snakemake, and one per job of a rule with ``script:`` (``run:`` jobs
    execute inside Snakemake), counted from a dry run of the same command."""
    import re

    script_rules = set()
    for smk in (repo / "rules").glob("*.smk"):
        for block in re.split(r"\n(?=rule )", smk.read_text()):
            m = re.match(r"\s*rule (\w+):", block)
            if m and "\n    script:" in block:
                script_rules.add(m.group(1))
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(repo / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(workdir / "config.yaml"), "-n", "--forceall", "all"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, cwd=repo,
                         env=dict(os.environ, PYTHONPATH=str(repo / "lib"))).stdout
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", out[out.index("Job stats:"):], flags=re.M))
    return 1 + sum(int(n) for rule, n in counts.items() if rule in script_rules)


def cold(workdir: Path, repo: Path = REPO, until: str | None = None) -> float:
    shutil.rmtree(workdir / "results", ignore_errors=True)
    shutil.rmtree(workdir / ".snakemake", ignore_errors=True)
    return snakemake(workdir, *(["--until", until] if until else []), repo=repo)


def import_seconds() -> float:
    """What a fresh process pays once to import torch and torchvision (every Snakemake process that runs pairs)."""
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import torch, torchvision"], check=True)
    return time.perf_counter() - start


def forward_only(workdir: Path, workers: int = 2) -> float:
    """Each expert (and the probe) over each task's images once, in ``workers`` threads of one torch thread each."""
    import h5py

    from taskspace.device import configure_threads
    from taskspace.results import load_checkpoint, read_task
    from taskspace.training import network_from_checkpoint, to_tensor
    from taskspace.transfer import extract_features
    import torch

    res = workdir / "results"
    names = []  # the tasks (not the probe's source task), from the task files: tasks.parquet may not exist yet
    for path in sorted((res / "tasks").glob("*.h5")):
        with h5py.File(path, "r") as f:
            if f.attrs.get("role") == "task":
                names.append(path.stem)
    experts = {n: res / "experts" / f"{n}.pt" for n in names if (res / "experts" / f"{n}.pt").is_file()}
    experts["generic"] = res / "probe" / "probe.pt"
    images = {n: read_task(res / "tasks" / f"{n}.h5")[0].images for n in names}
    ckpts = {e: load_checkpoint(p) for e, p in experts.items()}
    nets = {e: (network_from_checkpoint(c), c["normalization"]) for e, c in ckpts.items()}  # before the clock
    def norm_key(e):
        return repr(sorted(nets[e][1].items()))

    # one float tensor per task and input normalisation (experts fine-tuned from one probe share it)
    tensors = {(norm_key(e), t): None for e in experts for t in names}
    tensors = {(k, t): to_tensor(images[t], nets[next(e for e in experts if norm_key(e) == k)][1])
               for k, t in tensors}
    pairs = [(e, t) for e in experts for t in names]

    def one(pair):
        configure_threads(1)
        extract_features(nets[pair[0]][0], tensors[norm_key(pair[0]), pair[1]], 256, torch.device("cpu"))

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(lambda _: configure_threads(1), range(workers)))
        start = time.perf_counter()
        list(pool.map(one, pairs))
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
    parser.add_argument("--compare", metavar="REV", help="also time this git revision's cold run, alternately")
    parser.add_argument("--cold-repeats", type=int, default=1, help="cold runs of each revision (alternating)")
    parser.add_argument("--until", help="the cold run stops after this rule (e.g. gather_transfer)")
    args = parser.parse_args()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="taskspace-bench-"))
    workdir.mkdir(parents=True, exist_ok=True)
    shutil.copy(args.config, workdir / "config.yaml")

    if not args.skip_cold:
        runs = {"this revision": (REPO, workdir, [])}
        if args.compare:
            other = Path(tempfile.mkdtemp(prefix="taskspace-rev-"))
            subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(other), args.compare],
                           check=True, capture_output=True)
            other_work = workdir.parent / f"{workdir.name}-{args.compare[:10]}"
            other_work.mkdir(exist_ok=True)
            config = Path(args.config).resolve()  # a config of the repository: that revision's own version of it
            inside = config.is_relative_to(REPO) and (other / config.relative_to(REPO)).is_file()
            shutil.copy(other / config.relative_to(REPO) if inside else config, other_work / "config.yaml")
            runs[f"revision {args.compare[:10]}"] = (other, other_work, [])
        for _ in range(args.cold_repeats):
            for repo, work, times in runs.values():
                times.append(cold(work, repo, args.until))
        for label, (repo, work, times) in runs.items():
            print(f"demo cold run, {label} (config {Path(args.config).name}, --cores 2): "
                  f"{statistics.median(times):.1f} s (runs: {', '.join(f'{t:.1f}' for t in times)}); "
                  f"{processes(work, repo)} Python processes")
            for rule, seconds in stage_times(work).items():
                print(f"  {rule:<16} {seconds:7.1f} s (sum over its jobs)")
        if args.compare:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(runs[
                f"revision {args.compare[:10]}"][0])], capture_output=True)

    stage, forward = [], []
    for _ in range(args.repeats):
        for path in ("transfer", "transfer.parquet", "reuse/transfer"):  # nothing may be reused
            target = workdir / "results" / path
            shutil.rmtree(target, ignore_errors=True) if target.is_dir() else target.unlink(missing_ok=True)
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
    print(f"  and importing torch + torchvision once in a process: {imports:.1f} s")
    print(f"ratio stage / forward: {total / fwd:.2f}x; minus start-up: {(total - startup) / fwd:.2f}x; "
          f"minus start-up and one import: {(total - startup - imports) / fwd:.2f}x")


if __name__ == "__main__":
    main()
