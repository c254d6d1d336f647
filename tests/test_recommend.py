"""`taskspace recommend` on the tiny run: a new dataset folder in, the run's experts ranked out."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from taskspace.cli import main
from taskspace.errors import ConfigError, TaskDataError
from taskspace.results import read_task
from taskspace.recommend import recommend

pytestmark = pytest.mark.workflow

TASK = "organic-c1-o2"


def export_task(run: Path, task: str, folder: Path, labelled: bool = True) -> Path:
    """Write a run task's training images as PNG files: one sub-folder per class (in class order), or flat."""
    data, _ = read_task(run / "results" / "tasks" / f"{task}.h5")
    train = np.flatnonzero(data.is_train)
    for i in train:
        sub = folder / data.class_names[data.labels[i]] if labelled else folder
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(data.images[i]).save(sub / f"{i:04d}.png")
    return folder


def run_embedding(run: Path, method: str, task: str) -> np.ndarray:
    with h5py.File(run / "results" / "embeddings.h5") as f:
        return f[method][task]["embedding"][()]


def test_reproduces_the_runs_embedding_and_distances(tiny_run, tmp_path):
    """The run's own images, under the task's name, embed bit for bit as the run did; every expert's score equals
    the run's distance table for that target."""
    folder = export_task(tiny_run, TASK, tmp_path / "new")
    for method in ("task2vec_mc", "task2vec", "domain"):
        rec = recommend(tiny_run, folder, method=method, name=TASK, progress=False)
        np.testing.assert_array_equal(rec.embedding.vector, run_embedding(tiny_run, method, TASK))
        dist = pd.read_parquet(tiny_run / "results" / "distances" / f"{method}.parquet")
        want = dist[(dist.method == rec.selector) & (dist.target == TASK)].set_index("source").distance
        got = rec.table.set_index("expert").distance
        assert rec.selector == (method if method == "domain" else f"{method}.asym")
        assert set(got.index) == set(want.index) | {TASK}  # every expert of the run, the task's own included
        np.testing.assert_allclose(got[want.index], want, rtol=0, atol=1e-12)
        assert rec.table.set_index("expert").loc[TASK, "rank"] == 1  # its own expert is the closest
        assert list(rec.table["rank"]) == list(range(1, len(rec.table) + 1))
        assert rec.table.distance.is_monotonic_increasing


def test_model2vec_ranks_with_the_learned_biases(tiny_run, tmp_path):
    from taskspace.embeddings.model2vec import rank_experts
    from taskspace.recommend import _read_model2vec

    folder = export_task(tiny_run, TASK, tmp_path / "new")
    rec = recommend(tiny_run, folder, method="model2vec", name=TASK, progress=False)
    fit, base, cfg = _read_model2vec(tiny_run / "results" / "model2vec" / "model2vec.h5")
    with h5py.File(tiny_run / "results" / "embeddings.h5") as f:
        trivial = np.stack([f[base][e]["trivial"][()] for e in fit.experts])
    want = rank_experts(fit, trivial, run_embedding(tiny_run, base, TASK), float(cfg["alpha"]))
    got = rec.table.set_index("expert").distance
    np.testing.assert_allclose(got[fit.experts], want, rtol=0, atol=1e-6)
    assert rec.selector == "model2vec"


def test_unlabelled_folder_defaults_to_pseudotask_and_prints_json(tiny_run, tmp_path, capsys):
    folder = export_task(tiny_run, TASK, tmp_path / "photos", labelled=False)
    (folder / "notes.txt").write_text("not an image")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 truncated")
    assert main(["recommend", str(folder), "--run", str(tiny_run), "--json", "--quiet", "--threads", "1"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["method"] == "pseudotask" and out["selector"] == "pseudotask.asym"
    assert out["n_classes"] is None and out["task"] == "photos"
    n_train = int(read_task(tiny_run / "results" / "tasks" / f"{TASK}.h5")[0].is_train.sum())
    assert out["n_images"] == n_train  # the two bad files are left out ...
    assert sorted(Path(line.split(":")[0]).name for line in out["skipped"]) == ["broken.jpg", "notes.txt"]  # ... and named
    experts = sorted(p.stem for p in (tiny_run / "results" / "experts").glob("*.pt"))
    assert sorted(e["expert"] for e in out["experts"]) == experts
    assert [e["rank"] for e in out["experts"]] == list(range(1, len(experts) + 1))


def test_a_labelled_folder_is_ranked_by_nce_by_default(tiny_run, tmp_path):
    """The default follows the studies' evidence: NCE for labelled data, as --method nce gives it."""
    from taskspace.recommend import DEFAULT_SCORE

    folder = export_task(tiny_run, TASK, tmp_path / "new")
    default = recommend(tiny_run, folder, threads=1, progress=False)
    explicit = recommend(tiny_run, folder, method="nce", threads=1, progress=False)
    assert DEFAULT_SCORE == "nce" and default.method == default.selector == "nce"
    pd.testing.assert_frame_equal(default.table.drop(columns="seconds"), explicit.table.drop(columns="seconds"))


def test_console_script_prints_a_table_with_progress(tiny_run, tmp_path):
    folder = export_task(tiny_run, TASK, tmp_path / "birds")
    script = Path(sys.executable).parent / "taskspace"
    proc = subprocess.run([str(script), "recommend", str(folder), "--run", str(tiny_run / "results"),
                           "--method", "task2vec_mc", "--kind", "sym", "--top", "2", "--threads", "1"],
                          capture_output=True, text=True, check=True)
    lines = proc.stdout.splitlines()
    assert lines[0].startswith("task 'birds'") and "3 classes" in lines[0]
    assert "task2vec_mc.sym" in lines[1]
    assert lines[2].split() == ["rank", "expert", "distance"] and len(lines) == 5  # header + the top 2
    assert "reading images [" in proc.stderr and "embedding with task2vec_mc" in proc.stderr


def test_bad_input_is_named(tiny_run, tmp_path):
    folder = export_task(tiny_run, TASK, tmp_path / "mixed")
    shutil.copy(next((folder / next(iter(sorted(p.name for p in folder.iterdir())))).glob("*.png")), folder / "x.png")
    with pytest.raises(TaskDataError, match=r"mixed: holds both class folders .* and images \(x.png"):
        recommend(tiny_run, folder, method="domain", progress=False)
    flat = export_task(tiny_run, TASK, tmp_path / "flat", labelled=False)
    with pytest.raises(TaskDataError, match=r"flat: method 'task2vec' needs labels"):
        recommend(tiny_run, flat, method="task2vec", progress=False)
    with pytest.raises(ConfigError, match=r"--method: the run has no method 'task2vek'"):
        recommend(tiny_run, flat, method="task2vek", progress=False)
    empty = tmp_path / "empty" / "only-class"
    empty.mkdir(parents=True)
    with pytest.raises(TaskDataError, match=r"class 'only-class' has no image files"):
        recommend(tiny_run, empty.parent, method="domain", progress=False)
    assert main(["recommend", str(flat), "--run", str(tmp_path)]) == 2  # not a run: an error, not a traceback


def test_a_per_expert_score_runs_every_expert_as_the_transfer_stage_did(tiny_run, tmp_path, capsys):
    """The run's own training images: LogME of each expert equals the transfer stage's score_logme for that pair
    (it is invariant to the order of images and of classes); experts ranked by it, highest first."""
    folder = export_task(tiny_run, TASK, tmp_path / "birds")
    rec = recommend(tiny_run, folder, method="logme", threads=1)
    transfer = pd.read_parquet(tiny_run / "results" / "transfer.parquet")
    expected = transfer[transfer.task == TASK].set_index("expert")["score_logme"]
    got = rec.table.set_index("expert")["score"]
    assert sorted(got.index) == sorted(p.stem for p in (tiny_run / "results" / "experts").glob("*.pt"))
    np.testing.assert_allclose(got.to_numpy(), expected.loc[got.index].to_numpy(), rtol=1e-4)
    assert list(rec.table.columns) == ["rank", "expert", "score", "distance", "seconds"]
    assert rec.table.score.is_monotonic_decreasing and (rec.table.seconds > 0).all()
    assert rec.embedding is None and rec.selector == "logme"
    err = capsys.readouterr().err
    assert f"logme: running each of {len(got)} experts" in err
    assert all(f"  {e}: logme " in err for e in got.index)  # the time of each expert is printed

    # a pool score: NCTI's raw terms of every expert, min-max normalised over the experts run, as the select stage
    # normalises the transfer stage's terms over a target's candidates
    from taskspace.transferability import ncti_combine

    ncti = recommend(tiny_run, folder, method="ncti", threads=1, progress=False).table.set_index("expert")["score"]
    terms = transfer[transfer.task == TASK].set_index("expert").loc[ncti.index,
                                                                    ["pool_ncti_seli", "pool_ncti_ncc", "pool_ncti_vc"]]
    np.testing.assert_allclose(ncti.to_numpy(), ncti_combine(terms.to_numpy(float)), atol=1e-4)
    assert ncti.max() > ncti.min()

    base = recommend(tiny_run, folder, method="domain", progress=False)
    rerank = recommend(tiny_run, folder, method="domain", rerank="logme", shortlist=2, progress=False)
    assert rerank.selector == "domain>logme@2"
    head = rerank.table.iloc[:2]
    assert set(head.expert) == set(base.table.expert.iloc[:2])  # only the shortlist is re-ranked
    np.testing.assert_allclose(head.score.to_numpy(), got.loc[head.expert].to_numpy())
    assert head.score.is_monotonic_decreasing
    assert list(rerank.table.expert.iloc[2:]) == list(base.table.expert.iloc[2:]) and rerank.table.score.iloc[2:].isna().all()
    with pytest.raises(ConfigError, match="--rerank: unknown score 'logmee'"):
        recommend(tiny_run, folder, method="domain", rerank="logmee", progress=False)
    flat = export_task(tiny_run, TASK, tmp_path / "flat", labelled=False)
    with pytest.raises(TaskDataError, match="needs labels"):
        recommend(tiny_run, flat, method="leep", progress=False)
