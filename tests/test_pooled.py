"""Pooled verdicts across worlds: the two-level bootstrap and the targets a comparison needs for 80 % power."""

from __future__ import annotations

import math

import numpy as np
import pytest

from taskspace.uncertainty import bootstrap_interval, hierarchical_bootstrap, targets_for_power


def test_hierarchical_bootstrap_pools_the_worlds_and_is_seeded():
    rng = np.random.default_rng(1)
    worlds = [rng.normal(0.2, 1.0, 24), rng.normal(0.3, 1.0, 24), rng.normal(0.1, 1.0, 96)]
    mean, lo, hi = hierarchical_bootstrap(worlds, resamples=2000, seed=0)
    assert mean == pytest.approx(np.concatenate(worlds).mean())  # every target once: worlds weigh by targets
    assert lo < mean < hi
    assert hierarchical_bootstrap(worlds, resamples=2000, seed=0) == (mean, lo, hi)
    assert hierarchical_bootstrap(worlds, resamples=2000, seed=1) != (mean, lo, hi)


def test_worlds_that_disagree_widen_the_interval_beyond_the_flat_bootstrap():
    """Two worlds whose targets agree within each world but not between them: resampling the targets alone calls
    the mean sure; resampling the worlds too says the sign is not known."""
    rng = np.random.default_rng(0)
    worlds = [1.0 + 0.1 * rng.standard_normal(30), -0.6 + 0.1 * rng.standard_normal(30)]
    flat_lo, flat_hi = bootstrap_interval(np.concatenate(worlds), resamples=2000, seed=0)
    _, lo, hi = hierarchical_bootstrap(worlds, resamples=2000, seed=0)
    assert flat_lo > 0  # the flat bootstrap excludes 0
    assert lo < 0 < hi  # the pooled one does not
    assert hi - lo > 3 * (flat_hi - flat_lo)


def test_hierarchical_bootstrap_edge_cases():
    assert hierarchical_bootstrap([np.full(5, 0.25), np.full(3, 0.25)]) == (0.25, 0.25, 0.25)
    mean, lo, hi = hierarchical_bootstrap([np.array([1.0, np.nan]), np.array([])])
    assert mean == 1.0 and math.isnan(lo) and math.isnan(hi)
    one_world = np.linspace(-1, 2, 40)
    mean, lo, hi = hierarchical_bootstrap([one_world], resamples=4000, seed=0)
    flat_lo, flat_hi = bootstrap_interval(one_world, resamples=4000, seed=0)
    assert lo == pytest.approx(flat_lo, abs=0.05) and hi == pytest.approx(flat_hi, abs=0.05)


def test_targets_for_power_is_the_normal_approximation():
    # mean = sd: n = (1.95996 + 0.84162)^2 = 7.85 -> 8 targets
    d = np.array([0.0, 2.0])  # mean 1, sd sqrt(2)
    assert targets_for_power(d) == math.ceil((1.959964 + 0.841621) ** 2 * 2)
    rng = np.random.default_rng(0)
    d = rng.normal(0.0, 1.0, 50)
    d = (d - d.mean()) / d.std(ddof=1) * 0.5 + 0.1  # mean 0.1, sd 0.5: n = (2.8016 * 5)^2 = 196.2 -> 197
    assert targets_for_power(d) == 197
    assert targets_for_power(d, power=0.9) > 197
    assert targets_for_power(np.array([-0.1, 0.1])) == math.inf
    assert math.isnan(targets_for_power(np.array([0.3])))
