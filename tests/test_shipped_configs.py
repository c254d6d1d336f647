"""The meta-task configs shipped in configs/ validate and plan (dry-run) against tiny fixtures of their datasets."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from taskspace.cli import main
from taskspace.plan import validate_config
from taskspace.data import plan_tasks

from conftest import REPO, job_counts, snakemake
from datasets import fit_sample_minimums, reference_task_names, write_cub_inat, write_stanford_cars



def planned_pairs(cfg: dict) -> int:
    """The (expert, target) pairs the workflow computes for a config (the planning the Snakefile does)."""
    from taskspace.study import expert_tasks, meta_tasks, transfer_pairs

    config = validate_config(copy.deepcopy(cfg))
    tasks = sorted(s.name for s in plan_tasks(config["data"]) if s.role == "task")
    return len(transfer_pairs(meta_tasks(config, tasks, expert_tasks(config, tasks)), "generic"))


def shipped(name: str) -> dict:
    return yaml.safe_load((REPO / "configs" / name).read_text())


def cub_inat_config(tmp_path: Path, name: str = "cub_inat.yaml", cub_attributes: bool = False) -> dict:
    """A shipped CUB+iNat config with its data roots pointed at the fixture (the only change); ``cub_attributes``
    writes CUB's attribute files too (CUB-bp+iNat reads them)."""
    fixture = write_cub_inat(tmp_path / "data", cub_attributes=cub_attributes)
    cfg = shipped(name)
    cub, inat = cfg["data"]["combined"]["cub"], cfg["data"]["combined"]["inat"]
    cub["root"] = str(fixture["config"]["combined"]["cub"]["root"])
    cub["taxonomy"] = str(fixture["config"]["combined"]["cub"]["taxonomy"])
    inat["root"] = str(fixture["config"]["combined"]["inat"]["root"])
    return fit_sample_minimums(cfg)


def test_cub_inat_is_the_published_meta_task():
    cfg = shipped("cub_inat.yaml")
    published = {f"{p[1:p.index(']')]}-{p[p.index(']') + 2:p.index(' (')]}" for p in reference_task_names()}
    assert len(published) == 50 and set(cfg["data"]["tasks"]) == published
    assert cfg["meta_tasks"]["cub_inat"]["targets"] == cfg["data"]["tasks"]
    assert cfg["meta_tasks"]["cub_inat"]["experts"] == cfg["data"]["tasks"]
    assert cfg["probe"] == {"arch": "resnet34", "weights": "imagenet"}
    assert validate_config(copy.deepcopy(cfg))["data"]["resolution"] == 224  # the ImageNet weights' crop size


@pytest.mark.workflow
def test_cub_inat_dry_runs_the_full_50_x_50_matrix(tmp_path):
    cfg = cub_inat_config(tmp_path)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["check-config", str(tmp_path / "config.yaml")]) == 0
    counts = job_counts(snakemake(tmp_path, "-n").stdout)
    assert counts["split_task"] == 50 and counts["train_expert"] == 50
    assert counts["import_probe"] == 1 and "train_probe" not in counts  # ImageNet weights: nothing pretrained
    assert planned_pairs(cfg) == 50 * 51  # every expert and the ImageNet probe on every target
    assert counts["transfer_batch"] == 13 and counts["embed_batch"] == 13  # 51 experts and 50 tasks, 4 a job


def test_cub_bp_inat_is_cub_inat_with_breast_pattern_labels_and_the_cub_half_scored():
    cfg, base = shipped("cub_bp_inat.yaml"), shipped("cub_inat.yaml")
    cub = cfg["data"]["combined"]["cub"]
    assert (cub.pop("attribute"), cub.pop("min_certainty")) == ("has_breast_pattern", 2)
    cub_half = cfg["meta_tasks"].pop("cub_bp")
    assert cub_half == {"targets": [t for t in base["data"]["tasks"] if t.startswith("cub-")],
                        "experts": base["data"]["tasks"]}
    assert len(cub_half["targets"]) == 25
    assert cfg == base  # otherwise a copy of configs/cub_inat.yaml, the full 50 x 50 matrix included
    validate_config(shipped("cub_bp_inat.yaml"))


@pytest.mark.workflow
def test_cub_bp_inat_dry_runs_the_full_matrix_with_breast_pattern_classes(tmp_path, capsys):
    cfg = cub_inat_config(tmp_path, "cub_bp_inat.yaml", cub_attributes=True)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(cfg))
    assert main(["check-config", str(tmp_path / "config.yaml")]) == 0
    assert "50 tasks" in capsys.readouterr().out
    plan = {s.name: s for s in plan_tasks(validate_config(copy.deepcopy(cfg))["data"])}
    patterns = {"cub/solid", "cub/spotted", "cub/striped", "cub/multi-colored"}
    assert all(len(s.classes) == 2 and set(s.classes) <= patterns for n, s in plan.items() if n.startswith("cub-"))
    counts = job_counts(snakemake(tmp_path, "-n").stdout)
    assert counts["split_task"] == 50 and counts["train_expert"] == 50
    assert planned_pairs(cfg) == 50 * 51  # the cub_bp pairs are part of the full matrix
    assert counts["transfer_batch"] == 13 and counts["embed_batch"] == 13


@pytest.mark.workflow
def test_cars_dry_runs_one_task_per_manufacturer_with_several_models(tmp_path, capsys):
    fixture = write_stanford_cars(tmp_path / "data")
    cfg = shipped("cars.yaml")
    cfg["data"]["stanford_cars"]["root"] = str(fixture["root"])
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(fit_sample_minimums(cfg)))
    assert main(["check-config", str(tmp_path / "config.yaml")]) == 0
    assert "3 tasks" in capsys.readouterr().out  # Aston Martin, BMW, Land Rover; the one-model makes are skipped
    dry = snakemake(tmp_path, "-n")
    counts = job_counts(dry.stdout)
    assert counts["split_task"] == 3 and counts["train_expert"] == 3 and counts["transfer_batch"] == 1
    assert planned_pairs(cfg) == 3 * 4
    for task in ("aston-martin", "bmw", "land-rover"):
        assert f"results/tasks/{task}.h5" in dry.stdout


def test_packaged_reads_what_prepare_packaged_writes_with_the_real_mobilenet_v2():
    """configs/packaged.yaml points at the folders `taskspace prepare packaged data/packaged` writes and at the
    data section that command prints (the study itself runs on a slice in tests/test_real_data.py)."""
    from taskspace.prepare import get_preparer

    cfg = shipped("packaged.yaml")
    printed = get_preparer("packaged").data_config("data/packaged")
    assert printed["source"] == cfg["data"]["source"] == "combined"
    for entry, section in printed["combined"].items():
        ours = cfg["data"]["combined"][entry]
        assert {k: ours[k] for k in section} == section, entry
    assert cfg["probe"] == {"arch": "mobilenet_v2", "weights": "imagenet"}
    valid = validate_config(copy.deepcopy(cfg))
    assert valid["data"]["resolution"] == 64 and valid["embeddings"]["ttk"]["arch"] == "resnet18"
    assert set(valid["embeddings"]["methods"]) >= {"domain", "task2vec", "task2vec_mc", "pseudotask", "ttk",
                                                   "model2vec", "task2vec_random", "pseudotask_random"}


def test_collections_reads_what_prepare_collections_writes_with_two_real_probes():
    """configs/collections.yaml points at the folders `taskspace prepare collections data/collections` writes and
    at the data section that command prints (its caps and split options added), keeps the study on real images'
    probe, resolution and expert training, and embeds with Task2Vec on EfficientNet-Lite0 too (the same settings
    as on the probe: only the network differs)."""
    from taskspace.prepare import get_preparer

    cfg, packaged = shipped("collections.yaml"), shipped("packaged.yaml")
    printed = get_preparer("collections").data_config("data/collections")
    assert printed["source"] == cfg["data"]["source"] == "combined"
    assert list(cfg["data"]["combined"]) == list(printed["combined"])  # seven collections, none left out
    assert len(printed["combined"]) == 7
    for entry, section in printed["combined"].items():
        ours = cfg["data"]["combined"][entry]
        assert {k: ours[k] for k in section} == section, entry
        assert ours["max_train_per_class"] == ours["max_test_per_class"] == 50, entry
    for key in ("test_fraction", "min_images"):  # clipart's own split, as in the smaller study
        assert cfg["data"]["combined"]["clipart"][key] == packaged["data"]["combined"]["clipart"][key]
    assert cfg["probe"] == packaged["probe"] == {"arch": "mobilenet_v2", "weights": "imagenet"}
    assert cfg["experts"]["train"] == packaged["experts"]["train"] and cfg["transfer"] == packaged["transfer"]
    assert cfg["experts"]["min_train_images"] == 200
    valid = validate_config(copy.deepcopy(cfg))
    assert valid["data"]["resolution"] == packaged["data"]["resolution"] == 64
    assert cfg["embeddings"]["probes"] == {"effnet": {"arch": "efficientnet_lite0", "weights": "imagenet"}}
    assert valid["embeddings"]["variants"]["task2vec_effnet"] == {"method": "task2vec", "probe": "effnet"}
    assert {"domain", "task2vec", "task2vec_mc", "pseudotask", "ttk", "model2vec",
            "task2vec_effnet"} == set(valid["embeddings"]["methods"])
    assert valid["embeddings"]["task2vec"] == validate_config(copy.deepcopy(packaged))["embeddings"]["task2vec"]
