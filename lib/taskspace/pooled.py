"""Pooled evidence over several worlds: a bootstrap that draws the worlds, the targets within each drawn world and
that world's experts, and scores every selector again on each draw.

Why the experts too: a selector's relative increase depends on the expert pool twice, through the oracle (the best
candidate) and, for some selectors, through the ranking itself: NCTI is min-max normalised over the candidates,
and the target-agnostic mean quality averages relative increases that are measured against the oracle. A draw of
n experts with replacement keeps each with probability 1 - (1 - 1/n)^n (about 63 %); every selector then chooses
among the drawn candidates of a target, NCTI's terms are normalised over exactly those, and the mean quality is
measured against their oracle. A target none of whose candidates was drawn is left out of that draw.

On the full pool every selector's choice is the one of :func:`taskspace.selection.score_selection` (same rankings,
same ties by expert name; tested): the draws only change the pool. The interval of a mean or of a paired
difference is the percentile interval of its value over the draws (:func:`draw_means`); a verdict is read from
it as everywhere else (:func:`taskspace.uncertainty.verdict`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .results import GENERIC, Layout, read_table
from .selection import (
    MEAN_QUALITY,
    MOST_IMAGES,
    ORACLE,
    RANDOM,
    candidate_table,
    method_kind,
    rerank_name,
)
from .transferability import POOL_SCORES, SCORE_PREFIX


@dataclass
class World:
    """One world's matrix and every selector's ranking input, as arrays over (targets, experts).

    ``errors``: the candidates' test errors (NaN where an expert is no candidate of a target); ``floor``: half a
    test image per target (the relative increase's floor); ``generic``: the generic expert's error per target (NaN
    where it has none); ``distances``: a fixed ranking per selector (lower = chosen first; NaN = undefined there);
    ``pool_terms``: the raw terms of each pool score (targets x experts x terms); ``rerank``: the two-stage
    selectors (embedding, score, shortlist); ``mean_quality``: whether ``agnostic.mean_quality`` is scored.
    """

    name: str
    targets: list[str]
    experts: list[str]
    errors: np.ndarray
    floor: np.ndarray
    generic: np.ndarray
    distances: dict[str, np.ndarray] = field(default_factory=dict)
    pool_terms: dict[str, np.ndarray] = field(default_factory=dict)
    rerank: list[tuple[str, str, int]] = field(default_factory=list)
    mean_quality: bool = True

    @property
    def methods(self) -> list[str]:
        """Every selector scored on this world (references included)."""
        names = [ORACLE, GENERIC, RANDOM, *self.distances, *self.pool_terms,
                 *(rerank_name(e, s, k) for e, s, k in self.rerank)]
        return names + ([MEAN_QUALITY] if self.mean_quality else [])


def _matrix(long: pd.DataFrame, targets: list[str], experts: list[str], column: str = "distance") -> np.ndarray:
    wide = long.pivot_table(index="target", columns="expert", values=column, aggfunc="first", dropna=False)
    return wide.reindex(index=targets, columns=experts).to_numpy(float)


def world_from_tables(name: str, transfer: pd.DataFrame, distances: pd.DataFrame | None, methods: list[str],
                      expert_images: dict[str, int] | None = None, generic: str = GENERIC) -> World:
    """A world from the tables a run's select stage reads (the transfer matrix, the distance table with its
    ``method`` column) and the selectors its selection table holds (``methods``: which embeddings, scores, two-stage
    and target-agnostic selectors to score)."""
    cands = candidate_table(transfer, generic)
    targets, experts = sorted(set(cands["target"])), sorted(set(cands["expert"]))
    errors = _matrix(cands.rename(columns={"test_error": "distance"}), targets, experts)
    n_test = cands.groupby("target")["n_test"].first().reindex(targets).to_numpy(float)
    g = transfer[transfer["expert"] == generic].set_index("task")["test_error"]
    world = World(name, targets, experts, errors, 0.5 / n_test, g.reindex(targets).to_numpy(float),
                  mean_quality=MEAN_QUALITY in methods)
    dist = distances if distances is not None else pd.DataFrame(columns=["method", "source", "target", "distance"])
    dist = dist.rename(columns={"source": "expert"})
    for m in methods:
        kind = method_kind(m, generic)
        if m in POOL_SCORES:
            columns = POOL_SCORES[m].columns(m)
            terms = transfer[transfer["expert"] != generic].rename(columns={"task": "target"})
            world.pool_terms[m] = np.stack([_matrix(terms, targets, experts, c) for c in columns], axis=-1)
        elif kind == "per-expert":
            scores = transfer.rename(columns={"task": "target"}).assign(
                distance=-pd.to_numeric(transfer[SCORE_PREFIX + m], errors="raise").astype(float))
            world.distances[m] = _matrix(scores, targets, experts)
        elif kind == "embedding":
            world.distances[m] = _matrix(dist[dist["method"] == m], targets, experts)
        elif m == MOST_IMAGES:
            if expert_images is None:
                raise ValueError(f"world {name!r}: {MOST_IMAGES} needs the experts' training-image counts")
            world.distances[m] = np.tile(-np.array([expert_images[e] for e in experts], float), (len(targets), 1))
        elif kind == "two-stage":
            embedding, rest = m.split(">", 1)
            score, k = rest.rsplit("@", 1)
            world.rerank.append((embedding, score, int(k)))
    for embedding, score, _ in world.rerank:
        for needed in (embedding, score):
            if needed not in world.distances and needed not in world.pool_terms:
                raise ValueError(f"world {name!r}: two-stage selector needs {needed!r}, which is not scored there")
    return world


def world_from_run(results: str | Path, name: str | None = None, meta_task: str = "all") -> World:
    """A world from a finished run's results folder: its transfer matrix (the replicate mean), distances, task table,
    and the selectors its selection table scored on ``meta_task`` (restricted to that meta-task's targets)."""

    layout = Layout(str(results))
    selection = read_table(layout.table("selection"))
    selection = selection[selection["meta_task"] == meta_task]
    if selection.empty:
        raise ValueError(f"{results}: no selection rows for meta-task {meta_task!r}")
    targets = set(selection["target"])
    transfer = read_table(layout.transfer())
    transfer = transfer[transfer["task"].isin(targets)]
    folder = Path(layout.distances()).parent
    dist = pd.concat([read_table(p) for p in sorted(folder.glob("*.parquet"))], ignore_index=True) \
        if folder.is_dir() else None
    tasks = read_table(layout.tasks_table())
    images = dict(zip(tasks["task"].astype(str), tasks["n_train"].astype(int)))
    methods = [m for m in dict.fromkeys(selection["method"]) if m not in (ORACLE, GENERIC, RANDOM)]
    return world_from_tables(name or str(results), transfer, dist, methods, images)


def _first(order_keys: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Per row, the column of the smallest key among ``allowed`` (ties: the first column, i.e. by expert name);
    -1 where nothing is allowed."""
    keys = np.where(allowed, order_keys, np.inf)
    pick = keys.argmin(axis=1)
    return np.where(allowed.any(axis=1), pick, -1)


def score_pool(world: World, keep: np.ndarray) -> dict[str, np.ndarray]:
    """Every selector's relative increase per target when only the experts ``keep`` (bool, per expert) are in the
    pool: NaN where a selector makes no choice (a candidate's ranking undefined) or the target has no candidate."""
    cand = np.isfinite(world.errors) & keep[None, :]
    has = cand.any(axis=1)
    err = np.where(cand, world.errors, np.inf)
    opt = np.where(has, err.min(axis=1), np.nan)
    den = np.maximum(opt, world.floor)
    rows = np.arange(len(world.targets))
    with np.errstate(invalid="ignore"):
        rel = (world.errors - opt[:, None]) / den[:, None]  # every candidate's relative increase, NaN elsewhere

    def chosen(pick: np.ndarray, defined: np.ndarray) -> np.ndarray:
        out = np.full(len(rows), np.nan)
        ok = defined & (pick >= 0)
        out[ok] = rel[rows[ok], pick[ok]]
        return out

    def by_ranking(d: np.ndarray) -> np.ndarray:
        defined = has & ~(cand & ~np.isfinite(d)).any(axis=1)  # a candidate without a value: no choice
        return chosen(_first(np.nan_to_num(d, nan=np.inf), cand), defined)

    out = {ORACLE: np.where(has, 0.0, np.nan),
           GENERIC: np.where(has, (world.generic - opt) / den, np.nan)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out[RANDOM] = np.where(has, np.nanmean(np.where(cand, rel, np.nan), axis=1), np.nan)
    rankings = dict(world.distances)
    for m, terms in world.pool_terms.items():  # normalised over this pool's candidates of each target
        d = np.full(world.errors.shape, np.nan)
        for t in np.flatnonzero(has):
            cols = np.flatnonzero(cand[t])
            d[t, cols] = -np.asarray(POOL_SCORES[m].combine(terms[t, cols]), dtype=float)
        rankings[m] = d
    if world.mean_quality:  # each candidate's mean relative increase on the other targets, against this pool's oracle
        r = np.where(cand, rel, np.nan)
        others = np.full(r.shape, np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a candidate on no other target: NaN, no choice
            for t in range(len(rows)):
                others[t] = np.nanmean(np.delete(r, t, axis=0), axis=0)
        rankings[MEAN_QUALITY] = np.where(cand, others, np.nan)
    for m, d in rankings.items():
        out[m] = by_ranking(d)
    for embedding, score, k in world.rerank:
        e, s = rankings[embedding], rankings[score]
        value = np.full(len(rows), np.nan)
        for t in np.flatnonzero(has):
            cols = np.flatnonzero(cand[t])  # in expert-name order: stable sorts keep ties by name
            short = np.sort(cols[np.argsort(e[t, cols], kind="stable")[:k]])
            if np.isfinite(s[t, short]).all():
                value[t] = rel[t, short[np.argsort(s[t, short], kind="stable")[0]]]
        out[rerank_name(embedding, score, k)] = value
    return out


def draw_means(worlds: list[World], resamples: int = 2000, seed: int = 0, experts: bool = True) -> pd.DataFrame:
    """The bootstrap distribution of every selector's pooled mean relative increase: (resamples x selectors).

    Each draw takes the worlds with replacement; for each drawn world, its experts with replacement (``experts``;
    False keeps the whole pool) and its targets with replacement, scoring every selector on that pool
    (:func:`score_pool`); a selector's mean is over every drawn target where it made a choice. All selectors see the
    same draw, so the difference of two columns is the bootstrap distribution of their paired difference. Seeded."""
    methods = list(dict.fromkeys(m for w in worlds for m in w.methods))
    rng = np.random.default_rng(int(seed))
    full = [score_pool(w, np.ones(len(w.experts), bool)) for w in worlds]
    sums, counts = np.zeros((int(resamples), len(methods))), np.zeros((int(resamples), len(methods)))
    for b in range(int(resamples)):
        for w in rng.integers(0, len(worlds), size=len(worlds)):
            world = worlds[w]
            if experts:
                keep = np.zeros(len(world.experts), bool)
                keep[rng.integers(0, len(world.experts), size=len(world.experts))] = True
                scored = score_pool(world, keep)
            else:
                scored = full[w]
            picks = rng.integers(0, len(world.targets), size=len(world.targets))
            for j, m in enumerate(methods):
                if m in scored:
                    v = scored[m][picks]
                    ok = np.isfinite(v)
                    sums[b, j] += v[ok].sum()
                    counts[b, j] += ok.sum()
    with np.errstate(invalid="ignore"):
        return pd.DataFrame(sums / counts, columns=methods)


def per_target(worlds: list[World]) -> pd.DataFrame:
    """Every selector's relative increase on every target of every world, on the full pools: a selection-like long
    table (method, target as ``<world>/<target>``, relative_increase)."""
    parts = []
    for w in worlds:
        for m, v in score_pool(w, np.ones(len(w.experts), bool)).items():
            parts.append(pd.DataFrame({"method": m, "target": [f"{w.name}/{t}" for t in w.targets],
                                       "relative_increase": v}))
    table = pd.concat(parts, ignore_index=True)
    return table[np.isfinite(table["relative_increase"])].reset_index(drop=True)


@dataclass(frozen=True)
class WorldRun:
    """One world of a pooled study: a study config and the seed it is run with (``data.seed`` = ``seed``)."""

    config: Path
    seed: int

    @property
    def name(self) -> str:
        """``seed-<s>`` for the demo's config.yaml, ``<config stem>-seed-<s>`` for another."""
        return f"seed-{self.seed}" if self.config.name == "config.yaml" else f"{self.config.stem}-seed-{self.seed}"


def load_world_list(path: str | Path) -> list[WorldRun]:
    """The worlds a pooled study runs, from a YAML file ``worlds: [{config: FILE, seeds: [s, ...]}, ...]`` (config
    paths relative to the file's folder's parent when not absolute, i.e. to the repository for benchmarks/*.yaml).
    Every entry needs its config and at least one seed; a world listed twice is an error. Errors name the key."""
    import yaml

    from .errors import ConfigError

    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"{path}: not a readable world list ({err})") from err
    entries = data.get("worlds") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ConfigError(f"{path}: config key worlds: a list of {{config: FILE, seeds: [...]}} entries is needed")
    root = path.resolve().parent.parent
    out: list[WorldRun] = []
    for i, entry in enumerate(entries):
        key = f"worlds[{i}]"
        if not isinstance(entry, dict):
            raise ConfigError(f"{path}: config key {key}: an entry is a mapping {{config: FILE, seeds: [...]}}")
        unknown = sorted(set(entry) - {"config", "seeds"})
        if unknown:
            raise ConfigError(f"{path}: config key {key}: unknown key(s) {unknown}; known: config, seeds")
        if not isinstance(entry.get("config"), str):
            raise ConfigError(f"{path}: config key {key}.config: the study config file is missing")
        seeds = entry.get("seeds")
        if not isinstance(seeds, list) or not seeds:
            raise ConfigError(f"{path}: config key {key}.seeds: at least one world seed is needed, got {seeds!r}")
        if any(isinstance(s, bool) or not isinstance(s, int) or s < 0 for s in seeds):
            raise ConfigError(f"{path}: config key {key}.seeds: seeds are non-negative integers, got {seeds!r}")
        config = Path(entry["config"])
        config = config if config.is_absolute() else root / config
        if not config.is_file():
            raise ConfigError(f"{path}: config key {key}.config: {config} does not exist")
        for s in seeds:
            world = WorldRun(config, int(s))
            if world in out:
                raise ConfigError(f"{path}: config key {key}.seeds: world {world.name} is listed twice")
            out.append(world)
    return out
