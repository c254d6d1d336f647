"""Transferability scores: how well an expert suits a target task, from the expert's penultimate features of the
target's training images or from its own classifier's softmax outputs on them. Higher = better expected transfer.

Besides the scores of the papers (LEEP, NCE, H-score, LogME, TransRate), the baselines the field now sets beside
them: a leave-one-out k-NN probe, SFDA (Shao et al. 2022) and NCTI (Wang et al. 2023), whose min-max normalisation
over the candidate experts makes it a :class:`PoolScore`, combined by the selection over each target's pool.

The score functions raise :class:`UndefinedScore` where a score is undefined on its inputs (fewer than two samples
or classes, non-finite values, a singular covariance); :func:`compute_scores` turns that into NaN and a warning.
Classes absent from the labels play no part. Logarithms are natural. Matrix products and decompositions go through
:mod:`taskspace.linalg`, never numpy's BLAS, so that with pinned kernels the scores are the same bits on any CPU.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy.special import softmax, xlogy

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


# ---------------------------------------------------------------- baselines: k-NN, SFDA, NCTI

SFDA_A = 5.0  # a of SFDA's regularisation strength lambda = exp(-a * largest eigenvalue of S_w)
SFDA_MIN_SHRINKAGE = 1e-10  # SFDA's lower bound on lambda

NCTI_PCA_DIM = 64  # NCTI works on the first 64 principal components of the features
NCTI_SHRINKAGE_COMPONENTS = 32  # its LDA shrinkage is exp(-(sum of the first 32 principal variances))
NCTI_MIN_SHRINKAGE = 1e-10  # at or below which its LDA is fitted without shrinkage
NCTI_WEIGHTS = np.array([1.0, 1.0, -1.0])  # signs of the min-max normalised (S_seli, S_ncc, S_vc) in NCTI
LDA_TOL = 1e-4  # scikit-learn's LinearDiscriminantAnalysis tol: singular values below it are null (SVD solver)


# ---- k-NN ----

def _knn_predictions(x: np.ndarray, y: np.ndarray, classes: int, k: int) -> np.ndarray:
    """Predicted class (0..classes-1) of each sample by a majority vote of its k nearest other samples."""
    n = len(x)
    sq = (x * x).sum(axis=1)
    # ||x_i - x_j||^2 less the constant ||x_i||^2 of row i: the same order within each row, one rounding fewer
    dist = sq[None, :] - 2.0 * gram(x)
    dist[np.arange(n), np.arange(n)] = np.inf
    neighbours = np.argsort(dist, axis=1, kind="stable")[:, :k]  # equal distances: the lower index first
    votes = np.zeros((n, classes))
    first = np.full((n, classes), k)  # rank of the nearest neighbour of each class, k where none
    rows = np.arange(n)
    for rank in range(k - 1, -1, -1):
        labels = y[neighbours[:, rank]]
        votes[rows, labels] += 1
        first[rows, labels] = rank
    # most votes; among tied classes, the class of the nearest neighbour (one vote outweighs any rank difference)
    return np.argmax(votes * (k + 1) - first, axis=1)


def knn_loo(features: np.ndarray, labels: np.ndarray, k: int = 5) -> float:
    """Leave-one-out k-nearest-neighbour accuracy: the fraction of samples whose label is the majority label of
    their k nearest other samples, by Euclidean distance on the features as given: a nonparametric baseline that
    assumes no model of the classes.

    Each sample's own row is left out (an identical other sample is a neighbour at distance 0); neighbours at equal
    distances come in index order; a vote tied between classes goes to the class, among the tied ones, of the
    nearest neighbour. ``k`` larger than n - 1 uses n - 1. Squared distances are ||x_i||^2 + ||x_j||^2 - 2 x_i.x_j
    from the Gram matrix, exact on small integer features."""
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    x, y, counts = _check(features, labels, "features")
    predicted = _knn_predictions(x, y, len(counts), min(k, len(x) - 1))
    return float((predicted == y).mean())


# ---- shared: Gaussian discriminants under a shrunk within-class covariance ----

def _class_means(x: np.ndarray, y: np.ndarray, counts: np.ndarray) -> np.ndarray:
    return matmul(np.eye(len(counts))[y].T, x) / counts[:, None]


def _squared_distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) squared Euclidean distances between the rows of a and of b."""
    return np.clip((a * a).sum(axis=1)[:, None] + (b * b).sum(axis=1)[None, :] - 2.0 * matmul(a, b.T), 0.0, None)


def _within_spectrum(xc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (k,) and orthonormal eigenvectors (d, k) of S_w = xc^T xc / n, xc the within-class centred rows:
    all d of them for n > d; for n <= d those of the nonzero eigenvalues (above max(n, d) eps times the largest),
    through the n x n Gram matrix."""
    n, d = xc.shape
    if n > d:
        values, vectors = eigh(gram(xc.T))
        return np.clip(values, 0.0, None) / n, vectors
    values, u = eigh(gram(xc))
    keep = values > max(n, d) * np.finfo(np.float64).eps * max(values.max(), 0.0)
    return values[keep] / n, matmul(xc.T, u[:, keep]) / np.sqrt(values[keep])


def _posteriors(q: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """softmax_c(-q_ic / 2 + log p_c), p_c = n_c / n: the class posteriors of Gaussian classes with a shared
    covariance, q the squared Mahalanobis distances to the class means."""
    return softmax(-0.5 * q + np.log(counts / counts.sum()), axis=1)


def _sfda_lda(x: np.ndarray, y: np.ndarray, counts: np.ndarray,
              shrinkage: float | None = None) -> tuple[np.ndarray, float]:
    """(class posteriors (n, C), lambda) of SFDA's regularised FDA: Gaussian discriminants under
    S~_w = (1 - lambda) S_w + lambda tr(S_w)/d I, lambda = max(exp(-a sigma_max(S_w)), 1e-10) unless given."""
    n, d = x.shape
    x = x - x.mean(axis=0)
    means = _class_means(x, y, counts)
    xc = x - means[y]
    values, basis = _within_spectrum(xc)
    if shrinkage is None:
        shrinkage = max(math.exp(-SFDA_A * float(values.max(initial=0.0))), SFDA_MIN_SHRINKAGE)
    target = shrinkage * float((xc * xc).sum()) / (n * d)  # lambda tr(S_w) / d
    if target <= 0:
        raise UndefinedScore("the within-class scatter is zero (every class is a single point)")
    inverse = 1.0 / ((1.0 - shrinkage) * values + target)  # S~_w^-1 on the basis
    px, pm = matmul(x, basis), matmul(means, basis)
    root = np.sqrt(inverse)
    q = _squared_distances(px * root, pm * root)
    if basis.shape[1] < d:  # the directions S_w does not span, where S~_w = lambda tr(S_w)/d I
        q += _squared_distances(x - matmul(px, basis.T), means - matmul(pm, basis.T)) / target
    return _posteriors(q, counts), shrinkage


def sfda(features: np.ndarray, labels: np.ndarray) -> float:
    """SFDA, Self-challenging Fisher Discriminant Analysis (Shao et al., "Not All Models Are Equal: Predicting
    Model Transferability in a Self-challenging Fisher Space", ECCV 2022): the mean probability of the true class
    under a regularised Fisher discriminant refitted after each sample was moved toward the other classes.

    1. Regularised FDA. S_w = sum_c (n_c/n) cov_c (covariances normalised by n_c) and S_b = sum_c (n_c/n)
       (mu_c - mu)(mu_c - mu)^T; the projection U maximises tr(U^T S_b U) / tr(U^T S~_w U) with
       S~_w = (1 - lambda) S_w + lambda tr(S_w)/d I, lambda = max(exp(-a sigma_max(S_w)), 1e-10), a = 5. Class
       scores in the Fisher space are delta_c(x) = x~ mu~_c^T - mu~_c mu~_c^T / 2 + log(n_c / n), x~ = x U,
       mu~_c = mu_c U, and p(c|x) = softmax_c delta_c(x).
    2. Self-challenge (ConfMix): x^_i = w_i x_i + (1 - w_i) mu'_{y_i}, mu'_c = sum_{c' != c} mu_c' / (C - 1) the
       mean of the other classes' means, w_i = softmax(p(.|x_i))_{y_i} the true-class entry of the softmax of the
       first fit's probabilities; the FDA is refitted on the x^ with the same lambda (S_w, tr(S_w) and the means
       recomputed from the x^).
    3. SFDA = (1/n) sum_i p^(y_i | x^_i), the probabilities of the refit (no log).

    Details the paper's equations leave open are taken from the authors' released code (github.com/TencentARC/SFDA,
    metrics.py): the shrinkage target tr(S_w)/d I (a scaled identity, as Ledoit-Wolf's: lambda acts the same at any
    feature scale); a = 5 and the 1e-10 floor; covariances normalised by n_c, class frequencies as priors; the
    confidences softened by a second softmax; the between-class matrix S~_t - S~_w (S~_t the total covariance shrunk
    alike) and all d of its generalised eigenvectors against S~_w, normalised U^T S~_w U = I. With all of them
    U U^T = S~_w^-1, so delta_c is the shrinkage-LDA discriminant x S~_w^-1 mu_c^T - mu_c S~_w^-1 mu_c^T / 2 +
    log(n_c/n), whatever the between-class matrix; it is computed that way (as -(x - mu_c) S~_w^-1 (x - mu_c)^T / 2,
    equal up to a constant per sample), in the eigenbasis of S_w (through the n x n Gram matrix when n <= d).
    sigma_max(S_w) is the exact largest eigenvalue, where the code approximates it by three power iterations.

    lambda depends on the features' scale; with few samples in high dimension lambda reaches its floor, S~_w is
    nearly singular and the probabilities, hence the score, saturate near 1."""
    x, y, counts = _check(features, labels, "features")
    x = x - x.mean(axis=0)
    rows = np.arange(len(y))
    probs, shrinkage = _sfda_lda(x, y, counts)
    confidence = softmax(probs, axis=1)[rows, y][:, None]
    means = _class_means(x, y, counts)
    others = (means.sum(axis=0) - means) / (len(counts) - 1)
    mixed = confidence * x + (1.0 - confidence) * others[y]
    probs, _ = _sfda_lda(mixed, y, counts, shrinkage)
    return float(probs[rows, y].mean())


# ---- NCTI ----

def _pca(x: np.ndarray, dims: int) -> tuple[np.ndarray, np.ndarray]:
    """(scores (n, dims), variances (dims,)) of the first ``dims`` principal components of x, variances with the
    n - 1 denominator, through the smaller Gram matrix of the centred x."""
    z = x - x.mean(axis=0)
    n, d = z.shape
    if n <= d:
        values, u = eigh(gram(z))
        values, u = np.clip(values[::-1][:dims], 0.0, None), u[:, ::-1][:, :dims]
        return u * np.sqrt(values), values / (n - 1)
    values, v = eigh(gram(z.T))
    return matmul(z, v[:, ::-1][:, :dims]), np.clip(values[::-1][:dims], 0.0, None) / (n - 1)


def _ncti_lda(t: np.ndarray, y: np.ndarray, counts: np.ndarray,
              shrinkage: float | None) -> tuple[np.ndarray, np.ndarray]:
    """(class posteriors (n, C), projection (n, r) of the centred t onto r <= C - 1 discriminant directions) of
    the linear discriminant analysis NCTI fits, computed as scikit-learn's LinearDiscriminantAnalysis (1.9) does:

    - with ``shrinkage`` lambda, its eigen solver: covariance S~_w = (1 - lambda) S_w + lambda tr(S_w)/d I,
      directions the top C - 1 generalised eigenvectors of (S~_t - S~_w, S~_w), S~_t the total covariance shrunk
      alike, normalised to U^T S~_w U = I;
    - without, its SVD solver: covariance S_w, whitened through the singular values of the within-class centred
      t / std / sqrt(n) (std: the within-class deviation of each column), those below LDA_TOL taken as null;
      directions those of the class means in the whitened space with singular values above LDA_TOL times the
      largest. (scikit-learn before 1.2 scaled S_w here by n / (n - C).)

    S_w = sum_c (n_c/n) cov_c. Posteriors: softmax_c of -(t - mu_c)^T S^+ (t - mu_c) / 2 + log(n_c / n), S^+ the
    (pseudo-)inverse covariance, equal to scikit-learn's up to a constant per sample."""
    n, dims = t.shape
    k = len(counts)
    t = t - t.mean(axis=0)
    means = _class_means(t, y, counts)
    tc = t - means[y]
    if not (tc != 0).any():
        raise UndefinedScore("the within-class scatter is zero (every class is a single point)")
    between = matmul(means.T * (counts / n), means)  # S_b (t is centred)
    if shrinkage is None:
        std = np.sqrt((tc * tc).mean(axis=0))
        std[std == 0] = 1.0
        squares, v = eigh(gram((tc / std).T) / n)
        keep = np.sqrt(np.clip(squares, 0.0, None)) > LDA_TOL
        whiten = v[:, keep] / std[:, None] / np.sqrt(squares[keep])
        spread, directions = eigh(matmul(matmul(whiten.T, between), whiten))
        useful = spread[::-1] > LDA_TOL**2 * max(spread.max(), 0.0)
        directions = directions[:, ::-1][:, useful][:, : k - 1]
    else:
        values, vectors = eigh(gram(tc.T) / n)
        values = np.clip(values, 0.0, None)
        whiten = vectors / np.sqrt((1.0 - shrinkage) * values + shrinkage * float(values.sum()) / dims)
        shrunk = (1.0 - shrinkage) * between + shrinkage * float(np.trace(between)) / dims * np.eye(dims)
        _, directions = eigh(matmul(matmul(whiten.T, shrunk), whiten))
        directions = directions[:, ::-1][:, : k - 1]
    tw, mw = matmul(t, whiten), matmul(means, whiten)
    return _posteriors(_squared_distances(tw, mw), counts), matmul(tw, directions)


def _nuclear_norm(a: np.ndarray) -> float:
    """Sum of the singular values of a, from the smaller Gram matrix."""
    g = gram(a) if a.shape[0] <= a.shape[1] else gram(a.T)
    values = eigh(g)[0]
    # eigenvalues within rounding of zero are zero (their square roots would add ~1e-8 of noise each)
    values = np.where(values > max(a.shape) * np.finfo(np.float64).eps * values.max(initial=0.0), values, 0.0)
    return float(np.sqrt(values).sum())


def ncti_terms(features: np.ndarray, labels: np.ndarray) -> tuple[float, float, float]:
    """The three raw terms (S_seli, S_ncc, S_vc) of NCTI (Wang et al., "How Far Pre-trained Models Are from Neural
    Collapse on the Target Dataset Informs their Transferability", ICCV 2023) for one model on one target; see
    :func:`ncti_combine` for the score, which normalises each term over the candidate models.

    The features are reduced by PCA to their first d' = min(64, d, n - 1) principal components (64 in the paper;
    fewer where the centred features have no more dimensions), on which a linear discriminant analysis is fitted
    with shrinkage lambda = exp(-(sum of the first min(32, d') principal variances)), or without shrinkage where
    lambda <= 1e-10, as scikit-learn's LinearDiscriminantAnalysis (see :func:`_ncti_lda`). Then, with Z the centred
    projection of the samples onto the LDA's discriminant directions and P the (n, C) matrix of its class posteriors
    (P_c: the rows of class c):

    - S_seli = ||Z||_* (nuclear norm): the between-class spread in the discriminant space, toward the simplex /
      SELI geometry of collapse; higher = closer;
    - S_ncc = (1/n) sum_i P[i, y_i]: the mean true-class probability of the (nearest-class-centre, in the LDA's
      metric) classifier;
    - S_vc = log sum_c ||P_c||_*: the within-class variability of the posteriors; lower = more collapsed.

    Choices where the paper leaves room, as in the authors' released code (github.com/BUserName/NCTI, metrics.py
    NCTI_Score): PCA variances with the n - 1 denominator; the LDA is scikit-learn's, with class frequencies as
    priors. Here the PCA is exact (scikit-learn's default may pick a randomised solver) and d' is capped at n - 1."""
    x, y, counts = _check(features, labels, "features")
    n, d = x.shape
    t, variances = _pca(x, min(NCTI_PCA_DIM, d, n - 1))
    shrinkage = math.exp(-float(variances[:NCTI_SHRINKAGE_COMPONENTS].sum()))
    probs, z = _ncti_lda(t, y, counts, None if shrinkage <= NCTI_MIN_SHRINKAGE else shrinkage)
    seli = _nuclear_norm(z - z.mean(axis=0))
    ncc = float(probs[np.arange(n), y].mean())
    vc = math.log(sum(_nuclear_norm(probs[y == c]) for c in range(len(counts))))
    return seli, ncc, vc


def ncti_combine(terms: np.ndarray) -> np.ndarray:
    """NCTI scores of m candidate models on one target from their raw :func:`ncti_terms`, an (m, 3) array:
    S_seli' + S_ncc' - S_vc', each term min-max normalised over the candidates, t' = (t - min t) / (max t - min t)
    (Wang et al., ICCV 2023). A row with a non-finite term scores NaN and takes no part in the normalisation; a term
    equal over the remaining rows contributes 0."""
    terms = np.asarray(terms, dtype=np.float64)
    if terms.ndim != 2 or terms.shape[1] != len(NCTI_WEIGHTS):
        raise ValueError(f"terms of shape {terms.shape}: expected (m, {len(NCTI_WEIGHTS)})")
    scores = np.full(len(terms), np.nan)
    valid = np.isfinite(terms).all(axis=1)
    if valid.any():
        kept = terms[valid]
        low, span = kept.min(axis=0), kept.max(axis=0) - kept.min(axis=0)
        normalised = np.where(span > 0, (kept - low) / np.where(span > 0, span, 1.0), 0.0)
        scores[valid] = (normalised * NCTI_WEIGHTS).sum(axis=1)
    return scores


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


KNN_K = 5  # neighbours of the k-NN probe

SCORES: dict[str, Callable[[np.ndarray, np.ndarray, np.ndarray | None], float]] = {
    "leep": _from_probs(leep),
    "nce": _from_probs(nce),
    "hscore": _from_features(hscore),
    "hscore_shrunk": _from_features(hscore_shrunk),
    "logme": _from_features(logme),
    "transrate": _from_features(transrate),
    "knn": _from_features(lambda x, y: knn_loo(x, y, KNN_K)),
    "sfda": _from_features(sfda),
}


@dataclass(frozen=True)
class PoolScore:
    """A score whose value for one expert depends on the other candidates (NCTI's min-max normalisation over the
    pool): the transfer stage stores each pair's raw ``terms`` (columns ``pool_<name>_<term>``), and the selection
    combines them (``combine``) over each target's candidate pool, so that a pool changed by resampling experts gets its
    own normalisation."""

    terms: Callable[[np.ndarray, np.ndarray], tuple[float, ...]]
    term_names: tuple[str, ...]
    combine: Callable[[np.ndarray], np.ndarray]  # (m candidates, terms) -> m scores, NaN rows NaN

    def columns(self, name: str) -> list[str]:
        """The transfer.parquet columns of the score's raw terms."""
        return [f"{POOL_PREFIX}{name}_{term}" for term in self.term_names]


POOL_PREFIX = "pool_"
POOL_SCORES: dict[str, PoolScore] = {
    "ncti": PoolScore(ncti_terms, ("seli", "ncc", "vc"), ncti_combine),
}
SCORE_NAMES = (*SCORES, *POOL_SCORES)  # every per-expert score the config may name


def _undefined(name: str, where: str, err: Exception) -> None:
    warnings.warn(f"{name} is undefined for {where or 'these inputs'}: {err}; NaN", RuntimeWarning, stacklevel=3)


def compute_scores(names: list[str], features: np.ndarray, labels: np.ndarray, source_probs: np.ndarray | None,
                   where: str = "") -> dict[str, float | tuple[float, ...]]:
    """{name: score} for the named scores, {name: raw terms} for a pool score (see :class:`PoolScore`); a score
    undefined on these inputs is NaN (every term NaN), with a RuntimeWarning naming ``where`` (e.g. "expert X on
    task Y") and the reason."""
    unknown = [name for name in names if name not in SCORE_NAMES]
    if unknown:
        raise ValueError(f"unknown transferability score(s) {', '.join(map(repr, unknown))}; "
                         f"known: {', '.join(SCORE_NAMES)}")
    scores: dict[str, float | tuple[float, ...]] = {}
    for name in names:
        if name in POOL_SCORES:
            pool = POOL_SCORES[name]
            try:
                terms = tuple(float(v) for v in pool.terms(features, labels))
                if not np.isfinite(terms).all():
                    raise UndefinedScore(f"non-finite terms {terms}")
            except (UndefinedScore, np.linalg.LinAlgError) as err:
                _undefined(name, where, err)
                terms = (float("nan"),) * len(pool.term_names)
            scores[name] = terms
            continue
        try:
            value = float(SCORES[name](features, labels, source_probs))
            if not np.isfinite(value):
                raise UndefinedScore(f"non-finite value {value}")
        except (UndefinedScore, np.linalg.LinAlgError) as err:
            _undefined(name, where, err)
            value = float("nan")
        scores[name] = value
    return scores


def score_columns(names: list[str], values: dict[str, float | tuple[float, ...]]) -> dict[str, float]:
    """transfer.parquet's columns of computed scores: ``score_<name>``, and ``pool_<name>_<term>`` per raw term."""
    columns: dict[str, float] = {}
    for name in names:
        if name in POOL_SCORES:
            columns.update(zip(POOL_SCORES[name].columns(name), values[name]))
        else:
            columns[SCORE_PREFIX + name] = float(values[name])
    return columns


def expert_scores(net, features, labels: np.ndarray, names: list[str], device, where: str) -> dict[str, float]:
    """The columns (:func:`score_columns`) of each transferability score in ``names`` from an expert's
    training-split features and its own head's softmax on them (LEEP, NCE); an undefined score is NaN, with a
    warning naming ``where``."""
    import torch

    if not names:
        return {}
    with torch.inference_mode():
        probs = torch.softmax(net.forward_head(features.to(device, torch.float32)).double(), 1).cpu().numpy()
    values = compute_scores(list(names), features.numpy(), np.asarray(labels), probs, where=where)
    return score_columns(list(names), values)
