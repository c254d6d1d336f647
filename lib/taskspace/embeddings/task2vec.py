"""Task2Vec (Achille et al. 2019): the diagonal Fisher of the probe's conv filters on a task.

Two registered methods share the pipeline (sample budget, head fit, optional frozen prefix) and differ in the
estimator: ``task2vec`` is the variational "robust Fisher" of sect. 3.1 (the estimator the paper reports),
``task2vec_mc`` the Monte-Carlo estimator with labels sampled from the model and per-sample squared gradients.

Both embeddings live in the same units: embedding = F + beta / (N lambda_l^2), the second-order optimum of the
variational objective, where the prior term is the trivial embedding t_0 (what a task with constant loss gets).
The Monte-Carlo embedding adds t_0 to its Fisher estimate so that both share t_0 and d_asym.
"""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..errors import TaskDataError
from . import Embedding, EmbeddingMethod, pairwise_long, register_method, stack
from .distances import d_asym_matrix, d_sym_matrix

if TYPE_CHECKING:  # torch is imported where used: planning a workflow never needs it
    import torch
    from torch import nn


def balanced_subset(labels: np.ndarray, budget: int, generator: np.random.Generator) -> np.ndarray:
    """Indices of at most ``budget`` samples, as equal per class as the class sizes allow (sorted)."""
    classes = np.unique(labels)
    pools = [generator.permutation(np.flatnonzero(labels == c)) for c in classes]
    if budget >= len(labels):
        return np.arange(len(labels))
    chosen: list[np.ndarray] = []
    remaining, open_pools = budget, [p for p in pools if len(p)]
    while remaining > 0 and open_pools:
        share = max(1, remaining // len(open_pools))
        nxt = []
        for pool in open_pools:
            take = pool[: min(share, remaining)]
            chosen.append(take)
            remaining -= len(take)
            if len(pool) > len(take):
                nxt.append(pool[len(take) :])
            if remaining == 0:
                break
        open_pools = nxt
    return np.sort(np.concatenate(chosen))


def check_sample_budget(n: int, cfg: dict, what: str) -> None:
    """A task with fewer samples than ``min_samples`` cannot be embedded reliably: stop, naming the config key."""
    if n < int(cfg["min_samples"]):
        raise TaskDataError(f"{what}: {n} training images, fewer than the sample budget's min_samples={cfg['min_samples']}")


def run_in_batches(module: nn.Module, x: torch.Tensor, batch_size: int, device, what: str = "") -> torch.Tensor:
    """``module`` (eval mode) over ``x`` in batches, results on the CPU; ``what`` names outputs checked finite."""
    import torch

    module.eval()
    with torch.no_grad():
        out = torch.cat([module(x[i : i + batch_size].to(device)).cpu() for i in range(0, len(x), batch_size)])
    if what and not torch.isfinite(out).all():
        raise FloatingPointError(f"non-finite {what}")
    return out


def fit_head(features: torch.Tensor, labels: torch.Tensor, n_classes: int, l2: float, max_iter: int) -> tuple[nn.Linear, float]:
    """The task's linear classifier on frozen features (L-BFGS on standardised features, folded back to a Linear)."""
    import torch
    from torch import nn

    from ..transfer import fit_logistic

    mean, std = features.double().mean(0), features.double().std(0).clamp_min(1e-6)
    z = (features.double() - mean) / std
    w, b, _ = fit_logistic(z, labels, n_classes, l2, max_iter)
    head = nn.Linear(features.shape[1], n_classes).double()
    with torch.no_grad():
        head.weight.copy_((w / std[:, None]).T)
        head.bias.copy_(b - (mean / std) @ w)
    accuracy = float(((z @ w + b).argmax(1) == labels).double().mean())
    return head.float(), accuracy


def trivial_embedding(layers: list[tuple[str, nn.Module]], n_samples: int, beta: float, prior_scale: float) -> np.ndarray:
    """t_0 per filter: beta / (N lambda_l^2), lambda_l^2 = prior_scale^2 * the layer's mean squared weight."""
    out = []
    for _, layer in layers:
        prior = prior_scale**2 * float(layer.weight.detach().double().pow(2).mean())
        out.append(np.full(layer.weight.shape[0], beta / (n_samples * prior)))
    return np.concatenate(out)


def monte_carlo_start(body, head, inputs, layers, n_samples: int, cfg: dict, generator, device) -> np.ndarray:
    """Per-filter log-variances at the second-order optimum for a Monte-Carlo Fisher estimate:
    log(beta / (N (F + t_0))). Starting the variational fit there leaves it to correct what the local estimate
    misses, instead of spending its steps travelling from an arbitrary start."""
    from .fisher import monte_carlo_fisher

    fisher = monte_carlo_fisher(body, head, inputs, layers=layers, batch_size=int(cfg["batch_size"]),
                                generator=generator, device=device)
    beta = float(cfg["beta"])
    return np.log(beta / n_samples / (fisher + trivial_embedding(layers, n_samples, beta, float(cfg["prior_scale"]))))


class FisherEmbedding(EmbeddingMethod):
    """Shared by the Fisher-based methods: frozen prefix, covered conv layers, d_sym / d_asym distances."""

    distance_keys = ("alpha",)

    def split(self, probe, device) -> tuple[nn.Module, nn.Module, list[tuple[str, nn.Module]], dict]:
        """(prefix, body, covered conv layers, attrs describing the covered filters)."""
        from torch import nn

        from ..models import qualified_names, split_features
        from .fisher import covered_layers

        probe = probe.to(device).eval()
        prefix, body, skipped = split_features(probe, int(self.cfg.get("skip_layers", 0)))
        layers = [(n, m) for n, m in covered_layers(body) if isinstance(m, nn.Conv2d)]
        names = qualified_names(probe, layers)
        attrs = {
            "skipped_units": json.dumps(skipped),
            "filters": json.dumps([[n, int(m.weight.shape[0])] for n, (_, m) in zip(names, layers)]),
            "n_filters": int(sum(m.weight.shape[0] for _, m in layers)),
        }
        return prefix, body, layers, attrs

    def distances(self, embeddings: dict[str, Embedding]) -> pd.DataFrame:
        names, vectors = stack(embeddings)
        _, trivial = stack(embeddings, "trivial")
        alpha = float(self.cfg.get("alpha", 0.15))
        return pd.concat(
            [
                pairwise_long(names, d_sym_matrix(vectors), "sym"),
                pairwise_long(names, d_asym_matrix(vectors, trivial, alpha), "asym"),
            ],
            ignore_index=True,
        )


class Task2VecBase(FisherEmbedding):
    """Sample budget, cached prefix activations and the fitted head; ``estimate`` is the estimator."""

    def embed(self, probe, images, labels, normalization, device, seed) -> Embedding:
        import torch

        from ..training import to_tensor

        cfg = self.cfg
        check_sample_budget(len(labels), cfg, f"embedding method {self.name!r}")
        idx = balanced_subset(labels, int(cfg["max_samples"]), np.random.default_rng(seed))
        y = torch.from_numpy(np.unique(labels, return_inverse=True)[1][idx]).long()
        prefix, body, layers, attrs = self.split(probe, device)
        bs = int(cfg["batch_size"])
        inputs = run_in_batches(prefix, to_tensor(images[idx], normalization), bs, device)
        features = run_in_batches(body, inputs, bs, device, "probe features")
        head, accuracy = fit_head(features, y, int(y.max()) + 1, float(cfg["head"]["l2"]), int(cfg["head"]["max_iter"]))
        head = head.to(device)
        generator = torch.Generator().manual_seed(seed)
        vector, extra_attrs = self.estimate(body, head, inputs, y, layers, generator, device)
        trivial = trivial_embedding(layers, len(y), float(cfg["beta"]), float(cfg["prior_scale"]))
        attrs.update(n_samples=len(y), n_classes=int(y.max()) + 1, head_train_accuracy=accuracy, **extra_attrs)
        return Embedding(vector, attrs, {"trivial": trivial})

    def estimate(self, body, head, inputs, labels, layers, generator, device) -> tuple[np.ndarray, dict]:
        raise NotImplementedError


@register_method("task2vec")
class Task2VecVariational(Task2VecBase):
    """The variational (robust Fisher) estimator: per-filter noise variances fitted with the local
    reparametrisation trick and a KL term to an isotropic per-layer prior; embedding = beta / (N sigma^2)."""

    def estimate(self, body, head, inputs, labels, layers, generator, device):
        import torch

        from .variational import variational_fisher

        cfg, bs = self.cfg, int(self.cfg["batch_size"])
        epochs = max(int(cfg["epochs"]), math.ceil(int(cfg["min_steps"]) / math.ceil(len(labels) / bs)))

        def batches(epoch: int):
            order = torch.randperm(len(labels), generator=generator)
            for i in range(0, len(order), bs):
                j = order[i : i + bs]
                yield inputs[j], labels[j]

        start = None
        if cfg["init"] == "monte_carlo":
            start = monte_carlo_start(body, head, inputs, layers, len(labels), cfg, generator, device)
        result = variational_fisher(
            body, head, batches, len(labels), layers=layers, epochs=epochs, lr=float(cfg["lr"]),
            beta=float(cfg["beta"]), prior_scale=float(cfg["prior_scale"]), init_log_variance=start,
            generator=generator, device=device,
        )
        return result.embedding, {"estimator": "variational", "epochs": epochs, "init": cfg["init"],
                                  "losses": json.dumps([round(v, 6) for v in result.losses])}


@register_method("task2vec_mc")
class Task2VecMonteCarlo(Task2VecBase):
    """The Monte-Carlo estimator: labels sampled from the model, per-sample squared gradients per filter."""

    def estimate(self, body, head, inputs, labels, layers, generator, device):
        from .fisher import monte_carlo_fisher

        cfg = self.cfg
        fisher = monte_carlo_fisher(
            body, head, inputs, layers=layers, batch_size=int(cfg["batch_size"]),
            label_samples=int(cfg["label_samples"]), generator=generator, device=device,
        )
        trivial = trivial_embedding(layers, len(labels), float(cfg["beta"]), float(cfg["prior_scale"]))
        return fisher + trivial, {"estimator": "monte_carlo", "label_samples": int(cfg["label_samples"])}
