"""Further embedding probes (embeddings.probes): a second network embeds the same tasks, beside the same experts and
transfer matrix, as Task2Vec's Table 2 compares probe networks."""

from __future__ import annotations

import copy

import h5py
import numpy as np
import pytest
import torch
import yaml

from conftest import CONFIGS, snakemake, torchvision_state
from taskspace.errors import ConfigError
from taskspace.plan import RunPlan, validate_config
from taskspace.results import RESULTS


def tiny(embeddings: dict) -> dict:
    """The tiny test config with its embeddings section updated by ``embeddings``."""
    cfg = yaml.safe_load((CONFIGS / "tiny.yaml").read_text())
    cfg["embeddings"].update(copy.deepcopy(embeddings))
    return cfg


SECOND = {
    "methods": ["domain", "task2vec", "task2vec_second"],
    "probes": {"second": {"arch": "resnet18", "weights": "second.pt", "source_classes": 4}},
    "variants": {"task2vec_second": {"method": "task2vec", "probe": "second"}},
}


def save_second(directory, seed: int) -> None:
    torch.save(torchvision_state("resnet18", 4, seed), directory / "second.pt")


def plan_in(directory, cfg: dict, monkeypatch) -> RunPlan:
    monkeypatch.chdir(directory)
    return RunPlan(validate_config(cfg))


def test_a_named_probe_is_planned_only_where_a_method_reads_it(tmp_path, monkeypatch):
    save_second(tmp_path, 7)
    run = plan_in(tmp_path, tiny(SECOND), monkeypatch)
    assert list(run.named_probes) == ["second"]
    assert run.embed_probes() == {"pretrained": RESULTS.probe(), "second": "results/probe/named/second.pt"}
    made = [a for a in run.artifacts() if a.rule == "import_named_probe"]
    assert [(a.path, dict(a.wildcards)) for a in made] == [("results/probe/named/second.pt", {"probe": "second"})]
    assert run.named_probe_file("second") == ["second.pt"]
    assert run.params("import_named_probe", {"probe": "second"})["probe"] == {
        "arch": "resnet18", "normalization": {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
        "source_classes": 4, "weights": "second.pt"}
    unused = tiny({**SECOND, "methods": ["domain", "task2vec"]})
    assert plan_in(tmp_path, unused, monkeypatch).named_probes == {}  # declared, read by no method: not made


@pytest.mark.parametrize("change, message", [
    ({"variants": {"task2vec_second": {"method": "task2vec", "probe": "third"}}},
     "config key embeddings.variants.task2vec_second.probe: 'third' is neither pretrained, random nor a probe of "
     "embeddings.probes (declared: ['second'])"),
    ({"probes": {"second": {"arch": "resnet18", "weights": "source"}}},
     "embeddings.probes.second.weights: 'source': a further embedding probe is imported"),
    ({"probes": {"second": {"arch": "resnet18", "weights": "random"}}},
     "embeddings.probes.second.weights: 'random': a further embedding probe is imported"),
    ({"probes": {"second": {"arch": "resnet18", "weights": "nothere.pt", "source_classes": 4}}},
     "embeddings.probes.second.weights: 'nothere.pt' is not one of"),
    ({"probes": {"second": {"arch": "resnet18", "weights": "second.pt"}}},
     "embeddings.probes.second.source_classes: required when embeddings.probes.second.weights is a checkpoint"),
    ({"probes": {"second": {"arch": "resnet18", "weights": "imagenet", "source_classes": 10}}},
     "embeddings.probes.second.source_classes: 10 disagrees with embeddings.probes.second.weights: imagenet"),
    ({"probes": {"random": {"arch": "resnet18", "weights": "imagenet"}}}, "embeddings.probes"),
    ({"probes": {"second": {"arch": "alexnet", "weights": "imagenet"}}}, "embeddings.probes.second.arch"),
])
def test_bad_named_probes_name_the_key(tmp_path, monkeypatch, change, message):
    save_second(tmp_path, 7)
    with pytest.raises(ConfigError) as err:
        plan_in(tmp_path, tiny({**SECOND, **change}), monkeypatch)
    assert message in str(err.value)


@pytest.mark.workflow
def test_a_second_probe_embeds_the_same_tasks_and_reruns_alone(tmp_path, monkeypatch):
    from taskspace.embeddings import get_method
    from taskspace.device import prepare_device
    from taskspace.results import load_checkpoint, read_task
    from taskspace.seeding import stable_seed
    from taskspace.training import network_from_checkpoint

    save_second(tmp_path, 7)
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(tiny(SECOND), sort_keys=False))
    snakemake(tmp_path, "--cores", "2")
    results, task = tmp_path / "results", "organic-c1-o1"
    ckpt = load_checkpoint(str(results / "probe" / "named" / "second.pt"))
    assert (ckpt["arch"], ckpt["num_classes"], ckpt["role"]) == ("resnet18", 4, "probe")
    with h5py.File(results / "embeddings.h5") as fh:
        stored = fh["task2vec_second"][task]["embedding"][()]
        own = fh["task2vec"][task]["embedding"][()]
    assert stored.shape == own.shape and not np.array_equal(stored, own)  # another network, another embedding
    # the stored embedding is the method run by hand on the second probe's network
    registered, method_cfg = plan_in(tmp_path, tiny(SECOND), monkeypatch).embed_params()["task2vec_second"]
    data = read_task(str(results / "tasks" / f"{task}.h5"), labels=True)[0]
    train = data.is_train
    again = get_method(registered, method_cfg).embed(
        network_from_checkpoint(ckpt), data.images[train], data.labels[train], ckpt["normalization"],
        prepare_device(1), stable_seed(0, "embed", "task2vec_second", task))
    np.testing.assert_array_equal(again.vector, stored)
    # another file for the second probe: its method is embedded again, nothing else
    save_second(tmp_path, 8)
    out = snakemake(tmp_path, "--cores", "2")
    assert "import_named_probe" in out.stdout + out.stderr
    text = "\n".join(p.read_text() for p in (results / "logs" / "embed_batch").glob("*.log"))
    assert f"task2vec embedding of {task}: reused" in text
    assert f"task2vec_second embedding of {task}: shape" in text
    with h5py.File(results / "embeddings.h5") as fh:
        assert np.array_equal(fh["task2vec"][task]["embedding"][()], own)
        assert not np.array_equal(fh["task2vec_second"][task]["embedding"][()], stored)
