"""Decoding any image file safely and downscaling it so its longer side is at most ``max_side``.

Pillow refuses images over ``PIL.Image.MAX_IMAGE_PIXELS`` x 2 (a decompression-bomb guard). Package files are
trusted more than uploads, so the limit is lifted only while this module opens a file, under a lock, and replaced by
our own hard cap (``max_pixels``): above it a file is skipped (:class:`TooLarge`) without being decoded. Memory stays
bounded for what is decoded: JPEGs decode at a reduced DCT scale (``draft``); other formats decode whole, then are
reduced by an integer box factor band by band (colour premultiplied by alpha), so only one full-size copy exists.
The reduced image is resized with Lanczos (antialiased; aspect kept) and turned upright by its EXIF orientation.
Images with any transparency (alpha channel, a transparent palette entry or colour) come out RGBA with fully
transparent pixels cleared to (0, 0, 0, 0); all others RGB.
"""

from __future__ import annotations

import math
import os
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator

import numpy as np


def clear_transparent(rgba: np.ndarray) -> np.ndarray:
    """A copy of a uint8 (H, W, 4) array with fully transparent pixels set to (0, 0, 0, 0).

    The colour under alpha 0 is invisible but not fixed (sheets and single files differ there); clearing it makes
    equal-looking images equal bytes and compresses better.
    """
    out = np.array(rgba, dtype=np.uint8, copy=True)
    out[out[..., 3] == 0] = 0
    return out


REDUCING_GAP = 3  # the box reduction stops at >= this many times the target size; Lanczos does the rest
BAND_PIXELS = 1 << 22  # pixels of the full image converted at a time while reducing (bounds the extra memory)
_LIMIT_LOCK = threading.Lock()
_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")
_ORIENTATION_TAG = 0x0112


class TooLarge(Exception):
    """The image has more pixels than the cap; it was not decoded."""


@dataclass(frozen=True)
class Decoded:
    """A downscaled image and facts about its file: its size and whether it is over Pillow's own limit."""

    image: object  # PIL.Image.Image, RGB or RGBA
    size: tuple[int, int]
    over_pillow_limit: bool


@contextmanager
def pillow_limit_lifted() -> Iterator[int | None]:
    """Within the block, Pillow's decompression-bomb limit is off (only this module's calls run: it holds a lock);
    yields the limit that was in force."""
    from PIL import Image

    with _LIMIT_LOCK:
        limit = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            yield limit
        finally:
            Image.MAX_IMAGE_PIXELS = limit


def open_unguarded(path: str | os.PathLike):
    """``PIL.Image.open`` without Pillow's decompression-bomb limit: (the opened image, the limit in force)."""
    from PIL import Image

    with pillow_limit_lifted() as limit:
        return Image.open(path), limit


def target_size(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    """``size`` scaled so its longer side is ``max_side`` (unchanged when already within it); sides >= 1."""
    w, h = size
    if max(w, h) <= max_side:
        return w, h
    scale = max_side / max(w, h)
    return max(1, round(w * scale)), max(1, round(h * scale))


def orient(img, orientation: int):
    """``img`` turned upright for an EXIF orientation (1-8; 1 and unknown values leave it as is)."""
    from PIL import Image

    method = {
        2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
        5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
        8: Image.Transpose.ROTATE_90,
    }.get(orientation)
    return img.transpose(method) if method is not None else img


def has_transparency(img) -> bool:
    """True when the image carries alpha or a transparent palette entry / colour."""
    return img.mode in _ALPHA_MODES or "transparency" in img.info


def working_mode(img):
    """Any PIL mode -> RGB, or RGBa (premultiplied, for averaging) when it has transparency; 16-bit scaled."""
    if img.mode in _SIXTEEN_BIT_MODES:
        a = np.asarray(img).astype(np.int64)
        grey = ((np.clip(a, 0, 65535) * 255 + 32767) // 65535).astype(np.uint8)
        from PIL import Image

        return Image.fromarray(grey).convert("RGB")
    if img.mode == "F":
        from PIL import Image

        a = np.asarray(img, dtype=np.float64)
        return Image.fromarray(np.round(np.clip(np.nan_to_num(a), 0, 1) * 255).astype(np.uint8)).convert("RGB")
    if has_transparency(img):
        if img.mode == "RGBa":
            return img
        return (img if img.mode == "RGBA" else img.convert("RGBA")).convert("RGBa")
    return img if img.mode == "RGB" else img.convert("RGB")


def box_reduce(img, factor: int):
    """``img`` (decoded) in its working mode, reduced ``factor`` times by box averaging, a band of rows at a time."""
    from PIL import Image

    w, h = img.size
    if factor <= 1:
        return working_mode(img)
    rows = factor * max(1, BAND_PIXELS // (w * factor))
    out = None
    for top in range(0, h, rows):
        with pillow_limit_lifted():  # Image.crop applies the limit to the box too
            band = img.crop((0, top, w, min(h, top + rows)))
        band = working_mode(band).reduce(factor)
        if out is None:
            out = Image.new(band.mode, (math.ceil(w / factor), math.ceil(h / factor)))
        out.paste(band, (0, top // factor))
    return out


def decode_downscaled(path: str | os.PathLike, max_side: int, max_pixels: int) -> Decoded:
    """Decode one file and downscale it (see the module docstring); raises TooLarge, or what PIL raises."""
    from PIL import Image

    img, limit = open_unguarded(path)
    with img:
        size = img.size
        if size[0] * size[1] > max_pixels:
            raise TooLarge(f"{size[0]}x{size[1]} = {size[0] * size[1]} pixels > --max-pixels {max_pixels}")
        goal = target_size(size, max_side)
        orientation = img.getexif().get(_ORIENTATION_TAG, 1)
        if img.format == "JPEG":
            img.draft(None, (REDUCING_GAP * goal[0], REDUCING_GAP * goal[1]))
        img.load()  # decodes every byte now, so a truncated file fails here
        if img.size == goal:  # nothing to shrink: keep the exact pixels
            small = img.convert("RGBA") if has_transparency(img) else working_mode(img)
        else:
            factor = max(1, min(img.size[0] // (REDUCING_GAP * goal[0]), img.size[1] // (REDUCING_GAP * goal[1])))
            small = box_reduce(img, factor)
    if small.size != goal:
        small = small.resize(goal, Image.Resampling.LANCZOS)
    if small.mode in ("RGBa", "RGBA"):
        small = Image.fromarray(clear_transparent(np.asarray(small.convert("RGBA"))))
    small = orient(small, orientation)
    over = limit is not None and size[0] * size[1] > limit
    return Decoded(small, size, over)
