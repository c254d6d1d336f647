"""MODEL2VEC (Task2Vec sect. 3.4): experts embedded next to tasks, m_i = F_i + b_i, with the model biases b_i
learned by a k-way cross-entropy that predicts each training target's best expert from -d_asym(m_i -> t).

Scored by cross-validation over targets: the biases used for a target are learned on other targets' transfer
columns only (leave-one-target-out by default, or K folds), so no target sees its own ground truth.
``fit_model2vec`` on all targets gives the biases a new task is ranked with.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..config import Settings
from . import Embedding, EmbeddingMethod, register_method
from .distances import d_asym_between


@dataclass(frozen=True)
class Model2VecSettings(Settings):
    """The ``embeddings.model2vec`` section: the base method, the fit and its cross-validation folds."""

    SECTION = "embeddings.model2vec"

    base: str
    alpha: float
    steps: int
    folds: int | None
    lr: float
    l2: float


def model2vec_settings(cfg: Model2VecSettings | dict) -> Model2VecSettings:
    """``cfg`` as settings (a section as written is validated, its defaults filled)."""
    return cfg if isinstance(cfg, Model2VecSettings) else Model2VecSettings.from_config(cfg)


@dataclass
class Model2VecFit:
    experts: list[str]
    model_embeddings: np.ndarray   # m_i, one row per expert
    biases: np.ndarray             # b_i = m_i - F_i
    temperature: float
    losses: list[float]


def fit_model2vec(
    experts: list[str],
    expert_embeddings: np.ndarray,
    expert_trivial: np.ndarray,
    targets: list[str],
    target_embeddings: np.ndarray,
    best: list[int],
    candidates: np.ndarray,
    cfg: Model2VecSettings | dict,
) -> Model2VecFit:
    """Learn b_i (scaled per coordinate by the mean embedding, so the l2 penalty is unit-free) and a temperature.

    best[k]: index into ``experts`` of target k's best candidate; candidates (targets x experts) bool mask.
    """
    import torch

    settings = model2vec_settings(cfg)
    f = torch.as_tensor(expert_embeddings, dtype=torch.float32)
    t0 = torch.as_tensor(expert_trivial, dtype=torch.float32)
    tasks = torch.as_tensor(target_embeddings, dtype=torch.float32)
    mask = torch.as_tensor(candidates, dtype=torch.bool).T  # experts x targets
    best_t = torch.as_tensor(best, dtype=torch.long)
    scale = torch.cat([f, tasks]).mean(0)
    alpha = settings.alpha
    u = torch.zeros_like(f, requires_grad=True)
    with torch.no_grad():
        d0 = d_asym_between(f, t0, tasks, alpha)[mask]
    # the temperature starts at the spread of the training distances (1 when there is a single one)
    start = float(torch.log(d0.std().clamp_min(1e-6))) if d0.numel() > 1 else 0.0
    log_temp = torch.tensor(start, dtype=torch.float32, requires_grad=True)
    opt = torch.optim.Adam([u, log_temp], lr=settings.lr)
    losses = []

    def model_embeddings() -> torch.Tensor:
        return torch.maximum(f + scale * u, 1e-6 * scale)  # m_i stays positive, as a Fisher embedding is

    for _ in range(settings.steps):
        opt.zero_grad()
        d = d_asym_between(model_embeddings(), t0, tasks, alpha)
        logits = (-d / log_temp.exp()).masked_fill(~mask, float("-inf")).T  # targets x experts
        loss = torch.nn.functional.cross_entropy(logits, best_t) + settings.l2 * u.pow(2).mean()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    m = model_embeddings().detach()
    if not torch.isfinite(m).all():
        raise FloatingPointError("MODEL2VEC: non-finite model embeddings")
    return Model2VecFit(experts, m.numpy(), (m - f).numpy(), float(log_temp.detach().exp()), losses)


def rank_experts(fit: Model2VecFit, trivial: np.ndarray, task_embedding: np.ndarray, alpha: float) -> np.ndarray:
    """d_asym(m_i -> t) of every expert for one task embedding."""
    import torch

    m = torch.as_tensor(fit.model_embeddings)
    d = d_asym_between(m, torch.as_tensor(trivial, dtype=torch.float32),
                       torch.as_tensor(task_embedding[None], dtype=torch.float32), alpha)
    return d[:, 0].numpy()


def _best_candidates(transfer: pd.DataFrame, experts: list[str], targets: list[str], generic: str):
    """(best expert index per target, candidate mask targets x experts) from the transfer table."""
    from ..selection import candidate_table

    cands = candidate_table(transfer, generic)
    cands = cands[cands["expert"].isin(experts) & cands["target"].isin(targets)]
    index = {e: i for i, e in enumerate(experts)}
    mask = np.zeros((len(targets), len(experts)), dtype=bool)
    best = []
    for k, t in enumerate(targets):
        group = cands[cands["target"] == t].sort_values(["test_error", "expert"], kind="mergesort")
        if group.empty:
            raise ValueError(f"MODEL2VEC: target {t!r} has no candidate expert in the transfer table")
        mask[k, [index[e] for e in group["expert"]]] = True
        best.append(index[group["expert"].iloc[0]])
    return best, mask


def held_out_distances(
    embeddings: dict[str, Embedding], transfer: pd.DataFrame, cfg: Model2VecSettings | dict, generic: str = "generic"
) -> tuple[pd.DataFrame, Model2VecFit]:
    """Distances of every expert to every target from biases learned without that target; plus the fit on all.

    Experts are the transfer table's experts (the generic one aside), targets its tasks; both need embeddings.
    ``folds`` = K deals the targets (in name order) round-robin into K folds, fold k holding targets k, k + K,
    ...: each fold's distances come from one fit on the other folds' targets (K + 1 fits instead of one per target;
    the fits cost experts x targets x embedding size a step each). None (the default) is one fold per target.
    """
    experts = sorted(set(transfer["expert"]) - {generic})
    targets = sorted(set(transfer["task"]))
    missing = sorted((set(experts) | set(targets)) - set(embeddings))
    if missing:
        raise ValueError(f"MODEL2VEC: no embedding for task(s) {missing}")
    vectors = np.stack([embeddings[n].vector for n in experts])
    trivial = np.stack([embeddings[n].extras["trivial"] for n in experts])
    target_vectors = np.stack([embeddings[n].vector for n in targets])
    best, mask = _best_candidates(transfer, experts, targets, generic)
    settings = model2vec_settings(cfg)
    folds = settings.folds
    n_folds = len(targets) if folds is None else min(int(folds), len(targets))
    if n_folds < 2:
        raise ValueError(f"MODEL2VEC: embeddings.model2vec.folds must be >= 2 (and there must be >= 2 targets), "
                         f"got folds={folds!r} with {len(targets)} target(s)")
    rows: dict[int, list] = {}
    for fold in range(n_folds):
        held = [k for k in range(len(targets)) if k % n_folds == fold]
        keep = [k for k in range(len(targets)) if k % n_folds != fold]
        fit = fit_model2vec(experts, vectors, trivial, [targets[i] for i in keep], target_vectors[keep],
                            [best[i] for i in keep], mask[keep], settings)
        for k in held:
            d = rank_experts(fit, trivial, target_vectors[k], settings.alpha)
            rows[k] = [("", e, targets[k], float(d[i])) for i, e in enumerate(experts) if e != targets[k]]
    full = fit_model2vec(experts, vectors, trivial, targets, target_vectors, best, mask, settings)
    table = [row for k in range(len(targets)) for row in rows[k]]
    return pd.DataFrame(table, columns=["kind", "source", "target", "distance"]), full


@register_method("model2vec")
class Model2Vec(EmbeddingMethod):
    """Learned from another method's embeddings (``base``) and the transfer matrix; embeds no task itself."""

    derived = True
    settings_class = Model2VecSettings

    @property
    def base(self) -> str:
        return self.settings.base
