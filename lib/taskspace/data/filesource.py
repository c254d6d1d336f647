"""The common shape of sources that read image files (imagefolder, cub200, inat2018, stanford_cars).

Such a source only says what it finds on disk (:meth:`FileSource.collect`: classes, their image files by split, their
taxonomy); planning (grouping into tasks, filters, names) and building (decoding the planned files) are shared.
Planning reads annotation files and lists folders but never decodes an image.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np

from ..errors import TaskDataError
from . import CommonKeys, TaskData, TaskSpec
from .grouping import Collection, FilterSettings, Filters, GroupedPlan, GroupingSettings, Member, group_tasks, warn
from .images import load_images


class FileSource:
    """Base class: subclasses set ``SETTINGS`` (the typed settings of their section) and implement ``collect``."""

    name = "?"
    SETTINGS: type[FilterSettings] = FilterSettings

    def settings(self, data_cfg: dict, key: str | None = None) -> tuple[FilterSettings, str]:
        """This source's section as typed settings (validated, defaults filled in), and the key naming it in
        errors: ``data.<source>``, or the entry's key in data.combined."""
        key = key or f"data.{self.name}"
        return self.SETTINGS.from_config(data_cfg.get(self.name), key), key

    def filters(self, cfg: GroupingSettings, key: str) -> Filters:
        """How the section's classes become tasks: grouped at its level (unset: the taxonomy's first) and refine."""
        return Filters.of(cfg, key, cfg.level or None, cfg.refine)

    def collect(self, cfg: FilterSettings, key: str, seed: int) -> Collection:
        """Every usable class with its image files by split, and the taxonomy of those classes."""
        raise NotImplementedError

    def grouped(self, data_cfg: dict, key: str | None = None) -> GroupedPlan:
        """The full plan: task specs, the files of each task's classes, tasks skipped and source-level counts."""
        cfg, key = self.settings(data_cfg, key)
        return self.group(cfg, key, CommonKeys.of(data_cfg).seed)

    def group(self, cfg: FilterSettings, key: str, seed: int) -> GroupedPlan:
        """The plan of a section's settings; ``key`` names the section in errors."""
        filters = self.filters(cfg, key)
        found = self.collect(cfg, key, seed)
        if filters.level is None:
            filters = dataclasses.replace(filters, level=found.taxonomy.levels[0])
        return group_tasks(found, filters, seed, key, self.name)

    def plan(self, data_cfg: dict) -> list[TaskSpec]:
        """Task specs (no source task: a file-backed source has no pretraining task)."""
        return self.grouped(data_cfg).specs

    def report(self, data_cfg: dict) -> dict:
        """What planning left out: whole tasks skipped by the filters, and source-level counts."""
        return self.grouped(data_cfg).report()

    def build(self, data_cfg: dict, spec: TaskSpec, key: str | None = None) -> TaskData:
        """Decode the planned images of one task (undecodable files are skipped, warned about and counted)."""
        plan = self.grouped(data_cfg, key)
        if spec.name not in plan.members:
            raise TaskDataError(f"task {spec.name!r} is not planned by {key or 'data.' + self.name}")
        return build_members(spec, plan.members[spec.name], CommonKeys.of(data_cfg).resolution)


def build_members(spec: TaskSpec, members: list[Member], resolution: int) -> TaskData:
    """Training images of every class, then test images; labels follow ``members`` (the spec's class order)."""
    paths: list[str] = []
    labels: list[int] = []
    is_train: list[bool] = []
    for train in (True, False):
        for label, member in enumerate(members):
            files = member.train if train else member.test
            paths += files
            labels += [label] * len(files)
            is_train += [train] * len(files)
    images, failed = load_images(paths, resolution)
    for _, message in failed:
        warn(f"task {spec.name!r}: image skipped: {message}")
    bad = {i for i, _ in failed}
    keep = np.array([i not in bad for i in range(len(paths))], dtype=bool)
    labels_arr = np.asarray(labels, dtype=np.int64)[keep]
    train_arr = np.asarray(is_train, dtype=bool)[keep]
    for label, member in enumerate(members):
        for split, mask in (("training", train_arr), ("test", ~train_arr)):
            if not np.any(labels_arr[mask] == label):
                raise TaskDataError(
                    f"task {spec.name!r}: class {member.name!r} has no decodable {split} image left after skipping "
                    f"{len(failed)} undecodable image(s) of the task"
                )
    attrs = {"skipped_images": len(failed), "skipped_files": json.dumps([paths[i] for i, _ in failed])}
    return TaskData(images, labels_arr, train_arr, [m.name for m in members], attrs)
