"""The real Snakefile on a tiny config: job counts, a full run, its tables, reruns and bad input."""

from __future__ import annotations

import h5py
import numpy as np
import pandas as pd
import pytest

from conftest import job_counts, snakemake, write_config

pytestmark = pytest.mark.workflow

TASKS = ["geometric-c1-o1", "organic-c1-o1", "organic-c1-o2"]
METHODS = ["domain", "task2vec", "task2vec_mc", "pseudotask", "ttk", "model2vec", "task2vec_random",
           "pseudotask_random"]
SELECTORS = ["domain", "model2vec", "pseudotask.asym", "pseudotask.sym", "pseudotask_random.asym",
             "pseudotask_random.sym", "task2vec.asym", "task2vec.sym", "task2vec_mc.asym", "task2vec_mc.sym",
             "task2vec_random.asym", "task2vec_random.sym", "ttk"]


def test_dry_run_plans_every_stage_once_per_unit(tmp_path):
    write_config(tmp_path)
    counts = job_counts(snakemake(tmp_path, "-n").stdout)
    n = len(TASKS)
    assert counts["split_task"] == n + 1  # the source task too
    assert counts["train_probe"] == 1
    assert counts["train_expert"] == n
    assert counts["transfer_pair"] == (n + 1) * n  # every expert and the generic one on every task
    assert counts["init_random_probe"] == 1
    embed_methods = len(METHODS) - 1  # every method but MODEL2VEC embeds each task
    assert counts["embed_task"] == embed_methods * n
    assert counts["compute_distances"] == embed_methods and counts["learn_model2vec"] == 1
    # splits, tasks table, 2 probes, experts, pairs, gather transfer, embeddings, gather, distances, score, plot, all
    assert counts["total"] == (
        (n + 1) + 1 + 2 + n + (n + 1) * n + 1 + embed_methods * n + 1 + len(METHODS) + 1 + 1 + 1
    )
    assert not (tmp_path / "results").exists()


def test_full_run_tables(tiny_run):
    res = tiny_run / "results"
    tasks = pd.read_parquet(res / "tasks.parquet")
    assert sorted(tasks.task) == sorted(TASKS + ["source"])
    assert set(tasks.loc[tasks.role == "task", "domain"]) == {"organic", "geometric"}
    assert (tasks.n_train > 0).all() and (tasks.n_classes >= 2).all()

    transfer = pd.read_parquet(res / "transfer.parquet")
    expected = {"expert", "task", "test_error", "test_accuracy", "train_accuracy", "n_train", "n_test", "n_classes",
                "fit_iterations"}
    assert expected <= set(transfer.columns)
    assert len(transfer) == len(TASKS) * (len(TASKS) + 1)
    assert set(transfer.expert) == set(TASKS) | {"generic"}
    assert transfer.test_error.between(0, 1).all()
    np.testing.assert_allclose(transfer.test_error + transfer.test_accuracy, 1.0)
    sizes = tasks.set_index("task")
    for row in transfer.itertuples():
        assert row.n_train == sizes.n_train[row.task] and row.n_test == sizes.n_test[row.task]

    summary = pd.read_parquet(res / "summary.parquet")
    assert list(summary.method) == ["oracle", *SELECTORS, "generic", "random"]
    oracle = summary.set_index("method").loc["oracle"]
    assert oracle.mean_relative_increase == 0 and oracle.top1_hit_rate == 1
    assert (summary.mean_relative_increase.drop(index=0) >= -1).all()
    selection = pd.read_parquet(res / "selection.parquet")
    assert set(selection.target) == set(TASKS)
    chosen = selection[selection.method == "domain"]
    assert (chosen.chosen != chosen.target).all()  # a target's own expert is never chosen

    pairs = len(TASKS) * (len(TASKS) - 1)
    dist = pd.read_parquet(res / "distances" / "domain.parquet")
    assert len(dist) == pairs and (dist.distance >= 0).all()
    dist = pd.read_parquet(res / "distances" / "task2vec.parquet")
    assert list(dist.columns[:6]) == ["method", "embedding", "kind", "source", "target", "distance"]
    assert sorted(set(dist.method)) == ["task2vec.asym", "task2vec.sym"] and len(dist) == 2 * pairs
    with h5py.File(res / "embeddings.h5") as f:
        assert sorted(f) == sorted(set(METHODS) - {"model2vec"})
        assert sorted(f["domain"]) == sorted(TASKS)
        assert f["domain"][TASKS[0]]["embedding"].shape == (512,)
        for method in ("task2vec", "task2vec_mc", "pseudotask", "task2vec_random"):
            group = f[method][TASKS[0]]
            assert group["embedding"].shape == group["trivial"].shape == (4800,)  # every ResNet-18 conv filter
            assert group.attrs["n_filters"] == 4800
        assert f["ttk"][TASKS[0]]["embedding"].shape == (2, 1024)  # networks x sketch
    with h5py.File(res / "model2vec" / "model2vec.h5") as f:
        assert f["biases"].shape == (len(TASKS), 4800)
    for png in ("selection_violin.png", "summary.png"):
        assert (res / "plots" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with h5py.File(res / "tasks" / f"{TASKS[0]}.h5") as f:
        assert f["images"].dtype == np.uint8 and f["images"].shape[1:] == (16, 16, 3)
        assert f.attrs["task"] == TASKS[0]


def test_rerun_of_a_finished_run_does_nothing(tiny_run):
    out = snakemake(tiny_run, "-n")
    assert "Nothing to be done" in out.stdout + out.stderr
    assert job_counts(out.stdout).get("total", 0) == 0


def test_same_config_and_seed_give_the_same_tables(tiny_run, tmp_path):
    write_config(tmp_path)
    snakemake(tmp_path, "--cores", "2")
    for table in ("transfer.parquet", "summary.parquet", "selection.parquet", "tasks.parquet"):
        a = pd.read_parquet(tiny_run / "results" / table).drop(columns=["path"], errors="ignore")
        b = pd.read_parquet(tmp_path / "results" / table).drop(columns=["path"], errors="ignore")
        a = a.drop(columns=[c for c in a.columns if c.startswith("seconds")])
        b = b.drop(columns=[c for c in b.columns if c.startswith("seconds")])
        pd.testing.assert_frame_equal(a, b)


BAD_INPUTS = [
    ({"data": {"source": "imagenet21k"}}, "data.source"),
    ({"data": {"resolution": 0}}, "data.resolution"),
    ({"data": {"synthetic": {"overrides": {"organic-c1-o1": {"n_classes": 1}}}}}, "organic-c1-o1"),
    ({"data": {"synthetic": {"overrides": {"organic-c1-o2": {"train_per_class": 0}}}}}, "organic-c1-o2"),
    ({"probe": {"train": {"lerning_rate": 0.1}}}, "probe.train.lerning_rate"),
    ({"transfer": {"l2": "strong"}}, "transfer.l2"),
]


@pytest.mark.parametrize("change,culprit", BAD_INPUTS, ids=[c for _, c in BAD_INPUTS])
def test_bad_input_stops_before_any_job_and_deletes_nothing(tiny_run, tmp_path, change, culprit):
    import yaml

    from conftest import CONFIGS

    cfg = yaml.safe_load((CONFIGS / "tiny.yaml").read_text())
    for section, values in change.items():
        target = cfg.setdefault(section, {})
        for key, value in values.items():
            if isinstance(value, dict) and isinstance(target.get(key), dict):
                target[key] = {**target[key], **value}
            else:
                target[key] = value
    before = {p: p.stat().st_mtime_ns for p in (tiny_run / "results").rglob("*") if p.is_file()}
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(cfg))
    original = (tiny_run / "config.yaml").read_text()
    try:
        (tiny_run / "config.yaml").write_text(bad.read_text())
        proc = snakemake(tiny_run, "--cores", "2", check=False)
    finally:
        (tiny_run / "config.yaml").write_text(original)
    assert proc.returncode != 0
    assert culprit in proc.stdout + proc.stderr
    after = {p: p.stat().st_mtime_ns for p in (tiny_run / "results").rglob("*") if p.is_file()}
    assert after == before
