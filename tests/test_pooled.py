"""The targets a comparison needs for 80 % power (the pooled bootstrap: tests/test_pooled_draws.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from taskspace.uncertainty import targets_for_power


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
