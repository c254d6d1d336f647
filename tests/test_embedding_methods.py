"""The registered embedding methods on a tiny probe: invariances, skipped layers, withheld labels, bad input."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from taskspace.plan import validate_config
from taskspace.data import TaskData
from taskspace.embeddings import get_method
from taskspace.errors import TaskDataError
from taskspace.results import save_checkpoint, write_task
from taskspace.models import Network
from taskspace.stages import embed_tasks
from taskspace.training import checkpoint

NORMALIZATION = {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}
FAST = {"max_samples": 24, "min_samples": 4, "batch_size": 12}


pytestmark = pytest.mark.usefixtures("one_thread")


def _cfg(method: str, **overrides) -> dict:
    cfg = validate_config({"embeddings": {method: overrides}})["embeddings"][method]
    return cfg


@pytest.fixture(scope="module")
def probe() -> Network:
    torch.manual_seed(0)
    return Network("resnet18", 5).eval()


def _task(n_per_class: int = 8, classes: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(classes), n_per_class)
    base = rng.integers(0, 256, size=(classes, 16, 16, 3))
    noise = rng.integers(-40, 40, size=(len(labels), 16, 16, 3))
    return np.clip(base[labels] + noise, 0, 255).astype(np.uint8), labels


def _embed(method: str, probe: Network, images, labels, seed: int = 7, **overrides):
    return get_method(method, _cfg(method, **overrides)).embed(probe, images, labels, NORMALIZATION, "cpu", seed)


@pytest.mark.parametrize("method", ["task2vec", "task2vec_mc"])
def test_embedding_is_invariant_to_a_permutation_of_the_class_labels(probe, method):
    images, labels = _task()
    extra = {"epochs": 1, "min_steps": 4} if method == "task2vec" else {"label_samples": 1}
    a = _embed(method, probe, images, labels, **FAST, **extra)
    b = _embed(method, probe, images, np.array([2, 0, 1])[labels], **FAST, **extra)
    assert a.vector.shape == (4800,) and a.extras["trivial"].shape == (4800,)
    np.testing.assert_allclose(a.vector, b.vector, rtol=1e-4)
    np.testing.assert_array_equal(a.extras["trivial"], b.extras["trivial"])


def test_monte_carlo_embedding_is_the_fisher_plus_the_trivial_embedding(probe):
    images, labels = _task()
    e = _embed("task2vec_mc", probe, images, labels, **FAST)
    fisher = e.vector - e.extras["trivial"]
    assert (fisher >= 0).all() and fisher.max() > 0
    # the trivial embedding is beta / (N lambda_l^2) with lambda_l^2 the layer's mean squared weight
    conv1 = probe.backbone.conv1.weight.detach().double().pow(2).mean().item()
    assert e.extras["trivial"][0] == pytest.approx(1e-6 / (24 * conv1), rel=1e-6)


def test_skipping_layers_covers_the_later_filters_with_the_same_values(probe):
    images, labels = _task()
    full = _embed("task2vec_mc", probe, images, labels, **FAST)
    skip = _embed("task2vec_mc", probe, images, labels, skip_layers=1, **FAST)  # the stem: conv1, 64 filters
    assert skip.vector.shape == (4800 - 64,)
    assert skip.attrs["skipped_units"] == '["stem"]'
    assert '["layer1.0.conv1", 64]' in skip.attrs["filters"] and '"conv1"' not in skip.attrs["filters"]
    # the same samples, head and label draws: the covered filters' Fisher does not depend on skipping
    np.testing.assert_allclose(skip.vector, full.vector[64:], rtol=1e-5)


def test_pseudotask_never_needs_the_labels(probe):
    images, _ = _task()
    cfg = {**FAST, "epochs": 1, "min_steps": 2, "head_min_steps": 2}
    e = _embed("pseudotask", probe, images, None, **cfg)
    again = _embed("pseudotask", probe, images, None, **cfg)
    assert e.vector.shape == (4800,) and np.isfinite(e.vector).all()
    np.testing.assert_array_equal(e.vector, again.vector)  # seeded: augmentations and noise repeat


def test_a_task_below_the_sample_budget_is_an_error_naming_the_key(probe):
    images, labels = _task(n_per_class=2)
    with pytest.raises(TaskDataError, match="min_samples=10"):
        _embed("task2vec", probe, images, labels)


# ---------------------------------------------------------------- the embed stage


def _files(tmp_path, probe: Network, withhold_labels: bool = False, nan: bool = False):
    images, labels = _task()
    is_train = np.tile([True, True, False, True], len(labels) // 4)
    task = tmp_path / "t.h5"
    write_task(task, "t", "task", TaskData(images, labels, is_train, ["a", "b", "c"]))
    if withhold_labels:
        with h5py.File(task, "a") as f:
            del f["labels"]
    net = Network("resnet18", 5)
    net.load_state_dict(probe.state_dict())
    if nan:
        with torch.no_grad():
            net.backbone.layer4[1].conv2.weight[0, 0, 1, 1] = float("nan")
    ckpt = tmp_path / ("probe_nan.pt" if nan else "probe.pt")
    save_checkpoint(ckpt, checkpoint(net, normalization=NORMALIZATION))
    return str(ckpt), str(task)


def _embed_stage(tmp_path, ckpt: str, task: str, methods: dict) -> Path:
    out = tmp_path / "out" / "part.h5"
    embed_tasks({"t": task}, methods, {"pretrained": ckpt}, 0, str(out), str(tmp_path / "reuse"))
    return out


def test_stage_embeds_a_task_whose_labels_are_withheld_with_pseudotask_only(tmp_path, probe):
    ckpt, task = _files(tmp_path, probe, withhold_labels=True)
    cfg = _cfg("pseudotask", **FAST, epochs=1, min_steps=2, head_min_steps=2)
    out = _embed_stage(tmp_path, ckpt, task, {"pseudotask": ("pseudotask", cfg)})
    with h5py.File(out) as f:
        group = f["pseudotask/t"]
        assert group["embedding"].shape == group["trivial"].shape == (4800,)
        assert group.attrs["method"] == "pseudotask" and group.attrs["task"] == "t"
    with pytest.raises(TaskDataError, match=r"task 't', embedding method 'task2vec'.*labels are withheld"):
        _embed_stage(tmp_path, ckpt, task, {"pseudotask": ("pseudotask", cfg),
                                            "task2vec": ("task2vec", _cfg("task2vec", **FAST))})
    stored = tmp_path / "reuse" / "embeddings"
    assert sorted(p.name for p in stored.iterdir()) == ["pseudotask"]  # nothing half-written for task2vec


@pytest.mark.parametrize("method", ["task2vec", "task2vec_mc", "domain"])
def test_non_finite_values_name_task_and_method_and_write_nothing(tmp_path, probe, method):
    ckpt, task = _files(tmp_path, probe, nan=True)
    overrides = {"domain": {}, "task2vec_mc": FAST, "task2vec": {**FAST, "epochs": 1, "min_steps": 1}}[method]
    cfg = _cfg(method, **overrides)
    with pytest.raises(FloatingPointError, match=f"task 't', embedding method '{method}'"):
        _embed_stage(tmp_path, ckpt, task, {method: (method, cfg)})
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    assert not (tmp_path / "reuse").exists() or not any((tmp_path / "reuse").rglob("*.h5"))
