"""Training: seeded and reproducible, learns a learnable task, and devices fall back cleanly."""

import numpy as np
import pytest
import torch

from taskspace.device import select_device
from taskspace.models import Network
from taskspace.seeding import stable_seed
from taskspace.training import augment, channel_stats, fit, to_tensor

CFG = {"epochs": 3, "min_steps": 30, "batch_size": 8, "lr": 0.01, "momentum": 0.9, "weight_decay": 0.0,
       "augment": {"crop_padding": 1, "hflip": True}}


def _task():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 16)
    images = rng.integers(0, 60, size=(32, 16, 16, 3)).astype(np.uint8)
    images[labels == 1, :, :, 0] += 150  # class 1 is red
    return images, labels


def _train(seed):
    images, labels = _task()
    torch.manual_seed(seed)
    net = Network("resnet18", 2)
    x = to_tensor(images, channel_stats(images))
    y = torch.from_numpy(labels)
    history = fit(net, x, y, CFG, seed, torch.device("cpu"), x, y)
    return net, history


def test_fit_learns_and_records_metrics_per_epoch():
    _, history = _train(0)
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert all(h["steps"] == 10 for h in history)  # max(ceil(32 / 8), ceil(30 / 3))
    assert history[-1]["test_accuracy"] == 1.0


def test_same_seed_same_weights():
    a, _ = _train(1)
    b, _ = _train(1)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(va, vb), k


def test_stable_seed_depends_on_every_part():
    assert stable_seed(0, "expert", "a") == stable_seed(0, "expert", "a")
    assert len({stable_seed(0, "expert", "a"), stable_seed(1, "expert", "a"), stable_seed(0, "expert", "b")}) == 3


def test_augment_keeps_shape_and_pixels_of_the_batch():
    x = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).reshape(2, 3, 4, 4)
    out = augment(x, 1, True, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    assert set(out.unique().tolist()) <= set(x.unique().tolist())


def test_device_selection(monkeypatch):
    monkeypatch.setenv("TASKSPACE_DEVICE", "auto")
    assert select_device().type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert select_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            select_device("cuda")
