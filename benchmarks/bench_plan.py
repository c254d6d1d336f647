"""How planning (``snakemake -n``) grows with the study: dry-run time and peak memory at 50, 200 and 1,460 tasks.

    python benchmarks/bench_plan.py [--tasks 50 200 1460] [--full 50 100 200] [--bank 1460]
                                    [--write configs/paper_scale.yaml]

Each study is shaped like the Task2Vec paper's: every task split and embedded by every default method, 156
experts (or all tasks when fewer), and the transfer pairs of two meta-tasks, "inat_cub" (50 targets x 50
experts) and "mixed" (50 targets x 26 experts). ``--full`` also plans full task x expert matrices (every task a
target of every expert), whose pair count grows with the square of the task count; ``--bank N`` plans the full
matrix of N tasks x the 156-expert bank (1,460: 227,760 pairs). Nothing is run; each dry run
is a fresh process, timed, reporting its own peak resident memory.
``--write`` saves the 1,460-task study as a config file (the paper-scale config shipped in configs/).
"""

from __future__ import annotations

import argparse
import math
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "lib"))

from taskspace.plan import validate_config  # noqa: E402
from taskspace.data import plan_tasks  # noqa: E402

DOMAINS, CLADES = 4, 5
PAPER_EXPERTS = 156


def study_config(n_tasks: int, full: bool = False, bank: bool = False) -> dict:
    """A synthetic study of ``n_tasks`` tasks shaped like the paper's (see the module docstring)."""
    orders = math.ceil(n_tasks / (DOMAINS * CLADES))
    config = {
        "data": {"synthetic": {"domains": DOMAINS, "clades_per_domain": CLADES, "orders_per_clade": orders}},
    }
    names = sorted(s.name for s in plan_tasks(validate_config(yaml.safe_load(yaml.safe_dump(config)))["data"])
                   if s.role == "task")
    # spread the chosen tasks over the whole world (every domain and clade), deterministically
    step = len(names) / n_tasks
    tasks = [names[int(i * step)] for i in range(n_tasks)]
    config["data"]["tasks"] = "all" if len(tasks) == len(names) else tasks
    if full:
        return config
    step = n_tasks / min(PAPER_EXPERTS, n_tasks)
    experts = [tasks[int(i * step)] for i in range(min(PAPER_EXPERTS, n_tasks))]
    config["experts"] = {"tasks": experts}
    if bank:  # every task a target of every expert of the bank
        config["meta_tasks"] = {"full": {"targets": "all", "experts": "all"}}
        return config
    config["meta_tasks"] = {
        "inat_cub": {"targets": experts[:50], "experts": experts[:50]},
        "mixed": {"targets": tasks[-50:], "experts": experts[::max(1, len(experts) // 26)][:26]},
    }
    return config


# Runs snakemake's command line in this interpreter and reports the process's own peak memory when it exits.
PEAK_REPORTER = (
    "import atexit, resource, sys\n"
    "atexit.register(lambda: print('peak-kib', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr))\n"
    "from snakemake.cli import main\n"
    "sys.argv[0] = 'snakemake'\n"
    "main()\n"
)


def dry_run(config: dict) -> tuple[float, float, int]:
    """(seconds, peak MiB, jobs) of ``snakemake -n`` on ``config`` in a fresh process."""
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "config.yaml").write_text(yaml.safe_dump(config))
        start = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", PEAK_REPORTER, "-n", "--quiet", "rules", "--snakefile", str(REPO / "Snakefile"),
             "--directory", tmp], capture_output=True, text=True,
        )
        seconds = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"dry run failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        peak = int(re.search(r"^peak-kib (\d+)", proc.stderr, re.M).group(1))
        total = re.search(r"^total\s+(\d+)", proc.stdout, re.M)
        return seconds, peak / 1024, int(total.group(1)) if total else -1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, nargs="*", default=[50, 200, 1460])
    parser.add_argument("--full", type=int, nargs="*", default=[])
    parser.add_argument("--bank", type=int, nargs="*", default=[], help="full matrices of N tasks x 156 experts")
    parser.add_argument("--write", type=Path, help="write the 1,460-task study config here")
    args = parser.parse_args()
    if args.write:
        header = ("# The Task2Vec paper's scale, planned not run: 1,460 tasks split and embedded, 156 experts, and the\n"
                  "# transfer pairs of two meta-tasks (50 x 50 and 50 x 26). Written by benchmarks/bench_plan.py.\n"
                  "#\n"
                  "#   snakemake --cores 2 --configfile configs/paper_scale.yaml -n\n")
        args.write.write_text(header + yaml.safe_dump(study_config(1460), sort_keys=False, width=118))
        print(f"wrote {args.write}")
    print("| study | tasks | jobs | dry-run s | peak MiB | ms per job |")
    print("|---|---|---|---|---|---|")
    studies = [(n, "meta") for n in args.tasks] + [(n, "full") for n in args.full] + [(n, "bank") for n in args.bank]
    for n, kind in studies:
        seconds, mib, jobs = dry_run(study_config(n, kind == "full", kind == "bank"))
        label = {"meta": "meta-tasks 50x50 + 50x26", "full": "full matrix",
                 "bank": f"full matrix x {min(PAPER_EXPERTS, n)} experts"}[kind]
        print(f"| {label} | {n} | {jobs} | {seconds:.1f} | {mib:.0f} | {1000 * seconds / max(jobs, 1):.2f} |",
              flush=True)


if __name__ == "__main__":
    main()
