"""Image files -> uint8 RGB squares at the working resolution, the same way for every file-backed source.

Every mode becomes 8-bit RGB: grey and palette images are expanded, CMYK JPEGs are converted by PIL (which undoes
Adobe's inverted CMYK), 16-bit images (``I;16*``, and ``I``, which is how PIL holds 16-bit PNG/PGM/TIFF samples) are
scaled by 255/65535 and float images (``F``) by 255 from [0, 1] -- never clipped to 8 bits. Transparent pixels are
composited over a white background. The EXIF orientation is applied, the shorter side is resized to the resolution
with PIL's antialiased bilinear filter (torchvision's default), then the centre square is cropped. JPEGs are decoded
at the smallest DCT scale that keeps both sides at least twice the resolution (``Image.draft``), which makes large
photos several times faster to load. Images over Pillow's decompression-bomb limit (huge drawings) are decoded with
the limit lifted up to ``MAX_PIXELS`` and reduced while decoded, so they load instead of failing; an image larger
than that is skipped like an undecodable one. An image that cannot be decoded fully (corrupt, truncated, unknown format)
raises :class:`ImageDecodeError` naming the file; PIL's ``LOAD_TRUNCATED_IMAGES`` is left False on purpose.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import TaskDataError

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})
BACKGROUND = (255, 255, 255)  # what transparent pixels are composited over
DECODE_WORKERS = 4  # at most this many threads decode a task's images (PIL releases the GIL while decoding)
MAX_PIXELS = 400_000_000  # images over Pillow's bomb limit are still decoded up to this size (~1.6 GB as RGBA)

_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La")
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


class ImageDecodeError(TaskDataError):
    """An image file exists but cannot be decoded into pixels; the message names the file."""


def is_image_file(name: str | os.PathLike) -> bool:
    """True when the file name has an image extension (case-insensitive)."""
    return Path(name).suffix.lower() in IMAGE_EXTENSIONS


def _to_rgb(img):
    """Any PIL mode -> 8-bit RGB (see the module docstring for how each mode is mapped)."""
    from PIL import Image

    mode = img.mode
    if mode == "P" and "transparency" in img.info:
        img, mode = img.convert("RGBA"), "RGBA"
    if mode in _ALPHA_MODES:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, BACKGROUND + (255,))
        return Image.alpha_composite(white, rgba).convert("RGB")
    if mode in _SIXTEEN_BIT_MODES:
        a = np.asarray(img).astype(np.int64)
        grey = ((np.clip(a, 0, 65535) * 255 + 32767) // 65535).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    if mode == "F":
        a = np.asarray(img, dtype=np.float64)
        grey = np.round(np.clip(np.nan_to_num(a), 0.0, 1.0) * 255).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    if mode == "1":
        img = img.convert("L")
    return img if img.mode == "RGB" else img.convert("RGB")


def load_image(path: str | os.PathLike, resolution: int) -> np.ndarray:
    """One image file as uint8 (resolution, resolution, 3): RGB, oriented, short side resized, centre cropped."""
    from PIL import Image, ImageFile, ImageOps

    if ImageFile.LOAD_TRUNCATED_IMAGES:
        raise TaskDataError("PIL.ImageFile.LOAD_TRUNCATED_IMAGES is True: truncated images would load silently")
    path = Path(path)
    if not path.is_file():
        raise TaskDataError(f"{path}: image file not found")
    try:
        try:
            opened = Image.open(path)
        except Image.DecompressionBombError:
            opened = _decode_huge(path, resolution)  # decoded, reduced and upright already
        with opened as img:
            if img.format == "JPEG":
                img.draft(None, (2 * resolution, 2 * resolution))
            img.load()  # decodes every byte now, so a truncated file fails here
            img = ImageOps.exif_transpose(img)
            img = _to_rgb(img)
            w, h = img.size
            if min(w, h) < 1:
                raise ValueError(f"empty image ({w}x{h})")
            scale = resolution / min(w, h)
            size = (max(resolution, round(w * scale)), max(resolution, round(h * scale)))
            img = img.resize(size, Image.Resampling.BILINEAR)
            left, top = (size[0] - resolution) // 2, (size[1] - resolution) // 2
            img = img.crop((left, top, left + resolution, top + resolution))
            out = np.array(img, dtype=np.uint8)
    except TaskDataError:
        raise
    except Exception as err:  # PIL raises OSError, SyntaxError, ValueError, DecompressionBombError, ...
        raise ImageDecodeError(f"{path}: cannot decode image ({type(err).__name__}: {err})") from err
    if out.shape != (resolution, resolution, 3):
        raise ImageDecodeError(f"{path}: decoded to shape {out.shape}, expected ({resolution}, {resolution}, 3)")
    return out


def _decode_huge(path: Path, resolution: int):
    """An image over Pillow's decompression-bomb limit (a huge drawing, say), decoded with the limit lifted up to
    ``MAX_PIXELS`` and reduced band by band while it is decoded, to a size still well above ``resolution``."""
    from .decode import decode_downscaled, open_unguarded

    with open_unguarded(path)[0] as probe:
        w, h = probe.size
    side = math.ceil(2 * resolution * max(w, h) / max(1, min(w, h)))
    return decode_downscaled(path, side, MAX_PIXELS).image


def load_images(
    paths: Sequence[str | os.PathLike], resolution: int, workers: int | None = None
) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """Decode many files: (uint8 (N, r, r, 3) of the decodable ones in order, [(index, message)] of the others)."""
    if workers is None:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        workers = min(DECODE_WORKERS, cpus)

    def one(path):
        try:
            return load_image(path, resolution), None
        except ImageDecodeError as err:
            return None, str(err)

    if workers > 1 and len(paths) > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(one, paths))
    else:
        results = [one(p) for p in paths]
    failed = [(i, msg) for i, (_, msg) in enumerate(results) if msg is not None]
    arrays = [a for a, _ in results if a is not None]
    images = np.stack(arrays) if arrays else np.zeros((0, resolution, resolution, 3), np.uint8)
    return images, failed
