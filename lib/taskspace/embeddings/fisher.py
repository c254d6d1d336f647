"""Monte-Carlo diagonal Fisher information of conv/linear filters from true per-sample gradients (Task2Vec).

For every covered layer the Fisher ``F = E_{x, y ~ p_w(y|x)} [(d/dw log p_w(y|x))^2]`` is averaged over the
weights of each filter (output channel of a conv, output row of a linear layer). Per-sample weight gradients
are never materialised for the whole network: one backward pass gives ``d = dLoss/d(layer output)`` for every
covered layer (no weight gradients are computed), and each layer's per-sample, per-filter squared gradient norm
is then formed from ``d`` and the layer's saved input, either by materialising ``g_n = d_n X_n^T`` sample by
sample or through the Gram identity ``||g_n[o]||^2 = d_n[o]^T (X_n^T X_n) d_n[o]``, whichever costs fewer flops.

Grouped convolutions (``groups=G``, depthwise ones included) are handled group by group: filter o of group
g = o // (O / G) only sees group g's input channels, so its per-sample gradient is ``d_n[o] X_n^(g)^T`` with
``X_n^(g)`` the rows of the unfolded input that belong to group g's channels (a contiguous block, the unfold
being channel-major). Both ways of forming the norms then run as one batched product over (sample, group).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .layers import check_layer, conv_padding, covered_layers, frozen

_CHUNK_ELEMENTS = 1 << 21
_STRATEGIES = (None, "materialise", "gram")
_PADDING_MODES = ("zeros",)


def filter_counts(layers: list[tuple[str, nn.Module]] | list[nn.Module]) -> list[int]:
    """Number of filters (embedding entries) of each layer: out_channels of a conv, out_features of a linear."""
    counts = []
    for item in layers:
        layer = item[1] if isinstance(item, tuple) else item
        counts.append(int(layer.weight.shape[0]))
    return counts


def _unfold(layer: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The layer's input as per-sample patch matrices X_n of shape (input channels * kh * kw, positions P).

    Rows are channel-major, so for a grouped conv group g's rows are the contiguous block
    ``[g * weights per filter, (g + 1) * weights per filter)``; for groups=1 (and a Linear) X_n has exactly
    one row per weight of a filter.

    Patches are read through a strided view of the (padded) input and copied once, which is several times
    faster than F.unfold on the CPU; a 1x1 convolution without padding only subsamples its input.
    """
    if isinstance(layer, nn.Linear):
        return x.reshape(x.shape[0], -1, x.shape[-1]).transpose(1, 2)
    left, right, top, bottom = conv_padding(layer, x.shape[-2:])
    (kh, kw), (sh, sw), (dh, dw) = layer.kernel_size, layer.stride, layer.dilation
    if (kh, kw) == (1, 1) and left == right == top == bottom == 0:
        return x[:, :, ::sh, ::sw].reshape(x.shape[0], x.shape[1], -1)
    if left or right or top or bottom:
        x = F.pad(x, (left, right, top, bottom))
    n, c, h, w = x.shape
    out_h = (h - dh * (kh - 1) - 1) // sh + 1
    out_w = (w - dw * (kw - 1) - 1) // sw + 1
    stride_n, stride_c, stride_h, stride_w = x.stride()
    windows = x.as_strided(
        (n, c, kh, kw, out_h, out_w),
        (stride_n, stride_c, stride_h * dh, stride_w * dw, stride_h * sh, stride_w * sw),
    )
    return windows.reshape(n, c * kh * kw, out_h * out_w)


def _output_grad(layer: nn.Module, d: torch.Tensor) -> torch.Tensor:
    """dLoss/d(output) as per-sample matrices d_n of shape (filters O, positions P)."""
    if isinstance(layer, nn.Linear):
        return d.reshape(d.shape[0], -1, d.shape[-1]).transpose(1, 2)
    return d.reshape(d.shape[0], d.shape[1], -1)


def _groups(layer: nn.Module) -> int:
    """Number of groups of a conv (1 for a Linear)."""
    return int(layer.groups) if isinstance(layer, nn.Conv2d) else 1


def _choose_strategy(filters: int, weights: int, positions: int, draws: int, groups: int = 1) -> str:
    """'gram' or 'materialise', whichever needs fewer flops per sample for ``draws`` output gradients.

    ``filters`` is the layer's total number of filters and ``weights`` the number of weights of one filter
    (its group's input channels times the kernel size). Materialising costs the same for any grouping, but the
    Gram route needs one P x P Gram matrix per group, so for depthwise layers it only pays at (almost) 1x1 output.
    """
    materialise = draws * filters * positions * weights
    gram = groups * positions * positions * weights + draws * filters * positions * positions
    return "gram" if gram < materialise else "materialise"


def _squared_norms(
    layer: nn.Module, x: torch.Tensor, ds: list[torch.Tensor], strategy: str | None
) -> list[torch.Tensor]:
    """Per-sample, per-filter squared weight-gradient norms (N, O) for each output gradient in ``ds``.

    For ``groups`` G > 1 the patches (n, G * W, P) and output gradients (n, G * Og, P) are viewed as
    (n * G, W, P) and (n * G, Og, P), so that each batched product pairs a group's filters with that group's
    input rows only; for G = 1 these views are the tensors themselves.
    """
    n = x.shape[0]
    filters = layer.weight.shape[0]
    weights = layer.weight[0].numel()
    groups = _groups(layer)
    per_group = filters // groups
    positions = ds[0].shape[2]
    if strategy is None:
        strategy = _choose_strategy(filters, weights, positions, len(ds), groups)
    # full-size tensors alive per sample: the patches, then the Gram matrices and d @ Gram, or one gradient
    if strategy == "gram":
        per_sample = groups * weights * positions + groups * positions * positions + filters * positions
    else:
        per_sample = groups * weights * positions + filters * weights
    chunk = max(1, _CHUNK_ELEMENTS // per_sample)
    out = [torch.empty(n, filters, dtype=x.dtype, device=x.device) for _ in ds]
    for start in range(0, n, chunk):
        stop = min(n, start + chunk)
        m = stop - start
        patches = _unfold(layer, x[start:stop])
        if groups != 1:
            patches = patches.reshape(m * groups, weights, positions)
        if strategy == "gram":
            gram = torch.bmm(patches.transpose(1, 2), patches)
            for d, dest in zip(ds, out):
                dc = d[start:stop]
                if groups != 1:
                    dc = dc.reshape(m * groups, per_group, positions)
                sq = torch.bmm(dc, gram).mul_(dc)
                torch.sum(sq.view(m, filters, positions), dim=2, out=dest[start:stop])
        else:
            patches_t = patches.transpose(1, 2)
            for d, dest in zip(ds, out):
                dc = d[start:stop]
                if groups != 1:
                    dc = dc.reshape(m * groups, per_group, positions)
                g = torch.bmm(dc, patches_t)
                torch.sum(g.square_().view(m, filters, weights), dim=2, out=dest[start:stop])
    return out


class _Recorder:
    """Forward hooks saving each covered layer's input and output for one forward pass."""

    def __init__(self, layers: list[tuple[str, nn.Module]]):
        self.layers = layers
        self.records: dict[int, tuple[torch.Tensor, torch.Tensor, int]] = {}
        self.handles = [m.register_forward_hook(self._hook(i), with_kwargs=True) for i, (_, m) in enumerate(layers)]

    def _hook(self, index: int):
        def hook(module: nn.Module, args: tuple, kwargs: dict, output: torch.Tensor) -> None:
            if index in self.records:
                raise ValueError(f"Fisher: layer {self.layers[index][0]!r} ran more than once in one forward pass")
            x = args[0] if args else kwargs["input"]
            self.records[index] = (x.detach(), output, output._version)

        return hook

    def collect(self) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """(inputs, outputs) of every covered layer, checking each ran exactly once and was not overwritten."""
        inputs, outputs = [], []
        for i, (name, _) in enumerate(self.layers):
            if i not in self.records:
                raise ValueError(f"Fisher: layer {name!r} did not run in the forward pass of body and head")
            x, out, version = self.records[i]
            if out._version != version:
                raise RuntimeError(
                    f"Fisher: the output of layer {name!r} was modified in place (e.g. by ReLU(inplace=True)); "
                    "its gradient cannot be recovered"
                )
            if not out.requires_grad:
                raise RuntimeError(f"Fisher: the output of layer {name!r} is not part of the autograd graph")
            inputs.append(x)
            outputs.append(out)
        self.records = {}
        return inputs, outputs

    def remove(self) -> None:
        for handle in self.handles:
            handle.remove()


def monte_carlo_fisher(
    body: nn.Module,
    head: nn.Linear,
    inputs: torch.Tensor,
    *,
    layers: list[tuple[str, nn.Module]] | None = None,
    batch_size: int = 64,
    label_samples: int = 1,
    exact: bool = False,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
    _strategy: str | None = None,
) -> np.ndarray:
    """Per-filter mean diagonal Fisher of ``layers`` (default: every conv/linear of ``body``), concatenated.

    Labels are drawn ``label_samples`` times per input from the model's own softmax(head(body(x))), or with
    ``exact`` every class is weighted by its probability. Modules run in eval mode (frozen BatchNorm, so samples
    are independent) and get their training flags back afterwards; parameters' ``.grad`` is never touched.
    ``_strategy`` ('materialise' or 'gram') forces one way of forming per-sample norms, for testing.
    """
    if _strategy not in _STRATEGIES:
        raise ValueError(f"_strategy must be one of {_STRATEGIES}, got {_strategy!r}")
    if batch_size < 1 or label_samples < 1:
        raise ValueError(f"batch_size and label_samples must be >= 1, got {batch_size} and {label_samples}")
    if len(inputs) == 0:
        raise ValueError("monte_carlo_fisher needs at least one input")
    device = torch.device(device)
    layers = covered_layers(body) if layers is None else list(layers)
    if not layers:
        raise ValueError("monte_carlo_fisher: no layers to cover")
    for name, layer in layers:
        check_layer(layer, name, "Monte-Carlo Fisher", _PADDING_MODES)

    body.to(device)
    head.to(device)
    with frozen([body, head], require=[layer.weight for _, layer in layers]):
        recorder = _Recorder(layers)
        try:
            sums = _accumulate(
                body, head, inputs, layers, recorder, batch_size, label_samples, exact, generator, device, _strategy
            )
        finally:
            recorder.remove()

    draws = 1 if exact else label_samples
    result = np.concatenate(
        [s.cpu().numpy() / (len(inputs) * draws * layer.weight[0].numel()) for s, (_, layer) in zip(sums, layers)]
    )
    if not np.isfinite(result).all():
        raise FloatingPointError("monte_carlo_fisher: the Fisher estimate is not finite")
    return result


def _accumulate(
    body: nn.Module,
    head: nn.Module,
    inputs: torch.Tensor,
    layers: list[tuple[str, nn.Module]],
    recorder: _Recorder,
    batch_size: int,
    label_samples: int,
    exact: bool,
    generator: torch.Generator | None,
    device: torch.device,
    strategy: str | None,
) -> list[torch.Tensor]:
    """Per-filter float64 sums over samples and label draws of the squared per-sample weight gradients."""
    sums = [torch.zeros(layer.weight.shape[0], dtype=torch.float64, device=device) for _, layer in layers]
    for start in range(0, len(inputs), batch_size):
        xb = inputs[start : start + batch_size].to(device)
        with torch.enable_grad():
            logits = head(body(xb))
        layer_inputs, outputs = recorder.collect()
        if not torch.isfinite(logits).all():
            raise FloatingPointError("monte_carlo_fisher: non-finite logits (check the inputs and the network)")
        log_p = F.log_softmax(logits, dim=1)
        probs = log_p.detach().exp()
        if exact:
            draws = [(torch.full((len(xb),), c, device=device), probs[:, c]) for c in range(probs.shape[1])]
        else:
            sample_probs = probs if generator is None else probs.to(generator.device)
            labels = torch.multinomial(sample_probs, label_samples, replacement=True, generator=generator).to(device)
            draws = [(labels[:, s], None) for s in range(label_samples)]
        out_elements = sum(out.numel() for out in outputs)
        group = max(1, (4 * _CHUNK_ELEMENTS) // max(1, out_elements))
        for first in range(0, len(draws), group):
            chunk = draws[first : first + group]
            grads: list[list[torch.Tensor]] = [[] for _ in layers]
            for j, (target, _) in enumerate(chunk):
                loss = -log_p.gather(1, target[:, None]).sum()
                last = first + j == len(draws) - 1
                ds = torch.autograd.grad(loss, outputs, retain_graph=not last, allow_unused=True)
                for i, (d, out) in enumerate(zip(ds, outputs)):
                    grads[i].append(_output_grad(layers[i][1], torch.zeros_like(out) if d is None else d))
            for i, (_, layer) in enumerate(layers):
                norms = _squared_norms(layer, layer_inputs[i], grads[i], strategy)
                for (_, weight), sq in zip(chunk, norms):
                    if weight is None:
                        sums[i] += sq.sum(0, dtype=torch.float64)
                    else:
                        sums[i] += (weight[:, None].to(torch.float64) * sq).sum(0)
                grads[i] = []
    return sums
