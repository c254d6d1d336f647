"""Bootstrap intervals and paired comparisons of selectors, with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from taskspace.uncertainty import COMPARISON_COLUMNS, bootstrap_interval, compare_methods, wilcoxon_p


def test_bootstrap_interval_of_a_mean_matches_its_standard_error():
    values = np.random.default_rng(0).normal(1.0, 2.0, 400)
    lo, hi = bootstrap_interval(values, resamples=4000, seed=0)
    se = values.std(ddof=1) / np.sqrt(len(values))
    assert lo < values.mean() < hi
    assert (hi - lo) == pytest.approx(2 * 1.96 * se, rel=0.1)  # the normal-theory width
    assert bootstrap_interval(values, resamples=4000, seed=0) == (lo, hi)  # seeded


def test_bootstrap_interval_degenerate_inputs():
    assert bootstrap_interval(np.array([0.3, 0.3, 0.3])) == (0.3, 0.3)
    assert all(np.isnan(bootstrap_interval(np.array([0.3]))))
    assert bootstrap_interval(np.array([0.1, np.nan, 0.3, 0.2]), seed=1) == bootstrap_interval(
        np.array([0.1, 0.3, 0.2]), seed=1)  # NaN left out


def test_wilcoxon_matches_scipy_and_handles_all_ties():
    d = np.array([0.5, -0.1, 0.3, 0.8, 0.2, -0.05, 0.4, 0.6])
    assert wilcoxon_p(d) == pytest.approx(stats.wilcoxon(d).pvalue)  # no ties: the exact distribution
    tied = np.array([0.5, 0.5, -0.1, 0.3, 0.3, 0.0, 0.8])  # ties and a zero: normal approximation, zero dropped
    assert wilcoxon_p(tied) == pytest.approx(stats.wilcoxon(tied[tied != 0], method="asymptotic").pvalue)
    assert wilcoxon_p(np.zeros(5)) == 1.0
    assert np.isnan(wilcoxon_p(np.array([0.1])))


def _selection(values: dict[str, list[float]]) -> pd.DataFrame:
    return pd.DataFrame([{"method": m, "target": f"t{i}", "relative_increase": v}
                         for m, vs in values.items() for i, v in enumerate(vs) if v is not None])


def test_compare_methods_counts_wins_and_reads_the_verdict_from_the_interval():
    sel = _selection({"a": [0.0, 0.1, 0.0, 0.2] * 5, "b": [0.3, 0.1, 0.4, 0.5] * 5,
                      "c": [0.1, 0.0, 0.1, 0.1] * 5})
    comp = compare_methods(sel, ["a", "b", "c"], {"resamples": 500})
    assert tuple(comp.columns) == COMPARISON_COLUMNS
    ab = comp[(comp.method_a == "a") & (comp.method_b == "b")].iloc[0]
    assert ab.n_targets == 20 and ab.mean_difference == pytest.approx(-0.25)
    assert (ab.wins, ab.ties, ab.losses) == (15, 5, 0)
    assert ab.difference_hi < 0 and ab.verdict == "a better"
    assert ab.wilcoxon_p < 0.001
    ac = comp[(comp.method_a == "a") & (comp.method_b == "c")].iloc[0]
    assert ac.mean_difference == pytest.approx(0.0) and ac.verdict == "not distinguishable"
    assert ac.difference_lo < 0 < ac.difference_hi
    bc = comp[(comp.method_a == "b") & (comp.method_b == "c")].iloc[0]
    assert bc.verdict == "c better"
    assert len(comp) == 3  # each unordered pair once, in the given order


def test_compare_methods_pairs_only_common_targets():
    sel = _selection({"a": [0.1, 0.2, 0.3, None], "b": [0.2, 0.2, 0.5, 0.9]})
    row = compare_methods(sel, ["a", "b"], {"resamples": 200}).iloc[0]
    assert row.n_targets == 3 and row.mean_difference == pytest.approx((-0.1 + 0.0 - 0.2) / 3)
    assert (row.wins, row.ties, row.losses) == (2, 1, 0)
