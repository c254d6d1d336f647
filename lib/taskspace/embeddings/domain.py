"""Domain embedding baseline: the mean probe feature of a task's training images; cosine distance."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..config import Settings
from ..linalg import gram
from . import Embedding, EmbeddingMethod, pairwise_long, register_method, stack


@dataclass(frozen=True)
class DomainSettings(Settings):
    """The ``embeddings.domain`` section."""

    SECTION = "embeddings.domain"

    batch_size: int


def cosine_distance_matrix(vectors: np.ndarray) -> np.ndarray:
    """1 - cosine similarity between every pair of rows, in [0, 2], in float64 and exactly symmetric; a zero row is
    at distance 1 from every row. The products go through :mod:`taskspace.linalg`, never numpy's BLAS."""
    vectors = np.asarray(vectors, dtype=np.float64)
    norm = np.sqrt((vectors * vectors).sum(axis=1, keepdims=True))
    unit = vectors / np.where(norm > 0, norm, 1.0)
    return np.clip(1.0 - gram(unit), 0.0, 2.0)


@register_method("domain")
class DomainEmbedding(EmbeddingMethod):
    """Average of the probe's penultimate features over the task's training images (labels unused)."""

    uses_labels = False
    settings_class = DomainSettings

    def embed(self, probe, images, labels, normalization, device, seed) -> Embedding:
        from ..training import to_tensor
        from ..transfer import extract_features

        x = to_tensor(images, normalization)
        feats = extract_features(probe, x, self.settings.batch_size, device)
        vector = feats.mean(0).numpy()
        if not np.isfinite(vector).all():
            raise FloatingPointError("non-finite probe features")
        return Embedding(vector, {"estimator": "mean penultimate features", "n_images": len(images)})

    def distances(self, embeddings: dict[str, Embedding]) -> pd.DataFrame:
        names, vectors = stack(embeddings)
        return pairwise_long(names, cosine_distance_matrix(vectors))
