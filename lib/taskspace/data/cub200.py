"""``cub200``: Caltech-UCSD Birds-200-2011 in its official layout, with the official train/test split.

``root`` is the ``CUB_200_2011`` folder: ``images/``, ``images.txt`` (``<image id> <path under images/>``),
``image_class_labels.txt`` (``<image id> <class id>``), ``train_test_split.txt`` (``<image id> <1 train | 0 test>``)
and ``classes.txt`` (``<class id> <name>``, e.g. ``001.Black_footed_Albatross``). CUB ships no taxonomy: the
``taxonomy`` table (``class`` = the classes.txt name, then e.g. ``order,family``) supplies it. The CUB+iNat meta-task
of Task2Vec uses ``level: order`` with ``refine: {Passeriformes: family}``.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError, TaskDataError
from . import register_source
from . import settings as S
from .filesource import FileSource
from .grouping import FILTER_DEFAULTS, ClassImages, Collection, warn
from .taxonomy import read_taxonomy

DEFAULTS = {"root": None, "taxonomy": None, "level": "order", "refine": {}, **FILTER_DEFAULTS}
FILES = ("images.txt", "image_class_labels.txt", "train_test_split.txt", "classes.txt")


def read_id_file(path: Path, what: str) -> list[tuple[int, int, str]]:
    """(line number, id, rest of the line) of a ``<id> <value>`` file; malformed lines name the file and line."""
    rows = []
    with open(path, encoding="utf-8") as fh:
        for line_no, line in enumerate(fh, start=1):
            if not line.strip():
                continue
            parts = line.split(None, 1)
            if len(parts) != 2 or not parts[0].isdigit():
                raise TaskDataError(f"{path}, line {line_no}: expected '<id> <{what}>', got {line.strip()!r}")
            rows.append((line_no, int(parts[0]), parts[1].strip()))
    return rows


def _index(path: Path, rows, what: str) -> dict[int, tuple[int, str]]:
    """{id: (line, value)}; a repeated id is an error."""
    out: dict[int, tuple[int, str]] = {}
    for line_no, ident, value in rows:
        if ident in out:
            raise TaskDataError(f"{path}, line {line_no}: {what} id {ident} is listed again (line {out[ident][0]})")
        out[ident] = (line_no, value)
    return out


def _per_image(path: Path, images: dict, what: str) -> dict[int, tuple[int, str]]:
    """An image-id file checked against images.txt: every id must be an image id."""
    out = _index(path, read_id_file(path, what), "image")
    for ident, (line_no, _) in out.items():
        if ident not in images:
            raise TaskDataError(f"{path}, line {line_no}: image id {ident} is not in images.txt")
    return out


@register_source("cub200")
class Cub200Source(FileSource):
    """CUB-200-2011 with a taxonomy table; see the module docstring."""

    DEFAULTS = DEFAULTS

    def collect(self, cfg: dict, key: str, seed: int) -> Collection:
        root = S.directory(cfg["root"], f"{key}.root", "the CUB_200_2011 folder (images/, images.txt, ...)")
        for name in FILES:
            if not (root / name).is_file():
                raise ConfigError(f"{key}.root: {root} has no {name}; expected the CUB_200_2011 folder")
        table = S.file(cfg["taxonomy"], f"{key}.taxonomy", "a taxonomy table (class = classes.txt name -> levels)")
        taxonomy = read_taxonomy(table, f"{key}.taxonomy")

        classes_path = root / "classes.txt"
        classes = _index(classes_path, read_id_file(classes_path, "name"), "class")
        class_names = {i: name for i, (_, name) in classes.items()}
        images_path = root / "images.txt"
        images = _index(images_path, read_id_file(images_path, "path"), "image")
        labels_path, split_path = root / "image_class_labels.txt", root / "train_test_split.txt"
        labels = _per_image(labels_path, images, "class id")
        splits = _per_image(split_path, images, "1 train | 0 test")
        for ident, (line_no, value) in labels.items():
            if not value.isdigit() or int(value) not in class_names:
                raise TaskDataError(f"{labels_path}, line {line_no}: class id {value!r} is not in {classes_path}")
        for ident, (line_no, value) in splits.items():
            if value not in ("0", "1"):
                raise TaskDataError(f"{split_path}, line {line_no}: expected 1 (train) or 0 (test), got {value!r}")

        known = set(class_names.values())
        for cls, (where, _) in taxonomy.rows.items():
            if cls not in known:
                raise TaskDataError(f"{taxonomy.file}, {where}: class {cls!r} is not in {classes_path}")
        unused = sorted(known - set(taxonomy.rows))
        for cls in unused:
            warn(f"{key}: class {cls!r} of {classes_path} is not in the taxonomy {taxonomy.file}; not used")

        found = {cls: ClassImages([], []) for cls in taxonomy.rows}
        for ident, (line_no, rel) in images.items():
            for name, table_of in (("image_class_labels.txt", labels), ("train_test_split.txt", splits)):
                if ident not in table_of:
                    raise TaskDataError(f"{images_path}, line {line_no}: image id {ident} is missing from {name}")
            cls = class_names[int(labels[ident][1])]
            if cls not in found:
                continue
            path = root / "images" / rel
            if not path.is_file():
                raise TaskDataError(f"{images_path}, line {line_no}: image id {ident}: {path} does not exist")
            images_of = found[cls].train if splits[ident][1] == "1" else found[cls].test
            images_of.append(str(path))
        return Collection(found, taxonomy, {"unused_classes": len(unused)})
