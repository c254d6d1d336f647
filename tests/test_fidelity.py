"""The claim checks of the fidelity report, on hand-made tables."""

from __future__ import annotations

import pandas as pd
import pytest

from taskspace.fidelity import (
    difficulty_correlation,
    neighbour_taxonomy,
    selection_claims,
    taxonomic_distance,
    taxonomy_correlation,
)

TASKS = pd.DataFrame({
    "task": ["a1", "a2", "b1", "c1"],
    "domain": ["x", "x", "x", "y"],
    "clade": ["p", "p", "q", "r"],
    "order": ["1", "2", "3", "4"],
})


def test_taxonomic_distance_counts_levels_to_the_common_ancestor():
    tax = taxonomic_distance(TASKS, ["domain", "clade", "order"])
    assert tax.at["a1", "a1"] == 0
    assert tax.at["a1", "a2"] == 1  # sister orders
    assert tax.at["a1", "b1"] == 2  # same domain, other clade
    assert tax.at["a1", "c1"] == 3 == tax.at["c1", "b1"]


def _distances(pairs: dict[tuple[str, str], float]) -> pd.DataFrame:
    return pd.DataFrame([{"kind": "sym", "source": s, "target": t, "distance": d} for (s, t), d in pairs.items()])


def test_taxonomy_correlation_and_nearest_neighbour():
    tax = taxonomic_distance(TASKS, ["domain", "clade", "order"])
    names = list(TASKS.task)
    perfect = _distances({(s, t): float(tax.at[s, t]) for s in names for t in names if s != t})
    assert taxonomy_correlation(perfect, tax, "sym") == pytest.approx(1.0)
    inverted = perfect.assign(distance=-perfect.distance)
    assert taxonomy_correlation(inverted, tax, "sym") == pytest.approx(-1.0)
    # nearest neighbours under the perfect distance: a1<->a2 (1), b1 -> a1 or a2 (2), c1 -> any (3)
    assert neighbour_taxonomy(perfect, tax, "sym") == pytest.approx((1 + 1 + 2 + 3) / 4)


def test_difficulty_correlation_uses_the_best_experts_error():
    selection = pd.DataFrame({"target": ["a", "b", "c"], "optimal_error": [0.1, 0.3, 0.2]})
    assert difficulty_correlation({"a": 1.0, "b": 3.0, "c": 2.0}, selection) == pytest.approx(1.0)
    assert difficulty_correlation({"a": 3.0, "b": 1.0, "c": 2.0}, selection) == pytest.approx(-1.0)


def test_selection_claims_read_the_summary():
    summary = pd.DataFrame({
        "method": ["task2vec.asym", "generic", "random", "ttk", "task2vec_random.asym", "pseudotask_random.asym",
                   "pseudotask.asym"],
        "mean_relative_increase": [0.05, 0.10, 0.30, 0.10, 0.20, 0.25, 0.20],
    })
    claims = {c.text.split(" (")[0]: c.reproduced for c in selection_claims(summary)}
    assert claims == {
        "asymmetric Task2Vec beats the generic expert, which beats random": True,
        "TTK clearly beats Task2Vec and PseudoTask on a randomly initialised probe": True,
        "PseudoTask lands within a few points of Task2Vec": False,  # 15 points apart
    }
    worse = summary.assign(mean_relative_increase=[0.12, 0.10, 0.30, 0.19, 0.20, 0.25, 0.13])
    claims = {c.text.split(" (")[0]: c.reproduced for c in selection_claims(worse)}
    assert claims == {
        "asymmetric Task2Vec beats the generic expert, which beats random": False,
        "TTK clearly beats Task2Vec and PseudoTask on a randomly initialised probe": False,
        "PseudoTask lands within a few points of Task2Vec": True,
    }
