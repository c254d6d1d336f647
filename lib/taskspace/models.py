"""Network architectures: a registry of torchvision backbones exposing features and head separately."""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from .errors import ConfigError

ARCHITECTURES: dict[str, Callable[..., nn.Module]] = {}


def register_architecture(name: str) -> Callable:
    """Register a constructor ``fn(num_classes) -> nn.Module`` (a torchvision-style classifier with an ``fc`` head)."""

    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        ARCHITECTURES[name] = fn
        return fn

    return wrap


def _torchvision_resnet(name: str) -> Callable[..., nn.Module]:
    def build(num_classes: int) -> nn.Module:
        import torchvision

        return getattr(torchvision.models, name)(weights=None, num_classes=num_classes)

    return build


for _name in ("resnet18", "resnet34", "resnet50"):
    register_architecture(_name)(_torchvision_resnet(_name))


class Network(nn.Module):
    """A backbone with its classifier head split off (``forward_features`` -> ``forward_head``)."""

    def __init__(self, arch: str, num_classes: int):
        super().__init__()
        if arch not in ARCHITECTURES:
            raise ConfigError(f"probe.arch: unknown architecture {arch!r}; known: {sorted(ARCHITECTURES)}")
        self.arch = arch
        backbone = ARCHITECTURES[arch](num_classes)
        self.head: nn.Linear = backbone.fc
        backbone.fc = nn.Identity()
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
    b = net.backbone
    units: list[tuple[str, nn.Module]] = [("stem", nn.Sequential(b.conv1, b.bn1, b.relu, b.maxpool))]
    for stage in ("layer1", "layer2", "layer3", "layer4"):
        units += [(f"{stage}.{i}", block) for i, block in enumerate(getattr(b, stage))]
    units.append(("pool", nn.Sequential(b.avgpool, nn.Flatten(1))))
    return units


def split_features(net: Network, skip: int) -> tuple[nn.Module, nn.Module, list[str]]:
    """(frozen prefix of ``skip`` units, the rest of the feature extractor, names of the skipped units)."""
    units = feature_units(net)
    if not 0 <= skip < len(units) - 1:
        raise ConfigError(f"skip_layers: {skip} is out of range for {net.arch} (0..{len(units) - 2})")
    prefix = nn.Sequential(*[m for _, m in units[:skip]])
    body = nn.Sequential(*[m for _, m in units[skip:]])
    return prefix, body, [name for name, _ in units[:skip]]


def qualified_names(net: Network, layers: list[tuple[str, nn.Module]]) -> list[str]:
    """The backbone's own names (``layer2.0.conv1``) for layers found inside a re-wrapped unit sequence."""
    names = {id(m): n for n, m in net.backbone.named_modules()}
    return [names.get(id(m), n) for n, m in layers]
