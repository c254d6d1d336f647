"""Rendering: a class's images from its model and each image's own random numbers, a chunk at a time.

Every image adds nuisance to its class's means: position, scale, rotation, colour and background jitter, clutter and
sensor noise, all stronger in harder tasks. An image's random numbers are a fixed number per image, drawn from
streams keyed by its class and split, so a smaller count renders a prefix of a larger one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ...seeding import rng
from .appearance import PARAMS, ClassModel, class_model, param_scale
from .world import K_IMAGE, ClassRef

CHUNK = 256  # images rendered at once; bounds memory at large resolutions
INTRA = (0.25, 0.32)  # per-image parameter noise (in class-scales) at difficulty 0 and 1
N_NORMAL, N_UNIFORM = 48, 48  # random numbers drawn per image (fixed, so streams stay prefix-stable)


def _hsv(h: np.ndarray, s: Any, v: np.ndarray) -> np.ndarray:
    """HSV (hue in degrees) -> RGB in [0, 1]; arrays of shape (N,) -> (N, 3)."""
    h = np.mod(h, 360.0) / 60.0
    s = np.clip(s, 0.0, 1.0)
    v = np.clip(v, 0.0, 1.0)
    out = [v - v * s * np.clip(np.minimum((n + h) % 6, 4 - (n + h) % 6), 0, 1) for n in (5.0, 3.0, 1.0)]
    return np.stack(out, -1).astype(np.float32)


def _col(x: np.ndarray) -> np.ndarray:
    """Per-image values (N,) as float32 (N, 1, 1), to broadcast over the pixel grid."""
    return np.asarray(x, dtype=np.float32)[:, None, None]


def _paint(img: np.ndarray, mask: np.ndarray, colour: np.ndarray) -> None:
    """Alpha-composite in place; colour is (N, 3) or (N, H, W, 3)."""
    if colour.ndim == 2:
        colour = colour[:, None, None, :]
    img += mask[..., None] * (colour - img)


def _polygon_radius(phi: np.ndarray, sides: int) -> np.ndarray:
    """Boundary radius of a regular polygon (circumradius 1) in direction phi."""
    wedge = 2 * np.pi / sides
    return np.cos(np.pi / sides) / np.cos(np.mod(phi, wedge) - np.pi / sides)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    """The logistic function, computed through tanh (no overflow)."""
    return 0.5 + 0.5 * np.tanh(0.5 * x)


# columns of an image's random numbers: normals after the object parameters, then uniforms
_Z_DX, _Z_DY, _Z_SCALE, _Z_ROT, _Z_CONTRAST, _Z_BRIGHT, _Z_HUE, _Z_BG = range(len(PARAMS), len(PARAMS) + 8)
_U_TEX_PHASE, _U_BG, _U_CLUTTER, _U_PARTS = 0, 4, 8, 40
_CLUTTER_SLOTS = 4


@dataclass
class _Canvas:
    """Per-chunk rendering state: the class model, the images' random numbers and the pixel grid."""

    m: ClassModel
    z: np.ndarray  # (N, N_NORMAL)
    un: np.ndarray  # (N, N_UNIFORM)
    res: int

    def __post_init__(self):
        t = ((np.arange(self.res, dtype=np.float32) + 0.5) / self.res * 2 - 1).astype(np.float32)
        self.gx, self.gy = t[None, None, :], t[None, :, None]
        self.pix = 2.0 / self.res
        self.organic = self.m.archetype == "organic"
        self.diff = self.m.difficulty

    def hue(self, x: np.ndarray) -> np.ndarray:
        """Object hue with the domain's shift and the image's colour jitter."""
        return x + self.m.hue_shift + (3.0 + 7.0 * self.diff) * self.z[:, _Z_HUE]

    def params(self) -> dict[str, np.ndarray]:
        """Per-image object parameters: the class mean plus within-class variation, kept in range."""
        intra = INTRA[0] + (INTRA[1] - INTRA[0]) * self.diff
        p = {}
        for i, name in enumerate(PARAMS):
            bounds = self.m.bounds[name]
            value = self.m.mean[name] + intra * param_scale(self.m.archetype, name) * self.z[:, i]
            p[name] = value if bounds is None else np.clip(value, *bounds)
        return p


def _background(cv: _Canvas) -> np.ndarray:
    """Organic: smooth two-colour field; geometric: grey with high-frequency stripes or a grid."""
    bg, z, un, gx, gy, res = cv.m.background, cv.z, cv.un, cv.gx, cv.gy, cv.res
    if cv.organic:
        b1 = _hsv(bg["h"] + 15 * z[:, _Z_BG] + cv.m.hue_shift, bg["s"], bg["v"] + 0.1 * z[:, _Z_BG + 1])
        b2 = _hsv(
            bg["h"] + bg["dh"] + 15 * z[:, _Z_BG + 2] + cv.m.hue_shift, bg["s"], bg["v"] - 0.15 + 0.1 * z[:, _Z_BG + 3]
        )
        a1, a2 = 2 * np.pi * un[:, _U_BG], 2 * np.pi * un[:, _U_BG + 2]
        f = bg["f"] * np.pi
        field = np.sin(f * (gx * _col(np.cos(a1)) + gy * _col(np.sin(a1))) + _col(2 * np.pi * un[:, _U_BG + 1]))
        field += np.sin(f * 0.7 * (gx * _col(np.cos(a2)) + gy * _col(np.sin(a2))) + _col(2 * np.pi * un[:, _U_BG + 3]))
        img = np.repeat(b1[:, None, None, :], res, 1).repeat(res, 2)
        _paint(img, 0.5 + 0.25 * field, b2)
        return img
    base = _hsv(np.full(len(z), bg["h"] + cv.m.hue_shift), bg["s"], bg["v"] + 0.12 * z[:, _Z_BG])
    a1 = np.pi * un[:, _U_BG]
    f = bg["f"] * np.pi * np.exp(0.1 * z[:, _Z_BG + 1])
    wave = np.cos(_col(f) * (gx * _col(np.cos(a1)) + gy * _col(np.sin(a1))) + _col(2 * np.pi * un[:, _U_BG + 1]))
    if bg["kind"] == "grid":
        wave = np.maximum(wave, np.cos(_col(f) * (-gx * _col(np.sin(a1)) + gy * _col(np.cos(a1)))))
    pattern = np.clip(0.5 + 2.0 * wave, 0, 1) - 0.5
    return (base[:, None, None, :] + bg["c"] * pattern[..., None]).astype(np.float32)


def _clutter(cv: _Canvas, img: np.ndarray) -> None:
    """Distractors behind the object (more of them in harder tasks): soft blobs or grey rectangles."""
    un, gx, gy = cv.un, cv.gx, cv.gy
    for slot in range(_CLUTTER_SLOTS):
        col = _U_CLUTTER + 6 * slot
        on = (un[:, col] < 0.1 + 0.4 * cv.diff).astype(np.float32)
        cx, cy = 1.8 * un[:, col + 1] - 0.9, 1.8 * un[:, col + 2] - 0.9
        if cv.organic:
            radius = 0.06 + 0.14 * un[:, col + 3]
            rho = np.hypot(gx - _col(cx), gy - _col(cy))
            mask = _sigmoid((_col(radius) - rho) / 0.04)
            colour = _hsv(-20 + 90 * un[:, col + 4], 0.55, 0.3 + 0.6 * un[:, col + 5])
        else:
            half_w, half_h = 0.03 + 0.17 * un[:, col + 3], 0.03 + 0.17 * un[:, col + 4]
            inside = np.minimum(_col(half_w) - np.abs(gx - _col(cx)), _col(half_h) - np.abs(gy - _col(cy)))
            mask = np.clip(inside / cv.pix + 0.5, 0, 1)
            colour = _hsv(np.full(len(un), cv.m.background["h"] + cv.m.hue_shift), 0.1, 0.05 + 0.9 * un[:, col + 5])
        _paint(img, mask * _col(on), colour)


def _texture(cv: _Canvas, p: dict, u: np.ndarray, v: np.ndarray, r0: np.ndarray) -> np.ndarray:
    """The clade's texture family in the object frame, in [0, 1]."""
    theta = _col(np.deg2rad(p["tex_theta"]))
    w1 = u * np.cos(theta) + v * np.sin(theta)
    w2 = -u * np.sin(theta) + v * np.cos(theta)
    freq = _col(np.pi * np.exp(p["tex_f"]))
    ph1, ph2 = _col(2 * np.pi * cv.un[:, _U_TEX_PHASE]), _col(2 * np.pi * cv.un[:, _U_TEX_PHASE + 1])
    kind = cv.m.texture
    if kind == "bands":
        return 0.5 + 0.5 * np.cos(freq * w1 + ph1)
    if kind == "spots":
        return _sigmoid(6 * (np.cos(freq * w1 + ph1) * np.cos(freq * w2 + ph2) - 0.25))
    if kind == "gradient":
        return _sigmoid(1.5 * freq / np.pi * w1 / _col(r0) + 0.3 * (ph1 - np.pi))
    if kind == "stripes":
        return np.clip(0.5 + 2.5 * np.cos(freq * w1 + ph1), 0, 1)
    if kind == "checker":
        return np.clip(0.5 + 4.0 * np.cos(freq * w1 + ph1) * np.cos(freq * w2 + ph2), 0, 1)
    return np.clip(0.5 + 2.5 * np.cos(freq * np.hypot(u, v) + ph1), 0, 1)  # rings


def _object(cv: _Canvas, img: np.ndarray) -> None:
    """The textured body and up to three parts, placed with position, scale and rotation jitter."""
    m, z, diff, p = cv.m, cv.z, cv.diff, cv.params()
    cx = (0.05 + 0.10 * diff) * z[:, _Z_DX]
    cy = (0.05 + 0.10 * diff) * z[:, _Z_DY]
    scale = np.exp((0.05 + 0.08 * diff) * z[:, _Z_SCALE])
    rot = np.deg2rad((8.0 + 17.0 * diff) * z[:, _Z_ROT])
    dx, dy = cv.gx - _col(cx), cv.gy - _col(cy)
    cr, sr, sc = _col(np.cos(rot)), _col(np.sin(rot)), _col(scale)
    u = (dx * cr + dy * sr) / sc
    v = (-dx * sr + dy * cr) / sc
    aspect = _col(np.exp(p["body_asp"]))
    ua, va = u / aspect, v * aspect
    rho, phi = np.hypot(ua, va), np.arctan2(va, ua)
    r0 = np.exp(p["body_r"])
    edge = _col(cv.pix / scale)
    if cv.organic:  # wobbly blob: low harmonics on a circle, soft edge
        radius = _col(r0) * (
            1 + _col(p["shape_a"]) * np.cos(2 * phi + m.phase2) + _col(p["shape_b"]) * np.cos(3 * phi + m.phase3)
        )
        body = _sigmoid((radius - rho) / (0.02 + 0.5 * edge))
    else:  # polygon pinched into a star, optionally hollow, anti-aliased hard edge
        star = _col(p["shape_a"])
        radius = _col(r0) * _polygon_radius(phi, m.sides) * (1 - star * (0.5 - 0.5 * np.cos(m.sides * phi)))
        body = np.clip((radius - rho) / edge + 0.5, 0, 1)
        hole = _col(np.maximum(p["shape_b"], 0))
        body = np.clip(body - np.clip((hole * radius - rho) / edge + 0.5, 0, 1), 0, 1)
    c_body = _hsv(cv.hue(p["body_h"]), m.sat[0], p["body_v"])
    c_tex = _hsv(cv.hue(p["tex_h"]), m.sat[1], p["tex_v"])
    amount = (_col(p["tex_c"]) * _texture(cv, p, u, v, r0))[..., None]
    _paint(img, body, c_body[:, None, None, :] + amount * (c_tex - c_body)[:, None, None, :])

    for j in range(3):  # parts sit around the body's rim, on top of it
        present = cv.un[:, _U_PARTS + j] < 1.0 / (1.0 + np.exp(-p[f"part_o{j}"]))
        alpha = np.deg2rad(p[f"part_a{j}"])
        dist = p[f"part_d{j}"] * r0
        pu = u - _col(dist * np.cos(alpha)) * aspect
        pv = v - _col(dist * np.sin(alpha)) / aspect
        ca, sa = _col(np.cos(alpha)), _col(np.sin(alpha))
        qa, qb = pu * ca + pv * sa, -pu * sa + pv * ca
        size = _col(np.exp(p[f"part_s{j}"]) * r0)
        if cv.organic:
            prho = np.hypot(qa / m.part_aspect, qb * m.part_aspect)
            mask = _sigmoid((size - prho) / (0.03 + 0.5 * edge))
        else:
            prho, pphi = np.hypot(qa, qb), np.arctan2(qb, qa)
            mask = np.clip((size * _polygon_radius(pphi, m.part_sides) - prho) / edge + 0.5, 0, 1)
        colour = _hsv(cv.hue(p[f"part_h{j}"]), m.sat[2], p[f"part_v{j}"])
        _paint(img, mask * _col(present.astype(np.float32)), colour)


def _sensor(cv: _Canvas, img: np.ndarray, noise: np.ndarray) -> np.ndarray:
    """Contrast/brightness jitter, then smooth noise (organic) or pixel noise with salt and pepper (geometric)."""
    z, diff, res = cv.z, cv.diff, cv.res
    contrast = np.exp((0.05 + 0.10 * diff) * z[:, _Z_CONTRAST])
    bright = (0.04 + 0.06 * diff) * z[:, _Z_BRIGHT]
    img = (img - 0.5) * _col(contrast)[..., None] + 0.5 + _col(bright)[..., None]
    sigma = 0.015 + 0.04 * diff
    if cv.organic:
        padded = np.pad(noise, ((0, 0), (1, 1), (1, 1)), mode="wrap")
        smooth = sum(padded[:, i : i + res, j : j + res] for i in range(3) for j in range(3)) / 3.0
        img = img + (sigma * smooth)[..., None]
    else:
        img = img + (sigma * noise)[..., None]
        img = np.where((noise > 2.75)[..., None], 1.0, img)
        img = np.where((noise < -2.75)[..., None], 0.0, img)
    return np.round(np.clip(img, 0, 1) * 255).astype(np.uint8)


def _render(m: ClassModel, z: np.ndarray, un: np.ndarray, noise: np.ndarray, res: int) -> np.ndarray:
    """Render N images of one class from its model and the images' random numbers; returns uint8 (N, R, R, 3)."""
    cv = _Canvas(m, z, un, res)
    img = _background(cv)
    _clutter(cv, img)
    _object(cv, img)
    return _sensor(cv, img, noise)


def render_images(seed: int, ref: ClassRef, split: int, count: int, res: int) -> np.ndarray:
    """``count`` images of one class for one split (0 train, 1 test); a smaller count gives a prefix."""
    key = (K_IMAGE, ref.d, ref.c, ref.o, ref.k, split)
    z = rng(seed, *key, 0).standard_normal((count, N_NORMAL))
    un = rng(seed, *key, 1).random((count, N_UNIFORM))
    noise = rng(seed, *key, 2).standard_normal((count, res, res), dtype=np.float32)
    if ref.coarse:  # every image of a clade-level class has an order and a class of its own
        order_z = rng(seed, *key, 3).standard_normal((count, len(PARAMS)))
        class_z = rng(seed, *key, 4).standard_normal((count, len(PARAMS)))
    else:
        model = class_model(seed, ref)
    out = np.empty((count, res, res, 3), dtype=np.uint8)
    for start in range(0, count, CHUNK):
        stop = min(start + CHUNK, count)
        if ref.coarse:
            model = class_model(seed, ref, order_z[start:stop], class_z[start:stop])
        out[start:stop] = _render(model, z[start:stop], un[start:stop], noise[start:stop], res)
    return out
