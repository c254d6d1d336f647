"""A whole run on image files: an imagefolder dataset (JPEG/PNG files, a taxonomy table), ImageNet weights from a
local torch cache, every stage through to the scores, then `recommend` on a new folder against that run."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from taskspace.cli import main
from taskspace.data import build_task
from taskspace.results import read_task

from conftest import CONFIGS, environment, snakemake

pytestmark = pytest.mark.workflow

ORDERS = ["organic-c1-o1", "organic-c1-o2", "geometric-c1-o1", "geometric-c1-o2"]


def write_collection(root: Path) -> Path:
    """Four tiny synthetic tasks written as a folder-per-class collection: each class a folder of image files
    (PNG, and JPEG for every third image), with a taxonomy table class,domain,order."""
    data = {**yaml.safe_load((CONFIGS / "tiny.yaml").read_text())["data"], "tasks": "all"}
    rows = []
    for task in ORDERS:
        built = build_task(data, task)
        for k, cls in enumerate(built.class_names):
            folder = root / "images" / cls
            folder.mkdir(parents=True)
            for i in np.flatnonzero(built.labels == k):
                ext = "jpg" if i % 3 == 0 else "png"
                Image.fromarray(built.images[i]).resize((24, 20)).save(folder / f"{i:03d}.{ext}")
            rows.append({"class": cls, "domain": task.split("-")[0], "order": task})
    pd.DataFrame(rows).to_csv(root / "taxonomy.csv", index=False)
    return root


@pytest.fixture(scope="module")
def image_run(tmp_path_factory, fake_torch_home) -> Path:
    work = tmp_path_factory.mktemp("image_run")
    collection = write_collection(work / "collection")
    cfg = yaml.safe_load((CONFIGS / "tiny.yaml").read_text())
    cfg["data"] = {"source": "imagefolder", "seed": 0, "resolution": 16,
                   "imagefolder": {"root": str(collection / "images"), "taxonomy": str(collection / "taxonomy.csv"),
                                   "level": "order", "test_fraction": 0.3}}
    cfg["probe"] = {"arch": "resnet18", "weights": "imagenet"}
    (work / "config.yaml").write_text(yaml.safe_dump(cfg))
    with environment(TORCH_HOME=str(fake_torch_home[0])):
        snakemake(work, "--cores", "2")
    return work


def test_every_stage_runs_on_image_files(image_run):
    res = image_run / "results"
    tasks = pd.read_parquet(res / "tasks.parquet")
    assert sorted(tasks.task) == sorted(ORDERS) and set(tasks.role) == {"task"}  # no source task
    assert set(tasks.group) == set(ORDERS) and (tasks.skipped_images == 0).all()
    data, _ = read_task(res / "tasks" / "organic-c1-o1.h5")
    assert data.images.shape[1:] == (16, 16, 3)
    summary = pd.read_parquet(res / "summary.parquet")
    assert {"oracle", "task2vec.asym", "pseudotask.asym", "ttk", "model2vec", "generic", "random"} <= set(summary.method)
    transfer = pd.read_parquet(res / "transfer.parquet")
    assert len(transfer) == len(ORDERS) * (len(ORDERS) + 1)


def test_recommend_on_a_new_folder_ranks_the_runs_experts(image_run, tmp_path, capsys):
    """A folder holding one task's training images as files: with the domain embedding (mean probe features) the
    task's own expert is at distance 0, so it ranks first."""
    task = "geometric-c1-o2"
    data, _ = read_task(image_run / "results" / "tasks" / f"{task}.h5")
    for i in np.flatnonzero(data.is_train):
        folder = tmp_path / "new" / data.class_names[data.labels[i]]
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(data.images[i]).save(folder / f"{i:03d}.png")
    assert main(["recommend", str(tmp_path / "new"), "--run", str(image_run), "--method", "domain", "--json",
                 "--quiet", "--threads", "1"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [e["expert"] for e in out["experts"]][0] == task and out["experts"][0]["distance"] < 1e-6
    assert sorted(e["expert"] for e in out["experts"]) == sorted(ORDERS)
    assert main(["recommend", str(tmp_path / "new"), "--run", str(image_run), "--json", "--quiet"]) == 0
    ranked = json.loads(capsys.readouterr().out)  # the default for a labelled folder: NCE, every expert run
    assert ranked["selector"] == "nce" and sorted(e["expert"] for e in ranked["experts"]) == sorted(ORDERS)
