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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..config import Settings
from ..errors import TaskDataError
from . import Embedding, EmbeddingMethod, pairwise_long, register_method, stack
from .distances import d_asym_matrix, d_sym_matrix

if TYPE_CHECKING:  # torch is imported where used: planning a workflow never needs it
    import torch
    from torch import nn


@dataclass(frozen=True)
class FisherFields:
    """The keys every Fisher-based method's section has (the probe, the sample budget, the prior, the distance)."""

    probe: str
    skip_layers: int
    max_samples: int
    min_samples: int
    batch_size: int
    beta: float
    prior_scale: float
    alpha: float


@dataclass(frozen=True)
class VariationalFields:
    """The keys of the variational fit: its passes, least steps, learning rate and starting point."""

    epochs: int
    min_steps: int
    lr: float
    init: str


@dataclass(frozen=True)
class Task2VecSettings(Settings, FisherFields, VariationalFields):
    """The ``embeddings.task2vec`` section: the variational estimator."""

    SECTION = "embeddings.task2vec"

    head: dict[str, Any]


@dataclass(frozen=True)
class Task2VecMCSettings(Settings, FisherFields):
    """The ``embeddings.task2vec_mc`` section: the Monte-Carlo estimator."""

    SECTION = "embeddings.task2vec_mc"

    head: dict[str, Any]
    label_samples: int


def check_sample_budget(n: int, min_samples: int, what: str) -> None:
    """A task with fewer samples than ``min_samples`` cannot be embedded reliably: stop, naming the config key."""
    if n < min_samples:
        raise TaskDataError(f"{what}: {n} training images, fewer than the sample budget's min_samples={min_samples}")


def run_in_batches(module: nn.Module, x: torch.Tensor, batch_size: int, device, what: str = "") -> torch.Tensor:
    """``module`` (eval mode) over ``x`` in batches, results on the CPU; ``what`` names outputs checked finite."""
    import torch

    module.eval()
    with torch.no_grad():
        out = torch.cat([module(x[i : i + batch_size].to(device)).cpu() for i in range(0, len(x), batch_size)])
    if what and not torch.isfinite(out).all():
        raise FloatingPointError(f"non-finite {what}")
    return out


def fit_head(
    features: torch.Tensor, labels: torch.Tensor, n_classes: int, l2: float, max_iter: int
) -> tuple[nn.Linear, float]:
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


def monte_carlo_start(
    body, head, inputs, layers, n_samples: int, settings: FisherFields, generator, device
) -> np.ndarray:
    """Per-filter log-variances at the second-order optimum for a Monte-Carlo Fisher estimate:
    log(beta / (N (F + t_0))). Starting the variational fit there leaves it to correct what the local estimate
    misses, instead of spending its steps travelling from an arbitrary start."""
    from .fisher import monte_carlo_fisher
    from .layers import trivial_embedding

    fisher = monte_carlo_fisher(body, head, inputs, layers=layers, batch_size=settings.batch_size,
                                generator=generator, device=device)
    beta = settings.beta
    return np.log(beta / n_samples / (fisher + trivial_embedding(layers, n_samples, beta, settings.prior_scale)))


class FisherEmbedding(EmbeddingMethod):
    """Shared by the Fisher-based methods: frozen prefix, covered conv layers, d_sym / d_asym distances."""

    distance_keys = ("alpha",)

    def split(self, probe, device) -> tuple[nn.Module, nn.Module, list[tuple[str, nn.Module]], dict]:
        """(prefix, body, covered conv layers, attrs describing the covered filters)."""
        from ..models import qualified_names, split_features
        from .layers import conv_layers

        probe = probe.to(device).eval()
        prefix, body, skipped = split_features(probe, self.settings.skip_layers)
        layers = conv_layers(body)
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
        alpha = self.settings.alpha
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

        from ..sampling import balanced_sample
        from ..training import to_tensor
        from .layers import trivial_embedding

        s = self.settings
        check_sample_budget(len(labels), s.min_samples, f"embedding method {self.name!r}")
        idx = balanced_sample(labels, s.max_samples, np.random.default_rng(seed))
        y = torch.from_numpy(np.unique(labels, return_inverse=True)[1][idx]).long()
        prefix, body, layers, attrs = self.split(probe, device)
        inputs = run_in_batches(prefix, to_tensor(images[idx], normalization), s.batch_size, device)
        features = run_in_batches(body, inputs, s.batch_size, device, "probe features")
        head, accuracy = fit_head(features, y, int(y.max()) + 1, s.head["l2"], s.head["max_iter"])
        head = head.to(device)
        generator = torch.Generator().manual_seed(seed)
        vector, extra_attrs = self.estimate(body, head, inputs, y, layers, generator, device)
        trivial = trivial_embedding(layers, len(y), s.beta, s.prior_scale)
        attrs.update(n_samples=len(y), n_classes=int(y.max()) + 1, head_train_accuracy=accuracy, **extra_attrs)
        return Embedding(vector, attrs, {"trivial": trivial})

    def estimate(self, body, head, inputs, labels, layers, generator, device) -> tuple[np.ndarray, dict]:
        raise NotImplementedError


@register_method("task2vec")
class Task2VecVariational(Task2VecBase):
    """The variational (robust Fisher) estimator: per-filter noise variances fitted with the local
    reparametrisation trick and a KL term to an isotropic per-layer prior; embedding = beta / (N sigma^2)."""

    settings_class = Task2VecSettings

    def estimate(self, body, head, inputs, labels, layers, generator, device):
        import torch

        from .variational import variational_fisher

        s = self.settings
        bs = s.batch_size
        epochs = max(s.epochs, math.ceil(s.min_steps / math.ceil(len(labels) / bs)))

        def batches(epoch: int):
            order = torch.randperm(len(labels), generator=generator)
            for i in range(0, len(order), bs):
                j = order[i : i + bs]
                yield inputs[j], labels[j]

        start = None
        if s.init == "monte_carlo":
            start = monte_carlo_start(body, head, inputs, layers, len(labels), s, generator, device)
        result = variational_fisher(
            body, head, batches, len(labels), layers=layers, epochs=epochs, lr=s.lr, beta=s.beta,
            prior_scale=s.prior_scale, init_log_variance=start, generator=generator, device=device,
        )
        return result.embedding, {"estimator": "variational", "epochs": epochs, "init": s.init,
                                  "losses": json.dumps([round(v, 6) for v in result.losses])}


@register_method("task2vec_mc")
class Task2VecMonteCarlo(Task2VecBase):
    """The Monte-Carlo estimator: labels sampled from the model, per-sample squared gradients per filter."""

    settings_class = Task2VecMCSettings

    def estimate(self, body, head, inputs, labels, layers, generator, device):
        from .fisher import monte_carlo_fisher
        from .layers import trivial_embedding

        s = self.settings
        fisher = monte_carlo_fisher(
            body, head, inputs, layers=layers, batch_size=s.batch_size, label_samples=s.label_samples,
            generator=generator, device=device,
        )
        trivial = trivial_embedding(layers, len(labels), s.beta, s.prior_scale)
        return fisher + trivial, {"estimator": "monte_carlo", "label_samples": s.label_samples}
