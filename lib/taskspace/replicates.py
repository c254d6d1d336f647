"""Replicates of the ground truth (``experts.replicates``): every expert trained R times with different seeds.

Replicate 0 of a task's expert is named after the task, exactly as without replicates, so R = 1 is the bank and
the matrix of a run without them, bit for bit; replicate r >= 1 is the expert ``<task>@r<r>`` (a task name cannot
hold ``@``), seeded from that name, with its own checkpoint, transfer column and reuse-store entries. Raising R
trains and transfers only the new replicates; lowering it computes nothing.

The generic expert is the probe, which no replicate retrains, and a pair's classifier is fitted by L-BFGS from
zero on fixed features, with no seed: the noise of the ground truth is the experts' training noise, and the
generic column has one replicate.

``transfer_replicates.parquet`` keeps every replicate's row (an ``expert`` column without the suffix and a
``replicate`` column); ``transfer.parquet`` is its replicate mean (:func:`replicate_mean`), which every selector
is scored against.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SEPARATOR = "@r"
# Averaged over replicates in transfer.parquet; every other column of a pair (its sizes, its per-expert scores, its
# timings) is replicate 0's: a user ranks the experts they have, one per task.
MEAN_COLUMNS = ("test_error", "test_accuracy", "train_accuracy")


def replicate_name(task: str, replicate: int) -> str:
    """The expert name of ``task``'s replicate ``replicate`` (the task's own name for replicate 0)."""
    if replicate < 0:
        raise ValueError(f"replicate must be >= 0, got {replicate}")
    return task if replicate == 0 else f"{task}{SEPARATOR}{replicate}"


def split_replicate(name: str) -> tuple[str, int]:
    """(task, replicate) of an expert name made by :func:`replicate_name`."""
    task, sep, number = name.rpartition(SEPARATOR)
    if sep and task and number.isdigit() and not number.startswith("0"):
        return task, int(number)
    return name, 0


def replicate_names(tasks: list[str], replicates: int) -> list[str]:
    """Every replicate of every task's expert: each task's replicates 0 .. R-1, in task order."""
    if replicates < 1:
        raise ValueError(f"experts.replicates must be >= 1, got {replicates}")
    return [replicate_name(t, r) for t in tasks for r in range(replicates)]


def with_replicate_axis(transfer: pd.DataFrame) -> pd.DataFrame:
    """The transfer rows of replicate experts (``<task>@r<r>``) as rows of the expert ``<task>`` with a
    ``replicate`` column (0 for the others), sorted by expert, task and replicate."""
    split = [split_replicate(str(e)) for e in transfer["expert"]]
    out = transfer.copy()
    out["expert"] = [task for task, _ in split]
    out.insert(out.columns.get_loc("expert") + 1, "replicate", np.array([r for _, r in split], dtype=np.int64))
    out = out.sort_values(["expert", "task", "replicate"], kind="mergesort").reset_index(drop=True)
    dup = out[out.duplicated(["expert", "task", "replicate"], keep=False)]
    if len(dup):
        row = dup.iloc[0]
        raise ValueError(f"transfer table: {len(dup)} rows share an (expert, task, replicate), e.g. "
                         f"expert={row['expert']!r} task={row['task']!r} replicate={row['replicate']}")
    return out


def replicate_mean(per_replicate: pd.DataFrame) -> pd.DataFrame:
    """One row per (expert, task): the :data:`MEAN_COLUMNS` averaged over its replicates (summed in replicate
    order), every other column replicate 0's, without the ``replicate`` column. With one replicate per pair this is
    replicate 0's rows unchanged. A pair without replicate 0, or with a gap in its replicates, is an error naming it.
    """
    t = per_replicate.sort_values(["expert", "task", "replicate"], kind="mergesort").reset_index(drop=True)
    groups = t.groupby(["expert", "task"], sort=False)["replicate"]
    counts, firsts, lasts = groups.transform("size"), groups.transform("min"), groups.transform("max")
    bad = t[(firsts != 0) | (lasts != counts - 1)]
    if len(bad):
        row = bad.iloc[0]
        raise ValueError(f"transfer replicates: expert {row['expert']!r} on task {row['task']!r} has replicates "
                         f"{sorted(t.loc[(t['expert'] == row['expert']) & (t['task'] == row['task']), 'replicate'])}"
                         ", not 0 .. R-1")
    first = t[t["replicate"] == 0].drop(columns="replicate").reset_index(drop=True)
    if int(counts.max()) == 1:
        return first
    for column in MEAN_COLUMNS:
        if column in t.columns:
            first[column] = t.groupby(["expert", "task"], sort=False)[column].mean().to_numpy(float)
    return first


def replicate_count(per_replicate: pd.DataFrame) -> int:
    """The largest number of replicates of a pair in a replicate table (1 for a table without the axis)."""
    if "replicate" not in per_replicate.columns or per_replicate.empty:
        return 1
    return int(per_replicate["replicate"].max()) + 1
