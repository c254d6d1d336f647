"""Score expert selection: for every target task, which expert each method picks and how much error that costs.

Inputs are long tables (see `score_selection`); the scores are those of Task2Vec (Table 1) and of the CUB+iNat
protocol of Wallace et al.: the relative error increase of the chosen expert over the best available expert,
the target's own expert never being a candidate.

Five kinds of selector are scored alike: embedding distances (one probe pass over the new task), per-expert
transferability scores computed by the transfer stage (LEEP, LogME, ...; every expert runs on the new task), a
two-stage selector that shortlists the k nearest experts by an embedding and re-ranks them by a score (1 + k passes),
target-agnostic rankings that never look at the new task (no pass: each expert's mean quality on the other targets,
the expert trained on the most images), and the references (oracle, random, generic). Each summary row carries
that cost and 95% bootstrap intervals. Besides the chosen expert's error, each ranking is compared with the true one
by Spearman's correlation and by the weighted Kendall tau the field reports (``scipy.stats.weightedtau``).
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import pandas as pd
from scipy.stats import weightedtau

from .transferability import POOL_SCORES, SCORE_PREFIX
from .uncertainty import BootstrapSettings, bootstrap_interval

ORACLE = "oracle"
RANDOM = "random"
# the best expert of one replicate of the experts scored on another (taskspace.replicates): the ground truth's own
# training noise, which no selector can beat
NOISE_CEILING = "noise_ceiling"
REFERENCE_METHODS = (ORACLE, RANDOM, NOISE_CEILING)
HIT_TOLERANCE = 1e-12
KINDS = ("reference", "embedding", "per-expert", "two-stage", "target-agnostic")
# target-agnostic rankings: the same expert order for every target, from the bank alone
MEAN_QUALITY = "agnostic.mean_quality"  # each expert's mean relative increase on the other targets (leave-one-out)
MOST_IMAGES = "agnostic.most_images"  # the expert trained on the most images
AGNOSTIC_METHODS = (MEAN_QUALITY, MOST_IMAGES)

TRANSFER_COLUMNS = ("expert", "task", "test_error", "n_test")
DISTANCE_COLUMNS = ("method", "source", "target", "distance")
SELECTION_COLUMNS = (
    "method",
    "target",
    "chosen",
    "chosen_error",
    "optimal_expert",
    "optimal_error",
    "relative_increase",
    "hit",
    "rank_corr",
    "weighted_tau",
    "n_candidates",
)
SUMMARY_COLUMNS = (
    "method",
    "kind",
    "cost",
    "n_targets",
    "n_skipped",
    "mean_optimal_error",
    "mean_chosen_error",
    "mean_relative_increase",
    "mean_relative_increase_lo",
    "mean_relative_increase_hi",
    "median_relative_increase",
    "top1_hit_rate",
    "top1_hit_rate_lo",
    "top1_hit_rate_hi",
    "mean_rank_corr",
    "mean_weighted_tau",
    "mean_weighted_tau_lo",
    "mean_weighted_tau_hi",
)

REFERENCE_N_TEST = 10**9
# an embedding whose distances over a meta-task spread by no more than this is degenerate: its ranking is rounding
# noise (distances are cosine-like, of order 1; e.g. PseudoTask on an untrained probe: every distance below 3e-12)
DEGENERATE_SPREAD = 1e-8


def _require_columns(df: pd.DataFrame, columns: tuple[str, ...], what: str) -> None:
    """Raise ValueError naming the table and the columns it lacks."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{what} table lacks column(s) {missing}; it has {list(df.columns)}")


def _check_transfer(transfer: pd.DataFrame) -> pd.DataFrame:
    """Validate the transfer table and return its four used columns (test_error float, n_test float)."""
    _require_columns(transfer, TRANSFER_COLUMNS, "transfer")
    t = transfer.loc[:, list(TRANSFER_COLUMNS)].copy()
    t["test_error"] = pd.to_numeric(t["test_error"], errors="raise").astype(float)
    t["n_test"] = pd.to_numeric(t["n_test"], errors="raise").astype(float)
    bad = t[~np.isfinite(t["test_error"]) | (t["test_error"] < 0) | (t["test_error"] > 1)]
    if len(bad):
        row = bad.iloc[0]
        raise ValueError(
            f"transfer table: test_error must be a fraction in [0, 1]; {len(bad)} row(s) are not, "
            f"e.g. expert={row['expert']!r} task={row['task']!r} test_error={row['test_error']}"
        )
    bad = t[~np.isfinite(t["n_test"]) | (t["n_test"] <= 0)]
    if len(bad):
        row = bad.iloc[0]
        raise ValueError(
            f"transfer table: n_test must be a positive count; {len(bad)} row(s) are not, "
            f"e.g. expert={row['expert']!r} task={row['task']!r} n_test={row['n_test']}"
        )
    dup = t[t.duplicated(["expert", "task"], keep=False)]
    if len(dup):
        row = dup.iloc[0]
        raise ValueError(
            f"transfer table: {len(dup)} rows share an (expert, task) pair, "
            f"e.g. expert={row['expert']!r} task={row['task']!r}"
        )
    return t


def _check_distances(distances: pd.DataFrame | None, generic: str) -> pd.DataFrame:
    """Validate the distance table and return its four used columns (empty table for None or zero rows)."""
    if distances is None or len(distances) == 0:
        return pd.DataFrame({c: pd.Series(dtype=float if c == "distance" else object) for c in DISTANCE_COLUMNS})
    _require_columns(distances, DISTANCE_COLUMNS, "distance")
    d = distances.loc[:, list(DISTANCE_COLUMNS)].copy()
    d["distance"] = pd.to_numeric(d["distance"], errors="raise").astype(float)
    from .transferability import SCORE_NAMES

    reserved = sorted(set(d["method"]) & {*REFERENCE_METHODS, generic, *AGNOSTIC_METHODS})
    if reserved:
        raise ValueError(f"distance table: method name(s) {reserved} are reserved for the reference selections")
    reserved = sorted(m for m in set(d["method"]) if m in SCORE_NAMES or ">" in m)
    if reserved:
        raise ValueError(f"distance table: method name(s) {reserved} are reserved for per-expert scores and "
                         "two-stage selectors")
    bad = d[~np.isfinite(d["distance"])]
    if len(bad):
        row = bad.iloc[0]
        raise ValueError(
            f"distance table: {len(bad)} non-finite distance(s), e.g. method={row['method']!r} "
            f"source={row['source']!r} target={row['target']!r}"
        )
    dup = d[d.duplicated(["method", "source", "target"], keep=False)]
    if len(dup):
        row = dup.iloc[0]
        raise ValueError(
            f"distance table: {len(dup)} rows share a (method, source, target) triple, e.g. "
            f"method={row['method']!r} source={row['source']!r} target={row['target']!r}"
        )
    return d


def candidate_table(transfer: pd.DataFrame, generic: str = "generic") -> pd.DataFrame:
    """Candidate (expert, target) rows: every transfer row except the target's own expert and the generic one."""
    t = _check_transfer(transfer)
    keep = (t["expert"] != t["task"]) & (t["expert"] != generic)
    return t[keep].rename(columns={"task": "target"}).reset_index(drop=True)


def spearman(x: np.ndarray | pd.Series, y: np.ndarray | pd.Series) -> float:
    """Spearman rank correlation (average ranks for ties); NaN for fewer than 3 points or a constant input."""
    rx = pd.Series(np.asarray(x, dtype=float)).rank(method="average").to_numpy()
    ry = pd.Series(np.asarray(y, dtype=float)).rank(method="average").to_numpy()
    if len(rx) != len(ry):
        raise ValueError(f"spearman: inputs differ in length ({len(rx)} vs {len(ry)})")
    if len(rx) < 3:
        return float("nan")
    rx = rx - rx.mean()
    ry = ry - ry.mean()
    denom = np.sqrt((rx * rx).sum() * (ry * ry).sum())
    if denom == 0:
        return float("nan")
    return float(np.clip((rx * ry).sum() / denom, -1.0, 1.0))


def weighted_tau(distance: np.ndarray | pd.Series, error: np.ndarray | pd.Series) -> float:
    """The weighted Kendall tau between a selector's ranking (closest first) and the true one (lowest error first):
    ``scipy.stats.weightedtau`` of -distance and -error with its defaults (hyperbolic weights on the ranks, so that
    disagreements among the best experts weigh most), as the field scores transferability estimators. NaN for
    fewer than 3 candidates or a constant input."""
    x, y = -np.asarray(distance, dtype=float), -np.asarray(error, dtype=float)
    if len(x) != len(y):
        raise ValueError(f"weighted_tau: inputs differ in length ({len(x)} vs {len(y)})")
    if len(x) < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(np.clip(weightedtau(x, y).statistic, -1.0, 1.0))


def _agreement(distance: np.ndarray | pd.Series, error: np.ndarray | pd.Series) -> dict[str, float]:
    """The two rank agreements of a selection row: Spearman's rank_corr (distance vs error, positive = closer experts
    transfer better) and the weighted Kendall tau."""
    return {"rank_corr": spearman(distance, error), "weighted_tau": weighted_tau(distance, error)}


def _optimum(cands: pd.DataFrame) -> pd.DataFrame:
    """Per target: optimal expert and error (ties by expert name), the relative-increase denominator, n_candidates."""
    best = cands.sort_values(["target", "test_error", "expert"], kind="mergesort").groupby("target", sort=True).head(1)
    opt = best.set_index("target")[["expert", "test_error", "n_test"]].rename(
        columns={"expert": "optimal_expert", "test_error": "optimal_error"}
    )
    opt["denominator"] = np.maximum(opt["optimal_error"], 0.5 / opt["n_test"])
    opt["n_candidates"] = cands.groupby("target").size()
    return opt.drop(columns="n_test").sort_index()


def _method_rows(
    method: str, cands: pd.DataFrame, dist: pd.DataFrame, opt: pd.DataFrame, undefined_skips: bool = False
) -> tuple[list[dict], list[str]]:
    """Selection rows of one distance-ranked method: the closest candidate per target, and the rank correlation.

    A candidate without a distance row is an error naming method, target and experts, unless ``undefined_skips``
    (per-expert scores, where NaN means the score is undefined on that pair): then the method makes no choice on
    that target. Returns the rows and the targets skipped.
    """
    d = dist.loc[dist["method"] == method, ["source", "target", "distance"]].rename(columns={"source": "expert"})
    merged = cands.merge(d, on=["expert", "target"], how="left", validate="one_to_one")
    missing = merged[merged["distance"].isna()]
    if len(missing) and not undefined_skips:
        target, group = next(iter(missing.groupby("target", sort=True)))
        n_targets = missing["target"].nunique()
        raise ValueError(
            f"method {method!r}: no distance (source=expert, target={target!r}) for candidate expert(s) "
            f"{sorted(group['expert'])}" + (f"; {n_targets - 1} more target(s) also lack rows" if n_targets > 1 else "")
        )
    skipped = sorted(set(missing["target"]))
    rows = []
    for target, group in merged[~merged["target"].isin(skipped)].groupby("target", sort=True):
        o = opt.loc[target]
        pick = group.sort_values(["distance", "expert"], kind="mergesort").iloc[0]
        rows.append(
            _row(method, target, pick["expert"], float(pick["test_error"]), o)
            | _agreement(group["distance"], group["test_error"])
        )
    return rows, skipped


def rerank_name(embedding: str, score: str, shortlist: int) -> str:
    """Name of the two-stage selector: shortlist ``shortlist`` experts by ``embedding``, re-rank them by ``score``."""
    return f"{embedding}>{score}@{shortlist}"


def _rerank_rows(
    embedding: str, score: str, shortlist: int, cands: pd.DataFrame, dist: pd.DataFrame, opt: pd.DataFrame
) -> tuple[list[dict], list[str]]:
    """Two-stage selection rows: per target, the ``shortlist`` candidates nearest by ``embedding`` (ties by name),
    of which the best by ``score`` is chosen. The rank correlation orders the shortlist by score, then the rest by
    distance. A target where a shortlisted expert's score is undefined is skipped."""
    d = dist.loc[dist["method"] == embedding, ["source", "target", "distance"]].rename(columns={"source": "expert"})
    sc = dist.loc[dist["method"] == score, ["source", "target", "distance"]].rename(
        columns={"source": "expert", "distance": "negscore"})
    merged = cands.merge(d, on=["expert", "target"], how="left").merge(sc, on=["expert", "target"], how="left")
    name = rerank_name(embedding, score, shortlist)
    rows, skipped = [], []
    for target, group in merged.groupby("target", sort=True):
        if group["distance"].isna().any():
            raise ValueError(f"two-stage selector {name!r}: {embedding!r} has no distance to target {target!r} for "
                             f"expert(s) {sorted(group.loc[group['distance'].isna(), 'expert'])}")
        group = group.sort_values(["distance", "expert"], kind="mergesort").reset_index(drop=True)
        short = group.iloc[:shortlist]
        if short["negscore"].isna().any():
            skipped.append(target)
            continue
        short = short.sort_values(["negscore", "expert"], kind="mergesort")
        order = pd.concat([short, group.iloc[shortlist:]], ignore_index=True)
        pick = order.iloc[0]
        rows.append(
            _row(name, target, pick["expert"], float(pick["test_error"]), opt.loc[target])
            | _agreement(np.arange(len(order)), order["test_error"])
        )
    return rows, skipped


def _row(method: str, target: str, chosen: str | None, chosen_error: float, o: pd.Series) -> dict:
    """One selection row for a single chosen expert (rank_corr and weighted_tau NaN unless the caller sets them)."""
    return {
        "method": method,
        "target": target,
        "chosen": chosen,
        "chosen_error": chosen_error,
        "optimal_expert": o["optimal_expert"],
        "optimal_error": float(o["optimal_error"]),
        "relative_increase": (chosen_error - o["optimal_error"]) / o["denominator"],
        "hit": float(chosen_error <= o["optimal_error"] + HIT_TOLERANCE),
        "rank_corr": float("nan"),
        "weighted_tau": float("nan"),
        "n_candidates": int(o["n_candidates"]),
    }


def _reference_rows(t: pd.DataFrame, cands: pd.DataFrame, opt: pd.DataFrame, generic: str) -> dict[str, list[dict]]:
    """Oracle, generic and random rows of every target (random as the exact expectation over candidates)."""
    rows: dict[str, list[dict]] = {ORACLE: [], generic: [], RANDOM: []}
    generic_error = t[t["expert"] == generic].set_index("task")["test_error"]
    for target, group in cands.groupby("target", sort=True):
        o = opt.loc[target]
        rows[ORACLE].append(_row(ORACLE, target, o["optimal_expert"], float(o["optimal_error"]), o))
        if target in generic_error.index:
            rows[generic].append(_row(generic, target, generic, float(generic_error[target]), o))
        errors = group["test_error"].to_numpy()
        rows[RANDOM].append(
            _row(RANDOM, target, None, float(errors.mean()), o)
            | {
                "relative_increase": float(((errors - o["optimal_error"]) / o["denominator"]).mean()),
                "hit": float((errors <= o["optimal_error"] + HIT_TOLERANCE).mean()),
            }
        )
    return rows


def noise_ceiling_rows(replicates: pd.DataFrame, cands: pd.DataFrame, opt: pd.DataFrame) -> list[dict]:
    """Selection rows of the noise ceiling: per target, the best candidate of replicate a of the experts scored on
    replicate b, averaged over every ordered pair a != b of replicates; empty with fewer than 2 replicates.

    ``replicates``: transfer rows with a ``replicate`` column (expert, task, replicate, test_error, n_test);
    ``cands``/``opt``: the candidates and optimum of the replicate mean. Per pair (a, b): relative increase
    (err_b(best_a) - err_b(best_b)) / max(err_b(best_b), 0.5 / n_test), hit = best_a is optimal on b (so the hit rate
    is how often the oracle's choice survives a retraining), and the rank agreements of replicate a's errors with
    replicate b's. chosen_error is the mean of err_b(best_a); optimal_error is the replicate mean's (as for every
    selector). Ties break by expert name, as for the oracle. A candidate lacking a replicate is an error naming it.
    """
    _require_columns(replicates, (*TRANSFER_COLUMNS, "replicate"), "transfer replicates")
    r = replicates[["expert", "task", "replicate", "test_error", "n_test"]].rename(columns={"task": "target"})
    r = cands[["expert", "target"]].merge(r, on=["expert", "target"], how="left")
    if r["replicate"].isna().any():
        row = r[r["replicate"].isna()].iloc[0]
        raise ValueError(f"transfer replicates: no row of candidate expert {row['expert']!r} on {row['target']!r}")
    count = int(r["replicate"].max()) + 1
    if count < 2:
        return []
    rows = []
    for target, group in r.groupby("target", sort=True):
        err = group.pivot(index="replicate", columns="expert", values="test_error").sort_index()
        err = err[sorted(err.columns)]
        if err.shape[0] != count or err.isna().any().any():
            lacking = sorted(err.columns[err.isna().any()]) if err.shape[0] == count else sorted(err.columns)
            raise ValueError(f"transfer replicates: target {target!r} lacks replicates of expert(s) {lacking} "
                             f"(every candidate needs all {count})")
        e = err.to_numpy(float)
        best = e.argmin(axis=1)  # the first minimum: ties by expert name
        floor = 0.5 / float(group["n_test"].iloc[0])
        inc, hit, chosen, agree = [], [], [], []
        for a in range(count):
            for b in range(count):
                if a == b:
                    continue
                optimal = e[b, best[b]]
                inc.append((e[b, best[a]] - optimal) / max(optimal, floor))
                hit.append(float(e[b, best[a]] <= optimal + HIT_TOLERANCE))
                chosen.append(e[b, best[a]])
                agree.append(_agreement(e[a], e[b]))
        o = opt.loc[target]
        rows.append(_row(NOISE_CEILING, target, None, float(np.mean(chosen)), o) | {
            "relative_increase": float(np.mean(inc)),
            "hit": float(np.mean(hit)),
            "rank_corr": float(np.nanmean([x["rank_corr"] for x in agree])) if any(
                np.isfinite(x["rank_corr"]) for x in agree) else float("nan"),
            "weighted_tau": float(np.nanmean([x["weighted_tau"] for x in agree])) if any(
                np.isfinite(x["weighted_tau"]) for x in agree) else float("nan"),
        })
    return rows


def degenerate_methods(dist: pd.DataFrame, tol: float = DEGENERATE_SPREAD) -> dict[str, float]:
    """{selector: spread} of the distance selectors whose embedding is degenerate on these distances: the
    symmetric distances (``<method>.sym``, or the method's only kind) spread by at most ``tol`` (max - min). All
    kinds of such a method are degenerate: their rankings order rounding noise (the asymmetric kind, the trivial
    embedding's term)."""
    out: dict[str, float] = {}
    bases: dict[str, list[str]] = {}
    for m in sorted(set(dist["method"])):
        bases.setdefault(m.rsplit(".", 1)[0] if m.endswith((".sym", ".asym")) else m, []).append(m)
    for base, selectors in bases.items():
        ref = f"{base}.sym" if f"{base}.sym" in selectors else selectors[0]
        values = dist.loc[dist["method"] == ref, "distance"].to_numpy(float)
        spread = float(np.ptp(values)) if len(values) > 1 else float("inf")
        if spread <= tol:
            out.update({m: spread for m in selectors})
    return out


def agnostic_distances(cands: pd.DataFrame, opt: pd.DataFrame, expert_images: dict[str, int] | None = None
                       ) -> pd.DataFrame:
    """The target-agnostic rankings as a long distance table (method, source = expert, target, distance).

    ``agnostic.mean_quality``: for target t, each candidate expert's mean relative increase over the optimum on the
    other targets of the table where it is a candidate; t's own column is never used (leave one target out).
    An expert that is a candidate on no other target has no distance (the selector skips that target).
    ``agnostic.most_images`` (only with ``expert_images``, {expert: training images of its task}): distance =
    -images, the same for every target.
    """
    rel = cands.assign(rel=(cands["test_error"].to_numpy(float)
                            - opt.loc[cands["target"], "optimal_error"].to_numpy(float))
                       / opt.loc[cands["target"], "denominator"].to_numpy(float))
    matrix = rel.pivot(index="expert", columns="target", values="rel")  # NaN where not a candidate
    values, targets = matrix.to_numpy(float), list(matrix.columns)
    others = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an expert with no other target: NaN, no choice
        for j, target in enumerate(targets):
            others[target] = pd.Series(np.nanmean(np.delete(values, j, axis=1), axis=1), index=matrix.index)
    mean_other = np.array([others[t][e] for e, t in zip(cands["expert"], cands["target"])], dtype=float)
    parts = [pd.DataFrame({"method": MEAN_QUALITY, "source": cands["expert"].astype(object),
                           "target": cands["target"].astype(object), "distance": mean_other})]
    if expert_images is not None:
        missing = sorted(set(cands["expert"]) - set(expert_images))
        if missing:
            raise ValueError(f"{MOST_IMAGES}: no training-image count for expert(s) {missing}")
        parts.append(pd.DataFrame({"method": MOST_IMAGES, "source": cands["expert"].astype(object),
                                   "target": cands["target"].astype(object),
                                   "distance": -cands["expert"].map(expert_images).to_numpy(float)}))
    return pd.concat(parts, ignore_index=True)


def method_kind(method: str, generic: str = "generic") -> str:
    """What a selector is: reference (oracle, the noise ceiling, random, generic), target-agnostic, two-stage,
    per-expert (a transferability score) or embedding."""
    from .transferability import SCORE_NAMES

    if method in (*REFERENCE_METHODS, generic):
        return "reference"
    if method in AGNOSTIC_METHODS:
        return "target-agnostic"
    if ">" in method:
        return "two-stage"
    return "per-expert" if method in SCORE_NAMES else "embedding"


def selector_cost(method: str, n_candidates: float, generic: str = "generic") -> float:
    """Forward passes over a new task's data needed to rank the bank for it: 1 probe pass for an embedding, one
    pass per candidate expert for a per-expert score (and for the oracle, which also trains a classifier on each),
    1 + k for a two-stage selector with a shortlist of k, 0 for the fixed choices (generic, random) and the
    target-agnostic rankings, which never look at the new task. The noise ceiling costs what the oracle does."""
    kind = method_kind(method, generic)
    if kind == "embedding":
        return 1.0
    if kind == "two-stage":
        return 1.0 + min(float(method.rsplit("@", 1)[1]), n_candidates)
    if kind == "per-expert" or method in (ORACLE, NOISE_CEILING):
        return float(n_candidates)
    return 0.0


def method_order(methods: list[str] | set[str] | pd.Index, generic: str = "generic") -> list[str]:
    """Display order of methods: oracle, the noise ceiling, embedding methods, per-expert scores, two-stage
    selectors, target-agnostic rankings (each kind by name), generic, random (absent ones skipped)."""
    present = set(methods)
    rank = {k: i for i, k in enumerate(KINDS)}
    chosen = sorted(present - {*REFERENCE_METHODS, generic}, key=lambda m: (rank[method_kind(m, generic)], m))
    return [m for m in [ORACLE, NOISE_CEILING, *chosen, generic, RANDOM] if m in present]


def _selection_frame(rows: list[dict]) -> pd.DataFrame:
    """Selection rows to a DataFrame with the fixed column order and dtypes (chosen stays object to hold None)."""
    sel = pd.DataFrame(rows, columns=list(SELECTION_COLUMNS))
    sel["chosen"] = sel["chosen"].astype(object)
    for c in ("chosen_error", "optimal_error", "relative_increase", "hit", "rank_corr"):
        sel[c] = sel[c].astype(float)
    sel["n_candidates"] = sel["n_candidates"].astype(int)
    return sel


def summarize_selection(
    selection: pd.DataFrame, generic: str = "generic", bootstrap: dict | BootstrapSettings | None = None,
    skipped: dict[str, int] | None = None,
) -> pd.DataFrame:
    """One row per method: kind, cost, target count (and targets skipped), mean errors, mean/median relative
    increase, hit rate, mean rank corr, mean weighted tau; the mean relative increase, the hit rate and the mean
    weighted tau with their bootstrap interval over targets (``bootstrap``: resamples, seed, level; see
    :func:`taskspace.uncertainty.bootstrap_interval`; targets where the tau is undefined are left out of its mean)."""
    _require_columns(selection, SELECTION_COLUMNS, "selection")
    boot = BootstrapSettings.from_config(bootstrap, "selection.bootstrap", check=False).as_dict()
    skipped = skipped or {}
    n_candidates = selection.groupby("target")["n_candidates"].first()
    rows = []
    for method in method_order(set(selection["method"]) | set(skipped), generic):
        s = selection[selection["method"] == method]
        inc_lo, inc_hi = bootstrap_interval(s["relative_increase"].to_numpy(float), **boot)
        hit_lo, hit_hi = bootstrap_interval(s["hit"].to_numpy(float), **boot)
        taus = s["weighted_tau"].to_numpy(float)
        taus = taus[np.isfinite(taus)]
        tau_lo, tau_hi = bootstrap_interval(taus, **boot)
        rows.append(
            {
                "method": method,
                "kind": method_kind(method, generic),
                "cost": selector_cost(method, float(n_candidates.mean()), generic),
                "n_targets": int(s["target"].nunique()),
                "n_skipped": int(skipped.get(method, 0)),
                "mean_optimal_error": float(s["optimal_error"].mean()),
                "mean_chosen_error": float(s["chosen_error"].mean()),
                "mean_relative_increase": float(s["relative_increase"].mean()),
                "mean_relative_increase_lo": inc_lo,
                "mean_relative_increase_hi": inc_hi,
                "median_relative_increase": float(s["relative_increase"].median()),
                "top1_hit_rate": float(s["hit"].mean()),
                "top1_hit_rate_lo": hit_lo,
                "top1_hit_rate_hi": hit_hi,
                "mean_rank_corr": float(s["rank_corr"].mean(skipna=True)),
                "mean_weighted_tau": float(taus.mean()) if len(taus) else float("nan"),
                "mean_weighted_tau_lo": tau_lo,
                "mean_weighted_tau_hi": tau_hi,
            }
        )
    summary = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
    summary[["n_targets", "n_skipped"]] = summary[["n_targets", "n_skipped"]].astype(int)
    return summary


def _score_names(transfer: pd.DataFrame, names: list[str] | None) -> tuple[list[str], list[str]]:
    """(plain scores, pool scores) among ``names`` (None: every score whose columns the transfer table has); a name
    whose columns are missing is an error naming them."""
    if names is None:
        plain = sorted(c[len(SCORE_PREFIX):] for c in transfer.columns if c.startswith(SCORE_PREFIX))
        pool = sorted(n for n, p in POOL_SCORES.items() if set(p.columns(n)) <= set(transfer.columns))
        return plain, pool
    plain = [n for n in names if n not in POOL_SCORES]
    pool = [n for n in names if n in POOL_SCORES]
    missing = [SCORE_PREFIX + n for n in plain if SCORE_PREFIX + n not in transfer.columns]
    missing += [c for n in pool for c in POOL_SCORES[n].columns(n) if c not in transfer.columns]
    if missing:
        raise ValueError(f"transfer table lacks score column(s) {missing}; "
                         "set transfer.scores in the config to compute them")
    return plain, pool


def pool_score_distances(transfer: pd.DataFrame, cands: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """The pool scores ``names`` (see :class:`taskspace.transferability.PoolScore`) as a long distance table: per
    target, the raw terms (columns of ``transfer``) of its candidates (``cands``: expert, target) combined over
    exactly those candidates; distance = -score, NaN where a candidate's terms are undefined."""
    parts = []
    for name in names:
        pool = POOL_SCORES[name]
        columns = pool.columns(name)
        terms = transfer[["expert", "task", *columns]].rename(columns={"task": "target"})
        rows = cands[["expert", "target"]].merge(terms, on=["expert", "target"], how="left", validate="one_to_one")
        for target, group in rows.groupby("target", sort=True):
            scores = np.asarray(pool.combine(group[columns].to_numpy(float)), dtype=float)
            parts.append(pd.DataFrame({"method": name, "source": group["expert"].astype(object).to_numpy(),
                                       "target": target, "distance": -scores}))
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=float if c == "distance" else object) for c in DISTANCE_COLUMNS})
    return pd.concat(parts, ignore_index=True)


def score_distances(transfer: pd.DataFrame, names: list[str] | None = None) -> pd.DataFrame:
    """The per-expert scores of a transfer table (columns ``score_<name>``; None = every such column) as a long
    distance table (method = score name, distance = -score, so that the closest is the best), NaN kept: an
    undefined score on a pair. Pool scores (columns ``pool_<name>_<term>``) are left out: their value depends on
    the candidates (:func:`pool_score_distances`)."""
    names, _ = _score_names(transfer, names)
    parts = [
        pd.DataFrame({"method": name, "source": transfer["expert"].astype(object),
                      "target": transfer["task"].astype(object),
                      "distance": -pd.to_numeric(transfer[SCORE_PREFIX + name], errors="raise").astype(float)})
        for name in names
    ]
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=float if c == "distance" else object) for c in DISTANCE_COLUMNS})
    return pd.concat(parts, ignore_index=True)


def score_selection(
    transfer: pd.DataFrame,
    distances: pd.DataFrame | None,
    generic: str = "generic",
    seed_free: bool = True,
    scores: list[str] | None = None,
    rerank: list[tuple[str, str, int]] | None = None,
    bootstrap: dict | None = None,
    expert_images: dict[str, int] | None = None,
    replicates: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Score every method's expert choice on every target; return (selection, summary).

    transfer: long table with columns expert, task, test_error (fraction), n_test, and a ``score_<name>`` column
    per transferability score and ``pool_<name>_<term>`` columns per pool score (NCTI; others ignored).
    distances: long table with columns method, source (expert's task), target, distance (lower = closer), or None
    / zero rows for the reference selections only.
    scores: the scores scored as selectors (None = every score whose columns the table has; a pool score is
    combined over each target's candidates, :func:`pool_score_distances`); each picks the candidate with
    the highest score, and a target where a candidate's score is NaN (undefined) is skipped by that selector and
    counted in the summary's n_skipped. rerank: (embedding method, score, k) two-stage selectors.
    expert_images: {expert: training images of its task}; adds the target-agnostic ``agnostic.most_images``
    beside ``agnostic.mean_quality`` (see :func:`agnostic_distances`), which is always scored.
    replicates: every replicate's transfer rows (a ``replicate`` column; ``transfer`` is then their mean, see
    :mod:`taskspace.replicates`); with two or more, the reference ``noise_ceiling`` is scored
    (:func:`noise_ceiling_rows`).

    Targets are the tasks with at least one candidate; candidates for t are the experts e != t, e != generic
    with a transfer row on t. The optimum and every method's choice break ties by expert name.
    relative_increase = (err(chosen) - err(optimal)) / max(err(optimal), 0.5 / n_test): the floor of half a
    test image (n_test of the optimal expert's row) only matters when the optimal error is 0, where the ratio is
    otherwise undefined; optimal_error still holds the true value. hit = err(chosen) <= err(optimal) (ties hit).
    rank_corr = Spearman(distance, error) over the candidates (positive = closer experts transfer better; for a
    score, distance = -score); weighted_tau = the weighted Kendall tau of -distance and -error (see
    :func:`weighted_tau`).
    Reference methods: oracle (the optimum), random (exact expectation over the candidates: chosen None, mean
    error, mean relative increase, fraction of candidates at the optimum as hit), and generic (only on targets
    with a generic row). The random baseline needs no seed, so seed_free must be True.
    A distance selector whose embedding is degenerate on these candidates (:func:`degenerate_methods`) makes no
    choice: a warning names it, and the summary counts every target as skipped.
    Raises ValueError when a candidate lacks a distance row for a method, naming method, target and experts.
    """
    if seed_free is not True:
        raise ValueError("score_selection: only the exact (seed-free) expectation of the random baseline exists")
    t = _check_transfer(transfer)
    dist = _check_distances(distances, generic)
    plain, pooled = _score_names(transfer, scores)
    cands = candidate_table(t, generic)
    if cands.empty:
        raise ValueError("transfer table: no target has a candidate expert (an expert other than its own/generic)")
    sdist = pd.concat([score_distances(transfer, plain), pool_score_distances(transfer, cands, pooled)],
                      ignore_index=True)
    taken = sorted(set(dist["method"]) & set(sdist["method"]))
    if taken:
        raise ValueError(f"distance table: method name(s) {taken} are also transfer-table score columns")
    opt = _optimum(cands)
    by_method, skipped = dict(_reference_rows(t, cands, opt, generic)), {}
    noise = noise_ceiling_rows(replicates, cands, opt) if replicates is not None else []
    if noise:
        by_method[NOISE_CEILING] = noise
    candidate_dist = dist.merge(cands[["expert", "target"]].rename(columns={"expert": "source"}),
                                on=["source", "target"])
    degenerate = degenerate_methods(candidate_dist)
    for m, spread in degenerate.items():
        warnings.warn(f"selector {m!r}: its embedding is degenerate here (the distances between the candidates and "
                      f"the targets spread by {spread:.2g} in all, within float precision): it ranks rounding noise, "
                      "and is scored as undefined on every target", RuntimeWarning, stacklevel=2)
        skipped[m] = int(cands["target"].nunique())
    for m in sorted(set(dist["method"]) - set(degenerate)):
        by_method[m], _ = _method_rows(m, cands, dist, opt)
    for m in sorted(sdist["method"].unique()):
        by_method[m], gone = _method_rows(m, cands, sdist, opt, undefined_skips=True)
        skipped[m] = len(gone)
    adist = agnostic_distances(cands, opt, expert_images)
    taken = sorted(set(adist["method"]) & (set(dist["method"]) | set(sdist["method"])))
    if taken:
        raise ValueError(f"method name(s) {taken} are reserved for the target-agnostic rankings")
    for m in sorted(adist["method"].unique()):
        by_method[m], gone = _method_rows(m, cands, adist, opt, undefined_skips=True)
        skipped[m] = len(gone)
    both = pd.concat([dist, sdist], ignore_index=True)
    for embedding, score, k in rerank or []:
        if embedding not in set(dist["method"]):
            raise ValueError(f"two-stage selector: embedding method {embedding!r} has no distances; "
                             f"there are {sorted(set(dist['method']))}")
        if score not in set(sdist["method"]):
            raise ValueError(f"two-stage selector: score {score!r} is not a transfer-table score column; "
                             f"there are {sorted(set(sdist['method']))}")
        name = rerank_name(embedding, score, k)
        if embedding in degenerate:  # its shortlist would be rounding noise
            skipped[name] = int(cands["target"].nunique())
            continue
        by_method[name], gone = _rerank_rows(embedding, score, int(k), cands, both, opt)
        skipped[name] = len(gone)
    rows = [row for method in method_order(by_method, generic) for row in by_method[method]]
    selection = _selection_frame(rows)
    return selection, summarize_selection(selection, generic, bootstrap, skipped)


def similarity_to_distance(sim: pd.DataFrame, method: str) -> pd.DataFrame:
    """Square similarity matrix (index = source, columns = target) -> long distance table, distance = -similarity.

    The diagonal is dropped, and so are missing (NaN) entries, which score_selection then reports by name.
    """
    if not sim.index.is_unique or not sim.columns.is_unique:
        raise ValueError(f"similarity matrix for {method!r}: task names in index/columns must be unique")
    if set(sim.index) != set(sim.columns):
        only_rows = sorted(set(sim.index) - set(sim.columns))
        only_cols = sorted(set(sim.columns) - set(sim.index))
        raise ValueError(
            f"similarity matrix for {method!r} is not square over one task list: "
            f"only in index {only_rows}, only in columns {only_cols}"
        )
    values = sim.to_numpy(dtype=float)
    source = np.repeat(np.asarray(sim.index, dtype=object), len(sim.columns))
    target = np.tile(np.asarray(sim.columns, dtype=object), len(sim.index))
    long = pd.DataFrame({"method": method, "source": source, "target": target, "distance": -values.ravel()})
    keep = (long["source"] != long["target"]) & long["distance"].notna()
    return long[keep].reset_index(drop=True)


def load_reference_cub_inat(folder: str | os.PathLike) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Read the published CUB+iNat CSVs as (transfer, distances): errors as fractions, imagenet as generic, TTK.

    n_test is not published; it is set to 10**9 so the zero-error floor of score_selection never applies
    (no released error is 0 anyway).
    """
    raw = pd.read_csv(os.path.join(folder, "transfer_errors.csv"))
    _require_columns(raw, ("target_task", "source", "test_error_pct"), "transfer_errors.csv")
    transfer = pd.DataFrame(
        {
            "expert": raw["source"].replace({"imagenet": "generic"}).astype(object),
            "task": raw["target_task"].astype(object),
            "test_error": raw["test_error_pct"].astype(float) / 100.0,
            "n_test": np.full(len(raw), REFERENCE_N_TEST, dtype=np.int64),
        }
    )
    sim = pd.read_csv(os.path.join(folder, "ttk_similarity.csv"), index_col=0)
    return transfer, similarity_to_distance(sim, "ttk")
