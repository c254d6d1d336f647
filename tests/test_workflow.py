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
# per-expert, from transfer.parquet (ncti from its three raw terms, normalised over each target's candidates)
SCORES = ["hscore", "hscore_shrunk", "knn", "leep", "logme", "nce", "ncti", "sfda", "transrate"]
SCORE_COLUMNS = [f"score_{s}" for s in SCORES if s != "ncti"] + ["pool_ncti_seli", "pool_ncti_ncc", "pool_ncti_vc"]
AGNOSTIC = ["agnostic.mean_quality", "agnostic.most_images"]  # target-agnostic rankings
TWO_STAGE = ["domain>logme@1"]  # tiny.yaml's selection.rerank
FIGURES = ["selection_violin.png", "summary.png", "cost_frontier.png", "distance_heatmaps.png", "task_maps.png",
           "norm_vs_error.png", "taxonomy_curve.png"]


def test_dry_run_plans_every_stage_in_batches(tmp_path):
    write_config(tmp_path, execution={"experts_per_transfer_job": 3, "tasks_per_embed_job": 2})
    counts = job_counts(snakemake(tmp_path, "-n").stdout)
    n = len(TASKS)
    assert counts["split_task"] == n + 1  # the source task too
    assert counts["train_probe"] == 1 and counts["init_random_probe"] == 1
    assert counts["train_expert"] == n
    assert counts["transfer_batch"] == 2  # 4 experts (the generic one too), 3 a job
    assert counts["embed_batch"] == 2  # 3 tasks, 2 a job, every method
    assert counts["compute_distances"] == 1 and counts["learn_model2vec"] == 1
    # splits, tasks table, 2 probes, experts, 2 transfer jobs + gather, 2 embedding jobs + gather, distances,
    # MODEL2VEC, score, plot (one meta-task), all
    assert counts["total"] == (n + 1) + 1 + 2 + n + 3 + 3 + 1 + 1 + 1 + 1 + 1
    assert not (tmp_path / "results").exists()


def test_every_pair_and_embedding_is_computed_once(tiny_run):
    """The batch jobs' provenance lists what each computed: every (expert, task) pair and (method, task) embedding
    exactly once, nothing reused in a cold run."""
    from taskspace.results import read_provenance

    res = tiny_run / "results"
    computed = [tuple(p) for part in sorted((res / "transfer").glob("part-*.parquet"))
                for p in read_provenance(part)["computed"]]
    assert sorted(computed) == sorted((e, t) for e in TASKS + ["generic"] for t in TASKS)
    logs = "".join(p.read_text() for p in (res / "logs" / "embed_batch").glob("*.log"))
    assert logs.count("(computed)") == (len(METHODS) - 1) * len(TASKS) and "(reused" not in logs


def test_full_run_tables(tiny_run):
    res = tiny_run / "results"
    tasks = pd.read_parquet(res / "tasks.parquet")
    assert sorted(tasks.task) == sorted(TASKS + ["source"])
    assert set(tasks.loc[tasks.role == "task", "domain"]) == {"organic", "geometric"}
    assert (tasks.n_train > 0).all() and (tasks.n_classes >= 2).all()

    transfer = pd.read_parquet(res / "transfer.parquet")
    expected = {"expert", "task", "test_error", "test_accuracy", "train_accuracy", "n_train", "n_test", "n_classes",
                "fit_iterations", *SCORE_COLUMNS}
    assert expected <= set(transfer.columns)
    assert len(transfer) == len(TASKS) * (len(TASKS) + 1)
    assert set(transfer.expert) == set(TASKS) | {"generic"}
    assert transfer.test_error.between(0, 1).all()
    np.testing.assert_allclose(transfer.test_error + transfer.test_accuracy, 1.0)
    sizes = tasks.set_index("task")
    for row in transfer.itertuples():
        assert row.n_train == sizes.n_train[row.task] and row.n_test == sizes.n_test[row.task]

    # per-expert scores on the training split: H-score is undefined there (n <= 512 features), the others are not
    assert transfer.score_hscore.isna().all() and transfer[SCORE_COLUMNS[1:]].notna().all().all()
    assert (transfer.score_leep <= 0).all() and (transfer.score_nce <= 0).all()  # log-likelihoods

    summary = pd.read_parquet(res / "summary.parquet")
    assert list(summary.method) == ["oracle", *SELECTORS, *SCORES, *TWO_STAGE, *AGNOSTIC, "generic", "random"]
    s = summary.set_index("method")
    assert s.loc["hscore", "n_targets"] == 0 and s.loc["hscore", "n_skipped"] == len(TASKS)  # counted, not picked
    assert (s.loc[SCORES[1:], "n_targets"] == len(TASKS)).all()
    assert list(s.loc[["domain", "logme", "domain>logme@1", "random"], "cost"]) == [1.0, 2.0, 2.0, 0.0]
    assert list(s.loc[SCORES[1:] + SELECTORS + AGNOSTIC, "kind"].unique()) == ["per-expert", "embedding",
                                                                              "target-agnostic"]
    assert (s.loc[AGNOSTIC, "cost"] == 0).all() and (s.loc[AGNOSTIC, "n_targets"] == len(TASKS)).all()
    ok = s.mean_relative_increase.notna()
    assert (s.mean_relative_increase_lo[ok] <= s.mean_relative_increase[ok] + 1e-12).all()
    assert (s.mean_relative_increase[ok] <= s.mean_relative_increase_hi[ok] + 1e-12).all()
    comparisons = pd.read_parquet(res / "comparisons.parquet")
    compared = len(summary) - 1  # every pair once; hscore chose on no target: nothing to pair
    assert len(comparisons) == compared * (compared - 1) // 2
    assert "hscore" not in set(comparisons.method_a) | set(comparisons.method_b)
    assert (comparisons.n_targets == len(TASKS)).all()
    assert comparisons.verdict.isin(["not distinguishable", *(f"{m} better" for m in summary.method)]).all()
    oracle = summary.set_index("method").loc["oracle"]
    assert oracle.mean_relative_increase == 0 and oracle.top1_hit_rate == 1
    chose = summary[summary.method != "hscore"]  # hscore chose on no target (below)
    assert (chose.mean_relative_increase >= -1).all()
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
    for png in FIGURES:
        assert (res / "plots" / "all" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = pd.read_csv(res / "plots" / "all" / "summary.csv")
    assert list(table.method) == list(summary.method)
    with h5py.File(res / "tasks" / f"{TASKS[0]}.h5") as f:
        assert f["images"].dtype == np.uint8 and f["images"].shape[1:] == (16, 16, 3)
        assert f.attrs["task"] == TASKS[0]


def test_rerun_of_a_finished_run_does_nothing(tiny_run):
    out = snakemake(tiny_run, "-n")
    assert "Nothing to be done" in out.stdout + out.stderr
    assert job_counts(out.stdout).get("total", 0) == 0


def test_same_config_and_seed_give_the_same_tables_however_the_work_is_batched(tiny_run, tmp_path):
    """Another run of the same config, with one expert per transfer job and all tasks in one embedding job (the
    tiny run: 4 and 4): the same tables and embeddings, value for value."""
    write_config(tmp_path, execution={"experts_per_transfer_job": 1, "tasks_per_embed_job": 3})
    snakemake(tmp_path, "--cores", "2")
    assert len(list((tmp_path / "results" / "transfer").glob("part-*.parquet"))) == 4
    with h5py.File(tiny_run / "results" / "embeddings.h5") as a, h5py.File(tmp_path / "results" / "embeddings.h5") as b:
        assert sorted(a) == sorted(b)
        for method in a:
            for task in a[method]:
                for name in a[method][task]:
                    np.testing.assert_array_equal(a[method][task][name][()], b[method][task][name][()])
    for table in ("transfer.parquet", "summary.parquet", "selection.parquet", "comparisons.parquet", "tasks.parquet"):
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
