"""The probe's layers as the Fisher estimators see them: which are covered, which can be, their padding, the frozen
probe during an estimate, and the trivial embedding their weight priors give."""

from __future__ import annotations

import contextlib
from typing import Iterable, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from ..models import SamePadConv2d


class UnsupportedLayerError(NotImplementedError, TypeError):
    """A layer an estimator cannot cover (its type or its padding mode), named in the message."""


def covered_layers(module: nn.Module) -> list[tuple[str, nn.Module]]:
    """(qualified name, layer) of every nn.Conv2d and nn.Linear inside ``module``, in module order."""
    return [(name, m) for name, m in module.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def conv_layers(module: nn.Module) -> list[tuple[str, nn.Module]]:
    """(qualified name, layer) of every nn.Conv2d inside ``module``: the filters a task embedding describes."""
    return [(name, m) for name, m in covered_layers(module) if isinstance(m, nn.Conv2d)]


def check_layer(layer: nn.Module, name: str | None, estimator: str, padding_modes: Sequence[str]) -> None:
    """Refuse a layer other than nn.Conv2d / nn.Linear, or a conv padded otherwise than ``padding_modes``."""
    if isinstance(layer, nn.Conv2d):
        if layer.padding_mode not in padding_modes:
            raise UnsupportedLayerError(
                f"{estimator}: {_where(layer, name)} has padding_mode={layer.padding_mode!r}; "
                f"supported: {', '.join(padding_modes)}"
            )
    elif not isinstance(layer, nn.Linear):
        raise UnsupportedLayerError(
            f"{estimator}: {_where(layer, name)} is a {type(layer).__name__}; only nn.Conv2d and nn.Linear layers "
            "are supported"
        )


def _where(layer: nn.Module, name: str | None) -> str:
    """The layer as an error message names it."""
    return f"a {type(layer).__name__}" if name is None else f"layer {name!r}"


def conv_padding(layer: nn.Conv2d, size: Sequence[int]) -> tuple[int, int, int, int]:
    """(left, right, top, bottom) padding of a conv on an input of spatial ``size`` (height, width), in F.pad's order
    (last dimension first), for any padding_mode.

    The amounts torch pads the input by: a 'same' padding splits d (k - 1) per dimension with the odd one on the
    right or bottom; 'valid' pads nothing. A :class:`~taskspace.models.SamePadConv2d` (TensorFlow's 'SAME', which
    depends on the input's size) pads by its own rule.
    """
    if isinstance(layer, SamePadConv2d):
        return layer.input_padding(*size[-2:])
    if isinstance(layer.padding, str):
        if layer.padding == "valid":
            return 0, 0, 0, 0
        pads: list[int] = []
        for k, d in zip(reversed(layer.kernel_size), reversed(layer.dilation)):
            total = d * (k - 1)
            pads += [total // 2, total - total // 2]
        return tuple(pads)
    ph, pw = layer.padding
    return pw, pw, ph, ph


@contextlib.contextmanager
def frozen(
    modules: Sequence[nn.Module], *, freeze: Iterable[torch.Tensor] = (), require: Iterable[torch.Tensor] = ()
) -> Iterator[None]:
    """Within the block ``modules`` are in eval mode (BatchNorm on its running statistics), the tensors of
    ``freeze`` need no gradient and the leaf tensors of ``require`` do; every training and requires_grad flag
    is restored afterwards, so an estimate leaves the probe as it found it."""
    freeze, require = list(freeze), list(require)
    every = list(dict.fromkeys(m for module in modules for m in module.modules()))
    training = [(m, m.training) for m in every]
    flags = [(t, t.requires_grad) for t in {id(t): t for t in [*freeze, *require]}.values()]
    try:
        for module in modules:
            module.eval()
        for t in freeze:
            t.requires_grad_(False)
        for t in require:
            if not t.requires_grad and t.is_leaf:
                t.requires_grad_(True)
        yield
    finally:
        for t, flag in flags:
            if t.requires_grad != flag:
                t.requires_grad_(flag)
        for m, flag in training:
            m.training = flag


def trivial_embedding(
    layers: list[tuple[str, nn.Module]], n_samples: int, beta: float, prior_scale: float
) -> np.ndarray:
    """t_0 per filter: beta / (N lambda_l^2), lambda_l^2 = prior_scale^2 * the layer's mean squared weight
    (the embedding of a task whose loss is constant, which every estimate is biased towards)."""
    out = []
    for _, layer in layers:
        prior = prior_scale**2 * float(layer.weight.detach().double().pow(2).mean())
        out.append(np.full(layer.weight.shape[0], beta / (n_samples * prior)))
    return np.concatenate(out)
