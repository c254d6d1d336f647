"""Are two runs' results the same? Compares every table, embedding and CSV report of two results folders.

    python benchmarks/compare_runs.py RUN_A RUN_B               # two finished runs (folders holding results/)
    python benchmarks/compare_runs.py --rev REV [--config F]    # the demo at git revision REV and at this tree

Every Parquet table is compared value for value (columns whose name starts with ``seconds`` are wall times and left
out; the probe's and experts' metric tables have such a column too), every array of every HDF5 file (embeddings,
MODEL2VEC fits, task files) bit for bit, and the CSV report tables line for line. PNG figures are not compared (their
bytes carry matplotlib's rendering, not results). Prints one line per difference and exits 1 if there is any.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
SKIPPED = ("logs", "benchmarks", "reuse")  # job logs and timings; the reuse store holds copies of the pairs


def _files(results: Path, suffix: str) -> set[str]:
    return {str(p.relative_to(results)) for p in results.rglob(f"*{suffix}")
            if p.relative_to(results).parts[0] not in SKIPPED}


def _tables_equal(a: Path, b: Path) -> str | None:
    x, y = pd.read_parquet(a), pd.read_parquet(b)
    timed = [c for c in x.columns if c.startswith("seconds")]
    x, y = x.drop(columns=timed, errors="ignore"), y.drop(columns=[c for c in y.columns if c.startswith("seconds")])
    if list(x.columns) != list(y.columns):
        return f"columns differ: {list(x.columns)} vs {list(y.columns)}"
    if x.shape != y.shape:
        return f"shapes differ: {x.shape} vs {y.shape}"
    try:
        pd.testing.assert_frame_equal(x, y, check_exact=True)
    except AssertionError as err:
        return " ".join(str(err).split())[:300]
    return None


def _h5_arrays(path: Path) -> dict[str, np.ndarray]:
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: out.__setitem__(name, obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return out


def _h5_equal(a: Path, b: Path) -> str | None:
    x, y = _h5_arrays(a), _h5_arrays(b)
    if set(x) != set(y):
        return f"datasets differ: {sorted(set(x) ^ set(y))[:5]}"
    for name in sorted(x):
        u, v = x[name], y[name]
        same = (u.shape == v.shape and u.dtype == v.dtype
                and (np.array_equal(u, v, equal_nan=True) if u.dtype.kind == "f" else np.array_equal(u, v)))
        if not same:
            return f"dataset {name} differs"
    return None


def compare(run_a: Path, run_b: Path) -> list[str]:
    """Every difference between the results of two runs, one line each (empty: the same results)."""
    res_a, res_b = run_a / "results", run_b / "results"
    differences, compared = [], 0
    for suffix, equal in ((".parquet", _tables_equal), (".h5", _h5_equal),
                          (".csv", lambda a, b: None if a.read_text() == b.read_text() else "text differs")):
        names_a, names_b = _files(res_a, suffix), _files(res_b, suffix)
        differences += [f"{name}: only in {run_a}" for name in sorted(names_a - names_b)]
        differences += [f"{name}: only in {run_b}" for name in sorted(names_b - names_a)]
        for name in sorted(names_a & names_b):
            compared += 1
            why = equal(res_a / name, res_b / name)
            if why:
                differences.append(f"{name}: {why}")
    print(f"compared {compared} files of {run_a} and {run_b}: {len(differences)} differ")
    return differences


def run_demo(tree: Path, workdir: Path, config: Path) -> None:
    """A cold run of ``config`` with the Snakefile and package of ``tree``."""
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    shutil.copy(config, workdir / "config.yaml")
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(tree / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(workdir / "config.yaml"), "--cores", "2", "--quiet", "all"]
    env = dict(os.environ, PYTHONPATH=str(tree / "lib"))
    subprocess.run(cmd, check=True, cwd=tree, env=env, stdout=subprocess.DEVNULL)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="*", type=Path, help="two run folders (each holding results/)")
    parser.add_argument("--rev", help="run the demo at this git revision and at the working tree, then compare")
    parser.add_argument("--config", type=Path, default=REPO / "config.yaml")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "taskspace-compare-runs")
    args = parser.parse_args()
    if args.rev:
        before, after = args.workdir / "before", args.workdir / "after"
        tree = args.workdir / "tree"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--force", "--detach", str(tree), args.rev],
                       check=True, stdout=subprocess.DEVNULL)
        try:
            run_demo(tree, before, args.config)
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], check=False)
        run_demo(REPO, after, args.config)
        runs = [before, after]
    elif len(args.runs) == 2:
        runs = args.runs
    else:
        parser.error("give two run folders, or --rev REV")
    differences = compare(*runs)
    for line in differences:
        print(line)
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
