"""The claim checks of the fidelity report, on hand-made tables."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from taskspace.fidelity import (
    bootstrap_means,
    interval,
    premise,
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


def _selection(values: dict[str, list[float]]) -> pd.DataFrame:
    return pd.DataFrame([{"method": m, "target": f"t{i}", "relative_increase": v}
                         for m, vs in values.items() for i, v in enumerate(vs)])


def test_bootstrap_means_are_paired_seeded_and_centred_on_the_mean():
    import numpy as np

    rng = np.random.default_rng(0)
    a = rng.normal(0.2, 0.1, 40)
    sel = _selection({"a": list(a), "b": list(a + 0.05)})  # b is a shifted by exactly 0.05 on every target
    boot = bootstrap_means(sel, resamples=500, seed=1)
    assert boot.shape == (500, 2)
    np.testing.assert_allclose(boot["b"] - boot["a"], 0.05)  # the same targets drawn for both methods
    assert boot["a"].mean() == pytest.approx(a.mean(), abs=0.01)
    lo, hi = interval(boot["a"])
    assert lo < a.mean() < hi
    # the standard error of a mean of 40 draws with sd 0.1 is ~0.016: a 95% interval about 0.06 wide
    assert 0.04 < hi - lo < 0.09
    pd.testing.assert_frame_equal(boot, bootstrap_means(sel, resamples=500, seed=1))


def test_claim_verdicts_come_from_the_paired_intervals_not_the_point_estimates():
    # task2vec.asym is 20 points better than generic on every target: the interval excludes 0
    sel = _selection({"task2vec.asym": [0.0, 0.1, 0.0, 0.1] * 5, "generic": [0.2, 0.3, 0.2, 0.3] * 5,
                      "random": [0.5, 0.5, 0.4, 0.6] * 5, "domain": [0.0, 0.1, 0.1, 0.0] * 5,
                      "task2vec.sym": [0.3, 0.4, 0.3, 0.4] * 5,
                      # model2vec: better in the mean by a hair, but as often worse as better: within noise
                      "model2vec": [-0.3, 0.4, -0.3, 0.4] * 5})
    claims = {c.text.split(" (")[0]: c for c in selection_claims(sel, resamples=300)}
    table1 = claims["asymmetric Task2Vec beats the generic expert, which beats random"]
    assert table1.verdict == "REPRODUCED" and table1.reproduced
    assert "task2vec.asym - generic: -20.0 points, 95% CI [" in table1.evidence
    assert claims["asymmetric Task2Vec beats symmetric Task2Vec"].verdict == "REPRODUCED"
    m2v = claims["MODEL2VEC improves on asymmetric Task2Vec"]
    assert m2v.verdict == "NOT DISTINGUISHABLE"  # means -0.5 points apart, interval straddles 0
    assert claims["asymmetric Task2Vec beats average features"].verdict == "NOT DISTINGUISHABLE"  # equal means
    reversed_ = _selection({"task2vec.asym": [0.4, 0.5] * 10, "generic": [0.2, 0.3] * 10, "random": [0.6] * 20})
    claim = selection_claims(reversed_, resamples=300)[0]
    assert claim.verdict == "NOT REPRODUCED"  # generic beats task2vec.asym with an interval above 0
    assert "TTK beats Task2Vec" not in claims  # no ttk row: no claim


def test_premise_counts_targets_where_an_expert_beats_the_generic_one():
    sel = pd.DataFrame({"method": ["generic"] * 4 + ["oracle"] * 4, "target": ["a", "b", "c", "d"] * 2,
                        "chosen_error": [0.30, 0.20, 0.10, 0.22, 0.2, 0.19, 0.12, 0.2],
                        "optimal_error": [0.20, 0.19, 0.12, 0.2, 0.2, 0.19, 0.12, 0.2]})
    sel["relative_increase"] = (sel.chosen_error - sel.optimal_error) / sel.optimal_error
    # a: generic +50% over the best expert; b: +5%; c: the generic one is better; d: exactly +10% counts
    assert premise(sel) == (4, 3, 2)


def test_premise_of_the_published_cub_inat_matrix():
    from taskspace.selection import load_reference_cub_inat, score_selection

    transfer, distances = load_reference_cub_inat(Path(__file__).parent / "data" / "cub_inat")
    selection, _ = score_selection(transfer, distances, bootstrap={"resamples": 10})
    assert premise(selection) == (50, 40, 31)
