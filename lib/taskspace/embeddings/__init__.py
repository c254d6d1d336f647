"""Task-embedding methods: a registry; each method embeds one task with the probe and defines its distances."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import pandas as pd

from ..config import Settings
from ..errors import ConfigError


@dataclass
class Embedding:
    """A task's embedding (``vector``), named side arrays such as the trivial embedding (``extras``) and what made
    it (``attrs``); stored as one HDF5 group: datasets ``embedding`` and each extra, attrs on the group."""

    vector: np.ndarray
    attrs: dict = field(default_factory=dict)
    extras: dict[str, np.ndarray] = field(default_factory=dict)


class EmbeddingMethod:
    """Base class: ``embed`` one task, then ``distances`` between tasks (lower = closer).

    Class attributes: ``uses_labels`` (False: the method never sees the task's labels), ``probe`` (which probe
    checkpoint it reads: "pretrained", "random", chosen per config entry by the ``probe`` key when present),
    ``derived`` (True: learned from another method's embeddings and the transfer matrix, no per-task embedding),
    ``settings_class`` (the typed view of the method's config section, built as ``settings``; None: no section).
    """

    name: str = ""
    uses_labels: bool = True
    derived: bool = False
    distance_keys: tuple[str, ...] = ()  # config keys read by ``distances`` only (changing them re-embeds nothing)
    settings_class: type[Settings] | None = None

    def __init__(self, cfg: dict):
        self.cfg = cfg
        self.settings: Settings | None = None
        if self.settings_class is not None:
            self.settings = self.settings_class.from_config(cfg, f"embeddings.{self.name}")

    def embed_config(self) -> dict:
        """The config ``embed`` depends on: everything but the distance-only keys."""
        return {k: v for k, v in self.cfg.items() if k not in self.distance_keys}

    @property
    def probe(self) -> str:
        """The probe checkpoint the method reads: its section's ``probe`` key, else the pretrained probe."""
        return getattr(self.settings, "probe", "pretrained")

    def embed(self, probe, images, labels, normalization: dict, device, seed: int) -> Embedding:
        raise NotImplementedError

    def distances(self, embeddings: dict[str, Embedding]) -> pd.DataFrame:
        """Long table: kind (which score; "" when the method has one), source, target, distance."""
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


BUILTIN_MODULES = ("domain", "task2vec", "pseudotask", "ttk", "model2vec")


def _load_builtin_methods() -> None:
    """Import the modules whose classes register the built-in methods."""
    import importlib

    for module in BUILTIN_MODULES:
        importlib.import_module(f"{__name__}.{module}")


def pairwise_long(names: list[str], matrix: np.ndarray, kind: str = "") -> pd.DataFrame:
    """A square (source x target) matrix as a long table without the diagonal."""
    rows = [
        (kind, names[i], names[j], float(matrix[i, j]))
        for i in range(len(names))
        for j in range(len(names))
        if i != j
    ]
    return pd.DataFrame(rows, columns=["kind", "source", "target", "distance"])


def stack(embeddings: dict[str, Embedding], what: str = "vector") -> tuple[list[str], np.ndarray]:
    """Task names (sorted) and their vectors (or the extra array ``what``) stacked as rows."""
    names = sorted(embeddings)
    arrays = [e.vector if what == "vector" else e.extras[what] for e in (embeddings[n] for n in names)]
    shapes = {a.shape for a in arrays}
    if len(shapes) > 1:
        raise ValueError(
            f"embeddings differ in shape {sorted(shapes)}: were they computed with different probes or skip_layers?"
        )
    return names, np.stack(arrays)
