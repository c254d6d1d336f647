"""Transfer of a frozen expert to a task: features once, then a multinomial logistic regression on them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .config import Settings
from .linalg import dot, matmul
from .models import Network


@dataclass(frozen=True)
class TransferSettings(Settings):
    """The ``transfer`` section: the linear classifier's penalty and iterations, the forward batch, the scores."""

    SECTION = "transfer"

    l2: float
    max_iter: int
    batch_size: int
    scores: tuple[str, ...]


@torch.inference_mode()
def extract_features(net: Network, x: torch.Tensor, batch_size: int, device: torch.device) -> torch.Tensor:
    """Penultimate-layer features of ``net`` (eval mode) for every image of ``x``, as float64 on the CPU."""
    net.eval().to(device)
    out = [net.forward_features(x[i : i + batch_size].to(device)).double().cpu() for i in range(0, len(x), batch_size)]
    return torch.cat(out) if out else torch.empty(0, net.num_features, dtype=torch.float64)


@torch.inference_mode()
def image_features(
    net: Network, images: torch.Tensor, normalization: dict, batch_size: int, device: torch.device
) -> torch.Tensor:
    """Penultimate features of uint8 images (N, H, W, 3), as float64 on the CPU. The images stay uint8 where they
    are (put them on the job's device once, to serve several networks) and each batch is converted and normalised
    on ``device``, exactly as :func:`taskspace.training.to_tensor` does."""
    net.eval().to(device)
    mean = torch.tensor(normalization["mean"], device=device).view(1, -1, 1, 1)
    std = torch.tensor(normalization["std"], device=device).view(1, -1, 1, 1)
    out = []
    for i in range(0, len(images), batch_size):
        x = images[i : i + batch_size].to(device, non_blocking=True).permute(0, 3, 1, 2).float().div_(255.0)
        out.append(net.forward_features((x - mean) / std).double().cpu())
    return torch.cat(out) if out else torch.empty(0, net.num_features, dtype=torch.float64)


def standardize(train: torch.Tensor, *others: torch.Tensor) -> list[torch.Tensor]:
    """Z-score every tensor with the mean/std of ``train`` (constant features get std 1)."""
    mean = train.mean(0, keepdim=True)
    std = train.std(0, keepdim=True, unbiased=False)
    std = torch.where(std > 1e-8, std, torch.ones_like(std))
    return [(t - mean) / std for t in (train, *others)]


def _logistic_objective(x: np.ndarray, onehot: np.ndarray, l2: float):
    """Mean cross-entropy + l2/2 ||W||^2 of a multinomial logistic model, with its gradient, over theta = [W; b]
    (products through :mod:`taskspace.linalg`, never numpy's BLAS)."""
    n, d = x.shape
    c = onehot.shape[1]

    def f(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[: d * c].reshape(d, c), theta[d * c :]
        z = matmul(x, w) + b
        zmax = z.max(1, keepdims=True)
        e = np.exp(z - zmax)
        s = e.sum(1, keepdims=True)
        lse = np.log(s) + zmax
        loss = float((lse[:, 0] - (z * onehot).sum(1)).mean() + 0.5 * l2 * (w * w).sum())
        g = (e / s - onehot) / n
        return loss, np.concatenate([(matmul(x.T, g) + l2 * w).ravel(), g.sum(0)])

    return f


def lbfgs(f, theta: np.ndarray, max_iter: int, tol: float, history: int = 10) -> tuple[np.ndarray, int]:
    """Minimise a smooth convex ``f`` (returning value and gradient) by L-BFGS with a backtracking Armijo search.

    Stops when the largest gradient component is below ``tol`` or after ``max_iter`` iterations; deterministic. Inner
    products go through :mod:`taskspace.linalg`, never numpy's BLAS; each pair's s.y is computed once.
    """
    value, grad = f(theta)
    pairs: list[tuple[np.ndarray, np.ndarray, float]] = []  # (s, y, s.y) of the last ``history`` steps
    for it in range(max_iter):
        if np.abs(grad).max() <= tol:
            return theta, it
        q = grad.copy()
        alphas = []
        for s, y, sy in reversed(pairs):
            a = dot(s, q) / sy
            alphas.append(a)
            q -= a * y
        if pairs:
            _, y, sy = pairs[-1]
            q *= sy / dot(y, y)
        for (s, y, sy), a in zip(pairs, reversed(alphas)):
            q += (a - dot(y, q) / sy) * s
        direction = -q
        slope = dot(grad, direction)
        if slope >= 0:  # not a descent direction (numerical trouble): restart from steepest descent
            pairs.clear()
            direction, slope = -grad, -dot(grad, grad)
        step = 1.0 if pairs else min(1.0, 1.0 / max(np.abs(grad).sum(), 1e-12))
        while True:
            new_theta = theta + step * direction
            new_value, new_grad = f(new_theta)
            if new_value <= value + 1e-4 * step * slope or step < 1e-12:
                break
            step *= 0.5
        s, y = new_theta - theta, new_grad - grad
        sy = dot(s, y)
        if sy > 1e-12:
            pairs.append((s, y, sy))
            if len(pairs) > history:
                pairs.pop(0)
        if value - new_value <= 1e-15 * max(1.0, abs(value)):
            return new_theta, it + 1
        theta, value, grad = new_theta, new_value, new_grad
    return theta, max_iter


def fit_logistic(
    features: torch.Tensor, labels: torch.Tensor, n_classes: int, l2: float, max_iter: int, tol: float = 1e-6
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Multinomial logistic regression, mean cross-entropy + l2/2 ||W||^2, solved by L-BFGS in float64.

    The objective is strictly convex (l2 > 0), so the solution is unique; zero initialisation, deterministic.
    Returns the weights, the bias and the iterations used (``max_iter`` when the tolerance was not reached).
    """
    x = features.double().numpy()
    onehot = np.eye(n_classes)[labels.long().numpy()]
    d = x.shape[1]
    theta, iterations = lbfgs(
        _logistic_objective(x, onehot, l2), np.zeros(d * n_classes + n_classes), max_iter, tol
    )
    w = torch.from_numpy(theta[: d * n_classes].reshape(d, n_classes).copy())
    return w, torch.from_numpy(theta[d * n_classes :].copy()), iterations


def linear_probe_error(
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    n_classes: int,
    l2: float,
    max_iter: int,
) -> dict[str, float]:
    """Fit the linear classifier on the train features, score it on the test features."""
    tr, te = standardize(train_x, test_x)
    w, b, iterations = fit_logistic(tr, train_y, n_classes, l2, max_iter)
    train_acc = ((tr @ w + b).argmax(1) == train_y).double().mean().item()
    test_acc = ((te @ w + b).argmax(1) == test_y).double().mean().item()
    return {"test_error": 1.0 - test_acc, "test_accuracy": test_acc, "train_accuracy": train_acc,
            "fit_iterations": iterations}


def pair_row(expert: str, task: str, labels: np.ndarray, is_train: np.ndarray) -> dict:
    """The identifying columns of a transfer row."""
    return {
        "expert": expert,
        "task": task,
        "n_train": int(is_train.sum()),
        "n_test": int((~is_train).sum()),
        "n_classes": int(labels.max()) + 1 if len(labels) else 0,
    }
