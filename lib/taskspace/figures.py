"""Figures of the task space drawn from tables only: distance heatmaps, t-SNE task maps, embedding norm against
error (Task2Vec Figs. 1-2), distance against taxonomic distance (Wallace et al. Fig. 4), and the selection summary
with confidence intervals and its quality-cost frontier.

Every function takes pandas/numpy inputs, reads no file, and writes one PNG atomically through `plots._save_png`.
Task names are compared as strings. Randomness (t-SNE, bootstrap) is seeded, so equal inputs give equal PNG bytes.
Every figure works from 2 tasks up; fewer raise ValueError.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import NullLocator, PercentFormatter
from matplotlib.transforms import ScaledTranslation, blended_transform_factory
from scipy.cluster.hierarchy import dendrogram, linkage
from scipy.spatial.distance import squareform
from sklearn.manifold import TSNE

from taskspace.selection import spearman
from taskspace.plots import EXPERT_COLOR, GENERIC_COLOR, METHOD_COLORS, METHOD_MARKERS, _save_png

KIND_COLORS = {
    "reference": "0.6",
    "target-agnostic": "#2ca02c",
    "embedding": "#d62728",
    "per-expert": "#9467bd",
    "two-stage": "#ff7f0e",
}
OTHER_KIND_COLORS = ("#8c564b", "#e377c2", "#bcbd22", "#17becf")
HEATMAP_CMAP = "viridis"
BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 0


# ----------------------------------------------------------------------------------------------------------------
# input checks


def _tasks(index: pd.Index, what: str) -> list[str]:
    """Index labels as strings; duplicates are an error."""
    names = [str(t) for t in index]
    dup = sorted({t for t in names if names.count(t) > 1})
    if dup:
        raise ValueError(f"{what}: duplicate task name(s) {dup}")
    return names


def _square(matrix: pd.DataFrame, what: str) -> pd.DataFrame:
    """A task x task float DataFrame with string labels and columns in index order; index/column mismatch raises."""
    if not isinstance(matrix, pd.DataFrame):
        raise ValueError(f"{what}: expected a square task x task DataFrame, got {type(matrix).__name__}")
    rows = _tasks(matrix.index, f"{what} index")
    cols = _tasks(matrix.columns, f"{what} columns")
    if set(rows) != set(cols):
        raise ValueError(
            f"{what}: index and columns must name the same tasks "
            f"(only in index: {sorted(set(rows) - set(cols))}; only in columns: {sorted(set(cols) - set(rows))})"
        )
    m = matrix.copy()
    m.index, m.columns = rows, cols
    m = m.loc[rows, rows]
    try:
        return m.astype(float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what}: entries must be numbers ({exc})") from None


def _distance(matrix: pd.DataFrame, what: str) -> tuple[pd.DataFrame, bool]:
    """Symmetrised (D + D.T)/2 distances with finite off-diagonal entries, and whether D was asymmetric."""
    m = _square(matrix, what)
    if len(m) < 2:
        raise ValueError(f"{what}: needs at least 2 tasks, got {len(m)}")
    values = m.to_numpy()
    off = ~np.eye(len(m), dtype=bool)
    bad = off & ~np.isfinite(values)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise ValueError(f"{what}: {int(bad.sum())} non-finite distance(s), e.g. {m.index[i]} -> {m.columns[j]}")
    asymmetric = not np.allclose(values[off], values.T[off], rtol=1e-9, atol=1e-12)
    sym = (values + values.T) / 2.0
    return pd.DataFrame(sym, index=m.index, columns=m.columns), asymmetric


def _group_series(groups: pd.Series) -> pd.Series:
    """groups as a str -> str Series with unique task names."""
    if not isinstance(groups, pd.Series):
        raise ValueError(f"groups: expected a Series task -> group, got {type(groups).__name__}")
    names = _tasks(groups.index, "groups")
    g = groups.copy()
    g.index = names
    return g


def _groups_of(tasks: list[str], groups: pd.Series, what: str) -> list[str]:
    """The group of each task; a task absent from groups, or with a missing group, raises."""
    missing = [t for t in tasks if t not in groups.index or pd.isna(groups[t])]
    if missing:
        raise ValueError(f"{what}: task(s) without a group: {missing}")
    return [str(groups[t]) for t in tasks]


def _method_dict(mapping: dict, what: str) -> dict[str, object]:
    if not isinstance(mapping, dict) or not mapping:
        raise ValueError(f"{what}: expected a non-empty dict method -> table")
    return {str(k): v for k, v in mapping.items()}


def _require_columns(df: pd.DataFrame, columns: tuple[str, ...], what: str) -> None:
    if not isinstance(df, pd.DataFrame):
        raise ValueError(f"{what}: expected a DataFrame, got {type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{what}: missing column(s) {missing}")


# ----------------------------------------------------------------------------------------------------------------
# shared helpers


def group_colors(groups: pd.Series) -> dict[str, tuple]:
    """One RGBA colour per group in sorted group order: tab10 up to 10 groups, tab20 up to 20, then turbo.

    Pass the same `groups` to every figure to keep colours consistent between heatmap labels and task maps.
    """
    names = sorted({str(g) for g in pd.Series(groups).dropna()})
    if len(names) <= 10:
        cmap = colormaps["tab10"]
        return {g: tuple(cmap(i)) for i, g in enumerate(names)}
    if len(names) <= 20:
        cmap = colormaps["tab20"]
        return {g: tuple(cmap(i)) for i, g in enumerate(names)}
    cmap = colormaps["turbo"]
    return {g: tuple(cmap(x)) for g, x in zip(names, np.linspace(0.05, 0.95, len(names)))}


def _grid(n_panels: int, max_cols: int) -> tuple[int, int]:
    ncols = min(n_panels, max_cols)
    return math.ceil(n_panels / ncols), ncols


def _label_size(n: int) -> float:
    """Tick-label font size that keeps n stacked labels apart."""
    if n <= 12:
        return 8.0
    if n <= 30:
        return 7.0
    if n <= 50:
        return 6.0
    return 5.0


def _panel_figure(n_panels: int, max_cols: int, panel: tuple[float, float], pad: tuple[float, float, float, float],
                  head: float = 0.8, foot: float = 0.7) -> tuple[Figure, list[tuple[float, float, float, float]]]:
    """A figure laid out in inches: a grid of panel = (width, height) boxes, each with pad = (left, right, bottom,
    top) room for its labels, `head` inches for the title above and `foot` inches for the legend below.

    Returns the figure and each panel's [left, bottom, width, height] in figure fractions. A fixed layout is much
    cheaper to render than a constrained one for figures with hundreds of tick labels.
    """
    nrows, ncols = _grid(n_panels, max_cols)
    (w, h), (left, right, bottom, top) = panel, pad
    cell_w, cell_h = left + w + right, bottom + h + top
    width, height = ncols * cell_w, nrows * cell_h + head + foot
    rects = []
    for k in range(n_panels):
        row, col = divmod(k, ncols)
        x0 = col * cell_w + left
        y0 = height - head - (row + 1) * cell_h + bottom
        rects.append((x0 / width, y0 / height, w / width, h / height))
    return Figure(figsize=(width, height)), rects


def _head_and_legend(fig: Figure, title: str, handles: list, legend_title: str) -> None:
    """Figure title at the top edge and a legend centred along the bottom edge."""
    width, height = fig.get_size_inches()
    fig.suptitle(title, y=1.0 - 0.1 / height, va="top", fontsize=11)
    fig.legend(handles=handles, title=legend_title, loc="lower center", bbox_to_anchor=(0.5, 0.05 / height),
               ncols=max(1, min(len(handles), int(width // 1.6))), fontsize=8, title_fontsize=8, frameon=False)


def _group_handles(colors: dict[str, tuple], present: set[str], patches: bool) -> list:
    """Legend entries of the groups that occur, in colour order."""
    names = [g for g in colors if g in present]
    if patches:
        return [Patch(facecolor=colors[g], label=g) for g in names]
    return [Line2D([], [], marker="o", linestyle="", color=colors[g], label=g) for g in names]


def _kind_color(kinds: list[str]) -> dict[str, str]:
    """Colour of each kind: the fixed ones for known kinds, then spare colours in order of appearance."""
    colors: dict[str, str] = {}
    spare = iter(OTHER_KIND_COLORS * (1 + len(kinds)))
    for k in kinds:
        if k not in colors:
            colors[k] = KIND_COLORS.get(k) or next(spare)
    return colors


# ----------------------------------------------------------------------------------------------------------------
# heatmaps with dendrograms (Task2Vec Fig. 2 left)


def _linkage(sym: pd.DataFrame) -> np.ndarray:
    """Average-linkage tree of a symmetric distance matrix (tasks sorted by name first, so row order is irrelevant).

    Distances are shifted to be non-negative when needed; average linkage merges in the same order under a shift.
    """
    values = sym.to_numpy(dtype=float).copy()
    np.fill_diagonal(values, 0.0)
    low = values.min()
    if low < 0:
        values = values - low
        np.fill_diagonal(values, 0.0)
    return linkage(squareform(values, checks=False), method="average", optimal_ordering=True)


def cluster_order(matrix: pd.DataFrame) -> list[str]:
    """Tasks in the leaf order of average-linkage clustering of (D + D.T)/2, with optimal leaf ordering."""
    sym, _ = _distance(matrix, "cluster_order")
    sym = sym.loc[sorted(sym.index), sorted(sym.index)]
    leaves = dendrogram(_linkage(sym), no_plot=True)["leaves"]
    return [sym.index[i] for i in leaves]


def _draw_dendrogram(ax, tree: np.ndarray) -> None:
    """Dendrogram lines above a heatmap whose cells sit at x = 0..n-1."""
    d = dendrogram(tree, no_plot=True)
    segments = []
    for xs, ys in zip(d["icoord"], d["dcoord"]):
        x = (np.asarray(xs) - 5.0) / 10.0
        segments.extend([[(x[i], ys[i]), (x[i + 1], ys[i + 1])] for i in range(3)])
    ax.add_collection(LineCollection(segments, colors="0.2", linewidths=0.7))
    top = max(float(np.max(d["dcoord"])), 1e-12)
    ax.set_ylim(0.0, top * 1.05)
    ax.set_axis_off()


def _task_labels(ax, tasks: list[str], colors: list, size: float) -> None:
    """Coloured task names along the bottom (vertical) and left edges of a heatmap.

    Plain text artists rather than tick labels: the same picture at a fraction of the rendering cost.
    """
    ax.set_xticks([])
    ax.set_yticks([])
    below = blended_transform_factory(ax.transData, ax.transAxes)
    left = blended_transform_factory(ax.transAxes, ax.transData)
    for i, (task, color) in enumerate(zip(tasks, colors)):
        ax.text(i, -0.01, task, transform=below, rotation=90, ha="center", va="top", fontsize=size, color=color)
        ax.text(-0.01, i, task, transform=left, ha="right", va="center", fontsize=size, color=color)


def plot_distance_heatmaps(
    distances: dict[str, pd.DataFrame], groups: pd.Series, path: str | os.PathLike, title: str = ""
) -> None:
    """Task2Vec Fig. 2 left: per method, the task x task distance heatmap ordered by average-linkage clustering.

    Each panel shows (D + D.T)/2 (panels of asymmetric inputs say so), a dendrogram on top, tick labels coloured by
    task group, and its own colour bar (methods have different scales). At least 2 tasks per matrix.
    """
    distances = _method_dict(distances, "plot_distance_heatmaps")
    groups = _group_series(groups)
    colors = group_colors(groups)
    panels = []
    for method, matrix in distances.items():
        sym, asymmetric = _distance(matrix, f"plot_distance_heatmaps[{method}]")
        sym = sym.loc[sorted(sym.index), sorted(sym.index)]
        tree = _linkage(sym)
        order = [sym.index[i] for i in dendrogram(tree, no_plot=True)["leaves"]]
        task_groups = _groups_of(order, groups, f"plot_distance_heatmaps[{method}]")
        panels.append((method, sym.loc[order, order], tree, task_groups, asymmetric))

    n_max = max(len(p[1]) for p in panels)
    side = max(2.6, n_max * _label_size(n_max) * 1.45 / 72.0)
    label_room = max(len(t) for p in panels for t in p[1].index) * _label_size(n_max) * 0.56 / 72.0 + 0.15
    dend_h, bar_gap, bar_w = 0.22 * side, 0.08, 0.12
    fig, rects = _panel_figure(len(panels), 4 if n_max <= 30 else 3, (side + bar_gap + bar_w, side + dend_h),
                               (label_room, 0.8, label_room, 0.5), head=0.65, foot=0.7)
    width, height = fig.get_size_inches()
    present: set[str] = set()
    for (method, sym, tree, task_groups, asymmetric), (x0, y0, _, _) in zip(panels, rects):
        n = len(sym)
        heat = fig.add_axes((x0, y0, side / width, side / height))
        dend = fig.add_axes((x0, y0 + side / height, side / width, dend_h / height), sharex=heat)
        cax = fig.add_axes((x0 + (side + bar_gap) / width, y0, bar_w / width, side / height))
        image = heat.imshow(sym.to_numpy(), cmap=HEATMAP_CMAP, aspect="auto", interpolation="nearest")
        _draw_dendrogram(dend, tree)
        heat.set_xlim(-0.5, n - 0.5)
        _task_labels(heat, list(sym.index), [colors[g] for g in task_groups], _label_size(n))
        present.update(task_groups)
        dend.set_title(method + ("\nasymmetric: shown as (D + D\u1d40)/2" if asymmetric else ""), fontsize=10)
        bar = fig.colorbar(image, cax=cax)
        bar.set_label("distance (dark = similar)", fontsize=8)
        bar.ax.tick_params(labelsize=7)
    head = title or "Task distances per method"
    _head_and_legend(fig, f"{head}\nrows/columns ordered by average-linkage clustering (dendrogram on top); "
                     "task labels coloured by group", _group_handles(colors, present, patches=True),
                     "task group (label colour)")
    _save_png(fig, path)


# ----------------------------------------------------------------------------------------------------------------
# t-SNE task maps (Task2Vec Fig. 1)


def _unit_rows(values: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero)."""
    norms = np.linalg.norm(values, axis=1, keepdims=True)
    return np.divide(values, norms, out=np.zeros_like(values), where=norms > 0)


def _perplexity(n: int) -> float:
    """t-SNE perplexity for n points: about a third of the neighbours, between 1 and 30."""
    return min(30.0, max(1.0, (n - 1) / 3.0))


def tsne_coordinates(vectors: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """2-D exact t-SNE of L2-normalised task vectors; DataFrame index = task, columns x, y.

    Rows are L2-normalised because Task2Vec embeddings are Fisher diagonals whose overall scale varies by orders of
    magnitude between tasks (the scale is shown separately against error); on unit vectors, Euclidean distance is a
    monotone function of the cosine distance the embeddings are compared with. perplexity = min(30, max(1, (n-1)/3));
    PCA initialisation unless the vectors are all equal or one-dimensional, then random; exact gradient.
    """
    if not isinstance(vectors, pd.DataFrame):
        raise ValueError(f"tsne_coordinates: expected a task x dimension DataFrame, got {type(vectors).__name__}")
    tasks = _tasks(vectors.index, "tsne_coordinates")
    if len(tasks) < 2:
        raise ValueError(f"tsne_coordinates: needs at least 2 tasks, got {len(tasks)}")
    try:
        values = vectors.to_numpy(dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"tsne_coordinates: entries must be numbers ({exc})") from None
    if values.shape[1] < 1 or not np.isfinite(values).all():
        raise ValueError("tsne_coordinates: vectors must have at least one column and only finite entries")
    x = _unit_rows(values)
    n = len(tasks)
    spread = x.shape[1] >= 2 and float(np.ptp(x, axis=0).max()) > 1e-12
    model = TSNE(n_components=2, perplexity=_perplexity(n), init="pca" if spread else "random",
                 method="exact", random_state=seed)
    return pd.DataFrame(model.fit_transform(x), index=tasks, columns=["x", "y"])


def plot_task_maps(vectors: dict[str, pd.DataFrame], groups: pd.Series, path: str | os.PathLike,
                   seed: int = 0) -> None:
    """Task2Vec Fig. 1: one t-SNE map per method (see `tsne_coordinates`), points coloured by task group.

    Task names are written next to the points for up to 30 tasks. At least 2 tasks per method.
    """
    vectors = _method_dict(vectors, "plot_task_maps")
    groups = _group_series(groups)
    colors = group_colors(groups)
    panels = []
    for method, table in vectors.items():
        coords = tsne_coordinates(table, seed=seed)
        panels.append((method, coords, _groups_of(list(coords.index), groups, f"plot_task_maps[{method}]")))
    n_max = max(len(p[1]) for p in panels)
    side = 3.8 if n_max <= 30 else 3.4
    fig, rects = _panel_figure(len(panels), 4, (side, side), (0.3, 0.15, 0.3, 0.35), head=0.5, foot=0.75)
    present: set[str] = set()
    for (method, coords, task_groups), rect in zip(panels, rects):
        ax = fig.add_axes(rect)
        ax.scatter(coords["x"], coords["y"], c=[colors[g] for g in task_groups], s=28, edgecolors="white",
                   linewidths=0.5, zorder=2)
        if len(coords) <= 30:
            middle = (coords["x"].min() + coords["x"].max()) / 2.0
            for task, (x, y) in coords.iterrows():
                left = x > middle
                ax.annotate(task, (x, y), xytext=(-3 if left else 3, 3), textcoords="offset points", fontsize=6,
                            color="0.15", ha="right" if left else "left")
        ax.margins(0.08)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_xlabel("t-SNE 1", fontsize=8, labelpad=2)
        ax.set_ylabel("t-SNE 2", fontsize=8, labelpad=2)
        n = len(coords)
        ax.set_title(f"{method} ({n} tasks, perplexity {_perplexity(n):.3g})", fontsize=10)
        present.update(task_groups)
    _head_and_legend(fig, f"Task maps: t-SNE of L2-normalised embeddings (seed {seed}); nearby points = similar "
                     "tasks; axes have no units", _group_handles(colors, present, patches=False), "task group")
    _save_png(fig, path)


# ----------------------------------------------------------------------------------------------------------------
# embedding norm against error (Task2Vec Fig. 1 right / Fig. 2 right)


def _rank_correlation(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rho over finite pairs (the one of the summary and the fidelity report, ``selection.spearman``); NaN
    with fewer than 3 pairs or a constant side."""
    keep = np.isfinite(x) & np.isfinite(y)
    return spearman(x[keep], y[keep])


def plot_message(path: str | os.PathLike, title: str, message: str) -> None:
    """A figure that says why there is nothing to draw (e.g. no configured method has a trivial embedding): the
    report keeps every figure and tells the reader what to configure."""
    fig = Figure(figsize=(6.0, 1.6))
    fig.text(0.5, 0.68, title, ha="center", va="center", fontsize=11, weight="bold")
    fig.text(0.5, 0.35, message, ha="center", va="center", fontsize=9, wrap=True)
    _save_png(fig, path)


def plot_norm_vs_error(norms: dict[str, pd.Series], best_error: pd.Series, groups: pd.Series,
                       path: str | os.PathLike) -> None:
    """Per method, embedding norm of each task (x) against the test error of its best expert (y, %).

    Every task of norms[method] must appear in best_error (a fraction in [0, 1]); pairs with a NaN norm or error are
    left out of the panel and of its Spearman rho. x is logarithmic when all norms are positive and span over 100x.
    """
    norms = _method_dict(norms, "plot_norm_vs_error")
    groups = _group_series(groups)
    colors = group_colors(groups)
    if not isinstance(best_error, pd.Series):
        raise ValueError(f"plot_norm_vs_error: best_error must be a Series task -> error, got {type(best_error)}")
    err = best_error.astype(float)
    err.index = _tasks(err.index, "plot_norm_vs_error best_error")
    if (err.dropna() < 0).any() or (err.dropna() > 1).any():
        raise ValueError("plot_norm_vs_error: best_error must be a fraction in [0, 1], not a percentage")
    panels = []
    for method, series in norms.items():
        if not isinstance(series, pd.Series):
            raise ValueError(f"plot_norm_vs_error[{method}]: expected a Series task -> norm")
        s = series.astype(float)
        s.index = _tasks(s.index, f"plot_norm_vs_error[{method}]")
        absent = [t for t in s.index if t not in err.index]
        if absent:
            raise ValueError(f"plot_norm_vs_error[{method}]: task(s) without a best error: {absent}")
        if len(s) < 2:
            raise ValueError(f"plot_norm_vs_error[{method}]: needs at least 2 tasks, got {len(s)}")
        task_groups = _groups_of(list(s.index), groups, f"plot_norm_vs_error[{method}]")
        panels.append((method, s.to_numpy(), 100.0 * err[list(s.index)].to_numpy(), task_groups))
    fig, rects = _panel_figure(len(panels), 4, (3.1, 2.6), (0.75, 0.15, 0.5, 0.35), head=0.5, foot=0.75)
    present: set[str] = set()
    for (method, x, y, task_groups), rect in zip(panels, rects):
        ax = fig.add_axes(rect)
        keep = np.isfinite(x) & np.isfinite(y)
        ax.scatter(x[keep], y[keep], c=[colors[g] for g, f in zip(task_groups, keep) if f], s=22,
                   edgecolors="white", linewidths=0.4, zorder=2)
        xs = x[keep]
        if len(xs) and (xs > 0).all() and xs.max() > 100.0 * xs.min():
            ax.set_xscale("log")
            ax.xaxis.set_minor_locator(NullLocator())
        rho = _rank_correlation(x, y)
        shown = "n/a" if np.isnan(rho) else f"{rho:+.2f}"
        ax.set_title(f"{method}: Spearman \u03c1 = {shown} (n = {int(keep.sum())})", fontsize=9)
        ax.set_xlabel("embedding norm", fontsize=8)
        ax.set_ylabel("best expert's test error (%)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        present.update(g for g, f in zip(task_groups, keep) if f)
    _head_and_legend(fig, "Embedding norm against task difficulty: one point per task; "
                     "\u03c1 > 0 means larger norms go with harder tasks",
                     _group_handles(colors, present, patches=False), "task group")
    _save_png(fig, path)


# ----------------------------------------------------------------------------------------------------------------
# distance against taxonomic distance (Wallace et al. Fig. 4)


def taxonomy_curve(distance: pd.DataFrame, taxonomic: pd.DataFrame, n_boot: int = BOOTSTRAP_RESAMPLES,
                   seed: int = BOOTSTRAP_SEED) -> pd.DataFrame:
    """Mean distance over ordered task pairs (i != j) at each taxonomic distance, with a 95% percentile bootstrap.

    `taxonomic` must cover every task of `distance` (extra tasks are ignored); pairs with a NaN distance or NaN
    taxonomic distance are skipped. The bootstrap resamples the pairs of each level with its own generator seeded
    by (seed, level); pairs sharing a task are not independent, so the band is a lower bound on the uncertainty.
    Columns: taxonomic_distance (int), mean, lo, hi, n_pairs; one row per level present, in increasing order.
    """
    d = _square(distance, "taxonomy_curve distance")
    t = _square(taxonomic, "taxonomy_curve taxonomic")
    absent = [x for x in d.index if x not in t.index]
    if absent:
        raise ValueError(f"taxonomy_curve: task(s) without a taxonomic distance: {absent}")
    t = t.loc[d.index, d.index]
    dv, tv = d.to_numpy(), t.to_numpy()
    pairs = ~np.eye(len(d), dtype=bool) & np.isfinite(dv) & np.isfinite(tv)
    levels = tv[pairs]
    if len(levels) and (not np.allclose(levels, np.round(levels)) or levels.min() < 0):
        raise ValueError("taxonomy_curve: taxonomic distances must be non-negative integers")
    values = dv[pairs]
    levels = np.round(levels).astype(int)
    rows = []
    for level in sorted(set(levels.tolist())):
        v = values[levels == level]
        rng = np.random.default_rng([seed, level])
        means = v[rng.integers(0, len(v), size=(n_boot, len(v)))].mean(axis=1)
        lo, hi = np.percentile(means, [2.5, 97.5])
        rows.append({"taxonomic_distance": level, "mean": float(v.mean()), "lo": float(lo), "hi": float(hi),
                     "n_pairs": len(v)})
    out = pd.DataFrame(rows, columns=["taxonomic_distance", "mean", "lo", "hi", "n_pairs"])
    return out.astype({"taxonomic_distance": int, "n_pairs": int})


def plot_taxonomy_curve(distances: dict[str, pd.DataFrame], taxonomic: pd.DataFrame,
                        path: str | os.PathLike) -> None:
    """Wallace et al. Fig. 4: per method, mean distance against taxonomic distance, with 95% bootstrap intervals.

    Each method's distances are divided by their mean over all ordered off-diagonal pairs, so 1 is a typical pair
    and methods of different scales share one axis. Matrices may be asymmetric (ordered pairs count separately).
    """
    distances = _method_dict(distances, "plot_taxonomy_curve")
    curves = []
    for method, matrix in distances.items():
        d = _square(matrix, f"plot_taxonomy_curve[{method}]")
        if len(d) < 2:
            raise ValueError(f"plot_taxonomy_curve[{method}]: needs at least 2 tasks, got {len(d)}")
        off = d.to_numpy()[~np.eye(len(d), dtype=bool)]
        off = np.abs(off[np.isfinite(off)])
        scale = float(off.mean()) if len(off) else 0.0
        if scale == 0:
            raise ValueError(f"plot_taxonomy_curve[{method}]: distances are all zero or missing")
        curves.append((method, taxonomy_curve(d / scale, taxonomic)))
    levels = sorted({int(x) for _, c in curves for x in c["taxonomic_distance"]})
    if not levels:
        raise ValueError("plot_taxonomy_curve: no task pair has both a distance and a taxonomic distance")
    fig = Figure(figsize=(max(5.5, 0.9 * len(levels) + 3.5), 4.5), layout="constrained")
    ax = fig.add_subplot()
    offsets = np.linspace(-0.12, 0.12, len(curves)) if len(curves) > 1 else np.zeros(1)
    for k, (method, c) in enumerate(curves):
        x = c["taxonomic_distance"].to_numpy(dtype=float) + offsets[k]
        y = c["mean"].to_numpy()
        yerr = np.vstack([np.clip(y - c["lo"].to_numpy(), 0, None), np.clip(c["hi"].to_numpy() - y, 0, None)])
        ax.errorbar(x, y, yerr=yerr, marker=METHOD_MARKERS[k % len(METHOD_MARKERS)], markersize=5,
                    color=METHOD_COLORS[k % len(METHOD_COLORS)], linewidth=1.2, capsize=2.5, label=method)
    counts = {int(lv): n for _, c in curves for lv, n in zip(c["taxonomic_distance"], c["n_pairs"])}
    same = all(dict(zip(c["taxonomic_distance"], c["n_pairs"])) == counts for _, c in curves)
    ax.set_xticks(levels)
    ax.set_xticklabels([f"{lv}\n({counts[lv]} pairs)" if same else str(lv) for lv in levels], fontsize=8)
    ax.set_xlabel("taxonomic distance (1 = siblings; larger = farther apart in the taxonomy)")
    ax.set_ylabel("distance / method's mean distance")
    ax.axhline(1.0, color=EXPERT_COLOR, linewidth=0.7, linestyle=":")
    ax.set_title("Embedding distance against taxonomic distance\n"
                 "mean over ordered task pairs; bars: 95% bootstrap interval (1000 resamples, seed 0)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(title="method", loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, title_fontsize=8,
              frameon=False)
    _save_png(fig, path)


# ----------------------------------------------------------------------------------------------------------------
# selection summary and its cost


def _interval(summary: pd.DataFrame, column: str) -> tuple[np.ndarray, np.ndarray]:
    """Values of column and the non-negative error-bar lengths from its _lo/_hi columns (0 where missing)."""
    y = summary[column].to_numpy(dtype=float)
    lo = summary[f"{column}_lo"].to_numpy(dtype=float) if f"{column}_lo" in summary else np.full_like(y, np.nan)
    hi = summary[f"{column}_hi"].to_numpy(dtype=float) if f"{column}_hi" in summary else np.full_like(y, np.nan)
    below = np.nan_to_num(np.clip(y - lo, 0, None), nan=0.0)
    above = np.nan_to_num(np.clip(hi - y, 0, None), nan=0.0)
    return y, np.vstack([below, above])


def plot_summary_ci(summary: pd.DataFrame, path: str | os.PathLike, generic: str = "generic") -> None:
    """Mean relative error increase and top-1 hit rate per method (rows in the order given), with 95% CIs.

    Needs columns method, kind, mean_relative_increase, top1_hit_rate; the *_lo/*_hi columns are optional (NaN or
    absent: no bar). Bars are coloured by kind; a dashed line marks the `generic` method's value when present.
    """
    _require_columns(summary, ("method", "kind", "mean_relative_increase", "top1_hit_rate"), "plot_summary_ci")
    if summary.empty:
        raise ValueError("plot_summary_ci: summary has no rows")
    methods = [str(m) for m in summary["method"]]
    kinds = [str(k) for k in summary["kind"]]
    kind_colors = _kind_color(kinds)
    colors = [kind_colors[k] for k in kinds]
    pos = np.arange(len(methods))
    fig = Figure(figsize=(10.0, max(2.6, 0.32 * len(methods) + 1.6)), layout="constrained")
    panels = (
        ("mean_relative_increase", "mean relative error increase over the optimal expert (%)",
         "Error increase over the optimal expert (lower is better)"),
        ("top1_hit_rate", "top-1 hit rate (%)", "Picks the optimal expert (higher is better)"),
    )
    for k, (column, xlabel, title) in enumerate(panels):
        ax = fig.add_subplot(1, 2, k + 1)
        y, err = _interval(summary, column)
        bars = ax.barh(pos, 100.0 * np.nan_to_num(y), xerr=100.0 * err, color=colors, height=0.7,
                       error_kw={"ecolor": "black", "elinewidth": 0.8, "capsize": 2.5})
        ax.bar_label(bars, labels=["n/a" if np.isnan(v) else f"{100.0 * v:.1f}" for v in y], fontsize=7,
                     padding=3)
        if generic in methods and np.isfinite(y[methods.index(generic)]):
            ax.axvline(100.0 * y[methods.index(generic)], color=GENERIC_COLOR, linestyle="--", linewidth=0.9)
        ax.axvline(0.0, color="black", linewidth=0.8)
        ax.set_yticks(pos)
        ax.set_yticklabels(methods if k == 0 else [], fontsize=8)
        ax.set_ylim(len(methods) - 0.5, -0.5)
        ax.set_xlabel(xlabel, fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.xaxis.set_major_formatter(PercentFormatter(decimals=0))
        ax.tick_params(axis="x", labelsize=7)
        ax.grid(axis="x", alpha=0.3)
        ax.margins(x=0.15)
    handles = [Patch(facecolor=c, label=k) for k, c in kind_colors.items()]
    handles.append(Line2D([], [], color="black", marker="|", linestyle="", markersize=8, label="95% bootstrap CI"))
    if generic in methods:
        handles.append(Line2D([], [], color=GENERIC_COLOR, linestyle="--", label=f"{generic} (reference level)"))
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=8, frameon=False)
    fig.suptitle("Expert selection by method", fontsize=11)
    _save_png(fig, path)


def pareto_front(cost: np.ndarray | pd.Series, error: np.ndarray | pd.Series) -> np.ndarray:
    """Boolean mask of the points no other point dominates (cost <= and error <= with one strictly lower).

    Points with a NaN coordinate are never on the front; equal points are both on it.
    """
    c = np.asarray(cost, dtype=float)
    e = np.asarray(error, dtype=float)
    if c.shape != e.shape or c.ndim != 1:
        raise ValueError(f"pareto_front: cost and error must be 1-D of equal length, got {c.shape} and {e.shape}")
    ok = np.isfinite(c) & np.isfinite(e)
    le = (c[None, :] <= c[:, None]) & (e[None, :] <= e[:, None])
    lt = (c[None, :] < c[:, None]) | (e[None, :] < e[:, None])
    dominated = (le & lt & ok[None, :]).any(axis=1)
    return ok & ~dominated


def _spread_labels(y: np.ndarray, gap: float) -> np.ndarray:
    """Label heights near y, in the same order, at least gap apart (for points stacked at one x)."""
    order = np.argsort(y, kind="stable")
    placed = y[order].astype(float).copy()
    for i in range(1, len(placed)):
        placed[i] = max(placed[i], placed[i - 1] + gap)
    placed -= (placed - y[order]).mean()
    out = np.empty_like(placed)
    out[order] = placed
    return out


def _dodge(ax, cost: np.ndarray, y: np.ndarray, step: float = 0.012) -> np.ndarray:
    """x positions of points that share a cost spread side by side (by y), `step` of the axis width apart.

    The offsets are taken in the axis' scale coordinates, so they look equal on a log or symlog axis. Call after
    setting the scale and x limits.
    """
    scale = ax.xaxis.get_transform()
    lo, hi = scale.transform(np.asarray(ax.get_xlim(), dtype=float))
    t = scale.transform(cost.astype(float))
    for c in np.unique(cost):
        at = np.flatnonzero(cost == c)
        at = at[np.argsort(y[at], kind="stable")]
        t[at] = t[at] + (np.arange(len(at)) - (len(at) - 1) / 2.0) * step * (hi - lo)
    return scale.inverted().transform(t)


def plot_cost_frontier(summary: pd.DataFrame, path: str | os.PathLike) -> None:
    """Selection quality against ranking cost, with the Pareto frontier (lower cost and lower error are better).

    Needs columns method, kind, cost (forward passes over the new task's data: 0 reference, 1 embedding, 1+k
    two-stage, N per-expert) and mean_relative_increase; *_lo/*_hi optional. x is symlog (linear below 1).
    Rows with a NaN cost or error are left out.
    """
    _require_columns(summary, ("method", "kind", "cost", "mean_relative_increase"), "plot_cost_frontier")
    keep = summary["cost"].notna() & summary["mean_relative_increase"].notna()
    s = summary[keep.to_numpy()].reset_index(drop=True)
    if s.empty:
        raise ValueError("plot_cost_frontier: no row has both a cost and a mean_relative_increase")
    cost = s["cost"].to_numpy(dtype=float)
    if (cost < 0).any():
        raise ValueError("plot_cost_frontier: cost must be non-negative")
    y, err = _interval(s, "mean_relative_increase")
    y, err = 100.0 * y, 100.0 * err
    kinds = [str(k) for k in s["kind"]]
    kind_colors = _kind_color(kinds)
    front = pareto_front(cost, y)

    fig = Figure(figsize=(7.5, 5.0), layout="constrained")
    ax = fig.add_subplot()
    ax.set_xscale("symlog", linthresh=1.0)
    ax.set_xlim(-0.3, max(float(cost.max()) * 2.5, 3.0))
    x = _dodge(ax, cost, y)
    f = np.flatnonzero(front)
    f = f[np.lexsort((y[f], cost[f]))]
    ax.plot(x[f], y[f], drawstyle="steps-post", color="0.3", linewidth=1.2, zorder=1, label="Pareto frontier")
    for kind, color in kind_colors.items():
        idx = [i for i, k in enumerate(kinds) if k == kind]
        ax.errorbar(x[idx], y[idx], yerr=err[:, idx], fmt="o", color=color, ecolor=color, elinewidth=0.8,
                    capsize=2.5, markersize=6, markeredgecolor="black", markeredgewidth=0.4, zorder=3, label=kind)
    span = float(np.ptp(np.concatenate([y - err[0], y + err[1]]))) or 1.0
    shift = ax.transData + ScaledTranslation(6 / 72.0, 1.5 / 72.0, fig.dpi_scale_trans)
    for c in np.unique(cost):
        at = np.flatnonzero(cost == c)
        label_y = _spread_labels(y[at], 0.045 * span)
        for i, ly in zip(at, label_y):
            moved = len(at) > 1
            ax.annotate(str(s["method"].iloc[i]), (x[i], y[i]), xytext=(x[at].max(), ly), textcoords=shift,
                        fontsize=7, ha="left", va="bottom" if not moved else "center",
                        arrowprops={"arrowstyle": "-", "color": "0.6", "linewidth": 0.5} if moved else None)
    costs = np.unique(cost)
    if len(costs) <= 8:
        ax.set_xticks(costs, [f"{c:g}" for c in costs])
        ax.xaxis.set_minor_locator(NullLocator())
    ax.set_xlabel("ranking cost: forward passes over the new task's data (symlog scale)")
    ax.set_ylabel("mean relative error increase (%)")
    ax.set_title("Selection quality against cost (lower-left is better)\n"
                 "bars: 95% bootstrap CI; line: Pareto frontier", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False, title="kind",
              title_fontsize=8)
    _save_png(fig, path)

