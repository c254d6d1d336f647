"""Growing a finished run: a config change reruns exactly the jobs it affects (dry-run job counts, then a run)."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
import yaml

from conftest import job_counts, snakemake

pytestmark = pytest.mark.workflow

TASKS = ["geometric-c1-o1", "organic-c1-o1", "organic-c1-o2"]
NEW = "geometric-c1-o2"
EMBED_METHODS = 7  # the default methods but MODEL2VEC
# every aggregate downstream of the task list: tasks table, gathers, every method's distances, MODEL2VEC, scores
AGGREGATES = {"tabulate_tasks": 1, "gather_transfer": 1, "gather_embeddings": 1, "compute_distances": EMBED_METHODS,
              "learn_model2vec": 1, "score_selection": 1, "plot_selection": 1, "all": 1}


@pytest.fixture
def grown(tiny_run, tmp_path):
    """A copy of the finished tiny run (outputs, timestamps and Snakemake's metadata), safe to change."""
    directory = tmp_path / "run"
    shutil.copytree(tiny_run, directory, symlinks=True)
    return directory


def _edit(directory, change) -> None:
    path = directory / "config.yaml"
    config = yaml.safe_load(path.read_text())
    change(config)
    path.write_text(yaml.safe_dump(config))


def _planned(directory) -> dict[str, int]:
    counts = job_counts(snakemake(directory, "-n").stdout)
    counts.pop("total", None)
    return counts


def test_the_copy_is_finished(grown):
    assert _planned(grown) == {}


def test_adding_a_task_runs_exactly_its_jobs_and_the_aggregates(grown):
    _edit(grown, lambda c: c["data"]["tasks"].append(NEW))
    n = len(TASKS) + 1
    assert _planned(grown) == {
        "split_task": 1,
        "train_expert": 1,
        "embed_task": EMBED_METHODS,
        # its expert on every task (itself included), every other expert and the generic one on it
        "transfer_pair": n + (n - 1) + 1,
        **AGGREGATES,
    }
    snakemake(grown, "--cores", "2")
    assert _planned(grown) == {}
    transfer = pd.read_parquet(grown / "results" / "transfer.parquet")
    assert len(transfer) == n * (n + 1) and NEW in set(transfer.task) and NEW in set(transfer.expert)
    summary = pd.read_parquet(grown / "results" / "summary.parquet")
    assert (summary.n_targets == n).all()


def test_removing_a_task_reruns_only_the_aggregates(grown):
    _edit(grown, lambda c: c["data"]["tasks"].remove("organic-c1-o2"))
    assert _planned(grown) == AGGREGATES


def test_changing_alpha_reruns_only_the_distances_that_use_it(grown):
    _edit(grown, lambda c: c.setdefault("embeddings", {}).setdefault("task2vec", {}).__setitem__("alpha", 0.3))
    # task2vec and its random-probe variant, which inherits the key; no embedding is recomputed
    assert _planned(grown) == {"compute_distances": 2, "score_selection": 1, "plot_selection": 1, "all": 1}


def test_a_stage_hyper_parameter_reruns_that_stage_and_its_dependants(grown):
    _edit(grown, lambda c: c["experts"]["train"].__setitem__("lr", 0.02))
    n = len(TASKS)
    assert _planned(grown) == {
        "train_expert": n,
        "transfer_pair": n * n,  # every expert on every task; the generic expert's pairs stay
        "gather_transfer": 1,
        "learn_model2vec": 1,
        "score_selection": 1,
        "plot_selection": 1,
        "all": 1,
    }
