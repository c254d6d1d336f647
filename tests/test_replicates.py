"""Replicates of the experts (experts.replicates): names, the replicate axis and mean of the transfer matrix, the noise
ceiling, and the plan of a run with replicates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from taskspace.config import validate_schema
from taskspace.errors import ConfigError
from taskspace.replicates import (
    replicate_count,
    replicate_mean,
    replicate_name,
    replicate_names,
    split_replicate,
    with_replicate_axis,
)
from taskspace.selection import NOISE_CEILING, candidate_table, noise_ceiling_rows, score_selection


def test_replicate_zero_keeps_the_task_name_and_names_round_trip():
    assert replicate_name("birds", 0) == "birds"
    assert replicate_name("birds", 2) == "birds@r2"
    assert split_replicate("birds@r2") == ("birds", 2)
    assert split_replicate("birds") == ("birds", 0)
    assert split_replicate("birds@r02") == ("birds@r02", 0)  # not a name replicate_name makes
    assert replicate_names(["a", "b"], 2) == ["a", "a@r1", "b", "b@r1"]
    assert replicate_names(["a", "b"], 1) == ["a", "b"]
    with pytest.raises(ValueError, match="experts.replicates"):
        replicate_names(["a"], 0)


def _rows(spec):
    """Transfer rows from (expert name, task, test_error, score)."""
    return pd.DataFrame([{"expert": e, "task": t, "n_train": 10, "n_test": 20, "test_error": err,
                          "test_accuracy": 1 - err, "score_logme": s} for e, t, err, s in spec])


def test_the_mean_averages_errors_and_keeps_replicate_zero_for_the_rest():
    table = with_replicate_axis(_rows([
        ("a@r2", "x", 0.40, -3.0), ("a", "x", 0.25, -1.0), ("a@r1", "x", 0.10, -2.0),
        ("generic", "x", 0.50, -5.0),
    ]))
    assert list(table.columns[:3]) == ["expert", "replicate", "task"]
    assert table[["expert", "replicate"]].values.tolist() == [["a", 0], ["a", 1], ["a", 2], ["generic", 0]]
    assert replicate_count(table) == 3
    mean = replicate_mean(table)
    assert "replicate" not in mean.columns
    a = mean.set_index("expert").loc["a"]
    assert a["test_error"] == pytest.approx(0.25)  # (0.25 + 0.10 + 0.40) / 3
    assert a["test_accuracy"] == pytest.approx(0.75)
    assert a["score_logme"] == -1.0  # replicate 0's score: the expert a user has
    assert mean.set_index("expert").loc["generic", "test_error"] == 0.50  # the probe is not retrained


def test_one_replicate_gives_the_rows_unchanged():
    rows = _rows([("a", "x", 0.25, -1.0), ("a", "y", 0.125, -2.0), ("b", "x", 0.5, -3.0)])
    pd.testing.assert_frame_equal(replicate_mean(with_replicate_axis(rows)), rows)


def test_a_gap_in_the_replicates_is_named():
    table = with_replicate_axis(_rows([("a", "x", 0.25, 0.0), ("a@r2", "x", 0.5, 0.0)]))
    with pytest.raises(ValueError, match=r"expert 'a' on task 'x' has replicates \[0, 2\]"):
        replicate_mean(table)


def _replicated(errors: dict[tuple[str, str], list[float]]) -> pd.DataFrame:
    spec = [(replicate_name(e, r), t, err, 0.0) for (e, t), errs in errors.items() for r, err in enumerate(errs)]
    return with_replicate_axis(_rows(spec))


# Two targets, candidates a, b and c. On x the oracle's choice flips between the replicates (a on r0, b on r1); on
# y, b wins both, and both replicates rank b, a, c.
ERRORS = {
    ("a", "x"): [0.125, 0.375], ("b", "x"): [0.25, 0.25], ("c", "x"): [0.75, 0.75],
    ("a", "y"): [0.5, 0.5], ("b", "y"): [0.25, 0.375], ("c", "y"): [0.75, 0.625],
    ("generic", "x"): [0.5], ("generic", "y"): [0.5],
}


def test_noise_ceiling_by_hand():
    table = _replicated(ERRORS)
    mean = replicate_mean(table)
    cands = candidate_table(mean)
    from taskspace.selection import _optimum

    rows = {r["target"]: r for r in noise_ceiling_rows(table, cands, _optimum(cands))}
    x = rows["x"]
    # (r0 -> r1): a chosen, err 0.375 against b's 0.25: +0.5; (r1 -> r0): b chosen, 0.25 against a's 0.125: +1.0
    assert x["relative_increase"] == pytest.approx(0.75)
    assert x["hit"] == 0.0
    assert x["chosen_error"] == pytest.approx((0.375 + 0.25) / 2)
    assert x["optimal_expert"] == "a" and x["optimal_error"] == pytest.approx(0.25)  # the mean: a tie, a by name
    assert x["chosen"] is None
    assert x["rank_corr"] == pytest.approx(0.5)  # ranks (1, 2, 3) against (2, 1, 3), both ways
    y = rows["y"]
    assert y["relative_increase"] == 0.0 and y["hit"] == 1.0
    assert y["rank_corr"] == pytest.approx(1.0) and y["weighted_tau"] == pytest.approx(1.0)


def test_the_noise_ceiling_is_a_reference_selector_in_the_summary():
    table = _replicated(ERRORS)
    mean = replicate_mean(table)
    sel, summary = score_selection(mean, None, replicates=table)
    row = summary.set_index("method").loc[NOISE_CEILING]
    assert row["kind"] == "reference"
    assert row["cost"] == 3.0  # as the oracle: every candidate trained and transferred
    assert row["mean_relative_increase"] == pytest.approx(0.375)
    assert row["top1_hit_rate"] == pytest.approx(0.5)
    assert list(summary["method"][:2]) == ["oracle", NOISE_CEILING]
    assert set(sel.loc[sel["method"] == NOISE_CEILING, "target"]) == {"x", "y"}


def test_no_noise_ceiling_without_replicates():
    rows = _rows([("a", "x", 0.25, -1.0), ("b", "x", 0.5, -3.0), ("a", "y", 0.25, 0.0), ("b", "y", 0.5, 0.0)])
    _, with_axis = score_selection(rows, None, replicates=with_replicate_axis(rows))
    _, without = score_selection(rows, None)
    assert NOISE_CEILING not in set(with_axis["method"])
    pd.testing.assert_frame_equal(with_axis, without)


def test_a_candidate_without_all_replicates_is_named():
    errors = dict(ERRORS)
    errors[("b", "y")] = [0.25]
    table = _replicated(errors)
    cands = candidate_table(replicate_mean(table[table["replicate"] == 0]))
    from taskspace.selection import _optimum

    with pytest.raises(ValueError, match=r"target 'y' lacks replicates of expert\(s\) \['b'\]"):
        noise_ceiling_rows(table, cands, _optimum(cands))


def test_replicates_below_one_stop_at_validation_naming_the_key():
    with pytest.raises(ConfigError, match="experts.replicates"):
        validate_schema({"experts": {"replicates": 0}})
    assert validate_schema({"experts": {}})["experts"]["replicates"] == 1


def test_the_plan_trains_each_replicate_and_transfers_it_to_its_tasks_column(tmp_path):
    import yaml

    from taskspace.plan import RunPlan, effective_config
    from taskspace.results import RESULTS

    from conftest import CONFIGS

    cfg = yaml.safe_load((CONFIGS / "tiny.yaml").read_text())
    one = RunPlan(effective_config(cfg))
    cfg["experts"]["replicates"] = 3
    three = RunPlan(effective_config(cfg))
    assert one.trained_experts == one.expert_tasks
    assert three.trained_experts == replicate_names(one.expert_tasks, 3)
    task = one.expert_tasks[0]
    assert three.columns[f"{task}@r2"] == three.columns[task] == one.columns[task]
    assert "generic@r1" not in three.columns
    assert three.expert_task_file(f"{task}@r1") == RESULTS.task(task)
    # the number of replicates is no training setting: raising it leaves replicate 0's checkpoints as they are
    assert three.expert_params() == one.expert_params()
    paths = {a.path for a in three.artifacts()}
    assert RESULTS.expert(f"{task}@r2") in paths and RESULTS.transfer_replicates() in paths


def test_recommend_ranks_replicate_zero_of_each_expert(tmp_path):
    from taskspace.recommend import _expert_checkpoints

    folder = tmp_path / "results" / "experts"
    folder.mkdir(parents=True)
    for name in ("a", "a@r1", "a@r2", "b", "b@r1"):
        (folder / f"{name}.pt").write_bytes(b"")
    assert _expert_checkpoints(tmp_path / "results") == ["a", "b"]
