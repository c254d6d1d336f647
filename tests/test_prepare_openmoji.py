"""``taskspace prepare openmoji``: a tiny openmoji package in its real layout (package.json, data/openmoji.json,
color/svg and black/svg) with known answers, then the real package, installed when missing where the machine allows
it (tests/packages.py; skipped, with the reason, elsewhere)."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest

from taskspace.prepare import MissingPackageError, PrepareError, PrepareWarning
from taskspace.prepare import packages as P
from taskspace.prepare.openmoji import drawing_group
from taskspace.prepare.run import prepare

from packages import ensure_npm, npm_modules
from prepared import class_files, pixels, plan, read_csv, record, tree

SIZE = 16
# (hexcode, group, subgroup, skin tone, skin-tone base)
EMOJI = [
    ("1F600", "smileys-emotion", "face-smiling", "", ""),
    ("1F601", "smileys-emotion", "face-smiling", "", ""),  # its black drawing is 1F600's: a duplicate
    ("1F970", "smileys-emotion", "face-affection", "", ""),
    ("1F60D", "smileys-emotion", "face-affection", "", ""),
    ("1F44B", "people-body", "hand-fingers-open", "", "1F44B"),
    ("1F44B-1F3FB", "people-body", "hand-fingers-open", 1, "1F44B"),
    ("1F44B-1F3FF", "people-body", "hand-fingers-open", 5, "1F44B"),
    ("1F468-200D-1F33E", "people-body", "person-role", "", ""),  # man, woman, person farmer: one drawing group
    ("1F469-200D-1F33E", "people-body", "person-role", "", ""),
    ("1F9D1-200D-1F33E", "people-body", "person-role", "", ""),
    ("1F46E", "people-body", "person-role", "", ""),
    ("1F697", "travel-places", "transport-ground", "", ""),
    ("26C5", "travel-places", "sky & weather", "", ""),
    ("1F4A7", "travel-places", "sky & weather", "", ""),  # its color drawing is not XML
    ("2744", "travel-places", "sky & weather", "", ""),  # its black drawing is missing
    ("1F1E6-1F1E8", "flags", "country-flag", "", ""),  # black: the same empty rectangle as the two below
    ("1F1E6-1F1E9", "flags", "country-flag", "", ""),
    ("1F3C1", "flags", "flag", "", ""),
    ("E000", "extras-openmoji", "brand", "", ""),
    ("2BEB", "extras-unicode", "symbol-other", "", ""),
]
EMPTY_FLAG = {"1F1E6-1F1E8", "1F1E6-1F1E9", "1F3C1"}
BROKEN = {("color", "1F4A7")}
MISSING = {("black", "2744")}
FILES = {
    "country-flag": ["1f1e6-1f1e8_color.png", "1f1e6-1f1e9_color.png"],
    "face-affection": ["1f60d_black.png", "1f60d_color.png", "1f970_black.png", "1f970_color.png"],
    "face-smiling": ["1f600_black.png", "1f600_color.png", "1f601_color.png"],
    "flag": ["1f3c1_color.png"],
    "hand-fingers-open": ["1f44b_black.png", "1f44b_color.png"],
    "person-role": ["1f468-200d-1f33e_black.png", "1f468-200d-1f33e_color.png", "1f469-200d-1f33e_black.png",
                    "1f469-200d-1f33e_color.png", "1f46e_black.png", "1f46e_color.png",
                    "1f9d1-200d-1f33e_black.png", "1f9d1-200d-1f33e_color.png"],
    "sky-weather": ["1f4a7_black.png", "26c5_black.png", "26c5_color.png", "2744_color.png"],
    "transport-ground": ["1f697_black.png", "1f697_color.png"],
}
TAXONOMY = [
    ["class", "category", "subcategory"],
    ["country-flag", "flags", "country-flag"],
    ["face-affection", "smileys-emotion", "face-affection"],
    ["face-smiling", "smileys-emotion", "face-smiling"],
    ["flag", "flags", "flag"],
    ["hand-fingers-open", "people-body", "hand-fingers-open"],
    ["person-role", "people-body", "person-role"],
    ["sky-weather", "travel-places", "sky & weather"],
    ["transport-ground", "travel-places", "transport-ground"],
]


# --------------------------------------------------------------------------------------------------------- helpers














def colour(n: int) -> tuple[int, int, int]:
    """The fill of the n-th fixture emoji's color drawing (all different)."""
    return 200 - 9 * n, 20 + 11 * n, 60 + 7 * n


def drawing(style: str, n: int, hexcode: str) -> str:
    """A 72 x 72 OpenMoji-like drawing: a filled square (color) or a circle outline whose radius depends on n (black);
    the black country flags are one empty rectangle, as in the real package."""
    if style == "color":
        r, g, b = colour(n)
        body = f'<rect x="0" y="0" width="72" height="72" fill="rgb({r},{g},{b})"/>'
    elif hexcode in EMPTY_FLAG:
        body = '<rect x="6" y="18" width="60" height="36" fill="none" stroke="#000" stroke-width="2"/>'
    else:
        radius = 30 - (n if hexcode != "1F601" else 0)  # 1F601's black drawing is 1F600's (n = 0)
        body = f'<circle cx="36" cy="36" r="{radius}" fill="none" stroke="#000" stroke-width="3"/>'
    return f'<svg id="emoji" viewBox="0 0 72 72" xmlns="http://www.w3.org/2000/svg">{body}</svg>'


def write_openmoji(node_modules: Path, version: str = "17.0.0") -> Path:
    base = node_modules / "openmoji"
    (base / "data").mkdir(parents=True)
    (base / "package.json").write_text(json.dumps({"name": "openmoji", "version": version, "main": "index.js"}))
    entries = []
    for n, (hexcode, group, subgroup, tone, tone_base) in enumerate(EMOJI):
        entries.append({"emoji": "?", "hexcode": hexcode, "group": group, "subgroups": subgroup, "annotation": "x",
                        "skintone": tone, "skintone_combination": "single" if tone_base else "",
                        "skintone_base_emoji": "?" if tone_base else "", "skintone_base_hexcode": tone_base,
                        "unicode": 1, "order": n})
        for style in ("color", "black"):
            path = base / style / "svg" / f"{hexcode}.svg"
            path.parent.mkdir(parents=True, exist_ok=True)
            if (style, hexcode) in BROKEN:
                path.write_text("<svg id='emoji' viewBox='0 0 72 72'")
            elif (style, hexcode) not in MISSING:
                path.write_text(drawing(style, n, hexcode))
    (base / "data" / "openmoji.json").write_text(json.dumps(entries[::-1], indent=2))  # order must not matter
    return node_modules


@pytest.fixture
def node_modules(tmp_path):
    return write_openmoji(tmp_path / "node_modules")


def run(node_modules: Path, dest: Path, **options) -> tuple[dict, list[str]]:
    with pytest.warns(PrepareWarning) as caught:
        result = prepare("openmoji", dest, {"packages": [str(node_modules)], "size": SIZE, **options})
    return result.record, [str(w.message) for w in caught]


def sides_by_group(dest: Path) -> dict[tuple[str, str], set[str]]:
    """{(class, drawing group): the sides its images are on} from split.csv."""
    out: dict[tuple[str, str], set[str]] = defaultdict(set)
    for path, side in read_csv(dest / "split.csv")[1:]:
        cls, name = path.split("/")
        hexcode = name.rsplit("_", 1)[0].upper()
        base = next((e[4] for e in EMOJI if e[0] == hexcode and e[3] != ""), hexcode)
        out[(cls, drawing_group(base))].add(side)
    return out


# ----------------------------------------------------------------------------------------------------- fixtures


def test_layout_taxonomy_split_and_counts(node_modules, tmp_path):
    dest = tmp_path / "om"
    rec, messages = run(node_modules, dest)
    assert class_files(dest) == FILES
    assert read_csv(dest / "taxonomy.csv") == TAXONOMY
    split = read_csv(dest / "split.csv")
    assert split[0] == ["path", "split"] and [r[0] for r in split[1:]] == sorted(
        f"{c}/{f}" for c, files in FILES.items() for f in files)
    counts = rec["counts"]
    assert counts["classes"] == 8 and counts["images"] == 26 and counts["emoji"] == 16
    assert counts["images_per_style"] == {"black": 11, "color": 15}
    assert counts["classes_per_category"] == {"flags": 2, "people-body": 2, "smileys-emotion": 2, "travel-places": 2}
    assert counts["skipped"] == {"missing_files": {"black": 1, "color": 0}, "unrenderable_svgs": {"black": 0,
                                 "color": 1}, "duplicate_images": 1, "conflicting_images": 3, "extra_emoji": 2}
    assert sum(counts["images_per_split"].values()) == 26 and counts["images_per_split"]["test"] > 0
    assert {c: sum(v.values()) for c, v in counts["images_per_category"].items()} == {
        "flags": 3, "people-body": 10, "smileys-emotion": 7, "travel-places": 6}
    assert any("color/svg/1F4A7.svg" in m and "cannot be rasterised" in m and "XML" in m for m in messages)
    assert any("black/svg/2744.svg" in m and "cannot be read" in m for m in messages)
    packages = rec["packages"]
    assert [p["name"] for p in packages] == ["openmoji", "resvg-py"] and packages[0]["version"] == "17.0.0"
    assert rec["options"] == {"size": SIZE, "styles": ["black", "color"], "skin_tones": False, "test_fraction": 0.3,
                              "seed": 0, "packages": [str(node_modules)], "categories": None}


def test_images_are_the_drawings_at_the_asked_size(node_modules, tmp_path):
    dest = tmp_path / "om"
    run(node_modules, dest)
    n = [e[0] for e in EMOJI].index("1F697")
    car = pixels(dest / "images/transport-ground/1f697_color.png")
    assert car.shape == (SIZE, SIZE, 4) and (car == (*colour(n), 255)).all()  # a full-canvas square
    ring = pixels(dest / "images/transport-ground/1f697_black.png")
    assert ring.shape == (SIZE, SIZE, 4) and ring[SIZE // 2, SIZE // 2, 3] == 0 and ring[..., 3].max() > 0
    assert (ring[ring[..., 3] > 0][:, :3] == 0).all()  # black line art


def test_related_drawings_stay_on_one_side(node_modules, tmp_path):
    for seed in range(4):
        dest = tmp_path / f"om{seed}"
        run(node_modules, dest, skin_tones=True, seed=seed, test_fraction=0.5)
        sides = sides_by_group(dest)
        assert all(len(s) == 1 for s in sides.values()), sides
        farmers = sides[("person-role", "1F9D1-1F33E")]
        assert len(farmers) == 1  # six images of the man / woman / person farmer
        assert {s for (cls, _), v in sides.items() if cls == "person-role" for s in v} == {"train", "test"}
    files = class_files(tmp_path / "om0")["hand-fingers-open"]
    assert files == ["1f44b-1f3fb_black.png", "1f44b-1f3fb_color.png", "1f44b-1f3ff_black.png",
                     "1f44b-1f3ff_color.png", "1f44b_black.png", "1f44b_color.png"]
    counts = record(tmp_path / "om0")["counts"]
    assert counts["emoji"] == 18 and counts["single_group_classes"] == 3  # hand, flag, transport


def test_drawing_group_makes_gender_direction_and_joiners_neutral():
    assert drawing_group("1F469-200D-1F33E") == drawing_group("1F468-200D-1F33E") == "1F9D1-1F33E"
    assert drawing_group("1F6B6-200D-2642-FE0F-200D-27A1-FE0F") == drawing_group("1F6B6") == "1F6B6"
    assert drawing_group("2764-FE0F") == "2764" and drawing_group("1f600") == "1F600"


def test_same_inputs_give_byte_identical_folders(node_modules, tmp_path):
    run(node_modules, tmp_path / "a", skin_tones=True)
    run(node_modules, tmp_path / "b", skin_tones=True)
    assert tree(tmp_path / "a") == tree(tmp_path / "b")


def test_options_styles_categories_and_their_errors(node_modules, tmp_path):
    dest = tmp_path / "colour"
    rec, _ = run(node_modules, dest, styles="color", categories="travel-places,Flags")
    assert class_files(dest) == {"country-flag": ["1f1e6-1f1e8_color.png", "1f1e6-1f1e9_color.png"],
                                 "flag": ["1f3c1_color.png"], "sky-weather": ["26c5_color.png", "2744_color.png"],
                                 "transport-ground": ["1f697_color.png"]}
    assert rec["counts"]["skipped"]["conflicting_images"] == 0 and rec["options"]["categories"] == [
        "Flags", "travel-places"]
    for given, message in (({"styles": "colour"}, "--styles: unknown style"), ({"size": 4}, "--size must be"),
                           ({"test_fraction": 1.0}, "--test-fraction must be"),
                           ({"categories": "extras-openmoji"}, "not in"), ({"vendors": "x"}, "--vendors does not")):
        with pytest.raises(PrepareError, match=message):
            prepare("openmoji", tmp_path / "bad", {"packages": [str(node_modules)], **given})
    assert not (tmp_path / "bad").exists()


def test_missing_package_is_named_with_the_install_command(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(MissingPackageError, match=r"openmoji not found .*`npm install -g openmoji@17\.0\.0`"):
        prepare("openmoji", tmp_path / "om", {"packages": [str(tmp_path / "empty")]})
    assert not (tmp_path / "om").exists()


def test_the_imagefolder_source_plans_the_prepared_tasks(node_modules, tmp_path):
    dest = tmp_path / "om"
    run(node_modules, dest)
    tasks = plan({"source": "imagefolder", "imagefolder": {"root": f"{dest}/images", "taxonomy": f"{dest}/taxonomy.csv",
                                                           "split": f"{dest}/split.csv", "level": "category"}})
    # flag has one image, the single-group classes (hand-fingers-open, transport-ground) no test image: their tasks are
    # left with one class
    assert sorted(tasks) == ["smileys-emotion"]


# ------------------------------------------------------------------------------------------ the real package


def test_real_openmoji_two_groups(tmp_path):
    need = ensure_npm("openmoji")  # from the npm registry when no node_modules folder holds it
    if need is not None:
        pytest.skip(need)
    package = P.find_npm_package("openmoji", [npm_modules("openmoji")])
    dest = tmp_path / "om"
    rec = prepare("openmoji", dest, {"packages": [str(Path(package.path).parent)],
                                     "categories": "activities,component"}).record
    counts = rec["counts"]
    assert counts["emoji"] == 85 + 9 and counts["skipped"]["extra_emoji"] == 542
    assert counts["classes_per_category"] == {"activities": 5, "component": 2}
    assert sorted(class_files(dest)) == ["arts-crafts", "award-medal", "event", "game", "hair-style", "skin-tone",
                                         "sport"]
    assert counts["images_per_category"]["activities"]["test"] >= 50
    assert counts["skipped"]["duplicate_images"] == 5  # black: the five skin-tone swatches, two hair styles are equal
    pumpkin = pixels(dest / "images/event/1f383_color.png")
    assert pumpkin.shape == (64, 64, 4)
    orange = pumpkin[pumpkin[..., 3] == 255][:, :3].astype(int)
    assert np.median(orange[:, 0]) > 200 and 60 < np.median(orange[:, 1]) < 200 and np.median(orange[:, 2]) < 80
    tasks = plan({"source": "imagefolder", "imagefolder": {"root": f"{dest}/images", "taxonomy": f"{dest}/taxonomy.csv",
                                                           "split": f"{dest}/split.csv", "level": "category"}})
    assert "activities" in tasks
