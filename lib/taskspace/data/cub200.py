"""``cub200``: Caltech-UCSD Birds-200-2011 in its official layout, with the official train/test split.

``root`` is the ``CUB_200_2011`` folder: ``images/``, ``images.txt`` (``<image id> <path under images/>``),
``image_class_labels.txt`` (``<image id> <class id>``), ``train_test_split.txt`` (``<image id> <1 train | 0 test>``)
and ``classes.txt`` (``<class id> <name>``, e.g. ``001.Black_footed_Albatross``). CUB ships no taxonomy: the
``taxonomy`` table (``class`` = the classes.txt name, then e.g. ``order,family``) supplies it. The CUB+iNat meta-task
of Task2Vec uses ``level: order`` with ``refine: {Passeriformes: family}``.

Attribute labels (``attribute``: an attribute group such as ``has_breast_pattern``; null, the default, keeps the
species labels). The tasks are the same (the species grouped by ``level``/``refine``, same names and taxonomy, the
official split), but a task's classes are the group's values as ``attributes.txt`` spells them after ``::``
(``solid``, ``spotted``, ``striped``, ``multi-colored``): Wallace et al.'s CUB-bp+iNat. An image's label is the one
value of the group that ``attributes/image_attribute_labels.txt`` marks present (is_present 1) with a certainty id of
at least ``min_certainty`` (``attributes/certainties.txt``: 1 not visible, 2 guessing, 3 probably, 4 definitely;
default 2, so a value marked on a breast the annotator could not see does not count). Images with no such value, or
with several, are left out: one warning per task, counted per task as ``no_attribute_value`` and
``several_attribute_values``. The values left in a task are its classes, filtered like species (``min_images``, a
training and a test image each, ``min_classes``/``max_classes``, ``max_train_per_class``), in sorted order.

Attribute files: ``attributes.txt`` (``<attribute id> <group>::<value>``, 312 attributes in 28 groups) is looked up
at ``<root>/attributes/attributes.txt`` (where the dataset's README says), ``<root>/attributes.txt``, then
``<root>/../attributes.txt`` (where the official CUB_200_2011.tgz puts it: next to the CUB_200_2011 folder).
``image_attribute_labels.txt`` has a line per image and attribute (about 3.7 million):
``<image id> <attribute id> <is_present> <certainty id> <time>``; only the first four fields are read, so the lines
of the real file that carry extra fields read like the others. It is parsed by numpy in one pass, once per process
while the file is unchanged (planning and building both need it).
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import ConfigError, TaskDataError
from . import paths, register_source
from .filesource import FileSource
from .grouping import (
    ClassImages,
    Collection,
    GroupedPlan,
    GroupingSettings,
    group_classes,
    group_tasks,
    task_names,
    warn,
)
from .taxonomy import Taxonomy, read_taxonomy, taxonomy_from_mapping

FILES = ("images.txt", "image_class_labels.txt", "train_test_split.txt", "classes.txt")
LABELS_FILE = Path("attributes") / "image_attribute_labels.txt"
CERTAINTIES_FILE = Path("attributes") / "certainties.txt"
# attributes.txt, relative to root, in the order looked up (see the module docstring)
NAMES_FILES = (Path("attributes") / "attributes.txt", Path("attributes.txt"), Path("..") / "attributes.txt")
LABEL_FIELDS = "<image id> <attribute id> <is_present 0|1> <certainty id> <time>"
# per-task counts of the images an attribute leaves out (TaskSpec notes, columns of results/tasks.parquet)
LEFT_OUT = ("no_attribute_value", "several_attribute_values")


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


# ------------------------------------------------------------------------------------------------ attribute files


def read_attribute_names(path: Path) -> dict[str, dict[int, str]]:
    """{group: {attribute id: value}} of attributes.txt (``<id> <group>::<value>``), groups in file order."""
    groups: dict[str, dict[int, str]] = {}
    seen: dict[tuple[str, str], int] = {}
    for ident, (line_no, name) in _index(path, read_id_file(path, "group::value"), "attribute").items():
        group, sep, value = (part.strip() for part in name.partition("::"))
        if not sep or not group or not value:
            raise TaskDataError(f"{path}, line {line_no}: expected '<attribute id> <group>::<value>', got "
                                f"{f'{ident} {name}'!r}")
        if (group, value) in seen:
            raise TaskDataError(f"{path}, line {line_no}: {group}::{value} is listed again (line "
                                f"{seen[(group, value)]})")
        seen[(group, value)] = line_no
        groups.setdefault(group, {})[ident] = value
    return groups


@dataclasses.dataclass(frozen=True)
class AttributeLabels:
    """What planning needs of image_attribute_labels.txt: the lines marking a value present, and every id used."""

    present: np.ndarray  # int32 (k, 3): image id, attribute id, certainty id of each line with is_present 1
    image_ids: np.ndarray  # the distinct ids of each column, over all lines
    attribute_ids: np.ndarray
    certainty_ids: np.ndarray


def _distinct(column: np.ndarray) -> np.ndarray:
    """Sorted distinct non-negative ids (a bincount when they are dense, as CUB's are)."""
    if column.size and int(column.max()) <= 4 * column.size + 1024:
        return np.flatnonzero(np.bincount(column))
    return np.unique(column)


def _bad_label_line(path: Path, problem: str) -> TaskDataError:
    """The error naming the first malformed line of image_attribute_labels.txt (found line by line: the slow path,
    taken only once the fast parse found a ``problem``)."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line_no, line in enumerate(fh, start=1):
            fields = line.split()
            if not fields:
                continue
            if len(fields) < 4 or not all(f.isascii() and f.isdigit() for f in fields[:4]):
                return TaskDataError(f"{path}, line {line_no}: expected '{LABEL_FIELDS}', got {line.strip()!r}")
            if fields[2] not in ("0", "1"):
                return TaskDataError(f"{path}, line {line_no}: is_present must be 0 or 1, got {fields[2]!r}")
    return TaskDataError(f"{path}: not readable as '{LABEL_FIELDS}' lines ({problem})")


@lru_cache(maxsize=2)
def _read_labels(path: str, mtime_ns: int, size: int) -> AttributeLabels:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # numpy warns about an empty file: reported below
            table = np.loadtxt(path, dtype=np.int32, usecols=(0, 1, 2, 3), ndmin=2, comments=None, encoding="utf-8")
    except ValueError as err:  # fewer than four fields, or a non-integer among them (or out of range)
        raise _bad_label_line(Path(path), str(err)) from err
    if not len(table):
        raise TaskDataError(f"{path}: no attribute labels (the file is empty)")
    if int(table.min()) < 0 or not np.isin(table[:, 2], (0, 1)).all():
        raise _bad_label_line(Path(path), "a negative id or an is_present other than 0 and 1")
    present = np.ascontiguousarray(table[table[:, 2] == 1][:, [0, 1, 3]])
    present.flags.writeable = False  # shared by every caller through the cache
    return AttributeLabels(present, *(_distinct(table[:, c]) for c in (0, 1, 3)))


def read_attribute_labels(path: Path) -> AttributeLabels:
    """Parse image_attribute_labels.txt (the first four fields of each line); cached per process while unchanged."""
    st = os.stat(path)
    return _read_labels(str(path), st.st_mtime_ns, st.st_size)


def _first_line_with(path: Path, column: int, ids: set[int]) -> tuple[int, int]:
    """(line number, id) of the first line whose ``column`` holds one of ``ids`` (to name it in an error)."""
    with open(path, encoding="utf-8", errors="replace") as fh:
        for line_no, line in enumerate(fh, start=1):
            fields = line.split()
            if len(fields) > column and int(fields[column]) in ids:
                return line_no, int(fields[column])
    raise TaskDataError(f"{path}: ids {sorted(ids)} were parsed from column {column + 1} but no line holds them")


def image_values(
    labels: AttributeLabels, values: dict[int, str], min_certainty: int
) -> tuple[dict[int, str], set[int]]:
    """({image id: value} of the images with exactly one of ``values`` marked present at certainty id >=
    ``min_certainty``, the ids of the images with several); images with none are in neither."""
    rows = labels.present
    keep = np.isin(rows[:, 1], np.fromiter(values, dtype=np.int64, count=len(values))) & (rows[:, 2] >= min_certainty)
    pairs = np.unique(rows[keep][:, :2], axis=0).reshape(-1, 2)  # (image, attribute), each once
    images, first, counts = np.unique(pairs[:, 0], return_index=True, return_counts=True)
    single = counts == 1
    label = {int(i): values[int(a)] for i, a in zip(images[single], pairs[first[single], 1])}
    return label, set(images[~single].tolist())


def attribute_labels(
    root: Path, key: str, attribute: str, min_certainty: int, image_ids: set[int], images_path: Path
) -> tuple[dict[int, str], set[int], str]:
    """The images' values of one attribute group (:func:`image_values`) after checking every id of the attribute
    files, and the name of ``min_certainty``; a missing file or an unknown group names the config key."""
    candidates = [root / p for p in NAMES_FILES]
    names_path = next((p for p in candidates if p.is_file()), None)
    if names_path is None:
        raise ConfigError(
            f"{key}.attribute: no attributes.txt; expected {candidates[0]}, {candidates[1]} or {candidates[2]} "
            "(the official CUB_200_2011.tgz has it next to the CUB_200_2011 folder)"
        )
    labels_path, certainties_path = root / LABELS_FILE, root / CERTAINTIES_FILE
    for path in (labels_path, certainties_path):
        if not path.is_file():
            raise ConfigError(f"{key}.attribute: {path} does not exist (expected the CUB_200_2011 attribute files "
                              f"{LABELS_FILE} and {CERTAINTIES_FILE} under {root})")
    groups = read_attribute_names(names_path)
    if attribute not in groups:
        close = difflib.get_close_matches(attribute, list(groups), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"{key}.attribute: unknown attribute group {attribute!r}{hint}; the groups of {names_path} "
                          f"are {', '.join(groups)}")
    certainties = _index(certainties_path, read_id_file(certainties_path, "certainty name"), "certainty")
    if min_certainty not in certainties:
        known = ", ".join(f"{i} {name}" for i, (_, name) in sorted(certainties.items()))
        raise ConfigError(f"{key}.min_certainty: {min_certainty} is not a certainty id of {certainties_path} ({known})")
    labels = read_attribute_labels(labels_path)
    attribute_ids = {i for values in groups.values() for i in values}
    for column, ids, known, what, where in (
        (0, labels.image_ids, image_ids, "image", images_path),
        (1, labels.attribute_ids, attribute_ids, "attribute", names_path),
        (3, labels.certainty_ids, set(certainties), "certainty", certainties_path),
    ):
        unknown = {i for i in ids.tolist() if i not in known}
        if unknown:
            line_no, ident = _first_line_with(labels_path, column, unknown)
            raise TaskDataError(f"{labels_path}, line {line_no}: {what} id {ident} is not in {where}")
    label, several = image_values(labels, groups[attribute], min_certainty)
    return label, several, certainties[min_certainty][1]


# ------------------------------------------------------------------------------------------------------- source


@dataclasses.dataclass
class Catalogue:
    """What CUB's annotation files say: every image of a taxonomy class as (image id, class, file, is_train) in
    images.txt order, the image ids of images.txt, the taxonomy and how many classes.txt classes it leaves unused."""

    root: Path
    images_path: Path
    taxonomy: Taxonomy
    images: list[tuple[int, str, str, bool]]
    image_ids: set[int]
    unused: int


@dataclasses.dataclass(frozen=True)
class Cub200Settings(GroupingSettings):
    """``data.cub200``: the CUB_200_2011 folder, the taxonomy table, and the attribute group that labels the images
    instead of the species (null: the species)."""

    SECTION = "data.cub200"

    root: str | None
    taxonomy: str | None
    attribute: str | None
    min_certainty: int


@register_source("cub200")
class Cub200Source(FileSource):
    """CUB-200-2011 with a taxonomy table, labelled by species or by an attribute group; see the module docstring."""

    SETTINGS = Cub200Settings

    def catalogue(self, cfg: Cub200Settings, key: str) -> Catalogue:
        """Read and cross-check the annotation files (no image is decoded; each used image file must exist)."""
        root = paths.directory(cfg.root, f"{key}.root", "the CUB_200_2011 folder (images/, images.txt, ...)")
        for name in FILES:
            if not (root / name).is_file():
                raise ConfigError(f"{key}.root: {root} has no {name}; expected the CUB_200_2011 folder")
        table = paths.file(cfg.taxonomy, f"{key}.taxonomy", "a taxonomy table (class = classes.txt name -> levels)")
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

        records = []
        for ident, (line_no, rel) in images.items():
            for name, table_of in (("image_class_labels.txt", labels), ("train_test_split.txt", splits)):
                if ident not in table_of:
                    raise TaskDataError(f"{images_path}, line {line_no}: image id {ident} is missing from {name}")
            cls = class_names[int(labels[ident][1])]
            if cls not in taxonomy.rows:
                continue
            path = root / "images" / rel
            if not path.is_file():
                raise TaskDataError(f"{images_path}, line {line_no}: image id {ident}: {path} does not exist")
            records.append((ident, cls, str(path), splits[ident][1] == "1"))
        return Catalogue(root, images_path, taxonomy, records, set(images), len(unused))

    def collect(self, cfg: Cub200Settings, key: str, seed: int) -> Collection:
        """The species and their images (the default labels)."""
        cat = self.catalogue(cfg, key)
        found = {cls: ClassImages([], []) for cls in cat.taxonomy.rows}
        for _, cls, path, is_train in cat.images:
            (found[cls].train if is_train else found[cls].test).append(path)
        return Collection(found, cat.taxonomy, {"unused_classes": cat.unused})

    def group(self, cfg: Cub200Settings, key: str, seed: int) -> GroupedPlan:
        """Species tasks (``attribute`` null) or the same tasks with attribute-value classes."""
        if cfg.attribute is None:
            return super().group(cfg, key, seed)
        if not cfg.attribute.strip():
            raise ConfigError(f"{key}.attribute: must be a non-empty string, got {cfg.attribute!r}")
        return self.attribute_plan(cfg, key, cfg.attribute.strip(), cfg.min_certainty, seed)

    def attribute_plan(
        self, cfg: Cub200Settings, key: str, attribute: str, min_certainty: int, seed: int
    ) -> GroupedPlan:
        """Group the species into tasks as usual; then each task's images, pooled over its species, are classed by
        their value of ``attribute`` and filtered by the usual rules (see the module docstring)."""
        filters = self.filters(cfg, key)
        cat = self.catalogue(cfg, key)
        tax = cat.taxonomy
        if filters.level is None:
            filters = dataclasses.replace(filters, level=tax.levels[0])
        groups = group_classes(Collection({c: ClassImages([], []) for c in tax.rows}, tax), filters, key)
        names = task_names(groups, tax)
        label, several, certainty = attribute_labels(cat.root, key, attribute, min_certainty, cat.image_ids,
                                                     cat.images_path)
        group_of = {cls: group for group, classes in groups.items() for cls in classes}
        found: dict[tuple[str, str], dict[str, ClassImages]] = {group: {} for group in groups}
        left = {group: dict.fromkeys(LEFT_OUT, 0) for group in groups}
        for ident, cls, path, is_train in cat.images:
            group = group_of[cls]
            if ident in several:
                left[group]["several_attribute_values"] += 1
                continue
            if ident not in label:
                left[group]["no_attribute_value"] += 1
                continue
            images = found[group].setdefault(label[ident], ClassImages([], []))
            (images.train if is_train else images.test).append(path)

        totals = {k: sum(counts[k] for counts in left.values()) for k in LEFT_OUT}
        plan = GroupedPlan([], {}, [], {"unused_classes": cat.unused, **totals})
        for (level, value), classes in groups.items():
            name, counts = names[(level, value)], left[(level, value)]
            if any(counts.values()):
                warn(f"{key}: task {name!r}: {sum(counts.values())} image(s) left out: {counts['no_attribute_value']} "
                     f"with no {attribute} value marked present at certainty >= {min_certainty} ({certainty}), "
                     f"{counts['several_attribute_values']} with several")
            values = found[(level, value)]
            if not values:
                reason = f"0 class(es), fewer than min_classes={filters.min_classes}"
                warn(f"{key}: task {name!r} ({level} {value!r}) skipped: {reason} (no image has one {attribute} value)")
                plan.skipped.append((name, reason))
                continue
            # the values as classes, each with the taxonomy its task's species share (so the task keeps its taxonomy)
            shared = {}
            for lev in tax.levels:
                at = {tax.rows[c][1].get(lev, "") for c in classes}
                shared[lev] = at.pop() if len(at) == 1 else ""
            rows = {v: (f"{attribute}::{v} in {level} {value}", shared) for v in values}
            sub = group_tasks(
                Collection(values, taxonomy_from_mapping(tax.file, tax.levels, rows)),
                dataclasses.replace(filters, level=level, refine={}), seed, key, self.name,
            )
            for spec in sub.specs:
                notes = dict(spec.notes)
                head = (("group", notes.pop("group")), ("level", notes.pop("level")))
                notes.update(counts, attribute=attribute)
                plan.specs.append(dataclasses.replace(spec, notes=head + tuple(sorted(notes.items()))))
            plan.members.update(sub.members)
            plan.skipped += sub.skipped
        plan.specs.sort(key=lambda s: s.name)
        plan.skipped.sort()
        return plan
