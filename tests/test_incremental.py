"""Growing a finished run: a change reruns exactly the jobs it affects (dry-run job counts), and the batch jobs
that rerun *compute* only the new work: every transfer pair and embedding whose inputs are byte-identical is
reused from results/reuse/. What was computed is counted from the reuse store: a unit computed writes its file
anew, a unit reused leaves it untouched."""

from __future__ import annotations

import os
import shutil
import time

import h5py
import pandas as pd
import pytest
import yaml

from conftest import job_counts, snakemake

pytestmark = pytest.mark.workflow

TASKS = ["geometric-c1-o1", "organic-c1-o1", "organic-c1-o2"]
NEW = "geometric-c1-o2"
EMBED_METHODS = 7  # the default methods but MODEL2VEC
# the tiny run's batches (execution defaults: 4 experts a transfer job, 4 tasks an embedding job)
# every aggregate downstream of the task list: tasks table, gathers, distances, MODEL2VEC, scores, plots
AGGREGATES = {"tabulate_tasks": 1, "gather_transfer": 1, "gather_embeddings": 1, "compute_distances": 1,
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


def _planned(directory, *args: str) -> dict[str, int]:
    counts = job_counts(snakemake(directory, "-n", *args).stdout)
    counts.pop("total", None)
    return counts


def _store(directory) -> dict[str, tuple[int, int]]:
    """(inode, mtime) of every stored unit: results/reuse/{transfer/<expert>, embeddings/<method>}/<task>.*"""
    root = directory / "results" / "reuse"
    return {str(p.relative_to(root)): (p.stat().st_ino, p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


def _run_counting(directory, *args: str) -> tuple[set, set]:
    """Run the workflow; the (expert, task) pairs and (method, task) embeddings it computed."""
    before = _store(directory)
    snakemake(directory, "--cores", "2", *args)
    after = _store(directory)
    changed = {k for k, v in after.items() if before.get(k) != v}
    pairs = {tuple(k.removeprefix("transfer/").removesuffix(".parquet").split("/")) for k in changed
             if k.startswith("transfer/")}
    embeddings = {tuple(k.removeprefix("embeddings/").removesuffix(".h5").split("/")) for k in changed
                  if k.startswith("embeddings/")}
    return pairs, embeddings


def test_the_copy_is_finished(grown):
    assert _planned(grown) == {}


def test_adding_a_task_computes_exactly_its_pairs_and_embeddings(grown):
    _edit(grown, lambda c: c["data"]["tasks"].append(NEW))
    # the new task sorts into the first batches: 5 experts (generic included) in 2 transfer jobs, 4 tasks in 1
    # embedding job; both transfer jobs and the embedding job rerun
    assert _planned(grown) == {"split_task": 1, "train_expert": 1, "transfer_batch": 2, "embed_batch": 1,
                               **AGGREGATES}
    pairs, embeddings = _run_counting(grown)
    n = len(TASKS) + 1
    # its expert on every task (itself included), every other expert and the generic one on it
    assert pairs == {(NEW, t) for t in TASKS + [NEW]} | {(e, NEW) for e in TASKS + ["generic"]}
    assert len(pairs) == n + (n - 1) + 1
    assert embeddings == {(m, NEW) for m in ("domain", "task2vec", "task2vec_mc", "pseudotask", "ttk",
                                             "task2vec_random", "pseudotask_random")}
    assert _planned(grown) == {}
    transfer = pd.read_parquet(grown / "results" / "transfer.parquet")
    assert len(transfer) == n * (n + 1) and NEW in set(transfer.task) and NEW in set(transfer.expert)
    summary = pd.read_parquet(grown / "results" / "summary.parquet").set_index("method")
    assert (summary.n_targets + summary.n_skipped == n).all()  # every target, chosen for or counted as skipped
    assert summary.loc["hscore", "n_skipped"] == n  # undefined on these tiny tasks (more features than images)


def test_removing_a_task_computes_nothing(grown):
    _edit(grown, lambda c: c["data"]["tasks"].remove("organic-c1-o2"))
    # the batches' input lists shrink, so they rerun, reusing every pair and embedding
    assert _planned(grown) == {"transfer_batch": 1, "embed_batch": 1, **AGGREGATES}
    assert _run_counting(grown) == (set(), set())
    transfer = pd.read_parquet(grown / "results" / "transfer.parquet")
    assert len(transfer) == 2 * 3 and "organic-c1-o2" not in set(transfer.task) | set(transfer.expert)
    with h5py.File(grown / "results" / "embeddings.h5") as f:
        assert sorted(f["domain"]) == ["geometric-c1-o1", "organic-c1-o1"]


def test_raising_the_replicates_trains_and_transfers_only_the_new_replicates(grown):
    before = pd.read_parquet(grown / "results" / "transfer.parquet")
    _edit(grown, lambda c: c["experts"].__setitem__("replicates", 2))
    # one new expert per task; 7 experts in 2 transfer jobs; no embedding (replicates change no task's data)
    assert _planned(grown) == {"train_expert": 3, "transfer_batch": 2, "gather_transfer": 1, "learn_model2vec": 1,
                               "score_selection": 1, "plot_selection": 1, "all": 1}
    pairs, embeddings = _run_counting(grown)
    assert pairs == {(f"{e}@r1", t) for e in TASKS for t in TASKS} and embeddings == set()
    replicates = pd.read_parquet(grown / "results" / "transfer_replicates.parquet")
    assert sorted(set(replicates.expert)) == sorted(TASKS + ["generic"])
    first = replicates[replicates.replicate == 0].drop(columns="replicate").reset_index(drop=True)
    pd.testing.assert_frame_equal(first, before)  # replicate 0 is the run without replicates, bit for bit
    second = replicates[replicates.replicate == 1].set_index(["expert", "task"]).test_error
    assert (second != first.set_index(["expert", "task"]).test_error.loc[second.index]).any()  # another seed
    mean = pd.read_parquet(grown / "results" / "transfer.parquet").set_index(["expert", "task"]).test_error
    expected = replicates.groupby(["expert", "task"]).test_error.mean()
    pd.testing.assert_series_equal(mean, expected.loc[mean.index], check_names=False)
    summary = pd.read_parquet(grown / "results" / "summary.parquet").set_index("method")
    assert summary.loc["noise_ceiling", "kind"] == "reference" and summary.loc["noise_ceiling", "n_targets"] == 3
    # back to one replicate: the batches rerun and compute nothing; the tables are those of the first run
    _edit(grown, lambda c: c["experts"].__setitem__("replicates", 1))
    planned = _planned(grown)
    assert planned["transfer_batch"] == 1 and "train_expert" not in planned
    assert _run_counting(grown) == (set(), set())
    pd.testing.assert_frame_equal(pd.read_parquet(grown / "results" / "transfer.parquet"), before)
    assert "noise_ceiling" not in set(pd.read_parquet(grown / "results" / "summary.parquet").method)


def test_changing_the_classifier_penalty_recomputes_every_pair_and_no_embedding(grown):
    _edit(grown, lambda c: c["transfer"].__setitem__("l2", 0.01))
    assert _planned(grown) == {"transfer_batch": 1, "gather_transfer": 1, "learn_model2vec": 1,
                               "score_selection": 1, "plot_selection": 1, "all": 1}
    pairs, embeddings = _run_counting(grown)
    assert pairs == {(e, t) for e in TASKS + ["generic"] for t in TASKS} and embeddings == set()
    assert set(pd.read_parquet(grown / "results" / "transfer.parquet").l2) == {0.01}


def test_touching_a_task_file_computes_no_pair_and_no_embedding(grown):
    task = grown / "results" / "tasks" / "organic-c1-o1.h5"
    now = time.time_ns()
    os.utime(task, ns=(now, now))  # newer than every output, same bytes
    # Snakemake records the checksum of input files under --max-checksum-file-size (1 MB): the tiny task files
    # are, so the touch reruns nothing
    assert _planned(grown) == {}
    # Larger files (a real task file is several MB) are judged by modification time: the jobs reading the file
    # rerun (its expert retrains: on the same inputs it writes the same bytes); the batch jobs compare content
    # digests and reuse every pair and embedding
    larger = ("--max-checksum-file-size", "0")
    planned = _planned(grown, *larger)
    assert planned["train_expert"] == 1 and planned["transfer_batch"] == 1 and planned["embed_batch"] == 1
    assert _run_counting(grown, *larger) == (set(), set())


def test_changing_one_method_recomputes_that_method_only(grown):
    _edit(grown, lambda c: c.setdefault("embeddings", {}).setdefault("task2vec_mc", {}).__setitem__(
        "label_samples", 2))
    assert _planned(grown) == {"embed_batch": 1, "gather_embeddings": 1, "compute_distances": 1,
                               "learn_model2vec": 1, "score_selection": 1, "plot_selection": 1, "all": 1}
    model2vec = _store(grown)["model2vec/model2vec/model.h5"]
    pairs, embeddings = _run_counting(grown)
    assert pairs == set() and embeddings == {("task2vec_mc", t) for t in TASKS}
    # MODEL2VEC reruns (it reads embeddings.h5) but its base, task2vec, is unchanged: the stored fit is reused
    assert _store(grown)["model2vec/model2vec/model.h5"] == model2vec
    assert "reused" in (grown / "results" / "logs" / "learn_model2vec" / "model2vec.log").read_text()


def test_changing_alpha_reruns_only_the_distances(grown):
    _edit(grown, lambda c: c.setdefault("embeddings", {}).setdefault("task2vec", {}).__setitem__("alpha", 0.3))
    # no embedding job: alpha is a distance-only key (task2vec_random inherits it)
    assert _planned(grown) == {"compute_distances": 1, "score_selection": 1, "plot_selection": 1, "all": 1}


def test_a_stage_hyper_parameter_reruns_that_stage_and_its_dependants(grown):
    _edit(grown, lambda c: c["experts"]["train"].__setitem__("lr", 0.02))
    assert _planned(grown) == {
        "train_expert": len(TASKS),
        "transfer_batch": 1,
        "gather_transfer": 1,
        "learn_model2vec": 1,
        "score_selection": 1,
        "plot_selection": 1,
        "all": 1,
    }
    pairs, embeddings = _run_counting(grown)
    # every expert on every task; the generic expert's pairs and every embedding are reused
    assert pairs == {(e, t) for e in TASKS for t in TASKS} and embeddings == set()


def test_a_corrupt_or_foreign_stored_result_is_recomputed_with_a_warning(grown):
    store = grown / "results" / "reuse"
    pair = store / "transfer" / "generic" / "organic-c1-o1.parquet"
    pair.write_bytes(pair.read_bytes()[:100])  # truncated
    embedding = store / "embeddings" / "domain" / "organic-c1-o1.h5"
    with h5py.File(embedding, "a") as f:  # as if written by another version
        f.attrs["reuse_key"] = f.attrs["reuse_key"].replace('"taskspace_version": "', '"taskspace_version": "0.0.1-')
    _edit(grown, lambda c: c["data"]["tasks"].remove("organic-c1-o2"))  # reruns both batches
    pairs, embeddings = _run_counting(grown)
    assert pairs == {("generic", "organic-c1-o1")} and embeddings == {("domain", "organic-c1-o1")}
    transfer_log = (grown / "results" / "logs" / "transfer_batch" / "000.log").read_text()
    assert f"{pair.relative_to(grown)}: stored result cannot be read" in transfer_log
    embed_log = (grown / "results" / "logs" / "embed_batch" / "000.log").read_text()
    assert f"{embedding.relative_to(grown)}: stored result was made by taskspace '0.0.1-" in embed_log
