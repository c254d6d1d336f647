"""Transferability scores: how well an expert suits a target task, from the expert's penultimate features of the
target's training images or from its own classifier's softmax outputs on them. Higher = better expected transfer.

The score functions raise :class:`UndefinedScore` where a score is undefined on its inputs (fewer than two samples
or classes, non-finite values, a singular covariance); :func:`compute_scores` turns that into NaN and a warning.
Classes absent from the labels play no part. Logarithms are natural. Matrix products and decompositions go through
:mod:`taskspace.linalg`, never numpy's BLAS, so that with pinned kernels the scores are the same bits on any CPU.
"""

from __future__ import annotations

import warnings
from typing import Callable

import numpy as np
from scipy.special import xlogy

from .errors import TaskspaceError
from .linalg import dot, eigh, gram, logdet_spd, matmul

# TransRate's squared distortion eps^2: the authors' published implementation scales Z^T Z by 1 / (n * 1e-4).
TRANSRATE_EPS2 = 1e-4

SCORE_PREFIX = "score_"  # transfer.parquet column of a per-expert score: score_<name>, higher = better transfer


class UndefinedScore(TaskspaceError, ValueError):
    """A transferability score is undefined on these inputs; the message says why."""


def _check(values: np.ndarray, labels: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(values as float64, labels re-indexed 0..K-1 over the classes present, count per class); raises where a
    score is undefined."""
    values, labels = np.asarray(values, dtype=np.float64), np.asarray(labels)
    if values.ndim != 2 or labels.ndim != 1 or len(values) != len(labels):
        raise ValueError(f"{what} of shape {values.shape} and labels of shape {labels.shape}: expected (n, k) and (n,)")
    if len(labels) < 2:
        raise UndefinedScore(f"needs at least 2 samples, got {len(labels)}")
    if not np.isfinite(values).all():
        raise UndefinedScore(f"{what} has non-finite values")
    classes, y = np.unique(labels, return_inverse=True)
    if len(classes) < 2:
        raise UndefinedScore(f"needs at least 2 classes in the labels, got {len(classes)}")
    return values, y, np.bincount(y)


def _one_hot(y: np.ndarray, k: int) -> np.ndarray:
    return np.eye(k)[y]


def _spectrum(x: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Squared singular values s^2 of x (n, d) and the squared coordinates of x^T targets on its right singular
    vectors, (k, m) with k = min(n, d): one eigendecomposition of the smaller Gram matrix."""
    n, d = x.shape
    if n <= d:
        sigma, u = eigh(gram(x))
        sigma = np.clip(sigma, 0.0, None)
        return sigma, sigma[:, None] * matmul(u.T, targets) ** 2
    sigma, v = eigh(gram(x.T))
    return np.clip(sigma, 0.0, None), matmul(v.T, matmul(x.T, targets)) ** 2


def leep(source_probs: np.ndarray, labels: np.ndarray) -> float:
    """LEEP (Nguyen et al. 2020): mean_i log sum_z P(y_i|z) theta_z(x_i), with P(y|z) the empirical conditional of
    the joint P(y, z) = mean_i theta_z(x_i) [y_i = y] of target labels and the expert's soft source labels."""
    theta, y, counts = _check(source_probs, labels, "source_probs")
    if (theta < 0).any():
        raise UndefinedScore("source_probs has negative entries")
    joint = matmul(_one_hot(y, len(counts)).T, theta) / len(y)
    marginal = joint.sum(axis=0)
    conditional = np.divide(joint, marginal, out=np.zeros_like(joint), where=marginal > 0)
    expected = (theta * conditional[y]).sum(axis=1)
    if (expected <= 0).any():
        raise UndefinedScore("a source_probs row has no mass (not a probability vector)")
    return float(np.log(expected).mean())


def nce(source_probs: np.ndarray, labels: np.ndarray) -> float:
    """NCE (Tran et al. 2019): -H(Y|Z) = sum_{y,z} P(y, z) log P(y|z), over the empirical joint of target labels Y
    and hard source labels Z = argmax of source_probs."""
    theta, y, counts = _check(source_probs, labels, "source_probs")
    k, z_classes = len(counts), theta.shape[1]
    z = theta.argmax(axis=1)
    joint = np.bincount(y * z_classes + z, minlength=k * z_classes).reshape(k, z_classes) / len(y)
    marginal = joint.sum(axis=0)
    return float(xlogy(joint, joint).sum() - xlogy(marginal, marginal).sum()) + 0.0


def _hscore(x: np.ndarray, y: np.ndarray, counts: np.ndarray, shrinkage: float) -> float:
    """(1-a) tr(S_a^-1 cov(E[f|y])) with S_a = (1-a) cov(f) + a tr(cov(f))/d I, in the singular basis of the centred
    features (covariances normalised by n); raises when S_a is numerically singular."""
    n, d = x.shape
    x = x - x.mean(axis=0)
    sigma, p2 = _spectrum(x, _one_hot(y, len(counts)))
    shrunk = (1 - shrinkage) * sigma / n + shrinkage * sigma.sum() / (n * d)
    largest = shrunk.max()
    smallest = shrunk.min() if len(sigma) == d else min(shrunk.min(), shrinkage * sigma.sum() / (n * d))
    if smallest <= max(n, d) * np.finfo(np.float64).eps * largest:
        hint = " (n <= d: the covariance has rank at most n - 1)" if n <= d else ""
        raise UndefinedScore(f"the feature covariance is singular: eigenvalues {smallest:.3g} to {largest:.3g}, "
                             f"n={n}, d={d}{hint}")
    between = (p2 / counts).sum(axis=1) / n  # eigen-coordinates of sum_c (n_c/n) (mu_c - mu)(mu_c - mu)^T
    return float((1 - shrinkage) * (between / shrunk).sum())


def hscore(features: np.ndarray, labels: np.ndarray) -> float:
    """H-score (Bao et al. 2019): tr(cov(f)^-1 cov(E[f|y])), with the exact inverse; undefined when cov(f) is
    numerically singular (smallest eigenvalue <= max(n, d) * machine eps * largest, e.g. n <= d or constant
    features)."""
    x, y, counts = _check(features, labels, "features")
    return _hscore(x, y, counts, 0.0)


def ledoit_wolf_shrinkage(features: np.ndarray) -> float:
    """The Ledoit-Wolf (2004) shrinkage a of the sample covariance S towards tr(S)/d I: min(b, g) / g with
    g = ||S - tr(S)/d I||_F^2 / d and b = (sum_i ||x_i||^4 / n - ||S||_F^2) / (n d), x_i the centred rows; the value
    of sklearn.covariance.ledoit_wolf_shrinkage, computed here through the smaller Gram matrix because importing
    scikit-learn's covariance module costs each transfer job 1.4-1.9 s (measured), more than the scores themselves."""
    x = features - features.mean(axis=0)
    n, d = x.shape
    g = gram(x) if n <= d else gram(x.T)
    s_fro2 = float((g * g).sum()) / n**2  # ||S||_F^2 with S = x^T x / n
    trace = float((x * x).sum()) / n
    mu = trace / d
    fourth = float(((x * x).sum(axis=1) ** 2).sum()) / n
    b = (fourth - s_fro2) / (n * d)
    g = (s_fro2 - 2 * mu * trace + d * mu**2) / d
    b = min(b, g)
    return 0.0 if b == 0 else b / g


def hscore_shrunk(features: np.ndarray, labels: np.ndarray) -> float:
    """Shrinkage H-score (Ibrahim et al. 2022): (1-a) tr(S_a^-1 cov(E[f|y])), S_a = (1-a) cov(f) + a tr(cov(f))/d I
    the Ledoit-Wolf covariance with its shrinkage a. Defined also for n <= d wherever a > 0 (Ledoit-Wolf gives a = 0
    for n = 2, and constant features have no covariance at all)."""
    x, y, counts = _check(features, labels, "features")
    return _hscore(x, y, counts, float(ledoit_wolf_shrinkage(x)))


def _max_evidence(sigma: np.ndarray, p2: np.ndarray, yy: np.ndarray, n: int, tol: float = 1e-10,
                  max_iter: int = 1000) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """LogME's fixed point alpha = gamma / |m|^2, beta = (n - gamma) / |F m - y|^2 for m targets at once, in the
    singular basis of the features: sigma (k,) squared singular values, p2 (k, m) squared coordinates of F^T y,
    yy (m,) = |y|^2. A target stops once an update moves its log evidence / n by at most ``tol``. Returns
    (log evidence / n, alpha, beta), each (m,). Where the evidence only approaches its supremum as beta grows
    (y interpolated, n <= d), beta ends large and the evidence within ``tol``-ish of that supremum."""
    s = sigma[:, None]
    usable = sigma > max(n, len(sigma)) * np.finfo(np.float64).eps * sigma.max()
    q = np.where(usable[:, None], p2 / np.where(usable, sigma, 1.0)[:, None], 0.0)  # squared coordinates of y
    r0 = np.clip(yy - q.sum(axis=0), 0.0, None)  # least-squares residual |y - F F^+ y|^2

    def evaluate(alpha, beta, cols):
        t = alpha + beta * s
        gamma = (beta * s / t).sum(axis=0)
        m2 = (beta**2 * s * q[:, cols] / t**2).sum(axis=0)  # |m|^2, m the posterior mean of w
        res = r0[cols] + (alpha**2 * q[:, cols] / t**2).sum(axis=0)  # |F m - y|^2
        evidence = (n * np.log(beta) + len(sigma) * np.log(alpha) - np.log(t).sum(axis=0) - n * np.log(2 * np.pi)
                    - beta * res - alpha * m2) / (2 * n)
        return evidence, gamma, m2, res

    cols = np.arange(len(yy))
    alpha, beta = np.ones(len(yy)), np.ones(len(yy))
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        evidence, gamma, m2, res = evaluate(alpha, beta, cols)
        for _ in range(max_iter):
            a, b = gamma[cols] / m2[cols], (n - gamma[cols]) / res[cols]
            new, g, m, r = evaluate(a, b, cols)
            # an iterate overflows only where the evidence grows without bound (a column whose evidence converged
            # has stopped before): the labels lie on a direction the features do not vary along
            finite = np.isfinite(new) & np.isfinite(a) & np.isfinite(b) & (a > 0) & (b > 0)
            if not finite.all():
                raise UndefinedScore("the LogME evidence grows without bound: the labels are fitted exactly on a "
                                     "direction where the features do not vary (e.g. duplicate training images with "
                                     "the same label, or constant features)")
            keep = cols[finite]
            alpha[keep], beta[keep], gamma[keep], m2[keep], res[keep] = a[finite], b[finite], g[finite], m[finite], \
                r[finite]
            moving = finite & (np.abs(new - evidence[cols]) > tol)
            evidence[keep] = new[finite]
            cols = cols[moving]
            if not len(cols):
                break
    if not np.isfinite(evidence).all():
        raise UndefinedScore("the LogME evidence has no finite maximum (constant or zero features?)")
    return evidence, alpha, beta


def logme_evidence(features: np.ndarray, target: np.ndarray) -> tuple[float, float, float]:
    """(max log evidence / n, alpha, beta) of one real target under LogME's model y = F w + N(0, 1/beta),
    w ~ N(0, I/alpha): log N(y; 0, F F^T / alpha + I / beta) maximised by the fixed-point iteration."""
    x = np.asarray(features, dtype=np.float64)
    target = np.asarray(target, dtype=np.float64)
    if x.ndim != 2 or target.shape != (len(x),):
        raise ValueError(f"features of shape {x.shape} and target of shape {target.shape}: expected (n, d) and (n,)")
    if len(x) < 2:
        raise UndefinedScore(f"needs at least 2 samples, got {len(x)}")
    if not (np.isfinite(x).all() and np.isfinite(target).all()):
        raise UndefinedScore("features or target has non-finite values")
    sigma, p2 = _spectrum(x, target[:, None])
    evidence, alpha, beta = _max_evidence(sigma, p2, np.array([dot(target, target)]), len(x))
    return float(evidence[0]), float(alpha[0]), float(beta[0])


def logme(features: np.ndarray, labels: np.ndarray) -> float:
    """LogME (You et al. 2021): mean over the one-hot columns of the present classes of the maximised log evidence
    of a Bayesian linear regression on the features, divided by n (see :func:`logme_evidence`)."""
    x, y, counts = _check(features, labels, "features")
    sigma, p2 = _spectrum(x, _one_hot(y, len(counts)))
    evidence, _, _ = _max_evidence(sigma, p2, counts.astype(np.float64), len(x))
    return float(evidence.mean())


def _coding_rate(z: np.ndarray, eps2: float) -> float:
    """R(Z, eps) = 1/2 logdet(I + Z^T Z / (n eps^2)), through the smaller Gram matrix (same determinant) and its
    Cholesky factor (the matrix is positive definite)."""
    n, d = z.shape
    g = gram(z) if n < d else gram(z.T)
    return 0.5 * logdet_spd(np.eye(len(g)) + g / (n * eps2))


def transrate(features: np.ndarray, labels: np.ndarray, eps2: float = TRANSRATE_EPS2) -> float:
    """TransRate (Huang et al. 2022): R(Z, eps) - R(Z, eps | Y), Z the features centred once over all samples, Z_c
    its rows of class c (not re-centred), R(Z, eps | Y) = sum_c (n_c / n) R(Z_c, eps), ``eps2`` = eps^2.

    Weighting by n_c / n, as in H(Z|Y) = sum_c p(c) H(Z|c), makes the score >= 0 (logdet is concave); the authors'
    snippet averages the classes uniformly, the same on balanced labels."""
    x, y, counts = _check(features, labels, "features")
    z = x - x.mean(axis=0)
    order = np.argsort(y, kind="stable")
    per_class = np.split(z[order], np.cumsum(counts)[:-1])
    conditional = sum(len(zc) / len(z) * _coding_rate(zc, eps2) for zc in per_class)
    return float(_coding_rate(z, eps2) - conditional)


def _from_probs(score: Callable[[np.ndarray, np.ndarray], float]) -> Callable[..., float]:
    def from_probs(features: np.ndarray, labels: np.ndarray, source_probs: np.ndarray | None) -> float:
        if source_probs is None:
            raise UndefinedScore("no source_probs (the expert has no source classifier outputs)")
        return score(source_probs, labels)
    return from_probs


def _from_features(score: Callable[[np.ndarray, np.ndarray], float]) -> Callable[..., float]:
    def from_features(features: np.ndarray, labels: np.ndarray, source_probs: np.ndarray | None) -> float:
        return score(features, labels)
    return from_features


SCORES: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray | None], float]] = {
    "leep": _from_probs(leep),
    "nce": _from_probs(nce),
    "hscore": _from_features(hscore),
    "hscore_shrunk": _from_features(hscore_shrunk),
    "logme": _from_features(logme),
    "transrate": _from_features(transrate),
}


def compute_scores(names: list[str], features: np.ndarray, labels: np.ndarray, source_probs: np.ndarray | None,
                   where: str = "") -> dict[str, float]:
    """{name: score} for the named scores; a score undefined on these inputs is NaN, with a RuntimeWarning naming
    ``where`` (e.g. "expert X on task Y") and the reason."""
    unknown = [name for name in names if name not in SCORES]
    if unknown:
        raise ValueError(f"unknown transferability score(s) {', '.join(map(repr, unknown))}; "
                         f"known: {', '.join(SCORES)}")
    scores = {}
    for name in names:
        try:
            value = float(SCORES[name](features, labels, source_probs))
            if not np.isfinite(value):
                raise UndefinedScore(f"non-finite value {value}")
        except (UndefinedScore, np.linalg.LinAlgError) as err:
            warnings.warn(f"{name} is undefined for {where or 'these inputs'}: {err}; NaN", RuntimeWarning,
                          stacklevel=2)
            value = float("nan")
        scores[name] = value
    return scores


def expert_scores(net, features, labels: np.ndarray, names: list[str], device, where: str) -> dict[str, float]:
    """``score_<name>`` of each transferability score in ``names`` from an expert's training-split features and its
    own head's softmax on them (LEEP, NCE); an undefined score is NaN, with a warning naming ``where``."""
    import torch

    if not names:
        return {}
    with torch.inference_mode():
        probs = torch.softmax(net.forward_head(features.to(device, torch.float32)).double(), 1).cpu().numpy()
    values = compute_scores(list(names), features.numpy(), np.asarray(labels), probs, where=where)
    return {SCORE_PREFIX + name: float(values[name]) for name in names}
