"""Every seed of the package, derived in one place.

Two derivations, each stable across runs, processes and task lists: :func:`stable_seed` hashes names (a task, an
expert, a method) into a seed; :func:`seed_sequence` spawns independent numbered streams from an integer seed
(numpy's SeedSequence spawn keys), which :func:`derive_seed` turns into a torch seed and :func:`rng` into a
numpy Generator.
"""

from __future__ import annotations

import hashlib

import numpy as np


def stable_seed(*parts: object) -> int:
    """A 63-bit seed derived from ``parts`` by hashing (stable across runs, processes and task lists)."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def seed_sequence(seed: int, *key: int) -> np.random.SeedSequence:
    """The stream numbered ``key`` of ``seed``: separate keys give independent streams."""
    return np.random.SeedSequence(int(seed), spawn_key=tuple(int(k) for k in key))


def derive_seed(seed: int, *key: int) -> int:
    """A 63-bit seed (for torch) of the stream ``key`` of ``seed``."""
    state = seed_sequence(seed, *key).generate_state(2)
    return int(((int(state[0]) << 32) | int(state[1])) & 0x7FFF_FFFF_FFFF_FFFF)


def rng(seed: int, *key: int) -> np.random.Generator:
    """A numpy Generator on the stream ``key`` of ``seed``."""
    return np.random.Generator(np.random.PCG64(seed_sequence(seed, *key)))
