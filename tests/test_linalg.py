"""taskspace.linalg (numpy in and out, torch's pinned MKL inside) and that no table-making code calls numpy's BLAS."""

from __future__ import annotations

import ast
import json
import math
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from taskspace import linalg

from conftest import REPO

PACKAGE = REPO / "lib" / "taskspace"

# The modules whose numpy linear algebra reaches a table or array: it goes through taskspace.linalg.
ROUTED = ["transferability.py", "transfer.py", "embeddings/domain.py", "embeddings/ttk.py", "embeddings/distances.py"]

# Functions of those modules whose products (`@`, einsum) are of torch tensors, pinned already, never numpy arrays.
TORCH_PRODUCTS = {("transfer.py", "linear_probe_error"), ("embeddings/ttk.py", "_logdet_identity_plus"),
                  ("embeddings/distances.py", "_d_sym_between_tensors")}


# ---- known answers ----

def test_matmul_follows_numpys_rules_exactly_on_small_integers():
    a = np.arange(6.0).reshape(2, 3)
    b = np.array([[1.0, -1.0], [2.0, 0.0], [0.0, 3.0]])
    out = linalg.matmul(a, b)
    assert type(out) is np.ndarray and out.dtype == np.float64
    assert np.array_equal(out, [[2.0, 6.0], [11.0, 12.0]])
    assert np.array_equal(linalg.matmul(a, np.array([1.0, 0.0, -1.0])), [-2.0, -2.0])  # matrix x vector
    assert np.array_equal(linalg.matmul(np.array([1.0, 1.0]), a), [3.0, 5.0, 7.0])  # vector x matrix
    assert linalg.matmul(a.T, a).shape == (3, 3)  # transposed views
    assert linalg.matmul(np.ones((2, 3), np.float32), np.ones((3, 1), np.int64)).dtype == np.float64


def test_dot_of_two_vectors():
    assert linalg.dot(np.array([1.0, 2.0, 3.0]), np.array([4.0, 5.0, 6.0])) == 32.0
    assert isinstance(linalg.dot(np.ones(3), np.ones(3)), float)


@pytest.mark.parametrize("rows", [1, 3, 64, 150])  # one block, and several with a ragged last one (GRAM_BLOCK 64)
def test_gram_is_x_xt_exactly_symmetric(rows):
    x = np.random.default_rng(rows).normal(size=(rows, 40))
    g = linalg.gram(x)
    assert g.shape == (rows, rows) and g.dtype == np.float64
    assert np.array_equal(g, g.T)
    np.testing.assert_allclose(g, x @ x.T, rtol=1e-12, atol=1e-12)
    assert np.array_equal(linalg.gram(np.array([[1.0, 2.0], [3.0, -1.0]])), [[5.0, 1.0], [1.0, 10.0]])
    assert linalg.gram(np.zeros((0, 4))).shape == (0, 0)


def test_eigh_known_spectrum_and_reconstruction():
    values, vectors = linalg.eigh(np.array([[2.0, 1.0], [1.0, 2.0]]))
    np.testing.assert_allclose(values, [1.0, 3.0], rtol=0, atol=1e-15)
    np.testing.assert_allclose(np.abs(vectors), np.full((2, 2), math.sqrt(0.5)), rtol=0, atol=1e-15)
    assert vectors[0, 0] == pytest.approx(-vectors[1, 0]) and vectors[0, 1] == pytest.approx(vectors[1, 1])
    a = np.random.default_rng(1).normal(size=(7, 7))
    a = a + a.T
    values, vectors = linalg.eigh(a)
    assert np.all(np.diff(values) >= 0)
    np.testing.assert_allclose(vectors @ np.diag(values) @ vectors.T, a, atol=1e-12)
    np.testing.assert_allclose(vectors.T @ vectors, np.eye(7), atol=1e-12)
    np.testing.assert_allclose(values, np.linalg.eigvalsh(a), rtol=1e-12, atol=1e-12)
    upper_garbage = np.tril(a) + np.triu(np.full((7, 7), 1e9), 1)  # like numpy's: the lower triangle only
    assert np.array_equal(linalg.eigh(upper_garbage)[0], values)


def test_eigh_raises_numpys_error():
    with pytest.raises(np.linalg.LinAlgError):
        linalg.eigh(np.full((3, 3), np.nan))


def test_logdet_spd_known_values_and_a_matrix_that_is_not_positive_definite():
    assert linalg.logdet_spd(np.diag([2.0, 3.0, 4.0])) == pytest.approx(math.log(24.0), rel=1e-15)
    assert linalg.logdet_spd(np.array([[4.0, 2.0], [2.0, 3.0]])) == pytest.approx(math.log(8.0), rel=1e-15)
    assert linalg.logdet_spd(np.eye(5)) == 0.0
    x = np.random.default_rng(2).normal(size=(30, 8))
    assert linalg.logdet_spd(np.eye(8) + x.T @ x) == pytest.approx(np.linalg.slogdet(np.eye(8) + x.T @ x)[1],
                                                                  rel=1e-12)
    with pytest.raises(np.linalg.LinAlgError, match="not positive definite"):
        linalg.logdet_spd(np.array([[1.0, 2.0], [2.0, 1.0]]))


def test_inputs_are_left_alone_and_read_only_or_reversed_views_are_accepted_silently():
    a = np.arange(12.0).reshape(3, 4)
    before = a.copy()
    frozen = a.copy()
    frozen.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.array_equal(linalg.gram(frozen), linalg.gram(a))
        assert np.array_equal(linalg.matmul(a[::-1], a.T), linalg.matmul(a[::-1].copy(), a.T))
        assert np.array_equal(linalg.gram(np.broadcast_to(a[0], (2, 4))), linalg.gram(np.stack([a[0], a[0]])))
    assert np.array_equal(a, before)


def test_the_same_bits_whatever_the_arrays_alignment(one_thread):
    """numpy aligns arrays to 16 bytes, MKL recommends 64: its reproducible mode must not depend on it."""
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=(150, 37)), rng.normal(size=(37, 5))

    def shifted(a: np.ndarray, offset: int) -> np.ndarray:
        view = np.empty(a.size + 8)[offset : offset + a.size].reshape(a.shape)
        view[...] = a
        return view

    def results(x: np.ndarray, y: np.ndarray) -> list:
        spd = linalg.gram(x.T) + np.eye(37)
        return [linalg.matmul(x, y), linalg.gram(x), *linalg.eigh(spd), linalg.logdet_spd(spd),
                linalg.dot(x[:, 0], x[:, 1])]

    reference = results(x, y)
    for offset in range(1, 8):
        assert all(np.array_equal(a, b) for a, b in zip(results(shifted(x, offset), shifted(y, offset)), reference))


def test_importing_linalg_imports_no_torch():
    code = "import sys, taskspace.linalg, taskspace.transferability; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ---- no numpy BLAS where tables are made ----

def _matmul_sites(path: Path) -> set[tuple[str, str]]:
    """(module, function) of every `@` and every ``.dot``/``.einsum``/... call in ``path``: numpy's `@` and
    ``ndarray.dot`` call BLAS and cannot be patched, so they are looked for in the source."""
    tree = ast.parse(path.read_text())
    name = str(path.relative_to(PACKAGE))
    sites = set()

    def visit(node: ast.AST, function: str) -> None:
        for child in ast.iter_child_nodes(node):
            inner = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else function
            if isinstance(child, (ast.BinOp, ast.AugAssign)) and isinstance(child.op, ast.MatMult):
                sites.add((name, inner))
            if (isinstance(child, ast.Call) and isinstance(child.func, ast.Attribute)
                    and child.func.attr in {"dot", "vdot", "inner", "matmul", "einsum", "tensordot"}):
                sites.add((name, inner))
            visit(child, inner)

    visit(tree, "<module>")
    return sites


def test_routed_modules_multiply_numpy_arrays_only_through_linalg():
    sites = set().union(*(_matmul_sites(PACKAGE / module) for module in ROUTED))
    assert sites <= TORCH_PRODUCTS, f"products of what may be numpy arrays: {sorted(sites - TORCH_PRODUCTS)}"
    assert sites == TORCH_PRODUCTS, f"no product left in {sorted(TORCH_PRODUCTS - sites)}: update TORCH_PRODUCTS"
    for module in ROUTED:
        assert not _linalg_uses(PACKAGE / module), module


def _linalg_uses(path: Path) -> list[str]:
    """numpy.linalg or scipy.linalg functions used in ``path`` (numpy's LinAlgError, an exception, is not one)."""
    uses = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            uses += [alias.name for alias in node.names if alias.name.endswith(".linalg")]
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[-1] == "linalg" \
                and node.module.split(".")[0] in {"numpy", "scipy"}:
            uses += [f"{node.module}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) \
                and node.value.attr == "linalg" and isinstance(node.value.value, ast.Name) \
                and node.value.value.id in {"np", "numpy", "scipy"} and node.attr != "LinAlgError":
            uses.append(f"{node.value.value.id}.linalg.{node.attr}")
    return uses


def _values() -> dict[str, list[str]]:
    """Every table-making function of the routed modules on inputs that take each branch, and the statistics of the
    selection tables, as exact hex floats."""
    import torch

    from taskspace import transferability as t
    from taskspace.embeddings import distances
    from taskspace.embeddings.domain import cosine_distance_matrix
    from taskspace.embeddings.ttk import kernel_matrix
    from taskspace.selection import spearman
    from taskspace.transfer import fit_logistic, linear_probe_error
    from taskspace.uncertainty import bootstrap_interval, wilcoxon_p

    rng = np.random.default_rng(0)
    out = {}
    for n, d in [(60, 8), (12, 30)]:  # more samples than features, and fewer (the other Gram matrix)
        x = rng.normal(size=(n, d)) * np.linspace(0.5, 2.0, d) + 1.0
        y = np.arange(n) % 3
        probs = rng.dirichlet(np.ones(5), size=n)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # the H-score is undefined for n <= d: NaN
            out[f"scores {n}x{d}"] = list(t.compute_scores(list(t.SCORES), x, y, probs).values())
        out[f"direct {n}x{d}"] = [t.leep(probs, y), t.nce(probs, y), t.hscore_shrunk(x, y), t.logme(x, y),
                                  t.transrate(x, y), t.ledoit_wolf_shrinkage(x),
                                  *t.logme_evidence(x, rng.normal(size=n))]
        if n > d:
            out[f"hscore {n}x{d}"] = [t.hscore(x, y)]
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(40, 6, generator=gen, dtype=torch.float64)
    y = torch.arange(40) % 3
    w, b, iterations = fit_logistic(x, y, 3, l2=0.1, max_iter=200)
    out["fit_logistic"] = [*w.flatten().tolist(), *b.tolist(), iterations]
    out["linear_probe_error"] = list(linear_probe_error(x[:30], y[:30], x[30:], y[30:], 3, 0.1, 200).values())
    fisher = rng.random((5, 20))
    trivial = rng.random((5, 20))
    out["domain"] = cosine_distance_matrix(fisher - 0.5).ravel().tolist()
    out["ttk"] = kernel_matrix([rng.normal(size=(2, 16)) for _ in range(4)]).ravel().tolist()
    out["d_sym"] = distances.d_sym_matrix(fisher).ravel().tolist()
    out["d_asym"] = distances.d_asym_matrix(fisher, trivial, 0.3).ravel().tolist()
    out["norm_asym"] = distances.norm_asym_matrix(fisher, 0.3).ravel().tolist()
    out["d_asym_between"] = distances.d_asym_between(fisher[:2], trivial[:2], fisher, 0.3).ravel().tolist()
    # elementwise numpy and scipy.stats, left as they are: shown here not to reach numpy's BLAS either
    differences = rng.normal(size=12)
    out["statistics"] = [spearman(fisher[0], fisher[1]), *bootstrap_interval(differences, resamples=200),
                         wilcoxon_p(differences), wilcoxon_p(np.round(differences, 1))]
    return {k: [float(v).hex() for v in values] for k, values in out.items()}


# Run in a fresh process: numpy's and scipy's linear algebra replaced by functions that raise, before any of
# taskspace's computing modules load (so that a `from numpy.linalg import ...` in them would get the replacement).
_BLOCKED_RUN = """
import json, sys
import taskspace
import numpy, numpy.linalg, scipy.linalg, scipy.stats, torch  # scipy.stats asks for BLAS handles on import

def blocked(name):
    def call(*args, **kwargs):
        raise AssertionError("numpy's BLAS called: " + name)
    return call

replaced = []
for module, names in [(numpy.linalg, numpy.linalg.__all__), (scipy.linalg, scipy.linalg.__all__),
                      (numpy, ["dot", "vdot", "inner", "matmul", "einsum", "einsum_path", "tensordot", "cov",
                               "corrcoef", "vecdot", "matvec", "vecmat"])]:
    for name in names:
        obj = getattr(module, name, None)
        if callable(obj) and not isinstance(obj, type):
            setattr(module, name, blocked(module.__name__ + "." + name))
            replaced.append(module.__name__ + "." + name)
try:
    numpy.linalg.norm(numpy.ones(2))
    raise SystemExit("numpy.linalg.norm still works: nothing was blocked")
except AssertionError:
    pass
torch.set_num_threads(1)
sys.path.insert(0, sys.argv[1])
from test_linalg import _values
print(json.dumps({"replaced": replaced, "values": _values()}))
"""


def test_table_making_functions_give_the_same_values_with_numpys_linear_algebra_blocked(one_thread):
    reference = _values()
    proc = subprocess.run([sys.executable, "-c", _BLOCKED_RUN, str(Path(__file__).parent)], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert {"numpy.linalg.eigh", "numpy.linalg.slogdet", "numpy.dot", "numpy.einsum", "scipy.linalg.eigh"} <= set(
        result["replaced"])
    assert result["values"] == reference
