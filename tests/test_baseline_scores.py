"""Baseline transferability scores (k-NN, SFDA, NCTI) against hand-counted answers and direct reference
computations, their invariances and undefined cases, and that they never reach numpy's BLAS."""

from __future__ import annotations

import ast
import math
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
import scipy.stats
from sklearn.decomposition import PCA
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

from taskspace import transferability
from taskspace.transferability import UndefinedScore, knn_loo, ncti_combine, ncti_terms, sfda


def blobs(n: int, d: int, classes: int, separation: float, scale: float = 1.0,
          seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Unit Gaussian classes around means drawn from N(0, separation^2 I), all times ``scale`` and shifted by 3;
    labels 0..classes-1 in turn, every class present."""
    rng = np.random.default_rng(seed)
    means = rng.normal(size=(classes, d)) * separation
    y = np.arange(n) % classes
    return (means[y] + rng.normal(size=(n, d))) * scale + 3.0, y


def shuffled(y: np.ndarray, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).permutation(y)


# ---- k-NN, leave one out ----

LINE = np.array([[0.0], [1.0], [3.0], [7.0], [8.0]])
LINE_LABELS = np.array(["a", "a", "b", "b", "a"])


def test_knn_loo_counts_the_neighbours_by_hand():
    # k = 1: 0 -> 1 (a, right), 1 -> 0 (a, right), 3 -> 1 (a, wrong), 7 -> 8 (a, wrong), 8 -> 7 (b, wrong)
    assert knn_loo(LINE, LINE_LABELS, k=1) == pytest.approx(2 / 5, abs=0)
    # k = 3: 0 -> {1, 3, 7} = a b b: b, wrong;  1 -> {0, 3, 7} = a b b: b, wrong;  3 -> {1, 0, 7} = a a b: a, wrong;
    #        7 -> {8, 3, 1} = a b a: a, wrong;  8 -> {7, 3, 1} = b b a: b, wrong
    assert knn_loo(LINE, LINE_LABELS, k=3) == 0.0
    # k = 4 (all others): 0 -> a b b a: tie, nearest is 1 (a): right;  1 -> a b b a: tie, nearest 0 (a): right;
    #   3 -> a a b a: a, wrong;  7 -> a b a a: a, wrong;  8 -> b b a a: tie, nearest 7 (b): wrong
    assert knn_loo(LINE, LINE_LABELS, k=4) == pytest.approx(2 / 5, abs=0)


def test_knn_loo_breaks_distance_ties_by_index_and_vote_ties_by_the_nearest_tied_class():
    x = np.array([[0.0], [-1.0], [1.0], [4.0], [-4.0]])
    y = np.array([2, 1, 0, 0, 1])
    # sample 0: samples 1 and 2 both at distance 1; the lower index, 1 (class 1), comes first
    assert transferability._knn_predictions(x, y, 3, 1)[0] == 1
    # k = 2: one vote each for classes 1 and 0; class 1 has the nearest neighbour (index 1 before 2) although
    # class 0 is the smaller label
    assert transferability._knn_predictions(x, y, 3, 2)[0] == 1
    # k = 4 for sample 3: neighbours 2 (d 3, class 0), 0 (d 4, class 2), 1 (d 5, class 1), 4 (d 8, class 1): class 1
    # has the most votes however far its members are
    assert transferability._knn_predictions(x, y, 3, 4)[3] == 1
    # sample 0 with k = 4: neighbours 1, 2 (d 1), 3, 4 (d 4): two votes each for classes 1 and 0; nearest is 1
    assert transferability._knn_predictions(x, y, 3, 4)[0] == 1


def test_knn_loo_leaves_only_the_sample_itself_out():
    x = np.array([[0.0], [0.0], [5.0], [5.0]])
    assert knn_loo(x, np.array([0, 0, 1, 1]), k=1) == 1.0  # each point's twin is at distance 0
    assert knn_loo(x, np.array([0, 1, 1, 0]), k=1) == 0.0


def test_knn_loo_clips_k_to_n_minus_1_and_refuses_k_below_1():
    assert knn_loo(LINE, LINE_LABELS, k=100) == knn_loo(LINE, LINE_LABELS, k=4)
    assert transferability._knn_predictions(LINE, np.array([0, 0, 1, 1, 0]), 2, 4).tolist() == [0, 0, 0, 0, 1]
    with pytest.raises(ValueError, match="k must be at least 1"):
        knn_loo(LINE, LINE_LABELS, k=0)


def _knn_reference(x: np.ndarray, y: np.ndarray, k: int) -> float:
    """Leave-one-out k-NN accuracy with explicit loops and the documented tie rules."""
    right = 0
    for i in range(len(x)):
        others = sorted((float(((x[i] - x[j]) ** 2).sum()), j) for j in range(len(x)) if j != i)[:k]
        votes: dict[int, int] = {}
        for _, j in others:
            votes[y[j]] = votes.get(y[j], 0) + 1
        best = max(votes.values())
        predicted = next(y[j] for _, j in others if votes[y[j]] == best)
        right += predicted == y[i]
    return right / len(x)


@pytest.mark.parametrize("k", [1, 2, 3, 5, 8])
def test_knn_loo_equals_the_loop_on_small_integer_features_full_of_ties(k):
    rng = np.random.default_rng(k)
    x = rng.integers(-2, 3, size=(40, 3)).astype(float)  # few distinct distances: many ties of both kinds
    y = rng.integers(0, 3, size=40)
    assert knn_loo(x, y, k) == _knn_reference(x, y, k)


def test_knn_loo_is_high_on_separated_classes_and_ignores_label_values():
    x, y = blobs(60, 4, 3, separation=6.0)
    assert knn_loo(x, y) == 1.0
    assert knn_loo(x, shuffled(y)) < 0.6
    names = np.array(["zebra", "ant", "moth"])[y]
    assert knn_loo(x, names, k=3) == knn_loo(x, y, k=3)


# ---- SFDA ----

def _sfda_reference(x: np.ndarray, labels: np.ndarray) -> float:
    """SFDA as the authors' code computes it (scipy's generalised eigh on the explicit scatter matrices), with the
    exact largest eigenvalue of S_w instead of three power iterations."""
    x = x.copy()
    classes, y = np.unique(labels, return_inverse=True)
    k, n, d = len(classes), len(y), x.shape[1]
    priors = np.bincount(y) / n

    def fit(x: np.ndarray, shrinkage: float | None) -> tuple[np.ndarray, float, np.ndarray]:
        means = np.array([x[y == c].mean(axis=0) for c in range(k)])
        within = sum(priors[c] * np.cov(x[y == c].T, bias=True) for c in range(k))
        if shrinkage is None:
            shrinkage = max(math.exp(-5 * np.linalg.eigvalsh(within).max()), 1e-10)
        total = np.cov(x.T, bias=True)
        total = (1 - shrinkage) * total + shrinkage * np.trace(total) / d * np.eye(d)
        within = (1 - shrinkage) * within + shrinkage * np.trace(within) / d * np.eye(d)
        _, vectors = scipy.linalg.eigh(total - within, within)
        coef = means @ vectors @ vectors.T
        scores = x @ coef.T - 0.5 * np.diag(means @ coef.T) + np.log(priors)
        probs = np.exp(scores - scores.max(axis=1, keepdims=True))
        return probs / probs.sum(axis=1, keepdims=True), shrinkage, means

    probs, shrinkage, means = fit(x, None)
    probs = np.exp(probs) / np.exp(probs).sum(axis=1, keepdims=True)
    weight = probs[np.arange(n), y][:, None]
    others = (means.sum(axis=0) - means) / (k - 1)
    probs, _, _ = fit(weight * x + (1 - weight) * others[y], shrinkage)
    return float(probs[np.arange(n), y].mean())


@pytest.mark.parametrize("n, d, classes, scale", [(90, 6, 3, 1.0), (90, 6, 3, 0.2), (24, 30, 4, 0.05),
                                                  (40, 12, 2, 0.5)])
def test_sfda_equals_the_fisher_discriminant_computed_directly(n, d, classes, scale):
    """More samples than features (the d x d eigenbasis) and fewer (the n x n Gram matrix, with the shrinkage
    target on the directions the within-class scatter does not span); scales where lambda is far from its floor."""
    x, y = blobs(n, d, classes, separation=0.8, scale=scale, seed=n + d)
    value = sfda(x, y)
    assert 1 / classes < value < 1
    assert value == pytest.approx(_sfda_reference(x, y), rel=1e-9)


def test_sfda_shrinkage_is_exp_of_minus_5_times_the_largest_within_class_eigenvalue():
    # class 0 at (0, 0), (1/2, 0): variances (1/16, 0); class 1 at (3, 1), (3, -1): variances (0, 1), no covariance;
    # S_w = 1/2 diag(1/16, 0) + 1/2 diag(0, 1) = diag(1/32, 1/2), largest eigenvalue 1/2
    x = np.array([[0.0, 0.0], [0.5, 0.0], [3.0, 1.0], [3.0, -1.0]])
    y = np.array([0, 0, 1, 1])
    counts = np.array([2, 2])
    assert transferability._sfda_lda(x, y, counts)[1] == pytest.approx(math.exp(-5 * 0.5), rel=1e-12)
    assert transferability._sfda_lda(x * 2 + 7, y, counts)[1] == pytest.approx(math.exp(-5 * 2.0), rel=1e-12)
    assert transferability._sfda_lda(x * 10, y, counts)[1] == 1e-10  # exp(-5 * 50) is below the floor


def test_sfda_is_higher_on_separated_classes_than_with_shuffled_labels():
    x, y = blobs(90, 6, 3, separation=2.0, scale=0.3)
    separated, mixed = sfda(x, y), sfda(x, shuffled(y))
    assert separated > 0.9 and mixed < 0.6 and separated > mixed


def test_sfda_does_not_depend_on_label_values_or_sample_order():
    x, y = blobs(90, 6, 3, separation=0.8, scale=0.5)
    value = sfda(x, y)
    renamed = np.array(["c", "a", "b"])[y]  # a different class order after sorting
    assert sfda(x, renamed) == pytest.approx(value, abs=1e-12)
    order = np.random.default_rng(2).permutation(len(y))
    assert sfda(x[order], y[order]) == pytest.approx(value, abs=1e-12)


def test_sfda_saturates_with_few_samples_in_high_dimension():
    x, y = blobs(30, 200, 3, separation=0.0)  # no class structure at all
    assert sfda(x, y) > 0.999


# ---- NCTI ----

def _ncti_reference(x: np.ndarray, labels: np.ndarray) -> tuple[float, float, float, float]:
    """NCTI's terms as the authors' code computes them, with scikit-learn's exact PCA; and the shrinkage."""
    classes, y = np.unique(labels, return_inverse=True)
    n = len(y)
    pca = PCA(n_components=min(64, x.shape[1], n - 1), svd_solver="full")
    t = pca.fit_transform(x)
    shrinkage = max(math.exp(-pca.explained_variance_[:32].sum()), 1e-10)
    lda = (LinearDiscriminantAnalysis(solver="svd") if shrinkage == 1e-10
           else LinearDiscriminantAnalysis(solver="eigen", shrinkage=shrinkage))
    z = lda.fit_transform(t, y)
    probs = lda.predict_proba(t)
    seli = np.linalg.norm(z - z.mean(axis=0), ord="nuc")
    ncc = probs[np.arange(n), y].mean()
    vc = math.log(sum(np.linalg.norm(probs[y == c], ord="nuc") for c in range(len(classes))))
    return seli, ncc, vc, shrinkage


@pytest.mark.parametrize("n, d, classes, scale, shrunk", [
    (120, 5, 3, 1.0, True),  # principal variances sum to ~10: lambda ~ 1e-5, the eigen solver
    (120, 5, 3, 0.2, True),
    (30, 40, 3, 0.05, True),
    (200, 100, 4, 1.0, False),  # variances sum past 23: lambda at the 1e-10 floor, the SVD solver
    (30, 40, 3, 1.0, False),  # ... with a singular within-class scatter (n - C < 29 components)
    (12, 3, 2, 5.0, False),
])
def test_ncti_terms_equal_scikit_learns_pca_and_lda(n, d, classes, scale, shrunk):
    x, y = blobs(n, d, classes, separation=1.0, scale=scale, seed=n * d)
    seli, ncc, vc, shrinkage = _ncti_reference(x, y)
    assert (shrinkage > 1e-10) == shrunk
    terms = ncti_terms(x, y)
    assert all(isinstance(t, float) for t in terms)
    assert terms[0] == pytest.approx(seli, rel=1e-9)
    assert terms[1] == pytest.approx(ncc, rel=1e-9)
    assert terms[2] == pytest.approx(vc, rel=1e-7)  # nuclear norms through Gram eigenvalues: ~1e-8 on tiny ones


def test_ncti_terms_keep_64_principal_components_and_ignore_rotations():
    x, y = blobs(150, 90, 3, separation=0.3, scale=0.4)
    rotation = scipy.stats.ortho_group.rvs(90, random_state=3)
    np.testing.assert_allclose(ncti_terms(x @ rotation - 7.0, y), ncti_terms(x, y), rtol=1e-8)
    top = PCA(n_components=64, svd_solver="full").fit_transform(x)  # only the first 64 components count
    np.testing.assert_allclose(ncti_terms(top, y), ncti_terms(x, y), rtol=1e-8)
    assert not np.allclose(ncti_terms(top[:, :32], y), ncti_terms(x, y), rtol=1e-3)


def test_ncti_terms_and_score_are_higher_on_separated_classes_than_with_shuffled_labels():
    x, y = blobs(120, 20, 4, separation=1.5, scale=0.5)
    separated, mixed = ncti_terms(x, y), ncti_terms(x, shuffled(y))
    assert separated[0] > mixed[0] and separated[1] > mixed[1]
    scores = ncti_combine(np.array([separated, mixed]))
    assert scores[0] > scores[1]


def test_ncti_terms_do_not_depend_on_label_values_or_sample_order():
    x, y = blobs(90, 6, 3, separation=0.8, scale=0.5)
    terms = ncti_terms(x, y)
    np.testing.assert_allclose(ncti_terms(x, np.array(["c", "a", "b"])[y]), terms, rtol=1e-12)
    order = np.random.default_rng(2).permutation(len(y))
    np.testing.assert_allclose(ncti_terms(x[order], y[order]), terms, rtol=1e-10)


def test_ncti_combine_min_max_normalises_each_term_over_the_candidates():
    terms = np.array([[1.0, 0.25, 4.0],
                      [3.0, 0.75, 2.0],
                      [2.0, 0.50, 3.0]])
    # normalised columns: (0, 1, 1/2), (0, 1, 1/2), (1, 0, 1/2); NCTI = seli' + ncc' - vc'
    assert ncti_combine(terms).tolist() == [-1.0, 2.0, 0.5]
    assert ncti_combine(terms * [10.0, 1.0, 1.0] + [5.0, 0.0, -1.0]).tolist() == [-1.0, 2.0, 0.5]


def test_ncti_combine_leaves_out_rows_with_nan_and_terms_constant_over_the_pool():
    terms = np.array([[1.0, 0.25, 4.0],
                      [np.nan, 0.9, 0.0],  # an undefined model: NaN, and its finite terms do not widen the range
                      [3.0, 0.75, 2.0],
                      [2.0, 0.50, 3.0]])
    scores = ncti_combine(terms)
    assert np.isnan(scores[1])
    assert scores[[0, 2, 3]].tolist() == [-1.0, 2.0, 0.5]
    constant = np.array([[1.0, 0.5, 4.0], [3.0, 0.5, 2.0]])  # the NCC term is the same for both: contributes 0
    assert ncti_combine(constant).tolist() == [-1.0, 1.0]
    assert ncti_combine(np.array([[1.0, 2.0, 3.0]])).tolist() == [0.0]  # one candidate: every term constant
    assert np.isnan(ncti_combine(np.array([[np.nan, 1.0, 1.0], [1.0, np.inf, 1.0]]))).all()
    assert ncti_combine(np.zeros((0, 3))).shape == (0,)
    with pytest.raises(ValueError, match="expected"):
        ncti_combine(np.zeros((2, 2)))


# ---- undefined inputs ----

SCORERS = [knn_loo, sfda, ncti_terms]


@pytest.mark.parametrize("score", SCORERS)
def test_undefined_on_one_class_one_sample_or_non_finite_features(score):
    x, y = blobs(20, 3, 2, separation=1.0)
    with pytest.raises(UndefinedScore, match="2 classes"):
        score(x, np.zeros(20, dtype=int))
    with pytest.raises(UndefinedScore, match="2 samples"):
        score(x[:1], y[:1])
    for bad in (np.nan, np.inf):
        broken = x.copy()
        broken[3, 1] = bad
        with pytest.raises(UndefinedScore, match="non-finite"):
            score(broken, y)
    with pytest.raises(ValueError, match="expected"):
        score(x[:, 0], y)


@pytest.mark.parametrize("score", [sfda, ncti_terms])
def test_undefined_without_within_class_scatter(score):
    x = np.array([[0.0, 1.0], [0.0, 1.0], [3.0, 2.0], [3.0, 2.0]])
    with pytest.raises(UndefinedScore, match="within-class scatter is zero"):
        score(x, np.array([0, 0, 1, 1]))


# ---- no numpy BLAS ----

def test_the_scores_never_call_numpys_linear_algebra(monkeypatch):
    inputs = [blobs(60, 8, 3, separation=1.0, scale=0.3), blobs(25, 40, 3, separation=1.0, scale=2.0)]

    def values() -> list[float]:
        out = []
        for x, y in inputs:
            out += [knn_loo(x, y), sfda(x, y), *ncti_terms(x, y)]
        return out + ncti_combine(np.array(out[2:5] + out[7:10]).reshape(2, 3)).tolist()

    reference = values()

    def blocked(*args, **kwargs):
        raise AssertionError("numpy's BLAS called")

    for module, name in [(np, "dot"), (np, "matmul"), (np, "einsum"), (np, "inner"), (np, "tensordot"),
                         (np.linalg, "eigh"), (np.linalg, "solve"), (np.linalg, "inv"), (np.linalg, "svd"),
                         (np.linalg, "norm"), (np.linalg, "eigvalsh"), (scipy.linalg, "eigh")]:
        monkeypatch.setattr(module, name, blocked)
    with pytest.raises(AssertionError):
        np.linalg.eigh(np.eye(2))
    assert values() == reference


def test_the_scores_module_has_no_numpy_products_or_numpy_linalg_in_its_source():
    """numpy's `@` and ndarray.dot cannot be patched: looked for in the source instead."""
    tree = ast.parse(Path(transferability.__file__).read_text())
    for node in ast.walk(tree):
        assert not (isinstance(node, (ast.BinOp, ast.AugAssign)) and isinstance(node.op, ast.MatMult)), node.lineno
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            assert node.func.attr not in {"dot", "vdot", "inner", "matmul", "einsum", "tensordot"}, node.lineno
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) and node.value.attr == "linalg":
            assert node.attr == "LinAlgError", node.lineno  # numpy's exception class, caught, is no linear algebra
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [alias.name for alias in node.names] + [getattr(node, "module", None) or ""]
            assert not any(name.split(".")[0] in {"numpy", "scipy"} and "linalg" in name for name in names)
