"""The study's shape: which tasks get an expert, and the meta-tasks (target x expert transfer matrices) scored.

The Task2Vec paper embedded all of its 1,460 tasks and trained 156 experts, but evaluated transfer only within
its meta-tasks (iNat+CUB: 50 targets x 50 experts; Mixed: 50 x 26). ``experts.tasks`` and ``meta_tasks`` say the
same here; by default every task gets an expert and one meta-task, ``all``, is the full matrix.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import ConfigError

DEFAULT_META_TASK = "all"


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


def expert_tasks(config: dict, tasks: list[str]) -> list[str]:
    """The tasks that get an expert (``experts.tasks``)."""
    return _names(config["experts"]["tasks"], tasks, "experts.tasks", "task(s)")


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
