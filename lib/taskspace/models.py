"""Network architectures: a registry of image classifiers, each exposing features and head separately.

An :class:`Architecture` says, for one classifier (torchvision's, or EfficientNet-Lite0 from the package
efficientnet-lite-pytorch), where its classifier head is (split off as ``Network.head``), how its feature extractor
decomposes into consecutive *units* (what ``skip_layers`` counts and caches), which block the Task Tangent Kernel
differentiates, how it is initialised (for seeded random networks) and how old checkpoint files spell its keys.
Adding an architecture is one registration.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .errors import ConfigError


@dataclass(frozen=True)
class Architecture:
    """What taskspace needs to know about one classifier (see the module docstring)."""

    name: str
    build: Callable[[int], nn.Module]  # num_classes -> the model, untrained (initialised from torch's global RNG)
    head: str  # dotted path of the final nn.Linear (the key prefix of the head in the weight files)
    units: Callable[[nn.Module], list[tuple[str, nn.Module]]]  # backbone -> feature units, in order
    last_block: Callable[[nn.Module], tuple[str, nn.Module]]  # backbone -> (name, the block TTK differentiates)
    conv_init: str = "fan_out"  # the Kaiming-normal mode of the convolutions' initialisation (torchvision's)
    legacy_key: Callable[[str], str] | None = None  # old spellings of weight-file keys -> torchvision's names
    description: str = ""  # units and last block in words (docs, messages)


ARCHITECTURES: dict[str, Architecture] = {}


def register_architecture(arch: Architecture) -> Architecture:
    """Add an architecture to the registry under its name."""
    ARCHITECTURES[arch.name] = arch
    return arch


def get_architecture(name: str, key: str = "probe.arch") -> Architecture:
    """The registered architecture ``name``; an unknown name is a ConfigError naming ``key``."""
    if name not in ARCHITECTURES:
        raise ConfigError(f"{key}: unknown architecture {name!r}; known: {sorted(ARCHITECTURES)}")
    return ARCHITECTURES[name]


def _torchvision(name: str) -> Callable[[int], nn.Module]:
    def build(num_classes: int) -> nn.Module:
        import torchvision

        return getattr(torchvision.models, name)(weights=None, num_classes=num_classes)

    return build


# ---------------------------------------------------------------- ResNet


def _resnet_units(b: nn.Module) -> list[tuple[str, nn.Module]]:
    units: list[tuple[str, nn.Module]] = [("stem", nn.Sequential(b.conv1, b.bn1, b.relu, b.maxpool))]
    for stage in ("layer1", "layer2", "layer3", "layer4"):
        units += [(f"{stage}.{i}", block) for i, block in enumerate(getattr(b, stage))]
    units.append(("pool", nn.Sequential(b.avgpool, nn.Flatten(1))))
    return units


def _resnet_last_block(b: nn.Module) -> tuple[str, nn.Module]:
    return f"layer4.{len(b.layer4) - 1}", b.layer4[-1]


for _name in ("resnet18", "resnet34", "resnet50"):
    register_architecture(Architecture(
        _name, _torchvision(_name), "fc", _resnet_units, _resnet_last_block,
        description="units: stem (conv1, bn1, relu, maxpool), each residual block (layer1.0 ... layer4.N), pool; "
                    "last block: the last residual block of layer4",
    ))


# ---------------------------------------------------------------- MobileNetV2


def _mobilenet_units(b: nn.Module) -> list[tuple[str, nn.Module]]:
    # torchvision's forward: features, adaptive average pool, flatten, classifier (dropout; the head split off)
    units: list[tuple[str, nn.Module]] = [("stem", b.features[0])]
    units += [(f"features.{i}", b.features[i]) for i in range(1, len(b.features))]
    units.append(("pool", nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1), b.classifier)))
    return units


def _mobilenet_last_block(b: nn.Module) -> tuple[str, nn.Module]:
    # the last inverted-residual block (features.17); features.18 is the 1x1 conv widening to 1280 channels
    index = max(i for i, m in enumerate(b.features) if type(m).__name__ == "InvertedResidual")
    return f"features.{index}", b.features[index]


register_architecture(Architecture(
    "mobilenet_v2", _torchvision("mobilenet_v2"), "classifier.1", _mobilenet_units, _mobilenet_last_block,
    description="units: stem (features.0), each inverted-residual block (features.1 ... features.17), the 1x1 "
                "conv to 1280 channels (features.18), pool; last block: the last inverted-residual block "
                "(features.17)",
))


# ---------------------------------------------------------------- DenseNet


def _densenet_units(b: nn.Module) -> list[tuple[str, nn.Module]]:
    # torchvision's forward: features (ending in norm5), ReLU, adaptive average pool, flatten, classifier
    f = b.features
    units: list[tuple[str, nn.Module]] = [("stem", nn.Sequential(f.conv0, f.norm0, f.relu0, f.pool0))]
    units += [(name, m) for name, m in f.named_children() if name.startswith(("denseblock", "transition"))]
    units.append(("pool", nn.Sequential(f.norm5, nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(1), b.classifier)))
    return units


def _densenet_last_block(b: nn.Module) -> tuple[str, nn.Module]:
    name = [n for n, _ in b.features.named_children() if n.startswith("denseblock")][-1]
    return f"features.{name}", getattr(b.features, name)


_DENSENET_LEGACY = re.compile(r"(denselayer\d+\.(?:norm|relu|conv))\.([12])\.")


def _densenet_legacy_key(key: str) -> str:
    """The original DenseNet weight files spell ``denselayer1.norm.1.weight`` for ``denselayer1.norm1.weight``."""
    return _DENSENET_LEGACY.sub(r"\1\2.", key)


register_architecture(Architecture(
    "densenet121", _torchvision("densenet121"), "classifier", _densenet_units, _densenet_last_block,
    conv_init="fan_in", legacy_key=_densenet_legacy_key,
    description="units: stem (conv0, norm0, relu0, pool0), denseblock1, transition1, ..., denseblock4, pool "
                "(norm5, ReLU, average pool); last block: the last dense block (denseblock4)",
))


# ---------------------------------------------------------------- VGG


def _vgg_stages(b: nn.Module) -> list[nn.Sequential]:
    """The convolutional stages of a VGG: the slices of ``features`` that end in a max-pool."""
    stages, start = [], 0
    for i, m in enumerate(b.features):
        if isinstance(m, nn.MaxPool2d):
            stages.append(b.features[start : i + 1])
            start = i + 1
    return stages


def _vgg_units(b: nn.Module) -> list[tuple[str, nn.Module]]:
    # torchvision's forward: features, adaptive average pool to 7x7, flatten, classifier (fc6, fc7; head split off)
    units: list[tuple[str, nn.Module]] = [(f"block{i + 1}", s) for i, s in enumerate(_vgg_stages(b))]
    units.append(("pool", nn.Sequential(b.avgpool, nn.Flatten(1), b.classifier)))
    return units


def _vgg_last_block(b: nn.Module) -> tuple[str, nn.Module]:
    stages = _vgg_stages(b)
    return f"block{len(stages)}", stages[-1]


register_architecture(Architecture(
    "vgg13_bn", _torchvision("vgg13_bn"), "classifier.6", _vgg_units, _vgg_last_block,
    description="units: block1 ... block5 (the conv, BatchNorm and ReLU layers up to each max-pool), pool "
                "(average pool to 7x7, fc6, fc7: the features are fc7's 4,096 outputs); last block: block5",
))


# ---------------------------------------------------------------- TensorFlow's 'SAME' padding


class SamePadConv2d(nn.Conv2d):
    """An nn.Conv2d padded as TensorFlow's 'SAME': ceil(side / stride) outputs per side, the zeros split in half
    with the odd one after (right, bottom), worked out from each input's size.

    EfficientNet's weights were trained so; torch's own padding is symmetric and cannot say it (a 3 x 3 kernel at
    stride 2 on an even side pads one zero after, none before). The padding happens inside ``_conv_forward``, so a
    forward hook sees the unpadded input: :meth:`input_padding` tells the Fisher estimators what the kernel met.
    """

    def input_padding(self, height: int, width: int) -> tuple[int, int, int, int]:
        """(left, right, top, bottom) zeros added to an input of ``height`` x ``width``, in F.pad's order."""
        pads: list[int] = []
        for size, k, s, d in ((width, self.kernel_size[1], self.stride[1], self.dilation[1]),
                              (height, self.kernel_size[0], self.stride[0], self.dilation[0])):
            total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
            pads += [total // 2, total - total // 2]
        return tuple(pads)

    def _conv_forward(self, input: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        pad = self.input_padding(*input.shape[-2:])
        if any(pad):
            input = F.pad(input, pad)
        return F.conv2d(input, weight, bias, self.stride, 0, self.dilation, self.groups)


def same_pad(module: nn.Module, conv_type: type) -> nn.Module:
    """Every ``conv_type`` inside ``module`` (a convolution that pads like TensorFlow's 'SAME' by itself, torch's
    padding 0) made a :class:`SamePadConv2d` in place: same parameters, same output."""
    for m in module.modules():
        if type(m) is conv_type:
            if tuple(m.padding) != (0, 0) or m.padding_mode != "zeros":
                raise TypeError(f"{conv_type.__name__} with padding {m.padding} ({m.padding_mode}) is not 'SAME' alone")
            m.__class__ = SamePadConv2d
    return module


# ---------------------------------------------------------------- EfficientNet-Lite0


EFFICIENTNET_PACKAGE = "efficientnet-lite-pytorch==0.1.0"  # the model's code; a dependency in pyproject.toml


def _efficientnet_lite0(num_classes: int) -> nn.Module:
    try:
        from efficientnet_lite_pytorch import EfficientNet
        from efficientnet_lite_pytorch.utils import Conv2dDynamicSamePadding
    except ModuleNotFoundError as err:
        raise ModuleNotFoundError(
            f"efficientnet_lite0 is built by the Python package efficientnet-lite-pytorch, which is not installed; "
            f"install it with: pip install {EFFICIENTNET_PACKAGE}"
        ) from err
    # image_size None: each convolution pads by its input's size, so every resolution is padded as in training (a
    # fixed image_size pads for that size only); drop_connect_rate 0: no stochastic depth, so the units compose to
    # the forward in training mode too, as for torchvision's MobileNetV2 (in eval mode the rate has no effect)
    model = EfficientNet.from_name("efficientnet-lite0", num_classes=num_classes, image_size=None,
                                   drop_connect_rate=0.0)
    same_pad(model, Conv2dDynamicSamePadding)
    if not any(p.is_meta for p in model.parameters()):  # the package leaves torch's defaults
        initialise(model, "efficientnet_lite0", torch.default_generator)
    return model


def _efficientnet_units(b: nn.Module) -> list[tuple[str, nn.Module]]:
    # the package's forward: stem, blocks, conv_head, bn1, ReLU6 (extract_features), average pool, flatten,
    # dropout, _fc (the head split off); its ReLU6 is one stateless module, shared by the stem and conv_head
    units: list[tuple[str, nn.Module]] = [("stem", nn.Sequential(b._conv_stem, b._bn0, b._swish))]
    units += [(f"_blocks.{i}", block) for i, block in enumerate(b._blocks)]
    units.append(("conv_head", nn.Sequential(b._conv_head, b._bn1, b._swish)))
    units.append(("pool", nn.Sequential(b._avg_pooling, nn.Flatten(1), b._dropout)))
    return units


def _efficientnet_last_block(b: nn.Module) -> tuple[str, nn.Module]:
    # the last MBConv block (_blocks.15); conv_head, the 1x1 conv widening to 1280 channels, follows it
    return f"_blocks.{len(b._blocks) - 1}", b._blocks[-1]


register_architecture(Architecture(
    "efficientnet_lite0", _efficientnet_lite0, "_fc", _efficientnet_units, _efficientnet_last_block,
    description="units: stem (conv_stem, bn0, ReLU6), each MBConv block (_blocks.0 ... _blocks.15), conv_head (the "
                "1x1 conv to 1280 channels, bn1, ReLU6), pool (average pool, dropout); last block: the last MBConv "
                "block (_blocks.15)",
))


# ---------------------------------------------------------------- the network


def _set_submodule(root: nn.Module, path: str, module: nn.Module) -> None:
    parent, _, name = path.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, name, module)


class CenterTapConv2d(nn.Conv2d):
    """An nn.Conv2d that computes a 1 x 1 input as the linear map of its kernel's centre tap.

    With an odd kernel padded by half its size, a 1 x 1 input meets only the centre tap: the other taps multiply the
    zero padding, so the output and every gradient equal the convolution's (the outer taps' gradients are exactly
    zero either way). A ResNet at 32 px reaches 1 x 1 in its last stage, where oneDNN's AVX2 kernels (the ones
    every job pins, :mod:`taskspace.numerics`) fall back to a slow GEMM for the weight gradient: this path trains a
    ResNet-18 at 32 px about 1.6x faster pinned (``benchmarks/bench_center_tap.py``). Other inputs, and grouped or
    dilated convolutions, take nn.Conv2d's own path; parameters and state-dict keys are nn.Conv2d's.
    """

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        kh, kw = self.kernel_size
        if (
            input.shape[-2:] == (1, 1)
            and kh % 2 == 1
            and kw % 2 == 1
            and self.padding == (kh // 2, kw // 2)
            and self.dilation == (1, 1)
            and self.groups == 1
            and self.padding_mode == "zeros"
        ):
            out = F.linear(input.flatten(-3), self.weight[:, :, kh // 2, kw // 2], self.bias)
            return out[..., None, None]
        return super().forward(input)


def center_tap(module: nn.Module) -> nn.Module:
    """Every plain nn.Conv2d inside ``module`` made a :class:`CenterTapConv2d` in place (same parameters)."""
    for m in module.modules():
        if type(m) is nn.Conv2d:
            m.__class__ = CenterTapConv2d
    return module


class Network(nn.Module):
    """A backbone with its classifier head split off (``forward_features`` -> ``forward_head``)."""

    def __init__(self, arch: str, num_classes: int):
        super().__init__()
        spec = get_architecture(arch)
        self.arch = arch
        backbone = center_tap(spec.build(num_classes))
        head = backbone.get_submodule(spec.head)
        if not isinstance(head, nn.Linear):
            raise TypeError(f"{arch}: {spec.head} is a {type(head).__name__}, not the nn.Linear head")
        self.head: nn.Linear = head
        _set_submodule(backbone, spec.head, nn.Identity())
        self.backbone = backbone

    @property
    def num_features(self) -> int:
        return self.head.in_features

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.backbone(x)

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def replace_head(self, num_classes: int, generator: torch.Generator | None = None) -> None:
        """Swap in a fresh linear head for ``num_classes`` classes (seeded through ``generator``)."""
        head = nn.Linear(self.num_features, num_classes)
        bound = 1.0 / self.num_features**0.5
        with torch.no_grad():
            head.weight.uniform_(-bound, bound, generator=generator)
            head.bias.uniform_(-bound, bound, generator=generator)
        self.head = head


def feature_units(net: Network) -> list[tuple[str, nn.Module]]:
    """The backbone as consecutive units whose composition is ``forward_features`` (ResNet: stem, blocks, pool).

    Skipping the first k units for an embedding means their activations can be computed once and cached.
    """
    return get_architecture(net.arch).units(net.backbone)


def split_features(net: Network, skip: int) -> tuple[nn.Module, nn.Module, list[str]]:
    """(frozen prefix of ``skip`` units, the rest of the feature extractor, names of the skipped units)."""
    units = feature_units(net)
    if not 0 <= skip < len(units) - 1:
        raise ConfigError(f"skip_layers: {skip} is out of range for {net.arch} (0..{len(units) - 2})")
    prefix = nn.Sequential(*[m for _, m in units[:skip]])
    body = nn.Sequential(*[m for _, m in units[skip:]])
    return prefix, body, [name for name, _ in units[:skip]]


def last_block(net: Network) -> tuple[str, nn.Module]:
    """(name, module) of the block whose parameters the Task Tangent Kernel differentiates."""
    return get_architecture(net.arch).last_block(net.backbone)


def last_conv(net: Network) -> nn.Conv2d:
    """The backbone's last convolution: it runs in every probe pass, whichever leading units are cached."""
    return [m for m in net.backbone.modules() if isinstance(m, nn.Conv2d)][-1]


def qualified_names(net: Network, layers: list[tuple[str, nn.Module]]) -> list[str]:
    """The backbone's own names (``layer2.0.conv1``) for layers found inside a re-wrapped unit sequence."""
    names = {id(m): n for n, m in net.backbone.named_modules()}
    return [names.get(id(m), n) for n, m in layers]


def initialise(net: nn.Module, arch: str, generator: torch.Generator) -> nn.Module:
    """torchvision's initialisation scheme for the architecture, drawn from ``generator`` instead of the global RNG.

    Convolutions Kaiming-normal (the architecture's mode, ReLU gain), their biases zero; BatchNorm weight one, bias
    zero, fresh running statistics; linear layers normal(0, 0.01), biases zero. EfficientNet-Lite0, which
    torchvision does not ship, gets the scheme of torchvision's EfficientNets (fan_out) but for its linear head. A
    network built on the meta device is materialised first. ``net`` is a :class:`Network` of ``arch`` or a part of
    one (its backbone).
    """
    mode = get_architecture(arch).conv_init
    if any(p.is_meta for p in net.parameters()):
        net = net.to_empty(device="cpu")
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode=mode, nonlinearity="relu", generator=generator)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
                if isinstance(module, nn.BatchNorm2d):
                    module.reset_running_stats()
            elif isinstance(module, nn.Linear):
                nn.init.normal_(module.weight, 0.0, 0.01, generator=generator)
                nn.init.zeros_(module.bias)
    return net
