"""Variational ("robust Fisher") Task2Vec estimator: learn one weight-noise variance per filter of the frozen probe.

The probe's weights w-hat stay fixed; each filter o gets Gaussian weight noise N(0, sigma_o^2) and
log sigma_o^2 is learned by minimising the expected mean cross-entropy plus (beta/N) * KL to an isotropic
per-layer prior N(0, lambda_l^2) (Achille et al. 2019, sect. 3.1). To second order the optimum satisfies
(beta/N) / sigma_o^2 = F_o + (beta/N) / lambda_l^2, so (beta/N) / sigma_o^2 estimates the filter's mean
per-weight Fisher F_o, biased towards the "trivial embedding" (beta/N) / lambda_l^2 when data are scarce.

The noise is applied with the local reparametrisation trick (Kingma et al. 2015): instead of sampling
weights, each output unit of a perturbed layer gets independent Gaussian noise with the variance that weight
noise would give it, sigma_o^2 * (sum of squared inputs over the unit's receptive field). In a grouped
convolution (``groups=G``, depthwise ones included) filter o belongs to group g = o // (O / G) and sees only
group g's input channels, so the receptive-field sum has one map per group, shared by that group's filters.
"""

from __future__ import annotations

import contextlib
import functools
import math
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .layers import check_layer, conv_layers, conv_padding, frozen

# Squared receptive-field norms below this are treated as zero, so that sqrt's gradient stays finite
# where a unit sees only zeros (padding, dead ReLUs).
_TINY = 1e-30
_ESTIMATOR = "variational Fisher"
# the padding modes whose receptive-field sums _window_sum forms (any ``groups`` is fine)
_PADDING_MODES = ("zeros", "reflect", "replicate", "circular")


@dataclass
class VariationalResult:
    """Per-filter outcome of the variational fit, concatenated over the perturbed layers in order."""

    embedding: np.ndarray
    trivial: np.ndarray
    log_variance: np.ndarray
    prior_variance: np.ndarray
    losses: list[float]


class _SumOfSquares(torch.autograd.Function):
    """sum_k x_k^2 over dimension ``dim`` within each of ``groups`` equal consecutive blocks, with backward 2 x g.

    The result has ``groups`` entries along ``dim`` (one per block of dim's size / groups consecutive entries).
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, dim: int, groups: int = 1) -> torch.Tensor:
        dim = dim % x.dim()
        ctx.save_for_backward(x)
        ctx.dim, ctx.groups = dim, groups
        if groups == 1:
            return torch.linalg.vecdot(x, x, dim=dim).unsqueeze(dim)
        if groups == x.shape[dim]:  # blocks of one entry (depthwise): each sum is its one square, without a reduction
            return x * x
        blocks = x.unflatten(dim, (groups, -1))
        return torch.linalg.vecdot(blocks, blocks, dim=dim + 1)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (x,) = ctx.saved_tensors
        if ctx.groups == 1 or ctx.groups == x.shape[ctx.dim]:
            return x * (2 * grad), None, None
        blocks = x.unflatten(ctx.dim, (ctx.groups, -1))
        return (blocks * (2 * grad).unsqueeze(ctx.dim + 1)).flatten(ctx.dim, ctx.dim + 1), None, None


class _AddNoise(torch.autograd.Function):
    """output + std_o * norm_g(o) * eps on (M, O, P) views, keeping one full-size tensor (the scaled noise) to backward.

    ``norm`` is (M, G, P): filter o uses the map of its group g(o) = o // (O / G) (G = 1: one map for all filters).
    Autograd's own graph for the same expression keeps more full-size temporaries and makes more passes over them.
    """

    @staticmethod
    def forward(ctx, output: torch.Tensor, norm: torch.Tensor, std: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        scaled = eps.mul_(std.view(1, -1, 1))
        ctx.save_for_backward(norm, std, scaled)
        m, filters, positions = output.shape
        groups = norm.shape[1]
        if groups == 1:
            return torch.addcmul(output, scaled, norm)
        shape = (m, groups, filters // groups, positions)
        noisy = torch.addcmul(output.view(shape), scaled.view(shape), norm.unsqueeze(2))
        return noisy.view(output.shape)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None, None]:
        norm, std, scaled = ctx.saved_tensors
        m, filters, positions = scaled.shape
        groups = norm.shape[1]
        # (M * G, Og, P) views: each group's filters next to their shared norm map (G = 1: the tensors themselves);
        # the product is written in scaled's contiguous layout, whatever the layout of the incoming gradient
        t = (grad * scaled).reshape(m * groups, filters // groups, positions)
        if not ctx.needs_input_grad[1]:
            grad_norm = None
        elif groups == filters:  # one filter per map (depthwise): its term is the map's gradient, nothing to sum
            grad_norm = t.view(norm.shape)
        else:
            grad_norm = t.sum(1).view(norm.shape)
        if ctx.needs_input_grad[2]:
            per_filter = torch.bmm(t, norm.reshape(m * groups, positions, 1))
            grad_std = per_filter.view(m, filters).sum(0) / std
        else:
            grad_std = None
        return grad, grad_norm, grad_std, None


def receptive_field_norm(module: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """sqrt(sum of x^2 over each output unit's receptive field): the unit's noise std per unit weight std.

    For a Conv2d with ``groups`` G the result has shape (B, G, H_out, W_out): map g sums over group g's input
    channels only and is shared by that group's filters (G = 1: one map for all filters). For a Linear (..., 1).
    """
    check_layer(module, None, _ESTIMATOR, _PADDING_MODES)
    if isinstance(module, nn.Conv2d):
        field = _window_sum(module, _SumOfSquares.apply(x, -3, module.groups))
    else:
        field = _SumOfSquares.apply(x, -1, 1)
    return field.clamp_min(_TINY).sqrt()


def _window_sum(module: nn.Conv2d, sq: torch.Tensor) -> torch.Tensor:
    """Sum of each channel of ``sq`` (one per group) over each receptive field of ``module`` (its padding included).

    Sum pooling (avg_pool2d with divisor 1) is several times faster than a convolution with a kernel of ones; the
    convolution (one ones-kernel per channel, ``groups`` = channels) remains for dilated layers. Padding other
    than zeros pads the squares, which equals squaring the padded input for reflect, replicate and circular modes.
    """
    kernel, padding = module.kernel_size, module.padding
    pad = conv_padding(module, sq.shape[-2:])
    if kernel == (1, 1) and module.stride == (1, 1) and not any(pad):
        return sq  # each receptive field is one position: the sum is the square itself
    if module.dilation == (1, 1) and module.padding_mode == "zeros" and isinstance(padding, tuple) and all(
        2 * p <= k for p, k in zip(padding, kernel)
    ) and pad == (padding[1], padding[1], padding[0], padding[0]):
        return F.avg_pool2d(sq, kernel, module.stride, padding, count_include_pad=True, divisor_override=1)
    if any(pad):
        sq = F.pad(sq, pad, mode="constant" if module.padding_mode == "zeros" else module.padding_mode)
    if module.dilation == (1, 1):
        return F.avg_pool2d(sq, kernel, module.stride, 0, divisor_override=1)
    channels = sq.shape[-3]
    ones = torch.ones((channels, 1, *kernel), dtype=sq.dtype, device=sq.device)
    return F.conv2d(sq, ones, None, module.stride, 0, module.dilation, groups=channels)


class PerturbationHook:
    """Forward hook replacing a layer's output by output + sigma_o * receptive-field norm * eps (local reparam)."""

    def __init__(self, name: str, log_variance: torch.Tensor, generator: torch.Generator):
        self.name = name
        self.log_variance = log_variance
        self.generator = generator
        self.diagnose = False
        self.nonfinite: str | None = None

    def __call__(self, module: nn.Module, args: tuple, output: torch.Tensor) -> torch.Tensor | None:
        x = args[0]
        if self.diagnose:
            if self.nonfinite is None and not torch.isfinite(x).all():
                self.nonfinite = "input"
            elif self.nonfinite is None and not torch.isfinite(output).all():
                self.nonfinite = "output"
            return None
        norm = receptive_field_norm(module, x)
        if isinstance(module, nn.Conv2d):
            positions = output.shape[-2] * output.shape[-1]
            shape, norm_shape = (-1, output.shape[-3], positions), (-1, norm.shape[-3], positions)
        else:
            shape, norm_shape = (-1, output.shape[-1], 1), (-1, 1, 1)
        gen = self.generator
        eps = torch.randn(output.shape, generator=gen, device=gen.device, dtype=output.dtype).to(output.device)
        std = (0.5 * self.log_variance).exp()
        noisy = _AddNoise.apply(output.reshape(shape), norm.reshape(norm_shape), std, eps.view(shape))
        return noisy.view(output.shape)


@contextlib.contextmanager
def _perturbed(layers: list[tuple[str, nn.Module]], hooks: list[PerturbationHook]) -> Iterator[None]:
    """Each layer's output perturbed by its hook within the block."""
    handles = [module.register_forward_hook(hook) for (_, module), hook in zip(layers, hooks)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def _default_generator(device: torch.device) -> torch.Generator:
    """A generator on ``device`` seeded from torch's global RNG (so torch.manual_seed makes runs repeatable)."""
    gen = torch.Generator(device=device)
    gen.manual_seed(int(torch.randint(0, 2**62, ()).item()))
    return gen


def _kl_sum(log_variance: torch.Tensor, log_prior: torch.Tensor, n_weights: torch.Tensor) -> torch.Tensor:
    """sum_o n_o * KL(N(0, sigma_o^2) || N(0, lambda_o^2)); per weight 0.5 (r - 1 - log r) with r = sigma^2/lambda^2."""
    log_ratio = log_variance - log_prior
    return 0.5 * (n_weights * (log_ratio.exp() - 1.0 - log_ratio)).sum()


def _cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy for int class labels (B,) or soft-label distributions (B, K)."""
    if targets.is_floating_point():
        if targets.shape != logits.shape:
            raise ValueError(f"soft targets have shape {tuple(targets.shape)}, logits {tuple(logits.shape)}")
        return F.cross_entropy(logits, targets.to(logits.dtype))
    return F.cross_entropy(logits, targets.long())


def _locate_nonfinite(
    body: nn.Module, head: nn.Linear, hooks: list[PerturbationHook], inputs: torch.Tensor
) -> str | None:
    """Re-run a batch without noise and name the first perturbed layer whose input or output is non-finite."""
    for hook in hooks:
        hook.diagnose, hook.nonfinite = True, None
    try:
        with torch.no_grad():
            head(body(inputs))
    finally:
        for hook in hooks:
            hook.diagnose = False
    for hook in hooks:
        if hook.nonfinite is not None:
            return f"the {hook.nonfinite} of layer {hook.name!r} is non-finite"
    return None


def variational_fisher(
    body: nn.Module,
    head: nn.Linear,
    batches: Callable[[int], Iterable[tuple[torch.Tensor, torch.Tensor]]],
    n_samples: int,
    *,
    layers: list[tuple[str, nn.Module]] | None = None,
    epochs: int = 2,
    lr: float = 0.01,
    beta: float = 1.0,
    prior_scale: float = 1.0,
    init_log_variance_offset: float = -3.0,
    init_log_variance: np.ndarray | None = None,
    generator: torch.Generator | None = None,
    device: torch.device | str = "cpu",
) -> VariationalResult:
    """Fit one weight-noise log-variance per filter of ``layers`` (default: every Conv2d of ``body``) by Adam.

    ``batches(epoch)`` yields (inputs, targets) with int labels (B,) or soft labels (B, K); ``n_samples`` is N in
    beta/N. The probe (``body`` and ``head``, moved to ``device``) is frozen and in eval mode during the fit (so
    BatchNorm uses its running statistics); its requires_grad and training flags are restored afterwards.
    Returns (beta/N)/sigma^2 per filter and the trivial embedding (beta/N)/lambda_l^2, in ``layers`` order.
    The log-variances start at ``init_log_variance`` (one per filter, e.g. from a Monte-Carlo Fisher estimate
    through the second-order optimum) or else at log(lambda_l^2) + ``init_log_variance_offset``.
    """
    if n_samples <= 0:
        raise ValueError(f"n_samples must be positive, got {n_samples}")
    if epochs < 0 or lr <= 0 or beta <= 0 or prior_scale <= 0:
        raise ValueError(
            f"need epochs >= 0, lr > 0, beta > 0, prior_scale > 0 (got {epochs}, {lr}, {beta}, {prior_scale})"
        )
    device = torch.device(device)
    if layers is None:
        layers = conv_layers(body)
    if not layers:
        raise ValueError("no layers to perturb (body has no Conv2d and none were given)")
    body_modules = {id(m) for m in body.modules()}
    if len({id(m) for _, m in layers}) != len(layers):
        raise ValueError("a layer is listed twice in layers")
    for name, module in layers:
        if id(module) not in body_modules:
            raise ValueError(f"layer {name!r} is not a submodule of body")
        check_layer(module, name, _ESTIMATOR, _PADDING_MODES)

    body.to(device)
    head.to(device)
    if generator is None:
        generator = _default_generator(device)
    scale = beta / n_samples

    log_priors, sizes, n_weights = [], [], []
    for name, module in layers:
        weight = module.weight.detach()
        # lambda_l^2 from the norm in the weights' own precision (the trivial embedding of
        # layers.trivial_embedding forms the same mean square in float64)
        mean_square = float(torch.linalg.vector_norm(weight)) ** 2 / weight.numel()
        if not mean_square > 0 or not math.isfinite(mean_square):
            raise FloatingPointError(f"layer {name!r}: mean squared weight {mean_square} gives no usable prior")
        log_priors.append(math.log(prior_scale**2 * mean_square))
        sizes.append(weight.shape[0])
        n_weights.append(weight[0].numel())
    # One flat parameter for all filters keeps the KL term, the finiteness check and Adam at a few ops per step.
    dtype = functools.reduce(torch.promote_types, [m.weight.dtype for _, m in layers])
    repeats = torch.tensor(sizes, device=device)
    log_prior = torch.repeat_interleave(torch.tensor(log_priors, dtype=dtype, device=device), repeats)
    filter_size = torch.repeat_interleave(torch.tensor(n_weights, dtype=dtype, device=device), repeats)
    if init_log_variance is not None:
        start = torch.as_tensor(np.asarray(init_log_variance), dtype=dtype, device=device)
        if start.shape != log_prior.shape or not torch.isfinite(start).all():
            raise ValueError(f"init_log_variance must be {tuple(log_prior.shape)} finite values")
        log_var = start.clone().requires_grad_(True)
    else:
        log_var = (log_prior + init_log_variance_offset).requires_grad_(True)
    bounds = np.cumsum([0, *sizes])

    def layer_of(index: int) -> str:
        """Name of the layer holding filter ``index`` of the flat log-variance."""
        return layers[int(np.searchsorted(bounds, index, side="right")) - 1][0]

    hooks = [PerturbationHook(name, log_var[a:b], generator) for (name, _), a, b in zip(layers, bounds, bounds[1:])]

    losses: list[float] = []
    with frozen([body, head], freeze=[*body.parameters(), *head.parameters()]), _perturbed(layers, hooks):
        optimizer = torch.optim.Adam([log_var], lr=lr)
        for epoch in range(epochs):
            total, count = 0.0, 0
            for inputs, targets in batches(epoch):
                inputs, targets = inputs.to(device), targets.to(device)
                loss = _cross_entropy(head(body(inputs)), targets) + scale * _kl_sum(log_var, log_prior, filter_size)
                value = float(loss.detach())
                if not math.isfinite(value):
                    where = _locate_nonfinite(body, head, hooks, inputs)
                    if where is None:
                        worst = layer_of(int(torch.argmax(log_var.detach() - log_prior)))
                        where = f"every layer is finite without noise; the largest noise (vs its prior) is in {worst!r}"
                    raise FloatingPointError(
                        f"variational Fisher: non-finite loss at epoch {epoch}, batch {count}: {where}"
                    )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                if not torch.isfinite(log_var).all():
                    bad = layer_of(int(torch.nonzero(~torch.isfinite(log_var.detach()))[0, 0]))
                    raise FloatingPointError(
                        f"variational Fisher: non-finite log-variance of layer {bad!r} at epoch {epoch}"
                    )
                total += value
                count += 1
            if count == 0:
                raise ValueError(f"batches({epoch}) yielded no batches")
            losses.append(total / count)

    log_variance = log_var.detach().double().cpu().numpy()
    prior_variance = np.exp(np.array(log_priors, dtype=np.float64))
    trivial = np.repeat(scale / prior_variance, sizes)
    return VariationalResult(
        embedding=scale * np.exp(-log_variance),
        trivial=trivial,
        log_variance=log_variance,
        prior_variance=prior_variance,
        losses=losses,
    )
