"""Reading a prepared folder in the tests of ``taskspace prepare``: its tables, files, record, pixels and the tasks
the imagefolder source plans from it."""

from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from taskspace.data import plan_tasks
from taskspace.data.grouping import DataWarning
from taskspace.plan import validate_config


def read_csv(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.reader(fh))


def tree(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` by relative path, with its bytes."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def class_files(dest: Path) -> dict[str, list[str]]:
    """{class folder: its sorted file names} of a prepared folder."""
    return {c.name: sorted(f.name for f in c.iterdir()) for c in sorted((dest / "images").iterdir())}


def record(dest: Path) -> dict:
    return json.loads((dest / "prepared.json").read_text())


def pixels(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img)


def plan(data: dict) -> dict:
    """The planned tasks of a data config, {name: spec} (the data warnings silenced)."""
    config = validate_config({"data": data})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        return {s.name: s for s in plan_tasks(config["data"]) if s.role == "task"}


def plan_prepared(dest: Path, level: str = "category") -> dict:
    """The planned tasks of a prepared folder with a split file, tasks at ``level``."""
    return plan({"source": "imagefolder", "imagefolder": {"root": f"{dest}/images", "taxonomy": f"{dest}/taxonomy.csv",
                                                          "split": f"{dest}/split.csv", "level": level}})
