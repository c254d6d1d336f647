"""Finding installed packages: npm packages in node_modules folders, Debian packages by their installed files.

Nothing is installed or downloaded here; a missing package is a MissingPackageError naming the exact command that
installs it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path

from . import MissingPackageError, Package, PrepareError

FALLBACK_NODE_ROOTS = ("/usr/local/lib/node_modules", "/usr/lib/node_modules")


def npm_global_root() -> str | None:
    """The output of ``npm root -g`` (None when npm is absent or fails)."""
    npm = shutil.which("npm")
    if npm is None:
        return None
    try:
        done = subprocess.run([npm, "root", "-g"], capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    root = done.stdout.strip()
    return root if done.returncode == 0 and root else None


def node_search_path(given: list[str] | None) -> list[Path]:
    """Where npm packages are looked for: ``given`` folders if any, else ./node_modules, $NODE_PATH, the global
    npm root, /usr/local/lib/node_modules, /usr/lib/node_modules (first found wins; duplicates dropped)."""
    if given:
        candidates = list(given)
    else:
        candidates = ["node_modules", *filter(None, os.environ.get("NODE_PATH", "").split(os.pathsep))]
        candidates += [r for r in (npm_global_root(),) if r] + list(FALLBACK_NODE_ROOTS)
    out: list[Path] = []
    for c in candidates:
        path = Path(c).absolute()
        if path not in out:
            out.append(path)
    return out


def find_npm_package(name: str, roots: list[Path]) -> Package | None:
    """The first ``<root>/<name>`` with a package.json, as a Package with its version (None when not found)."""
    for root in roots:
        manifest = root / name / "package.json"
        if manifest.is_file():
            try:
                meta = json.loads(manifest.read_text(encoding="utf-8"))
            except (OSError, ValueError) as err:
                raise PrepareError(f"{manifest}: cannot be read as JSON ({err})") from err
            if meta.get("name", name) != name:
                raise PrepareError(f"{manifest}: names package {meta.get('name')!r}, expected {name!r}")
            return Package(name, str(meta.get("version")) if meta.get("version") else None, str(root / name))
    return None


def same_version(packages: list[Package]) -> str | None:
    """The one version shared by ``packages``; packages of different versions are an error naming two of them."""
    first = None
    for p in packages:
        if first is None:
            first = p
        elif p.version != first.version:
            raise PrepareError(
                f"packages of different versions: {first.name} {first.version} ({first.path}) and {p.name} "
                f"{p.version} ({p.path}); install the same version of both"
            )
    return first.version if first else None


def npm_missing(names: list[str], version: str, roots: list[Path]) -> MissingPackageError:
    """The error for npm packages not found in any of ``roots``: their names and the command installing them."""
    install = "npm install -g " + " ".join(f"{n}@{version}" for n in names)
    where = ", ".join(str(r) for r in roots)
    return MissingPackageError(
        f"npm package{'s' if len(names) > 1 else ''} {', '.join(names)} not found (looked in {where}); "
        f"install with `{install}` or give its node_modules folder with --packages"
    )


def debian_version(name: str) -> str | None:
    """The installed version of Debian package ``name`` (None when dpkg-query is absent or the package is not)."""
    query = shutil.which("dpkg-query")
    if query is None:
        return None
    try:
        done = subprocess.run(
            [query, "-W", "-f=${Status}\t${Version}", name], capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    status, _, version = done.stdout.partition("\t")
    if done.returncode != 0 or not status.endswith(" installed"):
        return None
    return version.strip() or None


def debian_missing(name: str, what: str) -> MissingPackageError:
    """The error for a Debian package whose files are not there: its name and the command installing it."""
    return MissingPackageError(
        f"{what} not found: it comes from the Debian package {name}; install it with `apt-get install {name}` "
        "(as root), or give the folder with --root"
    )


def listing_digest(root: Path, files: list[Path]) -> str:
    """sha256 over the sorted (relative path, size) of ``files``: pins a folder's content cheaply."""
    h = hashlib.sha256()
    for f in sorted(files):
        try:
            size = f.stat().st_size
        except OSError:  # a dangling symbolic link
            size = -1
        h.update(f"{f.relative_to(root).as_posix()}\t{size}\n".encode())
    return h.hexdigest()


def content_digest(files: list[Path]) -> str:
    """sha256 over the names and bytes of ``files`` (small files only: read whole)."""
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode() + b"\0")
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def debian_package(name: str, root: Path, default_root: Path, digest: str) -> Package:
    """A Debian package's files at ``root``: the installed version when root is its own folder, else None."""
    version = debian_version(name) if root.resolve() == default_root.resolve() else None
    return Package(name, version, str(root), digest)
