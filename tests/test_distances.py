"""Task2Vec distances (sect. 3.3) and PseudoTask's norm-based asymmetric score, on hand-made embeddings."""

from __future__ import annotations

import numpy as np
import pytest

from taskspace.embeddings.distances import complexity, d_asym_matrix, d_sym, d_sym_matrix, norm_asym_matrix


def test_d_sym_of_identical_embeddings_is_zero():
    f = np.random.default_rng(0).gamma(1.0, size=50)
    assert d_sym(f, f) == pytest.approx(0.0, abs=1e-12)
    assert d_sym(f, 3.0 * f) == pytest.approx(0.0, abs=1e-12)  # a global scale is not a difference
    g = f.copy()
    g[:10] *= 5.0
    assert d_sym(f, g) > 0.01


def test_d_sym_known_values():
    assert d_sym(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == pytest.approx(1.0)
    # Fa/(Fa+Fb) = [1/2, 1/4], Fb/(Fa+Fb) = [1/2, 3/4]
    expected = 1 - (0.25 + 0.1875) / np.sqrt((0.25 + 0.0625) * (0.25 + 0.5625))
    assert d_sym(np.array([1.0, 1.0]), np.array([1.0, 3.0])) == pytest.approx(expected, rel=1e-12)


def test_d_sym_matrix_is_symmetric_and_matches_pairs():
    v = np.random.default_rng(1).gamma(0.5, size=(5, 30))
    m = d_sym_matrix(v)
    np.testing.assert_array_equal(m, m.T)
    np.testing.assert_array_equal(np.diag(m), 0.0)
    for i in range(5):
        for j in range(5):
            if i != j:
                assert m[i, j] == pytest.approx(d_sym(v[i], v[j]), rel=1e-12)


def test_d_asym_brings_complex_experts_closer_by_alpha_times_complexity():
    rng = np.random.default_rng(2)
    t0 = np.full(40, 0.1)
    simple = t0 + rng.gamma(1.0, size=40) * 0.01  # barely above the trivial embedding
    complex_ = t0 + rng.gamma(1.0, size=40) * 5.0  # far from it
    v = np.stack([simple, complex_])
    c = complexity(v, t0)
    assert c[1] > c[0] > 0
    alpha = 0.15
    asym = d_asym_matrix(v, t0, alpha)
    # a -> b is the score of a's expert on b: the complex task's expert comes closer to the simple task than
    # the other way round, by exactly alpha * (c_complex - c_simple)
    assert asym[1, 0] - asym[0, 1] == pytest.approx(-alpha * (c[1] - c[0]), rel=1e-12)
    assert asym[1, 0] < asym[0, 1]


def test_per_task_trivial_embeddings_are_used_row_by_row():
    v = np.array([[1.0, 2.0], [3.0, 1.0]])
    t = np.array([[1.0, 1.0], [0.5, 0.5]])
    c = complexity(v, t)
    assert c[0] == pytest.approx(d_sym(v[0], t[0])) and c[1] == pytest.approx(d_sym(v[1], t[1]))


def test_pseudotask_norm_asymmetry():
    v = np.array([[1.0, 1.0, 1.0], [4.0, 4.0, 4.0], [1.0, 2.0, 3.0]])
    norms = np.linalg.norm(v, axis=1)
    absolute = norm_asym_matrix(v, 0.2, relative=False)
    np.testing.assert_allclose(absolute, d_sym_matrix(v) - 0.2 * norms[:, None])
    relative = norm_asym_matrix(v, 0.2, relative=True)
    np.testing.assert_allclose(relative, d_sym_matrix(v) - 0.2 * (norms / norms.mean())[:, None])
    relative_scaled = norm_asym_matrix(10 * v, 0.2, relative=True)
    np.testing.assert_allclose(relative_scaled, relative)  # unit-free: scaling every embedding changes nothing


def test_bad_embeddings_are_rejected():
    with pytest.raises(FloatingPointError):
        d_sym_matrix(np.array([[1.0, np.nan], [1.0, 1.0]]))
    with pytest.raises(ValueError, match="non-negative"):
        d_sym_matrix(np.array([[1.0, -1.0], [1.0, 1.0]]))
