"""Linear algebra whose results reach a written table or array: numpy arrays in, numpy arrays or floats out,
computed by torch in float64 on the CPU.

numpy's ``@``, ``np.dot``, ``np.einsum`` and ``np.linalg`` (and scipy.linalg) call OpenBLAS, which picks its kernels
by the CPU model, so their last bits differ from one x86-64 CPU to another; torch's CPU linear algebra is MKL, whose
kernels :mod:`taskspace.numerics` pins (MKL_CBWR, a fixed thread count per job) before torch is imported, so the same
inputs give the same bits on any x86-64 CPU with AVX2. Elementwise numpy (products, sums, exp, log) needs no BLAS
and stays numpy. torch is imported on first use: importing this module imports no torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

GRAM_BLOCK = 64  # rows per block of gram(): the fastest of 32-256 for 500 x 512 features on one thread


def _tensor(a: np.ndarray) -> torch.Tensor:
    """A float64 CPU tensor sharing ``a``'s memory where torch allows it (a read-only or negatively strided array is
    copied first: torch.from_numpy warns on the one and refuses the other)."""
    import torch

    a = np.asarray(a, dtype=np.float64)
    if not a.flags.writeable or min(a.strides, default=0) < 0:
        a = a.copy()
    return torch.from_numpy(a)


def matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``a @ b`` (numpy's matmul rules: 1-D operands are vectors, stacks of matrices broadcast) in float64."""
    import torch

    return torch.matmul(_tensor(a), _tensor(b)).numpy()


def dot(a: np.ndarray, b: np.ndarray) -> float:
    """Inner product of two 1-D float64 vectors of equal length."""
    return float(_tensor(a).dot(_tensor(b)))


def gram(x: np.ndarray) -> np.ndarray:
    """``x @ x.T``, the inner products of the rows of a 2-D ``x``, exactly symmetric as numpy's is.

    numpy computes it with BLAS syrk, half the work of a general product; torch has no syrk, so the upper triangle
    is computed by block rows of :data:`GRAM_BLOCK` (about 0.56 of the work for 500 rows) and mirrored."""
    import torch

    t = _tensor(x)
    n = t.shape[0]
    g = torch.empty((n, n), dtype=torch.float64)
    for i0 in range(0, n, GRAM_BLOCK):
        i1 = min(i0 + GRAM_BLOCK, n)
        rows = torch.mm(t[i0:i1], t[i0:].T)  # g[i0:i1, i0:]: the block row from the diagonal on
        block = rows[:, : i1 - i0]
        g[i0:i1, i0:i1] = torch.triu(block) + torch.triu(block, 1).T
        g[i0:i1, i1:] = rows[:, i1 - i0 :]
        g[i1:, i0:i1] = rows[:, i1 - i0 :].T
    return g.numpy()


def eigh(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (ascending) and eigenvectors (columns) of the symmetric ``a``, from its lower triangle, like
    ``np.linalg.eigh``; raises np.linalg.LinAlgError (numpy's, as callers of numpy code expect) where the algorithm
    does not converge."""
    import torch

    try:
        values, vectors = torch.linalg.eigh(_tensor(a))
    except torch.linalg.LinAlgError as err:
        raise np.linalg.LinAlgError(str(err)) from err
    return values.numpy(), vectors.numpy()


def logdet_spd(a: np.ndarray) -> float:
    """log det of the symmetric positive-definite ``a`` (its lower triangle), from its Cholesky factor: half the work
    of ``np.linalg.slogdet``'s LU; raises np.linalg.LinAlgError where ``a`` is not numerically positive definite."""
    import torch

    factor, info = torch.linalg.cholesky_ex(_tensor(a))
    if info.item() > 0:
        raise np.linalg.LinAlgError(f"the matrix is not positive definite (leading minor {info.item()})")
    return 2.0 * float(torch.log(torch.diagonal(factor)).sum())
