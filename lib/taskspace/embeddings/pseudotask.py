"""PseudoTask (Wallace et al. 2021, Algorithm 1): Task2Vec without the task's labels.

The probe's own source classifier provides soft labels; a zero-initialised head on the probe features is fitted
to them, then the variational Task2Vec objective is minimised against soft labels recomputed on randomly
augmented views. The asymmetric score is d_sym(a, b) - alpha ||t_a|| (eq. 4).
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..config import Settings
from . import Embedding, pairwise_long, register_method, stack
from .distances import d_sym_matrix, norm_asym_matrix
from .task2vec import (
    FisherEmbedding,
    FisherFields,
    VariationalFields,
    check_sample_budget,
    monte_carlo_start,
    run_in_batches,
)

if TYPE_CHECKING:  # torch is imported where used: planning a workflow never needs it
    import torch
    from torch import nn


@dataclass(frozen=True)
class PseudoTaskSettings(Settings, FisherFields, VariationalFields):
    """The ``embeddings.pseudotask`` section: the soft-label head, the augmented views and the norm of the score."""

    SECTION = "embeddings.pseudotask"

    head_epochs: int
    head_min_steps: int
    head_lr: float
    head_batch_size: int
    norm: str
    augment: dict[str, Any]


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy against soft label distributions."""
    return -(targets * logits.log_softmax(dim=1)).sum(1).mean()


def fit_zero_head(
    features: torch.Tensor, soft: torch.Tensor, settings: PseudoTaskSettings, generator: torch.Generator
) -> nn.Linear:
    """A zero-initialised linear head fitted to soft labels for ``head_epochs`` epochs (at least ``head_min_steps``)."""
    import torch
    from torch import nn

    head = nn.Linear(features.shape[1], soft.shape[1])
    nn.init.zeros_(head.weight)
    nn.init.zeros_(head.bias)
    bs = settings.head_batch_size
    steps_per_epoch = math.ceil(len(features) / bs)
    epochs = max(settings.head_epochs, math.ceil(settings.head_min_steps / steps_per_epoch))
    opt = torch.optim.Adam(head.parameters(), lr=settings.head_lr)
    for _ in range(epochs):
        order = torch.randperm(len(features), generator=generator)
        for i in range(0, len(order), bs):
            j = order[i : i + bs]
            opt.zero_grad()
            soft_cross_entropy(head(features[j]), soft[j]).backward()
            opt.step()
    return head


@register_method("pseudotask")
class PseudoTask(FisherEmbedding):
    """Soft labels from the probe's source head; never reads the task's labels."""

    uses_labels = False
    distance_keys = ("alpha", "norm")
    settings_class = PseudoTaskSettings

    def embed(self, probe, images, labels, normalization, device, seed) -> Embedding:
        import torch

        from ..training import augment, to_tensor
        from .layers import trivial_embedding
        from .variational import variational_fisher

        s = self.settings
        check_sample_budget(len(images), s.min_samples, f"embedding method {self.name!r}")
        rng = np.random.default_rng(seed)
        idx = np.sort(rng.permutation(len(images))[: s.max_samples])
        x = to_tensor(images[idx], normalization)
        generator = torch.Generator().manual_seed(seed)
        teacher = copy.deepcopy(probe).to(device).eval()
        prefix, body, layers, attrs = self.split(probe, device)
        bs = s.batch_size
        soft = torch.softmax(run_in_batches(teacher, x, bs, device, "soft labels of the probe"), dim=1)
        inputs = run_in_batches(prefix, x, bs, device)
        features = run_in_batches(body, inputs, bs, device, "probe features")
        head = fit_zero_head(features, soft, s, generator).to(device)
        start = None
        if s.init == "monte_carlo":
            start = monte_carlo_start(body, head, inputs, layers, len(x), s, generator, device)
        crop_padding, hflip = s.augment["crop_padding"], s.augment["hflip"]

        @torch.no_grad()
        def views(xb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            v = augment(xb, crop_padding, hflip, generator).to(device)
            return prefix(v), torch.softmax(teacher(v), dim=1)

        def batches(epoch: int):
            order = torch.randperm(len(x), generator=generator)
            for i in range(0, len(order), bs):
                yield views(x[order[i : i + bs]])

        epochs = max(s.epochs, math.ceil(s.min_steps / math.ceil(len(x) / bs)))
        result = variational_fisher(
            body, head, batches, len(x), layers=layers, epochs=epochs, lr=s.lr, beta=s.beta,
            prior_scale=s.prior_scale, init_log_variance=start, generator=generator, device=device,
        )
        trivial = trivial_embedding(layers, len(x), s.beta, s.prior_scale)
        attrs.update(
            estimator="variational, soft labels of the probe's source head", n_samples=len(x), epochs=epochs,
            init=s.init,
            soft_label_confidence=float(soft.max(1).values.mean()),
            losses=json.dumps([round(v, 6) for v in result.losses]),
        )
        return Embedding(result.embedding, attrs, {"trivial": trivial})

    def distances(self, embeddings: dict[str, Embedding]) -> pd.DataFrame:
        names, vectors = stack(embeddings)
        alpha = self.settings.alpha
        relative = self.settings.norm == "relative"
        return pd.concat(
            [
                pairwise_long(names, d_sym_matrix(vectors), "sym"),
                pairwise_long(names, norm_asym_matrix(vectors, alpha, relative), "asym"),
            ],
            ignore_index=True,
        )
