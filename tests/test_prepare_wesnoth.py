"""``taskspace prepare wesnoth``: unit sprites of wesnoth-1.16-data as tasks of unit types, on a tiny fixture tree in
the package's layout (sprites with magenta team-colour pixels, animation frames, a duplicate, a copy under two
units, a corrupt file) with known answers; the game's team recolouring against values worked out by hand; then
once on two folders of the real package (installed when missing where the machine allows it)."""

from __future__ import annotations

import shutil
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from taskspace.cli import main
from taskspace.prepare import MissingPackageError, PrepareError, PrepareWarning, known_preparers
from taskspace.prepare.run import prepare
from taskspace.prepare.wesnoth import (
    ColorRange,
    animation_name,
    read_team_colors,
    recolor,
    recolor_map,
    trimmed,
    unit_names,
)

from packages import APT, ensure_apt
from prepared import class_files, pixels, plan_prepared, read_csv, record, tree

REAL_DATA = Path("/usr/share/games/wesnoth/1.16/data")
MAGENTA = ("F49AC1,3F0016,55002A,690039,7B0045,8C0051,9E005D,B10069,C30074,D6007F,EC008C,EE3D96,EF5BA1,F172AC,"
           "F287B6,F6ADCD,F8C1D9,FAD5E5,FDE9F1")
TEAM_COLORS = f"""#textdomain wesnoth
# Each Team-color definition is made up of 4 hexadecimal colors
[color_range]
    id=red
    rgb=FF0000,FFFFFF,000000,FF0000
    name= _ "Red"
    default=yes
[/color_range]

[color_range]
    id=1
    rgb=FF0000,FFFFFF,000000,FF0000
    name= _ "Red"
[/color_range]

[color_range]
    id=2
    rgb=2E419B,FFFFFF,0F0F0F,0000FF
    name= _ "Blue"
[/color_range]

[color_range]
    id=reef
    rgb=00B6E3,09FFDB,00090D,2F8399 #00B6E3
    name= _ "Reef"
[/color_range]

[color_palette]
    # magenta is currently the value used to recolor most images
    magenta={MAGENTA}
    flag_green=00C800,00FF00
[/color_palette]
"""
# the magenta palette drawn for side 1 (red: mid FF0000, max FFFFFF, min 000000), worked out by hand: the reference
# F49AC1 (average 197) becomes FF0000; a darker entry of average a becomes (255 a / 197, 0, 0) truncated; a lighter
# one (255, g, g) with g = 255 (a - 197) / 58 truncated
SIDE1 = {"F49AC1": (255, 0, 0), "3F0016": (36, 0, 0), "55002A": (54, 0, 0), "690039": (69, 0, 0),
         "7B0045": (82, 0, 0), "8C0051": (94, 0, 0), "9E005D": (107, 0, 0), "B10069": (121, 0, 0),
         "C30074": (133, 0, 0), "D6007F": (146, 0, 0), "EC008C": (161, 0, 0), "EE3D96": (192, 0, 0),
         "EF5BA1": (210, 0, 0), "F172AC": (226, 0, 0), "F287B6": (240, 0, 0), "F6ADCD": (255, 48, 48),
         "F8C1D9": (255, 96, 96), "FAD5E5": (255, 145, 145), "FDE9F1": (255, 197, 197)}


# --------------------------------------------------------------------------------------------------------- helpers


def rgb(hex_colour: str) -> tuple[int, int, int]:
    v = int(hex_colour, 16)
    return v >> 16, (v >> 8) & 255, v & 255














def sprite(n: int, side: int = 6) -> np.ndarray:
    """A distinct RGBA sprite: grey ``n`` body, a row of team-colour pixels, a transparent corner with an invisible
    colour (the written image must clear it to 0)."""
    a = np.zeros((side, side, 4), np.uint8)
    a[1:, :] = (n, 100, 50, 255)
    a[0, 0] = (*rgb("F49AC1"), 255)  # the reference: drawn as the range's mid
    a[0, 1] = (*rgb("3F0016"), 128)  # darkest, half transparent: alpha kept
    a[0, 2] = (*rgb("FDE9F1"), 255)  # lightest
    a[0, 3] = (*rgb("F49AC2"), 255)  # one off the palette: not team colour, unchanged
    a[0, 4] = (*rgb("F49AC1"), 0)  # invisible: written as (0, 0, 0, 0)
    a[0, 5] = (9, 9, 9, 0)
    return a


def write_sprite(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


FIXTURE = {  # units-relative path -> sprite number (equal numbers: equal pixels)
    "drakes/burner.png": 10, "drakes/burner-attack-1.png": 11, "drakes/burner-attack-2.png": 12,
    "drakes/burner-attack-3.png": 13, "drakes/burner-defend.png": 14, "drakes/burner+female-defend1.png": 15,
    "drakes/burner+female-defend2.png": 16,
    "drakes/glider.png": 20, "drakes/glider-fly-1.png": 21, "drakes/glider-fly-2.png": 22,
    "drakes/glider-fly-2-upstroke.png": 23, "drakes/glider-idle-1.png": 20,  # a copy of glider.png
    "undead/ghost-n-1.png": 30, "undead/ghost-n-2.png": 31, "undead/ghost-s-1.png": 32,
    "undead/skeleton/skeleton.png": 40, "undead/skeleton/skeleton-idle-1.png": 41,
    "undead/skeleton/skeleton-idle-2.png": 42,
    "undead/zombie.png": 50, "undead/zombie-die-4.png": 60, "undead/soulless.png": 51,
    "undead/soulless-die-4.png": 60,  # the same frame under two units: an ambiguous label
    "random-dice.png": 70,  # directly in the units folder: no race
}
SPLIT_GROUPS = {  # class -> its animations (the groups the split keeps whole), as written
    "drakes.burner": [["burner.png"], ["burner-attack-1.png", "burner-attack-2.png", "burner-attack-3.png"],
                      ["burner-defend.png"], ["burner+female-defend1.png", "burner+female-defend2.png"]],
    "drakes.glider": [["glider-fly-1.png", "glider-fly-2-upstroke.png", "glider-fly-2.png"], ["glider-idle-1.png"]],
    "transport.boat": [["boat.png"]],
    "undead.ghost": [["ghost-n-1.png", "ghost-n-2.png"], ["ghost-s-1.png"]],
    "undead.skeleton": [["skeleton.png"], ["skeleton-idle-1.png", "skeleton-idle-2.png"]],
    "undead.soulless": [["soulless.png"]],
    "undead.zombie": [["zombie.png"]],
}


def write_wesnoth(root: Path) -> Path:
    """A wesnoth data folder: core/team-colors.cfg and core/images/units with every case of the real one (frames,
    female variants, a unit without a standing image, a sub-folder, a duplicate, a copy under two units, a palette
    image, a loose file, a non-image file, a corrupt file, an empty folder)."""
    units = root / "core/images/units"
    for rel, n in FIXTURE.items():
        write_sprite(units / rel, sprite(n))
    boat = Image.new("P", (5, 4), 1)  # a palette sprite with a transparent index and one team-colour entry
    boat.putpalette([0, 0, 0, *rgb("EC008C"), 30, 60, 90] + [0] * 759)
    boat.putpixel((0, 0), 0)
    boat.putpixel((1, 1), 2)
    boat.info["transparency"] = 0
    (units / "transport").mkdir()
    boat.save(units / "transport/boat.png")
    (units / "drakes/glider-die-1.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png" * 10)
    (units / "drakes/README.txt").write_text("not an image")
    (units / "woses").mkdir()
    (root / "core/team-colors.cfg").write_text(TEAM_COLORS)
    return root


@pytest.fixture
def wesnoth_root(tmp_path):
    return write_wesnoth(tmp_path / "wesnoth" / "data")


def prepare_fixture(root: Path, dest: Path, **options):
    with pytest.warns(PrepareWarning) as caught:
        result = prepare("wesnoth", dest, {"root": str(root), **options})
    return result, [str(w.message) for w in caught]


# ------------------------------------------------------------------------------------------------- pure functions


def test_recolor_map_is_the_games_mapping_for_side_1():
    ranges, palettes = read_team_colors_text(TEAM_COLORS)
    assert ranges["1"] == ColorRange("1", (255, 0, 0), (255, 255, 255), (0, 0, 0))
    assert ranges["reef"].mid == (0, 0xB6, 0xE3)  # a trailing comment is not part of the value
    assert [("%02X%02X%02X" % c) for c in palettes["magenta"]] == MAGENTA.split(",")
    drawn = recolor_map(ranges["1"], palettes["magenta"])
    assert {h: tuple(int(v) for v in c) for h, c in zip(MAGENTA.split(","), drawn)} == SIDE1
    blue = recolor_map(ranges["2"], palettes["magenta"])
    assert tuple(blue[0]) == (0x2E, 0x41, 0x9B)  # the reference becomes the range's mid exactly
    # 3F0016 (average 28): t = 28 / 197; t * mid + (1 - t) * min = (19.4, 22.1, 34.9), truncated
    assert tuple(blue[1]) == (19, 22, 34)


def read_team_colors_text(text: str):
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "team-colors.cfg"
        path.write_text(text)
        return read_team_colors(path)


def test_recolor_changes_exactly_the_visible_palette_pixels():
    palette = np.array([rgb(h) for h in MAGENTA.split(",")], np.uint8)
    colours = np.array([SIDE1[h] for h in MAGENTA.split(",")], np.uint8)
    image = sprite(77)
    out = recolor(image, palette, colours)
    assert tuple(out[0, 0]) == (255, 0, 0, 255)
    assert tuple(out[0, 1]) == (36, 0, 0, 128)
    assert tuple(out[0, 2]) == (255, 197, 197, 255)
    assert tuple(out[0, 3]) == (*rgb("F49AC2"), 255)
    assert tuple(out[0, 4]) == (*rgb("F49AC1"), 0)  # invisible pixels are not recoloured
    assert np.array_equal(out[1:], image[1:]) and np.array_equal(image, sprite(77))  # input untouched


def test_bad_team_colour_file_names_the_file_and_line(tmp_path):
    bad = TEAM_COLORS.replace("rgb=2E419B,FFFFFF", "rgb=2E419,FFFFFF")
    path = tmp_path / "team-colors.cfg"
    path.write_text(bad)
    with pytest.raises(PrepareError, match=r"team-colors\.cfg, line 18: '2E419' is not a 6-digit hex colour"):
        read_team_colors(path)


def test_unit_names_from_file_names():
    stems = ["burner", "burner-attack-1", "burner+female", "burner+female-defend1", "young-ogre",
             "young-ogre-idle-1", "ogre", "ogre-attack1", "ghost-n-1", "ghost-s-attack-2", "wraith-s",
             "wraith-s-attack-1", "firetrooper", "firetrooper_flame1", "fire-ant", "fire-ant-flame10", "eagle-e",
             "eagle-hover1", "eagle-rise", "fighter", "fighter-ne-hammer", "fighter-ne-hammer-defend1", "bear",
             "bear-2claws1"]
    assert unit_names(stems) == {
        "burner": "burner", "burner-attack-1": "burner", "burner+female": "burner",
        "burner+female-defend1": "burner", "young-ogre": "young-ogre", "young-ogre-idle-1": "young-ogre",
        "ogre": "ogre", "ogre-attack1": "ogre", "ghost-n-1": "ghost", "ghost-s-attack-2": "ghost",
        "wraith-s": "wraith", "wraith-s-attack-1": "wraith", "firetrooper": "firetrooper",
        "firetrooper_flame1": "firetrooper", "fire-ant": "fire-ant", "fire-ant-flame10": "fire-ant",
        "eagle-e": "eagle", "eagle-hover1": "eagle", "eagle-rise": "eagle", "fighter": "fighter",
        "fighter-ne-hammer": "fighter", "fighter-ne-hammer-defend1": "fighter", "bear": "bear",
        "bear-2claws1": "bear"}
    assert trimmed("thrasher-spear-se-1") == "thrasher-spear" and trimmed("wose") == "wose"


@pytest.mark.parametrize("stem, animation", [
    ("arbiter-blade-s-4", "arbiter-blade-s"), ("fighter-ne-axe7", "fighter-ne-axe"),
    ("blademaster-fly-2-upstroke", "blademaster-fly"), ("bear-2claws1", "bear-2claws"),
    ("lancer-se-defend1-miss", "lancer-se-defend"), ("horseman-n-attack12", "horseman-n-attack"),
    ("burner+female-defend2", "burner+female-defend"), ("firetrooper_flame9", "firetrooper_flame"),
    ("burner-defend", "burner-defend"), ("burner", "burner"), ("falcon-attack-beak", "falcon-attack-beak"),
])
def test_animation_names(stem, animation):
    assert animation_name(stem) == animation


# ---------------------------------------------------------------------------------------------- the preparer


def test_wesnoth_layout_taxonomy_split_and_counts(wesnoth_root, tmp_path):
    dest = tmp_path / "wes"
    result, messages = prepare_fixture(wesnoth_root, dest)
    expected = {c: sorted(f for g in gs for f in g) for c, gs in SPLIT_GROUPS.items()}
    assert class_files(dest) == expected  # glider.png (a copy of glider-idle-1.png) and the shared die frame: gone
    assert read_csv(dest / "taxonomy.csv") == [
        ["class", "category", "unit"], ["drakes.burner", "drakes", "burner"], ["drakes.glider", "drakes", "glider"],
        ["transport.boat", "transport", "boat"], ["undead.ghost", "undead", "ghost"],
        ["undead.skeleton", "undead", "skeleton"], ["undead.soulless", "undead", "soulless"],
        ["undead.zombie", "undead", "zombie"]]
    split = {p: s for p, s in read_csv(dest / "split.csv")[1:]}
    assert sorted(split) == sorted(f"{c}/{f}" for c, fs in expected.items() for f in fs)
    for cls, animations in SPLIT_GROUPS.items():
        sides = [{split[f"{cls}/{f}"] for f in frames} for frames in animations]
        assert all(len(s) == 1 for s in sides), cls  # every animation whole on one side
        if len(animations) > 1:
            assert {"train", "test"} == set().union(*sides), cls  # a class of two animations or more: both sides
        else:
            assert sides == [{"train"}], cls  # one animation: training only (no test image to hold out)
    counts = record(dest)["counts"]
    assert counts["classes"] == 7 and counts["images"] == 20 and counts["files"] == 24
    assert counts["images_per_split"]["train"] + counts["images_per_split"]["test"] == 20
    assert counts["classes_per_category"] == {"drakes": 2, "transport": 1, "undead": 4}
    assert counts["images_per_category"] == {"drakes": 11, "transport": 1, "undead": 8}
    assert counts["test_images_per_category"]["transport"] == 0
    assert counts["classes_with_one_image"] == 3 and counts["classes_without_test_images"] == 3
    assert counts["categories_with_one_class"] == 1
    assert counts["skipped"] == {"loose_images": 1, "non_image_files": 1, "corrupt_images": 1, "empty_folders": 1,
                                 "duplicate_images": 1, "conflicting_images": 2, "classes_without_images": 0}
    assert any("glider-die-1.png" in m and "cannot decode" in m for m in messages)
    assert any("woses" in m and "no images" in m for m in messages)
    package = record(dest)["packages"][0]
    assert package["name"] == "wesnoth-1.16-data" and package["version"] is None and len(package["digest"]) == 64
    assert result.data_config == {"source": "imagefolder", "imagefolder": {
        "root": f"{dest}/images", "taxonomy": f"{dest}/taxonomy.csv", "split": f"{dest}/split.csv",
        "level": "category"}}


def test_wesnoth_team_colour_pixels_are_drawn_for_side_1(wesnoth_root, tmp_path):
    dest = tmp_path / "wes"
    prepare_fixture(wesnoth_root, dest)
    out = pixels(dest / "images/drakes.burner/burner-attack-2.png")
    expected = sprite(12)
    expected[0, 0], expected[0, 1], expected[0, 2] = (255, 0, 0, 255), (36, 0, 0, 128), (255, 197, 197, 255)
    expected[0, 4] = expected[0, 5] = 0
    assert out.shape == (6, 6, 4) and np.array_equal(out, expected)
    boat = pixels(dest / "images/transport.boat/boat.png")
    assert boat.shape == (4, 5, 4) and tuple(boat[0, 0]) == (0, 0, 0, 0)
    assert tuple(boat[1, 1]) == (30, 60, 90, 255) and tuple(boat[0, 1]) == (161, 0, 0, 255)  # EC008C -> side 1


def test_wesnoth_other_team_colour_and_downscaling(wesnoth_root, tmp_path):
    big = sprite(90, side=12)
    write_sprite(wesnoth_root / "core/images/units/drakes/glider-fly-3.png", big)
    dest = tmp_path / "wes"
    prepare_fixture(wesnoth_root, dest, team_color="2", max_side=6)
    out = pixels(dest / "images/drakes.burner/burner.png")
    assert tuple(out[0, 0]) == (0x2E, 0x41, 0x9B, 255) and tuple(out[0, 1]) == (19, 22, 34, 128)
    small = pixels(dest / "images/drakes.glider/glider-fly-3.png")
    assert small.shape == (6, 6, 4) and (small[3:, :, 3] >= 250).all()
    with pytest.raises(PrepareError, match=r"--team-color 'purple' is not a \[color_range\] id of .*team-colors\.cfg; "
                                           r"known: 1, 2, red, reef"):
        prepare("wesnoth", tmp_path / "w2", {"root": str(wesnoth_root), "team_color": "purple"})


def test_wesnoth_categories_seed_and_fraction(wesnoth_root, tmp_path):
    dest = tmp_path / "wes"
    prepare("wesnoth", dest, {"root": str(wesnoth_root), "categories": "undead", "seed": 3, "test_fraction": 0.5})
    assert sorted(class_files(dest)) == ["undead.ghost", "undead.skeleton", "undead.soulless", "undead.zombie"]
    assert record(dest)["options"] == {"root": str(wesnoth_root), "team_color": "1", "max_side": 256,
                                       "test_fraction": 0.5, "seed": 3, "categories": ["undead"]}
    with pytest.raises(PrepareError, match=r"--test-fraction must be in \(0, 1\), got 1\.5"):
        prepare("wesnoth", tmp_path / "w2", {"root": str(wesnoth_root), "test_fraction": 1.5})


def test_wesnoth_one_name_in_two_sub_folders_is_kept_apart(wesnoth_root, tmp_path):
    units = wesnoth_root / "core/images/units"
    write_sprite(units / "drakes/extra/glider-fly-1.png", sprite(24))
    write_sprite(units / "drakes/more/glider-fly-1.png", sprite(25))
    dest = tmp_path / "wes"
    prepare_fixture(wesnoth_root, dest)
    glider = class_files(dest)["drakes.glider"]
    assert [f for f in glider if "fly-1" in f] == ["glider-fly-1-2.png", "glider-fly-1.png", "more__glider-fly-1.png"]
    written = {f: pixels(dest / "images/drakes.glider" / f)[1:] for f in glider if "fly-1" in f}
    assert np.array_equal(written["glider-fly-1.png"], sprite(24)[1:])  # the first path (extra/) keeps the name
    assert np.array_equal(written["glider-fly-1-2.png"], sprite(21)[1:])
    assert np.array_equal(written["more__glider-fly-1.png"], sprite(25)[1:])
    split = dict(read_csv(dest / "split.csv")[1:])
    assert len({split[f"drakes.glider/{f}"] for f in glider if "fly" in f}) == 1  # one animation still


def test_wesnoth_split_depends_only_on_the_seed_and_keeps_animations_whole(wesnoth_root, tmp_path):
    sides_seen, splits = set(), []
    for seed in range(6):
        dest = tmp_path / f"wes{seed}"
        prepare_fixture(wesnoth_root, dest, seed=seed, test_fraction=0.5)
        split = {p: s for p, s in read_csv(dest / "split.csv")[1:]}
        attack = {split[f"drakes.burner/burner-attack-{i}.png"] for i in (1, 2, 3)}
        assert len(attack) == 1
        sides_seen |= attack
        splits.append(split)
    assert sides_seen == {"train", "test"}  # seeds move the animation, whole
    assert len({tuple(sorted(s.items())) for s in splits}) > 1


def test_wesnoth_same_inputs_give_byte_identical_folders(wesnoth_root, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    prepare_fixture(wesnoth_root, a)
    prepare_fixture(wesnoth_root, b)
    assert tree(a) == tree(b)
    assert not prepare("wesnoth", a, {"root": str(wesnoth_root)}).built  # current: left as it is


def test_wesnoth_missing_package_is_named_with_the_install_command(tmp_path, wesnoth_root):
    with pytest.raises(MissingPackageError, match=r"Debian package wesnoth-1\.16-data; install it with "
                                                  r"`apt-get install wesnoth-1\.16-data`"):
        prepare("wesnoth", tmp_path / "w", {"root": str(tmp_path / "absent")})
    (wesnoth_root / "core/team-colors.cfg").unlink()
    with pytest.raises(MissingPackageError, match=r"team-colors\.cfg not found: .*"
                                                  r"`apt-get install wesnoth-1\.16-data`"):
        prepare("wesnoth", tmp_path / "w", {"root": str(wesnoth_root)})
    assert not (tmp_path / "w").exists()


def test_wesnoth_registered_and_planned(wesnoth_root, tmp_path):
    assert {"wesnoth", "animal_mnist"} <= set(known_preparers())
    dest = tmp_path / "wes"
    prepare_fixture(wesnoth_root, dest)
    tasks = plan_prepared(dest)
    assert sorted(tasks) == ["drakes", "undead"]  # transport: one class
    assert tasks["drakes"].classes == ("drakes.burner", "drakes.glider")
    assert tasks["undead"].classes == ("undead.ghost", "undead.skeleton")  # soulless, zombie: one image each


def test_wesnoth_command_line(wesnoth_root, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)  # restored after the command sets it
    dest = tmp_path / "wes"
    assert main(["prepare", "wesnoth", str(dest), "--root", str(wesnoth_root), "--team-color", "2"]) == 0
    out = capsys.readouterr().out
    assert "7 classes in 3 categories, 20 images" in out
    assert f"imagefolder:\n    root: {dest}/images\n    taxonomy: {dest}/taxonomy.csv\n    split: {dest}/split.csv\n" \
           "    level: category" in out
    assert main(["prepare", "wesnoth", str(tmp_path / "x"), "--root", str(tmp_path / "none")]) == 2
    assert "apt-get install wesnoth-1.16-data" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ the real package


def test_real_wesnoth_two_folders(tmp_path):
    reason = ensure_apt("wesnoth-1.16-data")
    if reason is not None:
        pytest.skip(reason)
    assert APT["wesnoth-1.16-data"].exists()
    root = tmp_path / "data"
    for folder in ("ogres", "trolls"):
        shutil.copytree(REAL_DATA / "core/images/units" / folder, root / "core/images/units" / folder)
    shutil.copy(REAL_DATA / "core/team-colors.cfg", root / "core/team-colors.cfg")
    dest = tmp_path / "wes"
    counts = prepare("wesnoth", dest, {"root": str(root)}).record["counts"]
    files = class_files(dest)
    assert sorted(files) == ["ogres.ogre", "ogres.young-ogre", "trolls.grunt", "trolls.lobber", "trolls.shaman",
                             "trolls.troll-hero", "trolls.warrior", "trolls.whelp"]
    assert "ogre-attack3.png" in files["ogres.ogre"] and "young-ogre-idle-4.png" in files["ogres.young-ogre"]
    on_disk = sum(1 for f in root.rglob("*.png"))
    assert counts["files"] == on_disk and counts["images"] == sum(len(v) for v in files.values())
    assert counts["images"] == on_disk - counts["skipped"]["duplicate_images"] - counts["skipped"]["conflicting_images"]
    side1 = {rgb(h): c for h, c in SIDE1.items()}
    team_coloured = 0
    for file in sorted((dest / "images").rglob("*.png")):
        image = pixels(file)
        assert image.shape[2] == 4 and max(image.shape[:2]) <= 256
        folder = file.parent.name.split(".")[0]
        source = next((root / "core/images/units" / folder).rglob(file.name))
        with Image.open(source) as img:
            original = np.asarray(img.convert("RGBA"))
        visible = original[..., 3] > 0
        team = visible & np.array([[tuple(int(v) for v in p) in side1 for p in row] for row in original[..., :3]])
        want = np.array([side1[tuple(int(v) for v in p)] for p in original[team][:, :3]]).reshape(-1, 3)
        assert np.array_equal(image[team][:, :3], want) and np.array_equal(image[..., 3], original[..., 3]), file
        assert np.array_equal(image[visible & ~team], original[visible & ~team]), file  # the rest as drawn
        team_coloured += bool(team.any())
    assert team_coloured > counts["images"] // 2
    split = {p: s for p, s in read_csv(dest / "split.csv")[1:]}
    by_animation = defaultdict(set)
    for path, side in split.items():
        by_animation[(path.split("/")[0], animation_name(Path(path).stem))].add(side)
    assert all(len(s) == 1 for s in by_animation.values())
    assert sorted(plan_prepared(dest)) == ["ogres", "trolls"]
