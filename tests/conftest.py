"""Shared helpers: run the real Snakefile on a config in a temporary directory."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import taskspace  # noqa: F401  first: pins the numeric kernels before torch and numpy load, as in a workflow job

REPO = Path(__file__).resolve().parents[1]
CONFIGS = Path(__file__).resolve().parent / "configs"
RESNET18_FILE = "resnet18-f37072fd.pth"  # torchvision's IMAGENET1K_V1 weights of resnet18, as the cache names them


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    """Jobs and `recommend` called in-process set torch's thread count; give the next test the count it had."""
    import torch

    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def one_thread():
    """torch on one thread for the test (small tensors: threads only add noise and contention)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@contextlib.contextmanager
def environment(**values: str):
    """Set environment variables (for subprocesses such as Snakemake) within the block, then restore them."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def write_config(directory: Path, base: str = "tiny.yaml", **changes) -> Path:
    """Copy a test config into ``directory`` with top-level sections updated by ``changes``."""
    cfg = yaml.safe_load((CONFIGS / base).read_text())
    for key, value in changes.items():
        cfg[key] = value
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def snakemake(directory: Path, *args: str, check: bool = True, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the repository's Snakefile with ``directory`` as working directory and its config.yaml; ``env``, if given,
    is the environment (TASKSPACE_DEVICE=cpu is added)."""
    cmd = [
        sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(directory),
        "--configfile", str(directory / "config.yaml"), *args,
    ]
    env = dict(os.environ if env is None else env, TASKSPACE_DEVICE="cpu")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=1800)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def job_counts(output: str) -> dict[str, int]:
    """The 'Job stats' table of a Snakemake dry run as {rule: count} (with 'total')."""
    counts, inside = {}, False
    for line in output.splitlines():
        if line.startswith("Job stats:"):
            inside, counts = True, {}
            continue
        if inside:
            m = re.match(r"^(\S+)\s+(\d+)$", line.strip())
            if m:
                counts[m.group(1)] = int(m.group(2))
            elif counts and not line.strip():
                inside = False
    return counts


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A finished run of the tiny config (shared by the workflow tests; treat as read-only)."""
    directory = tmp_path_factory.mktemp("tiny_run")
    write_config(directory)
    snakemake(directory, "--cores", "2")
    return directory


def torchvision_state(arch: str, num_classes: int, seed: int) -> dict:
    """The state dict of a seeded, randomly initialised torchvision ``arch``."""
    import torch
    import torchvision

    torch.manual_seed(seed)
    return getattr(torchvision.models, arch)(weights=None, num_classes=num_classes).state_dict()


@pytest.fixture(scope="session")
def fake_torch_home(tmp_path_factory) -> tuple[Path, dict]:
    """A TORCH_HOME holding a random resnet18 under the exact IMAGENET1K_V1 file name, saved like the real file
    (no BatchNorm step counters), and the tensors it holds. Nothing is downloaded."""
    import torch

    home = tmp_path_factory.mktemp("torch_home")
    state = {k: v for k, v in torchvision_state("resnet18", 1000, 123).items() if "num_batches_tracked" not in k}
    (home / "hub" / "checkpoints").mkdir(parents=True)
    torch.save(state, home / "hub" / "checkpoints" / RESNET18_FILE)
    return home, state
