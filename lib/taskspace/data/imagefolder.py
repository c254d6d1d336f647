"""``imagefolder``: any folder-per-class tree (``root/<class>/<image files>``) plus a taxonomy table.

The taxonomy (CSV or Parquet: ``class`` = folder name, one column per level) says which folders are classes and how
they group into tasks. Every taxonomy class needs its folder; folders the taxonomy does not list are not used
(warned about and counted). Files without an image extension are counted as ``non_image_files``; hidden entries
(names starting with '.') are ignored. The split is the optional ``split`` CSV (``path,split``; path relative to
root, split ``train`` or ``test``; images it does not list are left out and counted as ``unlisted_images``), or else
a seeded stratified split per class with ``max(1, round(test_fraction * n))`` test images, keyed by
(data.seed, class) so it never depends on which other classes exist.

``level`` names the column whose values are the tasks, or lists it and then the levels above it, finest first
(``[category, collection]``): every task records its value at each (columns of results/tasks.parquet, the groups of
the figures and of the distance-vs-taxonomy analysis), and each must hold one value for all the classes of each value
of the level before it. A single name keeps the table's order instead: the columns left of it that a task's classes
share are its levels above.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from ..errors import TaskDataError
from . import paths, register_source
from .filesource import FileSource
from .grouping import ClassImages, Collection, Filters, GroupingSettings, seeded_split, warn
from .images import is_image_file
from .taxonomy import read_taxonomy

SPLITS = ("train", "test")


def list_class_folder(folder: Path, key: str) -> tuple[list[str], list[str]]:
    """(image file names, other entry names) of one class folder, sorted; hidden entries are ignored."""
    images, others = [], []
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.name.startswith("."):
                continue
            (images if entry.is_file() and is_image_file(entry.name) else others).append(entry.name)
    if others:
        shown = ", ".join(sorted(others)[:5]) + (", ..." if len(others) > 5 else "")
        warn(f"{key}: {len(others)} non-image entr{'y' if len(others) == 1 else 'ies'} in {folder} not used: {shown}")
    return sorted(images), sorted(others)


def read_split_file(path: Path, root: Path) -> dict[str, str]:
    """{"<class>/<file>": "train" | "test"} from a ``path,split`` CSV; bad lines are TaskDataErrors naming them."""
    out: dict[str, str] = {}
    first_line: dict[str, int] = {}
    with open(path, newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = [h.strip() for h in next(reader, [])]
        if "path" not in header or "split" not in header:
            raise TaskDataError(f"{path}, line 1: the header must name the columns 'path' and 'split', got {header}")
        ip, isplit = header.index("path"), header.index("split")
        for fields in reader:
            line = reader.line_num
            if not any(f.strip() for f in fields):
                continue
            if len(fields) != len(header):
                raise TaskDataError(f"{path}, line {line}: has {len(fields)} fields, the header has {len(header)}")
            rel, split = fields[ip].strip(), fields[isplit].strip().lower()
            if split not in SPLITS:
                raise TaskDataError(f"{path}, line {line}: split must be 'train' or 'test', got {fields[isplit]!r}")
            parts = PurePosixPath(rel.replace("\\", "/")).parts
            if len(parts) != 2 or ".." in parts:
                raise TaskDataError(f"{path}, line {line}: path {rel!r} must be <class folder>/<image file>")
            if not (root / parts[0] / parts[1]).is_file():
                raise TaskDataError(f"{path}, line {line}: {rel!r} does not exist under {root}")
            if not is_image_file(parts[1]):
                raise TaskDataError(f"{path}, line {line}: {rel!r} is not an image file (by its extension)")
            norm = "/".join(parts)
            if norm in out:
                raise TaskDataError(f"{path}, line {line}: {rel!r} is listed again (first on line {first_line[norm]})")
            out[norm], first_line[norm] = split, line
    return out


@dataclass(frozen=True)
class ImageFolderSettings(GroupingSettings):
    """``data.imagefolder``: the folder of class folders, the taxonomy table and the split (a file or a fraction)."""

    SECTION = "data.imagefolder"

    level: str | list[str] | None  # a list: the task level, then the levels above it
    root: str | None
    taxonomy: str | None
    split: str | None
    test_fraction: float


@register_source("imagefolder")
class ImageFolderSource(FileSource):
    """Folder per class + taxonomy table; see the module docstring."""

    SETTINGS = ImageFolderSettings

    def filters(self, cfg: ImageFolderSettings, key: str) -> Filters:
        """Grouped at ``level`` (its first name where it is a list, the rest being the declared levels above)."""
        if isinstance(cfg.level, (list, tuple)):
            return Filters.of(cfg, key, cfg.level[0], cfg.refine, tuple(cfg.level[1:]))
        return super().filters(cfg, key)

    def collect(self, cfg: ImageFolderSettings, key: str, seed: int) -> Collection:
        """The taxonomy's classes with their folders' images, split by the split file or seeded per class."""
        root = paths.directory(cfg.root, f"{key}.root", "a folder with one sub-folder of images per class")
        table = paths.file(cfg.taxonomy, f"{key}.taxonomy", "a taxonomy table (CSV or Parquet: class -> levels)")
        taxonomy = read_taxonomy(table, f"{key}.taxonomy")
        split_path = None
        if cfg.split is not None:
            split_path = paths.file(cfg.split, f"{key}.split", "a CSV with columns path,split")
        with os.scandir(root) as entries:
            folders = sorted(e.name for e in entries if e.is_dir() and not e.name.startswith("."))
        for cls, (where, _) in taxonomy.rows.items():
            if not (root / cls).is_dir():
                raise TaskDataError(f"{taxonomy.file}, {where}: class {cls!r} has no folder {root / cls}")
        unused = [f for f in folders if f not in taxonomy.rows]
        for folder in unused:
            warn(f"{key}: folder {root / folder} is not a class of the taxonomy {taxonomy.file}; not used")
        listed = read_split_file(split_path, root) if split_path else None
        classes = {}
        for cls in taxonomy.rows:
            names, others = list_class_folder(root / cls, key)
            notes = {"non_image_files": len(others), "unlisted_images": 0}
            if listed is None:
                train, test = seeded_split(names, cfg.test_fraction, seed, cls)
            else:
                split_of = {n: listed.get(f"{cls}/{n}") for n in names}
                train = [n for n in names if split_of[n] == "train"]
                test = [n for n in names if split_of[n] == "test"]
                notes["unlisted_images"] = sum(v is None for v in split_of.values())
                if notes["unlisted_images"]:
                    warn(
                        f"{key}: {notes['unlisted_images']} image(s) of class {cls!r} are not in {split_path}; "
                        "not used"
                    )
            folder = root / cls
            classes[cls] = ClassImages([str(folder / n) for n in train], [str(folder / n) for n in test], notes)
        return Collection(classes, taxonomy, {"unused_folders": len(unused)}, ("non_image_files", "unlisted_images"))
