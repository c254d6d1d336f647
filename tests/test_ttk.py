"""Task Tangent Kernel: MCR^2 against direct formulas, seeding, count sketch and task separation (known answers)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from taskspace.embeddings.ttk import (
    count_sketch,
    kernel_matrix,
    last_block,
    mcr2_loss,
    network_seed,
    random_network,
    task_gradients,
)
from taskspace.sampling import balanced_sample

FAST = dict(arch="resnet18", networks=3, batches=1, batch_size=32, sketch_dim=0)


def direct_mcr2(z: np.ndarray, y: np.ndarray, eps2: float, normalize: bool) -> float:
    """Eq. 8-10 literally, in float64 with d x d matrices (Z = features^T, no Sylvester identity)."""
    if normalize:
        z = z / np.linalg.norm(z, axis=1, keepdims=True)
    m, d = z.shape
    big = z.T
    rate = 0.5 * np.linalg.slogdet(np.eye(d) + d / (m * eps2) * big @ big.T)[1]
    rate_class = 0.0
    for cls in np.unique(y):
        zj = big[:, y == cls]
        mj = zj.shape[1]
        rate_class += mj / (2 * m) * np.linalg.slogdet(np.eye(d) + d / (mj * eps2) * zj @ zj.T)[1]
    return -rate + rate_class


def blob_task(per_class: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """16x16 images: class 0 a red Gaussian blob, class 1 a green one, at random places on noise."""
    yy, xx = torch.meshgrid(torch.arange(16.0), torch.arange(16.0), indexing="ij")
    colours = torch.tensor([[1.0, -1.0, -1.0], [-1.0, 1.0, -1.0]])
    images, labels = [], []
    for cls, colour in enumerate(colours):
        for _ in range(per_class):
            cy, cx = torch.rand(2, generator=gen) * 10 + 3
            blob = torch.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / 8.0)
            images.append(colour[:, None, None] * blob + 0.1 * torch.randn(3, 16, 16, generator=gen))
            labels.append(cls)
    return torch.stack(images), torch.tensor(labels)


def stripe_task(per_class: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """16x16 grey images: class 0 horizontal stripes, class 1 vertical stripes, random phase, on noise."""
    yy, xx = torch.meshgrid(torch.arange(16.0), torch.arange(16.0), indexing="ij")
    images, labels = [], []
    for cls, axis in enumerate((yy, xx)):
        for _ in range(per_class):
            phase = torch.rand(1, generator=gen) * 2 * np.pi
            stripes = torch.sin(1.2 * axis + phase).expand(3, 16, 16)
            images.append(stripes + 0.1 * torch.randn(3, 16, 16, generator=gen))
            labels.append(cls)
    return torch.stack(images), torch.tensor(labels)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Run single-threaded: these tensors are tiny, and two threads on a shared, busy CPU are many times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def synthetic_gradients() -> list[np.ndarray]:
    """Kernel of blob tasks A1, A2 (same distribution, other samples), stripe task B, and A1 reordered."""
    gen = torch.Generator().manual_seed(0)
    a1, a2, b = blob_task(16, gen), blob_task(16, gen), stripe_task(16, gen)
    order = torch.randperm(32, generator=gen)
    a1_shuffled = (a1[0][order], a1[1][order])
    return [task_gradients(*task, seed=0, **FAST) for task in (a1, a2, b, a1_shuffled)]


@pytest.fixture(scope="module")
def synthetic_kernel(synthetic_gradients) -> np.ndarray:
    """The kernel matrix of the synthetic tasks."""
    return kernel_matrix(synthetic_gradients)


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_mcr2_lower_for_orthogonal_class_subspaces(seed):
    gen = torch.Generator().manual_seed(seed)
    classes, dim_per_class, per_class = 4, 6, 20
    basis = torch.linalg.qr(torch.randn(32, 32, generator=gen))[0]
    feats, labels = [], []
    for c in range(classes):
        sub = basis[:, c * dim_per_class:(c + 1) * dim_per_class]
        feats.append(torch.randn(per_class, dim_per_class, generator=gen) @ sub.T)
        labels += [c] * per_class
    z, y = torch.cat(feats), torch.tensor(labels)
    shuffled = y[torch.randperm(len(y), generator=gen)]
    assert mcr2_loss(z, y) < mcr2_loss(z, shuffled) - 1.0


@pytest.mark.parametrize("m, d", [(12, 20), (60, 8)])
@pytest.mark.parametrize("normalize", [True, False])
def test_mcr2_matches_direct_formula(m, d, normalize):
    gen = torch.Generator().manual_seed(m + d)
    z = torch.randn(m, d, generator=gen, dtype=torch.float64)
    y = torch.arange(m) % 3
    got = mcr2_loss(z, y, eps2=0.3, normalize=normalize)
    want = direct_mcr2(z.numpy(), y.numpy(), 0.3, normalize)
    assert got.item() == pytest.approx(want, rel=1e-10, abs=1e-10)
    z32 = z.float().requires_grad_(True)
    mcr2_loss(z32, y, eps2=0.3, normalize=normalize).backward()
    assert z32.grad is not None and torch.isfinite(z32.grad).all() and z32.grad.abs().sum() > 0


def test_kernel_matrix_known_values():
    rng = np.random.default_rng(0)
    g = rng.normal(size=(2, 50))
    h = rng.normal(size=(2, 50))
    k = kernel_matrix([g, 3 * g, -g, h])
    assert k[0, 1] == pytest.approx(1.0) and k[0, 2] == pytest.approx(-1.0)
    cos = (g * h).sum(1) / np.linalg.norm(g, axis=1) / np.linalg.norm(h, axis=1)
    assert k[0, 3] == pytest.approx(cos.mean())
    assert np.array_equal(k, k.T) and np.all(np.diag(k) == 1.0) and np.all(np.abs(k) <= 1.0)


def test_task_kernel_with_itself_is_one(synthetic_kernel):
    k = synthetic_kernel
    assert np.all(np.diag(k) == 1.0)
    assert np.array_equal(k, k.T) and np.all(np.abs(k) <= 1.0)
    assert k[0, 3] == pytest.approx(1.0, abs=1e-4)


def test_full_gradient_is_the_last_block(synthetic_gradients):
    size = sum(p.numel() for p in last_block(random_network("resnet18", 0)).parameters())
    assert size > 4_000_000
    assert all(g.shape == (3, size) and g.dtype == np.float32 for g in synthetic_gradients)


def test_random_network_depends_only_on_seed():
    one, two, other = random_network("resnet18", 7), random_network("resnet18", 7), random_network("resnet18", 8)
    same = [torch.equal(p, q) for p, q in zip(one.parameters(), two.parameters())]
    assert all(same)
    assert not torch.equal(last_block(one).conv1.weight, last_block(other).conv1.weight)
    assert isinstance(one.fc, torch.nn.Identity)
    assert network_seed(0, 1) == network_seed(0, 1) != network_seed(0, 2) != network_seed(1, 1)


def test_task_gradients_deterministic_and_networks_shared():
    gen = torch.Generator().manual_seed(5)
    images, labels = blob_task(4, gen)
    before = torch.random.get_rng_state()
    first = task_gradients(images, labels, arch="resnet18", networks=2, batch_size=8, sketch_dim=256, seed=3)
    assert torch.equal(before, torch.random.get_rng_state())
    again = task_gradients(images, labels, arch="resnet18", networks=2, batch_size=8, sketch_dim=256, seed=3)
    alone = task_gradients(images, labels, arch="resnet18", networks=1, batch_size=8, sketch_dim=256, seed=3)
    other = task_gradients(images, labels, arch="resnet18", networks=1, batch_size=8, sketch_dim=256, seed=4)
    assert first.shape == (2, 256) and first.dtype == np.float32
    assert np.array_equal(first, again)
    assert np.array_equal(first[:1], alone)
    assert not np.allclose(first[:1], other)


def test_count_sketch_preserves_cosine():
    gen = torch.Generator().manual_seed(0)
    n = 400_000
    u = torch.randn(n, generator=gen, dtype=torch.float64)
    v = torch.randn(n, generator=gen, dtype=torch.float64)
    v = v - (v @ u) / (u @ u) * u
    x, y = u / u.norm(), 0.6 * u / u.norm() + 0.8 * v / v.norm()

    def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
        return float(a @ b / (a.norm() * b.norm()))

    assert cosine(x, y) == pytest.approx(0.6, abs=1e-12)
    assert cosine(count_sketch(x, 0, 1), count_sketch(y, 0, 1)) == pytest.approx(0.6, abs=1e-12)
    sx, sy = count_sketch(x, 16384, 1), count_sketch(y, 16384, 1)
    assert sx.shape == (16384,)
    assert abs(cosine(sx, sy) - 0.6) < 0.05
    assert abs(cosine(count_sketch(x, 16384, 1), count_sketch(y, 16384, 2))) < 0.05


def test_kernel_separates_task_distributions(synthetic_kernel):
    k = synthetic_kernel
    assert k[0, 1] > k[0, 2] and k[0, 1] > k[1, 2]


def test_balanced_batches():
    labels = np.array([0] * 50 + [1] * 6 + [2] * 30)
    idx = balanced_sample(labels, 30, np.random.default_rng(0), fill="random")
    assert len(np.unique(idx)) == 30
    counts = np.bincount(labels[idx])
    assert counts[1] == 6 and counts[0] >= 10 and counts[2] >= 10 and counts.sum() == 30


def test_rejects_single_class_and_non_finite_images():
    images = torch.randn(6, 3, 16, 16)
    with pytest.raises(ValueError, match="2 classes"):
        task_gradients(images, torch.zeros(6, dtype=torch.int64), networks=1)
    images[0, 0, 0, 0] = float("nan")
    with pytest.raises(FloatingPointError, match="non-finite"):
        task_gradients(images, torch.tensor([0, 1] * 3), networks=1)
