"""MODEL2VEC: learned model biases, scored on held-out targets (leave-one-target-out or K folds)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from taskspace.embeddings import Embedding
from taskspace.embeddings.model2vec import held_out_distances

CFG = {"base": "task2vec", "alpha": 0.15, "steps": 150, "lr": 0.05, "l2": 0.001}


def _bank(n: int = 6, seed: int = 0) -> dict[str, Embedding]:
    rng = np.random.default_rng(seed)
    trivial = np.full(20, 0.2)
    return {f"t{i}": Embedding(trivial + rng.gamma(1.0, size=20), {}, {"trivial": trivial}) for i in range(n)}


def _transfer(names: list[str], best: dict[str, str], seed: int = 0) -> pd.DataFrame:
    """Errors around 0.5 with noise; best[target] gets a clearly lower error."""
    rng = np.random.default_rng(seed)
    rows = []
    for t in names:
        for e in names + ["generic"]:
            err = 0.5 + 0.05 * rng.random()
            if best.get(t) == e:
                err = 0.1
            rows.append({"expert": e, "task": t, "test_error": err, "n_test": 100})
    return pd.DataFrame(rows)


def _choices(dist: pd.DataFrame) -> dict[str, str]:
    return dist.sort_values("distance").groupby("target").head(1).set_index("target")["source"].to_dict()


def test_learns_an_expert_that_is_best_everywhere():
    bank = _bank()
    names = sorted(bank)
    best = {t: ("t3" if t != "t3" else "t1") for t in names}
    dist, full = held_out_distances(bank, _transfer(names, best), CFG)
    assert len(dist) == len(names) * (len(names) - 1)
    picks = _choices(dist)
    # every target except t3 itself learns (from the other targets) that t3's expert is best
    assert all(picks[t] == "t3" for t in names if t != "t3")
    assert full.biases.shape == (len(names), 20) and np.isfinite(full.model_embeddings).all()
    assert (full.model_embeddings > 0).all()


@pytest.mark.parametrize("folds", [None, 3])
def test_a_target_never_sees_its_own_ground_truth(folds):
    cfg = {**CFG, "folds": folds}
    bank = _bank(seed=1)
    names = sorted(bank)
    best = {t: "t2" for t in names if t != "t2"}
    dist_a, _ = held_out_distances(bank, _transfer(names, best, seed=3), cfg)
    changed = dict(best, t0="t5")  # only target t0's own column changes
    dist_b, _ = held_out_distances(bank, _transfer(names, changed, seed=3).assign(
        test_error=lambda d: np.where((d.task == "t0") & (d.expert == "t2"), 0.9, d.test_error)), cfg)
    a = dist_a.set_index(["source", "target"]).distance
    b = dist_b.set_index(["source", "target"]).distance
    # t0's fold (t0 alone, or t0 and t3 with 3 folds over t0..t5) is scored without t0's column
    same = ["t0"] if folds is None else ["t0", "t3"]
    for t in same:
        pd.testing.assert_series_equal(a.xs(t, level="target"), b.xs(t, level="target"))
    assert not np.allclose(a.xs("t1", level="target"), b.xs("t1", level="target"))  # learned from t0's column


def test_one_fold_per_target_is_leave_one_target_out():
    bank = _bank(seed=2)
    names = sorted(bank)
    transfer = _transfer(names, {t: "t4" for t in names if t != "t4"}, seed=5)
    loo, _ = held_out_distances(bank, transfer, CFG)
    folds, _ = held_out_distances(bank, transfer, {**CFG, "folds": len(names)})
    pd.testing.assert_frame_equal(loo, folds)
    three, _ = held_out_distances(bank, transfer, {**CFG, "folds": 3})
    assert list(three.target) == list(loo.target) and list(three.source) == list(loo.source)
    assert not np.allclose(three.distance, loo.distance)  # other training sets, other biases


def test_missing_candidates_are_an_error():
    bank = _bank()
    names = sorted(bank)
    transfer = _transfer(names, {})
    transfer = transfer[~((transfer.task == "t4") & (transfer.expert != "t4"))]
    with pytest.raises(ValueError, match="t4"):
        held_out_distances(bank, transfer, CFG)


def test_two_tasks_learn_from_a_single_training_distance():
    # leave-one-target-out on two tasks: each fit sees one target and, its own expert excluded, one distance (no
    # spread to start the temperature from); the distances stay finite
    bank = _bank(n=2)
    names = sorted(bank)
    dist, full = held_out_distances(bank, _transfer(names, {"t0": "t1", "t1": "t0"}), CFG)
    assert len(dist) == 2 and np.isfinite(dist.distance).all()
    assert np.isfinite(full.model_embeddings).all()
