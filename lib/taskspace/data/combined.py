"""``combined``: several file-backed sources side by side, e.g. the CUB+iNat meta-task of Task2Vec.

``data.combined`` maps a prefix (``^[a-z0-9]+$``) to an entry ``{source: <name>, ...that source's keys}``. Each entry
is planned by its own source; its tasks are named ``<prefix>-<task>`` and its classes ``<prefix>/<class>``, so tasks
of different entries never share a class. A class name found in more than one entry is allowed (the prefixes keep
them apart) but warned about and counted per task (``classes_in_other_sources``). A task depends on its own entry
only (:meth:`CombinedSource.task_config`), so editing one entry never remakes another entry's tasks.

Every task's taxonomy gains the level ``collection`` above its entry's levels, its value the entry's prefix: the
entries are trees side by side, and the figures and the distance-vs-taxonomy analysis group the tasks by entry.
"""

from __future__ import annotations

import dataclasses
import re

from ..errors import ConfigError, TaskDataError
from . import SOURCES, CommonKeys, TaskData, TaskSpec, get_source, known_sources, register_source
from .filesource import FileSource, build_members
from .grouping import GroupedPlan, warn

PREFIX = re.compile(r"^[a-z0-9]+$")
SHARED_KEYS = ("seed", "resolution")  # data keys every entry sees
COLLECTION = "collection"  # the taxonomy level above every entry's levels; its value is the entry's prefix


def combinable_sources() -> list[str]:
    """Registered sources that can be an entry of ``data.combined`` (the file-backed ones)."""
    return [n for n in known_sources() if isinstance(SOURCES[n], type) and issubclass(SOURCES[n], FileSource)]


@dataclasses.dataclass(frozen=True)
class Entry:
    """One entry of data.combined: its source, the data config that source reads, and its key for messages."""

    prefix: str
    source: FileSource
    config: dict
    key: str


def entries(data_cfg: dict) -> dict[str, Entry]:
    """The checked entries of ``data.combined``, by prefix (sorted)."""
    combined = data_cfg.get("combined")
    if not isinstance(combined, dict) or not combined:
        raise ConfigError(
            f"data.combined: must be a non-empty mapping {{prefix: {{source: <name>, ...}}}}, got {combined!r}"
        )
    out = {}
    for prefix in sorted(combined, key=str):
        entry, key = combined[prefix], f"data.combined.{prefix}"
        if not isinstance(prefix, str) or not PREFIX.match(prefix):
            raise ConfigError(f"{key}: a prefix must match {PREFIX.pattern} (it starts the entry's task names)")
        if not isinstance(entry, dict) or "source" not in entry:
            raise ConfigError(f"{key}.source: required (the entry's data source: one of {combinable_sources()})")
        source = get_source(entry["source"], f"{key}.source")
        if not isinstance(source, FileSource):
            raise ConfigError(
                f"{key}.source: {entry['source']!r} cannot be combined; combinable sources: {combinable_sources()}"
            )
        config = {k: data_cfg[k] for k in SHARED_KEYS if k in data_cfg}
        config.update(source=source.name, **{source.name: {k: v for k, v in entry.items() if k != "source"}})
        out[prefix] = Entry(prefix, source, config, key)
    return out


def _plans(data_cfg: dict) -> dict[str, tuple[Entry, GroupedPlan]]:
    return {p: (e, e.source.grouped(e.config, e.key)) for p, e in entries(data_cfg).items()}


@register_source("combined")
class CombinedSource:
    """Entries of data.combined planned by their own sources, names prefixed; see the module docstring."""

    def plan(self, data_cfg: dict) -> list[TaskSpec]:
        """Every entry's tasks, prefixed; classes shared between entries are warned about and counted."""
        plans = _plans(data_cfg)
        classes = {p: {c for s in plan.specs for c in s.classes} for p, (_, plan) in plans.items()}
        specs = []
        for prefix, (entry, plan) in plans.items():
            elsewhere: dict[str, list[str]] = {}
            for other, names in classes.items():
                if other != prefix:
                    for c in classes[prefix] & names:
                        elsewhere.setdefault(c, []).append(other)
            shared: dict[str, list[str]] = {}  # one warning per other entry, naming every class it shares
            for c in sorted(elsewhere):
                for other in elsewhere[c]:
                    shared.setdefault(other, []).append(c)
            for other, names in sorted(shared.items()):
                listed = ", ".join(map(repr, names[:10])) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
                warn(f"{entry.key}: {'class' if len(names) == 1 else f'{len(names)} classes'} {listed} "
                     f"{'is' if len(names) == 1 else 'are'} also {'a class' if len(names) == 1 else 'classes'} of "
                     f"data.combined.{other} (kept apart as {prefix}/<class>)")
            for spec in plan.specs:
                if any(level == COLLECTION for level, _ in spec.taxonomy):
                    raise ConfigError(
                        f"{entry.key}: task {spec.name!r} has a taxonomy level {COLLECTION!r} of its own; "
                        f"data.combined adds {COLLECTION!r} (the entry's prefix) above every entry's levels, so "
                        "rename that column of the entry's taxonomy table"
                    )
                notes = dict(spec.notes)
                notes["classes_in_other_sources"] = sum(c in elsewhere for c in spec.classes)
                notes["entry"] = prefix
                notes["entry_source"] = entry.source.name
                specs.append(
                    dataclasses.replace(
                        spec,
                        name=f"{prefix}-{spec.name}",
                        classes=tuple(f"{prefix}/{c}" for c in spec.classes),
                        taxonomy=((COLLECTION, prefix),) + spec.taxonomy,
                        source=self.name,
                        notes=tuple(notes.items()),
                    )
                )
        return specs

    def report(self, data_cfg: dict) -> dict:
        """Skipped tasks (prefixed names) and each entry's source-level counts."""
        skipped, per_entry = [], {}
        for prefix, (entry, plan) in _plans(data_cfg).items():
            skipped += [{"task": f"{prefix}-{n}", "reason": r} for n, r in plan.skipped]
            per_entry[prefix] = {"source": entry.source.name, **plan.counts}
        return {"skipped_tasks": skipped, "entries": per_entry}

    def build(self, data_cfg: dict, spec: TaskSpec) -> TaskData:
        """Decode a task's images through its entry's source (the entry's config, its key in messages)."""
        prefix, _, task = spec.name.partition("-")
        found = entries(data_cfg)
        if prefix not in found:
            raise TaskDataError(f"task {spec.name!r}: data.combined has no entry {prefix!r}")
        entry = found[prefix]
        plan = entry.source.grouped(entry.config, entry.key)
        if task not in plan.members:
            raise TaskDataError(f"task {spec.name!r} is not planned by {entry.key}")
        data = build_members(spec, plan.members[task], CommonKeys.of(data_cfg).resolution)
        data.class_names = [f"{prefix}/{c}" for c in data.class_names]
        data.attrs.update(entry=prefix, entry_source=entry.source.name)
        return data

    def task_config(self, data_cfg: dict, task: str) -> dict:
        """The data config without the task list, other sources' sections and the other entries of data.combined."""
        prefix = task.partition("-")[0]
        others = set(known_sources()) - {self.name}
        out = {k: v for k, v in data_cfg.items() if k != "tasks" and k not in others}
        combined = out.get(self.name)
        if isinstance(combined, dict) and prefix in combined:
            out[self.name] = {prefix: combined[prefix]}
        return out
