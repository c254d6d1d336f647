"""Planning the world: its tasks (one per order) and the source task, with their classes, sizes and difficulties.

Nothing is rendered here; planning draws only the layout streams (size and difficulty ranks, class counts).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...errors import ConfigError, TaskDataError
from ...seeding import rng
from .. import SOURCE_TASK, TaskSpec
from .settings import SyntheticSettings

ARCHETYPES = ("organic", "geometric")
SOURCE_CLADE_BASE = 1000  # ids of the source's own clades (never a task's clade)

# stream kinds: the first element of every spawn key
K_LAYOUT, K_DOMAIN, K_CLADE, K_ORDER, K_COUNT, K_CLASS, K_IMAGE = range(1, 8)


def domain_name(d: int) -> str:
    """organic, geometric, organic2, geometric2, ... (the archetypes alternate)."""
    return ARCHETYPES[d % len(ARCHETYPES)] + ("" if d < len(ARCHETYPES) else str(d // len(ARCHETYPES) + 1))


def order_name(d: int, c: int, o: int) -> str:
    """The task name of order ``o`` of clade ``c`` of domain ``d`` (``organic-c1-o2``)."""
    return f"{domain_name(d)}-c{c + 1}-o{o + 1}"


@dataclass(frozen=True)
class ClassRef:
    """A class's place in the world (domain, clade, order, class ids) and the difficulty it is drawn at."""

    name: str
    d: int
    c: int
    o: int
    k: int
    difficulty: float
    coarse: bool = False  # a source class: a whole clade, its order and class drawn afresh for every image


@dataclass(frozen=True)
class Group:
    """One planned task: its classes (with their place in the world) and per-class split sizes."""

    spec: TaskSpec
    members: tuple[ClassRef, ...]
    train_per_class: int
    test_per_class: int
    difficulty: float


def _check_overrides(overrides: dict, tasks: list[str]) -> None:
    """Each override names a planned task and pins sizes that leave it >= 2 classes and both splits."""
    for task, pinned in overrides.items():
        key = f"data.synthetic.overrides.{task}"
        if task not in tasks:
            raise ConfigError(f"data.synthetic.overrides: unknown task {task!r}; available tasks: {sorted(tasks)}")
        for k, v in pinned.items():
            if k == "difficulty":
                if not 0.0 <= v <= 1.0:
                    raise ConfigError(f"{key}.difficulty: must be a number in [0, 1], got {v!r}")
            elif v < 0:
                raise ConfigError(f"{key}.{k}: must be an integer >= 0, got {v!r}")
        where = f"task {task!r}: {key}"
        if pinned.get("n_classes", 2) < 2:
            raise TaskDataError(f"{where} gives n_classes={pinned['n_classes']}; a task needs >= 2 classes")
        if pinned.get("train_per_class", 1) < 1:
            raise TaskDataError(f"{where} gives train_per_class=0: the task would have no training images")
        if pinned.get("test_per_class", 1) < 1:
            raise TaskDataError(f"{where} gives test_per_class=0: the task would have no test images")


def _size_ranks(layout: np.random.Generator, clades: int, orders: int) -> np.ndarray:
    """Size rank of each order (clade-major): the ranks are cut into ``orders`` tiers of ``clades`` consecutive
    ranks and every clade takes one rank of each tier, so each clade has small and large orders, as the taxa of
    iNaturalist do; which clade takes which rank of a tier, and which of its orders takes which tier, are random."""
    tier_of_clade = np.stack([layout.permutation(clades) for _ in range(orders)])  # (tier, clade) -> rank in tier
    ranks = np.empty(clades * orders, dtype=np.int64)
    for j in range(clades):
        for o, tier in enumerate(layout.permutation(orders)):
            ranks[j * orders + o] = tier * clades + tier_of_clade[tier, j]
    return ranks


def plan_world(s: SyntheticSettings, seed: int) -> dict[str, Group]:
    """Every task of the world plus the source task; sizes and difficulties are dealt out over the orders."""
    clades, per_clade = s.clades_per_domain, s.orders_per_clade
    orders = [(d, c, o) for d in range(s.domains) for c in range(clades) for o in range(per_clade)]
    _check_overrides(s.overrides, [order_name(*doc) for doc in orders])
    layout = rng(seed, K_LAYOUT)
    size_rank = _size_ranks(layout, s.domains * clades, per_clade)
    difficulty_rank = layout.permutation(len(orders))
    (c_lo, c_hi), (t_lo, t_hi), (d_lo, d_hi) = s.classes_per_order, s.train_per_class, s.difficulty

    groups: dict[str, Group] = {}
    for i, (d, c, o) in enumerate(orders):
        name = order_name(d, c, o)
        pinned = s.overrides.get(name, {})
        u_size = size_rank[i] / (len(orders) - 1) if len(orders) > 1 else 0.5
        train = pinned.get("train_per_class", int(round(t_lo * (t_hi / t_lo) ** u_size)))
        test = pinned.get("test_per_class", s.test_per_class)
        difficulty = float(pinned.get("difficulty", d_lo + (d_hi - d_lo) * (difficulty_rank[i] + 0.5) / len(orders)))
        u_count = rng(seed, K_COUNT, d, c, o).random()
        n_classes = pinned.get("n_classes", c_lo + min(int(u_count * (c_hi - c_lo + 1)), c_hi - c_lo))
        members = tuple(ClassRef(f"{name}-k{k + 1}", d, c, o, k, difficulty) for k in range(n_classes))
        spec = TaskSpec(
            name=name,
            role="task",
            classes=tuple(m.name for m in members),
            n_train=int(train) * len(members),
            n_test=int(test) * len(members),
            taxonomy=(("domain", domain_name(d)), ("clade", f"{domain_name(d)}-c{c + 1}"), ("order", name)),
            source="synthetic",
        )
        groups[name] = Group(spec, members, int(train), int(test), difficulty)
    groups[SOURCE_TASK] = _source_group(s, 0.5 * (d_lo + d_hi))
    return groups


def _source_group(s: SyntheticSettings, difficulty: float) -> Group:
    """The source task: clades of their own (no task's clade) as classes, dealt round-robin over the domains; one
    class is a whole clade, so the source teaches the domains' coarse vocabulary and none of the fine cues within
    a clade."""
    members = []
    for i in range(s.source_classes):
        d, m = i % s.domains, i // s.domains
        name = f"{SOURCE_TASK}-{domain_name(d)}-s{m + 1}"
        members.append(ClassRef(name, d, SOURCE_CLADE_BASE + m, 0, 0, difficulty, coarse=True))
    spec = TaskSpec(
        name=SOURCE_TASK,
        role="source",
        classes=tuple(m.name for m in members),
        n_train=s.source_train_per_class * len(members),
        n_test=s.source_test_per_class * len(members),
        taxonomy=(),
        source="synthetic",
    )
    return Group(spec, tuple(members), s.source_train_per_class, s.source_test_per_class, difficulty)
