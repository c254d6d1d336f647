"""``wesnoth``: the unit sprites of the Debian package wesnoth-1.16-data, one class per unit type.

The package holds ``<root>/core/images/units/<race or faction>/[sub-folders/]<name>.png``: each unit's standing
image (``burner.png``) and its animation frames (``burner-attack-1.png``, ``burner+female-defend1.png``, ...). Tasks
are the race/faction folders (``level: category``); a class is a unit type of one folder, named
``<folder>.<unit>``, and its unit is read from the file names (:func:`unit_names`). Files directly in the units
folder (``random-dice.png``) belong to no folder: not used, counted (``loose_images``).

Sprites carry magenta "team colour" pixels that the game recolours at draw time; they are recoloured here as the
game draws them for one side (``--team-color``, default ``1``: side 1, red), from the game's own definitions in
``<root>/core/team-colors.cfg`` (the ``magenta`` palette, the side's ``color_range``) with the game's mapping
(:func:`recolor_map`). Images are written as RGBA PNGs (fully transparent pixels as 0), downscaled to at most
``--max-side`` pixels after recolouring.

Frames of one animation are near-identical, so the split (``split.csv``, :mod:`.split`) keeps each animation whole
on one side: the group of a frame is its class and its stem up to the frame number (:func:`animation_name`).
Exact copies within a class are written once, copies under two classes not at all (counted).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data.decode import clear_transparent, target_size
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
from .clipart import output_name, walk_files
from .layout import class_folders, images_dir, save_array, write_split, write_taxonomy
from .packages import content_digest, debian_missing, debian_package, listing_digest
from .split import Item, grouped_split, pixel_digest

PACKAGE = "wesnoth-1.16-data"
DEFAULT_ROOT = "/usr/share/games/wesnoth/1.16/data"
UNITS = Path("core/images/units")  # under the root
TEAM_COLORS = Path("core/team-colors.cfg")  # under the root
PALETTE = "magenta"  # the palette the unit sprites are drawn with (a unit's default flag_rgb)
DIRECTIONS = frozenset({"n", "ne", "e", "se", "s", "sw", "w", "nw"})  # facing tokens of frame names
_SEPARATORS = re.compile(r"([-+_])")
_CUTS = re.compile(r"[-+_]|(?<=[A-Za-z])(?=[0-9])")  # where a stem may end a shorter name: a separator, a digit
_FRAME = re.compile(r"[0-9]+(?=$|[-+_])")  # a frame number: a digit run that ends a token
_HEX = re.compile(r"^[0-9A-Fa-f]{6}$")


# ------------------------------------------------------------------------------------------------ names and groups


def trimmed(stem: str) -> str:
    """``stem`` without its frame part: tokens from the first one holding a digit or naming a direction on
    (``wraith-s`` -> ``wraith``, ``eagle-e`` -> ``eagle``, ``thrasher-impact-1`` -> ``thrasher-impact``)."""
    parts = _SEPARATORS.split(stem)
    head = parts[0].rstrip("0123456789") or parts[0]
    kept = [head]
    for sep, token in zip(parts[1::2], parts[2::2]):
        if not token or any(c.isdigit() for c in token) or token in DIRECTIONS:
            break
        kept += [sep, token]
    return "".join(kept)


def unit_names(stems: list[str]) -> dict[str, str]:
    """{stem: its unit} for the image stems of one folder (all depths).

    The unit of a stem is its shortest prefix, ending at a separator (``-``, ``+``, ``_``) or before a digit, that
    is itself a stem of the folder or the :func:`trimmed` form of one, then trimmed: ``burner-attack-1`` and
    ``burner+female-defend1`` -> ``burner`` (there is a ``burner.png``), ``young-ogre-idle-1`` -> ``young-ogre``,
    ``ghost-s-attack-2`` -> ``ghost`` (no ``ghost.png``, but ``ghost-n-1`` trims to ``ghost``).
    """
    bases = set(stems) | {trimmed(s) for s in stems}
    out = {}
    for stem in stems:
        prefixes = [stem[:m.start()] for m in _CUTS.finditer(stem) if m.start() > 0] + [stem]
        out[stem] = trimmed(next(p for p in prefixes if p in bases))
    return out


def animation_name(stem: str) -> str:
    """The animation a frame belongs to: its stem up to the first frame number (a digit run ending a token) with the
    separators before it dropped (``arbiter-blade-s-4`` -> ``arbiter-blade-s``, ``fighter-ne-axe7`` ->
    ``fighter-ne-axe``, ``blademaster-fly-2-upstroke`` -> ``blademaster-fly``, ``bear-2claws1`` -> ``bear-2claws``);
    a stem without one is its own animation (a standing image)."""
    match = _FRAME.search(stem)
    if match is None:
        return stem
    return stem[:match.start()].rstrip("-+_") or stem


# ---------------------------------------------------------------------------------------------------- team colour


@dataclass(frozen=True)
class ColorRange:
    """A ``[color_range]`` of team-colors.cfg: the average, highlight (max) and shadow (min) shades as (r, g, b)."""

    id: str
    mid: tuple[int, int, int]
    max: tuple[int, int, int]
    min: tuple[int, int, int]


def _hex_colour(text: str, where: str) -> tuple[int, int, int]:
    text = text.strip()
    if not _HEX.match(text):
        raise PrepareError(f"{where}: {text!r} is not a 6-digit hex colour")
    value = int(text, 16)
    return (value >> 16) & 255, (value >> 8) & 255, value & 255


def read_team_colors(path: Path) -> tuple[dict[str, ColorRange], dict[str, list[tuple[int, int, int]]]]:
    """The ``[color_range]`` entries (by id) and ``[color_palette]`` lists (by name) of a team-colors.cfg; a bad
    entry is a PrepareError naming the file and line."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise PrepareError(f"{path}: cannot be read ({err})") from err
    ranges: dict[str, ColorRange] = {}
    palettes: dict[str, list[tuple[int, int, int]]] = {}
    tag, fields, start = None, {}, 0  # fields: key -> (value, line number)
    for number, raw in enumerate(lines, 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("[/"):
            if tag == "color_range":
                if "id" not in fields or "rgb" not in fields:
                    raise PrepareError(f"{path}, line {start}: [color_range] lacks id or rgb")
                (ident, _), (shades, at) = fields["id"], fields["rgb"]
                where = f"{path}, line {at}"
                shades = [s for s in shades.split(",") if s.strip()]
                if len(shades) < 3:
                    raise PrepareError(f"{where}: [color_range] {ident} rgb needs at least 3 colours")
                mid, high, low = (_hex_colour(s, where) for s in shades[:3])
                ranges[ident] = ColorRange(ident, mid, high, low)
            tag, fields = None, {}
        elif line.startswith("["):
            tag, fields, start = line.strip("[]"), {}, number
        elif "=" in line and tag is not None:
            key, _, value = line.partition("=")
            value = value.strip().strip('"')
            if tag == "color_palette":
                where = f"{path}, line {number}"
                palettes[key.strip()] = [_hex_colour(c, where) for c in value.split(",") if c.strip()]
            else:
                fields[key.strip()] = (value, number)
    return ranges, palettes


def recolor_map(target: ColorRange, palette: list[tuple[int, int, int]]) -> np.ndarray:
    """The colour each palette entry is drawn as for ``target``, uint8 (N, 3): the game's recolour_range.

    The first palette entry is the reference; an entry of average ``a = (r + g + b) // 3`` at or below the
    reference's average ``ref`` becomes ``t * mid + (1 - t) * min`` with ``t = a / ref``, a lighter one
    ``t * mid + (1 - t) * max`` with ``t = (255 - a) / (255 - ref)``; single-precision arithmetic, truncated to an
    integer and capped at 255, as the game computes it. So the reference becomes exactly the range's ``mid``.
    """
    old = np.asarray(palette, dtype=np.int64).reshape(-1, 3)
    if len(old) == 0:
        return np.zeros((0, 3), np.uint8)
    ref = int(old[0].sum()) // 3
    avg = old.sum(axis=1) // 3
    f32 = np.float32
    mid, high, low = (np.asarray(c, f32) for c in (target.mid, target.max, target.min))
    out = np.zeros((len(old), 3), np.int64)
    for i, a in enumerate(avg.tolist()):
        if ref and a <= ref:
            ratio = f32(a) / f32(ref)
            value = ratio * mid + (f32(1) - ratio) * low
        elif ref != 255:
            ratio = (f32(255) - f32(a)) / (f32(255) - f32(ref))
            value = ratio * mid + (f32(1) - ratio) * high
        else:  # an entry lighter than a pure-white reference: cannot occur (the game asserts it does not)
            value = mid
        out[i] = np.minimum(np.trunc(value.astype(f32)).astype(np.int64), 255)
    return out.astype(np.uint8)


def _rgb_key(rgb: np.ndarray) -> np.ndarray:
    """uint8 (..., 3) colours as uint32 0xRRGGBB."""
    rgb = rgb.astype(np.uint32)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def recolor(rgba: np.ndarray, palette: np.ndarray, colours: np.ndarray) -> np.ndarray:
    """A copy of a uint8 (H, W, 4) image with every visible pixel (alpha > 0) whose exact RGB is ``palette[i]``
    given RGB ``colours[i]``, alpha kept (the game's recolouring of team-colour pixels)."""
    out = np.array(rgba, dtype=np.uint8, copy=True)
    palette = np.asarray(palette, np.uint8).reshape(-1, 3)
    if not len(palette):
        return out
    keys = _rgb_key(palette)
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    pixels = _rgb_key(out[..., :3])
    at = np.minimum(np.searchsorted(sorted_keys, pixels), len(sorted_keys) - 1)
    hit = (sorted_keys[at] == pixels) & (out[..., 3] > 0)
    out[..., :3][hit] = np.asarray(colours, np.uint8).reshape(-1, 3)[order[at[hit]]]
    return out


# ----------------------------------------------------------------------------------------------------- the files


@dataclass(frozen=True)
class Sprite:
    """One input image: its folder (category), unit, class folder, output file name, path, group."""

    category: str
    unit: str
    cls: str
    name: str
    path: Path
    group: str


def read_sprite(path: Path) -> np.ndarray:
    """A sprite file as uint8 RGBA (H, W, 4), fully decoded; raises what PIL raises on a bad file."""
    from PIL import Image

    with Image.open(path) as img:
        img.load()
        return np.asarray(img.convert("RGBA"))


def downscaled(rgba: np.ndarray, max_side: int) -> np.ndarray:
    """``rgba`` with its longer side at most ``max_side`` (Lanczos on premultiplied colour; unchanged if within)."""
    from PIL import Image

    size = (rgba.shape[1], rgba.shape[0])
    goal = target_size(size, max_side)
    if goal == size:
        return rgba
    small = Image.fromarray(rgba).convert("RGBa").resize(goal, Image.Resampling.LANCZOS).convert("RGBA")
    return np.asarray(small)


@register_preparer("wesnoth")
class WesnothPreparer(Preparer):
    """Wesnoth unit types as classes, race/faction folders as tasks, split by animation; see the module docstring."""

    VERSION = 1
    LEVEL = "category"
    SPLIT = True
    SUMMARY = "unit sprites of the Debian package wesnoth-1.16-data: classes = unit types, tasks = races/factions"
    OPTIONS = (
        Option("root", "the Wesnoth data folder (holding core/images/units and core/team-colors.cfg)", DEFAULT_ROOT),
        Option("team-color", "the [color_range] id of core/team-colors.cfg the team-colour pixels are drawn in "
               "(1: side 1, red)", "1"),
        Option("max-side", "longer side of the written images at most this many pixels", 256, int),
        Option("test-fraction", "each class sends whole animations to the test split until they hold this fraction "
               "of its images (near it: a whole animation that would overshoot it by more than it falls short is passed over)",
               0.3, float),
        Option("seed", "seed of the split", 0, int),
        CATEGORIES,
    )

    def check(self, options: dict) -> dict:
        """Positive size, a fraction in (0, 1); root absolute."""
        if int(options["max_side"]) < 1:
            raise PrepareError(f"--max-side must be >= 1, got {options['max_side']}")
        if not 0 < float(options["test_fraction"]) < 1:
            raise PrepareError(f"--test-fraction must be in (0, 1), got {options['test_fraction']}")
        team = str(options["team_color"]).strip()
        if not team:
            raise PrepareError("--team-color: give a [color_range] id, e.g. 1 or red")
        return {"root": str(Path(options["root"]).absolute()), "team_color": team,
                "max_side": int(options["max_side"]), "test_fraction": float(options["test_fraction"]),
                "seed": int(options["seed"]), "categories": parse_categories(options["categories"])}

    def locate(self, options: dict) -> list[Package]:
        """The data folder (its Debian version when it is the installed one; a digest of the sprite listing and of
        team-colors.cfg)."""
        root = Path(options["root"])
        units, colours = root / UNITS, root / TEAM_COLORS
        if not units.is_dir() or not any(e.is_dir() for e in os.scandir(units)):
            raise debian_missing(PACKAGE, f"the Wesnoth unit images folder {units}")
        if not colours.is_file():
            raise debian_missing(PACKAGE, f"the Wesnoth team colour definitions {colours}")
        digest = hashlib.sha256((listing_digest(units, walk_files(units)) + content_digest([colours])).encode())
        return [debian_package(PACKAGE, root, Path(DEFAULT_ROOT), digest.hexdigest())]

    def build(self, options: dict, packages: list[Package], out: Path) -> dict:
        """Recolour and write every unit sprite; taxonomy.csv and split.csv of what was written."""
        from PIL import ImageFile

        if ImageFile.LOAD_TRUNCATED_IMAGES:
            raise PrepareError("PIL.ImageFile.LOAD_TRUNCATED_IMAGES is True: truncated files would be written silently")
        root = Path(options["root"])
        palette, colours = self._team_colours(root / TEAM_COLORS, options["team_color"])
        units = root / UNITS
        skipped = Counter(loose_images=0, non_image_files=0, corrupt_images=0, empty_folders=0)
        folders = sorted(e.name for e in os.scandir(units) if e.is_dir() and not e.name.startswith("."))
        for entry in sorted(os.scandir(units), key=lambda e: e.name):
            if entry.is_file() and not entry.name.startswith("."):
                skipped["loose_images" if is_image_file(entry.name) else "non_image_files"] += 1
        keep = select_categories(folders, options["categories"], str(units))
        sprites = self._sprites(units, [f for f in folders if f in keep], skipped)
        arrays: dict[str, np.ndarray] = {}
        items = []
        with Progress("wesnoth", len(sprites), "images") as progress:
            for sprite in sprites:
                progress.update()
                try:
                    rgba = read_sprite(sprite.path)
                except Exception as err:  # PIL raises OSError, SyntaxError, ValueError, ...
                    skipped["corrupt_images"] += 1
                    warn(f"wesnoth: skipped {sprite.path}: cannot decode ({type(err).__name__}: {err})")
                    continue
                image = clear_transparent(downscaled(recolor(rgba, palette, colours), options["max_side"]))
                path = f"{sprite.cls}/{sprite.name}"
                arrays[path] = image
                items.append(Item(path, sprite.cls, sprite.group, pixel_digest(image)))
        split, split_counts = grouped_split(items, options["test_fraction"], options["seed"])
        images = images_dir(out)
        for path in sorted(split):
            (images / path).parent.mkdir(exist_ok=True)
            save_array(arrays[path], images / path)
        write_split(out, split)
        return self._counts(sprites, split, split_counts, skipped, out)

    @staticmethod
    def _team_colours(path: Path, team: str) -> tuple[np.ndarray, np.ndarray]:
        """(the magenta palette, the colours it is drawn in for ``team``) from team-colors.cfg."""
        ranges, palettes = read_team_colors(path)
        if team not in ranges:
            raise PrepareError(f"--team-color {team!r} is not a [color_range] id of {path}; known: "
                               + ", ".join(sorted(ranges)))
        if not palettes.get(PALETTE):
            raise PrepareError(f"{path}: no [color_palette] {PALETTE}= list (the team-colour palette of the sprites)")
        return np.asarray(palettes[PALETTE], np.uint8), recolor_map(ranges[team], palettes[PALETTE])

    @staticmethod
    def _sprites(units: Path, folders: list[str], skipped: Counter) -> list[Sprite]:
        """Every image file of the chosen folders as a Sprite, sorted by class and name."""
        classes = {}
        found: list[tuple[str, Path]] = []
        for folder in folders:
            files = walk_files(units / folder)
            skipped["non_image_files"] += sum(not is_image_file(f) for f in files)
            files = [f for f in files if is_image_file(f)]
            if not files:
                skipped["empty_folders"] += 1
                warn(f"wesnoth: {units / folder} holds no images; not used")
            found += [(folder, f) for f in files]
        unit_of: dict[str, dict[str, str]] = {}
        for folder in folders:
            unit_of[folder] = unit_names(sorted({f.stem for c, f in found if c == folder}))
        for folder, f in found:
            classes[f"{folder}.{unit_of[folder][f.stem]}"] = (folder, unit_of[folder][f.stem])
        names = class_folders(classes, "Wesnoth unit")
        sprites, taken = [], defaultdict(set)
        for folder, f in found:
            unit = unit_of[folder][f.stem]
            cls = names[f"{folder}.{unit}"]
            name = f"{f.stem}.png"
            if name in taken[cls]:  # the same name in two sub-folders: by its path, sub-folders joined by '__'
                name = output_name(f.relative_to(units / folder), taken[cls])
            taken[cls].add(name)
            sprites.append(Sprite(folder, unit, cls, name, f, f"{unit}:{animation_name(f.stem)}"))
        return sorted(sprites, key=lambda s: (s.cls, s.name))

    @staticmethod
    def _counts(sprites: list[Sprite], split: dict[str, str], split_counts: dict, skipped: Counter, out: Path) -> dict:
        """taxonomy.csv of the classes that got images, and the counts."""
        taxonomy = {s.cls: (s.category, s.unit) for s in sprites}
        per_class = Counter(path.split("/")[0] for path in split)
        write_taxonomy(out, ("category", "unit"), {c: v for c, v in taxonomy.items() if per_class[c]})
        per_category: dict[str, Counter] = defaultdict(Counter)
        for path, side in split.items():
            category = taxonomy[path.split("/")[0]][0]
            per_category[category][side] += 1
        classes_per_category = Counter(taxonomy[c][0] for c in per_class)
        tests = Counter(path.split("/")[0] for path, side in split.items() if side == "test")
        return {
            "classes": len(per_class),
            "images": len(split),
            "images_per_split": {s: sum(v == s for v in split.values()) for s in ("train", "test")},
            "classes_per_category": dict(sorted(classes_per_category.items())),
            "images_per_category": {c: sum(v.values()) for c, v in sorted(per_category.items())},
            "test_images_per_category": {c: v["test"] for c, v in sorted(per_category.items())},
            "images_per_class": dict(sorted(per_class.items())),
            "files": len(sprites),
            "animations": len({(s.cls, s.group) for s in sprites}),
            "classes_with_one_image": sum(n == 1 for n in per_class.values()),
            "classes_without_test_images": sum(not tests[c] for c in per_class),
            "categories_with_one_class": sum(n == 1 for n in classes_per_category.values()),
            "skipped": {**dict(skipped), "duplicate_images": split_counts["duplicate_images"],
                        "conflicting_images": split_counts["conflicting_images"],
                        "classes_without_images": len(taxonomy) - len(per_class)},
        }
