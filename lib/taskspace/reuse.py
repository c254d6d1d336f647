"""Reusing results whose inputs are byte-identical: content digests and a per-result store beside the outputs.

A batched job (a transfer column, all embeddings of a task) is rerun by Snakemake whenever its input list or params
change, and Snakemake removes the job's outputs first. So that such a rerun recomputes only what changed, every
unit of work (one transfer pair, one embedding) is also kept under ``results/reuse/`` with its *key*: the sha256 of
every input file it read and the canonical JSON of the parameters and versions it used. A unit is reused only when
its stored key equals the key of the inputs now, byte for byte; modification times are never trusted. A stored
unit that cannot be read (truncated, corrupt) or was made by another taskspace version is recomputed with a warning
naming it. ``rm -r results/reuse`` makes the next run recompute everything its jobs touch.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any

from . import __version__

_BLOCK = 1 << 20


class ReuseWarning(UserWarning):
    """A stored result was unreadable or made by another version; it is recomputed."""


def file_digest(path: str | os.PathLike) -> str:
    """sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_BLOCK), b""):
            h.update(block)
    return h.hexdigest()


def canonical_json(value: Any) -> str:
    """JSON with sorted keys and no whitespace: equal values give equal strings."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def make_key(digests: dict[str, str], **values: Any) -> dict:
    """The key of a unit of work: the sha256 of every input file it read (by role, see :func:`file_digest`) and
    the values it depends on (parameters, seed), with the taskspace version."""
    return {"files": dict(sorted(digests.items())), "values": json.loads(canonical_json(values)),
            "taskspace_version": __version__}


def key_digest(key: dict) -> str:
    """A short name for a key (logs)."""
    return hashlib.sha256(canonical_json(key).encode()).hexdigest()[:16]


def matches(stored: Any, key: dict, where: str) -> bool:
    """Whether a stored key equals ``key``; one from another taskspace version is a warning naming ``where``."""
    if not isinstance(stored, dict):
        warnings.warn(f"{where}: stored result has no readable key; recomputed", ReuseWarning, stacklevel=2)
        return False
    if stored.get("taskspace_version") != key["taskspace_version"]:
        warnings.warn(
            f"{where}: stored result was made by taskspace {stored.get('taskspace_version')!r}, this is "
            f"{key['taskspace_version']!r}; recomputed", ReuseWarning, stacklevel=2,
        )
        return False
    return canonical_json(stored) == canonical_json(key)


def unreadable(where: Path, err: BaseException) -> None:
    """Report a stored result that cannot be read (it is recomputed)."""
    warnings.warn(f"{where}: stored result cannot be read ({type(err).__name__}: {err}); recomputed", ReuseWarning,
                  stacklevel=2)


def place(stored: Path, output: str | os.PathLike) -> None:
    """Put a copy of a stored file at ``output`` (written atomically). A copy, not a link: whatever happens to the
    output later (Snakemake touching it, a user editing it) does not reach the store."""
    import shutil

    from .io import atomic_path

    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(output) as tmp:
        shutil.copyfile(stored, tmp)
