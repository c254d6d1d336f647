"""``stanford_cars``: Stanford Cars in the layout torchvision's ``StanfordCars`` reads; one task per manufacturer.

``root`` holds ``stanford_cars/`` (or is that folder): ``devkit/cars_meta.mat`` (``class_names``),
``devkit/cars_train_annos.mat`` and ``cars_test_annos_withlabels.mat`` (``annotations``: ``fname``, 1-based
``class``), images in ``cars_train/`` and ``cars_test/``; the official split is used. A task is one manufacturer:
the make at the start of the class name ("BMW M3 Coupe 2012" -> BMW), the first word except the makes of
:data:`MULTI_WORD_MAKES`. An optional ``taxonomy`` table (columns ``class``, ``manufacturer``) overrides the make of
the classes it lists. Makes with a single model are skipped (``min_classes: 2``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError, TaskDataError
from . import paths, register_source
from .filesource import FileSource
from .grouping import ClassImages, Collection, FilterSettings, Filters
from .taxonomy import read_taxonomy, taxonomy_from_mapping

LEVEL = "manufacturer"
# makes of more than one word among the 196 classes; every other make is the class name's first word
MULTI_WORD_MAKES = ("AM General", "Aston Martin", "Land Rover")


def make_of(class_name: str) -> str:
    """The manufacturer at the start of a Stanford Cars class name."""
    for make in MULTI_WORD_MAKES:
        if class_name == make or class_name.startswith(make + " "):
            return make
    return class_name.split()[0]


def _loadmat(path: Path) -> dict:
    import scipy.io

    try:
        return scipy.io.loadmat(path, squeeze_me=True)
    except Exception as err:  # scipy raises ValueError, TypeError, MatReadError, ...
        raise TaskDataError(f"{path}: not a readable .mat file ({err})") from err


def read_class_names(path: Path) -> list[str]:
    """``class_names`` of cars_meta.mat (class k + 1 of the annotations is entry k)."""
    mat = _loadmat(path)
    if "class_names" not in mat:
        raise TaskDataError(f"{path}: no 'class_names' variable")
    names = [str(n).strip() for n in np.atleast_1d(mat["class_names"]).tolist()]
    seen: dict[str, int] = {}
    for i, name in enumerate(names, start=1):
        if not name:
            raise TaskDataError(f"{path}: class {i} has an empty name")
        if name in seen:
            raise TaskDataError(f"{path}: classes {seen[name]} and {i} share the name {name!r}")
        seen[name] = i
    return names


def read_annotations(path: Path, images: Path, n_classes: int) -> list[tuple[str, int]]:
    """(image path, 0-based class) of each annotation; a bad class or a missing file names the .mat file."""
    mat = _loadmat(path)
    if "annotations" not in mat:
        raise TaskDataError(f"{path}: no 'annotations' variable")
    out = []
    for i, ann in enumerate(np.atleast_1d(mat["annotations"]), start=1):
        try:
            fname, label = str(ann["fname"]).strip(), int(ann["class"])
        except (ValueError, IndexError, TypeError) as err:
            raise TaskDataError(f"{path}: annotation {i} lacks 'fname' or 'class' ({err})") from err
        if not 1 <= label <= n_classes:
            raise TaskDataError(f"{path}: annotation {i} ({fname}): class {label} is not in 1..{n_classes}")
        file = images / fname
        if not file.is_file():
            raise TaskDataError(f"{path}: annotation {i}: {file} does not exist")
        out.append((str(file), label - 1))
    return out


@dataclass(frozen=True)
class StanfordCarsSettings(FilterSettings):
    """``data.stanford_cars``: the folder and an optional table of makes; the tasks group by manufacturer."""

    SECTION = "data.stanford_cars"

    root: str | None
    taxonomy: str | None


@register_source("stanford_cars")
class StanfordCarsSource(FileSource):
    """Stanford Cars, one task per manufacturer; see the module docstring."""

    SETTINGS = StanfordCarsSettings

    def filters(self, cfg: StanfordCarsSettings, key: str) -> Filters:
        """The section's filters at the one level, the manufacturer."""
        return Filters.of(cfg, key, LEVEL, {})

    def collect(self, cfg: StanfordCarsSettings, key: str, seed: int) -> Collection:
        """The 196 classes with their official split, grouped by make (the class name's, or the table's)."""
        root = paths.directory(cfg.root, f"{key}.root", "the folder holding stanford_cars/")
        base = root / "stanford_cars" if (root / "stanford_cars").is_dir() else root
        meta = base / "devkit" / "cars_meta.mat"
        splits = {
            "train": (base / "devkit" / "cars_train_annos.mat", base / "cars_train"),
            "test": (base / "cars_test_annos_withlabels.mat", base / "cars_test"),
        }
        for path in [meta] + [p for pair in splits.values() for p in pair]:
            if not path.exists():
                raise ConfigError(
                    f"{key}.root: {path} does not exist (expected the layout torchvision.datasets.StanfordCars reads)"
                )
        names = read_class_names(meta)
        classes = {name: ClassImages([], []) for name in names}
        for split, (annotation_file, images) in splits.items():
            for file, label in read_annotations(annotation_file, images, len(names)):
                getattr(classes[names[label]], split).append(file)

        rows = {name: (f"class {i}", {LEVEL: make_of(name)}) for i, name in enumerate(names, start=1)}
        file = str(meta)
        if cfg.taxonomy is not None:
            table = paths.file(cfg.taxonomy, f"{key}.taxonomy", "a table with columns class, manufacturer")
            override = read_taxonomy(table, f"{key}.taxonomy")
            if LEVEL not in override.levels:
                raise TaskDataError(f"{table}: needs a column {LEVEL!r}; its columns are {list(override.levels)}")
            for cls, (where, values) in override.rows.items():
                if cls not in rows:
                    raise TaskDataError(f"{table}, {where}: class {cls!r} is not in {meta}")
                rows[cls] = (where, {LEVEL: values[LEVEL]})
            file = str(table)
        return Collection(classes, taxonomy_from_mapping(file, (LEVEL,), rows))
