"""Finishing a prepared folder whose split keeps related images together: the ``--test-fraction`` and ``--seed``
options, and :func:`write_grouped_split`, which runs :func:`.split.grouped_split` over the written images, deletes
the ones it drops (exact duplicates) and writes split.csv."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from . import IMAGES, Option, PrepareError
from .layout import write_split
from .split import Item, grouped_split

SEED = Option("seed", "seed of the train/test split", 0, int)


def test_fraction_option(default: float) -> Option:
    """The ``--test-fraction`` option with a preparer's own default."""
    return Option("test-fraction", "share of each class's images in the test split (whole groups of related images "
                  "are moved, so it is approximate)", default, float)


def check_split_options(options: dict) -> tuple[float, int]:
    """(test fraction in (0, 1), seed) from filled-in options; a PrepareError names the flag."""
    fraction = float(options["test_fraction"])
    if not 0 < fraction < 1:
        raise PrepareError(f"--test-fraction must be between 0 and 1 (exclusive), got {fraction}")
    return fraction, int(options["seed"])


def write_grouped_split(out: Path, items: list[Item], test_fraction: float, seed: int) -> tuple[dict[str, str], dict]:
    """Split the written ``items`` (see :mod:`.split`), delete the images it leaves out and any class folder left
    empty, write split.csv; returns (the split, the counts of what was dropped)."""
    split, counts = grouped_split(items, test_fraction, seed)
    root = out / IMAGES
    for item in items:
        if item.path not in split:
            (root / item.path).unlink()
    for folder in sorted({item.cls for item in items}):
        if (root / folder).is_dir() and not any((root / folder).iterdir()):
            (root / folder).rmdir()
    write_split(out, split)
    return split, counts


def per_category(split: dict[str, str], category_of: dict[str, str]) -> dict[str, dict[str, int]]:
    """{category: {"train": n, "test": n}} of a split whose paths start with their class folder."""
    out: dict[str, Counter] = {}
    for path, side in split.items():
        category = category_of[path.split("/", 1)[0]]
        out.setdefault(category, Counter(train=0, test=0))[side] += 1
    return {c: dict(out[c]) for c in sorted(out)}
