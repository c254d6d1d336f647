"""The same config gives bit-identical tables and arrays on other CPUs: kernels pinned (taskspace.numerics)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from taskspace import numerics

from conftest import REPO, snakemake, write_config

# A CPU without AVX-512, as each library sees one: its kernels capped at AVX2 (MKL's instruction set included,
# which taskspace does not set), and fewer cores.
AVX2_CPU = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
    "NPY_DISABLE_CPU_FEATURES": numerics.PINNED["NPY_DISABLE_CPU_FEATURES"],
}


def _compare():
    spec = importlib.util.spec_from_file_location("compare_runs", REPO / "benchmarks" / "compare_runs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.compare


def _environment(**env: str) -> dict:
    """This process's environment without what taskspace pinned in it (as a shell that never imported taskspace
    has it), and ``env`` over it."""
    clean = {k: v for k, v in os.environ.items() if k not in numerics.PINNED}
    return {**clean, **env}


def _run(directory: Path, cores: str, **env: str) -> Path:
    directory.mkdir(parents=True)
    write_config(directory)
    snakemake(directory, "--cores", cores, env=_environment(**env))
    return directory


def _probe(code: str, **env: str) -> str:
    """What a fresh Python process prints, started with ``env``."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env=_environment(**env))
    return out.stdout.strip()


def _has_avx512() -> bool:
    return "avx512f" in Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else False


def test_importing_taskspace_pins_each_library_before_it_loads():
    code = ("import taskspace, torch, numpy; from taskspace.numerics import unpinned; "
            "print(torch.backends.cpu.get_cpu_capability(), torch.get_num_threads(), unpinned())")
    assert _probe(code) == "AVX2 1 []"
    if _has_avx512():  # switched off, the machine's own kernels
        assert _probe(code, TASKSPACE_REPRODUCIBLE="0").startswith("AVX512 ")


def test_a_process_that_loaded_numpy_first_is_named_unpinned():
    code = ("import numpy, taskspace; from taskspace.numerics import unpinned; print(unpinned())")
    out = _probe(code)
    if _has_avx512():
        assert "numpy uses its" in out and "imported before taskspace" in out
    assert _probe(code, TASKSPACE_REPRODUCIBLE="0") == "[]"


def test_job_threads_are_the_rules_own_whatever_cores_are_granted(monkeypatch):
    monkeypatch.delenv(numerics.SWITCH, raising=False)
    assert numerics.job_threads("train_probe", 16) == numerics.THREADS["train_probe"] == 2
    assert numerics.job_threads("train_probe", 1) == 2
    assert numerics.job_threads("split_task", 8) == 1
    monkeypatch.setenv(numerics.SWITCH, "0")
    assert numerics.job_threads("train_probe", 16) == 16
    assert numerics.pin_environment({numerics.SWITCH: "off"}) == {}
    environ = {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_AMX"}
    numerics.pin_environment(environ)
    assert environ["ONEDNN_MAX_CPU_ISA"] == "AVX2" and environ["MKL_CBWR"] == "COMPATIBLE"


@pytest.mark.workflow
def test_a_cpu_without_avx512_and_fewer_cores_gives_the_same_bits(tiny_run, tmp_path):
    compare = _compare()
    other = _run(tmp_path / "avx2_one_core", "1", **AVX2_CPU)
    assert compare(tiny_run, other) == []  # every table value for value, every HDF5 array bit for bit
    if _has_avx512():  # the test can fail: unpinned, this machine's own kernels give other numbers
        own = _run(tmp_path / "unpinned", "2", TASKSPACE_REPRODUCIBLE="0")
        differences = compare(tiny_run, own)
        assert any("probe" in d or "transfer" in d for d in differences), differences
