"""The SVG rasteriser (taskspace.data.svg): known pixels of tiny drawings, the drawings it refuses, and the same bytes
with the C library's CPU-specific maths variants switched off."""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
import sys

import numpy as np
import pytest

from taskspace.data.svg import SvgError, rasterise

RED_HALF = b'<svg xmlns="http://www.w3.org/2000/svg" width="8" height="8"><rect width="4" height="8" fill="red"/></svg>'
# arcs, rotations, a gradient, a blur, strokes: the code paths that use trigonometry and powers
BUSY = """<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 100 60">
  <defs>
    <linearGradient id="g" gradientTransform="rotate(33)"><stop offset="0" stop-color="#f80"/>
      <stop offset="1" stop-color="#08f" stop-opacity="0.4"/></linearGradient>
    <filter id="b"><feGaussianBlur stdDeviation="1.7"/></filter>
  </defs>
  <path d="M10 50 A 23 17 21 1 1 60 30 L 90 55 Z" fill="url(#g)" stroke="#123" stroke-width="1.3"/>
  <ellipse cx="70" cy="20" rx="17" ry="9" transform="rotate(-17.3 70 20) skewX(7)" fill="#4a4" opacity="0.7"/>
  <circle cx="30" cy="20" r="11" fill="#c0c" filter="url(#b)"/>
</svg>"""


def svg(body: str, size: str = 'width="10" height="10"') -> bytes:
    return f'<svg xmlns="http://www.w3.org/2000/svg" xmlns:xlink="http://www.w3.org/1999/xlink" {size}>{body}</svg>' \
        .encode()


def test_red_square_on_half_the_canvas():
    out = rasterise(RED_HALF, 8)
    assert out.shape == (8, 8, 4) and out.dtype == np.uint8
    assert (out[:, :4] == (255, 0, 0, 255)).all()
    assert (out[:, 4:] == 0).all()
    small = rasterise(RED_HALF, 4)  # scaled by 1/2: the edge still falls on a pixel boundary
    assert (small[:, :2] == (255, 0, 0, 255)).all() and (small[:, 2:] == 0).all()


def test_a_wide_canvas_is_fitted_in_the_square_and_centred(tmp_path):
    path = tmp_path / "wide.svg"
    path.write_bytes(svg('<rect width="8" height="8" fill="#336699"/>', 'width="16" height="8"'))
    out = rasterise(path, 8)  # 16 x 8 -> 8 x 4, rows 2..5
    expected = np.zeros((8, 8, 4), np.uint8)
    expected[2:6, :4] = (0x33, 0x66, 0x99, 255)
    assert np.array_equal(out, expected)
    tall = rasterise(svg('<rect width="4" height="8" fill="#336699"/>', 'viewBox="0 0 4 8"'), 8)  # 4 x 8 -> cols 2..5
    expected = np.zeros((8, 8, 4), np.uint8)
    expected[:, 2:6] = (0x33, 0x66, 0x99, 255)
    assert np.array_equal(tall, expected)


def test_half_transparent_colour_is_kept_and_invisible_pixels_are_zero():
    out = rasterise(svg('<rect width="5" height="10" fill="#ff0000" fill-opacity="0.5"/>'), 10)
    assert (out[:, :5, 3] >= 127).all() and (out[:, :5, 3] <= 128).all() and (out[:, :5, 0] == 255).all()
    assert (out[:, 5:] == 0).all()


@pytest.mark.parametrize("document, why", [
    (b"<svg", "not well-formed XML"),
    (b'<html xmlns="http://www.w3.org/1999/xhtml"/>', "the root element is <html>"),
    (svg('<text x="1" y="9">Hi</text>'), "draws text"),
    (svg('<text x="1" y="9"><tspan>Hi</tspan></text>'), "draws text"),
    (svg('<image href="photo.png" width="5" height="5"/>'), "refers to another file ('photo.png')"),
    (svg('<image xlink:href="data:image/jpeg;base64,/9j/" width="5" height="5"/>'), "embeds a JPEG"),
    (svg('<rect width="10" height="10" fill="none"/>'), "draws nothing visible"),
    (svg('<rect width="10" height="10"/>', 'width="0" height="0"'), "resvg cannot render it"),
    ('<svg xmlns="http://www.w3.org/2000/svg"><desc>caf\u00e9</desc></svg>'.encode("latin-1"), "not UTF-8"),
])
def test_drawings_it_cannot_render_the_same_everywhere_are_refused(document, why):
    with pytest.raises(SvgError, match=why.replace("(", r"\(").replace(")", r"\)")):
        rasterise(document, 8)


def test_blank_text_is_no_text():
    out = rasterise(svg('<text x="1" y="9">  </text><rect width="10" height="10" fill="#000"/>'), 4)
    assert (out == (0, 0, 0, 255)).all()


def test_a_bad_size_is_an_error():
    with pytest.raises(ValueError, match="size must be >= 1"):
        rasterise(RED_HALF, 0)


LIBM_VARIANTS_OFF = "glibc.cpu.hwcaps=-AVX,-AVX2,-FMA,-FMA4,-AVX512F"


@pytest.mark.skipif(sys.platform != "linux" or platform.machine() != "x86_64" or platform.libc_ver()[0] != "glibc",
                    reason="the CPU-specific maths variants are glibc's on x86-64")
def test_same_bytes_with_the_cpu_specific_maths_variants_off(tmp_path):
    """glibc picks FMA/AVX2 versions of sin, cos, pow, ... at run time; a process started with them disabled (the
    GLIBC_TUNABLES setting) renders exactly the same pixels."""
    path = tmp_path / "busy.svg"
    path.write_text(BUSY)
    here = hashlib.sha256(rasterise(path, 96).tobytes()).hexdigest()
    code = ("import hashlib, sys; from taskspace.data.svg import rasterise; "
            "print(hashlib.sha256(rasterise(sys.argv[1], 96).tobytes()).hexdigest())")
    env = dict(os.environ, GLIBC_TUNABLES=LIBM_VARIANTS_OFF)
    done = subprocess.run([sys.executable, "-c", code, str(path)], env=env, capture_output=True, text=True,
                          timeout=120, check=True)
    assert done.stdout.strip() == here
