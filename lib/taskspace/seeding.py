"""Seeds derived from names: the same parts give the same seed in every process, run and task list."""

from __future__ import annotations

import hashlib


def stable_seed(*parts: object) -> int:
    """A 63-bit seed derived from ``parts`` by hashing (stable across runs, processes and task lists)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1
