"""``inat2018``: iNaturalist 2018 in its COCO-like JSON layout; training images from one file, test from another.

Each annotation file holds ``images`` (``id``, ``file_name`` relative to ``root``), ``annotations`` (``image_id``,
``category_id``) and ``categories`` (``id``, ``name`` and the taxonomy fields ``kingdom, phylum, class, order,
family, genus``). The classes are the category names; the taxonomy comes from the categories themselves, those of the
training file unless ``categories`` names a separate file (a list of categories, or ``{"categories": [...]}``, like
the ``categories.json`` published with the 2018 data). Files are not checked for existence when planning (hundreds of
thousands of them); a missing file stops its task's split job, naming the file.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..errors import TaskDataError
from . import paths, register_source
from .filesource import FileSource
from .grouping import ClassImages, Collection, GroupingSettings, warn
from .taxonomy import taxonomy_from_mapping

LEVELS = ("kingdom", "phylum", "class", "order", "family", "genus")


@lru_cache(maxsize=4)
def _load_json(path: str, mtime_ns: int, size: int):
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def load_json(path: Path):
    """Parse a JSON file (cached per process while the file is unchanged: plan and build both read it)."""
    st = os.stat(path)
    try:
        return _load_json(str(path), st.st_mtime_ns, st.st_size)
    except json.JSONDecodeError as err:
        raise TaskDataError(f"{path}: not valid JSON ({err})") from err


def _records(path: Path, doc, field: str, required: tuple[str, ...]) -> list[dict]:
    items = doc.get(field) if isinstance(doc, dict) else None
    if not isinstance(items, list):
        raise TaskDataError(f"{path}: expected a JSON object with a list {field!r}")
    for i, item in enumerate(items):
        if not isinstance(item, dict) or any(k not in item for k in required):
            raise TaskDataError(f"{path}: {field}[{i}] must be an object with keys {list(required)}, got {item!r}")
    return items


def read_categories(path: Path) -> dict[int, dict]:
    """{category id: category} of an annotation or categories file; ids and names must be unique."""
    doc = load_json(path)
    cats = _records(path, {"categories": doc} if isinstance(doc, list) else doc, "categories", ("id", "name"))
    out: dict[int, dict] = {}
    names: dict[str, int] = {}
    for cat in cats:
        ident, name = cat["id"], str(cat["name"]).strip()
        if ident in out:
            raise TaskDataError(f"{path}: category id {ident} is listed twice")
        if not name:
            raise TaskDataError(f"{path}: category id {ident} has an empty name")
        if name in names:
            raise TaskDataError(f"{path}: categories {names[name]} and {ident} share the name {name!r}")
        out[ident], names[name] = cat, ident
    return out


def read_split(path: Path, root: Path, categories: dict[int, dict]) -> tuple[dict[int, list[str]], int]:
    """({category id: image paths}, images without an annotation) of one annotation file."""
    doc = load_json(path)
    images = {}
    for i, img in enumerate(_records(path, doc, "images", ("id", "file_name"))):
        if img["id"] in images:
            raise TaskDataError(f"{path}: images[{i}]: image id {img['id']} is listed twice")
        images[img["id"]] = img["file_name"]
    by_category: dict[int, list[str]] = {}
    labelled: dict = {}
    for i, ann in enumerate(_records(path, doc, "annotations", ("image_id", "category_id"))):
        image_id, cat = ann["image_id"], ann["category_id"]
        if image_id not in images:
            raise TaskDataError(f"{path}: annotations[{i}]: image_id {image_id} is not in the file's images")
        if cat not in categories:
            raise TaskDataError(f"{path}: annotations[{i}]: category_id {cat} is not a known category")
        if image_id in labelled:
            raise TaskDataError(f"{path}: annotations[{i}]: image_id {image_id} is annotated twice")
        labelled[image_id] = cat
        by_category.setdefault(cat, []).append(str(root / images[image_id]))
    return by_category, len(images) - len(labelled)


@dataclass(frozen=True)
class INat2018Settings(GroupingSettings):
    """``data.inat2018``: the folder, its two annotation files and an optional categories file."""

    SECTION = "data.inat2018"

    root: str | None
    train_annotations: str
    test_annotations: str
    categories: str | None


@register_source("inat2018")
class INat2018Source(FileSource):
    """iNaturalist 2018; see the module docstring."""

    SETTINGS = INat2018Settings

    def collect(self, cfg: INat2018Settings, key: str, seed: int) -> Collection:
        """The categories with an image, their training and test images, and their taxonomy."""
        root = paths.directory(cfg.root, f"{key}.root", "the iNaturalist 2018 folder (annotation files, images)")
        train_path = paths.file(cfg.train_annotations, f"{key}.train_annotations", "the training annotations", root)
        test_path = paths.file(cfg.test_annotations, f"{key}.test_annotations", "the test annotations", root)
        cat_path = train_path
        if cfg.categories is not None:
            cat_path = paths.file(cfg.categories, f"{key}.categories", "the categories with their taxonomy", root)
        categories = read_categories(cat_path)
        train, unlabelled_train = read_split(train_path, root, categories)
        test, unlabelled_test = read_split(test_path, root, categories)
        for path, n in ((train_path, unlabelled_train), (test_path, unlabelled_test)):
            if n:
                warn(f"{key}: {n} image(s) of {path} have no annotation; not used")

        used = sorted(set(train) | set(test))
        levels = [cfg.level, *cfg.refine.values()]
        rows, classes = {}, {}
        for ident in used:
            cat = categories[ident]
            name = str(cat["name"]).strip()
            for level in levels:
                if level in LEVELS and level not in cat:
                    raise TaskDataError(f"{cat_path}: category id {ident} ({name!r}) has no {level!r} field")
            rows[name] = (f"category id {ident}", {lev: cat.get(lev) for lev in LEVELS})
            classes[name] = ClassImages(train.get(ident, []), test.get(ident, []))
        unused = len(categories) - len(used)
        if unused:
            warn(f"{key}: {unused} categor{'y' if unused == 1 else 'ies'} of {cat_path} have no image; not used")
        taxonomy = taxonomy_from_mapping(str(cat_path), LEVELS, rows)
        counts = {
            "unlabelled_images": unlabelled_train + unlabelled_test,
            "categories_without_images": unused,
        }
        return Collection(classes, taxonomy, counts)
