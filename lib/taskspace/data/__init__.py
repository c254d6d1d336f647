"""Data sources: a registry of task sources plus the types every stage shares (TaskSpec, TaskData).

A source is a class with ``plan(data_cfg) -> list[TaskSpec]`` (cheap: runs whenever the workflow is parsed) and
``build(data_cfg, spec) -> TaskData`` (makes one task's images). Adding a source is one module in this package
whose class carries ``@register_source("name")``; name the module after the source so it is found without being
imported up front. Keep heavy imports (torch, PIL) inside ``build``: ``plan_tasks`` must take milliseconds.
Optional methods: ``report(data_cfg) -> dict`` (what planning left out, for the task table's provenance) and
``task_config(data_cfg, task) -> dict`` (the part of the config that makes one task).

Sources: ``synthetic`` (the generated benchmark world, the only one with a pretraining ``source`` task),
``imagefolder``, ``cub200``, ``inat2018``, ``stanford_cars`` (image files; see ``filesource``) and ``combined``
(several of those side by side, task names prefixed).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import pkgutil
import re
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..config import schema_section
from ..errors import ConfigError, TaskDataError

RESOLUTION = 32  # image side when data.resolution is left out: the synthetic world's
TASK_NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
SOURCE_TASK = "source"


@dataclass(frozen=True)
class TaskSpec:
    """What a task is, known before any image exists: name, role, classes, planned sizes, taxonomy."""

    name: str
    role: str  # "task", or "source" for the broad pretraining task of the probe
    classes: tuple[str, ...]  # in label order
    n_train: int
    n_test: int
    taxonomy: tuple[tuple[str, str], ...]  # (level, value) pairs above the class; empty for the source task
    source: str
    # what planning found besides the classes, as (key, value) pairs: the group value the task is named after and
    # counts of what was left out (dropped_classes, non_image_files, ...); columns of results/tasks.parquet
    notes: tuple[tuple[str, int | str], ...] = ()


@dataclass
class TaskData:
    """One task's images and labels with a stratified train/test split and its provenance."""

    images: np.ndarray  # uint8 (N, H, W, 3)
    labels: np.ndarray  # int64 (N,)
    is_train: np.ndarray  # bool (N,)
    class_names: list[str]
    attrs: dict = field(default_factory=dict)  # str/int/float/bool values only: written as HDF5 attrs as-is


SOURCES: dict[str, type] = {}


def register_source(name: str) -> Callable[[type], type]:
    """Class decorator adding a data source to the registry under ``name``."""

    def wrap(cls: type) -> type:
        cls.name = name
        SOURCES[name] = cls
        return cls

    return wrap


def known_sources() -> list[str]:
    """Names of every source this package provides (imports each source module once)."""
    for module in pkgutil.iter_modules(__path__):
        if not module.name.startswith("_"):
            try:
                importlib.import_module(f"{__name__}.{module.name}")
            except ImportError:
                continue
    return sorted(SOURCES)


def get_source(name: Any, config_key: str = "data.source"):
    """An instance of the registered source ``name``; an unknown name is a ConfigError naming ``config_key``."""
    if isinstance(name, str) and name not in SOURCES and name.isidentifier():
        try:
            importlib.import_module(f"{__name__}.{name}")
        except ModuleNotFoundError as err:
            if err.name != f"{__name__}.{name}":  # the module exists but lacks a dependency: say so
                raise
    if not isinstance(name, str) or name not in SOURCES:
        raise ConfigError(f"{config_key}: unknown data source {name!r}; known sources: {known_sources()}")
    return SOURCES[name]()


def config_digest(data_cfg: dict) -> str:
    """sha256 of the canonical JSON of the data config without ``tasks`` (which tasks are used never changes one)."""
    body = {k: v for k, v in data_cfg.items() if k != "tasks"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


@dataclass(frozen=True)
class CommonKeys:
    """The keys of ``data`` that every source reads, checked, with the schema's defaults; a left-out resolution is
    :data:`RESOLUTION` (the workflow has replaced the schema's ``auto`` by the probe's side before)."""

    source: Any  # a registered source's name, checked by get_source
    seed: int
    resolution: int
    tasks: Any  # "all" or a list of task names, checked against the plan

    @classmethod
    def of(cls, data_cfg: dict) -> CommonKeys:
        """The common keys of a data section; a bad seed or resolution is a ConfigError naming it."""
        resolution = data_cfg.get("resolution", RESOLUTION)
        if not _is_int(resolution) or resolution < 8:
            raise ConfigError(f"data.resolution: must be an integer >= 8, got {resolution!r}")
        seed = data_cfg.get("seed", _default("seed"))
        if not _is_int(seed) or seed < 0:
            raise ConfigError(f"data.seed: must be a non-negative integer, got {seed!r}")
        tasks = data_cfg.get("tasks", _default("tasks"))
        return cls(data_cfg.get("source", _default("source")), int(seed), int(resolution), tasks)


def _default(key: str) -> Any:
    """The schema's default of ``data.<key>``."""
    return schema_section(f"data.{key}")["default"]


def _check_spec(spec: TaskSpec) -> None:
    if not TASK_NAME_PATTERN.match(spec.name):
        raise TaskDataError(f"task {spec.name!r}: name is not file-safe (must match {TASK_NAME_PATTERN.pattern})")
    if spec.role not in ("task", "source"):
        raise TaskDataError(f"task {spec.name!r}: role must be 'task' or 'source', got {spec.role!r}")
    if len(spec.classes) < 2:
        raise TaskDataError(f"task {spec.name!r}: has {len(spec.classes)} class(es); a task needs >= 2 classes")
    if len(set(spec.classes)) != len(spec.classes):
        raise TaskDataError(f"task {spec.name!r}: class names are not unique")
    if spec.n_train < len(spec.classes):
        raise TaskDataError(
            f"task {spec.name!r}: empty training set ({spec.n_train} training images for {len(spec.classes)} "
            "classes; every class needs >= 1)"
        )
    if spec.n_test < len(spec.classes):
        raise TaskDataError(
            f"task {spec.name!r}: empty test set ({spec.n_test} test images for {len(spec.classes)} classes; "
            "every class needs >= 1)"
        )


def _select(specs: list[TaskSpec], wanted: Any) -> list[TaskSpec]:
    sources = [s for s in specs if s.role == "source"]
    tasks = {s.name: s for s in specs if s.role == "task"}
    if wanted is None or wanted == "all":
        chosen = sorted(tasks)
    else:
        if isinstance(wanted, str) or not isinstance(wanted, (list, tuple)):
            raise ConfigError(f"data.tasks: must be 'all' or a list of task names, got {wanted!r}")
        if not wanted:
            raise ConfigError("data.tasks: the list is empty; give 'all' or at least one task name")
        for name in wanted:
            if name not in tasks:
                raise ConfigError(f"data.tasks: unknown task {name!r}; available tasks: {sorted(tasks)}")
        if len(set(wanted)) != len(wanted):
            raise ConfigError(f"data.tasks: lists a task more than once: {list(wanted)}")
        chosen = sorted(wanted)
    return sources + [tasks[n] for n in chosen]


def plan_tasks(data_cfg: dict) -> list[TaskSpec]:
    """Every task the config asks for, source task first then tasks by name; bad input raises before any build."""
    common = CommonKeys.of(data_cfg)
    source = get_source(common.source)
    specs = list(source.plan(data_cfg))
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise TaskDataError(f"data source {source.name!r} planned duplicate task names: {names}")
    if [s.role for s in specs].count("source") > 1:
        raise TaskDataError(f"data source {source.name!r} planned more than one source task")
    for spec in specs:
        _check_spec(spec)
    return _select(specs, common.tasks)


def plan_report(data_cfg: dict) -> dict:
    """What planning left out (tasks skipped by filters, source-level counts); empty for sources without skips."""
    source = get_source(CommonKeys.of(data_cfg).source)
    return dict(source.report(data_cfg)) if hasattr(source, "report") else {}


def task_config(data_cfg: dict, task: str) -> dict:
    """The part of the data config that makes ``task``: no task list, no other source's section, no other task's
    overrides; a source may narrow it further (``combined`` keeps only the task's own entry)."""
    name = CommonKeys.of(data_cfg).source
    source = get_source(name)
    if hasattr(source, "task_config"):
        return source.task_config(data_cfg, task)
    others = set(known_sources()) - {name}
    out = {k: v for k, v in data_cfg.items() if k != "tasks" and k not in others}
    section = out.get(name)
    if isinstance(section, dict) and isinstance(section.get("overrides"), dict):
        out[name] = dict(section, overrides={t: o for t, o in section["overrides"].items() if t == task})
    return out


def build_task(data_cfg: dict, name: str) -> TaskData:
    """Generate or load one planned task (``"source"`` for the pretraining task), checked against its plan."""
    common = CommonKeys.of(data_cfg)
    specs = {s.name: s for s in plan_tasks(data_cfg)}
    if name not in specs:
        raise ConfigError(f"data.tasks: task {name!r} is not planned; planned tasks: {sorted(specs)}")
    spec = specs[name]
    source = get_source(spec.source)
    data = source.build(data_cfg, spec)
    _check_data(spec, data)
    data.attrs = {
        **data.attrs,
        "task": spec.name,
        "role": spec.role,
        "source": spec.source,
        "seed": common.seed,
        "resolution": int(data.images.shape[1]),
        "config_digest": config_digest(data_cfg),
        "data_config": json.dumps({k: v for k, v in data_cfg.items() if k != "tasks"}, sort_keys=True, default=str),
        "taxonomy": json.dumps([list(pair) for pair in spec.taxonomy]),
        "n_classes": len(spec.classes),
        "n_train": int(data.is_train.sum()),
        "n_test": int((~data.is_train).sum()),
    }
    return data


def _check_data(spec: TaskSpec, data: TaskData) -> None:
    where = f"task {spec.name!r} (data source {spec.source!r})"
    n = len(data.labels)
    if data.images.dtype != np.uint8 or data.images.ndim != 4 or data.images.shape[-1] != 3:
        raise TaskDataError(f"{where}: images must be uint8 (N, H, W, 3), got {data.images.dtype} {data.images.shape}")
    if data.images.shape[0] != n or data.is_train.shape != (n,) or data.is_train.dtype != bool:
        raise TaskDataError(f"{where}: images, labels and is_train disagree in length")
    if data.labels.dtype != np.int64 or (n and (data.labels.min() < 0 or data.labels.max() >= len(spec.classes))):
        raise TaskDataError(f"{where}: labels must be int64 in [0, {len(spec.classes)})")
    if list(data.class_names) != list(spec.classes):
        raise TaskDataError(f"{where}: class names differ from the plan")
    n_train, n_test = int(data.is_train.sum()), int((~data.is_train).sum())
    skipped = int(data.attrs.get("skipped_images", 0))  # undecodable files the source left out (and counted)
    if n_train > spec.n_train or n_test > spec.n_test or n_train + n_test != spec.n_train + spec.n_test - skipped:
        raise TaskDataError(
            f"{where}: split is {n_train}/{n_test} train/test, planned {spec.n_train}/{spec.n_test}"
            + (f" less {skipped} skipped image(s)" if skipped else "")
        )
    for split, mask in (("training", data.is_train), ("test", ~data.is_train)):
        missing = set(range(len(spec.classes))) - set(np.unique(data.labels[mask]).tolist())
        if missing:
            raise TaskDataError(f"{where}: class {spec.classes[min(missing)]!r} has no {split} images")
