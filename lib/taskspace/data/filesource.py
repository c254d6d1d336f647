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
from . import TaskData, TaskSpec
from . import settings as S
from .grouping import FILTER_DEFAULTS, Collection, GroupedPlan, Member, group_tasks, parse_filters, warn
from .images import load_images


class FileSource:
    """Base class: subclasses set ``DEFAULTS`` (their config keys and defaults) and implement ``collect``."""

    name = "?"
    DEFAULTS: dict = {}
    LEVEL: str | None = None  # a fixed grouping level (the section then has no ``level`` key)

    def settings(self, data_cfg: dict, key: str | None = None) -> tuple[dict, str]:
        """This source's config section with defaults filled in, and the key that names it in errors."""
        key = key or f"data.{self.name}"
        return S.section(data_cfg.get(self.name), self.DEFAULTS, key), key

    def collect(self, cfg: dict, key: str, seed: int) -> Collection:
        """Every usable class with its image files by split, and the taxonomy of those classes."""
        raise NotImplementedError

    def grouped(self, data_cfg: dict, key: str | None = None) -> GroupedPlan:
        """The full plan: task specs, the files of each task's classes, tasks skipped and source-level counts."""
        cfg, key = self.settings(data_cfg, key)
        seed = int(data_cfg.get("seed", 0))
        level = self.LEVEL or cfg.get("level") or "(first level of the taxonomy)"
        filters = parse_filters({**FILTER_DEFAULTS, **cfg}, key, level)
        found = self.collect(cfg, key, seed)
        if not self.LEVEL and not cfg.get("level"):
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
        return build_members(spec, plan.members[spec.name], int(data_cfg.get("resolution", 32)))


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
