"""Which of the papers' claims a finished run reproduces: selection scores, taxonomy and difficulty correlations.

Pure functions over the run's tables and embeddings; ``benchmarks/bench_fidelity.py`` prints them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .selection import spearman


def taxonomic_distance(tasks: pd.DataFrame, levels: list[str]) -> pd.DataFrame:
    """Square (task x task) matrix: how many levels up (``levels`` coarsest first, the task's own level last; the
    level ``task`` is the task itself) the two tasks' common ancestor lies; 0 on the diagonal, len(levels) for tasks
    sharing no level."""
    t = tasks.set_index("task", drop=False)
    names = list(t.index)
    out = np.zeros((len(names), len(names)), dtype=int)
    for i, a in enumerate(names):
        for j, b in enumerate(names):
            if i == j:
                continue
            shared = 0
            for level in levels:
                if t.at[a, level] != t.at[b, level]:
                    break
                shared += 1
            out[i, j] = len(levels) - shared
    return pd.DataFrame(out, index=names, columns=names)


def taxonomy_correlation(distances: pd.DataFrame, taxonomy: pd.DataFrame, kind: str) -> float:
    """Spearman correlation, over ordered task pairs, between a method's distance of one kind and the taxonomic
    distance (positive = the embedding puts taxonomically close tasks close)."""
    d = distances[distances["kind"] == kind]
    tax = [taxonomy.at[s, t] for s, t in zip(d["source"], d["target"])]
    return spearman(d["distance"].to_numpy(), np.asarray(tax, dtype=float))


def neighbour_taxonomy(distances: pd.DataFrame, taxonomy: pd.DataFrame, kind: str) -> float:
    """Mean taxonomic distance from each task to its nearest neighbour under the method (lower = closer)."""
    d = distances[distances["kind"] == kind].sort_values(["target", "distance", "source"], kind="mergesort")
    nearest = d.groupby("target").head(1)
    return float(np.mean([taxonomy.at[s, t] for s, t in zip(nearest["source"], nearest["target"])]))


def difficulty_correlation(norms: dict[str, float], selection: pd.DataFrame) -> float:
    """Spearman correlation between each task's embedding norm and the test error of its best expert."""
    best = selection.drop_duplicates("target").set_index("target")["optimal_error"]
    tasks = sorted(set(norms) & set(best.index))
    return spearman(np.array([norms[t] for t in tasks]), best.loc[tasks].to_numpy())


def premise(selection: pd.DataFrame, generic: str = "generic", margin: float = 0.10) -> tuple[int, int, int]:
    """(targets, targets where the best candidate expert beats the generic expert, those where it does so by at
    least ``margin`` relative error, i.e. where the generic expert's relative error increase over the best candidate
    is >= ``margin``): whether choosing an expert can matter at all. The published CUB+iNat matrix gives
    (50, 40, 31)."""
    g = selection[selection["method"] == generic].set_index("target")
    better = g["optimal_error"] < g["chosen_error"]
    clearly = better & (g["relative_increase"] >= margin - 1e-12)
    return len(g), int(better.sum()), int(clearly.sum())


def bootstrap_means(selection: pd.DataFrame, resamples: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Bootstrap distribution of each method's mean relative error increase over targets: (resamples x methods).

    Every resample draws the targets with replacement once and uses the same draw for every method (paired), so
    the difference of two methods' columns is the bootstrap distribution of their difference. Seeded: the same
    table gives the same intervals.
    """
    wide = selection.pivot_table(index="target", columns="method", values="relative_increase", aggfunc="first")
    values = wide.to_numpy(dtype=float)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(wide), size=(resamples, len(wide)))
    return pd.DataFrame(np.nanmean(values[draws], axis=1), columns=wide.columns)


def interval(samples: np.ndarray | pd.Series, level: float = 0.95) -> tuple[float, float]:
    """The central percentile interval of bootstrap samples."""
    tail = (1.0 - level) / 2.0
    lo, hi = np.quantile(np.asarray(samples, dtype=float), [tail, 1.0 - tail])
    return float(lo), float(hi)


REPRODUCED = "REPRODUCED"
NOT_REPRODUCED = "NOT REPRODUCED"
NOT_DISTINGUISHABLE = "NOT DISTINGUISHABLE"


@dataclass
class Claim:
    text: str
    verdict: str  # REPRODUCED / NOT REPRODUCED / NOT DISTINGUISHABLE, read from the paired intervals only
    evidence: str

    @property
    def reproduced(self) -> bool:
        return self.verdict == REPRODUCED


def _ordering_verdict(intervals: list[tuple[float, float]]) -> str:
    """Claimed orderings "a beats b" (lower is better), each with the interval of mean(a) - mean(b): reproduced when
    every interval lies below 0, not reproduced when one lies above 0 (the opposite ordering holds), otherwise the
    data cannot tell."""
    if all(hi < 0 for _, hi in intervals):
        return REPRODUCED
    if any(lo > 0 for lo, _ in intervals):
        return NOT_REPRODUCED
    return NOT_DISTINGUISHABLE


def selection_claims(selection: pd.DataFrame, generic: str = "generic", resamples: int = 2000, seed: int = 0,
                     boot: pd.DataFrame | None = None) -> list[Claim]:
    """The papers' selection claims checked against a selection table (one meta-task), each verdict read from the
    paired 95% bootstrap intervals over targets (:func:`bootstrap_means`), never from two point estimates.

    "A beats B" is REPRODUCED when the interval of mean(A) - mean(B) lies below 0, NOT REPRODUCED when it lies
    above 0, NOT DISTINGUISHABLE when it contains 0. The evidence gives the means (relative error increase, %) and
    every interval. ``boot``: the bootstrap distribution of the means to read the intervals from instead (resamples x
    methods, paired; e.g. the pooled one of :func:`taskspace.pooled.draw_means` over several worlds, whose
    per-target rows ``selection`` then holds).
    """
    if boot is None:
        boot = bootstrap_means(selection, resamples=resamples, seed=seed)
    s = selection.groupby("method")["relative_increase"].mean() * 100
    claims = []

    def have(*names: str) -> bool:
        return all(n in s.index and n in boot for n in names)

    def ordering(text: str, means: str, *pairs: tuple[str, str]) -> Claim:
        notes, intervals = [], []
        for a, b in pairs:
            lo, hi = interval(100 * (boot[a] - boot[b]))
            notes.append(f"{a} - {b}: {s[a] - s[b]:+.1f} points, 95% CI [{lo:+.1f}, {hi:+.1f}]")
            intervals.append((lo, hi))
        return Claim(text, _ordering_verdict(intervals), "; ".join([means, *notes]))

    def pct(*names: str) -> str:
        return ", ".join(f"{n} {s[n]:+.1f}%" for n in names)

    if have("task2vec.asym", generic, "random"):
        claims.append(ordering(
            "asymmetric Task2Vec beats the generic expert, which beats random (Achille et al. Table 1)",
            pct("task2vec.asym", generic, "random"), ("task2vec.asym", generic), (generic, "random")))
    if have("task2vec.asym", "task2vec.sym"):
        claims.append(ordering(
            "asymmetric Task2Vec beats symmetric Task2Vec (Achille et al. Table 1: +10.0% vs +42.5% on iNat+CUB)",
            pct("task2vec.asym", "task2vec.sym"), ("task2vec.asym", "task2vec.sym")))
    if have("model2vec", "task2vec.asym"):
        claims.append(ordering(
            "MODEL2VEC improves on asymmetric Task2Vec (Achille et al. Table 1: +6.8% vs +10.0% on iNat+CUB)",
            pct("model2vec", "task2vec.asym"), ("model2vec", "task2vec.asym")))
    if have("ttk", "task2vec_random.asym", "pseudotask_random.asym"):
        claims.append(ordering(
            "TTK beats Task2Vec and PseudoTask on a randomly initialised probe (Wallace et al. Fig. 6)",
            pct("ttk", "task2vec_random.asym", "pseudotask_random.asym"),
            ("ttk", "task2vec_random.asym"), ("ttk", "pseudotask_random.asym")))
    if have("pseudotask.asym", "task2vec.asym"):
        lo, hi = interval(100 * (boot["pseudotask.asym"] - boot["task2vec.asym"]))
        gap = s["pseudotask.asym"] - s["task2vec.asym"]
        verdict = (REPRODUCED if -5.0 <= lo and hi <= 5.0 else NOT_REPRODUCED if hi < -5.0 or lo > 5.0
                   else NOT_DISTINGUISHABLE)
        claims.append(Claim(
            "PseudoTask lands within a few points of Task2Vec (Wallace et al. Table 1; 'a few' read as <= 5)",
            verdict, f"{pct('pseudotask.asym', 'task2vec.asym')}; gap {gap:+.1f} points, 95% CI [{lo:+.1f}, {hi:+.1f}]"))
    for method, paper in (("pseudotask.asym", "20.4% vs 39.2%"), ("task2vec.asym", "8.9% vs 39.2%")):
        if have(method, "domain"):
            name = "PseudoTask on the pretrained probe" if method.startswith("pseudo") else "asymmetric Task2Vec"
            claims.append(ordering(f"{name} beats average features (Wallace et al. Table 1: {paper})",
                                   pct(method, "domain"), (method, "domain")))
    for score, paper in (("leep", "20.8%"),):
        if have(score, "task2vec.asym"):
            claims.append(ordering(
                f"asymmetric Task2Vec beats LEEP, which runs every expert (Wallace et al. Table 1: LEEP {paper})",
                pct("task2vec.asym", score), ("task2vec.asym", score)))
    return claims
