"""``tuxpaint``: the stamps of the Debian package tuxpaint-stamps-default, one class per sub-category.

The package holds ``<root>/<category>/<sub-category>/[deeper folders/]<stamp>.png|.svg`` (PNG cut-outs with alpha
and SVG drawings) beside ``.txt``/``.dat``/``.ogg``/``.wav`` files (descriptions, options, sounds), which are ignored.
A class is a sub-category, images of deeper folders belonging to it (``animals/mammals/cats`` is a mammal), named
``<category>.<sub-category>`` because some names (cartoon, music) occur under several categories; tasks are
categories (``level: category``). The tree has no level above the categories, so the taxonomy has no group column.
Stamps directly in a category folder have no sub-category: not used, counted (``uncategorised_images``).

A stamp given as both ``<name>.svg`` and ``<name>.png`` is one drawing (the PNG is the raster that Tux Paint shows
where it cannot draw SVG), so the SVG is used and the PNG only when the SVG cannot be rasterised. Every stamp is
decoded (PNG, :mod:`..data.decode`) or rasterised (SVG, :mod:`..data.svg`) at four times ``--size``, trimmed to
its visible pixels, scaled so its longer side is ``--size`` and centred in a transparent ``--size`` square, so PNG
cut-outs and SVG pages (which have margins) show their subjects at one scale.

split.csv keeps related stamps on one side (:mod:`.split`, which also removes exact duplicates): Tux Paint's
``_mirror`` stamps, and the numbered, coloured, sized or otherwise qualified versions of one stamp
(``frog``/``frog-1``, ``greenflag``/``redflag``, ``eye_blue_left``/``eye_green_left``, ``stoplight_01_red``/
``stoplight_02_yellow``, ``scissors_small_open``/``scissors_small_closed``) are the same drawing mirrored, recoloured
or redrawn, so a class's stamps with one :func:`stamp_key` form one group. Grouping too much only coarsens the split;
grouping too little would put a drawing and its copy on both sides.
"""

from __future__ import annotations

import os
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

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
from ..data.decode import TooLarge, clear_transparent, decode_downscaled
from ..data.svg import SvgError, rasterise, renderer
from ..progress import Progress
from .clipart import categories, output_name, walk_files
from .grouped import SEED, check_split_options, per_category, test_fraction_option, write_grouped_split
from .layout import class_folders, images_dir, save_array, write_taxonomy
from .packages import debian_missing, debian_package, listing_digest
from .split import Item, pixel_digest

PACKAGE = "tuxpaint-stamps-default"
DEFAULT_ROOT = "/usr/share/tuxpaint/stamps"
FORMATS = (".svg", ".png")  # the stamp formats, preferred first
OVERSAMPLE = 4  # stamps are decoded or rasterised at this many times --size before trimming and scaling
MAX_PIXELS = 100_000_000  # PNG stamps with more pixels are skipped undecoded (the largest in the package: ~2 million)
SIZES = range(8, 1025)
# words that name a version of one drawing rather than another subject (see stamp_key)
VARIANT_WORDS = frozenset({"mirror", "small", "large", "big", "little", "left", "right", "open", "closed", "in", "out",
                           "front", "side", "photo", "outline", "filled", "drawing", "cartoon", "and"})
COLOURS = ("red", "green", "blue", "yellow", "white", "black", "brown", "pink", "purple", "grey", "gray", "golden")
_WORD = re.compile(r"[a-z]+|[0-9]+")


def stamp_key(stem: str) -> str:
    """The split group of a stamp within its class: the file name's words (lower case; letters and digits apart)
    without numbers, a letter right after a number (``note_012_a``), variant words (:data:`VARIANT_WORDS`), colour
    words, and a colour prefix of a word (``greenflag`` -> ``flag``); the whole stem when nothing is left."""
    kept: list[str] = []
    after_number = False
    for word in _WORD.findall(stem.lower()):
        if word.isdigit():
            after_number = True
            continue
        if after_number and len(word) == 1:
            after_number = False
            continue
        after_number = False
        if word in VARIANT_WORDS or word in COLOURS:
            continue
        colour = next((c for c in COLOURS if word.startswith(c) and len(word) - len(c) >= 3), "")
        kept.append(word[len(colour):])
    return "_".join(kept) or stem.lower()


@dataclass(frozen=True)
class Stamp:
    """One stamp of a class: its files by format (.svg, .png), the output file name and its split group."""

    folder: str
    name: str
    group: str
    files: dict[str, Path]


def fit_square(rgba: np.ndarray, size: int) -> np.ndarray | None:
    """A uint8 RGBA image trimmed to its visible pixels, scaled (Lanczos, colour premultiplied by alpha) so its longer
    side is ``size`` and centred in a transparent size x size square; None when nothing is visible."""
    from PIL import Image

    visible = rgba[..., 3] > 0
    if not visible.any():
        return None
    rows, cols = np.flatnonzero(visible.any(axis=1)), np.flatnonzero(visible.any(axis=0))
    crop = rgba[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    h, w = crop.shape[:2]
    goal = (max(1, round(w * size / max(w, h))), max(1, round(h * size / max(w, h))))
    if goal != (w, h):
        img = Image.fromarray(np.ascontiguousarray(crop), "RGBA").convert("RGBa")
        crop = np.asarray(img.resize(goal, Image.Resampling.LANCZOS).convert("RGBA"))
    out = np.zeros((size, size, 4), np.uint8)
    top, left = (size - goal[1]) // 2, (size - goal[0]) // 2
    out[top:top + goal[1], left:left + goal[0]] = crop
    return clear_transparent(out)


def png_pixels(path: Path, side: int) -> np.ndarray:
    """A PNG stamp as uint8 RGBA, downscaled to at most ``side`` pixels (raises TooLarge, or what PIL raises)."""
    return np.asarray(decode_downscaled(path, side, MAX_PIXELS).image.convert("RGBA"))


def class_stamps(root: Path, category: str, sub: str, folder: str) -> tuple[list[Stamp], int]:
    """The stamps under ``root/category/sub`` (sorted by output name) and the number of other files there."""
    base = root / category / sub
    by_stem: dict[Path, dict[str, Path]] = defaultdict(dict)
    others = 0
    for path in walk_files(base):
        suffix = path.suffix.lower()
        if suffix in FORMATS:
            by_stem[path.relative_to(base).with_suffix("")][suffix] = path
        else:
            others += 1
    taken: set[str] = set()
    stamps = [Stamp(folder, output_name(stem.with_name(stem.name + ".png"), taken), stamp_key(stem.name), files)
              for stem, files in sorted(by_stem.items())]
    return stamps, others


@register_preparer("tuxpaint")
class TuxpaintPreparer(Preparer):
    """Tux Paint stamp sub-categories as classes, categories as tasks; see the module docstring."""

    VERSION = 1
    LEVEL = "category"
    SPLIT = True
    SUMMARY = "stamps of the Debian package tuxpaint-stamps-default: classes = sub-categories, tasks = categories"
    OPTIONS = (
        Option("root", "the Tux Paint stamps folder", DEFAULT_ROOT),
        Option("size", "side of the written square images in pixels (8 to 1024)", 128, int),
        test_fraction_option(0.35),
        SEED,
        CATEGORIES,
    )

    def check(self, options: dict) -> dict:
        """A size in range, a test fraction in (0, 1); root absolute."""
        size = int(options["size"])
        if size not in SIZES:
            raise PrepareError(f"--size must be between {SIZES.start} and {SIZES.stop - 1}, got {size}")
        fraction, seed = check_split_options(options)
        return {"root": str(Path(options["root"]).absolute()), "size": size, "test_fraction": fraction, "seed": seed,
                "categories": parse_categories(options["categories"])}

    def locate(self, options: dict) -> list[Package]:
        """The stamps folder (its Debian version when it is the installed one; a digest of its file listing) and the
        renderer."""
        root = Path(options["root"])
        if not root.is_dir() or not any(e.is_dir() for e in os.scandir(root)):
            raise debian_missing(PACKAGE, f"the Tux Paint stamps folder {root}")
        return [debian_package(PACKAGE, root, Path(DEFAULT_ROOT), listing_digest(root, walk_files(root))),
                Package(*renderer())]

    def build(self, options: dict, packages: list[Package], out: Path) -> dict:
        """Write every sub-category's stamps as squares; taxonomy.csv of the classes kept; split.csv by stamp group."""
        root = Path(options["root"])
        found = categories(root)
        keep = select_categories([c for c, _, _ in found], options["categories"], str(root))
        found = [entry for entry in found if entry[0] in keep]
        folders = class_folders((f"{c}.{s}" for c, subs, _ in found for s in subs), "tuxpaint class")
        stamps: list[Stamp] = []
        taxonomy: dict[str, tuple[str, str]] = {}
        skipped = Counter(uncategorised_images=0, unrenderable_svgs=0, corrupt_images=0, oversized_images=0,
                          blank_images=0)
        side_files = 0
        for category, subs, loose in found:
            skipped["uncategorised_images"] += sum(f.suffix.lower() in FORMATS for f in loose)
            side_files += sum(f.suffix.lower() not in FORMATS for f in loose)
            for sub in subs:
                folder = folders[f"{category}.{sub}"]
                taxonomy[folder] = (category, sub)
                more, others = class_stamps(root, category, sub, folder)
                stamps += more
                side_files += others
        written, formats = self._write_all(stamps, images_dir(out), options["size"], skipped)
        split, dropped = write_grouped_split(out, written, options["test_fraction"], options["seed"])
        per_class = Counter(path.split("/", 1)[0] for path in split)
        write_taxonomy(out, ("category", "subcategory"), {c: v for c, v in taxonomy.items() if per_class[c]})
        category_of = {c: v[0] for c, v in taxonomy.items()}
        classes_per_category: dict[str, int] = defaultdict(int)
        for cls in per_class:
            classes_per_category[category_of[cls]] += 1
        return {
            "classes": len(per_class),
            "images": len(split),
            "images_per_split": {s: sum(v == s for v in split.values()) for s in ("train", "test")},
            "images_per_format": {f: sum(formats[p] == f for p in split) for f in ("svg", "png")},
            "classes_per_category": dict(sorted(classes_per_category.items())),
            "images_per_category": per_category(split, category_of),
            "images_per_class": dict(sorted(per_class.items())),
            "stamps": len(stamps),
            "png_twins": sum(len(s.files) == 2 for s in stamps),
            "side_files": side_files,
            "single_group_classes": dropped["single_group_classes"],
            "skipped": {**skipped, "empty_subcategories": len(taxonomy) - len(per_class),
                        "duplicate_images": dropped["duplicate_images"],
                        "conflicting_images": dropped["conflicting_images"]},
        }

    @staticmethod
    def _write_all(stamps: list[Stamp], images: Path, size: int, skipped: Counter) -> tuple[list[Item], dict]:
        """Draw and write every stamp (its SVG, else its PNG); the items written and {path: format used}."""
        written: list[Item] = []
        formats: dict[str, str] = {}
        with Progress("tuxpaint", len(stamps), "stamps") as progress:
            for stamp in stamps:
                progress.update()
                pixels, used = None, None
                for suffix in FORMATS:
                    path = stamp.files.get(suffix)
                    if path is None:
                        continue
                    twin = " (its PNG is used instead)" if suffix == ".svg" and ".png" in stamp.files else ""
                    try:
                        drawn = rasterise(path, OVERSAMPLE * size) if suffix == ".svg" else png_pixels(
                            path, OVERSAMPLE * size)
                    except SvgError as err:
                        skipped["unrenderable_svgs"] += 1
                        warn(f"tuxpaint: skipped {path}: cannot be rasterised: {err}{twin}")
                        continue
                    except TooLarge as err:
                        skipped["oversized_images"] += 1
                        warn(f"tuxpaint: not used: {path}: {err}")
                        continue
                    except Exception as err:  # PIL raises OSError, SyntaxError, ValueError, ...
                        skipped["corrupt_images"] += 1
                        warn(f"tuxpaint: skipped {path}: cannot decode ({type(err).__name__}: {err}){twin}")
                        continue
                    pixels = fit_square(drawn, size)
                    if pixels is None:
                        skipped["blank_images"] += 1
                        warn(f"tuxpaint: skipped {path}: nothing visible")
                        continue
                    used = suffix[1:]
                    break
                if pixels is None:
                    continue
                (images / stamp.folder).mkdir(exist_ok=True)
                save_array(pixels, images / stamp.folder / stamp.name)
                path = f"{stamp.folder}/{stamp.name}"
                written.append(Item(path, stamp.folder, stamp.group, pixel_digest(pixels)))
                formats[path] = used
        return written, formats
