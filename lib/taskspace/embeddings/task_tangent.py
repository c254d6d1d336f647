"""The Task Tangent Kernel (Wallace et al. 2021, sect. 6) as a registered method: no pretrained weights.

A task's embedding is the matrix of its MCR^2-loss gradients w.r.t. the last residual block of N seeded random
networks (one row per network, optionally count-sketched); the kernel between tasks is the mean cosine of their
rows, and the distance used for selection is 1 - kernel.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import Embedding, EmbeddingMethod, pairwise_long, register_method, stack


def kernel_matrix(gradients: list[np.ndarray]) -> np.ndarray:
    """Task Tangent Kernel (eq. 7): mean over networks of gradient cosines between every pair of tasks."""
    if not gradients:
        raise ValueError("kernel_matrix needs at least one task")
    shape = np.shape(gradients[0])
    if len(shape) != 2 or any(np.shape(g) != shape for g in gradients):
        raise ValueError(f"all gradients must share one (networks, D) shape, got {[np.shape(g) for g in gradients]}")
    kernel = np.zeros((len(gradients), len(gradients)))
    for i in range(shape[0]):
        rows = np.stack([np.asarray(g[i], dtype=np.float64) for g in gradients])
        if not np.isfinite(rows).all():
            raise FloatingPointError(f"non-finite gradient of network {i}")
        norms = np.linalg.norm(rows, axis=1)
        if (norms == 0).any():
            raise ValueError(f"zero gradient of network {i} for task(s) {np.flatnonzero(norms == 0).tolist()}")
        unit = rows / norms[:, None]
        kernel += unit @ unit.T
    kernel = np.clip(kernel / shape[0], -1.0, 1.0)
    kernel = 0.5 * (kernel + kernel.T)
    np.fill_diagonal(kernel, 1.0)
    return kernel


@register_method("ttk")
class TaskTangentKernel(EmbeddingMethod):
    """Only the probe checkpoint's input normalisation is used (the random probe's, never its weights)."""

    @property
    def probe(self) -> str:
        return "random"

    def embed(self, probe, images, labels, normalization, device, seed) -> Embedding:
        import torch

        from ..training import to_tensor
        from .ttk import task_gradients

        cfg = self.cfg
        y = torch.from_numpy(np.unique(labels, return_inverse=True)[1]).long()
        grads = task_gradients(
            to_tensor(images, normalization), y, arch=cfg["arch"], networks=int(cfg["networks"]),
            batches=int(cfg["batches"]), batch_size=int(cfg["batch_size"]), eps2=float(cfg["eps2"]),
            normalize=bool(cfg["normalize"]), sketch_dim=int(cfg["sketch_dim"]), seed=int(cfg["network_seed"]),
            device=device,
        )
        attrs = {"estimator": "MCR2 gradients of the last residual block", "networks": int(cfg["networks"]),
                 "sketch_dim": int(cfg["sketch_dim"]), "n_samples": len(y)}
        return Embedding(grads.astype(np.float32), attrs)

    def distances(self, embeddings: dict[str, Embedding]) -> pd.DataFrame:
        names, grads = stack(embeddings)
        return pairwise_long(names, 1.0 - kernel_matrix(list(grads)), "")
