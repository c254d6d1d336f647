"""How sure a selection result is: bootstrap intervals over targets and paired comparisons of methods.

With a few dozen targets, two methods' mean relative error increases differ by noise more often than not; every
figure of the summary carries its interval, and "A beats B" is said only when the paired interval of the
difference excludes 0. The resampling unit is the target task (the papers average over targets).
"""

from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .config import Settings


@dataclass(frozen=True)
class BootstrapSettings(Settings):
    """The bootstrap over targets behind every interval: resamples, seed, confidence level."""

    SECTION = "selection.bootstrap"
    resamples: int
    seed: int
    level: float
COMPARISON_COLUMNS = (
    "method_a",
    "method_b",
    "n_targets",
    "mean_difference",
    "difference_lo",
    "difference_hi",
    "wins",
    "ties",
    "losses",
    "wilcoxon_p",
    "verdict",
)
TIE_TOLERANCE = 1e-12


def bootstrap_interval(values: np.ndarray, resamples: int = 2000, seed: int = 0, level: float = 0.95
                       ) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (scipy.stats.bootstrap, seeded: the same values give
    the same interval); NaN values are left out, and fewer than two values give (NaN, NaN)."""
    values = np.asarray(values, dtype=float)
    values = values[np.isfinite(values)]
    if len(values) < 2:
        return float("nan"), float("nan")
    if np.ptp(values) == 0:  # every resample has the same mean
        return float(values.mean()), float(values.mean())
    from scipy import stats  # imported where used: planning reads this module's settings only

    res = stats.bootstrap((values,), np.mean, n_resamples=int(resamples), confidence_level=float(level),
                          method="percentile", rng=np.random.default_rng(int(seed)), vectorized=True)
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def wilcoxon_p(differences: np.ndarray) -> float:
    """Two-sided Wilcoxon signed-rank p-value of paired differences (zeros dropped, as Wilcoxon proposed): the exact
    null distribution when there are no ties, else the normal approximation with the tie correction (scipy would
    otherwise run a permutation test, about 1 s a call); 1.0 when every difference is 0, NaN with fewer than two."""
    from scipy import stats

    d = np.asarray(differences, dtype=float)
    d = d[np.isfinite(d)]
    if len(d) < 2:
        return float("nan")
    nonzero = d[np.abs(d) > TIE_TOLERANCE]
    if len(nonzero) == 0:
        return 1.0
    ties = len(np.unique(np.abs(nonzero))) < len(nonzero)
    method = "exact" if not ties and len(nonzero) <= 50 else "asymptotic"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # scipy notes the normal approximation for small n
        return float(stats.wilcoxon(nonzero, zero_method="wilcox", alternative="two-sided", method=method).pvalue)


def verdict(a: str, b: str, lo: float, hi: float) -> str:
    """"<a> better" / "<b> better" when the interval of mean(a) - mean(b) (lower = better) excludes 0, otherwise
    "not distinguishable"."""
    if hi < 0:
        return f"{a} better"
    if lo > 0:
        return f"{b} better"
    return "not distinguishable"


def compare_methods(selection: pd.DataFrame, methods: list[str], bootstrap: dict | BootstrapSettings | None = None,
                    value: str = "relative_increase") -> pd.DataFrame:
    """Every pair (A, B) of ``methods`` (A before B in the given order) on the targets both chose for: the mean
    paired difference A - B of ``value`` (lower = better) with its bootstrap interval, wins/ties/losses of A, the
    Wilcoxon signed-rank p-value and the verdict read from the interval."""
    boot = BootstrapSettings.from_config(bootstrap, "selection.bootstrap", check=False).as_dict()
    wide = selection.pivot_table(index="target", columns="method", values=value, aggfunc="first")
    rows = []
    for a, b in itertools.combinations([m for m in methods if m in wide.columns], 2):
        d = (wide[a] - wide[b]).dropna().to_numpy(float)
        lo, hi = bootstrap_interval(d, **boot)
        rows.append({
            "method_a": a,
            "method_b": b,
            "n_targets": len(d),
            "mean_difference": float(d.mean()) if len(d) else float("nan"),
            "difference_lo": lo,
            "difference_hi": hi,
            "wins": int((d < -TIE_TOLERANCE).sum()),
            "ties": int((np.abs(d) <= TIE_TOLERANCE).sum()),
            "losses": int((d > TIE_TOLERANCE).sum()),
            "wilcoxon_p": wilcoxon_p(d),
            "verdict": verdict(a, b, lo, hi) if np.isfinite(lo) else "not distinguishable",
        })
    out = pd.DataFrame(rows, columns=list(COMPARISON_COLUMNS))
    return out.astype({"n_targets": int, "wins": int, "ties": int, "losses": int})


def targets_for_power(differences: np.ndarray, power: float = 0.8, alpha: float = 0.05) -> float:
    """Targets a paired comparison needs to detect its observed mean difference with probability ``power`` in a
    two-sided test at level ``alpha``: n = ((z_(1 - alpha/2) + z_power) sd / mean)^2, sd the standard deviation of
    the per-target differences (the normal approximation of the paired t-test). inf where the mean is 0, NaN with
    fewer than two differences."""
    from scipy.stats import norm

    d = np.asarray(differences, dtype=float)
    d = d[np.isfinite(d)]
    if len(d) < 2:
        return float("nan")
    mean, sd = float(d.mean()), float(d.std(ddof=1))
    if mean == 0.0:
        return float("inf")
    z = float(norm.ppf(1.0 - alpha / 2.0) + norm.ppf(power))
    return float(np.ceil((z * sd / mean) ** 2))
