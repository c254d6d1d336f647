"""``taskspace prepare tuxpaint``: a tiny stamps tree in the layout of tuxpaint-stamps-default (categories,
sub-categories, deeper folders, PNG and SVG stamps with their side files) with known answers, then two folders of the
real package, installed when missing where the machine allows it (tests/packages.py; skipped, with the reason,
elsewhere)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from taskspace.prepare import MissingPackageError, PrepareError, PrepareWarning
from taskspace.prepare.run import prepare
from taskspace.prepare.tuxpaint import stamp_key

from packages import ensure_apt
from prepared import class_files, pixels, plan, read_csv, tree

SIZE = 16
REAL_STAMPS = Path("/usr/share/tuxpaint/stamps")
FILES = {
    "animals.birds": ["cartoon__tux.png", "duck.png", "owl.png"],
    "animals.fish": ["clownfish.png", "clownfish_mirror.png", "shark.png"],
    "food.fruit": ["apple_green.png", "apple_red.png", "lemon.png", "pear.png"],
    "food.vegetables": ["carrot.png", "leek.png"],
}


# --------------------------------------------------------------------------------------------------------- helpers














def block(colour: tuple[int, int, int], width: int, height: int, margin: int = 0, mode: str = "RGBA") -> Image.Image:
    """An opaque ``colour`` rectangle inside a transparent margin."""
    a = np.zeros((height + 2 * margin, width + 2 * margin, 4), np.uint8)
    a[..., :3] = 77  # an invisible colour under alpha 0
    a[margin:margin + height, margin:margin + width] = (*colour, 255)
    return Image.fromarray(a).convert(mode)


def svg(body: str, width: int = 40, height: int = 40) -> str:
    return f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}">{body}</svg>'


def put(root: Path, relative: str, content) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, Image.Image):
        content.save(path)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)


def write_stamps(root: Path) -> Path:
    """A stamps tree with every case: deeper folders, SVG + PNG twins, mirrored and coloured versions, a corrupt PNG,
    SVGs that cannot be rasterised (text; another file), a blank stamp, duplicates within and across classes, stamps
    directly in a category folder, a category without sub-categories and side files."""
    put(root, "animals/birds/owl.png", block((255, 0, 0), 32, 16, margin=4))
    put(root, "animals/birds/owl.txt", "Owl.\n")
    put(root, "animals/birds/owl_desc_fr.ogg", b"OggS")
    put(root, "animals/birds/owl.dat", "noflip\n")
    put(root, "animals/birds/cartoon/tux.svg", svg('<circle cx="20" cy="20" r="15" fill="#222"/>'))
    put(root, "animals/birds/duck.svg", svg('<rect x="10" y="10" width="20" height="10" fill="#0000ff"/>'))
    put(root, "animals/birds/duck.png", block((0, 0, 200), 20, 10))  # the duck's raster twin: not used
    put(root, "animals/fish/clownfish.png", block((250, 120, 0), 30, 20))
    put(root, "animals/fish/clownfish_mirror.png", block((250, 121, 0), 30, 20))
    put(root, "animals/fish/shark.png", block((90, 90, 90), 40, 20))
    put(root, "animals/fish/shark_copy.png", block((90, 90, 90), 40, 20, margin=3))  # the same stamp, once trimmed
    put(root, "animals/fish/ray.png", block((10, 10, 120), 20, 20))
    put(root, "animals/fish/broken.png", b"\x89PNG\r\n\x1a\n" + b"not really a png" * 10)
    put(root, "animals/loose.png", block((1, 2, 3), 5, 5))
    put(root, "food/fruit/apple_red.png", block((220, 0, 0), 24, 24, mode="LA"))
    put(root, "food/fruit/apple_green.png", block((0, 220, 0), 24, 24, mode="RGB"))
    put(root, "food/fruit/pear.svg", svg('<rect x="10" y="10" width="20" height="10" fill="#00ff00"/>', 40, 40))
    put(root, "food/fruit/lemon.svg", svg('<text x="5" y="20">lemon</text>'))
    put(root, "food/fruit/lemon.png", block((250, 250, 0), 10, 20))
    put(root, "food/fruit/plum.svg", svg('<image href="plum.jpg" width="40" height="40"/>'))
    put(root, "food/vegetables/carrot.png", block((250, 100, 0), 8, 30))
    put(root, "food/vegetables/leek.png", block((30, 160, 30), 6, 30))
    put(root, "food/vegetables/ray.png", block((10, 10, 120), 20, 20))  # a fish among the vegetables: ambiguous
    put(root, "medical/bandage.png", block((230, 200, 180), 20, 8))
    put(root, "symbols/shapes/blank.png", Image.new("RGBA", (10, 10)))
    return root


@pytest.fixture
def stamps(tmp_path):
    return write_stamps(tmp_path / "stamps")


def run(root: Path, dest: Path, **options) -> tuple[dict, list[str]]:
    with pytest.warns(PrepareWarning) as caught:
        result = prepare("tuxpaint", dest, {"root": str(root), "size": SIZE, **options})
    return result.record, [str(w.message) for w in caught]


# ----------------------------------------------------------------------------------------------------- fixtures


def test_layout_taxonomy_split_and_counts(stamps, tmp_path):
    dest = tmp_path / "tux"
    rec, messages = run(stamps, dest)
    assert class_files(dest) == FILES
    assert read_csv(dest / "taxonomy.csv") == [
        ["class", "category", "subcategory"], ["animals.birds", "animals", "birds"],
        ["animals.fish", "animals", "fish"], ["food.fruit", "food", "fruit"],
        ["food.vegetables", "food", "vegetables"]]
    assert [r[0] for r in read_csv(dest / "split.csv")[1:]] == sorted(f"{c}/{f}" for c, fs in FILES.items() for f in fs)
    counts = rec["counts"]
    assert counts["classes"] == 4 and counts["images"] == 12 and counts["stamps"] == 18
    assert counts["images_per_format"] == {"svg": 3, "png": 9}
    assert counts["png_twins"] == 2 and counts["side_files"] == 3
    assert counts["classes_per_category"] == {"animals": 2, "food": 2}
    assert {c: sum(v.values()) for c, v in counts["images_per_category"].items()} == {"animals": 6, "food": 6}
    assert counts["skipped"] == {"uncategorised_images": 2, "unrenderable_svgs": 2, "corrupt_images": 1,
                                 "oversized_images": 0, "blank_images": 1, "empty_subcategories": 1,
                                 "duplicate_images": 1, "conflicting_images": 2}
    assert any("food/fruit/lemon.svg" in m and "draws text" in m and "its PNG is used instead" in m
               for m in messages)
    assert any("food/fruit/plum.svg" in m and "refers to another file" in m for m in messages)
    assert any("animals/fish/broken.png" in m and "cannot decode" in m for m in messages)
    assert any("symbols/shapes/blank.png" in m and "nothing visible" in m for m in messages)
    packages = rec["packages"]
    assert [p["name"] for p in packages] == ["tuxpaint-stamps-default", "resvg-py"]
    assert packages[0]["version"] is None and len(packages[0]["digest"]) == 64
    assert rec["options"] == {"root": str(stamps), "size": SIZE, "test_fraction": 0.35, "seed": 0, "categories": None}


def test_stamps_are_trimmed_scaled_and_centred_in_squares(stamps, tmp_path):
    dest = tmp_path / "tux"
    run(stamps, dest)
    images = dest / "images"
    band = np.zeros((SIZE, SIZE, 4), np.uint8)
    band[4:12] = (255, 0, 0, 255)  # 32 x 16 inside a margin -> 16 x 8, centred
    assert np.array_equal(pixels(images / "animals.birds/owl.png"), band)
    band[4:12] = (0, 255, 0, 255)  # the SVG's 20 x 10 rectangle (not its 40 x 40 page) fills the width
    assert np.array_equal(pixels(images / "food.fruit/pear.png"), band)
    band[4:12] = (0, 0, 255, 255)
    assert np.array_equal(pixels(images / "animals.birds/duck.png"), band)  # the SVG, not the darker PNG twin
    lemon = pixels(images / "food.fruit/lemon.png")  # the PNG twin of an SVG with text: 10 x 20 -> 8 x 16
    assert (lemon[:, 4:12] == (250, 250, 0, 255)).all() and (lemon[:, :4] == 0).all() and (lemon[:, 12:] == 0).all()
    grey = pixels(images / "food.fruit/apple_red.png")  # an LA stamp, a full square
    assert grey.shape == (SIZE, SIZE, 4) and (grey[..., 3] == 255).all() and (grey[..., 0] == grey[..., 1]).all()
    opaque = pixels(images / "food.fruit/apple_green.png")  # an RGB stamp: opaque everywhere
    assert (opaque == (0, 220, 0, 255)).all()
    carrot = pixels(images / "food.vegetables/carrot.png")  # 8 x 30 -> 4 x 16 (rounded), columns 6..9
    assert np.array_equal(np.flatnonzero((carrot[..., 3] > 0).any(axis=0)), [6, 7, 8, 9])
    assert (carrot[..., 3] > 0).any(axis=1).all()


def test_related_stamps_stay_on_one_side(stamps, tmp_path):
    for seed in range(6):
        dest = tmp_path / f"tux{seed}"
        run(stamps, dest, seed=seed, test_fraction=0.5)
        split = dict(read_csv(dest / "split.csv")[1:])
        assert split["animals.fish/clownfish.png"] == split["animals.fish/clownfish_mirror.png"]
        assert split["food.fruit/apple_red.png"] == split["food.fruit/apple_green.png"]
        assert "animals.fish/shark_copy.png" not in split and "animals.fish/ray.png" not in split
        assert set(split.values()) == {"train", "test"}


@pytest.mark.parametrize("stem, key", [
    ("clownfish_mirror", "clownfish"), ("dreydl-gimmel_mirror", "dreydl_gimmel"), ("frog-1", "frog"),
    ("Strawberry2", "strawberry"), ("greenflag", "flag"), ("blue-and-yellowflag", "flag"),
    ("eye_blue_left", "eye"), ("stoplight_02_yellow", "stoplight"), ("scissors_small_open", "scissors"),
    ("note_012_a", "note"), ("A_filled", "a"), ("a_outline", "a"), ("Candy_cane_photo_1", "candy_cane"),
    ("asl_a", "asl_a"), ("grave-b", "grave_b"), ("b_1_king", "b_king"), ("747", "747"), ("0_sun", "sun"),
    ("blackbird", "bird"), ("red", "red"), ("op3_divide", "op_divide"),
])
def test_stamp_key(stem, key):
    assert stamp_key(stem) == key


def test_same_inputs_give_byte_identical_folders(stamps, tmp_path):
    run(stamps, tmp_path / "a")
    run(stamps, tmp_path / "b")
    assert tree(tmp_path / "a") == tree(tmp_path / "b")


def test_categories_and_bad_options(stamps, tmp_path):
    rec, _ = run(stamps, tmp_path / "food", categories="food")
    assert sorted(class_files(tmp_path / "food")) == ["food.fruit", "food.vegetables"]
    assert rec["counts"]["skipped"]["conflicting_images"] == 0  # the ray is a vegetable only, now
    for given, message in (({"size": 2000}, "--size must be"), ({"test_fraction": 0}, "--test-fraction must be"),
                           ({"categories": "minerals"}, "'minerals' not in"), ({"styles": "x"}, "--styles does not")):
        with pytest.raises(PrepareError, match=message):
            prepare("tuxpaint", tmp_path / "bad", {"root": str(stamps), **given})
    assert not (tmp_path / "bad").exists()


def test_missing_package_is_named_with_the_install_command(tmp_path):
    with pytest.raises(MissingPackageError, match=r"Debian package tuxpaint-stamps-default; install it with "
                                                  r"`apt-get install tuxpaint-stamps-default`"):
        prepare("tuxpaint", tmp_path / "t", {"root": str(tmp_path / "absent")})
    assert not (tmp_path / "t").exists()


def test_the_imagefolder_source_plans_the_prepared_tasks(stamps, tmp_path):
    dest = tmp_path / "tux"
    run(stamps, dest, test_fraction=0.5)
    tasks = plan({"source": "imagefolder", "imagefolder": {"root": f"{dest}/images", "taxonomy": f"{dest}/taxonomy.csv",
                                                           "split": f"{dest}/split.csv", "level": "category"}})
    assert sorted(tasks) == ["animals", "food"]


# ------------------------------------------------------------------------------------------ the real package


def test_real_tuxpaint_two_categories(tmp_path):
    reason = ensure_apt("tuxpaint-stamps-default")
    if reason is not None:
        pytest.skip(reason)
    root = tmp_path / "stamps"
    for category in ("food", "space"):
        shutil.copytree(REAL_STAMPS / category, root / category)
    dest = tmp_path / "tux"
    rec = prepare("tuxpaint", dest, {"root": str(root), "size": 64}).record
    counts = rec["counts"]
    stems, svgs, twins = {}, 0, 0
    for category in ("food", "space"):
        for sub in (root / category).iterdir():
            if sub.is_dir():
                files = [f.relative_to(sub) for f in sub.rglob("*") if f.suffix in (".png", ".svg")]
                stems[f"{category}.{sub.name}"] = {f.with_suffix("") for f in files}
                svgs += sum(f.suffix == ".svg" for f in files)
                twins += len(files) - len(stems[f"{category}.{sub.name}"])
    loose = sum(1 for c in ("food", "space") for f in (root / c).iterdir() if f.suffix in (".png", ".svg"))
    assert sorted(stems) == ["food.dessert", "food.fruit", "food.nuts", "food.spices", "food.vegetables",
                             "space.moon", "space.planets"]
    assert {c: len(f) for c, f in class_files(dest).items()} == {c: len(s) for c, s in stems.items()}
    assert counts["skipped"]["uncategorised_images"] == loose > 0
    assert counts["png_twins"] == twins > 10 and counts["images_per_format"]["svg"] == svgs
    assert counts["skipped"]["unrenderable_svgs"] == 0 and counts["skipped"]["duplicate_images"] == 0
    assert counts["images"] == sum(len(s) for s in stems.values())
    split = dict(read_csv(dest / "split.csv")[1:])
    assert split["food.fruit/apple_red.png"] == split["food.fruit/apple_green.png"] == split[
        "food.fruit/cartoon__apple.png"]
    for file in (dest / "images").rglob("*.png"):
        with Image.open(file) as img:
            assert img.size == (64, 64) and img.mode == "RGBA"
    assert sorted(plan({"source": "imagefolder", "imagefolder": {
        "root": f"{dest}/images", "taxonomy": f"{dest}/taxonomy.csv", "split": f"{dest}/split.csv",
        "level": "category"}})) == ["food", "space"]
