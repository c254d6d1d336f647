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


@dataclass
class Claim:
    text: str
    reproduced: bool
    evidence: str


def selection_claims(summary: pd.DataFrame, generic: str = "generic") -> list[Claim]:
    """The papers' selection claims checked against the summary (mean relative error increase, in %)."""
    s = summary.set_index("method")["mean_relative_increase"] * 100
    claims = []

    def have(*names: str) -> bool:
        return all(n in s.index for n in names)

    if have("task2vec.asym", generic, "random"):
        claims.append(Claim(
            "asymmetric Task2Vec beats the generic expert, which beats random (Achille et al. Table 1)",
            bool(s["task2vec.asym"] < s[generic] < s["random"]),
            f"task2vec.asym {s['task2vec.asym']:+.1f}%, generic {s[generic]:+.1f}%, random {s['random']:+.1f}%",
        ))
    if have("ttk", "task2vec_random.asym", "pseudotask_random.asym"):
        others = min(s["task2vec_random.asym"], s["pseudotask_random.asym"])
        claims.append(Claim(
            "TTK clearly beats Task2Vec and PseudoTask on a randomly initialised probe (Wallace et al. Fig. 6)",
            bool(s["ttk"] < 0.75 * others),
            f"ttk {s['ttk']:+.1f}%, task2vec_random.asym {s['task2vec_random.asym']:+.1f}%, "
            f"pseudotask_random.asym {s['pseudotask_random.asym']:+.1f}%",
        ))
    if have("pseudotask.asym", "task2vec.asym"):
        gap = s["pseudotask.asym"] - s["task2vec.asym"]
        claims.append(Claim(
            "PseudoTask lands within a few points of Task2Vec (Wallace et al. Table 1)",
            bool(abs(gap) <= 5.0),
            f"pseudotask.asym {s['pseudotask.asym']:+.1f}% vs task2vec.asym {s['task2vec.asym']:+.1f}% "
            f"({gap:+.1f} points; 'a few' read as <= 5)",
        ))
    return claims
