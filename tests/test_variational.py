"""Known answers for the variational (robust Fisher) Task2Vec estimator on tiny networks."""

from __future__ import annotations

from collections import OrderedDict

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from taskspace.embeddings.variational import _AddNoise, PerturbationHook, receptive_field_norm, variational_fisher
from taskspace.models import SamePadConv2d


pytestmark = pytest.mark.usefixtures("one_thread")


def small_conv_net(seed: int = 0) -> tuple[nn.Sequential, nn.Linear]:
    """A two-conv body (with BatchNorm) and a linear head on its pooled features."""
    torch.manual_seed(seed)
    body = nn.Sequential(
        OrderedDict(
            conv1=nn.Conv2d(3, 4, 3, padding=1),
            bn1=nn.BatchNorm2d(4),
            relu1=nn.ReLU(),
            conv2=nn.Conv2d(4, 5, 3, stride=2),
            relu2=nn.ReLU(),
            pool=nn.AdaptiveAvgPool2d(1),
            flat=nn.Flatten(),
        )
    )
    with torch.no_grad():
        body.bn1.running_mean.uniform_(-0.5, 0.5)
        body.bn1.running_var.uniform_(0.5, 2.0)
    return body, nn.Linear(5, 3)


def fixed_batches(x: torch.Tensor, y: torch.Tensor, batch_size: int):
    """batches(epoch) over (x, y) in a fixed order."""
    return lambda epoch: [(x[i : i + batch_size], y[i : i + batch_size]) for i in range(0, len(x), batch_size)]


def test_constant_loss_gives_the_trivial_embedding():
    body, head = small_conv_net()
    nn.init.zeros_(head.weight)
    nn.init.zeros_(head.bias)
    x, y = torch.randn(16, 3, 8, 8), torch.randint(0, 3, (16,))
    batches = fixed_batches(x, y, 16)
    kwargs = dict(lr=0.1, beta=2.0, generator=torch.Generator().manual_seed(0))
    start = variational_fisher(body, head, batches, 16, epochs=0, **kwargs)
    np.testing.assert_allclose(start.embedding, start.trivial * np.exp(3.0), rtol=1e-5)
    assert start.losses == []

    res = variational_fisher(body, head, batches, 16, epochs=200, **kwargs)
    assert res.embedding.shape == res.trivial.shape == (4 + 5,)
    np.testing.assert_allclose(res.embedding, res.trivial, rtol=1e-3)
    mean_square = [float(body.conv1.weight.detach().square().mean()), float(body.conv2.weight.detach().square().mean())]
    np.testing.assert_allclose(res.prior_variance, mean_square, rtol=1e-6)
    np.testing.assert_allclose(res.trivial, (2.0 / 16) / np.repeat(mean_square, [4, 5]), rtol=1e-6)
    assert res.losses[0] > res.losses[-1] == pytest.approx(np.log(3), rel=1e-4)


def exact_filter_fisher(body: nn.Linear, head: nn.Linear, x: torch.Tensor) -> np.ndarray:
    """Mean per-weight Fisher of each row of body.weight: E_x sum_y p(y|x) (d log p(y|x) / dW)^2, in float64."""

    def log_probs(weight: torch.Tensor, xi: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(head(F.linear(xi, weight, body.bias)), -1)

    with torch.no_grad():
        p = torch.softmax(head(body(x)), -1)
    jac = torch.func.vmap(torch.func.jacrev(log_probs), in_dims=(None, 0))(body.weight.detach(), x)
    fisher = (p[:, :, None, None] * jac.detach() ** 2).sum(1).mean(0)
    return fisher.mean(1).numpy()


def test_linear_body_matches_the_exact_fisher():
    # Logits are linear in the body weights, so the Hessian of the cross-entropy is exactly the Fisher and the
    # second-order optimum (beta/N)/sigma^2 - (beta/N)/lambda^2 = F_o holds up to higher-order softmax terms.
    # beta/N = 1e-3 keeps the logit noise small; prior_scale = 10 keeps the prior under 5% of every F_o. Over 12
    # generator seeds the estimate was biased by about -5% (higher-order terms), a run's mean error stayed within
    # 9% and no filter was off by more than 14% (stochastic jitter of log sigma^2 under Adam): hence 25% per filter
    # and 15% on the mean. The Fisher values span almost two orders of magnitude, so wrong factors (n_o, 1/2, beta/N,
    # the receptive-field variance) fail it.
    g = torch.Generator().manual_seed(0)
    k, d, c, n = 32, 6, 3, 512
    torch.manual_seed(1)
    body, head = nn.Linear(k, d).double(), nn.Linear(d, c).double()
    with torch.no_grad():
        body.weight.copy_(torch.randn(d, k, generator=g, dtype=torch.float64) * 0.5)
        head.weight.copy_(torch.randn(c, d, generator=g, dtype=torch.float64))
    x = torch.randn(n, k, generator=g, dtype=torch.float64) * (2 / k**0.5)
    y = torch.randint(0, c, (n,), generator=g)
    fisher = exact_filter_fisher(body, head, x)
    assert fisher.max() / fisher.min() > 20

    res = variational_fisher(
        body, head, fixed_batches(x, y, n), n, layers=[("body", body)], epochs=400, lr=0.02, beta=0.5,
        prior_scale=10.0, init_log_variance_offset=-6.0, generator=torch.Generator().manual_seed(0),
    )
    assert (res.trivial < 0.05 * fisher).all()
    estimate = res.embedding - res.trivial
    np.testing.assert_allclose(estimate, fisher, rtol=0.25)
    assert abs(np.mean(estimate / fisher - 1)) < 0.15


def test_soft_one_hot_targets_equal_int_labels():
    body, head = small_conv_net()
    x, y = torch.randn(24, 3, 8, 8), torch.randint(0, 3, (24,))
    results = [
        variational_fisher(body, head, fixed_batches(x, t, 8), 24, epochs=3, lr=0.05,
                           generator=torch.Generator().manual_seed(5))
        for t in (y, F.one_hot(y, 3).float())
    ]
    np.testing.assert_allclose(results[0].embedding, results[1].embedding, rtol=1e-6)
    np.testing.assert_allclose(results[0].losses, results[1].losses, rtol=1e-6)
    other = variational_fisher(body, head, fixed_batches(x, (y + 1) % 3, 8), 24, epochs=3, lr=0.05,
                               generator=torch.Generator().manual_seed(5))
    assert not np.allclose(other.losses, results[0].losses, rtol=1e-3)
    assert not np.array_equal(other.embedding, results[0].embedding)


@pytest.mark.parametrize(
    "layer, shape",
    [
        (nn.Conv2d(3, 4, 3, stride=2, padding=1), (3, 7, 7)),
        (nn.Conv2d(2, 3, (3, 2), padding=2, dilation=2), (2, 5, 6)),
        (nn.Conv2d(2, 3, 3, padding=1, padding_mode="reflect"), (2, 5, 5)),
        pytest.param(
            nn.Conv2d(2, 3, (2, 3), padding="same"), (2, 5, 4),
            marks=pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel"),
        ),
        (nn.Conv2d(2, 3, 3, stride=(1, 2), padding=(2, 0)), (2, 4, 7)),
        (nn.Conv2d(3, 3, 3, stride=2, padding=1, groups=3), (3, 6, 7)),
        (nn.Conv2d(4, 6, (3, 2), padding=2, dilation=2, groups=2), (4, 5, 6)),
        (nn.Linear(6, 4), (6,)),
    ],
)
def test_local_reparametrisation_matches_weight_sampling(layer: nn.Module, shape: tuple[int, ...]):
    # 4000 draws: a variance's relative standard error is sqrt(2/4000) = 2.2%, so 15% is over 6 standard errors
    # for every output element, while a wrong receptive field (padding, stride, dilation) is off by 30% or more.
    torch.manual_seed(0)
    layer = layer.double()
    m = 4000
    x = torch.randn(1, *shape, dtype=torch.float64)
    n_out = layer.weight.shape[0]
    log_variance = torch.linspace(-3.0, -1.0, n_out, dtype=torch.float64)
    sigma = (0.5 * log_variance).exp().view(-1, *[1] * (layer.weight.dim() - 1))
    with torch.no_grad():
        mean = layer(x)[0]
        # one norm map per group (a Conv2d's groups; a Linear has one), shared by the group's filters
        norm = receptive_field_norm(layer, x)[0].repeat_interleave(n_out // getattr(layer, "groups", 1), dim=0)
        expected_var = log_variance.exp().view(-1, *[1] * (mean.dim() - 1)) * norm**2

        handle = layer.register_forward_hook(PerturbationHook("layer", log_variance, torch.Generator().manual_seed(1)))
        try:
            hooked = layer(x.expand(m, *shape))
        finally:
            handle.remove()

        noise = torch.randn(m, *layer.weight.shape, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
        weights = layer.weight + sigma * noise
        if isinstance(layer, nn.Conv2d):
            sampled = torch.stack([layer._conv_forward(x, w, layer.bias)[0] for w in weights])
        else:
            sampled = torch.einsum("mok,k->mo", weights, x[0]) + layer.bias

    for draws in (hooked, sampled):
        assert draws.shape == (m, *mean.shape)
        np.testing.assert_allclose(draws.var(0), expected_var, rtol=0.15)
        assert ((draws.mean(0) - mean).abs() <= 5 * (expected_var / m).sqrt()).all()


@pytest.mark.parametrize(
    "layer, shape",
    [
        (nn.Conv2d(2, 3, 3, stride=2, padding=1), (2, 2, 5, 5)),
        (nn.Conv2d(3, 3, 3, padding=1, groups=3), (2, 3, 4, 4)),
        (nn.Conv2d(4, 6, 3, stride=2, padding=2, dilation=2, groups=2), (2, 4, 5, 5)),
        (nn.Linear(4, 3), (2, 4)),
    ],
)
def test_noise_gradients_reach_inputs_and_log_variances(layer: nn.Module, shape: tuple[int, ...]):
    # The hook's hand-written backward against finite differences, with the noise draw held fixed.
    layer = layer.double().requires_grad_(False)
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    log_variance = torch.randn(layer.weight.shape[0], dtype=torch.float64, requires_grad=True)

    def noisy_output(x: torch.Tensor, log_variance: torch.Tensor) -> torch.Tensor:
        handle = layer.register_forward_hook(PerturbationHook("layer", log_variance, torch.Generator().manual_seed(3)))
        try:
            return layer(x)
        finally:
            handle.remove()

    assert torch.autograd.gradcheck(noisy_output, (x, log_variance))


def test_probe_is_left_as_it_was():
    body, head = small_conv_net()
    body.train()
    body.conv2.bias.requires_grad_(False)
    state = {k: v.clone() for k, v in [*body.state_dict().items(), *head.state_dict().items()]}
    flags = [p.requires_grad for p in [*body.parameters(), *head.parameters()]]
    x, y = torch.randn(16, 3, 8, 8), torch.randint(0, 3, (16,))
    res = variational_fisher(body, head, fixed_batches(x, y, 8), 16, epochs=2, lr=0.05,
                             generator=torch.Generator().manual_seed(0))
    assert len(res.losses) == 2 and np.isfinite(res.embedding).all()
    after = dict([*body.state_dict().items(), *head.state_dict().items()])
    assert all(torch.equal(state[k], after[k]) for k in state)
    assert [p.requires_grad for p in [*body.parameters(), *head.parameters()]] == flags
    assert all(p.grad is None for p in [*body.parameters(), *head.parameters()])
    assert body.training and body.bn1.training and head.training
    assert all(not m._forward_hooks for m in [*body.modules(), *head.modules()])


def test_non_finite_inputs_raise_and_clean_up():
    body, head = small_conv_net()
    x, y = torch.randn(8, 3, 8, 8), torch.randint(0, 3, (8,))
    x[3, 1, 2, 2] = float("nan")
    with pytest.raises(FloatingPointError, match="input of layer 'conv1'"):
        variational_fisher(body, head, fixed_batches(x, y, 8), 8, generator=torch.Generator().manual_seed(0))
    assert all(not m._forward_hooks for m in body.modules())
    assert all(p.requires_grad for p in body.parameters())

    x[3, 1, 2, 2] = 0.0
    with pytest.raises(FloatingPointError, match="log-variance of layer 'conv1'"):
        variational_fisher(
            body, head, fixed_batches(x, y, 8), 8, lr=float("inf"), generator=torch.Generator().manual_seed(0)
        )


def test_layers_other_than_conv2d_and_linear_are_refused_by_name():
    body = nn.Sequential(OrderedDict(seq=nn.Conv1d(4, 4, 3), pool=nn.AdaptiveAvgPool1d(1), flat=nn.Flatten()))
    with pytest.raises(NotImplementedError, match="layer 'seq'"):
        variational_fisher(body, nn.Linear(4, 2), lambda e: [], 4, layers=[("seq", body.seq)])


GROUPED_CONVS = {
    "depthwise": lambda: nn.Conv2d(4, 4, 3, padding=1, groups=4),
    "depthwise stride 2": lambda: nn.Conv2d(4, 4, 3, stride=2, padding=1, groups=4),
    "groups 2, 4 -> 6": lambda: nn.Conv2d(4, 6, 3, padding=1, groups=2),
    "groups 2, dilated": lambda: nn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(2, 1), dilation=(2, 3), groups=2),
    "groups 2, 6 -> 4, reflect": lambda: nn.Conv2d(6, 4, 3, padding=1, groups=2, padding_mode="reflect"),
    "depthwise, circular, stride 2": lambda: nn.Conv2d(4, 4, 3, stride=2, padding=1, groups=4, padding_mode="circular"),
    "groups 4, same, dilated": lambda: nn.Conv2d(4, 8, 3, padding="same", dilation=2, groups=4),
    "groups 1": lambda: nn.Conv2d(4, 6, 3, stride=2, padding=1),
    # TensorFlow's 'SAME' at stride 2 on 7 x 6: one zero on each side of the height, one after the width only
    "TensorFlow same, depthwise stride 2": lambda: SamePadConv2d(4, 4, 3, stride=2, groups=4),
    "TensorFlow same, 5x5 stride 2, groups 2": lambda: SamePadConv2d(4, 6, 5, stride=2, groups=2),
    "TensorFlow same, 1x1": lambda: SamePadConv2d(4, 6, 1),
}


def exact_output_variance(layer: nn.Conv2d, x: torch.Tensor, log_variance: torch.Tensor) -> torch.Tensor:
    """Variance of each output unit under independent weight noise N(0, sigma_o^2) on every weight of filter o.

    The output is linear in the weights, so the variance is sum_w sigma_o(w)^2 (d output / d w)^2: the Jacobian is
    taken by torch.func through torch's own convolution (groups, padding mode and all), not through any unfold.
    """
    jac = torch.func.jacrev(lambda w: layer._conv_forward(x, w, layer.bias))(layer.weight.detach())
    weight_var = log_variance.exp().view(-1, 1, 1, 1).expand_as(layer.weight)
    return (jac.square() * weight_var).flatten(-4).sum(-1)


@pytest.mark.parametrize("kind", list(GROUPED_CONVS))
def test_grouped_receptive_field_norm_is_the_exact_output_std(kind):
    torch.manual_seed(7)
    layer = GROUPED_CONVS[kind]().double()
    x = torch.randn(2, layer.in_channels, 7, 6, dtype=torch.float64)
    log_variance = torch.linspace(-2.0, 1.0, layer.out_channels, dtype=torch.float64)
    want = exact_output_variance(layer, x, log_variance)
    norm = receptive_field_norm(layer, x)
    groups, per_group = layer.groups, layer.out_channels // layer.groups
    assert norm.shape == (2, groups, *want.shape[-2:])
    # filter o uses its group's map: sigma_o^2 * norm[:, o // per_group]^2
    got = log_variance.exp().view(1, -1, 1, 1) * norm.repeat_interleave(per_group, dim=1).square()
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-14)
    assert (want > 0).all()


def test_grouped_receptive_field_norm_against_unfold():
    # The same norm by brute force: zero-pad, unfold, keep group g's channels' rows, sum their squares.
    torch.manual_seed(8)
    layer = nn.Conv2d(6, 9, (3, 2), stride=(2, 1), padding=(1, 2), dilation=(1, 2), groups=3).double()
    x = torch.randn(3, 6, 8, 7, dtype=torch.float64)
    cols = F.unfold(x, layer.kernel_size, layer.dilation, layer.padding, layer.stride)  # (B, C * kh * kw, P)
    k = layer.kernel_size[0] * layer.kernel_size[1]
    want = torch.stack([cols[:, 2 * k * g : 2 * k * (g + 1)].square().sum(1) for g in range(3)], 1)
    got = receptive_field_norm(layer, x).square()
    torch.testing.assert_close(got.flatten(2), want, rtol=1e-12, atol=0)


@pytest.mark.parametrize("kind", ["depthwise stride 2", "groups 2, dilated", "groups 1",
                                  "TensorFlow same, depthwise stride 2"])
def test_perturbation_hook_gives_each_filter_its_groups_noise(kind):
    # The hook's output is exactly output + sigma_o * norm_g(o) * eps with eps its generator's next normal draws.
    torch.manual_seed(9)
    layer = GROUPED_CONVS[kind]().double()
    x = torch.randn(3, layer.in_channels, 7, 6, dtype=torch.float64)
    log_variance = torch.linspace(-2.0, 1.0, layer.out_channels, dtype=torch.float64)
    with torch.no_grad():
        clean = layer(x)
        handle = layer.register_forward_hook(PerturbationHook("layer", log_variance, torch.Generator().manual_seed(4)))
        try:
            noisy = layer(x)
        finally:
            handle.remove()
        eps = torch.randn(clean.shape, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
        std = (0.5 * log_variance).exp().view(1, -1, 1, 1)
        # per-filter noise std sqrt(exact output variance / sigma_o^2) * sigma_o, from the Jacobian reference
        unit_std = exact_output_variance(layer, x, log_variance).sqrt()
    torch.testing.assert_close(noisy, clean + unit_std * eps, rtol=1e-10, atol=1e-12)
    assert not torch.allclose(noisy, clean + std * eps)


def plain_add_noise(output, norm, std, eps):
    """output + std_o * norm_g(o) * eps by autograd: filter o of group o // (O / G) uses norm[:, g]."""
    per_group = output.shape[1] // norm.shape[1]
    return output + std.view(1, -1, 1) * eps * norm.repeat_interleave(per_group, dim=1)


@pytest.mark.parametrize("groups, filters", [(1, 5), (3, 6), (4, 4)])
def test_add_noise_backward_matches_autograd(groups, filters):
    gen = torch.Generator().manual_seed(groups)
    m, positions = 3, 5
    output = torch.randn(m, filters, positions, dtype=torch.float64, generator=gen, requires_grad=True)
    norm = (torch.rand(m, groups, positions, dtype=torch.float64, generator=gen) + 0.1).requires_grad_(True)
    std = (torch.rand(filters, dtype=torch.float64, generator=gen) + 0.5).requires_grad_(True)
    eps = torch.randn(m, filters, positions, dtype=torch.float64, generator=gen)

    def fused(output, norm, std):
        return _AddNoise.apply(output, norm, std, eps.clone())  # forward scales its eps in place

    assert torch.autograd.gradcheck(fused, (output, norm, std))
    upstream = torch.randn(m, filters, positions, dtype=torch.float64, generator=gen)
    got = torch.autograd.grad(fused(output, norm, std), (output, norm, std), upstream)
    want = torch.autograd.grad(plain_add_noise(output, norm, std, eps), (output, norm, std), upstream)
    noisy = fused(output, norm, std)
    torch.testing.assert_close(noisy, plain_add_noise(output, norm, std, eps), rtol=1e-12, atol=1e-15)
    for g, w in zip(got, want):
        torch.testing.assert_close(g, w, rtol=1e-12, atol=1e-14)
    # only the needed gradients are formed
    assert torch.autograd.grad(fused(output, norm.detach(), std).sum(), std)[0].shape == std.shape


@pytest.mark.parametrize("layer", [nn.Conv2d(6, 6, 3, stride=2, padding=1, groups=6), nn.Conv2d(6, 4, 1)],
                         ids=["depthwise", "1x1"])
def test_shortcuts_give_the_general_paths_values_bit_for_bit(layer):
    # A depthwise layer's sums of one square and a 1x1 layer's windows of one position skip a reduction; values and
    # gradients are exactly those of the general route (sums of squares per group, then sum pooling), so no
    # embedding changes.
    gen = torch.Generator().manual_seed(11)
    x = torch.randn(2, 6, 7, 7, generator=gen).requires_grad_(True)
    got = receptive_field_norm(layer, x)
    upstream = torch.randn(got.shape, generator=gen)
    blocks = x.detach().unflatten(1, (layer.groups, -1))
    sq = torch.linalg.vecdot(blocks, blocks, dim=2).requires_grad_(True)
    want = F.avg_pool2d(sq, layer.kernel_size, layer.stride, layer.padding, divisor_override=1).clamp_min(1e-30).sqrt()
    assert torch.equal(got, want)
    grad_sq = torch.autograd.grad(want, sq, upstream)[0]
    want_grad = (blocks * (2 * grad_sq).unsqueeze(2)).flatten(1, 2)
    assert torch.equal(torch.autograd.grad(got, x, upstream)[0], want_grad)


def test_add_noise_gradient_of_single_filter_maps_is_the_sum_over_one_filter():
    gen = torch.Generator().manual_seed(12)
    m, filters, positions = 3, 4, 5
    output = torch.randn(m, filters, positions, generator=gen, requires_grad=True)
    norm = (torch.rand(m, filters, positions, generator=gen) + 0.1).requires_grad_(True)
    std = (torch.rand(filters, generator=gen) + 0.5).requires_grad_(True)
    eps = torch.randn(m, filters, positions, generator=gen)
    upstream = torch.randn(m, filters, positions, generator=gen)
    noisy = _AddNoise.apply(output, norm, std, eps.clone())
    grad_norm = torch.autograd.grad(noisy, norm, upstream)[0]
    want = (upstream * (eps * std.detach().view(1, -1, 1))).reshape(m * filters, 1, positions).sum(1)
    assert torch.equal(grad_norm, want.view(norm.shape))


def test_mobilenet_v2_gives_one_positive_value_per_filter():
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    net = torchvision.models.mobilenet_v2(weights=None, num_classes=5)
    for m in net.modules():  # calibrated BatchNorm with a shift of 2: few dead ReLU6 units
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = None
            nn.init.constant_(m.bias, 2.0)
    with torch.no_grad():
        net.train()(torch.randn(16, 3, 32, 32, generator=torch.Generator().manual_seed(1)))
    net.eval()
    body = nn.Sequential(net.features, nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
    head = net.classifier[1]
    convs = [m for m in body.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 52 and sum(m.groups > 1 for m in convs) == 17
    x, y = torch.randn(8, 3, 32, 32), torch.randint(0, 5, (8,))
    res = variational_fisher(body, head, fixed_batches(x, y, 4), 8, epochs=2, lr=0.05,
                             generator=torch.Generator().manual_seed(0))
    assert res.embedding.shape == res.trivial.shape == (sum(m.out_channels for m in convs),)
    assert np.isfinite(res.embedding).all() and (res.embedding > 0).all()
    assert len(res.losses) == 2 and np.isfinite(res.losses).all()
    # the fit moved every layer's variances, depthwise ones included
    start = variational_fisher(body, head, fixed_batches(x, y, 4), 8, epochs=0,
                               generator=torch.Generator().manual_seed(0))
    bounds = np.cumsum([0, *[m.out_channels for m in convs]])
    for a, b in zip(bounds, bounds[1:]):
        assert not np.allclose(res.log_variance[a:b], start.log_variance[a:b])
