"""benchmarks/compare_runs.py: two runs' results compared table for table and array for array."""

import importlib.util
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "compare_runs.py"


def _module():
    spec = importlib.util.spec_from_file_location("compare_runs", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(root: Path, error: float = 0.25, seconds: float = 1.0, vector=(1.0, 2.0)) -> Path:
    res = root / "results"
    (res / "plots" / "all").mkdir(parents=True)
    (res / "logs").mkdir()
    pd.DataFrame({"expert": ["a"], "task": ["b"], "test_error": [error], "seconds_fit": [seconds]}).to_parquet(
        res / "transfer.parquet")
    with h5py.File(res / "embeddings.h5", "w") as f:
        f.create_dataset("task2vec/b/embedding", data=np.array(vector))
    (res / "plots" / "all" / "summary.csv").write_text("method,value\nx,1\n")
    (res / "logs" / "job.log").write_text(f"took {seconds} s\n")
    return root


def test_runs_that_differ_only_in_wall_times_and_logs_are_the_same(tmp_path):
    compare = _module().compare
    assert compare(_run(tmp_path / "a"), _run(tmp_path / "b", seconds=9.0)) == []


def test_a_different_value_array_or_missing_file_is_named(tmp_path):
    compare = _module().compare
    a = _run(tmp_path / "a")
    assert [d.split(":")[0] for d in compare(a, _run(tmp_path / "b", error=0.25 + 1e-16 + 1e-12))] == [
        "transfer.parquet"]
    assert [d.split(":")[0] for d in compare(a, _run(tmp_path / "c", vector=(1.0, np.nextafter(2.0, 3.0))))] == [
        "embeddings.h5"]
    d = _run(tmp_path / "d")
    (d / "results" / "plots" / "all" / "summary.csv").unlink()
    assert compare(a, d) == [f"plots/all/summary.csv: only in {a}"]
