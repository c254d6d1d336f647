"""The linear classifier on frozen features, and feature extraction."""

import numpy as np
import torch

from taskspace.models import Network
from taskspace.transfer import extract_features, fit_logistic, linear_probe_error, standardize


def test_logistic_regression_matches_its_optimality_condition():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(60, 5, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 3, (60,), generator=gen)
    l2 = 0.1
    w, b, iterations = fit_logistic(x, y, 3, l2=l2, max_iter=500, tol=1e-10)
    assert 0 < iterations < 500
    # At the optimum the gradient of mean CE + l2/2 |W|^2 vanishes: X^T (P - Y) / n + l2 W = 0 and sum(P - Y) = 0.
    p = torch.softmax(x @ w + b, 1)
    onehot = torch.nn.functional.one_hot(y, 3).double()
    assert torch.allclose(x.T @ (p - onehot) / 60 + l2 * w, torch.zeros_like(w), atol=1e-5)
    assert torch.allclose((p - onehot).mean(0), torch.zeros(3, dtype=torch.float64), atol=1e-5)


def test_separable_features_give_zero_error_and_noise_gives_chance():
    gen = torch.Generator().manual_seed(1)
    y = torch.arange(200) % 4
    centers = torch.eye(4, 16, dtype=torch.float64) * 10
    x = centers[y] + torch.randn(200, 16, generator=gen, dtype=torch.float64)
    res = linear_probe_error(x[:100], y[:100], x[100:], y[100:], 4, l2=1e-3, max_iter=200)
    assert res["test_error"] == 0.0 and res["train_accuracy"] == 1.0
    noise = torch.randn(200, 16, generator=gen, dtype=torch.float64)
    res = linear_probe_error(noise[:100], y[:100], noise[100:], y[100:], 4, l2=1.0, max_iter=200)
    assert 0.5 < res["test_error"] < 0.95


def test_standardize_uses_train_statistics_only():
    train = torch.tensor([[0.0, 5.0], [2.0, 5.0]], dtype=torch.float64)
    test = torch.tensor([[4.0, 6.0]], dtype=torch.float64)
    tr, te = standardize(train, test)
    assert torch.allclose(tr.mean(0), torch.zeros(2, dtype=torch.float64))
    assert te[0, 0].item() == 3.0  # (4 - 1) / 1
    assert te[0, 1].item() == 1.0  # constant feature: std replaced by 1


def test_features_are_batch_size_independent():
    torch.manual_seed(0)
    net = Network("resnet18", 5).eval()
    x = torch.randn(10, 3, 16, 16)
    a = extract_features(net, x, 3, torch.device("cpu"))
    b = extract_features(net, x, 10, torch.device("cpu"))
    assert a.shape == (10, 512) and a.dtype == torch.float64
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-4, atol=1e-5)


def test_features_of_uint8_images_normalised_per_batch_equal_those_of_the_normalised_tensor():
    import numpy as np

    from taskspace.models import Network
    from taskspace.training import to_tensor
    from taskspace.transfer import extract_features, image_features

    torch.manual_seed(0)
    net = Network("resnet18", 3).eval()
    images = np.random.default_rng(0).integers(0, 256, (10, 16, 16, 3), dtype=np.uint8)
    norm = {"mean": [0.4, 0.5, 0.6], "std": [0.2, 0.3, 0.25]}
    a = image_features(net, torch.from_numpy(images), norm, 4, torch.device("cpu"))
    b = extract_features(net, to_tensor(images, norm), 4, torch.device("cpu"))
    assert a.dtype == torch.float64 and a.shape == (10, 512)
    assert torch.equal(a, b)
