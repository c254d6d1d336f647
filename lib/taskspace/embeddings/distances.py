"""Distances between task embeddings (Task2Vec sect. 3.3; PseudoTask eq. 4).

The functions take stacked embeddings (tasks x filters); the ``_matrix`` ones return square matrices whose entry
[a, b] is the score of using task a's expert on task b (lower = closer), the diagonal kept (callers drop it), and
the ``_between`` ones the same scores of one set of rows (experts) against another (tasks).

:func:`d_sym_between`, :func:`complexity` and :func:`d_asym_between` also take torch tensors, with which they are
differentiable: MODEL2VEC learns its model embeddings through them. Tensors are not checked, and all-zero
coordinates get no special value there (Fisher embeddings are positive).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Union

import numpy as np

if TYPE_CHECKING:  # torch is imported by whoever passes tensors: numpy callers never need it
    import torch

Array = Union[np.ndarray, "torch.Tensor"]


def _is_tensor(value: object) -> bool:
    """Whether ``value`` is a torch tensor (without importing torch for numpy callers)."""
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def _check_fisher(vectors: np.ndarray, what: str) -> np.ndarray:
    v = np.asarray(vectors, dtype=np.float64)
    if v.ndim == 1:
        v = v[None, :]
    if not np.isfinite(v).all():
        raise FloatingPointError(f"{what}: non-finite embedding values")
    if (v < 0).any():
        raise ValueError(f"{what}: a Fisher embedding must be non-negative")
    return v


def _ratio_cosine_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """d_cos(a/(a+b), b/(a+b)) of one vector ``a`` against every row of ``b``; coordinates where both are 0 count
    as equal (each gets 1/2)."""
    total = a[None, :] + b
    zero = total == 0
    safe = np.where(zero, 1.0, total)
    ra = np.where(zero, 0.5, a[None, :] / safe)
    rb = np.where(zero, 0.5, b / safe)
    dot = (ra * rb).sum(1)
    norm = np.sqrt((ra * ra).sum(1)) * np.sqrt((rb * rb).sum(1))  # row norms as np.linalg.norm computes them (no BLAS)
    return np.clip(1.0 - dot / norm, 0.0, 2.0)


def d_sym(fa: np.ndarray, fb: np.ndarray) -> float:
    """Symmetric Task2Vec distance: the cosine distance between Fa/(Fa+Fb) and Fb/(Fa+Fb), element-wise."""
    a = _check_fisher(fa, "d_sym")[0]
    b = _check_fisher(fb, "d_sym")
    return float(_ratio_cosine_distance(a, b)[0])


def d_sym_matrix(vectors: np.ndarray) -> np.ndarray:
    """d_sym between every pair of rows (exactly symmetric, zero diagonal)."""
    v = _check_fisher(vectors, "d_sym")
    out = np.zeros((len(v), len(v)))
    for i in range(len(v)):
        out[i, i + 1 :] = _ratio_cosine_distance(v[i], v[i + 1 :]) if i + 1 < len(v) else []
    out = out + out.T
    np.fill_diagonal(out, 0.0)
    return out


def d_sym_between(sources: Array, targets: Array) -> Array:
    """d_sym of every row of ``sources`` against every row of ``targets`` (sources x targets)."""
    if _is_tensor(sources):
        return _d_sym_between_tensors(sources, targets)
    a = _check_fisher(sources, "d_sym")
    b = _check_fisher(targets, "d_sym")
    return np.stack([_ratio_cosine_distance(row, b) for row in a])


def _d_sym_between_tensors(m: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """d_sym between every row of ``m`` and every row of ``f``, differentiable.

    The cosine of m / (m + f) and f / (m + f), written with one (rows x rows x size) tensor w = (m + f)^-2:
    sum(m f w) / sqrt(sum(m^2 w) sum(f^2 w)); a quarter faster than normalising both ratios (fewer temporaries of
    that size, forward and backward), which matters in MODEL2VEC's fits."""
    import torch

    w = (m[:, None, :] + f[None, :, :]).pow(-2)
    cross = torch.einsum("etd,ed,td->et", w, m, f)
    own = torch.einsum("etd,ed->et", w, m * m)
    other = torch.einsum("etd,td->et", w, f * f)
    return 1.0 - cross / (own * other).sqrt()


def complexity(vectors: Array, trivial: Array) -> Array:
    """d_sym(t_a, t_0) of every row a against its trivial embedding (a row of ``trivial``, or one shared vector)."""
    if _is_tensor(vectors):
        total = vectors + trivial
        ra, rb = vectors / total, trivial / total
        return 1.0 - (ra * rb).sum(-1) / (ra.norm(dim=-1) * rb.norm(dim=-1))
    v = _check_fisher(vectors, "complexity")
    t = _check_fisher(trivial, "trivial embedding")
    if len(t) == 1:
        return _ratio_cosine_distance(t[0], v)
    if t.shape != v.shape:
        raise ValueError(f"trivial embeddings have shape {t.shape}, embeddings {v.shape}")
    return np.array([_ratio_cosine_distance(v[i], t[i : i + 1])[0] for i in range(len(v))])


def d_asym_matrix(vectors: np.ndarray, trivial: np.ndarray, alpha: float) -> np.ndarray:
    """d_asym(a -> b) = d_sym(a, b) - alpha * d_sym(a, t_0): experts of complex tasks (far from trivial) come closer."""
    return d_sym_matrix(vectors) - alpha * complexity(vectors, trivial)[:, None]


def d_asym_between(sources: Array, trivial: Array, targets: Array, alpha: float) -> Array:
    """d_asym(a -> b) of every row a of ``sources`` (its trivial embedding a row of ``trivial``) to every row b of
    ``targets``: d_sym(a, b) - alpha * d_sym(a, t_0(a)) (sources x targets)."""
    complexities = complexity(sources, trivial)
    return d_sym_between(sources, targets) - alpha * complexities[:, None]


def norm_asym_matrix(vectors: np.ndarray, alpha: float, relative: bool = True) -> np.ndarray:
    """PseudoTask's d'_asym(a -> b) = d_sym(a, b) - alpha * ||t_a||.

    ``relative`` divides the norms by their mean over the bank, which makes alpha independent of the embedding's
    units (the paper uses the raw norm, i.e. ``relative=False``).
    """
    v = _check_fisher(vectors, "norm asymmetry")
    norms = np.sqrt((v * v).sum(axis=1))
    if relative:
        norms = norms / norms.mean()
    return d_sym_matrix(v) - alpha * norms[:, None]

