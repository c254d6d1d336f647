"""The pooled bootstrap's re-scoring (taskspace.pooled): on any pool of experts, every selector's relative increase is
the one score_selection gives on the transfer and distance tables restricted to that pool, NCTI normalised and the
mean quality measured over exactly those experts."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from taskspace.fidelity import REPRODUCED, selection_claims
from taskspace.pooled import World, draw_means, per_target, score_pool, world_from_tables
from taskspace.selection import score_selection
from taskspace.transferability import POOL_SCORES

TASKS = [f"t{i}" for i in range(8)]
EXPERTS = TASKS[:6]
RERANK = [("emb", "logme", 2)]


def _tables(seed: int = 0):
    rng = np.random.default_rng(seed)
    rows = []
    for e in EXPERTS + ["generic"]:
        for t in TASKS:
            row = {"expert": e, "task": t, "n_test": 40, "test_error": float(rng.integers(1, 40)) / 40,
                   "score_logme": float(rng.normal()), "score_knn": float(rng.normal())}
            for c in POOL_SCORES["ncti"].columns("ncti"):
                row[c] = float(rng.normal())
            rows.append(row)
    transfer = pd.DataFrame(rows)
    transfer.loc[(transfer.expert == "t2") & (transfer.task == "t6"), "score_knn"] = np.nan  # undefined there
    dist = pd.DataFrame([{"method": m, "source": e, "target": t, "distance": float(rng.random())}
                         for m in ("emb", "emb.other") for e in EXPERTS for t in TASKS])
    images = {e: int(rng.integers(10, 100)) for e in EXPERTS}
    return transfer, dist, images


def _selection(transfer, dist, images, experts):
    t = transfer[transfer.expert.isin(experts + ["generic"])]
    d = dist[dist.source.isin(experts)]
    sel, _ = score_selection(t, d, scores=["logme", "knn", "ncti"], rerank=RERANK, expert_images=images)
    return sel


def _world(transfer, dist, images):
    sel = _selection(transfer, dist, images, EXPERTS)
    methods = [m for m in dict.fromkeys(sel.method) if m not in ("oracle", "generic", "random")]
    assert {"emb", "logme", "knn", "ncti", "emb>logme@2", "agnostic.mean_quality", "agnostic.most_images"} <= set(methods)
    return world_from_tables("w", transfer, dist, methods, images)


@pytest.mark.parametrize("kept", [EXPERTS, ["t0", "t1", "t3", "t5"], ["t1", "t4"], ["t2", "t3", "t4"]])
def test_any_pool_scores_as_score_selection_on_that_pool(kept):
    transfer, dist, images = _tables()
    world = _world(transfer, dist, images)
    scored = score_pool(world, np.array([e in kept for e in world.experts]))
    sel = _selection(transfer, dist, images, kept)
    for method, values in scored.items():
        expected = sel[sel.method == method].set_index("target").relative_increase.reindex(world.targets)
        np.testing.assert_allclose(values, expected.to_numpy(float), rtol=0, atol=1e-12, err_msg=method)


def test_a_target_without_a_drawn_candidate_is_left_out():
    transfer, dist, images = _tables()
    world = _world(transfer, dist, images)
    scored = score_pool(world, np.array([e == "t3" for e in world.experts]))
    t3 = world.targets.index("t3")  # its only drawn expert is its own
    assert all(np.isnan(v[t3]) for v in scored.values())
    assert scored["oracle"][world.targets.index("t0")] == 0.0


def test_draws_are_paired_seeded_and_reduce_to_the_full_pool_without_resampling():
    transfer, dist, images = _tables()
    world = _world(transfer, dist, images)
    a = draw_means([world], resamples=50, seed=3)
    pd.testing.assert_frame_equal(a, draw_means([world], resamples=50, seed=3))
    assert (a["oracle"] == 0).all()
    # a single world and one target drawn many times: with the whole pool kept, every draw's mean is a mean of the
    # full pool's values, so the draws' spread is the targets' alone
    fixed = draw_means([world], resamples=400, seed=0, experts=False)
    full = per_target([world])
    logme = full[full.method == "logme"].relative_increase
    assert fixed["logme"].min() >= logme.min() - 1e-12 and fixed["logme"].max() <= logme.max() + 1e-12
    assert abs(fixed["logme"].mean() - logme.mean()) < 3 * fixed["logme"].std() / np.sqrt(400)  # centred on it


def test_pooled_claims_read_their_verdict_from_the_given_draws():
    # two worlds where asymmetric Task2Vec is always the best candidate, random never: the claim holds pooled
    errors = np.array([[0.1, 0.3, 0.5], [0.1, 0.3, 0.5]])
    worlds = []
    for name in ("a", "b"):
        w = World(name, ["x", "y"], ["e0", "e1", "e2"], errors.copy(), np.full(2, 0.01), np.array([0.3, 0.3]),
                  distances={"task2vec.asym": np.array([[0.0, 1.0, 2.0], [0.0, 1.0, 2.0]])}, mean_quality=False)
        worlds.append(w)
    draws = draw_means(worlds, resamples=200, seed=0, experts=False)
    claims = {c.text.split(" (")[0]: c for c in selection_claims(per_target(worlds), boot=draws)}
    claim = claims["asymmetric Task2Vec beats the generic expert, which beats random"]
    assert claim.verdict == REPRODUCED, claim.evidence


def test_worlds_that_disagree_widen_the_interval_beyond_the_flat_bootstrap():
    """Two worlds of 30 targets: selector a's expert is better in the first, b's in the second. Resampling the
    targets alone calls a better; resampling the worlds too says the sign is not known."""
    from taskspace.uncertainty import bootstrap_interval

    worlds = []
    for name, errors in (("one", [0.1, 0.2]), ("two", [0.15, 0.1])):
        n = 30
        worlds.append(World(name, [f"x{i}" for i in range(n)], ["e0", "e1"], np.tile(errors, (n, 1)),
                            np.full(n, 0.01), np.full(n, 0.5),
                            distances={"a": np.tile([0.0, 1.0], (n, 1)), "b": np.tile([1.0, 0.0], (n, 1))},
                            mean_quality=False))
    rows = per_target(worlds).pivot(index="target", columns="method", values="relative_increase")
    flat_lo, flat_hi = bootstrap_interval((rows["a"] - rows["b"]).to_numpy(), resamples=2000, seed=0)
    assert flat_hi < 0  # -1.0 on 30 targets, +0.5 on 30: the flat bootstrap excludes 0
    draws = draw_means(worlds, resamples=2000, seed=0, experts=False)
    lo, hi = np.quantile(draws["a"] - draws["b"], [0.025, 0.975])
    assert lo < 0 < hi and lo == pytest.approx(-1.0) and hi == pytest.approx(0.5)


def test_the_world_list_names_each_world_and_stops_naming_the_key(tmp_path):
    from conftest import REPO

    from taskspace.errors import ConfigError
    from taskspace.pooled import load_world_list

    worlds = load_world_list(REPO / "benchmarks" / "worlds.yaml")
    assert [w.name for w in worlds] == ["seed-0", "seed-1", "seed-2", "world96-seed-0"]
    assert all(w.config.is_file() for w in worlds)
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "a.yaml").write_text("seed: 0\n")
    bad = tmp_path / "lists" / "w.yaml"
    bad.parent.mkdir()
    for text, key in [("worlds:\n  - config: configs/a.yaml\n", r"worlds\[0\]\.seeds"),
                      ("worlds:\n  - config: configs/a.yaml\n    seeds: []\n", r"worlds\[0\]\.seeds"),
                      ("worlds:\n  - {config: configs/a.yaml, seeds: [0]}\n  - {seeds: [1]}\n", r"worlds\[1\]\.config"),
                      ("worlds:\n  - {config: configs/a.yaml, seeds: [0, 0]}\n", r"worlds\[0\]\.seeds.*twice"),
                      ("worlds:\n  - {config: configs/b.yaml, seeds: [0]}\n", r"worlds\[0\]\.config.*does not exist"),
                      ("worlds: []\n", "config key worlds")]:
        bad.write_text(text)
        with pytest.raises(ConfigError, match=key):
            load_world_list(bad)
