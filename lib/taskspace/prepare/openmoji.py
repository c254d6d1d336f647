"""``openmoji``: the emoji of the npm package openmoji, each drawn in two styles, one class per subgroup.

``data/openmoji.json`` lists every emoji: ``hexcode`` (its code points), ``group``, ``subgroups`` and, for a
skin-tone variant, ``skintone`` and ``skintone_base_hexcode``. Each emoji is drawn in colour (``color/svg/
<hexcode>.svg``) and as black line art (``black/svg/<hexcode>.svg``); both are rasterised (:mod:`..data.svg`) to
``--size`` squares, written as ``images/<subgroup>/<hexcode>_<style>.png``. Classes are subgroups and tasks are
groups (``level: category``), as in the ``emoji`` preparer; skin-tone variants (``--skin-tones``) join their base
emoji's class.

OpenMoji's own groups ``extras-openmoji`` (emoji that are not Unicode's: brands, interface elements, ...) and
``extras-unicode`` (Unicode symbols that are not emoji, regional-indicator letters) are left out and counted
(``extra_emoji``): they are not Unicode emoji categories and several of their subgroups are named after the
standard groups (``food-drink``, ``flags``), so as classes they would repeat whole categories. Flags are kept: in the
black style every country flag is the same empty rectangle, so those images are exact duplicates that the split
removes.

split.csv keeps related drawings on one side (:mod:`.split`, which also removes exact duplicates): the two styles of
an emoji, its skin-tone variants and its gender and direction variants (man / woman / person, the sign of a gender,
facing right) are nearly the same drawing (several pairs are pixel for pixel equal), so they form one group, named by
the base emoji's code points with those parts made neutral (:func:`drawing_group`). A drawing that cannot be
rasterised is skipped, counted and named in a warning.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from pathlib import Path

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
from ..data.svg import SvgError, rasterise, renderer
from ..progress import Progress
from .grouped import SEED, check_split_options, per_category, test_fraction_option, write_grouped_split
from .layout import class_folders, images_dir, save_array, write_taxonomy
from .packages import find_npm_package, node_search_path, npm_missing
from .split import Item, pixel_digest

PACKAGE = "openmoji"
VERSION_CHECKED = "17.0.0"  # the package version this preparer was checked against (suggested when installing)
INDEX = "data/openmoji.json"
STYLES = ("color", "black")
EXTRA_GROUPS = ("extras-openmoji", "extras-unicode")
ENTRY_KEYS = ("hexcode", "group", "subgroups")
SIZES = range(8, 1025)
NEUTRAL = {"1F468": "1F9D1", "1F469": "1F9D1"}  # man, woman -> person
VARIANT_PARTS = {"200D", "FE0F", "2640", "2642", "27A1"}  # joiner, emoji style, female / male sign, facing right
_HEXCODE = re.compile(r"^[0-9A-Fa-f]{2,6}(-[0-9A-Fa-f]{2,6})*$")


def parse_styles(value) -> list[str]:
    """'color, black' -> ['black', 'color'] (the --styles syntax; sorted, no repeats)."""
    items = str(value).split(",") if isinstance(value, str) else [str(v) for v in value]
    return sorted({v.strip().lower() for v in items if v.strip()})


def svg_path(package: Package, style: str, hexcode: str) -> Path:
    """Where ``package`` keeps the ``style`` drawing of the emoji ``hexcode``."""
    return Path(package.path) / style / "svg" / f"{hexcode}.svg"


def drawing_group(hexcode: str) -> str:
    """The split group of an emoji (given by its skin-tone base): its code points with man and woman made person and
    joiners, gender signs and the facing-right arrow left out ('1F469-200D-1F33E' -> '1F9D1-1F33E')."""
    parts = [NEUTRAL.get(p, p) for p in hexcode.upper().split("-") if p not in VARIANT_PARTS]
    return "-".join(parts) or hexcode.upper()


def openmoji_items(entries: list, skin_tones: bool, source: str) -> list[dict]:
    """Every emoji to draw, sorted by hexcode: {hexcode, group, subgroup, base}. Skin-tone variants are included with
    ``skin_tones`` and take group and subgroup from their base emoji; ``base`` is the split group
    (:func:`drawing_group` of the skin-tone base)."""
    by_hexcode: dict[str, dict] = {}
    for n, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise PrepareError(f"{source}: entry {n} is not an object")
        missing = [k for k in ENTRY_KEYS if not entry.get(k)]
        if missing:
            raise PrepareError(f"{source}: entry {n} ({entry.get('hexcode', '?')}) lacks {', '.join(missing)}")
        hexcode = str(entry["hexcode"])
        if not _HEXCODE.match(hexcode):
            raise PrepareError(f"{source}: entry {n} has the malformed hexcode {hexcode!r}")
        if hexcode in by_hexcode:
            raise PrepareError(f"{source}: emoji {hexcode} is listed more than once")
        by_hexcode[hexcode] = entry
    items = []
    for hexcode in sorted(by_hexcode):
        entry = by_hexcode[hexcode]
        variant = str(entry.get("skintone") or "").strip() != ""
        if variant and not skin_tones:
            continue
        base = str(entry.get("skintone_base_hexcode") or hexcode) if variant else hexcode
        owner = by_hexcode.get(base, entry)
        items.append({"hexcode": hexcode, "group": str(owner["group"]), "subgroup": str(owner["subgroups"]),
                      "base": drawing_group(base if base in by_hexcode else hexcode)})
    return items


@register_preparer("openmoji")
class OpenmojiPreparer(Preparer):
    """OpenMoji subgroups as classes, groups as tasks, both drawing styles; see the module docstring."""

    VERSION = 1
    LEVEL = "category"
    SPLIT = True
    SUMMARY = "emoji of the npm package openmoji in colour and line art: classes = subgroups, tasks = groups"
    OPTIONS = (
        Option("size", "side of the written square images in pixels (8 to 1024)", 64, int),
        Option("styles", "comma-separated drawing styles to use: color, black", "color,black"),
        Option("skin-tones", "also the skin-tone variants (default: base emoji only)", False, kind="switch"),
        test_fraction_option(0.3),
        SEED,
        Option("packages", "a node_modules folder to look in (may repeat; default: ./node_modules, $NODE_PATH, "
               "`npm root -g`, /usr/local/lib/node_modules, /usr/lib/node_modules)", None, kind="append"),
        CATEGORIES,
    )

    def check(self, options: dict) -> dict:
        """A size in range, known styles, a test fraction in (0, 1); paths absolute."""
        size = int(options["size"])
        if size not in SIZES:
            raise PrepareError(f"--size must be between {SIZES.start} and {SIZES.stop - 1}, got {size}")
        styles = parse_styles(options["styles"])
        unknown = [s for s in styles if s not in STYLES]
        if unknown or not styles:
            raise PrepareError(f"--styles: unknown style(s) {unknown or styles}; known: {', '.join(STYLES)}")
        fraction, seed = check_split_options(options)
        packages = options["packages"]
        return {
            "size": size,
            "styles": styles,
            "skin_tones": bool(options["skin_tones"]),
            "test_fraction": fraction,
            "seed": seed,
            "packages": [str(Path(p).absolute()) for p in packages] if packages else None,
            "categories": parse_categories(options["categories"]),
        }

    def locate(self, options: dict) -> list[Package]:
        """The openmoji package (a MissingPackageError naming the install command when absent) and the renderer."""
        roots = node_search_path(options["packages"])
        package = find_npm_package(PACKAGE, roots)
        if package is None:
            raise npm_missing([PACKAGE], VERSION_CHECKED, roots)
        return [package, Package(*renderer())]

    def build(self, options: dict, packages: list[Package], out: Path) -> dict:
        """Rasterise every emoji in every style into images/<subgroup>/<hexcode>_<style>.png; split by base emoji."""
        package = packages[0]
        index = Path(package.path) / INDEX
        try:
            entries = json.loads(index.read_text(encoding="utf-8"))
        except (OSError, ValueError) as err:
            raise PrepareError(f"{index}: cannot be read as JSON ({err})") from err
        if not isinstance(entries, list):
            raise PrepareError(f"{index}: expected a list of emoji entries")
        items = openmoji_items(entries, options["skin_tones"], str(index))
        extras = sum(e["group"] in EXTRA_GROUPS for e in items)
        items = [e for e in items if e["group"] not in EXTRA_GROUPS]
        keep = select_categories(sorted({e["group"] for e in items}), options["categories"], str(index))
        items = [e for e in items if e["group"] in keep]
        folders = class_folders((e["subgroup"] for e in items), "openmoji subgroup")
        root = images_dir(out)
        size, styles = options["size"], options["styles"]
        written: list[Item] = []
        style_of: dict[str, str] = {}
        missing = {s: 0 for s in styles}
        unrenderable = {s: 0 for s in styles}
        with Progress("openmoji", len(items) * len(styles), "drawings") as progress:
            for style in styles:
                for item in items:
                    progress.update()
                    path = svg_path(package, style, item["hexcode"])
                    try:
                        pixels = rasterise(path, size)
                    except OSError as err:
                        missing[style] += 1
                        warn(f"openmoji: skipped {path}: cannot be read ({err.strerror or err})")
                        continue
                    except SvgError as err:
                        unrenderable[style] += 1
                        warn(f"openmoji: skipped {path}: cannot be rasterised: {err}")
                        continue
                    folder = folders[item["subgroup"]]
                    (root / folder).mkdir(exist_ok=True)
                    name = f"{item['hexcode'].lower()}_{style}.png"
                    save_array(pixels, root / folder / name)
                    written.append(Item(f"{folder}/{name}", folder, item["base"], pixel_digest(pixels)))
                    style_of[f"{folder}/{name}"] = style
        split, dropped = write_grouped_split(out, written, options["test_fraction"], options["seed"])
        category_of = {folders[e["subgroup"]]: e["group"] for e in items}
        per_class = Counter(path.split("/", 1)[0] for path in split)
        write_taxonomy(out, ("category", "subcategory"),
                       {folders[e["subgroup"]]: (e["group"], e["subgroup"]) for e in items
                        if per_class[folders[e["subgroup"]]]})
        classes_per_category: dict[str, int] = defaultdict(int)
        for cls in per_class:
            classes_per_category[category_of[cls]] += 1
        return {
            "classes": len(per_class),
            "images": len(split),
            "images_per_split": {s: sum(v == s for v in split.values()) for s in ("train", "test")},
            "images_per_style": {s: sum(style_of[p] == s for p in split) for s in styles},
            "classes_per_category": dict(sorted(classes_per_category.items())),
            "images_per_category": per_category(split, category_of),
            "images_per_class": dict(sorted(per_class.items())),
            "emoji": len(items),
            "single_group_classes": dropped["single_group_classes"],
            "skipped": {"missing_files": missing, "unrenderable_svgs": unrenderable,
                        "duplicate_images": dropped["duplicate_images"],
                        "conflicting_images": dropped["conflicting_images"], "extra_emoji": extras},
        }
