"""Task-embedding methods: a registry; each method embeds one task with the probe and defines its distances."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

from ..errors import ConfigError


@dataclass
class Embedding:
    """A task's embedding vector plus what made it (stored as HDF5 attrs)."""

    vector: np.ndarray
    attrs: dict = field(default_factory=dict)


class EmbeddingMethod:
    """Base class: ``embed`` one task, then ``distances`` between tasks (lower = closer)."""

    name: str = ""

    def __init__(self, cfg: dict):
        self.cfg = cfg

    def embed(self, probe, images, labels, normalization: dict, device, seed: int) -> Embedding:
        raise NotImplementedError

    def distances(self, embeddings: dict[str, np.ndarray]) -> pd.DataFrame:
        raise NotImplementedError


METHODS: dict[str, type[EmbeddingMethod]] = {}


def register_method(name: str) -> Callable[[type[EmbeddingMethod]], type[EmbeddingMethod]]:
    """Class decorator adding an embedding method to the registry under ``name``."""

    def wrap(cls: type[EmbeddingMethod]) -> type[EmbeddingMethod]:
        cls.name = name
        METHODS[name] = cls
        return cls

    return wrap


def get_method(name: str, cfg: dict | None = None, key: str = "embeddings.methods") -> EmbeddingMethod:
    """Instantiate a registered method; an unknown name is a ConfigError naming ``key``."""
    _load_builtin_methods()
    if name not in METHODS:
        raise ConfigError(f"{key}: unknown embedding method {name!r}; known: {sorted(METHODS)}")
    return METHODS[name](cfg or {})


def known_methods() -> list[str]:
    _load_builtin_methods()
    return sorted(METHODS)


def _load_builtin_methods() -> None:
    from . import domain  # noqa: F401


def pairwise_long(names: list[str], matrix: np.ndarray) -> pd.DataFrame:
    """A square (source x target) matrix as a long table without the diagonal."""
    rows = [
        (names[i], names[j], float(matrix[i, j])) for i in range(len(names)) for j in range(len(names)) if i != j
    ]
    return pd.DataFrame(rows, columns=["source", "target", "distance"])
