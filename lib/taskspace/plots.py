"""Figures of the selection stage: the per-target error violins of Task2Vec Fig. 3 and a summary bar chart.

Figures are built on `matplotlib.figure.Figure` with the Agg canvas (no pyplot, no global backend state) and
written atomically, so a crashed job never leaves a truncated PNG behind.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from taskspace.io import atomic_path
from taskspace.selection import ORACLE, RANDOM, REFERENCE_METHODS, candidate_table, method_order

METHOD_MARKERS = ("X", "P", "D", "*", "s", "v", "h", "p", "d", "<", ">", "8")
METHOD_COLORS = ("#d62728", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#bcbd22", "#17becf", "#2ca02c")
GENERIC_COLOR = "#1f77b4"
EXPERT_COLOR = "0.35"
VIOLIN_COLOR = "0.75"


def _save_png(fig: Figure, path: str | os.PathLike) -> None:
    """Render fig as PNG to a temporary name next to path, then move it into place (taskspace.io.atomic_path)."""
    FigureCanvasAgg(fig)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")


def _target_order(selection: pd.DataFrame, order: list[str] | None) -> list[str]:
    """Targets in the given order, else by optimal error then name."""
    per_target = selection.groupby("target", sort=True)["optimal_error"].first()
    if order is None:
        return sorted(per_target.index, key=lambda t: (per_target[t], t))
    unknown = sorted(set(order) - set(per_target.index))
    if unknown:
        raise ValueError(f"plot_selection: order names target(s) absent from the selection: {unknown}")
    return list(order)


def plot_selection(
    transfer: pd.DataFrame,
    selection: pd.DataFrame,
    path: str | os.PathLike,
    generic: str = "generic",
    order: list[str] | None = None,
) -> None:
    """Task2Vec Fig. 3: per target, the violin of candidate-expert errors, the generic expert and each method's pick.

    Columns follow `order` (default: increasing optimal error); y is test error in percent. Every method of the
    selection other than the references (oracle, the noise ceiling, random, generic) gets its own marker at its
    chosen expert's error.
    """
    targets = _target_order(selection, order)
    cands = candidate_table(transfer, generic)
    generic_error = transfer.loc[transfer["expert"] == generic].set_index("task")["test_error"].astype(float)
    methods = [m for m in method_order(selection["method"].unique(), generic) if m not in (*REFERENCE_METHODS, generic)]

    width = max(6.0, 0.32 * len(targets) + 2.5)
    fig = Figure(figsize=(width, 5.5))
    ax = fig.add_subplot()
    rng = np.random.default_rng(0)
    x = np.arange(len(targets), dtype=float)

    errors = [100.0 * cands.loc[cands["target"] == t, "test_error"].to_numpy(dtype=float) for t in targets]
    spread = [i for i, e in enumerate(errors) if len(e) > 1 and np.ptp(e) > 0]
    if spread:
        parts = ax.violinplot([errors[i] for i in spread], positions=x[spread], widths=0.8, showextrema=False)
        for body in parts["bodies"]:
            body.set_facecolor(VIOLIN_COLOR)
            body.set_edgecolor("none")
            body.set_alpha(0.7)
    for i, e in enumerate(errors):
        jitter = rng.uniform(-0.12, 0.12, size=len(e))
        ax.scatter(x[i] + jitter, e, s=6, color=EXPERT_COLOR, alpha=0.8, linewidths=0, zorder=2,
                   label="candidate experts" if i == 0 else None)

    g = [(x[i], 100.0 * generic_error[t]) for i, t in enumerate(targets) if t in generic_error.index]
    if g:
        gx, gy = zip(*g)
        ax.scatter(gx, gy, marker="^", s=40, color=GENERIC_COLOR, edgecolors="white", linewidths=0.5, zorder=3,
                   label=f"{generic} expert")

    offsets = np.linspace(-0.2, 0.2, len(methods)) if len(methods) > 1 else np.zeros(1)
    position = {t: i for i, t in enumerate(targets)}
    for k, method in enumerate(methods):
        s = selection[(selection["method"] == method) & selection["target"].isin(position)]
        mx = np.array([x[position[t]] for t in s["target"]]) + offsets[k]
        ax.scatter(mx, 100.0 * s["chosen_error"].to_numpy(dtype=float), marker=METHOD_MARKERS[k % len(METHOD_MARKERS)],
                   s=45, color=METHOD_COLORS[k % len(METHOD_COLORS)], edgecolors="black", linewidths=0.4, zorder=4,
                   label=f"{method} choice")

    ax.set_xticks(x)
    ax.set_xticklabels(targets, rotation=90, fontsize=7 if len(targets) > 20 else 9)
    ax.set_xlim(-0.7, len(targets) - 0.3)
    ax.set_ylabel("test error (%)")
    ax.set_xlabel("target task")
    ax.set_title("Test error of each candidate expert per target task (lower is better)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    _save_png(fig, path)


def plot_summary(summary: pd.DataFrame, path: str | os.PathLike, generic: str = "generic") -> None:
    """Bar chart of each method's mean relative error increase over the optimal expert, in percent."""
    values = 100.0 * summary["mean_relative_increase"].to_numpy(dtype=float)
    labels = [str(m) for m in summary["method"]]
    embedding = [m for m in labels if m not in (ORACLE, RANDOM, generic)]
    reference = {ORACLE: "0.3", RANDOM: VIOLIN_COLOR, generic: GENERIC_COLOR}
    colors = [reference.get(m) or METHOD_COLORS[embedding.index(m) % len(METHOD_COLORS)] for m in labels]
    fig = Figure(figsize=(max(4.0, 0.9 * len(labels) + 1.5), 4.0))
    ax = fig.add_subplot()
    bars = ax.bar(np.arange(len(labels)), values, color=colors)
    ax.bar_label(bars, labels=[f"{v:.1f}" for v in values], fontsize=8, padding=2)
    ax.axhline(0.0, color="black", linewidth=0.8)
    ax.set_xticks(np.arange(len(labels)))
    ax.set_xticklabels(labels, rotation=30, ha="right")
    ax.set_ylabel("mean relative error increase (%)")
    ax.set_title("Expert selection: error increase over the optimal expert")
    ax.grid(axis="y", alpha=0.3)
    _save_png(fig, path)
