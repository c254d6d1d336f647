"""Task-space figures: known answers for the helpers (cluster order, taxonomy curve, Pareto front), valid and
deterministic PNGs from tiny tables, and clear errors on mismatched inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from taskspace.figures import (
    cluster_order,
    group_colors,
    pareto_front,
    plot_cost_frontier,
    plot_distance_heatmaps,
    plot_message,
    plot_norm_vs_error,
    plot_summary_ci,
    plot_task_maps,
    plot_taxonomy_curve,
    taxonomy_curve,
    tsne_coordinates,
)

TASKS = ["a1", "b1", "a2", "b2", "a3", "b3"]  # two groups, interleaved so that order must come from the distances


def square(values, tasks) -> pd.DataFrame:
    return pd.DataFrame(np.asarray(values, dtype=float), index=tasks, columns=tasks)


def block_distances(tasks=TASKS, within=1.0, between=10.0, seed=0) -> pd.DataFrame:
    """Block-structured distances: small within the a/b groups, large across, with a little asymmetric noise."""
    rng = np.random.default_rng(seed)
    d = np.array([[0.0 if s == t else within if s[0] == t[0] else between for t in tasks] for s in tasks])
    noise = rng.uniform(0.0, 0.1, size=d.shape)
    np.fill_diagonal(noise, 0.0)
    return square(d + noise, tasks)


def group_of(tasks=TASKS) -> pd.Series:
    return pd.Series(["group " + t[0].upper() for t in tasks], index=tasks)


def vectors(tasks=TASKS, seed=0) -> pd.DataFrame:
    """Positive, Fisher-like vectors: two group centres, per-task scales spanning orders of magnitude."""
    rng = np.random.default_rng(seed)
    centres = {"a": rng.normal(size=16), "b": rng.normal(size=16)}
    rows = [np.exp(centres[t[0]] + 0.1 * rng.normal(size=16)) * 10.0 ** rng.uniform(-2, 2) for t in tasks]
    return pd.DataFrame(rows, index=tasks)


def summary_table() -> pd.DataFrame:
    mri = np.array([0.0, 0.40, 0.20, 0.10, 0.12, 0.05, 0.06])
    hit = np.array([1.0, 0.1, 0.2, 0.4, 0.3, 0.6, 0.5])
    return pd.DataFrame(
        {
            "method": ["oracle", "random", "generic", "task2vec", "domain", "leep", "task2vec+leep"],
            "kind": ["reference", "reference", "reference", "embedding", "embedding", "per-expert", "two-stage"],
            "cost": [np.nan, 0, 0, 1, 1, 6, 3],
            "mean_relative_increase": mri,
            "mean_relative_increase_lo": [np.nan, *(0.8 * mri[1:])],
            "mean_relative_increase_hi": [np.nan, *(1.3 * mri[1:])],
            "top1_hit_rate": hit,
            "top1_hit_rate_lo": 0.8 * hit,
            "top1_hit_rate_hi": np.minimum(1.2 * hit, 1.0),
        }
    )


def assert_png(path, min_side=150) -> None:
    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        assert im.format == "PNG" and min(im.size) >= min_side


def test_cluster_order_puts_groups_together_whatever_the_row_order():
    d = block_distances()
    order = cluster_order(d)
    assert sorted(order) == sorted(TASKS)
    assert {t[0] for t in order[:3]} in ({"a"}, {"b"})
    shuffled = d.loc[TASKS[::-1], TASKS[::-1]]
    assert cluster_order(shuffled) == order
    assert cluster_order((d + d.T) / 2) == order  # asymmetric input: clustered as (D + D.T)/2


def test_cluster_order_of_points_on_a_line():
    # Points at 0, 1, 3, 7 on a line: average linkage with optimal leaf ordering keeps the line order.
    pos = {"w": 0.0, "x": 1.0, "y": 3.0, "z": 7.0}
    names = ["y", "w", "z", "x"]
    d = square([[abs(pos[s] - pos[t]) for t in names] for s in names], names)
    assert cluster_order(d) in (["w", "x", "y", "z"], ["z", "y", "x", "w"])


def test_taxonomy_curve_hand_computed():
    tasks = ["a", "b", "c"]
    d = square([[9, 1, 4], [3, 9, 5], [6, 7, 9]], tasks)  # the diagonal (9) must be ignored
    tax = square([[0, 1, 2], [1, 0, 2], [2, 2, 0]], tasks)
    curve = taxonomy_curve(d, tax)
    assert list(curve.columns) == ["taxonomic_distance", "mean", "lo", "hi", "n_pairs"]
    assert curve["taxonomic_distance"].tolist() == [1, 2]
    assert curve["n_pairs"].tolist() == [2, 4]
    assert np.allclose(curve["mean"], [2.0, 5.5])  # (1 + 3)/2 and (4 + 6 + 5 + 7)/4
    # Resampling two values 1 and 3 gives means 1, 2, 3 with probabilities 1/4, 1/2, 1/4: the 95% interval is [1, 3].
    assert curve.loc[0, "lo"] == 1.0 and curve.loc[0, "hi"] == 3.0
    assert 4.0 <= curve.loc[1, "lo"] <= 5.5 <= curve.loc[1, "hi"] <= 7.0
    pd.testing.assert_frame_equal(curve, taxonomy_curve(d, tax))  # seeded

    # A NaN distance drops its pair; extra tasks and another order in the taxonomy change nothing else.
    d2 = d.copy()
    d2.loc["c", "b"] = np.nan
    tax2 = square([[0, 2, 2, 3], [2, 0, 1, 3], [2, 1, 0, 3], [3, 3, 3, 0]], ["c", "b", "a", "x"])
    curve2 = taxonomy_curve(d2, tax2)
    assert curve2["n_pairs"].tolist() == [2, 3]
    assert np.allclose(curve2["mean"], [2.0, 5.0])


def test_taxonomy_curve_rejects_missing_tasks_and_fractional_levels():
    d = block_distances()
    tax = square(np.ones((5, 5)) - np.eye(5), TASKS[:5])
    with pytest.raises(ValueError, match="without a taxonomic distance"):
        taxonomy_curve(d, tax)
    with pytest.raises(ValueError, match="integers"):
        taxonomy_curve(d, square(0.5 * (np.ones((6, 6)) - np.eye(6)), TASKS))


def test_pareto_front_known_example():
    cost = np.array([0, 1, 1, 5, 5, np.nan, 2])
    error = np.array([20, 10, 12, 5, 5, 1, 10])
    assert pareto_front(cost, error).tolist() == [True, True, False, True, True, False, False]
    assert pareto_front(pd.Series([3.0]), pd.Series([1.0])).tolist() == [True]
    with pytest.raises(ValueError, match="equal length"):
        pareto_front([1, 2], [1, 2, 3])


def test_group_colors_are_sorted_tab10():
    colors = group_colors(pd.Series(["z", "a", "m", "a"], index=["t1", "t2", "t3", "t4"]))
    assert list(colors) == ["a", "m", "z"]
    assert colors["a"] != colors["m"] != colors["z"]
    assert len(set(group_colors(pd.Series([f"g{i:02d}" for i in range(15)])).values())) == 15


def test_tsne_ignores_the_scale_of_each_vector():
    v = vectors()
    scaled = v.mul(2.0 ** np.arange(-3, 3), axis=0)  # powers of two: the normalised rows are bit-identical
    a, b = tsne_coordinates(v, seed=3), tsne_coordinates(scaled, seed=3)
    assert list(a.index) == TASKS and list(a.columns) == ["x", "y"]
    np.testing.assert_array_equal(a.to_numpy(), b.to_numpy())


def test_every_figure_writes_a_png(tmp_path):
    d = {"task2vec": block_distances(), "domain": block_distances(within=3.0, seed=1)}
    groups = group_of()
    tax = square([[0 if s == t else 1 if s[0] == t[0] else 2 for t in TASKS] for s in TASKS], TASKS)
    norms = {"task2vec": pd.Series(np.linspace(1, 100, 6), index=TASKS), "domain": pd.Series(np.ones(6), index=TASKS)}
    best = pd.Series([0.1, 0.2, np.nan, 0.4, 0.5, 0.3], index=TASKS)
    plot_distance_heatmaps(d, groups, tmp_path / "heatmaps.png", title="Two methods")
    plot_task_maps({"task2vec": vectors(), "domain": vectors(seed=1)}, groups, tmp_path / "maps.png")
    plot_norm_vs_error(norms, best, groups, tmp_path / "norms.png")
    plot_taxonomy_curve(d, tax, tmp_path / "taxonomy.png")
    plot_summary_ci(summary_table(), tmp_path / "summary.png")
    plot_cost_frontier(summary_table(), tmp_path / "sub" / "frontier.png")
    names = ["frontier.png", "heatmaps.png", "maps.png", "norms.png", "summary.png", "taxonomy.png"]
    for name in names:
        assert_png(tmp_path / ("sub" if name == "frontier.png" else "") / name)
    assert sorted(p.name for p in tmp_path.rglob("*") if p.is_file()) == names  # no temporary left


def test_a_figure_without_data_says_why(tmp_path):
    """A run whose methods have no trivial embedding (e.g. domain only) still gets every figure of the report."""
    plot_message(tmp_path / "norms.png", "Embedding norm vs best expert's error", "No method has a trivial embedding.")
    assert_png(tmp_path / "norms.png", min_side=100)
    with Image.open(tmp_path / "norms.png") as im:
        pixels = np.asarray(im.convert("L"))
    assert (pixels < 128).sum() > 200  # the text is drawn


def test_two_tasks_are_enough(tmp_path):
    tasks = ["a1", "b1"]
    d = {"m": square([[0, 2], [1, 0]], tasks)}
    groups = group_of(tasks)
    plot_distance_heatmaps(d, groups, tmp_path / "h.png")
    plot_task_maps({"m": vectors(tasks)}, groups, tmp_path / "t.png")
    plot_norm_vs_error({"m": pd.Series([1.0, 2.0], index=tasks)}, pd.Series([0.1, 0.2], index=tasks), groups,
                       tmp_path / "n.png")
    plot_taxonomy_curve(d, square([[0, 1], [1, 0]], tasks), tmp_path / "c.png")
    for name in ("h.png", "t.png", "n.png", "c.png"):
        assert_png(tmp_path / name, min_side=100)
    with pytest.raises(ValueError, match="at least 2 tasks"):
        plot_distance_heatmaps({"m": square([[0]], ["a1"])}, groups, tmp_path / "one.png")


def test_figures_are_deterministic(tmp_path):
    groups = group_of()
    for run in ("first", "second"):
        plot_task_maps({"task2vec": vectors()}, groups, tmp_path / f"maps_{run}.png", seed=1)
        plot_distance_heatmaps({"task2vec": block_distances()}, groups, tmp_path / f"heat_{run}.png")
    assert (tmp_path / "maps_first.png").read_bytes() == (tmp_path / "maps_second.png").read_bytes()
    assert (tmp_path / "heat_first.png").read_bytes() == (tmp_path / "heat_second.png").read_bytes()


def test_mismatched_inputs_raise(tmp_path):
    d = block_distances()
    groups = group_of()
    out = tmp_path / "x.png"
    bad = d.copy()
    bad.columns = [*TASKS[:-1], "c9"]
    with pytest.raises(ValueError, match="index and columns"):
        plot_distance_heatmaps({"m": bad}, groups, out)
    with pytest.raises(ValueError, match=r"without a group: \['b3'\]"):
        plot_distance_heatmaps({"m": d}, groups.drop("b3"), out)
    with pytest.raises(ValueError, match="without a group"):
        plot_task_maps({"m": vectors()}, groups.where(groups.index != "a1"), out)
    nan = d.copy()
    nan.loc["a1", "b1"] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        cluster_order(nan)
    with pytest.raises(ValueError, match="duplicate"):
        cluster_order(square(np.zeros((2, 2)), ["a1", "a1"]))
    with pytest.raises(ValueError, match="non-empty dict"):
        plot_distance_heatmaps({}, groups, out)
    norms = {"m": pd.Series(np.ones(6), index=TASKS)}
    with pytest.raises(ValueError, match="without a best error"):
        plot_norm_vs_error(norms, pd.Series(0.1, index=TASKS[:5]), groups, out)
    with pytest.raises(ValueError, match="fraction"):
        plot_norm_vs_error(norms, pd.Series(12.0, index=TASKS), groups, out)
    with pytest.raises(ValueError, match="missing column"):
        plot_summary_ci(summary_table().drop(columns="kind"), out)
    with pytest.raises(ValueError, match="missing column"):
        plot_cost_frontier(summary_table().drop(columns="cost"), out)
    with pytest.raises(ValueError, match="finite"):
        tsne_coordinates(vectors().replace(vectors().iloc[0, 0], np.nan))
    assert not out.exists()


def test_the_norm_panels_rho_is_the_summarys_spearman_over_finite_pairs():
    from taskspace.figures import _rank_correlation
    from taskspace.selection import spearman

    x = np.array([1.0, 2.0, np.nan, 4.0, 3.0, 5.0])
    y = np.array([2.0, 1.0, 7.0, np.inf, 4.0, 3.0])
    # finite pairs (1, 2), (2, 1), (3, 4), (5, 3): ranks (1, 2, 3, 4) and (2, 1, 4, 3), rho = 1 - 6 * 4 / 60
    assert _rank_correlation(x, y) == spearman([1.0, 2.0, 3.0, 5.0], [2.0, 1.0, 4.0, 3.0])
    assert _rank_correlation(x, y) == pytest.approx(0.6)
    assert np.isnan(_rank_correlation(np.array([1.0, 2.0, np.nan]), np.array([1.0, 2.0, 3.0])))
    assert np.isnan(_rank_correlation(np.ones(4), np.arange(4.0)))
