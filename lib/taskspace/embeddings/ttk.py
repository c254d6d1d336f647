"""Task Tangent Kernel (Wallace, Wu & Hariharan, CVPR 2021, sect. 6): MCR^2 gradients of random ResNets.

A task is characterised, without any pretrained weights, by the gradient of the Maximal Coding Rate Reduction
loss (MCR^2, Yu et al. 2020) of its labelled images with respect to the last residual block of each of N randomly
initialised ResNets (one row per network, optionally count-sketched); the kernel between two tasks is the mean
over the networks of the cosine between their gradients (eq. 7), and the distance used for selection is
1 - kernel. Every task sees the same N networks: network i is seeded from (seed, i) only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..config import Settings
from ..linalg import gram
from ..seeding import derive_seed, rng
from . import Embedding, EmbeddingMethod, pairwise_long, register_method, stack

if TYPE_CHECKING:  # torch is imported where used: planning a workflow never needs it
    import torch
    from torch import nn


@dataclass(frozen=True)
class TTKSettings(Settings):
    """The ``embeddings.ttk`` section: the random networks, the batches, MCR^2's distortion and the sketch."""

    SECTION = "embeddings.ttk"

    arch: str
    networks: int
    batches: int
    batch_size: int
    eps2: float
    normalize: bool
    sketch_dim: int
    network_seed: int


def network_seed(seed: int, index: int) -> int:
    """The torch seed of random network ``index``: a function of (seed, index) only, never of the task."""
    return derive_seed(seed, 0, index)


def _logdet_identity_plus(z: torch.Tensor, scale: float) -> torch.Tensor:
    """logdet(I + scale Z^T Z) for rows Z (m, d), via the smaller Gram matrix (Sylvester) and a Cholesky factor."""
    import torch

    m, d = z.shape
    gram = z @ z.T if m <= d else z.T @ z
    eye = torch.eye(gram.shape[0], dtype=gram.dtype, device=gram.device)
    chol = torch.linalg.cholesky(eye + scale * gram)
    return 2.0 * torch.log(torch.diagonal(chol)).sum()


def mcr2_loss(features: torch.Tensor, labels: torch.Tensor, eps2: float = 0.5, normalize: bool = True) -> torch.Tensor:
    """MCR^2 loss -R(Z) + R_class(Z) (eq. 8-10) of (m, d) features, computed in float64 so logdets stay stable."""
    import torch
    import torch.nn.functional as F

    if features.ndim != 2:
        raise ValueError(f"features must be (m, d), got shape {tuple(features.shape)}")
    if labels.shape != (features.shape[0],):
        raise ValueError(f"labels must be ({features.shape[0]},), got shape {tuple(labels.shape)}")
    if eps2 <= 0:
        raise ValueError(f"eps2 must be positive, got {eps2}")
    z = features.to(torch.float64)
    if normalize:
        z = F.normalize(z, dim=1)
    m, d = z.shape
    whole = 0.5 * _logdet_identity_plus(z, d / (m * eps2))
    per_class = z.new_zeros(())
    for cls in torch.unique(labels):
        zj = z[labels == cls]
        mj = zj.shape[0]
        per_class = per_class + mj / (2.0 * m) * _logdet_identity_plus(zj, d / (mj * eps2))
    return (per_class - whole).to(features.dtype)


def random_network(arch: str, seed: int) -> nn.Module:
    """The feature extractor of a registered architecture (no weights, head removed), initialised from ``seed``.

    torchvision's own initialisation draws from torch's global RNG, which other code may also draw from; so the
    network is built on the meta device and initialised with torchvision's scheme for the architecture
    (:func:`taskspace.models.initialise`) from a private ``torch.Generator``. The returned module is the network's
    backbone; :func:`last_block` finds the block TTK differentiates in it.
    """
    import torch

    from ..models import ARCHITECTURES, Network, initialise

    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown arch {arch!r}; expected one of {sorted(ARCHITECTURES)}")
    with torch.device("meta"):
        backbone = Network(arch, 1).backbone
    backbone = initialise(backbone, arch, torch.Generator().manual_seed(int(seed)))
    backbone.arch = arch
    return backbone


def last_block(backbone: nn.Module) -> nn.Module:
    """The block of a :func:`random_network` whose gradient is the task embedding (ResNet: the last residual block;
    other architectures: see :mod:`taskspace.models`)."""
    from ..models import get_architecture

    arch = getattr(backbone, "arch", None)
    if arch is None:
        raise ValueError(f"{type(backbone).__name__} is not a backbone made by random_network (no arch recorded)")
    return get_architecture(arch).last_block(backbone)[1]


def count_sketch(vector: torch.Tensor, sketch_dim: int, seed: int) -> torch.Tensor:
    """Count sketch of a 1-D vector to ``sketch_dim`` buckets (random bucket and sign per entry from ``seed``).

    The same ``seed`` gives the same hashing, so inner products between sketches of different vectors are
    unbiased estimates of their inner products; for vectors without a few dominating entries the cosine error
    is about sqrt((1 + cos^2) / sketch_dim), i.e. ~1/sqrt(sketch_dim) (~0.01 at 16384). ``sketch_dim=0`` returns
    the vector unchanged.
    """
    import torch

    if sketch_dim < 0:
        raise ValueError(f"sketch_dim must be >= 0, got {sketch_dim}")
    if vector.ndim != 1:
        raise ValueError(f"count_sketch expects a 1-D vector, got shape {tuple(vector.shape)}")
    if sketch_dim == 0:
        return vector
    gen = torch.Generator().manual_seed(int(seed))
    buckets = torch.randint(0, sketch_dim, vector.shape, generator=gen).to(vector.device)
    signs = (torch.randint(0, 2, vector.shape, generator=gen) * 2 - 1).to(device=vector.device, dtype=vector.dtype)
    return vector.new_zeros(sketch_dim).index_add_(0, buckets, vector * signs)


def _block_gradient(
    net: nn.Module, params: list[tuple[str, nn.Parameter]], x: torch.Tensor, y: torch.Tensor,
    eps2: float, normalize: bool, where: str,
) -> torch.Tensor:
    """Flattened gradient of the batch's MCR^2 loss w.r.t. the last-block parameters; non-finite values raise."""
    import torch

    features = net(x)
    if not torch.isfinite(features).all():
        raise FloatingPointError(f"non-finite penultimate features ({where})")
    loss = mcr2_loss(features, y, eps2=eps2, normalize=normalize)
    if not torch.isfinite(loss):
        raise FloatingPointError(f"non-finite MCR^2 loss ({where})")
    grads = torch.autograd.grad(loss, [p for _, p in params])
    for (name, _), grad in zip(params, grads):
        if not torch.isfinite(grad).all():
            raise FloatingPointError(f"non-finite gradient of last-block parameter {name!r} ({where})")
    return torch.cat([g.reshape(-1) for g in grads])


def task_gradients(
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    arch: str = "resnet18",
    networks: int = 8,
    batches: int = 4,
    batch_size: int = 128,
    eps2: float = 0.5,
    normalize: bool = True,
    sketch_dim: int = 16384,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> np.ndarray:
    """Per random network, the batch-averaged MCR^2 gradient of the last residual block (count-sketched), (N, D).

    BatchNorm runs in train mode (batch statistics, as in the first training step at initialisation) on networks
    built afresh here, so their running statistics are never used or kept. Batches are class-balanced and drawn
    with a seed from (seed, network index, number of images); a task of at most ``batch_size`` images is one batch.
    """
    import torch

    from ..sampling import balanced_sample

    if images.ndim != 4:
        raise ValueError(f"images must be (n, C, H, W), got shape {tuple(images.shape)}")
    if labels.shape != (images.shape[0],):
        raise ValueError(f"labels must be ({images.shape[0]},), got shape {tuple(labels.shape)}")
    if networks < 1 or batches < 1:
        raise ValueError(f"networks and batches must be >= 1, got {networks} and {batches}")
    if batch_size < 2:
        raise ValueError(f"batch_size must be >= 2 (BatchNorm needs batch statistics), got {batch_size}")
    labels_np = labels.cpu().numpy()
    if len(np.unique(labels_np)) < 2:
        raise ValueError(f"a task needs at least 2 classes for MCR^2, got {len(np.unique(labels_np))}")
    device = torch.device(device)
    n = images.shape[0]
    y_all = labels.to(torch.int64)
    rows = []
    for i in range(networks):
        net_seed = network_seed(seed, i)
        net = random_network(arch, net_seed).to(device).train()
        net.requires_grad_(False)
        block = last_block(net).requires_grad_(True)
        params = list(block.named_parameters())
        if n <= batch_size:
            picks = [np.arange(n)]
        else:
            draws = rng(seed, 1, i, n)
            picks = [balanced_sample(labels_np, batch_size, draws, fill="random") for _ in range(batches)]
        total = None
        for b, idx in enumerate(picks):
            index = torch.from_numpy(idx)
            x = images[index].to(device=device, dtype=torch.float32)
            y = y_all[index].to(device)
            grad = _block_gradient(net, params, x, y, eps2, normalize, f"network {i}, batch {b}")
            total = grad if total is None else total + grad
        mean = total / len(picks)
        rows.append(count_sketch(mean, sketch_dim, derive_seed(net_seed, 2)).float().cpu().numpy())
    return np.stack(rows)


def kernel_matrix(gradients: list[np.ndarray]) -> np.ndarray:
    """Task Tangent Kernel (eq. 7): mean over networks of gradient cosines between every pair of tasks, in float64
    (products through :mod:`taskspace.linalg`, never numpy's BLAS)."""
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
        norms = np.sqrt((rows * rows).sum(axis=1))
        if (norms == 0).any():
            raise ValueError(f"zero gradient of network {i} for task(s) {np.flatnonzero(norms == 0).tolist()}")
        unit = rows / norms[:, None]
        kernel += gram(unit)
    kernel = np.clip(kernel / shape[0], -1.0, 1.0)
    kernel = 0.5 * (kernel + kernel.T)
    np.fill_diagonal(kernel, 1.0)
    return kernel


@register_method("ttk")
class TaskTangentKernel(EmbeddingMethod):
    """Only the probe checkpoint's input normalisation is used (the random probe's, never its weights)."""

    settings_class = TTKSettings

    @property
    def probe(self) -> str:
        return "random"

    def embed(self, probe, images, labels, normalization, device, seed) -> Embedding:
        import torch

        from ..training import to_tensor

        s = self.settings
        y = torch.from_numpy(np.unique(labels, return_inverse=True)[1]).long()
        grads = task_gradients(
            to_tensor(images, normalization), y, arch=s.arch, networks=s.networks, batches=s.batches,
            batch_size=s.batch_size, eps2=s.eps2, normalize=s.normalize, sketch_dim=s.sketch_dim,
            seed=s.network_seed, device=device,
        )
        attrs = {"estimator": "MCR2 gradients of the last residual block", "networks": s.networks,
                 "sketch_dim": s.sketch_dim, "n_samples": len(y)}
        return Embedding(grads.astype(np.float32), attrs)

    def distances(self, embeddings: dict[str, Embedding]) -> pd.DataFrame:
        names, grads = stack(embeddings)
        return pairwise_long(names, 1.0 - kernel_matrix(list(grads)), "")
