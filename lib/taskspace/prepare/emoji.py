"""``emoji``: the emoji of the npm packages emoji-datasource(-<vendor>), one class per emoji subcategory.

Each vendor draws every emoji in its own style, so the vendors are real variation within a class: one vendor's
drawings (``--test-vendor``) are the test split, the others' the training split. The images are cut from the
vendors' sheets ``img/<vendor>/sheets/<size>.png`` (looked for in emoji-datasource-<vendor>, then in
emoji-datasource, which ships the 32px sheets of every vendor): cells are ``size + 2`` pixels with a 1-pixel
transparent border, the emoji at (sheet_x * (size + 2) + 1, sheet_y * (size + 2) + 1). ``emoji.json`` lists each
emoji's cell, category, subcategory, whether each vendor has an image (``has_img_<vendor>``; otherwise the cell holds
a stand-in, so it is skipped) and its skin-tone variants. Images are the cells as RGBA PNGs, fully transparent
pixels written as (0, 0, 0, 0). Tasks are categories (``level: category``).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
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
)
from ..data.decode import clear_transparent
from .layout import class_folders, images_dir, save_array, write_split, write_taxonomy
from .packages import find_npm_package, node_search_path, npm_missing, same_version

MAIN = "emoji-datasource"
VENDORS = ("apple", "facebook", "google", "twitter")
SIZES = (16, 20, 32, 64)  # sheet sizes of the vendor packages; emoji-datasource has MAIN_SIZE only
MAIN_SIZE = 32
VERSION_CHECKED = "16.0.0"  # the package version this preparer was checked against (suggested when installing)
ENTRY_KEYS = ("unified", "sheet_x", "sheet_y", "category", "subcategory")


def vendor_package(vendor: str) -> str:
    """The npm package with ``vendor``'s sheets at every size."""
    return f"{MAIN}-{vendor}"


def sheet_path(package: Package, vendor: str, size: int) -> Path:
    """Where ``package`` keeps ``vendor``'s sheet of ``size`` px emoji."""
    return Path(package.path) / "img" / vendor / "sheets" / f"{size}.png"


def sheet_source(vendor: str, size: int, packages: list[Package]) -> Package | None:
    """The package whose sheet is used: emoji-datasource-<vendor> first, then emoji-datasource."""
    by_name = {p.name: p for p in packages}
    for name in (vendor_package(vendor), MAIN):
        if name in by_name and sheet_path(by_name[name], vendor, size).is_file():
            return by_name[name]
    return None


def parse_vendors(text: str) -> list[str]:
    """'apple, google' -> ['apple', 'google'] (the --vendors syntax)."""
    return [v.strip().lower() for v in str(text).split(",") if v.strip()]


def emoji_items(entries: list[dict], skin_tones: bool, source: str) -> list[dict]:
    """Every image-able emoji: base entries (sorted by code point) and, with ``skin_tones``, their variants, which
    take category and subcategory from their base entry."""
    items = []
    for n, entry in enumerate(entries):
        missing = [k for k in ENTRY_KEYS if k not in entry]
        if missing:
            raise PrepareError(f"{source}: entry {n} ({entry.get('unified', '?')}) lacks {', '.join(missing)}")
        items.append(entry)
        if skin_tones:
            for key in sorted(entry.get("skin_variations") or {}):
                variant = entry["skin_variations"][key]
                lacking = [k for k in ENTRY_KEYS[:3] if k not in variant]
                if lacking:
                    raise PrepareError(f"{source}: skin variation {key} of {entry['unified']} lacks "
                                       f"{', '.join(lacking)}")
                items.append({**variant, "category": entry["category"], "subcategory": entry["subcategory"]})
    items.sort(key=lambda e: e["unified"])
    seen = Counter(e["unified"] for e in items)
    repeated = [u for u, c in seen.items() if c > 1]
    if repeated:
        raise PrepareError(f"{source}: emoji listed more than once: {', '.join(repeated[:5])}")
    return items


def read_sheet(path: Path, size: int) -> np.ndarray:
    """A sheet as uint8 RGBA (H, W, 4); its sides must be whole numbers of ``size + 2`` pixel cells."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            sheet = np.asarray(img.convert("RGBA"))
    except Exception as err:  # PIL raises OSError, SyntaxError, ValueError, ...
        raise PrepareError(f"{path}: cannot decode the sheet ({type(err).__name__}: {err})") from err
    cell = size + 2
    if sheet.shape[0] % cell or sheet.shape[1] % cell:
        raise PrepareError(f"{path}: {sheet.shape[1]}x{sheet.shape[0]} is not a grid of {cell}px cells ({size}px)")
    return sheet


def cut_cell(sheet: np.ndarray, x: int, y: int, size: int) -> np.ndarray | None:
    """The emoji at cell (x, y) as uint8 RGBA (size, size, 4); None when the cell is outside the sheet or blank."""
    left, top = x * (size + 2) + 1, y * (size + 2) + 1
    if x < 0 or y < 0 or top + size > sheet.shape[0] or left + size > sheet.shape[1]:
        return None
    cell = sheet[top:top + size, left:left + size]
    return clear_transparent(cell) if cell[..., 3].any() else None


@register_preparer("emoji")
class EmojiPreparer(Preparer):
    """Emoji subcategories as classes, categories as tasks, split by vendor; see the module docstring."""

    VERSION = 1
    LEVEL = "category"
    SPLIT = True
    SUMMARY = "emoji of the npm packages emoji-datasource(-<vendor>): classes = subcategories, split by vendor"
    OPTIONS = (
        Option("size", "emoji side in pixels: 16, 20, 32 or 64 (32 needs only emoji-datasource; the others the "
               "vendor packages)", 64, int),
        Option("vendors", "comma-separated vendor styles to use", ",".join(("apple", "google", "facebook", "twitter"))),
        Option("test-vendor", "the vendor whose drawings are the test split (the others: training)", "twitter"),
        Option("skin-tones", "also the skin-tone variants (default: base emoji only)", False, kind="switch"),
        Option("packages", "a node_modules folder to look in (may repeat; default: ./node_modules, $NODE_PATH, "
               "`npm root -g`, /usr/local/lib/node_modules, /usr/lib/node_modules)", None, kind="append"),
        CATEGORIES,
    )

    def check(self, options: dict) -> dict:
        """Known size and vendors, the test vendor among them with at least one training vendor; paths absolute."""
        if options["size"] not in SIZES:
            raise PrepareError(f"--size must be one of {', '.join(map(str, SIZES))}, got {options['size']}")
        vendors = options["vendors"]
        vendors = parse_vendors(vendors) if isinstance(vendors, str) else [str(v).lower() for v in vendors]
        unknown = [v for v in vendors if v not in VENDORS]
        if unknown or not vendors:
            raise PrepareError(f"--vendors: unknown vendor(s) {unknown or vendors}; known: {', '.join(VENDORS)}")
        test = str(options["test_vendor"]).strip().lower()
        if test not in vendors:
            raise PrepareError(f"--test-vendor {test!r} is not one of --vendors {','.join(vendors)}")
        if len(set(vendors)) < 2:
            raise PrepareError("--vendors: give at least two vendors (the test vendor and a training one)")
        packages = options["packages"]
        return {
            "size": int(options["size"]),
            "vendors": sorted(set(vendors)),
            "test_vendor": test,
            "skin_tones": bool(options["skin_tones"]),
            "packages": [str(Path(p).absolute()) for p in packages] if packages else None,
            "categories": parse_categories(options["categories"]),
        }

    def locate(self, options: dict) -> list[Package]:
        """The packages holding each vendor's sheet (one version for all); the missing ones named with the command."""
        roots = node_search_path(options["packages"])
        found = {}
        for name in (MAIN, *(vendor_package(v) for v in options["vendors"])):
            package = find_npm_package(name, roots)
            if package is not None:
                found[name] = package
        size, used, lacking = options["size"], {}, []
        for vendor in options["vendors"]:
            source = sheet_source(vendor, size, list(found.values()))
            if source is None:
                lacking.append(vendor)
            else:
                used[source.name] = source
        if lacking:
            version = next((p.version for p in found.values() if p.version), VERSION_CHECKED)
            if size == MAIN_SIZE and MAIN not in found:
                names = [MAIN]
            else:
                names = [vendor_package(v) for v in lacking]
            raise npm_missing(names, version, roots)
        packages = [used[name] for name in sorted(used)]
        same_version(packages)
        return packages

    def build(self, options: dict, packages: list[Package], out: Path) -> dict:
        """Cut every vendor's emoji out of its sheet into images/<subcategory>/<code points>_<vendor>.png."""
        index = Path(packages[0].path) / "emoji.json"
        try:
            entries = json.loads(index.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise PrepareError(f"{index}: cannot be read as JSON ({err})") from err
        if not isinstance(entries, list):
            raise PrepareError(f"{index}: expected a list of emoji entries")
        items = emoji_items(entries, options["skin_tones"], str(index))
        keep = select_categories(sorted({e["category"] for e in items}), options["categories"], str(index))
        items = [e for e in items if e["category"] in keep]
        folders = class_folders((e["subcategory"] for e in items), "emoji subcategory")
        root = images_dir(out)
        size, test_vendor = options["size"], options["test_vendor"]
        split: dict[str, str] = {}
        per_class: Counter = Counter()
        per_vendor: Counter = Counter()
        missing: dict[str, int] = {}
        blank: dict[str, int] = {}
        for vendor in options["vendors"]:
            sheet = read_sheet(sheet_path(sheet_source(vendor, size, packages), vendor, size), size)
            missing[vendor] = blank[vendor] = 0
            for item in items:
                if not item.get(f"has_img_{vendor}", False):
                    missing[vendor] += 1
                    continue
                cell = cut_cell(sheet, int(item["sheet_x"]), int(item["sheet_y"]), size)
                if cell is None:
                    blank[vendor] += 1
                    continue
                folder = folders[item["subcategory"]]
                (root / folder).mkdir(exist_ok=True)
                name = f"{item['unified'].lower()}_{vendor}.png"
                save_array(cell, root / folder / name)
                split[f"{folder}/{name}"] = "test" if vendor == test_vendor else "train"
                per_class[folder] += 1
                per_vendor[vendor] += 1
        kept = {e["subcategory"]: e["category"] for e in items if folders[e["subcategory"]] in per_class}
        write_taxonomy(out, ("category", "subcategory"), {folders[s]: (c, s) for s, c in kept.items()})
        write_split(out, split)
        per_category: dict[str, int] = defaultdict(int)
        for category in kept.values():
            per_category[category] += 1
        return {
            "classes": len(per_class),
            "images": sum(per_class.values()),
            "images_per_split": {s: sum(v == s for v in split.values()) for s in ("train", "test")},
            "images_per_vendor": dict(sorted(per_vendor.items())),
            "classes_per_category": dict(sorted(per_category.items())),
            "images_per_class": dict(sorted(per_class.items())),
            "emoji": len(items),
            "skipped": {"missing_images": missing, "blank_images": blank},
        }
