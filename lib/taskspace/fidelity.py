"""Which of the papers' claims a finished run reproduces: selection scores, taxonomy and difficulty correlations.

Pure functions over the run's tables and embeddings; ``benchmarks/bench_fidelity.py`` prints them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .selection import spearman


def taxonomic_distance(tasks: pd.DataFrame, levels: list[str]) -> pd.DataFrame:
    """Square (task x task) matrix: how many levels up (``levels`` coarsest first, the task's own level last) the
    two tasks' common ancestor lies; 0 on the diagonal, len(levels) for tasks sharing no level."""
    t = tasks.set_index("task")
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
    least ``margin`` relative error): whether choosing an expert can matter at all."""
    g = selection[selection["method"] == generic].set_index("target")
    better = g["optimal_error"] < g["chosen_error"]
    clearly = g["optimal_error"] <= (1.0 - margin) * g["chosen_error"]
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


@dataclass
class Claim:
    text: str
    reproduced: bool
    evidence: str
    significant: bool | None = None  # every claimed ordering's bootstrap interval excludes 0 (None: not computed)


def selection_claims(summary: pd.DataFrame, generic: str = "generic", boot: pd.DataFrame | None = None) -> list[Claim]:
    """The papers' selection claims checked against the summary (mean relative error increase, in %).

    With ``boot`` (:func:`bootstrap_means` of the same selection), each claimed ordering "a beats b" also gets the
    95% bootstrap interval of mean(a) - mean(b) over targets, and the claim is marked significant when every one
    of its intervals lies below 0.
    """
    s = summary.set_index("method")["mean_relative_increase"] * 100
    claims = []

    def have(*names: str) -> bool:
        return all(n in s.index for n in names)

    def beats(claim: Claim, *pairs: tuple[str, str]) -> Claim:
        if boot is None or not all(a in boot and b in boot for a, b in pairs):
            return claim
        notes, below = [], []
        for a, b in pairs:
            lo, hi = interval(100 * (boot[a] - boot[b]))
            notes.append(f"{a} - {b}: {s[a] - s[b]:+.1f} points, 95% CI [{lo:+.1f}, {hi:+.1f}]")
            below.append(hi < 0)
        claim.evidence += "; " + "; ".join(notes)
        claim.significant = all(below)
        return claim

    if have("task2vec.asym", generic, "random"):
        claims.append(beats(Claim(
            "asymmetric Task2Vec beats the generic expert, which beats random (Achille et al. Table 1)",
            bool(s["task2vec.asym"] < s[generic] < s["random"]),
            f"task2vec.asym {s['task2vec.asym']:+.1f}%, generic {s[generic]:+.1f}%, random {s['random']:+.1f}%",
        ), ("task2vec.asym", generic), (generic, "random")))
    if have("task2vec.asym", "task2vec.sym"):
        claims.append(beats(Claim(
            "asymmetric Task2Vec beats symmetric Task2Vec (Achille et al. Table 1: +10.0% vs +42.5% on iNat+CUB)",
            bool(s["task2vec.asym"] < s["task2vec.sym"]),
            f"task2vec.asym {s['task2vec.asym']:+.1f}%, task2vec.sym {s['task2vec.sym']:+.1f}%",
        ), ("task2vec.asym", "task2vec.sym")))
    if have("model2vec", "task2vec.asym"):
        claims.append(beats(Claim(
            "MODEL2VEC improves on asymmetric Task2Vec (Achille et al. Table 1: +6.8% vs +10.0% on iNat+CUB)",
            bool(s["model2vec"] < s["task2vec.asym"]),
            f"model2vec {s['model2vec']:+.1f}%, task2vec.asym {s['task2vec.asym']:+.1f}%",
        ), ("model2vec", "task2vec.asym")))
    if have("ttk", "task2vec_random.asym", "pseudotask_random.asym"):
        others = min(s["task2vec_random.asym"], s["pseudotask_random.asym"])
        claims.append(beats(Claim(
            "TTK clearly beats Task2Vec and PseudoTask on a randomly initialised probe (Wallace et al. Fig. 6)",
            bool(s["ttk"] < 0.75 * others),
            f"ttk {s['ttk']:+.1f}%, task2vec_random.asym {s['task2vec_random.asym']:+.1f}%, "
            f"pseudotask_random.asym {s['pseudotask_random.asym']:+.1f}%",
        ), ("ttk", "task2vec_random.asym"), ("ttk", "pseudotask_random.asym")))
    if have("pseudotask.asym", "task2vec.asym"):
        gap = s["pseudotask.asym"] - s["task2vec.asym"]
        claim = Claim(
            "PseudoTask lands within a few points of Task2Vec (Wallace et al. Table 1)",
            bool(abs(gap) <= 5.0),
            f"pseudotask.asym {s['pseudotask.asym']:+.1f}% vs task2vec.asym {s['task2vec.asym']:+.1f}% "
            f"({gap:+.1f} points; 'a few' read as <= 5)",
        )
        if boot is not None and "pseudotask.asym" in boot and "task2vec.asym" in boot:
            lo, hi = interval(100 * (boot["pseudotask.asym"] - boot["task2vec.asym"]))
            claim.evidence += f"; 95% CI of the gap [{lo:+.1f}, {hi:+.1f}]"
            claim.significant = bool(-5.0 <= lo and hi <= 5.0)
        claims.append(claim)
    for method, paper in (("pseudotask.asym", "20.4% vs 39.2%"), ("task2vec.asym", "8.9% vs 39.2%")):
        if have(method, "domain"):
            name = "PseudoTask on the pretrained probe" if method.startswith("pseudo") else "asymmetric Task2Vec"
            claims.append(beats(Claim(
                f"{name} beats average features (Wallace et al. Table 1: {paper})",
                bool(s[method] < s["domain"]),
                f"{method} {s[method]:+.1f}%, domain {s['domain']:+.1f}%",
            ), (method, "domain")))
    return claims
