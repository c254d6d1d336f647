"""Selection scoring: published CUB+iNat figures and hand-computed answers on tiny tables; the plots render."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from taskspace.plots import plot_selection, plot_summary
from taskspace.selection import (
    SELECTION_COLUMNS,
    SUMMARY_COLUMNS,
    load_reference_cub_inat,
    score_selection,
    similarity_to_distance,
    spearman,
)

CUB_INAT = Path(__file__).parent / "data" / "cub_inat"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def transfer_table(rows: list[tuple[str, str, float]], n_test: int = 100) -> pd.DataFrame:
    """(expert, task, test_error) triples -> transfer table, with an extra column that must be ignored."""
    df = pd.DataFrame(rows, columns=["expert", "task", "test_error"])
    df["n_test"] = n_test
    df["seed"] = 7
    return df


def distance_table(rows: list[tuple[str, str, str, float]]) -> pd.DataFrame:
    """(method, source, target, distance) quadruples -> distance table."""
    return pd.DataFrame(rows, columns=["method", "source", "target", "distance"])


def row(selection: pd.DataFrame, method: str, target: str) -> pd.Series:
    """The single selection row of (method, target)."""
    match = selection[(selection["method"] == method) & (selection["target"] == target)]
    assert len(match) == 1, f"expected one row for {method}/{target}, got {len(match)}"
    return match.iloc[0]


@pytest.fixture(scope="module")
def reference() -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    transfer, distances = load_reference_cub_inat(CUB_INAT)
    selection, summary = score_selection(transfer, distances)
    return transfer, distances, selection, summary


@pytest.mark.parametrize(
    ("method", "column", "expected_pct"),
    [
        ("oracle", "mean_optimal_error", 31.18),
        ("random", "mean_relative_increase", 59.77),
        ("ttk", "mean_relative_increase", 23.94),
        ("generic", "mean_relative_increase", 24.17),
    ],
)
def test_reference_cub_inat_reproduces_published_figures(reference, method, column, expected_pct):
    summary = reference[3].set_index("method")
    assert abs(100 * summary.loc[method, column] - expected_pct) < 0.005


def test_reference_cub_inat_tables(reference):
    transfer, distances, selection, summary = reference
    assert list(summary["method"]) == ["oracle", "ttk", "agnostic.mean_quality", "generic", "random"]
    assert (summary["n_targets"] == 50).all()
    assert transfer["test_error"].between(0, 1).all()
    assert (transfer["expert"] == "generic").sum() == 50
    assert len(distances) == 50 * 49 and set(distances["method"]) == {"ttk"}
    assert (selection["n_candidates"] == 49).all()
    assert (selection["optimal_expert"] != selection["target"]).all()
    picked = selection[selection["method"] != "random"]
    assert (picked["chosen"] != picked["target"]).all()


def test_columns_and_method_order():
    transfer = transfer_table([("a", "X", 0.1), ("b", "X", 0.2), ("generic", "X", 0.15)])
    distances = distance_table(
        [(m, e, "X", d) for m, ds in {"zeta": (1, 2), "alpha": (2, 1)}.items() for e, d in zip("ab", ds)]
    )
    selection, summary = score_selection(transfer, distances)
    assert tuple(selection.columns) == SELECTION_COLUMNS
    assert tuple(summary.columns) == SUMMARY_COLUMNS
    order = ["oracle", "alpha", "zeta", "generic", "random"]
    # one target: no expert has another target to be judged on, so the target-agnostic ranking skips it
    assert list(summary["method"]) == [*order[:3], "agnostic.mean_quality", *order[3:]]
    assert summary.set_index("method").loc["agnostic.mean_quality", "n_skipped"] == 1
    assert list(selection["method"]) == order


def test_own_expert_is_never_a_candidate():
    # Expert "A" is task A's own expert: lowest error and lowest distance, yet never chosen nor optimal.
    transfer = transfer_table([("A", "A", 0.05), ("B", "A", 0.2), ("C", "A", 0.3)])
    distances = distance_table([("m", "A", "A", 0.0), ("m", "B", "A", 0.5), ("m", "C", "A", 0.1)])
    selection, _ = score_selection(transfer, distances)
    r = row(selection, "m", "A")
    assert r["chosen"] == "C" and r["chosen_error"] == pytest.approx(0.3)
    assert r["optimal_expert"] == "B" and r["optimal_error"] == pytest.approx(0.2)
    assert r["relative_increase"] == pytest.approx(0.5)
    assert r["hit"] == 0.0
    assert r["n_candidates"] == 2
    assert math.isnan(r["rank_corr"])  # two candidates only
    assert row(selection, "oracle", "A")["chosen"] == "B"
    assert row(selection, "random", "A")["chosen_error"] == pytest.approx(0.25)


def test_ties_are_broken_by_expert_name_and_a_tie_with_the_optimum_hits():
    # Rows listed in reverse name order so that input order cannot decide.
    transfer = transfer_table([("q", "T", 0.5), ("m", "T", 0.2), ("k", "T", 0.2)])
    distances = distance_table([("d", "q", "T", 0.5), ("d", "m", "T", 0.5), ("d", "k", "T", 0.9)])
    selection, _ = score_selection(transfer, distances)
    r = row(selection, "d", "T")
    assert r["optimal_expert"] == "k"  # k and m tie on error
    assert r["chosen"] == "m"  # m and q tie on distance
    assert r["relative_increase"] == 0.0
    assert r["hit"] == 1.0
    assert row(selection, "oracle", "T")["chosen"] == "k"


def test_random_is_the_exact_expectation_over_candidates():
    transfer = transfer_table([("a", "T", 0.1), ("b", "T", 0.2), ("c", "T", 0.3), ("d", "T", 0.1), ("T", "T", 0.0)])
    selection, summary = score_selection(transfer, None)
    r = row(selection, "random", "T")
    assert pd.isna(r["chosen"])
    assert r["chosen_error"] == pytest.approx(0.175)
    assert r["relative_increase"] == pytest.approx((0 + 1 + 2 + 0) / 4)
    assert r["hit"] == pytest.approx(0.5)
    assert math.isnan(r["rank_corr"])
    assert r["n_candidates"] == 4
    assert list(summary["method"]) == ["oracle", "agnostic.mean_quality", "random"]


def test_zero_optimal_error_uses_half_a_test_image_as_denominator():
    transfer = transfer_table([("a", "T", 0.0), ("b", "T", 0.01)], n_test=200)
    distances = distance_table([("m", "a", "T", 2.0), ("m", "b", "T", 1.0)])
    selection, _ = score_selection(transfer, distances)
    r = row(selection, "m", "T")
    assert r["optimal_error"] == 0.0
    assert r["relative_increase"] == pytest.approx(0.01 / (0.5 / 200))
    assert row(selection, "random", "T")["relative_increase"] == pytest.approx(0.01 / (0.5 / 200) / 2)
    assert row(selection, "oracle", "T")["relative_increase"] == 0.0


def test_missing_distance_row_raises_naming_method_target_and_experts():
    transfer = transfer_table([("a", "T", 0.1), ("b", "T", 0.2), ("c", "T", 0.3)])
    distances = distance_table([("fisher", "a", "T", 1.0)])
    with pytest.raises(ValueError, match="fisher") as info:
        score_selection(transfer, distances)
    message = str(info.value)
    assert "'T'" in message and "'b'" in message and "'c'" in message


def test_hit_rates_rank_correlation_sign_and_summary():
    errors = {"X": {"a": 0.1, "b": 0.2, "c": 0.4}, "Y": {"a": 0.3, "b": 0.2, "c": 0.1}}
    rows = [(e, t, err) for t, per in errors.items() for e, err in per.items()] + [("generic", "X", 0.15)]
    transfer = transfer_table(rows)
    up = {"a": 1.0, "b": 2.0, "c": 3.0}
    distances = distance_table(
        [("up", e, t, d) for t in "XY" for e, d in up.items()]
        + [("down", e, t, 4.0 - d) for t in "XY" for e, d in up.items()]
    )
    selection, summary = score_selection(transfer, distances)

    assert row(selection, "up", "X")["rank_corr"] == pytest.approx(1.0)  # distance ordered like error
    assert row(selection, "up", "Y")["rank_corr"] == pytest.approx(-1.0)  # reversed
    assert row(selection, "down", "X")["rank_corr"] == pytest.approx(-1.0)
    assert row(selection, "up", "Y")["relative_increase"] == pytest.approx(2.0)
    assert row(selection, "down", "X")["chosen"] == "c"

    s = summary.set_index("method")
    assert s.loc["up", "n_targets"] == 2
    assert s.loc["up", "top1_hit_rate"] == pytest.approx(0.5)
    assert s.loc["up", "mean_relative_increase"] == pytest.approx(1.0)
    assert s.loc["up", "mean_chosen_error"] == pytest.approx(0.2)
    assert s.loc["up", "mean_rank_corr"] == pytest.approx(0.0)
    assert s.loc["down", "mean_relative_increase"] == pytest.approx(1.5)  # (3 + 0) / 2
    assert s.loc["oracle", "top1_hit_rate"] == 1.0
    assert s.loc["random", "top1_hit_rate"] == pytest.approx(1 / 3)
    assert s.loc["random", "mean_relative_increase"] == pytest.approx((4 / 3 + 1) / 2)
    assert s.loc["generic", "n_targets"] == 1  # generic rows only where the transfer table has them
    assert s.loc["generic", "mean_relative_increase"] == pytest.approx(0.5)
    assert s.loc["generic", "top1_hit_rate"] == 0.0
    assert math.isnan(s.loc["oracle", "mean_rank_corr"])


def test_generic_beating_the_optimum_is_a_negative_increase_and_a_hit():
    transfer = transfer_table([("a", "T", 0.2), ("b", "T", 0.3), ("generic", "T", 0.1)])
    selection, _ = score_selection(transfer, distance_table([]))
    assert score_selection(transfer, pd.DataFrame())[0].equals(selection)
    r = row(selection, "generic", "T")
    assert r["chosen"] == "generic"
    assert r["relative_increase"] == pytest.approx(-0.5)
    assert r["hit"] == 1.0
    assert row(selection, "oracle", "T")["optimal_expert"] == "a"  # generic is never a candidate


def test_spearman_known_values():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    assert math.isnan(spearman([1, 2], [1, 2]))
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))


def test_similarity_to_distance_drops_diagonal_and_negates():
    names = ["p", "q", "r"]
    sim = pd.DataFrame([[9.0, 0.2, 0.7], [0.1, 9.0, 0.3], [0.5, 0.6, 9.0]], index=names, columns=names)
    d = similarity_to_distance(sim, "ttk")
    assert list(d.columns) == ["method", "source", "target", "distance"]
    assert len(d) == 6 and (d["source"] != d["target"]).all() and (d["method"] == "ttk").all()
    assert d.set_index(["source", "target"]).loc[("p", "r"), "distance"] == pytest.approx(-0.7)
    # The most similar expert is chosen: for target q, sim(p, q) = 0.2 < sim(r, q) = 0.6.
    transfer = transfer_table([("p", "q", 0.3), ("r", "q", 0.4)])
    selection, _ = score_selection(transfer, d)
    assert row(selection, "ttk", "q")["chosen"] == "r"
    with pytest.raises(ValueError, match="square"):
        similarity_to_distance(sim.iloc[:, :2], "ttk")


def test_invalid_inputs_raise():
    transfer = transfer_table([("a", "T", 0.1), ("b", "T", 0.2)])
    with pytest.raises(ValueError, match="reserved"):
        score_selection(transfer, distance_table([("random", "a", "T", 1.0), ("random", "b", "T", 2.0)]))
    with pytest.raises(ValueError, match="fraction"):
        score_selection(transfer_table([("a", "T", 12.0), ("b", "T", 0.2)]), None)
    with pytest.raises(ValueError, match="seed"):
        score_selection(transfer, None, seed_free=False)


def test_plots_write_png_for_reference_data(reference, tmp_path):
    transfer, _, selection, summary = reference
    plot_selection(transfer, selection, tmp_path / "selection.png")
    plot_summary(summary, tmp_path / "summary.png")
    for name in ("selection.png", "summary.png"):
        data = (tmp_path / name).read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 1000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["selection.png", "summary.png"]  # no temporary left


def test_plots_write_png_for_a_small_table(tmp_path):
    # One target with a single candidate (no violin possible) and one with a constant error.
    transfer = transfer_table(
        [("a", "X", 0.1), ("generic", "X", 0.2), ("a", "Y", 0.3), ("b", "Y", 0.3), ("X", "Y", 0.3)]
    )
    distances = distance_table(
        [("m1", "a", "X", 1.0), ("m1", "a", "Y", 1.0), ("m1", "b", "Y", 2.0), ("m1", "X", "Y", 0.5)]
        + [("m2", "a", "X", 1.0), ("m2", "a", "Y", 3.0), ("m2", "b", "Y", 2.0), ("m2", "X", "Y", 1.5)]
    )
    selection, summary = score_selection(transfer, distances)
    out = tmp_path / "sub" / "selection.png"
    plot_selection(transfer, selection, out, order=["Y", "X"])
    plot_summary(summary, tmp_path / "summary.png")
    assert out.read_bytes().startswith(PNG_SIGNATURE)
    assert (tmp_path / "summary.png").read_bytes().startswith(PNG_SIGNATURE)
    with pytest.raises(ValueError, match="absent"):
        plot_selection(transfer, selection, tmp_path / "bad.png", order=["Z"])
    assert np.isclose(row(selection, "random", "Y")["hit"], 1.0)


def scored_transfer() -> pd.DataFrame:
    """Targets X, Y, Z with candidates a, b, c (errors below) and a score column `logme` (higher = better)."""
    errors = {"X": {"a": 0.1, "b": 0.2, "c": 0.4}, "Y": {"a": 0.3, "b": 0.2, "c": 0.1},
              "Z": {"a": 0.2, "b": 0.4, "c": 0.1}}
    logme = {"X": {"a": 3.0, "b": 2.0, "c": 1.0},   # ordered like the errors: picks a, the optimum
             "Y": {"a": 3.0, "b": 2.0, "c": 1.0},   # reversed: picks a, error 0.3 vs optimum 0.1
             "Z": {"a": 1.0, "b": float("nan"), "c": 2.0}}  # undefined for b: no choice on Z
    rows = [(e, t, err) for t, per in errors.items() for e, err in per.items()]
    df = transfer_table(rows)
    df["score_logme"] = [logme[t][e] for e, t, _ in rows]
    return df


def test_a_per_expert_score_picks_the_highest_and_skips_targets_where_it_is_undefined():
    selection, summary = score_selection(scored_transfer(), None)
    assert row(selection, "logme", "X")["chosen"] == "a" and row(selection, "logme", "X")["hit"] == 1.0
    y = row(selection, "logme", "Y")
    assert y["chosen"] == "a" and y["relative_increase"] == pytest.approx(2.0)
    assert y["rank_corr"] == pytest.approx(-1.0)  # -score ordered against the error
    assert row(selection, "logme", "X")["rank_corr"] == pytest.approx(1.0)
    assert "Z" not in set(selection.loc[selection["method"] == "logme", "target"])
    s = summary.set_index("method")
    assert s.loc["logme", "n_targets"] == 2 and s.loc["logme", "n_skipped"] == 1
    assert s.loc["logme", "kind"] == "per-expert" and s.loc["logme", "cost"] == 3.0  # every candidate runs
    assert s.loc["oracle", "n_targets"] == 3 and s.loc["oracle", "n_skipped"] == 0
    assert list(summary["method"]) == ["oracle", "logme", "agnostic.mean_quality", "random"]
    with pytest.raises(ValueError, match="score_hscore"):
        score_selection(scored_transfer(), None, scores=["hscore"])


def test_two_stage_selector_reranks_only_the_embedding_shortlist():
    transfer = scored_transfer()
    # the embedding ranks c, b, a on every target
    distances = distance_table([("emb", e, t, d) for t in "XYZ" for e, d in {"c": 1.0, "b": 2.0, "a": 3.0}.items()])
    selection, summary = score_selection(transfer, distances, rerank=[("emb", "logme", 2), ("emb", "logme", 1)])
    # X: shortlist {c, b}, logme prefers b (2 > 1): error 0.2 vs optimum 0.1
    x = row(selection, "emb>logme@2", "X")
    assert x["chosen"] == "b" and x["relative_increase"] == pytest.approx(1.0)
    # composite ranking b, c (shortlist by score), then a: errors 0.2, 0.4, 0.1 -> Spearman of ranks (1,2,3) vs it
    assert x["rank_corr"] == pytest.approx(spearman([1, 2, 3], [0.2, 0.4, 0.1]))
    # k = 1 is the embedding's own choice
    assert row(selection, "emb>logme@1", "X")["chosen"] == row(selection, "emb", "X")["chosen"] == "c"
    # Z: b is shortlisted at k = 2 and its score is undefined: skipped; at k = 1 only c is shortlisted: chosen
    assert "Z" not in set(selection.loc[selection["method"] == "emb>logme@2", "target"])
    assert row(selection, "emb>logme@1", "Z")["chosen"] == "c"
    s = summary.set_index("method")
    assert s.loc["emb>logme@2", "kind"] == "two-stage" and s.loc["emb>logme@2", "cost"] == 3.0  # 1 + k
    assert s.loc["emb>logme@2", "n_skipped"] == 1 and s.loc["emb>logme@1", "n_skipped"] == 0
    assert s.loc["emb", "cost"] == 1.0 and s.loc["random", "cost"] == 0.0 and s.loc["oracle", "cost"] == 3.0
    assert list(summary["method"]) == ["oracle", "emb", "logme", "emb>logme@1", "emb>logme@2",
                                       "agnostic.mean_quality", "random"]
    with pytest.raises(ValueError, match="'nope' has no distances"):
        score_selection(transfer, distances, rerank=[("nope", "logme", 2)])


def test_summary_intervals_bracket_the_mean_and_are_seeded():
    rng = np.random.default_rng(0)
    rows = [(e, f"t{i}", float(rng.uniform(0.1, 0.5))) for i in range(30) for e in ("a", "b", "c")]
    transfer = transfer_table(rows)
    distances = distance_table([("m", e, f"t{i}", float(rng.uniform())) for i in range(30) for e in "abc"])
    _, summary = score_selection(transfer, distances, bootstrap={"resamples": 500, "seed": 3})
    s = summary.set_index("method")
    for method in ("m", "random"):
        assert s.loc[method, "mean_relative_increase_lo"] < s.loc[method, "mean_relative_increase"] \
            < s.loc[method, "mean_relative_increase_hi"]
        assert s.loc[method, "top1_hit_rate_lo"] <= s.loc[method, "top1_hit_rate"] <= s.loc[method, "top1_hit_rate_hi"]
    assert s.loc["oracle", "mean_relative_increase_lo"] == s.loc["oracle", "mean_relative_increase_hi"] == 0.0
    again = score_selection(transfer, distances, bootstrap={"resamples": 500, "seed": 3})[1]
    pd.testing.assert_frame_equal(summary, again)
    other = score_selection(transfer, distances, bootstrap={"resamples": 500, "seed": 4})[1]
    assert not other["mean_relative_increase_lo"].equals(summary["mean_relative_increase_lo"])


def test_reference_cub_inat_keeps_its_published_figures_with_intervals(reference):
    s = reference[3].set_index("method")
    assert abs(100 * s.loc["ttk", "mean_relative_increase"] - 23.94) < 0.005
    lo, hi = s.loc["ttk", ["mean_relative_increase_lo", "mean_relative_increase_hi"]]
    assert lo < s.loc["ttk", "mean_relative_increase"] < hi and hi - lo > 0.05  # 50 targets: a wide interval
    assert s.loc["ttk", "cost"] == 1.0 and s.loc["random", "cost"] == 0.0 and s.loc["oracle", "cost"] == 49.0


def test_target_agnostic_rankings_never_use_the_targets_own_column():
    """agnostic.mean_quality ranks the candidates of target t by their mean relative increase on the other targets
    (t's column left out); agnostic.most_images by their training-image count. Hand-computed on three targets."""
    errors = {  # target -> {expert: test error}; the optimum of each target is its lowest error
        "X": {"a": 0.125, "b": 0.25, "c": 0.5},  # rel: a 0, b 1, c 3 (exact in binary: ties are ties)
        "Y": {"a": 0.375, "b": 0.125, "c": 0.25},  # rel: a 2, b 0, c 1
        "Z": {"a": 0.25, "b": 0.5, "c": 0.25},  # rel: a 0, b 1, c 0
    }
    transfer = transfer_table([(e, t, err) for t, row_ in errors.items() for e, err in row_.items()])
    images = {"a": 10, "b": 300, "c": 300}
    selection, summary = score_selection(transfer, None, expert_images=images)
    # X: mean over Y, Z: a (2+0)/2 = 1, b (0+1)/2 = 0.5, c (1+0)/2 = 0.5 -> b (tie with c by name)
    x = row(selection, "agnostic.mean_quality", "X")
    assert x["chosen"] == "b" and x["relative_increase"] == pytest.approx(1.0)
    # Y: over X, Z: a 0, b 1, c 1.5 -> a, although a is the worst on Y itself
    y = row(selection, "agnostic.mean_quality", "Y")
    assert y["chosen"] == "a" and y["relative_increase"] == pytest.approx(2.0)
    assert y["rank_corr"] == pytest.approx(spearman([0.0, 1.0, 1.5], [0.375, 0.125, 0.25]))
    # Z: over X, Y: a 1, b 0.5, c 2 -> b
    assert row(selection, "agnostic.mean_quality", "Z")["chosen"] == "b"
    # most images: b and c tie at 300, b by name, on every target
    assert set(selection.loc[selection["method"] == "agnostic.most_images", "chosen"]) == {"b"}
    s = summary.set_index("method")
    for m in ("agnostic.mean_quality", "agnostic.most_images"):
        assert s.loc[m, "kind"] == "target-agnostic" and s.loc[m, "cost"] == 0.0 and s.loc[m, "n_targets"] == 3
    assert list(summary["method"])[-3:] == ["agnostic.mean_quality", "agnostic.most_images", "random"]
    # changing the target's own column changes nothing of its own agnostic choice
    changed = transfer.copy()
    changed.loc[changed["task"] == "Y", "test_error"] = [0.0625, 0.375, 0.5]
    sel2, _ = score_selection(changed, None, expert_images=images)
    assert row(sel2, "agnostic.mean_quality", "Y")["chosen"] == "a"
    with pytest.raises(ValueError, match=r"no training-image count for expert\(s\) \['c'\]"):
        score_selection(transfer, None, expert_images={"a": 1, "b": 2})


def test_weighted_tau_is_scipys_weighted_kendall_tau_of_the_rankings():
    from scipy.stats import weightedtau

    from taskspace.selection import weighted_tau

    err = np.array([0.1, 0.2, 0.3, 0.4])
    assert weighted_tau([1, 2, 3, 4], err) == pytest.approx(1.0)  # closest = best
    assert weighted_tau([4, 3, 2, 1], err) == pytest.approx(-1.0)
    d = np.array([1.0, 3.0, 2.0, 4.0])
    assert weighted_tau(d, err) == pytest.approx(weightedtau(-d, -err).statistic)
    # a swap among the best experts costs more than the same swap among the worst (hyperbolic weights)
    assert weighted_tau([2, 1, 3, 4], err) < weighted_tau([1, 2, 4, 3], err) < 1.0
    assert math.isnan(weighted_tau([1, 2], [0.1, 0.2])) and math.isnan(weighted_tau([1, 1, 1], err[:3]))
    transfer = transfer_table([(e, "T", v) for e, v in zip("abcd", err)])
    distances = distance_table([("m", e, "T", v) for e, v in zip("abcd", d)])
    selection, summary = score_selection(transfer, distances)
    assert row(selection, "m", "T")["weighted_tau"] == pytest.approx(weightedtau(-d, -err).statistic)
    s = summary.set_index("method")
    assert s.loc["m", "mean_weighted_tau"] == pytest.approx(weightedtau(-d, -err).statistic)
    assert math.isnan(s.loc["m", "mean_weighted_tau_lo"])  # one target: no interval
    distances2 = pd.concat([distances, distances.assign(target="U")])
    transfer2 = pd.concat([transfer, transfer.assign(task="U", test_error=err[::-1])])
    _, summary2 = score_selection(transfer2, distances2)
    s2 = summary2.set_index("method")
    taus = [weightedtau(-d, -err).statistic, weightedtau(-d, -err[::-1]).statistic]
    assert s2.loc["m", "mean_weighted_tau"] == pytest.approx(np.mean(taus))
    assert min(taus) <= s2.loc["m", "mean_weighted_tau_lo"] < s2.loc["m", "mean_weighted_tau_hi"] <= max(taus)
    assert math.isnan(s.loc["oracle", "mean_weighted_tau"]) and math.isnan(s.loc["random", "mean_weighted_tau"])


def test_a_pool_score_is_normalised_over_each_targets_own_candidates():
    """NCTI's raw terms are min-max normalised over the target's candidates only: not over the target's own expert,
    the generic one, or experts of the table that are no candidate there."""
    from taskspace.transferability import ncti_combine

    terms = {  # (expert, task) -> (seli, ncc, vc)
        ("a", "X"): (1.0, 0.5, 2.0), ("b", "X"): (3.0, 0.7, 1.0), ("c", "X"): (2.0, 0.9, 4.0),
        ("X", "X"): (100.0, 1.0, 0.0), ("generic", "X"): (-50.0, 0.0, 9.0),
        ("a", "Y"): (0.0, 0.1, 1.0), ("b", "Y"): (float("nan"),) * 3, ("c", "Y"): (1.0, 0.2, 1.0),
    }
    rows = [(e, t, 0.1 + 0.1 * i) for i, (e, t) in enumerate(terms)]
    transfer = transfer_table(rows)
    for j, term in enumerate(("seli", "ncc", "vc")):
        transfer[f"pool_ncti_{term}"] = [terms[(e, t)][j] for e, t, _ in rows]
    selection, summary = score_selection(transfer, None)
    expected = ncti_combine(np.array([terms[(e, "X")] for e in "abc"]))
    best = "abc"[int(np.argmax(expected))]
    assert row(selection, "ncti", "X")["chosen"] == best
    assert row(selection, "ncti", "X")["rank_corr"] == pytest.approx(
        spearman(-expected, [0.1, 0.2, 0.3]))
    s = summary.set_index("method")
    assert s.loc["ncti", "kind"] == "per-expert" and s.loc["ncti", "n_skipped"] == 1  # Y: b's terms undefined
    with pytest.raises(ValueError, match="pool_ncti_vc"):
        score_selection(transfer.drop(columns="pool_ncti_vc"), None, scores=["ncti"])


def test_every_score_is_in_the_schema_and_the_cli_help():
    """The schema's enums of transfer.scores and selection.rerank.scores list exactly the registered scores."""
    from taskspace.config import load_schema
    from taskspace.transferability import SCORE_NAMES

    schema = load_schema()["properties"]
    scores = schema["transfer"]["properties"]["scores"]
    assert scores["items"]["enum"] == list(SCORE_NAMES) == scores["default"]
    rerank = schema["selection"]["properties"]["rerank"]["properties"]["scores"]
    assert rerank["items"]["enum"] == list(SCORE_NAMES)
    cli = (Path(__file__).parents[1] / "lib" / "taskspace" / "cli.py").read_text()
    assert f"({', '.join(SCORE_NAMES)})" in cli  # recommend --method's help lists them


def test_a_degenerate_embedding_is_undefined_not_a_ranking_of_rounding_noise():
    """Distances that all agree within float precision (PseudoTask on an untrained probe gave every symmetric
    distance below 3e-12 on a real meta-task): the method's selectors, both kinds and its two-stage selectors, are
    undefined on every target, with a warning naming them; a method with a real spread is scored."""
    rows = [("a", "X", 0.1), ("b", "X", 0.2), ("c", "X", 0.3), ("a", "Y", 0.3), ("b", "Y", 0.2), ("c", "Y", 0.1)]
    transfer = transfer_table(rows)
    transfer["score_logme"] = [1.0, 2.0, 3.0, 1.0, 2.0, 3.0]
    noise = {"a": 1e-12, "b": 3e-12, "c": 2e-12}
    distances = distance_table(
        [("flat.sym", e, t, noise[e]) for e in "abc" for t in "XY"]
        + [("flat.asym", e, t, noise[e] - 0.15 * i) for i, e in enumerate("abc") for t in "XY"]
        + [("real", e, t, d) for t in "XY" for e, d in zip("abc", (0.3, 0.2, 0.1))]
    )
    with pytest.warns(RuntimeWarning, match=r"selector 'flat.sym': its embedding is degenerate here"):
        selection, summary = score_selection(transfer, distances, rerank=[("flat.asym", "logme", 2)])
    s = summary.set_index("method")
    for m in ("flat.sym", "flat.asym", "flat.asym>logme@2"):
        assert s.loc[m, "n_targets"] == 0 and s.loc[m, "n_skipped"] == 2
        assert m not in set(selection["method"])
    assert s.loc["real", "n_targets"] == 2 and s.loc["real", "n_skipped"] == 0
    # the same method with a spread above float precision is scored
    distances.loc[distances["method"] == "flat.sym", "distance"] *= 1e6
    selection, summary = score_selection(transfer, distances)
    assert summary.set_index("method").loc["flat.sym", "n_targets"] == 2
