"""Transferability scores against hand-computed values, closed forms and direct (slow) formulas."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.stats import multivariate_normal, ortho_group
from sklearn.covariance import LedoitWolf

from taskspace.transferability import (
    SCORES,
    TRANSRATE_EPS2,
    UndefinedScore,
    compute_scores,
    hscore,
    hscore_shrunk,
    leep,
    logme,
    logme_evidence,
    nce,
    transrate,
)


def blobs(n: int, d: int, classes: int, separation: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Unit Gaussian classes around means drawn from N(0, separation^2 I); every class present."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % classes
    rng.shuffle(labels)
    means = separation * rng.standard_normal((classes, d))
    return means[labels] + rng.standard_normal((n, d)), labels


def class_mean_cov(features: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """cov(E[f|y]) with 1/n normalisation: the covariance of each sample replaced by its class mean."""
    means = np.stack([features[labels == label].mean(axis=0) for label in labels])
    return np.cov(means, rowvar=False, bias=True).reshape(features.shape[1], features.shape[1])


# ---- LEEP ----

def test_leep_hand_computed():
    # Joint P(y, z) = sum of theta rows per label / 4: y=0 -> (1.4, 0.6)/4, y=1 -> (0.4, 1.6)/4; P(z) = (.45, .55).
    # P(y|z): z=0 -> (7/9, 2/9), z=1 -> (3/11, 8/11). Expected empirical predictions of the true labels:
    # .8*7/9 + .2*3/11 = 67/99, .6*7/9 + .4*3/11 = 57/99, .3*2/9 + .7*8/11 = 57/99, .1*2/9 + .9*8/11 = 67/99,
    # so LEEP = (2 log 67/99 + 2 log 57/99) / 4 = log(67 * 57 / 99^2) / 2.
    theta = np.array([[0.8, 0.2], [0.6, 0.4], [0.3, 0.7], [0.1, 0.9]])
    assert leep(theta, np.array([0, 0, 1, 1])) == pytest.approx(0.5 * math.log(67 * 57 / 99**2), abs=1e-12)


def test_leep_perfectly_informative_source_is_zero():
    labels = np.array([2, 0, 1, 1, 2, 0, 0])
    one_hot = np.eye(4)[np.array([3, 0, 1])[labels]]  # source class 3 is target class 0, ...; class 2 unused
    assert leep(one_hot, labels) == pytest.approx(0.0, abs=1e-12)


def test_leep_ignores_absent_classes_and_is_at_most_zero():
    rng = np.random.default_rng(1)
    theta = rng.dirichlet(np.ones(5), size=30)
    labels = rng.integers(0, 3, 30)
    assert leep(theta, labels * 2 + 1) == pytest.approx(leep(theta, labels), abs=1e-12)
    assert leep(theta, labels) <= 0.0


# ---- NCE ----

def test_nce_hand_computed():
    # Hard source labels z = (0, 0, 0, 1, 1, 1); y = (0, 0, 1, 1, 1, 1). P(z) = 1/2 each, H(Y|z=0) = H(1/3),
    # H(Y|z=1) = 0, so NCE = -H(1/3) / 2 = (2/3 log 2/3 + 1/3 log 1/3) / 2.
    theta = np.array([[0.9, 0.1], [0.6, 0.4], [0.7, 0.3], [0.2, 0.8], [0.4, 0.6], [0.1, 0.9]])
    expected = 0.5 * (2 / 3 * math.log(2 / 3) + 1 / 3 * math.log(1 / 3))
    assert nce(theta, np.array([0, 0, 1, 1, 1, 1])) == pytest.approx(expected, abs=1e-12)


def test_nce_zero_when_y_is_a_function_of_z():
    z = np.array([0, 1, 2, 3, 3, 2, 1, 0, 0])
    assert nce(np.eye(4)[z] * 0.7 + 0.075, z % 2) == pytest.approx(0.0, abs=1e-15)


def test_nce_independent_balanced_binary_is_minus_log_two():
    theta = np.eye(2)[[0, 0, 1, 1]]
    assert nce(theta, np.array([0, 1, 0, 1])) == pytest.approx(-math.log(2), abs=1e-12)


# ---- H-score ----

def test_hscore_closed_form_on_a_constructed_sample():
    # Classes at -mu and +mu, each with the 4 points centre +- a e1, centre +- b e2: within-class covariance
    # W = diag(a^2/2, b^2/2), between-class covariance B = mu mu^T, cov(f) = W + B, so by Sherman-Morrison
    # H = mu^T (W + mu mu^T)^-1 mu = delta^2 / (1 + delta^2), delta^2 = mu^T W^-1 mu = 1/.5 + 4/8 = 2.5: H = 5/7.
    mu, a, b = np.array([1.0, 2.0]), 1.0, 4.0
    offsets = np.array([[a, 0], [-a, 0], [0, b], [0, -b]])
    features = np.concatenate([-mu + offsets, mu + offsets])
    labels = np.repeat([0, 1], 4)
    assert hscore(features, labels) == pytest.approx(5 / 7, abs=1e-12)
    # 1-D: classes {0, 2} and {4, 6}: var(f) = 5, var(E[f|y]) = 4.
    assert hscore(np.array([[0.0], [2.0], [4.0], [6.0]]), np.array([0, 0, 1, 1])) == pytest.approx(0.8, abs=1e-12)


def test_hscore_matches_direct_formula_with_unbalanced_classes():
    features, labels = blobs(50, 3, 3, 1.0, seed=2)
    labels[:20] = 0
    direct = np.trace(np.linalg.inv(np.cov(features, rowvar=False, bias=True)) @ class_mean_cov(features, labels))
    assert hscore(features, labels) == pytest.approx(direct, rel=1e-10)


def test_hscore_invariant_under_invertible_linear_maps():
    features, labels = blobs(80, 5, 4, 1.0, seed=3)
    transform = np.random.default_rng(4).standard_normal((5, 5))
    assert hscore(features @ transform + 3.0, labels) == pytest.approx(hscore(features, labels), rel=1e-9)


@pytest.mark.parametrize("case", ["n <= d", "constant feature", "collinear features"])
def test_hscore_singular_covariance_is_undefined(case):
    features, labels = blobs(40, 4, 2, 1.0, seed=5)
    if case == "n <= d":
        features, labels = features[:4], np.array([0, 1, 0, 1])
    elif case == "constant feature":
        features[:, 2] = 0.1
    else:
        features[:, 3] = 2 * features[:, 0] - features[:, 1]
    with pytest.raises(UndefinedScore, match="singular"):
        hscore(features, labels)
    with pytest.warns(RuntimeWarning, match="hscore is undefined for expert A on task B: .*singular"):
        scores = compute_scores(["hscore"], features, labels, None, where="expert A on task B")
    assert math.isnan(scores["hscore"])


# ---- shrinkage H-score ----

@pytest.mark.parametrize("n, d", [(60, 5), (12, 30)])
def test_hscore_shrunk_is_hscore_with_ledoit_wolf_covariance(n, d):
    features, labels = blobs(n, d, 3, 1.0, seed=6)
    lw = LedoitWolf().fit(features)
    direct = (1 - lw.shrinkage_) * np.trace(np.linalg.inv(lw.covariance_) @ class_mean_cov(features, labels))
    assert 0 < lw.shrinkage_ < 1
    assert hscore_shrunk(features, labels) == pytest.approx(direct, rel=1e-9)


def test_hscore_shrunk_defined_when_n_below_d_and_undefined_for_constant_features():
    features, labels = blobs(5, 20, 2, 1.0, seed=7)
    assert np.isfinite(hscore_shrunk(features, labels))
    with pytest.raises(UndefinedScore, match="singular"):
        hscore_shrunk(np.ones((6, 3)), np.array([0, 1] * 3))


# ---- LogME ----

def direct_evidence(features: np.ndarray, target: np.ndarray, alpha: float, beta: float) -> float:
    n = len(target)
    cov = features @ features.T / alpha + np.eye(n) / beta
    return multivariate_normal(np.zeros(n), cov).logpdf(target) / n


def linear_model(n: int, d: int, noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    features = rng.standard_normal((n, d))
    return features, features @ rng.standard_normal(d) + noise * rng.standard_normal(n)


@pytest.mark.parametrize("n, d", [(150, 6), (25, 40)])
def test_logme_evidence_is_the_gaussian_marginal_likelihood(n, d):
    features, target = linear_model(n, d, 0.5, seed=8)
    evidence, alpha, beta = logme_evidence(features, target)
    assert evidence == pytest.approx(direct_evidence(features, target, alpha, beta), rel=1e-9, abs=1e-12)


def test_logme_evidence_is_maximised():
    features, target = linear_model(150, 6, 0.5, seed=9)
    evidence, alpha, beta = logme_evidence(features, target)
    for a, b in [(0.95 * alpha, beta), (1.05 * alpha, beta), (alpha, 0.95 * beta), (alpha, 1.05 * beta)]:
        assert direct_evidence(features, target, a, b) < evidence
    search = minimize(lambda p: -direct_evidence(features, target, *np.exp(p)), [0.0, 0.0], method="Nelder-Mead",
                      options={"xatol": 1e-9, "fatol": 1e-14})
    np.testing.assert_allclose(np.exp(search.x), [alpha, beta], rtol=1e-5)
    assert evidence == pytest.approx(-search.fun, abs=1e-12)


def test_logme_evidence_same_in_both_regimes():
    # Zero feature columns leave F F^T, hence the evidence and its maximiser, unchanged, and take n > d to n < d.
    features, target = linear_model(30, 10, 0.5, seed=10)
    padded = np.hstack([features, np.zeros((30, 40))])
    np.testing.assert_allclose(logme_evidence(padded, target), logme_evidence(features, target), rtol=1e-7)


def test_logme_is_the_mean_over_present_classes():
    features, labels = blobs(90, 8, 3, 1.0, seed=11)
    labels = labels * 2  # classes 1 and 3 absent
    per_class = [logme_evidence(features, (labels == c).astype(float))[0] for c in (0, 2, 4)]
    assert logme(features, labels) == pytest.approx(np.mean(per_class), rel=1e-10)


def test_logme_prefers_informative_features():
    informative, labels = blobs(150, 10, 3, 2.0, seed=12)
    noise = np.random.default_rng(13).standard_normal(informative.shape)
    assert logme(informative, labels) > logme(noise, labels) + 0.1


# ---- TransRate ----

def direct_transrate(features: np.ndarray, labels: np.ndarray, eps2: float) -> float:
    z = features - features.mean(axis=0)
    n, d = z.shape

    def rate(zc):
        return 0.5 * np.linalg.slogdet(np.eye(d) + zc.T @ zc / (len(zc) * eps2))[1]

    return rate(z) - sum((labels == c).sum() / n * rate(z[labels == c]) for c in np.unique(labels))


@pytest.mark.parametrize("n, d, eps2", [(12, 5, TRANSRATE_EPS2), (8, 10, 0.3), (40, 3, 1.0)])
def test_transrate_matches_direct_formula(n, d, eps2):
    features, labels = blobs(n, d, 3, 1.0, seed=14)
    assert transrate(features, labels, eps2) == pytest.approx(direct_transrate(features, labels, eps2), rel=1e-9)


def test_transrate_near_zero_for_uninformative_features_and_large_for_separated():
    noise, labels = blobs(2000, 8, 4, 0.0, seed=15)
    separated, labels2 = blobs(2000, 8, 4, 3.0, seed=15)
    assert 0 <= transrate(noise, labels) < 0.05
    assert transrate(separated, labels2) > 1.0


def test_transrate_zero_for_two_mirrored_classes():
    # Classes at -mu and +mu with the same offsets: the class coding rates use the globally centred features, whose
    # per-class second moments then both equal the overall one, so R(Z|Y) = R(Z) however far apart the classes are.
    offsets = np.array([[1.0, 0], [-1, 0], [0, 4], [0, -4]])
    features = np.concatenate([offsets - [10.0, 20.0], offsets + [10.0, 20.0]])
    assert transrate(features, np.repeat([0, 1], 4)) == pytest.approx(0.0, abs=1e-12)


def test_transrate_non_negative_and_invariant():
    features, labels = blobs(60, 6, 3, 0.3, seed=16)
    labels[:25] = 2
    value = transrate(features, labels)
    rotation = ortho_group.rvs(6, random_state=17)
    assert value >= 0
    assert transrate(features @ rotation + 5.0, labels) == pytest.approx(value, rel=1e-9)
    assert transrate(features, (labels + 1) % 3) == pytest.approx(value, rel=1e-12)


# ---- compute_scores ----

def test_compute_scores_all_defined():
    features, labels = blobs(60, 5, 3, 1.0, seed=18)
    probs = np.random.default_rng(19).dirichlet(np.ones(7), size=60)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scores = compute_scores(list(SCORES), features, labels, probs, where="expert A on task B")
    assert list(scores) == list(SCORES)
    assert all(np.isfinite(v) for v in scores.values())
    assert scores["logme"] == logme(features, labels) and scores["leep"] == leep(probs, labels)


def test_compute_scores_one_class_is_nan_with_warning():
    features = np.random.default_rng(20).standard_normal((10, 3))
    probs = np.full((10, 4), 0.25)
    with pytest.warns(RuntimeWarning, match="is undefined for expert A on task B: .*2 classes") as caught:
        scores = compute_scores(list(SCORES), features, np.zeros(10, int), probs, where="expert A on task B")
    assert all(math.isnan(v) for v in scores.values())
    assert len(caught) == len(SCORES)


@pytest.mark.parametrize("case", ["one sample", "non-finite", "no source probs"])
def test_compute_scores_other_undefined_cases(case):
    features, labels = blobs(20, 3, 2, 1.0, seed=21)
    probs = np.full((20, 4), 0.25)
    if case == "one sample":
        features, labels, probs = features[:1], labels[:1], probs[:1]
    elif case == "non-finite":
        features[3, 1], probs[2, 0] = np.inf, np.nan
    else:
        probs = None
    with pytest.warns(RuntimeWarning, match="undefined for task T"):
        scores = compute_scores(list(SCORES), features, labels, probs, where="task T")
    undefined = {"one sample": set(SCORES), "non-finite": set(SCORES), "no source probs": {"leep", "nce"}}[case]
    assert {name for name, v in scores.items() if math.isnan(v)} == undefined


def test_compute_scores_unknown_name_raises():
    with pytest.raises(ValueError, match="unknown transferability score.*'fisher'.*known: leep, nce"):
        compute_scores(["logme", "fisher"], np.zeros((4, 2)), np.array([0, 1, 0, 1]), None)


@pytest.mark.parametrize(("n", "d"), [(50, 8), (12, 30), (3, 5)])
def test_ledoit_wolf_shrinkage_equals_scikit_learns(n, d):
    from sklearn.covariance import ledoit_wolf_shrinkage as reference

    from taskspace.transferability import ledoit_wolf_shrinkage

    x = np.random.default_rng(n * d).normal(size=(n, d)) * np.linspace(0.5, 3.0, d) + 2.0
    assert ledoit_wolf_shrinkage(x) == pytest.approx(reference(x), rel=1e-10)


def test_logme_with_more_random_features_than_images_stops_at_its_finite_supremum():
    """n < d, features independent of the labels: the evidence is largest as alpha grows without bound (w = 0, the
    labels explained as noise), where a naive iteration overflows. LogME stops at that limit, known in closed form:
    log N(y; 0, I / beta) with beta = n / |y|^2."""
    from taskspace.transferability import logme, logme_evidence

    rng = np.random.default_rng(0)
    n, d = 40, 200
    x = rng.normal(size=(n, d))
    labels = np.arange(n) % 4
    assert np.isfinite(logme(x, labels))
    y = (labels == 0).astype(float)
    beta = n / (y @ y)
    limit = (-n * np.log(2 * np.pi) + n * np.log(beta) - n) / (2 * n)
    evidence, alpha, fitted_beta = logme_evidence(x, y)
    assert evidence == pytest.approx(limit, abs=1e-6) and fitted_beta == pytest.approx(beta, rel=1e-4)
    assert alpha > 1e6


def test_logme_is_undefined_when_duplicate_images_make_its_evidence_unbounded():
    """Two identical training images with the same label and more features than images: the Gaussian evidence is
    unbounded as the noise precision grows (the features do not vary along the duplicates' difference, the labels
    do not either), so LogME has no maximum: NaN with a warning naming why, not an arbitrary large number."""
    from taskspace.transferability import UndefinedScore, logme

    rng = np.random.default_rng(1)
    x = rng.normal(size=(30, 100))
    labels = np.arange(30) % 3
    x[1] = x[4]  # image 4 is image 1 again, both labelled 1
    with pytest.raises(UndefinedScore, match="grows without bound"):
        logme(x, labels)
    with pytest.warns(RuntimeWarning, match="logme is undefined for expert 'e' on task 't'.*duplicate"):
        assert math.isnan(compute_scores(["logme"], x, labels, None, where="expert 'e' on task 't'")["logme"])
    x[4] += 1e-3 * rng.normal(size=100)  # no longer a duplicate: defined
    assert np.isfinite(logme(x, labels))
