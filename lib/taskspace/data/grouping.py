"""Tasks from a labelled image collection: classes grouped at a taxonomy level, filtered, named and sized.

A task is the classes that share a value at ``level`` (CUB+iNat: an order), except that a group listed in ``refine``
is split at a finer level (CUB's Passeriformes into its families). Classes with fewer than ``min_images`` images, or
without a training or a test image, leave their task; tasks with fewer than ``min_classes`` or more than
``max_classes`` classes are skipped; ``max_train_per_class`` / ``max_test_per_class`` subsample training / test
images. Every skip warns
(:class:`DataWarning`) and is counted: per task in ``TaskSpec.notes``, whole tasks in the plan report.

Task names are file-safe slugs of the group value (``Passeriformes`` -> ``passeriformes``); the value itself is kept
as the note ``group``. Subsamples and seeded splits are keyed by (data.seed, class name) only, so a class's images
never depend on which other classes or tasks exist.

A task's taxonomy (``TaskSpec.taxonomy``) is its value at its own level and at the levels above it. Those are, by
default, the table's columns left of ``level`` (the table is coarse to fine) that all the task's classes share; a
source may declare them instead (``Filters.above``, e.g. imagefolder's ``level: [category, collection]``): each must
then hold one value per value of the level below it, checked over every class of the table.
"""

from __future__ import annotations

import math
import re
import warnings
from dataclasses import dataclass, field

import numpy as np

from ..config import Settings
from ..errors import ConfigError, TaskDataError
from ..seeding import stable_seed
from . import TaskSpec
from .taxonomy import Taxonomy

_UNSAFE = re.compile(r"[^a-z0-9._-]+")

# columns results/tasks.parquet holds for a task besides its taxonomy levels (stages.tabulate_tasks): a declared
# level must not take one of these names
TASK_TABLE_COLUMNS = frozenset({
    "task", "role", "source", "n_classes", "n_train", "n_test", "resolution", "path", "group", "level", "entry",
    "entry_source", "dropped_classes", "non_image_files", "unlisted_images", "classes_in_other_sources",
    "skipped_images", "no_attribute_value", "several_attribute_values",
})


class DataWarning(UserWarning):
    """Input left out of the tasks (a class, a file, a whole task); it is counted in the task table too."""


def warn(message: str) -> None:
    """Report a skip (a DataWarning; Python prints it to stderr, which the split job's log holds)."""
    warnings.warn(message, DataWarning, stacklevel=2)


def slugify(value: str) -> str:
    """Lowercase; runs of characters outside [a-z0-9._-] become '-'; leading/trailing '-', '.', '_' trimmed."""
    return _UNSAFE.sub("-", value.lower()).strip("-._")


def seeded_split(files: list[str], fraction: float, seed: int, cls: str) -> tuple[list[str], list[str]]:
    """(train, test) of one class: max(1, round(fraction * n)) test files drawn with a (seed, class) stream."""
    files = sorted(files)
    if not files:
        return [], []
    n_test = max(1, math.floor(fraction * len(files) + 0.5))
    order = np.random.default_rng(stable_seed(seed, "split", cls)).permutation(len(files))
    test = set(order[:n_test].tolist())
    return [f for i, f in enumerate(files) if i not in test], [f for i, f in enumerate(files) if i in test]


def subsample(files: list[str], limit: int | None, seed: int, cls: str, stream: str = "subsample") -> list[str]:
    """At most ``limit`` files (kept in order), drawn with a (seed, stream, class) stream; a larger limit keeps a
    superset."""
    if limit is None or len(files) <= limit:
        return list(files)
    order = np.random.default_rng(stable_seed(seed, stream, cls)).permutation(len(files))
    keep = set(order[:limit].tolist())
    return [f for i, f in enumerate(files) if i in keep]


@dataclass(frozen=True)
class FilterSettings(Settings):
    """The keys every file-backed section has: which classes and tasks are kept, and how many images of each."""

    min_classes: int
    max_classes: int | None
    min_images: int
    max_train_per_class: int | None
    max_test_per_class: int | None


@dataclass(frozen=True)
class GroupingSettings(FilterSettings):
    """The filter keys plus the taxonomy level the tasks group at and the groups split at a finer one."""

    level: str | None
    refine: dict


@dataclass(frozen=True)
class Filters:
    """How classes become tasks (see the module docstring); ``level`` None: the taxonomy's first level; ``above``
    None: the levels above a task are the table's columns left of its level that its classes share, else the
    declared levels above ``level``, finest first."""

    level: str | None
    refine: dict
    min_classes: int
    max_classes: int | None
    min_images: int
    max_train_per_class: int | None
    max_test_per_class: int | None
    above: tuple[str, ...] | None = None

    @classmethod
    def of(cls, cfg: FilterSettings, key: str, level: str | None, refine: dict,
           above: tuple[str, ...] | None = None) -> Filters:
        """The filters of a section's settings grouped at ``level`` with ``refine`` and the declared levels ``above``
        it; ``key`` names the section."""
        if cfg.max_classes is not None and cfg.max_classes < cfg.min_classes:
            raise ConfigError(f"{key}.max_classes: {cfg.max_classes} is below min_classes={cfg.min_classes}")
        return cls(
            level=level,
            refine=dict(refine),
            min_classes=cfg.min_classes,
            max_classes=cfg.max_classes,
            min_images=cfg.min_images,
            max_train_per_class=cfg.max_train_per_class,
            max_test_per_class=cfg.max_test_per_class,
            above=None if above is None else tuple(above),
        )


@dataclass
class ClassImages:
    """One class's image files by split, and counts of what was left out of it (non-image files, ...)."""

    train: list[str]
    test: list[str]
    notes: dict[str, int] = field(default_factory=dict)


@dataclass
class Collection:
    """What a source found: every usable class with its images, their taxonomy, and source-level counts."""

    classes: dict[str, ClassImages]
    taxonomy: Taxonomy
    counts: dict[str, int] = field(default_factory=dict)
    note_keys: tuple[str, ...] = ()  # per-class counts the source tracks (always written, 0 when none)


@dataclass
class Member:
    """A class of a planned task with the files it is built from."""

    name: str
    train: list[str]
    test: list[str]


@dataclass
class GroupedPlan:
    """The tasks of one source: specs, their members' files, tasks skipped by filters and source-level counts."""

    specs: list[TaskSpec]
    members: dict[str, list[Member]]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (task, reason)
    counts: dict[str, int] = field(default_factory=dict)

    def report(self) -> dict:
        """Plan provenance for results/tasks.parquet: the skipped tasks and the source-level counts."""
        return {"skipped_tasks": [{"task": n, "reason": r} for n, r in self.skipped], **self.counts}


def group_classes(found: Collection, filters: Filters, key: str) -> dict[tuple[str, str], list[str]]:
    """(level, value) -> sorted class names; checks level and refine against the taxonomy."""
    tax = found.taxonomy
    for name, lev in [("level", filters.level)] + [(f"refine.{g}", lev) for g, lev in filters.refine.items()]:
        if lev not in tax.levels:
            raise ConfigError(f"{key}.{name}: {lev!r} is not a level of {tax.file}; its levels are {list(tax.levels)}")
    groups: dict[tuple[str, str], list[str]] = {}
    seen = set()
    for cls in sorted(found.classes):
        level = filters.level
        value = tax.value(cls, level)
        seen.add(value)
        if value in filters.refine:
            level = filters.refine[value]
            value = tax.value(cls, level)
        groups.setdefault((level, value), []).append(cls)
    for value in filters.refine:
        if value not in seen:
            raise ConfigError(f"{key}.refine.{value}: no class of {tax.file} has {filters.level} {value!r}")
    return groups


def task_names(groups: dict[tuple[str, str], list[str]], tax: Taxonomy) -> dict[tuple[str, str], str]:
    """A file-safe name per group; an empty or shared name is a TaskDataError naming the values and the file."""
    names: dict[tuple[str, str], str] = {}
    by_slug: dict[str, tuple[str, str]] = {}
    for level, value in groups:
        slug = slugify(value)
        if not slug:
            raise TaskDataError(
                f"{tax.file}: {level} {value!r} gives an empty task name (no letters, digits or '._-'); rename it"
            )
        if slug in by_slug:
            other = by_slug[slug]
            raise TaskDataError(
                f"{tax.file}: {other[0]} {other[1]!r} and {level} {value!r} both give the task name {slug!r}; "
                "rename one of them"
            )
        by_slug[slug] = (level, value)
        names[(level, value)] = slug
    return names


def check_levels_above(found: Collection, filters: Filters, key: str) -> None:
    """The declared levels above the tasks (``filters.above``) are columns of the table, none a level ``refine``
    splits at nor a name tasks.parquet holds already, and each holds one value per value of the level before it
    (``level`` first), over every class; errors name the key ``<key>.level``, the file and the column."""
    tax, chain = found.taxonomy, (filters.level, *filters.above)
    for lev in filters.above:
        if lev not in tax.levels:
            raise ConfigError(f"{key}.level: {lev!r} is not a column of {tax.file}; its level columns are "
                              f"{list(tax.levels)}")
        if lev in TASK_TABLE_COLUMNS:
            raise ConfigError(f"{key}.level: {lev!r} (a column of {tax.file}) names a column tasks.parquet holds "
                              "for every task already; rename the column")
    for group, lev in filters.refine.items():
        if lev in filters.above:
            raise ConfigError(f"{key}.refine.{group}: {lev!r} is listed in {key}.level as a level above the tasks; "
                              "refine splits a group at a finer level")
    for finer, coarser in zip(chain, chain[1:]):
        first: dict[str, tuple[str, str]] = {}  # finer value -> (class, coarser value) of its first class
        for cls in sorted(found.classes):
            where, values = tax.rows[cls]
            value, up = tax.value(cls, finer), values.get(coarser, "")
            if not up:
                raise TaskDataError(f"{key}.level: {tax.file}, {where}: class {cls!r} has an empty {coarser!r} "
                                    f"value; every class needs a value at each level of {key}.level")
            other, seen = first.setdefault(value, (cls, up))
            if seen != up:
                raise TaskDataError(
                    f"{key}.level: column {coarser!r} of {tax.file} is not constant within {finer} {value!r}: class "
                    f"{other!r} ({tax.rows[other][0]}) has {seen!r}, class {cls!r} ({where}) has {up!r}; a level "
                    f"above the tasks must hold one value for all the classes of each {finer}"
                )


def _taxonomy_pairs(tax: Taxonomy, classes: list[str], level: str,
                    filters: Filters | None = None) -> tuple[tuple[str, str], ...]:
    """(level, value) for the task's level and every coarser level that all its classes share: the table's columns
    left of it (table order) or, where ``filters`` declares the levels above, those (coarsest first) then the
    grouping level and the task's own."""
    if filters is not None and filters.above is not None:
        chain = [*reversed(filters.above), filters.level] + ([level] if level != filters.level else [])
        return tuple((lev, tax.value(classes[0], lev)) for lev in chain)
    pairs = []
    for lev in tax.levels[: tax.levels.index(level) + 1]:
        values = {tax.rows[c][1].get(lev, "") for c in classes}
        if len(values) == 1 and "" not in values:
            pairs.append((lev, values.pop()))
    return tuple(pairs)


def group_tasks(found: Collection, filters: Filters, seed: int, key: str, source: str) -> GroupedPlan:
    """The tasks of a collection (see the module docstring); ``key`` is the config key named in errors."""
    tax = found.taxonomy
    groups = group_classes(found, filters, key)
    if filters.above is not None:
        check_levels_above(found, filters, key)
    names = task_names(groups, tax)
    plan = GroupedPlan([], {}, [], dict(found.counts))
    for (level, value), classes in groups.items():
        name = names[(level, value)]
        notes = {k: 0 for k in found.note_keys}
        notes["dropped_classes"] = 0
        members = []
        for cls in classes:
            images = found.classes[cls]
            for k, v in images.notes.items():
                notes[k] = notes.get(k, 0) + int(v)
            n = len(images.train) + len(images.test)
            why = None
            if n < filters.min_images:
                why = f"{n} image(s), fewer than min_images={filters.min_images}"
            elif not images.train or not images.test:
                why = f"no {'training' if not images.train else 'test'} image ({len(images.train)}/{len(images.test)})"
            if why:
                warn(f"{key}: class {cls!r} left out of task {name!r}: {why}")
                notes["dropped_classes"] += 1
                continue
            train = subsample(images.train, filters.max_train_per_class, seed, cls)
            test = subsample(images.test, filters.max_test_per_class, seed, cls, "subsample-test")
            members.append(Member(cls, train, test))
        n_classes = len(members)
        reason = None
        if n_classes < filters.min_classes:
            reason = f"{n_classes} class(es), fewer than min_classes={filters.min_classes}"
        elif filters.max_classes is not None and n_classes > filters.max_classes:
            reason = f"{n_classes} classes, more than max_classes={filters.max_classes}"
        if reason:
            warn(f"{key}: task {name!r} ({level} {value!r}) skipped: {reason}")
            plan.skipped.append((name, reason))
            continue
        kept = [m.name for m in members]
        spec = TaskSpec(
            name=name,
            role="task",
            classes=tuple(kept),
            n_train=sum(len(m.train) for m in members),
            n_test=sum(len(m.test) for m in members),
            taxonomy=_taxonomy_pairs(tax, kept, level, filters),
            source=source,
            notes=(("group", value), ("level", level)) + tuple(sorted(notes.items())),
        )
        plan.specs.append(spec)
        plan.members[name] = members
    plan.specs.sort(key=lambda s: s.name)
    plan.skipped.sort()
    return plan
