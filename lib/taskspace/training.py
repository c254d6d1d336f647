"""Training networks on a task: the probe on the source task, each expert fine-tuned from the probe."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from . import __version__
from .config import Settings
from .models import Network


@dataclass(frozen=True)
class AugmentSettings(Settings):
    """Training-time augmentation: random translation by up to ``crop_padding`` pixels, optional horizontal flips."""

    SECTION = "experts.train.augment"
    crop_padding: int
    hflip: bool


@dataclass(frozen=True)
class TrainingSettings(Settings):
    """SGD fine-tuning hyper-parameters (``probe.train``, ``experts.train``: the schema's ``$defs/training``)."""

    SECTION = "experts.train"
    epochs: int
    min_steps: int
    batch_size: int
    lr: float
    momentum: float
    weight_decay: float
    augment: AugmentSettings


def channel_stats(images: np.ndarray) -> dict[str, list[float]]:
    """Per-channel mean and std of uint8 images (N, H, W, 3), on the 0-1 scale."""
    x = images.reshape(-1, images.shape[-1]).astype(np.float64) / 255.0
    return {"mean": x.mean(0).tolist(), "std": np.maximum(x.std(0), 1e-3).tolist()}


def to_tensor(images: np.ndarray, normalization: dict[str, list[float]]) -> torch.Tensor:
    """uint8 (N, H, W, 3) -> normalised float32 (N, 3, H, W)."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float().div_(255.0)
    mean = torch.tensor(normalization["mean"]).view(1, -1, 1, 1)
    std = torch.tensor(normalization["std"]).view(1, -1, 1, 1)
    return (x - mean) / std


def augment(x: torch.Tensor, crop_padding: int, hflip: bool, generator: torch.Generator) -> torch.Tensor:
    """Random translation (reflect-pad then crop back) and optional horizontal flips, drawn from ``generator``."""
    n, _, h, w = x.shape
    if crop_padding > 0:
        padded = F.pad(x, [crop_padding] * 4, mode="reflect")
        offsets = torch.randint(0, 2 * crop_padding + 1, (n, 2), generator=generator)
        x = torch.stack([padded[i, :, dy : dy + h, dx : dx + w] for i, (dy, dx) in enumerate(offsets.tolist())])
    if hflip:
        flip = torch.rand(n, generator=generator) < 0.5
        x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
    return x


@torch.no_grad()
def evaluate(net: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int, device: torch.device) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``net`` (in eval mode) on (x, y)."""
    was_training = net.training
    net.eval()
    loss, correct = 0.0, 0
    for i in range(0, len(x), batch_size):
        logits = net(x[i : i + batch_size].to(device))
        target = y[i : i + batch_size].to(device)
        loss += F.cross_entropy(logits, target, reduction="sum").item()
        correct += (logits.argmax(1) == target).sum().item()
    net.train(was_training)
    return loss / max(len(x), 1), correct / max(len(x), 1)


def fit(
    net: Network,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    cfg: TrainingSettings | dict,
    seed: int,
    device: torch.device,
    x_test: torch.Tensor | None = None,
    y_test: torch.Tensor | None = None,
) -> list[dict]:
    """Train ``net`` in place with SGD + momentum and a cosine schedule; returns one metrics dict per epoch.

    An epoch is max(ceil(n / batch_size), ceil(min_steps / epochs)) steps, so tiny tasks still get enough updates.
    ``cfg``: the settings, or a training section (validated, defaults filled in).
    """
    cfg = TrainingSettings.from_config(cfg)
    generator = torch.Generator().manual_seed(seed)
    net.to(device).train()
    n = len(x_train)
    batch_size = min(cfg.batch_size, n)
    epochs = cfg.epochs
    steps_per_epoch = max(math.ceil(n / batch_size), math.ceil(cfg.min_steps / epochs))
    total = epochs * steps_per_epoch
    opt = torch.optim.SGD(
        net.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay, nesterov=True
    )
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / total)))
    aug = cfg.augment
    metrics, order, cursor = [], torch.randperm(n, generator=generator), 0
    for epoch in range(1, epochs + 1):
        start, seen, loss_sum, correct = time.perf_counter(), 0, 0.0, 0
        for _ in range(steps_per_epoch):
            if cursor + batch_size > n:
                order, cursor = torch.randperm(n, generator=generator), 0
            idx = order[cursor : cursor + batch_size]
            cursor += batch_size
            xb = augment(x_train[idx], aug.crop_padding, aug.hflip, generator)
            xb, yb = xb.to(device), y_train[idx].to(device)
            logits = net(xb)
            loss = F.cross_entropy(logits, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            seen += len(idx)
            loss_sum += loss.item() * len(idx)
            correct += (logits.argmax(1) == yb).sum().item()
        if not math.isfinite(loss_sum):
            raise FloatingPointError(f"training diverged at epoch {epoch} (loss {loss_sum}); lower the learning rate")
        row = {
            "epoch": epoch,
            "steps": steps_per_epoch,
            "lr": sched.get_last_lr()[0],
            "train_loss": loss_sum / seen,
            "train_accuracy": correct / seen,
            "seconds": time.perf_counter() - start,
        }
        if x_test is not None and len(x_test):
            row["test_loss"], row["test_accuracy"] = evaluate(net, x_test, y_test, 256, device)
        metrics.append(row)
    net.eval()
    return metrics


def checkpoint(net: Network, **fields) -> dict:
    """A checkpoint dict: CPU weights, the architecture and head size, plus ``fields`` (config, seed, task, ...)."""
    state = {k: v.detach().cpu() for k, v in net.state_dict().items()}
    return {
        "arch": net.arch,
        "num_classes": net.head.out_features,
        "state_dict": state,
        "taskspace_version": __version__,
        "torch_version": str(torch.__version__),
        **fields,
    }


def network_from_checkpoint(ckpt: dict) -> Network:
    """Rebuild the network stored in a checkpoint (on the CPU, eval mode).

    The architecture is built on the meta device and takes the checkpoint's tensors as they are, so no time goes
    into a random initialisation that would be overwritten.
    """
    with torch.device("meta"):
        net = Network(ckpt["arch"], ckpt["num_classes"])
    net.load_state_dict(ckpt["state_dict"], assign=True)
    return net.eval()
