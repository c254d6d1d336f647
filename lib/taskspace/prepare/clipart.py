"""``clipart``: the public-domain drawings of the Debian package openclipart-png, one class per subcategory.

The package holds ``<root>/<category>/<subcategory>/[deeper folders/]<file>.png``. A class is a subcategory (images
of deeper folders belong to it), named ``<category>.<subcategory>`` because some subcategory names (astronomy, toys,
games) occur under several categories; tasks are categories (``level: category``). Files directly in a category
folder have no subcategory: not used, counted (``uncategorised_images``). Every image is decoded and downscaled to
at most ``--max-side`` pixels (see :mod:`.decode`): files over ``--max-pixels`` are skipped (``oversized_images``),
undecodable ones skipped with a warning (``corrupt_images``). No split file: the imagefolder source splits each class
with its seeded ``test_fraction``.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ..data.images import is_image_file
from ..progress import Progress
from . import (
    CATEGORIES,
    Option,
    Package,
    Preparer,
    PrepareError,
    parse_categories,
    register_preparer,
    select_categories,
    warn,
)
from ..data.decode import TooLarge, decode_downscaled, open_unguarded
from .layout import class_folders, images_dir, save_png, write_taxonomy
from .packages import debian_missing, debian_package, listing_digest

PACKAGE = "openclipart-png"
DEFAULT_ROOT = "/usr/share/openclipart/png"
BIG_PIXELS = 1 << 25  # files over this many pixels are decoded one at a time (bounds the memory of parallel decodes)
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")


@dataclass(frozen=True)
class Source:
    """One input file: its class folder, the output file name, the path."""

    folder: str
    name: str
    path: Path


def walk_files(folder: Path) -> list[Path]:
    """Every non-hidden file under ``folder`` (symbolic links followed), sorted by path."""
    out = []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        out += [Path(dirpath) / f for f in filenames if not f.startswith(".")]
    return sorted(out)


def output_name(relative: Path, taken: set[str]) -> str:
    """A file name for an image at ``relative`` (under its subcategory): deeper folders joined by '__', unsafe
    characters as '_', extension .png; '-2', '-3', ... appended when taken."""
    stem = "__".join(_UNSAFE.sub("_", part) for part in relative.with_suffix("").parts)
    name, n = f"{stem}.png", 1
    while name in taken:
        n += 1
        name = f"{stem}-{n}.png"
    taken.add(name)
    return name


def categories(root: Path) -> list[tuple[str, list[str], list[Path]]]:
    """[(category, its subcategory folder names, files directly inside it)], sorted; hidden entries ignored."""
    out = []
    for category in sorted(e.name for e in os.scandir(root) if e.is_dir() and not e.name.startswith(".")):
        subs, loose = [], []
        for entry in sorted(os.scandir(root / category), key=lambda e: e.name):
            if entry.name.startswith("."):
                continue
            (subs if entry.is_dir() else loose).append(entry.name)
        out.append((category, subs, [root / category / f for f in loose]))
    return out


@register_preparer("clipart")
class ClipartPreparer(Preparer):
    """Openclipart subcategories as classes, categories as tasks; see the module docstring."""

    VERSION = 1
    LEVEL = "category"
    SPLIT = False
    SUMMARY = "drawings of the Debian package openclipart-png: classes = subcategories, tasks = categories"
    OPTIONS = (
        Option("root", "the openclipart png folder", DEFAULT_ROOT),
        Option("max-side", "longer side of the written images at most this many pixels", 256, int),
        Option("max-pixels", "skip (and count) files with more pixels than this, undecoded", 400_000_000, int),
        CATEGORIES,
    )

    def check(self, options: dict) -> dict:
        """Positive sizes; root absolute."""
        for key in ("max_side", "max_pixels"):
            if int(options[key]) < 1:
                raise PrepareError(f"--{key.replace('_', '-')} must be >= 1, got {options[key]}")
        return {"root": str(Path(options["root"]).absolute()), "max_side": int(options["max_side"]),
                "max_pixels": int(options["max_pixels"]), "categories": parse_categories(options["categories"])}

    def locate(self, options: dict) -> list[Package]:
        """The clipart folder (its Debian version when it is the installed one; a digest of its file listing)."""
        root = Path(options["root"])
        if not root.is_dir() or not any(e.is_dir() for e in os.scandir(root)):
            raise debian_missing(PACKAGE, f"the openclipart png folder {root}")
        return [debian_package(PACKAGE, root, Path(DEFAULT_ROOT), listing_digest(root, walk_files(root)))]

    def build(self, options: dict, packages: list[Package], out: Path) -> dict:
        """Decode, downscale and write every subcategory's images; taxonomy.csv of the classes that got images."""
        from PIL import ImageFile

        if ImageFile.LOAD_TRUNCATED_IMAGES:
            raise PrepareError("PIL.ImageFile.LOAD_TRUNCATED_IMAGES is True: truncated files would be written silently")
        root = Path(options["root"])
        found = categories(root)
        keep = select_categories([c for c, _, _ in found], options["categories"], str(root))
        found = [entry for entry in found if entry[0] in keep]
        names = class_folders((f"{c}.{s}" for c, subs, _ in found for s in subs), "clipart class")
        sources, taxonomy = [], {}
        skipped = Counter(uncategorised_images=0, non_image_files=0, oversized_images=0, corrupt_images=0,
                          empty_subcategories=0)
        for category, subs, loose in found:
            skipped["uncategorised_images"] += sum(is_image_file(f) for f in loose)
            skipped["non_image_files"] += sum(not is_image_file(f) for f in loose)
            for sub in subs:
                folder, taken = names[f"{category}.{sub}"], set()
                files = walk_files(root / category / sub)
                skipped["non_image_files"] += sum(not is_image_file(f) for f in files)
                images = [f for f in files if is_image_file(f)]
                taxonomy[folder] = (category, sub)
                rel = root / category / sub
                sources += [Source(folder, output_name(f.relative_to(rel), taken), f) for f in images]
        written, large = self._write_all(sources, images_dir(out), options, skipped)
        per_class = Counter(s.folder for s, ok in zip(sources, written) if ok)
        skipped["empty_subcategories"] = len(taxonomy) - len(per_class)  # no image, or none decodable
        write_taxonomy(out, ("category", "subcategory"), {c: v for c, v in taxonomy.items() if per_class[c]})
        per_category: dict[str, int] = defaultdict(int)
        for cls in per_class:
            per_category[taxonomy[cls][0]] += 1
        return {
            "classes": len(per_class),
            "images": sum(per_class.values()),
            "classes_per_category": dict(sorted(per_category.items())),
            "images_per_class": dict(sorted(per_class.items())),
            "files": len(sources),
            "decoded_over_pillow_limit": large,
            "skipped": dict(skipped),
        }

    @staticmethod
    def _write_all(sources: list[Source], images: Path, options: dict, skipped: Counter) -> tuple[list[bool], int]:
        """Decode and write every source (two at a time, huge ones alone); which were written, how many were huge."""
        big = threading.Lock()
        max_side, max_pixels = options["max_side"], options["max_pixels"]

        def one(source: Source) -> tuple[str, str]:
            """(outcome: written, large, oversized_images or corrupt_images; a message for the skipped ones)."""
            try:
                with open_unguarded(source.path)[0] as probe:
                    pixels = probe.size[0] * probe.size[1]
                with big if BIG_PIXELS < pixels <= max_pixels else contextlib.nullcontext():
                    decoded = decode_downscaled(source.path, max_side, max_pixels)
            except TooLarge as err:
                return "oversized_images", f"clipart: not used: {source.path}: {err}"
            except Exception as err:  # PIL raises OSError, SyntaxError, ValueError, ...
                return "corrupt_images", f"clipart: skipped {source.path}: cannot decode ({type(err).__name__}: {err})"
            (images / source.folder).mkdir(exist_ok=True)
            save_png(decoded.image, images / source.folder / source.name)
            return ("large" if decoded.over_pillow_limit else "written"), ""

        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        written, large = [], 0
        with Progress("clipart", len(sources), "images") as progress, ThreadPoolExecutor(min(2, cpus)) as pool:
            for outcome, message in pool.map(one, sources):
                progress.update()
                written.append(outcome in ("written", "large"))
                large += outcome == "large"
                if message:
                    skipped[outcome] += 1
                    warn(message)
        return written, large
