"""Image decoding shared by the file-backed sources: every mode to RGB, resize + centre crop, bad files named."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageFile

from datasets import COLOURS, KINDS, SIZES, corrupt, save_image, truncate, write_big_png
from taskspace.data.images import ImageDecodeError, is_image_file, load_image, load_images


@pytest.mark.parametrize("kind,ext", KINDS + (("grey_jpg", ".jpg"),), ids=[k for k, _ in KINDS] + ["grey_jpg"])
@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_every_mode_decodes_to_its_known_colour_at_the_resolution(tmp_path, kind, ext, size):
    path = tmp_path / f"img{ext}"
    expected, tolerance = save_image(path, kind, COLOURS[2], size)
    out = load_image(path, 16)
    assert out.shape == (16, 16, 3) and out.dtype == np.uint8
    assert np.abs(out.astype(int) - np.array(expected)).max() <= tolerance, (kind, out[8, 8], expected)


def test_half_transparent_colour_is_composited_over_white(tmp_path):
    Image.new("RGBA", (20, 20), (200, 40, 40, 128)).save(tmp_path / "a.png")
    assert (load_image(tmp_path / "a.png", 8) == (227, 147, 147)).all()  # c * 128/255 + 255 * 127/255
    Image.new("LA", (20, 20), (40, 128)).save(tmp_path / "la.png")
    assert (load_image(tmp_path / "la.png", 8) == 147).all()


@pytest.mark.parametrize("value,expected", [(0, 0), (30000, 117), (51400, 200), (65535, 255)])
def test_sixteen_bit_grey_is_scaled_by_its_range_not_clipped(tmp_path, value, expected):
    png = tmp_path / "g16.png"
    Image.fromarray(np.full((9, 12), value, dtype=np.uint16)).save(png)
    pgm = tmp_path / "g16.pgm"  # PIL opens 16-bit PGM in mode I
    Image.fromarray(np.full((9, 12), value, dtype=np.uint16)).save(pgm)
    assert Image.open(pgm).mode == "I" and Image.open(png).mode == "I;16"
    for path in (png, pgm):
        assert (load_image(path, 8) == expected).all(), path


def test_float_image_is_scaled_from_the_unit_interval(tmp_path):
    path = tmp_path / "f.tif"
    Image.fromarray(np.full((10, 10), 0.5, dtype=np.float32)).save(path)
    assert Image.open(path).mode == "F"
    assert (load_image(path, 8) == 128).all()


def test_transparent_pixels_become_white(tmp_path):
    path = tmp_path / "clear.png"
    Image.new("RGBA", (20, 20), (10, 200, 30, 0)).save(path)
    assert (load_image(path, 8) == 255).all()
    gif = tmp_path / "clear.gif"  # palette with a transparent index
    img = Image.new("P", (20, 20), 1)
    img.putpalette([0, 0, 0, 10, 200, 30] + [0, 0, 0] * 254)
    img.save(gif, transparency=1)
    assert (load_image(gif, 8) == 255).all()


def test_shorter_side_is_resized_then_the_centre_cropped(tmp_path):
    wide = np.zeros((13, 300, 3), np.uint8)
    wide[:, :100] = (255, 0, 0)
    wide[:, 100:200] = (0, 255, 0)
    wide[:, 200:] = (0, 0, 255)
    Image.fromarray(wide).save(tmp_path / "wide.png")
    out = load_image(tmp_path / "wide.png", 16)  # 300x13 -> 369x16, centre 16 columns are green
    assert out.shape == (16, 16, 3) and (out == (0, 255, 0)).all()
    tall = np.zeros((50, 7, 3), np.uint8)
    tall[:20] = (255, 0, 0)
    tall[20:30] = (0, 255, 0)
    tall[30:] = (0, 0, 255)
    Image.fromarray(tall).save(tmp_path / "tall.png")
    out = load_image(tmp_path / "tall.png", 16)  # 7x50 -> 16x114: rows 49..65 ~ source rows 21.4..28.5
    assert out.shape == (16, 16, 3) and (out[3:13] == (0, 255, 0)).all()


def test_exif_orientation_is_applied(tmp_path):
    a = np.zeros((20, 30, 3), np.uint8)
    a[:10] = (255, 0, 0)  # top half red, bottom half blue as stored
    a[10:] = (0, 0, 255)
    exif = Image.Exif()
    exif[0x0112] = 6  # displayed rotated 90 degrees clockwise: the stored top ends up on the right
    Image.fromarray(a).save(tmp_path / "rot.jpg", exif=exif, quality=95)
    out = load_image(tmp_path / "rot.jpg", 16).astype(int)
    assert out[8, 14, 0] > 200 and out[8, 14, 2] < 50  # right: red
    assert out[8, 1, 2] > 200 and out[8, 1, 0] < 50  # left: blue


def test_corrupt_truncated_and_missing_files_are_named(tmp_path):
    bad = tmp_path / "bad.jpg"
    save_image(bad, "rgb_jpg", (1, 2, 3), (20, 20))
    corrupt(bad)
    with pytest.raises(ImageDecodeError, match="bad.jpg"):
        load_image(bad, 8)
    cut = tmp_path / "cut.png"
    write_big_png(cut, (5, 6, 7))
    truncate(cut)
    Image.open(cut)  # the header alone still opens: only a full decode finds the truncation
    with pytest.raises(ImageDecodeError, match=r"cut\.png.*truncated|cut\.png"):
        load_image(cut, 8)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    with pytest.raises(Exception, match="nowhere.png"):
        load_image(tmp_path / "nowhere.png", 8)


def test_load_images_keeps_order_and_reports_failures(tmp_path):
    paths = []
    for i, colour in enumerate(COLOURS[:4]):
        paths.append(tmp_path / f"{i}.png")
        save_image(paths[-1], "rgb_bmp", colour, (12, 9))
    corrupt(paths[1])
    images, failed = load_images(paths, 8, workers=3)
    assert [i for i, _ in failed] == [1] and "1.png" in failed[0][1]
    assert images.shape == (3, 8, 8, 3)
    assert [tuple(im[4, 4]) for im in images] == [COLOURS[0], COLOURS[2], COLOURS[3]]


def test_image_extensions_are_case_insensitive():
    assert is_image_file("a.JPG") and is_image_file("b.TiFf") and is_image_file("c.webp")
    assert not is_image_file("notes.txt") and not is_image_file("jpg")


def test_an_image_over_pillows_bomb_limit_loads_reduced_and_one_over_the_cap_is_skipped(tmp_path, monkeypatch):
    from PIL import Image

    from taskspace.data import images

    yy, xx = np.mgrid[0:200, 0:300]
    smooth = np.stack([xx * 255 // 299, yy * 255 // 199, (xx + yy) * 255 // 498], -1).astype(np.uint8)
    path = tmp_path / "huge.png"
    Image.fromarray(smooth).save(path)
    expected = load_image(path, 16)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)  # 60,000 pixels is now over twice the limit
    with pytest.raises(Image.DecompressionBombError):
        Image.open(path)
    got = load_image(path, 16)
    assert got.shape == (16, 16, 3)
    assert np.abs(got.astype(int) - expected.astype(int)).mean() < 2.0  # a smooth ramp: the same picture
    assert Image.MAX_IMAGE_PIXELS == 1000  # the limit is back in force
    monkeypatch.setattr(images, "MAX_PIXELS", 50_000)
    with pytest.raises(ImageDecodeError, match=r"huge.png: cannot decode image \(TooLarge: 300x200 = 60000 pixels"):
        load_image(path, 16)
