"""Monte-Carlo Fisher embedding: brute-force per-sample gradients, a closed form, and a real ResNet."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from taskspace.embeddings import fisher as fisher_module
from taskspace.embeddings.fisher import (
    _choose_strategy,
    _output_grad,
    _squared_norms,
    covered_layers,
    filter_counts,
    monte_carlo_fisher,
)
from taskspace.models import SamePadConv2d


pytestmark = pytest.mark.usefixtures("one_thread")


def small_net(num_classes: int = 4, seed: int = 0) -> tuple[nn.Module, nn.Linear]:
    """A float64 conv net (3x3, strided 3x3, strided 1x1) with non-trivial frozen BatchNorm statistics."""
    torch.manual_seed(seed)
    body = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
        nn.Conv2d(4, 6, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(6), nn.ReLU(),
        nn.Conv2d(6, 5, 1, stride=2), nn.BatchNorm2d(5), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(1),
    )
    head = nn.Linear(5, num_classes)
    with torch.no_grad():
        for m in body.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(0.2, 0.6)
        head.weight.mul_(3.0)
    return body.double(), head.double()


def reference_fisher(body: nn.Module, head: nn.Module, x: torch.Tensor, layers) -> np.ndarray:
    """Exact per-filter Fisher by brute force: one sample and one class at a time, weighted by p(class|x)."""
    body, head = copy.deepcopy(body).eval(), copy.deepcopy(head).eval()
    names = [name for name, _ in layers]
    modules = dict(body.named_modules()) | {"head": head}
    params = [modules[name].weight for name in names]
    totals = [torch.zeros_like(p) for p in params]
    for n in range(len(x)):
        log_p = F.log_softmax(head(body(x[n : n + 1])), dim=1)[0]
        p = log_p.detach().exp()
        for c in range(len(p)):
            grads = torch.autograd.grad(-log_p[c], params, retain_graph=True)
            for total, g in zip(totals, grads):
                total += p[c] * g**2
    return np.concatenate([(t / len(x)).flatten(1).mean(1).numpy() for t in totals])


@pytest.mark.parametrize("strategy", [None, "materialise", "gram"])
def test_exact_fisher_matches_per_sample_brute_force(strategy):
    body, head = small_net()
    x = torch.randn(7, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    layers = covered_layers(body) + [("head", head)]
    got = monte_carlo_fisher(body, head, x, layers=layers, batch_size=3, exact=True, _strategy=strategy)
    want = reference_fisher(body, head, x, layers)
    assert got.dtype == np.float64 and got.shape == (sum(filter_counts(layers)),) == (4 + 6 + 5 + 4,)
    assert want.min() > 0
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=0)


def test_automatic_strategy_uses_both_paths():
    # conv1 of the small net (64 positions) vs its strided 1x1 conv (4 positions), for 4 classes
    assert _choose_strategy(filters=4, weights=27, positions=64, draws=4) == "materialise"
    assert _choose_strategy(filters=5, weights=6, positions=4, draws=4) == "gram"
    # ResNet-18 at 32x32: layer1 conv (8x8 output) vs layer4 conv (1x1 output)
    assert _choose_strategy(filters=64, weights=576, positions=64, draws=1) == "materialise"
    assert _choose_strategy(filters=512, weights=4608, positions=1, draws=1) == "gram"


def test_automatic_strategy_counts_one_gram_per_group():
    # A depthwise 3x3 conv with 96 channels at 2x2 output: one shared Gram would win, but a grouped layer needs
    # 96 of them (one per group), so materialising (96 gradients of 9 weights) is cheaper.
    assert _choose_strategy(filters=96, weights=9, positions=4, draws=1) == "gram"
    assert _choose_strategy(filters=96, weights=9, positions=4, draws=1, groups=96) == "materialise"
    # MobileNetV2 at 32x32, one label draw: every depthwise layer (16x16 .. 1x1 output) materialises
    for channels, positions in [(32, 256), (96, 64), (144, 16), (192, 4), (576, 4), (576, 1), (960, 1)]:
        assert _choose_strategy(channels, 9, positions, 1, groups=channels) == "materialise"
    # with 10 draws (e.g. exact over 10 classes) still down to 4x4 output ...
    for channels, positions in [(32, 256), (96, 64), (144, 16)]:
        assert _choose_strategy(channels, 9, positions, 10, groups=channels) == "materialise"
    # ... while at 1x1 output a Gram "matrix" is one scalar per group and does pay off for several draws
    assert _choose_strategy(filters=960, weights=9, positions=1, draws=10, groups=960) == "gram"
    # grouped (not depthwise) layers: groups=2 doubles the Gram cost
    assert _choose_strategy(filters=64, weights=288, positions=36, draws=1, groups=1) == "gram"
    assert _choose_strategy(filters=64, weights=288, positions=36, draws=1, groups=2) == "materialise"


def per_sample_filter_norms(layer: nn.Conv2d, x: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """(N, O) squared norms of each filter's per-sample gradient of sum(layer(x_n) * d_n), by torch.func."""

    def objective(weight: torch.Tensor, xn: torch.Tensor, dn: torch.Tensor) -> torch.Tensor:
        return (layer._conv_forward(xn[None], weight, None)[0] * dn).sum()

    grads = torch.func.vmap(torch.func.grad(objective), in_dims=(None, 0, 0))(layer.weight.detach(), x, d)
    assert grads.shape == (len(x), *layer.weight.shape)
    return grads.square().flatten(2).sum(2)


GROUPED_LAYERS = {
    "depthwise": lambda: nn.Conv2d(6, 6, 3, padding=1, groups=6),
    "depthwise stride 2": lambda: nn.Conv2d(6, 6, 3, stride=2, padding=1, groups=6),
    "groups 2, 4 -> 6": lambda: nn.Conv2d(4, 6, 3, padding=1, groups=2),
    "groups 3, dilated": lambda: nn.Conv2d(6, 9, (3, 2), stride=(1, 2), padding=(2, 1), dilation=(2, 3), groups=3),
    "grouped pointwise strided": lambda: nn.Conv2d(6, 4, 1, stride=2, groups=2),
    # TensorFlow's 'SAME' at stride 2 on 7 x 8: one zero on each side of the height, one after the width only
    "TensorFlow same, depthwise stride 2": lambda: SamePadConv2d(6, 6, 3, stride=2, groups=6),
    "TensorFlow same, 5x5 stride 2": lambda: SamePadConv2d(6, 4, 5, stride=2, bias=False),
}


@pytest.mark.parametrize("strategy", ["materialise", "gram"])
@pytest.mark.parametrize("kind", list(GROUPED_LAYERS))
def test_grouped_squared_norms_match_torch_func_per_sample_gradients(kind, strategy, monkeypatch):
    torch.manual_seed(11)
    layer = GROUPED_LAYERS[kind]().double()
    gen = torch.Generator().manual_seed(12)
    x = torch.randn(5, layer.in_channels, 7, 8, dtype=torch.float64, generator=gen)
    out_shape = layer(x).shape
    ds = [torch.randn(out_shape, dtype=torch.float64, generator=gen) for _ in range(3)]
    want = [per_sample_filter_norms(layer, x, d) for d in ds]
    # a tiny chunk budget makes the samples go through in several chunks
    monkeypatch.setattr(fisher_module, "_CHUNK_ELEMENTS", 1)
    got = _squared_norms(layer, x, [_output_grad(layer, d) for d in ds], strategy)
    for g, w in zip(got, want):
        assert g.shape == (5, layer.out_channels)
        assert w.min() > 0
        torch.testing.assert_close(g, w, rtol=1e-10, atol=0)


def grouped_body(kind: str) -> nn.Sequential:
    """A float64 body with grouped convolutions, pooled to 4 features."""
    torch.manual_seed(21)
    if kind == "depthwise":
        body = nn.Sequential(
            nn.Conv2d(3, 4, 1), nn.Tanh(),
            nn.Conv2d(4, 4, 3, padding=1, groups=4), nn.Tanh(),
            nn.Conv2d(4, 4, 3, stride=2, padding=1, groups=4), nn.Tanh(),
        )
    elif kind == "tensorflow same":  # EfficientNet's convolutions: padded by the input's size, unevenly
        body = nn.Sequential(
            SamePadConv2d(3, 4, 3, stride=2), nn.Tanh(),
            SamePadConv2d(4, 4, 5, stride=2, groups=4), nn.Tanh(),
            SamePadConv2d(4, 4, 1), nn.Tanh(),
        )
    elif kind == "grouped":
        body = nn.Sequential(
            nn.Conv2d(3, 4, 1), nn.Tanh(),
            nn.Conv2d(4, 6, 3, padding=1, groups=2), nn.Tanh(),
            nn.Conv2d(6, 4, 3, stride=2, padding=2, dilation=2, groups=2, bias=False), nn.Tanh(),
        )
    else:
        body = nn.Sequential(nn.Conv2d(3, 4, 1), nn.Tanh(), InvertedResidual(4, expand=3))
    body.extend([nn.AdaptiveAvgPool2d(1), nn.Flatten(1)])
    return body.double()


class InvertedResidual(nn.Module):
    """MobileNetV2's block: 1x1 expand, BN, ReLU6, 3x3 depthwise, BN, ReLU6, 1x1 project, BN; residual add."""

    def __init__(self, channels: int, expand: int):
        super().__init__()
        hidden = channels * expand
        self.conv = nn.Sequential(
            nn.Conv2d(channels, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden, bias=False), nn.BatchNorm2d(hidden),
            nn.ReLU6(inplace=True),
            nn.Conv2d(hidden, channels, 1, bias=False), nn.BatchNorm2d(channels),
        )
        with torch.no_grad():
            for m in self.conv.modules():
                if isinstance(m, nn.BatchNorm2d):
                    m.running_mean.uniform_(-0.1, 0.1)
                    m.running_var.uniform_(0.5, 2.0)
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.uniform_(0.2, 0.6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x)


@pytest.mark.parametrize("strategy", ["materialise", "gram"])
@pytest.mark.parametrize("kind", ["depthwise", "grouped", "inverted residual", "tensorflow same"])
def test_grouped_and_depthwise_fisher_matches_per_sample_brute_force(kind, strategy):
    body = grouped_body(kind)
    head = nn.Linear(4, 3).double()
    x = torch.randn(5, 3, 7, 7, dtype=torch.float64, generator=torch.Generator().manual_seed(22))
    layers = covered_layers(body) + [("head", head)]
    assert any(m.groups > 1 for _, m in layers if isinstance(m, nn.Conv2d))
    got = monte_carlo_fisher(body, head, x, layers=layers, batch_size=2, exact=True, _strategy=strategy)
    want = reference_fisher(body, head, x, layers)
    assert got.shape == (sum(filter_counts(layers)),)
    assert want.min() > 0
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=0)


def mobilenet_v2_probe() -> tuple[nn.Module, nn.Linear]:
    """torchvision's MobileNetV2 (random weights) as pooled features and a linear head, in eval mode.

    BatchNorm statistics are calibrated on random 32x32 images with a BN shift of 2, so that few ReLU6 units are
    dead: untouched, the random network's activations (and its Fisher) vanish and many filters get exactly zero.
    """
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    net = torchvision.models.mobilenet_v2(weights=None, num_classes=5)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = None
            nn.init.constant_(m.bias, 2.0)
    with torch.no_grad():
        net.train()(torch.randn(16, 3, 32, 32, generator=torch.Generator().manual_seed(1)))
    net.eval()
    return nn.Sequential(net.features, nn.AdaptiveAvgPool2d(1), nn.Flatten(1)), net.classifier[1]


def test_mobilenet_v2_gives_one_positive_value_per_filter():
    body, head = mobilenet_v2_probe()
    layers = [(n, m) for n, m in covered_layers(body) if isinstance(m, nn.Conv2d)]
    depthwise = [m for _, m in layers if m.groups > 1]
    assert len(layers) == 52 and len(depthwise) == 17
    assert all(m.groups == m.in_channels == m.out_channels for m in depthwise)
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    vec = monte_carlo_fisher(body, head, x, layers=layers, batch_size=2, label_samples=2,
                             generator=torch.Generator().manual_seed(0))
    assert vec.shape == (sum(m.out_channels for _, m in layers),) == (sum(filter_counts(layers)),)
    assert np.isfinite(vec).all() and (vec > 0).all()
    assert all(p.grad is None for p in [*body.parameters(), *head.parameters()])


@pytest.mark.filterwarnings("ignore:Using padding=.same.")
def test_same_padding_dilation_and_frozen_weights_match_brute_force():
    torch.manual_seed(3)
    body = nn.Sequential(
        nn.Conv2d(2, 3, (2, 3), padding="same", dilation=(1, 2)), nn.Tanh(), nn.AdaptiveAvgPool2d(1), nn.Flatten(1)
    ).double()
    head = nn.Linear(3, 3).double()
    body.requires_grad_(False)
    x = torch.randn(5, 2, 6, 5, dtype=torch.float64)
    layers = covered_layers(body)
    want = reference_fisher(body.requires_grad_(True), head, x, layers)
    body.requires_grad_(False)
    for strategy in ("materialise", "gram"):
        got = monte_carlo_fisher(body, head, x, exact=True, _strategy=strategy)
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=0)
    assert not any(p.requires_grad for p in body.parameters())


def softmax_head(num_features: int = 3, num_classes: int = 4, n: int = 100):
    gen = torch.Generator().manual_seed(5)
    phi = torch.randn(n, num_features, dtype=torch.float64, generator=gen)
    head = nn.Linear(num_features, num_classes).double()
    with torch.no_grad():
        head.weight.copy_(torch.randn(num_classes, num_features, dtype=torch.float64, generator=gen))
        head.bias.copy_(torch.randn(num_classes, dtype=torch.float64, generator=gen))
    return phi, head


def test_softmax_head_closed_form_exact_and_sampled():
    phi, head = softmax_head()
    with torch.no_grad():
        p = torch.softmax(head(phi), dim=1).numpy()
    sq = (phi.numpy() ** 2).mean(1)  # mean_k phi_k^2 per sample
    # F[o, k] = E_x[p_o (1 - p_o) phi_k^2]; the embedding is its mean over k
    closed = (p * (1 - p) * sq[:, None]).mean(0)
    layers = [("head", head)]
    exact = monte_carlo_fisher(nn.Identity(), head, phi, layers=layers, exact=True, batch_size=16)
    np.testing.assert_allclose(exact, closed, rtol=1e-10, atol=0)

    samples = 200
    sampled = monte_carlo_fisher(
        nn.Identity(), head, phi, layers=layers, label_samples=samples, generator=torch.Generator().manual_seed(0)
    )
    # each draw contributes Z * sq_n with Z = (1[y=o] - p_o)^2, so Var Z = E Z^2 - (p_o (1 - p_o))^2
    ez2 = p * (1 - p) ** 4 + (1 - p) * p**4
    var = ez2 - (p * (1 - p)) ** 2
    se = np.sqrt((samples * var * sq[:, None] ** 2).sum(0)) / (len(phi) * samples)
    assert (5 * se < 0.25 * closed).all()  # the tolerance is tight enough to catch a wrong estimator
    assert (np.abs(sampled - closed) < 5 * se).all()
    assert not np.allclose(sampled, closed, rtol=1e-6)  # and it really was sampled


def test_sampling_is_reproducible_with_a_generator():
    body, head = small_net()
    x = torch.randn(6, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    a = monte_carlo_fisher(body, head, x, label_samples=3, generator=torch.Generator().manual_seed(7))
    b = monte_carlo_fisher(body, head, x, label_samples=3, generator=torch.Generator().manual_seed(7))
    c = monte_carlo_fisher(body, head, x, label_samples=3, generator=torch.Generator().manual_seed(8))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_resnet18_length_finiteness_and_no_side_effects():
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    net = torchvision.models.resnet18(weights=None, num_classes=5)
    head = net.fc
    net.fc = nn.Identity()
    net.train()
    net.layer2.eval()
    layers = [(n, m) for n, m in covered_layers(net) if isinstance(m, nn.Conv2d)]
    assert len(layers) == 20 and sum(filter_counts(layers)) == 4800
    flags = [m.training for m in [*net.modules(), *head.modules()]]
    stats = {k: v.clone() for k, v in net.state_dict().items() if "running" in k}

    x = torch.randn(3, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    vec = monte_carlo_fisher(net, head, x, layers=layers, batch_size=2, generator=torch.Generator().manual_seed(0))

    assert vec.shape == (4800,) and vec.dtype == np.float64
    assert np.isfinite(vec).all() and (vec >= 0).all() and (vec > 0).mean() > 0.5
    assert all(p.grad is None for p in [*net.parameters(), *head.parameters()])
    assert all(p.requires_grad for p in [*net.parameters(), *head.parameters()])
    assert [m.training for m in [*net.modules(), *head.modules()]] == flags
    for k, v in net.state_dict().items():
        if k in stats:  # BatchNorm ran in eval mode: its statistics did not move
            assert torch.equal(v, stats[k]), k


def test_permuting_head_classes_leaves_exact_fisher_unchanged():
    body, head = small_net(num_classes=5)
    x = torch.randn(6, 3, 8, 8, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    before = monte_carlo_fisher(body, head, x, exact=True)
    perm = torch.tensor([3, 0, 4, 1, 2])
    with torch.no_grad():
        head.weight.copy_(head.weight[perm])
        head.bias.copy_(head.bias[perm])
    after = monte_carlo_fisher(body, head, x, exact=True)
    np.testing.assert_allclose(after, before, rtol=1e-12, atol=0)
    with_head = monte_carlo_fisher(body, head, x, layers=covered_layers(body) + [("head", head)], exact=True)
    np.testing.assert_allclose(with_head[: len(before)], before, rtol=1e-12, atol=0)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_input_raises(bad):
    body, head = small_net()
    x = torch.randn(4, 3, 8, 8, dtype=torch.float64)
    x[2, 1, 3, 3] = bad
    with pytest.raises(FloatingPointError):
        monte_carlo_fisher(body, head, x, generator=torch.Generator().manual_seed(0))
    with pytest.raises(FloatingPointError):
        monte_carlo_fisher(body, head, x, exact=True)


@pytest.mark.parametrize(
    "conv",
    [
        nn.Conv2d(4, 4, 3, padding=1, padding_mode="reflect"),
        nn.Conv2d(4, 4, 3, padding=1, groups=4, padding_mode="circular"),
    ],
)
def test_unsupported_convolutions_raise(conv):
    body = nn.Sequential(conv, nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
    with pytest.raises(NotImplementedError, match=f"'0'.*padding_mode='{conv.padding_mode}'"):
        monte_carlo_fisher(body, nn.Linear(4, 2), torch.randn(2, 4, 6, 6))


def test_in_place_modified_layer_output_raises():
    body = nn.Sequential(nn.Conv2d(2, 3, 3), nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1), nn.Flatten(1))
    with pytest.raises(RuntimeError, match="in place"):
        monte_carlo_fisher(body, nn.Linear(3, 2), torch.randn(2, 2, 5, 5))
