"""Library numerics against the package's own, side by side in one run: the linear probe's L-BFGS, Spearman's rank
correlation and the cosine distance matrix of the domain embedding.

    python benchmarks/bench_numerics.py [--repeats 7] [--threads 1] [--config config.yaml]

Each candidate runs on the same inputs, in alternating order repeat after repeat; the times printed are medians and
the ratio is library / own (below 1: the library is faster). Results are compared to the last bit, because the
demo's tables must stay identical: the transfer matrix records each pair's test error and the L-BFGS iterations
used, the selection scores record Spearman's correlations, the domain embedding's distance table the cosine
distances. A library version is adopted only when it is not slower (ratio <= 1 + --noise) and its results are
identical; the last lines print each decision with the numbers behind it.

Every BLAS and OpenMP pool is limited to --threads (the libraries are imported before the limit is set, so that
theirs are limited too). The linear probes are fitted in float64 on:
  * the demo's 24 tasks (config.yaml: 3-8 classes, 12-448 training images at 32 px), features of the ResNet-18
    probe's seeded random initialisation (512 dimensions), standardised as ``linear_probe_error`` does;
  * larger synthetic problems: 512-dimensional rectified Gaussian class clusters, 1,000-4,000 training samples,
    16-64 classes.
The candidates: the package's L-BFGS (``taskspace.transfer.fit_logistic``), ``scipy.optimize.minimize`` (L-BFGS-B
on the same objective and gradient, same memory, gradient tolerance and iteration cap) and
``sklearn.linear_model.LogisticRegression`` (lbfgs, C = 1 / (l2 n): the same penalised mean cross-entropy).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import yaml
from scipy.optimize import minimize
from scipy.spatial.distance import pdist, squareform
from scipy.stats import spearmanr
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression
from threadpoolctl import threadpool_info, threadpool_limits

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "lib"))

from taskspace.data import build_task, plan_tasks  # noqa: E402
from taskspace.embeddings.domain import cosine_distance_matrix  # noqa: E402
from taskspace.plan import validate_config  # noqa: E402
from taskspace.probes import seeded_network  # noqa: E402
from taskspace.selection import spearman  # noqa: E402
from taskspace.transfer import (  # noqa: E402
    TransferSettings, _logistic_objective, fit_logistic, image_features, standardize)

TOL = 1e-6  # fit_logistic's default gradient tolerance


class Problem:
    """A standardised linear-probe problem: train and test features and labels."""

    def __init__(self, name: str, x: np.ndarray, y: np.ndarray, tx: np.ndarray, ty: np.ndarray, classes: int):
        train, test = standardize(torch.from_numpy(x), torch.from_numpy(tx))
        self.name, self.classes = name, classes
        self.x, self.y, self.tx, self.ty = train.numpy(), y, test.numpy(), ty


class Fit:
    """What a solver returned: the test error, the iterations it used and the objective at its solution."""

    def __init__(self, problem: Problem, w: np.ndarray, b: np.ndarray, iterations: int, l2: float):
        self.test_error = 1.0 - float(((problem.tx @ w + b).argmax(1) == problem.ty).mean())
        self.iterations = iterations
        onehot = np.eye(problem.classes)[problem.y]
        self.objective = _logistic_objective(problem.x, onehot, l2)(np.concatenate([w.ravel(), b]))[0]


def fit_own(p: Problem, l2: float, max_iter: int) -> Fit:
    """The package's L-BFGS."""
    w, b, iterations = fit_logistic(torch.from_numpy(p.x), torch.from_numpy(p.y), p.classes, l2, max_iter, TOL)
    return Fit(p, w.numpy(), b.numpy(), iterations, l2)


def fit_scipy(p: Problem, l2: float, max_iter: int) -> Fit:
    """scipy's L-BFGS-B on the same objective, gradient tolerance, memory and iteration cap."""
    d, c = p.x.shape[1], p.classes
    f = _logistic_objective(p.x, np.eye(c)[p.y], l2)
    res = minimize(f, np.zeros(d * c + c), jac=True, method="L-BFGS-B",
                   options={"maxiter": max_iter, "gtol": TOL, "ftol": 1e-15, "maxcor": 10})
    return Fit(p, res.x[: d * c].reshape(d, c), res.x[d * c :], int(res.nit), l2)


def fit_sklearn(p: Problem, l2: float, max_iter: int) -> Fit:
    """scikit-learn's multinomial logistic regression (lbfgs) with the same penalty on the mean cross-entropy."""
    model = LogisticRegression(C=1.0 / (l2 * len(p.y)), tol=TOL, max_iter=max_iter)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(p.x, p.y)
    w = np.zeros((p.x.shape[1], p.classes))
    b = np.zeros(p.classes)
    w[:, model.classes_] = model.coef_.T
    b[model.classes_] = model.intercept_
    return Fit(p, w, b, int(model.n_iter_.max()), l2)


SOLVERS: dict[str, Callable[[Problem, float, int], Fit]] = {
    "own L-BFGS": fit_own, "scipy L-BFGS-B": fit_scipy, "sklearn lbfgs": fit_sklearn}


def alternating(candidates: dict[str, Callable[[], object]], repeats: int) -> tuple[dict[str, float], dict]:
    """Median seconds of each candidate over ``repeats`` rounds, the order reversed every other round; and the
    result each returned in its first round."""
    times: dict[str, list[float]] = {name: [] for name in candidates}
    results: dict[str, object] = {}
    names = list(candidates)
    for r in range(repeats):
        for name in names if r % 2 == 0 else names[::-1]:
            start = time.perf_counter()
            out = candidates[name]()
            times[name].append(time.perf_counter() - start)
            results.setdefault(name, out)
    return {name: statistics.median(t) for name, t in times.items()}, results


def demo_problems(config_path: Path, threads: int) -> tuple[list[Problem], dict[str, np.ndarray], TransferSettings]:
    """The demo's tasks with the random probe's features; the domain embeddings (mean features) of the tasks; the
    transfer section."""
    config = validate_config(yaml.safe_load(config_path.read_text()))
    transfer = TransferSettings.from_config(config["transfer"])
    torch.set_num_threads(threads)
    net = seeded_network(config["probe"]["arch"], 10, int(config["seed"])).eval()
    normalization = config["probe"]["normalization"]
    problems, embeddings = [], {}
    for spec in plan_tasks(config["data"]):
        if spec.role != "task":
            continue
        data = build_task(config["data"], spec.name)
        feats = image_features(net, torch.from_numpy(np.ascontiguousarray(data.images)), normalization,
                               transfer.batch_size, torch.device("cpu")).numpy()
        tr = data.is_train
        problems.append(Problem(spec.name, feats[tr], data.labels[tr], feats[~tr], data.labels[~tr],
                                len(data.class_names)))
        embeddings[spec.name] = feats[tr].mean(0)
    return problems, embeddings, transfer


def synthetic_problem(n_train: int, classes: int, separation: float, seed: int, dim: int = 512) -> Problem:
    """Rectified Gaussian class clusters in ``dim`` dimensions, 20 test samples per class."""
    rng = np.random.default_rng(seed)
    means = rng.standard_normal((classes, dim)) * separation
    y = np.concatenate([rng.integers(0, classes, n_train), np.repeat(np.arange(classes), 20)])
    x = np.maximum(means[y] + rng.standard_normal((len(y), dim)), 0.0)
    return Problem(f"synthetic {n_train} x {dim}, {classes} classes", x[:n_train], y[:n_train], x[n_train:],
                   y[n_train:], classes)


def bench_probes(demo: list[Problem], larger: list[Problem], l2: float, max_iter: int, repeats: int,
                 noise: float) -> str:
    """Time and compare the solvers; print a table; return the decision."""
    own = "own L-BFGS"
    print(f"\n## Linear probe (l2 {l2}, max_iter {max_iter}, gradient tolerance {TOL}, {repeats} alternating repeats)\n")
    print("| problem | solver | median s | ratio to own | iterations (own) | objective - own | test errors changed |")
    print("|---|---|---|---|---|---|---|")
    totals = {name: 0.0 for name in SOLVERS}
    changed_errors = {name: 0 for name in SOLVERS}
    changed_iterations = {name: 0 for name in SOLVERS}
    n_fits = 0
    group_ratios: dict[str, list[float]] = {name: [] for name in SOLVERS}
    groups = [("demo: 24 tasks (sum of per-task medians)", demo)] + [(p.name, [p]) for p in larger]
    for label, problems in groups:
        seconds = {name: 0.0 for name in SOLVERS}
        iterations = {name: 0 for name in SOLVERS}
        objective = {name: 0.0 for name in SOLVERS}
        errors = {name: 0 for name in SOLVERS}
        for p in problems:
            med, fits = alternating({name: (lambda s=s, p=p: s(p, l2, max_iter)) for name, s in SOLVERS.items()},
                                    repeats)
            ref = fits[own]
            for name in SOLVERS:
                seconds[name] += med[name]
                iterations[name] += fits[name].iterations
                objective[name] = max(objective[name], fits[name].objective - ref.objective, key=abs)
                errors[name] += fits[name].test_error != ref.test_error
                changed_iterations[name] += fits[name].iterations != ref.iterations
            n_fits += 1
        for name in SOLVERS:
            totals[name] += seconds[name]
            changed_errors[name] += errors[name]
            group_ratios[name].append(seconds[name] / seconds[own])
            print(f"| {label} | {name} | {seconds[name]:.3f} | {seconds[name] / seconds[own]:.2f} | "
                  f"{iterations[name]} ({iterations[own]}) | {objective[name]:+.1e} | {errors[name]} of "
                  f"{len(problems)} |")
    print(f"\nall {n_fits} problems, summed medians: "
          + ", ".join(f"{name} {totals[name]:.2f} s (ratio {totals[name] / totals[own]:.2f}, iteration counts "
                      f"changed on {changed_iterations[name]}, test errors on {changed_errors[name]})"
                      for name in SOLVERS))
    verdicts = []
    for name in SOLVERS:
        if name == own:
            continue
        ratio = totals[name] / totals[own]
        same = changed_errors[name] == 0 and changed_iterations[name] == 0
        verdicts.append((ratio <= 1 + noise and same, name, ratio, changed_errors[name], changed_iterations[name]))
    adopt = [v for v in verdicts if v[0]]
    if adopt:
        _, name, ratio, _, _ = min(adopt, key=lambda v: v[2])
        return f"linear probe: adopt {name}: ratio {ratio:.2f} to the own L-BFGS, identical test errors and iterations"
    return "linear probe: keep the own L-BFGS: " + "; ".join(
        f"{name} ratio {ratio:.2f} overall ({', '.join(f'{r:.2f}' for r in group_ratios[name])} on the demo and "
        f"the larger problems), changes {errs} of {n_fits} test errors and {its} of {n_fits} iteration counts"
        for _, name, ratio, errs, its in verdicts)


def spearman_scipy(x: np.ndarray | list, y: np.ndarray | list) -> float:
    """scipy.stats.spearmanr behind the package's contract: NaN below 3 points or for a constant input."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if len(x) != len(y):
        raise ValueError(f"spearman: inputs differ in length ({len(x)} vs {len(y)})")
    if len(x) < 3:
        return float("nan")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(np.clip(spearmanr(x, y).statistic, -1.0, 1.0))


def spearman_inputs(n_groups: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """The tests' inputs and score-stage-like ones: per target, the 23 candidate experts' distances (or their
    shortlist order) against their test errors (fractions of the test set, with ties)."""
    rng = np.random.default_rng(seed)
    cases = [([1, 2, 3, 4], [10, 20, 30, 40]), ([1, 2, 3, 4], [4, 3, 2, 1]), ([1, 2, 3, 4], [1, 3, 2, 4]),
             ([1, 2, 3], [0.2, 0.4, 0.1])]
    out = [(np.asarray(x, dtype=float), np.asarray(y, dtype=float)) for x, y in cases]
    for g in range(n_groups):
        n = int(rng.integers(3, 24)) if g % 4 == 0 else 23
        n_test = int(rng.integers(3, 9)) * 20
        errors = rng.binomial(n_test, rng.uniform(0.05, 0.8), n) / n_test
        x = np.arange(n, dtype=float) if g % 3 == 0 else rng.gamma(2.0, 0.1, n)
        out.append((x, errors))
    return out


def bench_spearman(repeats: int, noise: float) -> str:
    """Time and compare Spearman's correlation; print the edge cases; return the decision."""
    inputs = spearman_inputs(3000)
    print(f"\n## Spearman rank correlation ({len(inputs)} inputs: the tests' and score-stage-like ones)\n")
    edge = {"2 points": ([1, 2], [1, 2]), "constant": ([1, 1, 1], [1, 2, 3]), "NaN": ([1, np.nan, 3], [1, 2, 3]),
            "tied ranks": ([1, 2, 3, 4], [5, 5, 6, 6])}
    for label, (x, y) in edge.items():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            raw = float(spearmanr(x, y).statistic)
        print(f"{label}: own {spearman(x, y)!r}, scipy.stats.spearmanr {raw!r}"
              + (f" (warns {caught[0].category.__name__})" if caught else ""))
    candidates = {"own": lambda: [spearman(x, y) for x, y in inputs],
                  "scipy.stats.spearmanr": lambda: [spearman_scipy(x, y) for x, y in inputs]}
    med, results = alternating(candidates, repeats)
    own, lib = np.array(results["own"]), np.array(results["scipy.stats.spearmanr"])
    both = ~(np.isnan(own) & np.isnan(lib))
    differ = int((own[both] != lib[both]).sum())
    largest = float(np.nanmax(np.abs(own - lib)))
    ratio = med["scipy.stats.spearmanr"] / med["own"]
    per_call = {k: 1e6 * v / len(inputs) for k, v in med.items()}
    print(f"\nper call: own {per_call['own']:.1f} us, scipy.stats.spearmanr {per_call['scipy.stats.spearmanr']:.1f} us"
          f" (ratio {ratio:.2f}); results differ on {differ} of {len(inputs)} inputs, by at most {largest:.1e}")
    if ratio <= 1 + noise and differ == 0:
        return f"spearman: adopt scipy.stats.spearmanr: ratio {ratio:.2f}, identical on all {len(inputs)} inputs"
    return (f"spearman: keep the own: scipy.stats.spearmanr ratio {ratio:.2f} ({per_call['own']:.1f} -> "
            f"{per_call['scipy.stats.spearmanr']:.1f} us a call), differs on {differ} of {len(inputs)} inputs by at "
            f"most {largest:.1e}")


def cosine_scipy(vectors: np.ndarray) -> np.ndarray:
    """scipy's pdist 'cosine' as a square matrix, with the package's conventions: clipped to [0, 2], a zero row at
    distance 1 from every row."""
    zero = ~(np.linalg.norm(vectors, axis=1) > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        d = squareform(pdist(vectors, "cosine"))
    d[zero, :] = 1.0
    d[:, zero] = 1.0
    return np.clip(d, 0.0, 2.0)


def bench_cosine(demo_embeddings: np.ndarray, repeats: int, noise: float) -> str:
    """Time and compare the cosine distance matrices (off the diagonal, which the distance table leaves out)."""
    rng = np.random.default_rng(0)
    larger = np.abs(rng.standard_normal((1000, 512))) * rng.random(512)
    larger[7] = 0.0
    print("\n## Cosine distance matrix (off-diagonal entries: the distance table's)\n")
    print("| embeddings | own median ms | scipy median ms | ratio | entries differing | largest difference |")
    print("|---|---|---|---|---|---|")
    ratios, differ, largest = [], 0, 0.0
    for label, vectors in (("demo: 24 tasks x 512", demo_embeddings), ("1000 x 512, one zero row", larger)):
        reps = repeats * max(1, 2000 // len(vectors))
        med, results = alternating({"own": lambda v=vectors: cosine_distance_matrix(v),
                                    "scipy": lambda v=vectors: cosine_scipy(v)}, reps)
        off = ~np.eye(len(vectors), dtype=bool)
        a, b = results["own"][off], results["scipy"][off]
        n, big = int((a != b).sum()), float(np.abs(a - b).max())
        differ, largest = differ + n, max(largest, big)
        ratios.append(med["scipy"] / med["own"])
        print(f"| {label} | {1e3 * med['own']:.3f} | {1e3 * med['scipy']:.3f} | {ratios[-1]:.2f} | "
              f"{n} of {off.sum()} | {big:.1e} |")
    shown = ", ".join(f"{r:.2f}" for r in ratios)
    if max(ratios) <= 1 + noise and differ == 0:
        return f"cosine distances: adopt scipy pdist: ratios {shown}, identical"
    return (f"cosine distances: keep the own: scipy pdist + squareform ratios {shown} (demo, 1000 rows), "
            f"{differ} off-diagonal entries differ, by at most {largest:.1e}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=REPO / "config.yaml", help="the demo's config")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=1, help="BLAS and torch threads")
    ap.add_argument("--noise", type=float, default=0.03, help="a ratio up to 1 + NOISE counts as not slower")
    args = ap.parse_args()
    warnings.simplefilter("ignore", UserWarning)
    with threadpool_limits(limits=args.threads):
        start = time.perf_counter()
        demo, embeddings, transfer = demo_problems(args.config, args.threads)
        larger = [synthetic_problem(1000, 16, 0.15, 1), synthetic_problem(4000, 64, 0.15, 2)]
        pools = ", ".join(sorted({f"{p['internal_api']} {p['num_threads']}" for p in threadpool_info()}))
        print(f"inputs ready in {time.perf_counter() - start:.1f} s; threads: {pools}; demo tasks: "
              f"{min(len(p.y) for p in demo)}-{max(len(p.y) for p in demo)} training images, "
              f"{min(p.classes for p in demo)}-{max(p.classes for p in demo)} classes, {demo[0].x.shape[1]} features")
        decisions = [
            bench_probes(demo, larger, transfer.l2, transfer.max_iter, args.repeats, args.noise),
            bench_spearman(args.repeats, args.noise),
            bench_cosine(np.stack([embeddings[k] for k in sorted(embeddings)]), args.repeats, args.noise),
        ]
    print(f"\n## Decisions (a library is adopted when its ratio is <= {1 + args.noise:.2f} and its results are "
          f"identical)\n")
    for line in decisions:
        print(f"* {line}")
    print(f"\ntotal {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
