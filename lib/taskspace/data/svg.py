"""SVG drawings -> fixed-size RGBA squares, the same pixels on any x86-64 machine.

The renderer is resvg (through the ``resvg-py`` wheel: Rust, no system library, nothing to compile). A drawing's
canvas (its width/height, or viewBox) is fitted into a ``size`` x ``size`` square, aspect kept, centred, on a
transparent background; fully transparent pixels are (0, 0, 0, 0).

Why the output does not depend on the machine:

- resvg draws with tiny-skia, which picks its SIMD code when it is compiled (``target_feature``), not at run time;
  the x86-64 wheel is built for the baseline (SSE2), so every x86-64 CPU runs the same arithmetic. The wheel's
  machine code has no AVX floating-point or FMA instruction; its AVX2 code is integer code chosen at run time by
  components whose result is exact whatever path runs (byte search, checksums) and by the JPEG decoder.
- The JPEG decoder (zune-jpeg) chooses its IDCT at run time, so a drawing embedding a JPEG is refused. Embedded PNG
  images are decoded by portable code.
- Trigonometry and powers (arcs, rotations) come from the C library, whose x86-64 glibc picks FMA variants at run
  time. These agree to within an ulp of double precision, far below what moves a pixel after rounding to float
  geometry and 8-bit coverage; tests/test_svg.py renders with and without the variants
  (``GLIBC_TUNABLES=glibc.cpu.hwcaps=-AVX2,-FMA,...``) and compares the bytes.
- Text needs fonts, and the fonts found on a machine differ, so no font is ever loaded and a drawing with text is
  refused (:class:`SvgError`); so is one that refers to another file (its pixels would depend on that file), one
  that is not UTF-8 XML, or one that draws nothing visible.
"""

from __future__ import annotations

import io
import os
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from ..errors import TaskDataError

SVG_NS = "{http://www.w3.org/2000/svg}"
XLINK_HREF = "{http://www.w3.org/1999/xlink}href"
RENDERER = "resvg-py"  # the PyPI package that renders (its version goes into the provenance of what it made)


class SvgError(TaskDataError):
    """An SVG file that cannot be rasterised the same way everywhere (or at all); the message says why."""


def renderer() -> tuple[str, str, str]:
    """(PyPI name, version, folder) of the installed renderer: what made the pixels, for provenance."""
    import resvg_py

    return RENDERER, f"{resvg_py.__version__} (resvg {resvg_py.__resvg_version__})", str(Path(resvg_py.__file__).parent)


def _local(tag: object) -> str:
    """An element's tag without its namespace ('' for comments and processing instructions)."""
    return tag.rsplit("}", 1)[-1] if isinstance(tag, str) else ""


def check_drawing(text: str) -> None:
    """Raise SvgError when the document is not XML, draws text or refers to another file or to JPEG data."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as err:
        raise SvgError(f"not well-formed XML ({err})") from err
    if _local(root.tag) != "svg":
        raise SvgError(f"the root element is <{_local(root.tag)}>, not <svg>")
    for element in root.iter():
        name = _local(element.tag)
        if name == "text" and "".join(element.itertext()).strip():
            raise SvgError("it draws text, which needs fonts (they differ between machines)")
        if name in ("image", "feImage"):
            href = (element.get(XLINK_HREF) or element.get("href") or "").strip()
            if not href.startswith("#") and not href.startswith("data:"):
                raise SvgError(f"it refers to another file ({href!r})")
            if href.startswith(("data:image/jpeg", "data:image/jpg")):
                raise SvgError("it embeds a JPEG image (decoded with CPU-dependent code)")


def _render(text: str, size: int) -> np.ndarray:
    """resvg's rendering of the canvas fitted into size x size (one side may be shorter), as uint8 RGBA."""
    import resvg_py
    from PIL import Image

    try:
        png = resvg_py.svg_to_bytes(svg_string=text, width=size, height=size, skip_system_fonts=True,
                                    languages=["en"], dpi=96.0)
    except (KeyboardInterrupt, SystemExit):
        raise
    except BaseException as err:  # resvg-py raises ValueError, and a Rust panic arrives as a BaseException
        raise SvgError(f"resvg cannot render it ({type(err).__name__}: {err})") from err
    with Image.open(io.BytesIO(bytes(png))) as img:
        return np.asarray(img.convert("RGBA"))


def rasterise(source: str | os.PathLike | bytes, size: int) -> np.ndarray:
    """An SVG (a file path, or the document's bytes) as uint8 RGBA (size, size, 4): the canvas fitted in the square,
    centred, transparent around; raises SvgError saying why a document cannot be rendered (see the module doc)."""
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    data = source if isinstance(source, bytes) else Path(source).read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise SvgError(f"not UTF-8 ({err})") from err
    check_drawing(text)
    drawn = _render(text, size)
    h, w = drawn.shape[:2]
    if h > size or w > size:
        raise SvgError(f"rendered at {w}x{h}, larger than {size}x{size}")
    out = np.zeros((size, size, 4), np.uint8)
    top, left = (size - h) // 2, (size - w) // 2
    out[top:top + h, left:left + w] = drawn
    out[out[..., 3] == 0] = 0
    if not out[..., 3].any():
        raise SvgError("it draws nothing visible")
    return out
