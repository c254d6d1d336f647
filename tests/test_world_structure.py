"""The embedded benchmark makes expert selection a real problem: shown on a real run of the default world.

The run keeps everything of config.yaml (the world, source task, probe, experts, transfer) and reduces only the
embedding methods to two cheap ones: the transfer matrix is the demo's.
"""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from conftest import REPO, snakemake

pytestmark = pytest.mark.workflow


METHODS = ["domain", "task2vec_mc"]  # the cheap ones; the tiny workflow test runs every method


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    """config.yaml with two embedding methods, run end to end: the world, the probe, the experts of the tasks with
    enough training images (experts.min_train_images) and the full matrix on all 24 targets."""
    directory = tmp_path_factory.mktemp("default_run")
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["embeddings"]["methods"] = METHODS
    config["selection"]["rerank"]["embeddings"] = ["domain"]  # the shortlists must come from configured methods
    (directory / "config.yaml").write_text(yaml.safe_dump(config))
    snakemake(directory, "--cores", "2")
    return directory / "results"


@pytest.fixture(scope="module")
def candidates(default_run):
    """Every (expert, target) pair that selection chooses from, labelled by taxonomic relation."""
    transfer = pd.read_parquet(default_run / "transfer.parquet")
    tasks = pd.read_parquet(default_run / "tasks.parquet").set_index("task")
    pairs = transfer[(transfer.expert != "generic") & (transfer.expert != transfer.task)].copy()
    pairs["same_domain"] = tasks.domain[pairs.expert].values == tasks.domain[pairs.task].values
    pairs["same_clade"] = tasks.clade[pairs.expert].values == tasks.clade[pairs.task].values
    return pairs


def test_the_world_has_enough_tasks_with_heavy_tailed_sizes(default_run):
    tasks = pd.read_parquet(default_run / "tasks.parquet")
    tasks = tasks[tasks.role == "task"]
    assert len(tasks) == 24 and tasks.domain.nunique() == 2 and tasks.clade.nunique() == 6
    assert tasks.n_train.max() / tasks.n_train.min() >= 10


def test_the_premise_holds_an_expert_beats_the_generic_probe(default_run):
    """As in the published CUB+iNat matrix (40 and 31 of 50): on >= 75 % of targets the best candidate expert beats
    the generic probe, on >= 50 % by >= 10 % relative error."""
    from taskspace.fidelity import premise

    n, better, clearly = premise(pd.read_parquet(default_run / "selection.parquet"))
    assert n == 24
    assert better >= 0.75 * n, (better, n)
    assert clearly >= 0.5 * n, (clearly, n)


def test_experts_of_the_targets_clade_beat_those_of_the_other_domain(candidates):
    same_clade = candidates[candidates.same_clade].groupby("task").test_error.mean()
    other_domain = candidates[~candidates.same_domain].groupby("task").test_error.mean()
    assert same_clade.mean() < other_domain.mean()
    assert (same_clade < other_domain).sum() > len(same_clade) / 2, (same_clade, other_domain)


def test_experts_of_the_targets_domain_transfer_better(candidates):
    per_target = candidates.groupby(["task", "same_domain"]).test_error.mean().unstack()
    assert per_target[True].mean() < per_target[False].mean()


def test_sister_orders_transfer_better_than_other_clades_of_the_domain(candidates):
    same_domain = candidates[candidates.same_domain]
    per_target = same_domain.groupby(["task", "same_clade"]).test_error.mean().unstack()
    assert per_target[True].mean() < per_target[False].mean()


def test_selection_is_a_real_problem(default_run, candidates):
    # Experts differ on a target (a choice matters), and tasks range from easy to hard.
    spread = candidates.groupby("task").test_error.agg(lambda e: e.max() - e.min())
    assert spread.median() >= 0.05
    best = candidates.groupby("task").test_error.min()
    assert best.min() < 0.2 and best.max() > 0.5  # world seeds 0-2: easiest 0.14, 0.11, 0.00; hardest 0.64-0.72
    summary = pd.read_parquet(default_run / "summary.parquet").set_index("method")
    assert summary.mean_relative_increase["random"] > 0.1
    assert summary.mean_relative_increase["domain"] < summary.mean_relative_increase["random"]
    assert summary.mean_relative_increase["generic"] > 0.1  # the generic probe is a poor choice here


def test_fisher_embeddings_follow_the_taxonomy_and_the_difficulty(default_run):
    """Task2Vec sect. 3.2 / Fig. 2: the symmetric distance correlates with taxonomic distance, the Fisher norm with
    the error of the task's best expert."""
    import h5py
    import numpy as np

    from taskspace.fidelity import difficulty_correlation, taxonomic_distance, taxonomy_correlation

    tasks = pd.read_parquet(default_run / "tasks.parquet")
    taxonomy = taxonomic_distance(tasks[tasks.role == "task"], ["domain", "clade", "order"])
    distances = pd.read_parquet(default_run / "distances" / "task2vec_mc.parquet")
    assert taxonomy_correlation(distances, taxonomy, "sym") > 0.2
    with h5py.File(default_run / "embeddings.h5") as f:
        norms = {t: float(np.abs(g["embedding"][()] - g["trivial"][()]).sum()) for t, g in f["task2vec_mc"].items()}
    # weak in this world: +0.09 on the pinned kernels (world seed 0); +0.14 to +0.44 across seeds on one machine's
    # own kernels before they were pinned, so the kernel set alone moved it by more than 0.2
    assert difficulty_correlation(norms, pd.read_parquet(default_run / "selection.parquet")) > 0
