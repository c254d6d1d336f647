"""Writing the ``imagefolder`` layout: PNG files with fixed encoder settings, the taxonomy and split tables.

Everything here is deterministic: PNGs carry no metadata (no time, no text chunks) and are encoded with one zlib
level; tables are sorted and written with '\\n' line ends, so the same images give the same bytes.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Iterable

import numpy as np

from ..data.grouping import slugify
from . import IMAGES, SPLIT, TAXONOMY, PrepareError

PNG_LEVEL = 6  # zlib level of every PNG written (fixed: part of what makes the output byte-identical)


def save_png(img, path: Path) -> None:
    """Write a PIL image as PNG with the fixed encoder settings (no metadata)."""
    img.save(path, format="PNG", compress_level=PNG_LEVEL, optimize=False)


def save_array(array: np.ndarray, path: Path) -> None:
    """Write a uint8 array ((H, W) grey, (H, W, 3) RGB or (H, W, 4) RGBA) as PNG."""
    from PIL import Image

    save_png(Image.fromarray(np.ascontiguousarray(array, dtype=np.uint8)), path)


def class_folders(values: Iterable[str], what: str) -> dict[str, str]:
    """{value: file-safe folder name} (``slugify``); two values with one slug, or an empty slug, are errors."""
    out: dict[str, str] = {}
    seen: dict[str, str] = {}
    for value in sorted(set(values)):
        slug = slugify(value)
        if not slug:
            raise PrepareError(f"{what} {value!r} has no file-safe name (its slug is empty)")
        if slug in seen:
            raise PrepareError(f"{what}s {seen[slug]!r} and {value!r} have the same folder name {slug!r}")
        out[value], seen[slug] = slug, value
    return out


def images_dir(out: Path) -> Path:
    """``out/images``, created."""
    path = out / IMAGES
    path.mkdir(exist_ok=True)
    return path


def write_taxonomy(out: Path, levels: tuple[str, ...], rows: dict[str, tuple[str, ...]]) -> None:
    """``out/taxonomy.csv``: ``class,<levels...>``, one row per class (sorted by class)."""
    with open(out / TAXONOMY, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(("class", *levels))
        for cls in sorted(rows):
            writer.writerow((cls, *rows[cls]))


def write_split(out: Path, rows: dict[str, str]) -> None:
    """``out/split.csv``: ``path,split`` with path ``<class>/<file>`` (sorted) and split train or test."""
    with open(out / SPLIT, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(("path", "split"))
        for path in sorted(rows):
            writer.writerow((path, rows[path]))
