"""The study's shape: which tasks get an expert, and the meta-tasks (target x expert transfer matrices) scored.

The Task2Vec paper embedded all of its 1,460 tasks and trained 156 experts, but evaluated transfer only within
its meta-tasks (iNat+CUB: 50 targets x 50 experts; Mixed: 50 x 26). ``experts.tasks`` (and
``experts.min_train_images``: experts where there are images to train them) and ``meta_tasks`` say the same here;
by default every task gets an expert and one meta-task, ``all``, is the full matrix.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import Settings
from .errors import ConfigError
from .uncertainty import BootstrapSettings

DEFAULT_META_TASK = "all"


@dataclass(frozen=True)
class ExpertsSettings(Settings):
    """The bank of experts: which tasks get one (``tasks``, ``min_train_images``) and how each is fine-tuned
    (``train``: read by :class:`taskspace.training.TrainingSettings` where training runs)."""

    SECTION = "experts"
    tasks: str | list
    min_train_images: int
    replicates: int
    train: dict


@dataclass(frozen=True)
class MetaTask:
    name: str
    targets: tuple[str, ...]
    experts: tuple[str, ...]  # expert tasks; the generic expert is always scored too


def _names(value, universe: list[str], key: str, what: str) -> list[str]:
    """``all`` or a list of names, each checked against ``universe`` (an unknown or repeated name is an error)."""
    if value == "all":
        return list(universe)
    known = set(universe)
    unknown = [n for n in value if n not in known]
    if unknown:
        raise ConfigError(f"config key {key}: unknown {what} {unknown[:5]}" + (" ..." if len(unknown) > 5 else ""))
    repeated = sorted({n for n in value if value.count(n) > 1})
    if repeated:
        raise ConfigError(f"config key {key}: {what} listed twice: {repeated}")
    return sorted(value)


def expert_tasks(config: dict, tasks: list[str], sizes: dict[str, int] | None = None) -> list[str]:
    """The tasks that get an expert: ``experts.tasks``, less those with fewer than ``experts.min_train_images``
    training images (``sizes``: task -> training images, needed when that threshold is above 0)."""
    settings = ExpertsSettings.from_config(config["experts"])
    chosen = _names(settings.tasks, tasks, "experts.tasks", "task(s)")
    least = settings.min_train_images
    if least <= 0:
        return chosen
    if sizes is None:
        raise ValueError("expert_tasks: experts.min_train_images needs the tasks' training sizes")
    kept = [t for t in chosen if sizes[t] >= least]
    if not kept:
        largest = max(sizes[t] for t in chosen)
        raise ConfigError(f"config key experts.min_train_images: {least} leaves no task with an expert (the largest "
                          f"of experts.tasks has {largest} training images)")
    return kept


def meta_tasks(config: dict, tasks: list[str], experts: list[str]) -> list[MetaTask]:
    """The declared meta-tasks, or the single full matrix ``all``; each needs a candidate for every target."""
    declared = config.get("meta_tasks") or {DEFAULT_META_TASK: {"targets": "all", "experts": "all"}}
    out = []
    for name, spec in declared.items():
        targets = _names(spec["targets"], tasks, f"meta_tasks.{name}.targets", "task(s)")
        chosen = _names(spec["experts"], experts, f"meta_tasks.{name}.experts", "expert(s) (not in experts.tasks)")
        if not targets or not chosen:
            raise ConfigError(f"config key meta_tasks.{name}: needs at least one target and one expert")
        lonely = [t for t in targets if not set(chosen) - {t}]
        if lonely:
            raise ConfigError(f"config key meta_tasks.{name}: target(s) {lonely} have no expert but their own")
        out.append(MetaTask(name, tuple(targets), tuple(chosen)))
    return out


def transfer_pairs(matrices: list[MetaTask], generic: str) -> list[tuple[str, str]]:
    """Every (expert, target) pair any meta-task needs, the generic expert on each target included, sorted."""
    pairs = {(e, t) for m in matrices for t in m.targets for e in (*m.experts, generic)}
    return sorted(pairs)


def batches(names: list[str], size: int) -> dict[str, list[str]]:
    """``names`` in consecutive chunks of at most ``size``, keyed "000", "001", ... (the jobs of a batched stage)."""
    if size < 1:
        raise ValueError(f"batch size must be >= 1, got {size}")
    chunks = [list(names[i:i + size]) for i in range(0, len(names), size)]
    width = max(3, len(str(max(0, len(chunks) - 1))))
    return {f"{i:0{width}d}": chunk for i, chunk in enumerate(chunks)}


@dataclass(frozen=True)
class RerankSettings(Settings):
    """Two-stage selectors: shortlist by each of ``embeddings``, choose by each of ``scores``, for each size."""

    SECTION = "selection.rerank"
    embeddings: tuple[str, ...]
    scores: tuple[str, ...]
    shortlist: tuple[int, ...]


@dataclass(frozen=True)
class SelectionSettings(Settings):
    """How selectors are scored: the bootstrap behind every interval, the two-stage selectors."""

    SECTION = "selection"
    bootstrap: BootstrapSettings
    rerank: RerankSettings


def rerank_selectors(rerank_cfg: dict | RerankSettings | None, methods: list[str], scores: list[str] | None,
                     entries_only: bool = False) -> list[tuple[str, str, int]]:
    """The two-stage selectors of ``selection.rerank``: every (embedding, score, shortlist) combination.

    ``methods``: the selector names the distances give (e.g. ``task2vec.asym``), or with ``entries_only`` the
    embedding entries of the config (``task2vec``), against which only the part before the first dot is checked
    (the selector names are known once the distances exist); ``scores``: the scores ``transfer.scores`` computes.
    An unknown name is an error naming the config key.
    """
    rerank = RerankSettings.from_config(rerank_cfg, "selection.rerank")
    embeddings, chosen, shortlist = list(rerank.embeddings), list(rerank.scores), list(rerank.shortlist)
    if entries_only:
        unknown = [e for e in embeddings if e.split(".")[0] not in methods]
    else:
        unknown = [e for e in embeddings if e not in methods]
    if unknown:
        raise ConfigError(f"config key selection.rerank.embeddings: {unknown} are not selectors of this run; "
                          f"there are {sorted(methods)}")
    if scores is not None:
        unknown = [s for s in chosen if s not in scores]
        if unknown:
            raise ConfigError(f"config key selection.rerank.scores: {unknown} are not in transfer.scores {scores}")
    return [(e, s, k) for e in embeddings for s in chosen for k in shortlist]


def taxonomy_levels(specs) -> list[str]:
    """The taxonomy levels every task has (``TaskSpec.taxonomy``), in the first task's order (coarsest first): the
    tasks.parquet columns of the figures' groups and of the taxonomic distance. Where the finest of them is no task's
    own level (a combined source whose entries group at levels of different names), ``task`` (the task itself) is
    appended, so that the last level tells tasks apart."""
    if not specs:
        return []
    common = set.intersection(*({level for level, _ in spec.taxonomy} for spec in specs))
    levels = [level for level, _ in specs[0].taxonomy if level in common]
    own = {spec.taxonomy[-1][0] for spec in specs if spec.taxonomy}
    if levels and levels[-1] not in own:
        levels.append("task")
    return levels


def group_level(levels: list[str]) -> str | None:
    """The level the figures colour tasks by: the one above the tasks' own (``levels`` coarsest first, as
    :func:`taxonomy_levels` gives them), the only one where there is one, None where there is none."""
    return levels[-2] if len(levels) >= 2 else levels[0] if levels else None
