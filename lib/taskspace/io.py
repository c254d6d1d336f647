"""How artifacts are written: atomically and durably (:func:`atomic_path`), by writers whose leftovers are cleaned up,
with a storage failure named by its artifact, and stamped with the job writing them (:func:`set_job`).

What is written where, and in which format, is :mod:`taskspace.results`."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import secrets
import socket
from pathlib import Path
from typing import Any, Iterator

from . import __version__
from .errors import ArtifactWriteError


# Set to 0 to skip the fsync of each artifact and its folder (scratch filesystems where durability does not
# matter and fsync is slow); by default every artifact is on disk before its name appears.
FSYNC_ENV = "TASKSPACE_FSYNC"
# errno values that say the storage, not the computation, failed: the error names the artifact.
STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EROFS})
_ERRNO_IN_TEXT = re.compile(r"errno\s*=?\s*(\d+)|\[errno (\d+)\]", re.IGNORECASE)
_HOST = socket.gethostname().replace("~", "-") or "localhost"


def durable() -> bool:
    """Whether artifacts are fsynced before they are renamed into place (environment TASKSPACE_FSYNC, default 1)."""
    return os.environ.get(FSYNC_ENV, "1").strip() not in ("0", "false", "no", "off")


def temporary_name(path: Path) -> Path:
    """The temporary sibling a write of ``path`` uses: ``.<name>.<host>~<pid>~<random>.tmp`` (the writer's host and
    pid tell a later run whether the writer is gone)."""
    return path.with_name(f".{path.name}.{_HOST}~{os.getpid()}~{secrets.token_hex(4)}.tmp")


def temporary_files(path: Path) -> list[Path]:
    """Temporary siblings of ``path`` left by writes of it (finished writes leave none)."""
    prefix = f".{path.name}."
    try:
        return sorted(p for p in path.parent.iterdir() if p.name.startswith(prefix) and p.name.endswith(".tmp"))
    except FileNotFoundError:
        return []


def _writer_gone(tmp: Path, name: str) -> bool:
    """True when ``tmp`` was written on this host by a process that no longer exists."""
    middle = tmp.name[len(f".{name}."):-len(".tmp")]
    parts = middle.split("~")
    if len(parts) != 3 or parts[0] != _HOST or not parts[1].isdigit():
        return False  # another host's (it may still be writing), or not one of ours
    try:
        os.kill(int(parts[1]), 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def temporary_state(tmp: Path) -> str:
    """What a temporary file found beside artifacts is: "running" (its writer is alive on this host), or why it is
    left over."""
    parts = tmp.name[:-len(".tmp")].rsplit("~", 2)
    if len(parts) != 3 or not parts[1].isdigit():
        return "a temporary file of a write that did not finish (safe to delete once no job is running)"
    pid = int(parts[1])
    if not parts[0].endswith(f".{_HOST}"):
        return (f"a temporary file written on another host by its process {pid}: left by a write that did not "
                "finish, unless that job is still running there")
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return (f"a temporary file of a write killed before it finished (process {pid} is gone); the next write of "
                "that artifact removes it")
    except PermissionError:
        pass
    return "running"


def remove_stale_temporaries(path: str | os.PathLike) -> list[Path]:
    """Remove the temporary files of ``path`` whose writer died (killed mid-write on this host); returns them."""
    path = Path(path)
    removed = []
    for tmp in temporary_files(path):
        if _writer_gone(tmp, path.name):
            tmp.unlink(missing_ok=True)
            removed.append(tmp)
    return removed


def _storage_errno(err: BaseException) -> int | None:
    """The errno of a failed write, from the exception or from the text libraries put it in (h5py, Arrow)."""
    for e in (err, err.__cause__, err.__context__):
        if isinstance(e, OSError) and e.errno in STORAGE_ERRNOS:
            return e.errno
    for match in _ERRNO_IN_TEXT.finditer(str(err)):
        number = int(match.group(1) or match.group(2))
        if number in STORAGE_ERRNOS:
            return number
    if isinstance(err, RuntimeError) and "write failed" in str(err):  # torch.save: the file system refused bytes
        return errno.EIO
    return None


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as err:  # some file systems cannot sync a folder
        if err.errno not in (errno.EINVAL, errno.ENOTSUP, errno.EBADF, errno.EACCES):
            raise
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; it takes the name ``path`` only if the block succeeds.

    - The temporary file is created with the permissions the umask gives any new file (0644 under umask 022, 0664
      under 002), so collaborators of the same group read the results as they read files the user writes by hand.
    - Durable: the file is fsynced before the rename and its folder after (unless TASKSPACE_FSYNC=0), so after a
      crash a name never points at empty or partial contents.
    - A failed or killed write never touches ``path``: its previous version, if any, stays. A write that fails
      removes its temporary file; one killed outright leaves it, and the next write of ``path`` on the same host
      removes it (``taskspace check`` lists any left).
    - A storage failure (full disk, quota, I/O error) raises :class:`ArtifactWriteError` naming ``path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    tmp = temporary_name(path)
    try:
        os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))  # the umask applies, as to open()
        yield tmp
        if durable():
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        os.replace(tmp, path)
        if durable():
            _fsync_dir(path.parent)
    except BaseException as err:
        number = _storage_errno(err) if isinstance(err, Exception) else None
        if number is not None:
            raise ArtifactWriteError(
                f"{path}: could not be written ({os.strerror(number)}); nothing was written under that name, and "
                f"its previous version, if any, is unchanged"
            ) from err
        raise
    finally:
        tmp.unlink(missing_ok=True)


def json_text(value: Any) -> str:
    """Sorted-key JSON of ``value`` (anything not JSON as its str): the form digests and attrs are taken of."""
    return json.dumps(value, sort_keys=True, default=str)


# The job writing artifacts in this process (set by the workflow's script adapters): every artifact written carries
# it, so `taskspace check` can tell whether a file was made by the current config and taskspace version.
_JOB: dict | None = None


def params_digest(params: dict) -> str:
    """sha256 of a job's params as canonical JSON (keys sorted at every level)."""
    import hashlib

    return hashlib.sha256(json_text(params).encode()).hexdigest()


def set_job(rule: str, params: dict, wildcards: dict | None = None) -> dict:
    """Record the job this process runs; the artifacts it writes from now on carry this stamp (its ``job``
    provenance): the rule, the digest of its params (the config sections it depends on), the seed and version."""
    global _JOB
    _JOB = {
        "rule": rule,
        "wildcards": dict(wildcards or {}),
        "params": {name: params_digest(value) for name, value in sorted(params.items())},
        "seed": params.get("seed"),
        "taskspace_version": __version__,
    }
    return dict(_JOB)


def record_job(smk) -> dict:
    """:func:`set_job` from a Snakemake ``script:`` job's ``snakemake`` object."""
    return set_job(smk.rule, dict(smk.params.items()), dict(smk.wildcards.items()))


def job_stamp() -> dict | None:
    """The stamp of the job this process runs, or None outside the workflow."""
    return dict(_JOB) if _JOB is not None else None


def stamp_h5(f) -> None:
    """Write the job stamp into an open HDF5 file's root attrs (attr ``job``, JSON)."""
    if _JOB is not None:
        f.attrs["job"] = json_text(_JOB)
