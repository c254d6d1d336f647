"""Transfer of a frozen expert to a task: features once, then a multinomial logistic regression on them."""

from __future__ import annotations

import numpy as np
import torch
from torch.nn import functional as F

from .models import Network


@torch.inference_mode()
def extract_features(net: Network, x: torch.Tensor, batch_size: int, device: torch.device) -> torch.Tensor:
    """Penultimate-layer features of ``net`` (eval mode) for every image of ``x``, as float64 on the CPU."""
    net.eval().to(device)
    out = [net.forward_features(x[i : i + batch_size].to(device)).double().cpu() for i in range(0, len(x), batch_size)]
    return torch.cat(out) if out else torch.empty(0, net.num_features, dtype=torch.float64)


def standardize(train: torch.Tensor, *others: torch.Tensor) -> list[torch.Tensor]:
    """Z-score every tensor with the mean/std of ``train`` (constant features get std 1)."""
    mean = train.mean(0, keepdim=True)
    std = train.std(0, keepdim=True, unbiased=False)
    std = torch.where(std > 1e-8, std, torch.ones_like(std))
    return [(t - mean) / std for t in (train, *others)]


def fit_logistic(
    features: torch.Tensor, labels: torch.Tensor, n_classes: int, l2: float, max_iter: int, tol: float = 1e-6
) -> tuple[torch.Tensor, torch.Tensor]:
    """Multinomial logistic regression, mean cross-entropy + l2/2 ||W||^2, solved by L-BFGS in float64.

    The objective is strictly convex (l2 > 0), so the solution is unique and deterministic; zero initialisation.
    """
    x = features.double()
    y = labels.long()
    w = torch.zeros(x.shape[1], n_classes, dtype=torch.float64, requires_grad=True)
    b = torch.zeros(n_classes, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS(
        [w, b], lr=1.0, max_iter=max_iter, tolerance_grad=tol, tolerance_change=1e-12, history_size=20,
        line_search_fn="strong_wolfe",
    )

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(x @ w + b, y) + 0.5 * l2 * (w * w).sum()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return w.detach(), b.detach()


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
    w, b = fit_logistic(tr, train_y, n_classes, l2, max_iter)
    train_acc = ((tr @ w + b).argmax(1) == train_y).double().mean().item()
    test_acc = ((te @ w + b).argmax(1) == test_y).double().mean().item()
    return {"test_error": 1.0 - test_acc, "test_accuracy": test_acc, "train_accuracy": train_acc}


def pair_row(expert: str, task: str, labels: np.ndarray, is_train: np.ndarray) -> dict:
    """The identifying columns of a transfer row."""
    return {
        "expert": expert,
        "task": task,
        "n_train": int(is_train.sum()),
        "n_test": int((~is_train).sum()),
        "n_classes": int(labels.max()) + 1 if len(labels) else 0,
    }
