"""What a class looks like: the object parameters, each clade's vocabulary and base, and each class's means.

A clade fixes a vocabulary (texture family, body and part shapes, palette, background) and which cues tell its
classes apart; an order is a prototype drawn around its clade; a class is a variation of its order's prototype along
the clade's cues.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...seeding import rng
from .world import ARCHETYPES, K_CLADE, K_CLASS, K_DOMAIN, K_ORDER, ClassRef

# continuous object parameters, grouped by the kind of visual cue they control
GROUPS: dict[str, tuple[str, ...]] = {
    "colour": ("body_h", "body_v", "tex_h", "tex_v", "part_h0", "part_h1", "part_h2", "part_v0", "part_v1", "part_v2"),
    "texture": ("tex_theta", "tex_f", "tex_c"),
    "shape": ("body_r", "body_asp", "shape_a", "shape_b"),
    "parts": tuple(f"part_{q}{j}" for q in "adso" for j in range(3)),
}
PARAMS: tuple[str, ...] = tuple(p for names in GROUPS.values() for p in names)
# clade c of a domain takes pair (2 * offset + c) % 6: neighbouring clades tell their classes apart by other cues
CUE_PAIRS = (
    ("colour", "parts"),
    ("texture", "shape"),
    ("colour", "texture"),
    ("parts", "shape"),
    ("colour", "shape"),
    ("texture", "parts"),
)
MAX_CLADES = len(CUE_PAIRS)  # clades per domain with distinct cue pairs
MINOR_CUE_WEIGHT = 0.3
ORDER_SPREAD = 1.6  # sister orders differ by this many class-scales around the clade's base
SEPARATION = (3.2, 2.6)  # class-offset multiplier at difficulty 0 and 1

_LOG = math.log
# base parameter -> (class-to-class spread at separation 1, valid range or None) for (organic, geometric)
_PARAM_TABLE: dict[str, tuple[tuple[float, tuple[float, float] | None], ...]] = {
    "body_h": ((14.0, (-35.0, 75.0)), (28.0, (170.0, 270.0))),
    "tex_h": ((14.0, (-35.0, 75.0)), (28.0, (170.0, 270.0))),
    "part_h": ((16.0, (-35.0, 75.0)), (28.0, (170.0, 270.0))),
    "body_v": ((0.12, (0.3, 0.9)), (0.12, (0.05, 0.95))),
    "tex_v": ((0.12, (0.05, 0.98)), (0.12, (0.03, 0.97))),
    "part_v": ((0.14, (0.25, 0.95)), (0.14, (0.05, 0.95))),
    "tex_theta": ((40.0, None), (40.0, None)),
    "tex_f": ((0.35, (_LOG(2.0), _LOG(5.0))), (0.35, (_LOG(5.0), _LOG(10.0)))),
    "tex_c": ((0.25, (0.35, 1.0)), (0.25, (0.5, 1.0))),
    "body_r": ((0.12, (_LOG(0.32), _LOG(0.55))), (0.12, (_LOG(0.32), _LOG(0.55)))),
    "body_asp": ((0.22, (-0.45, 0.45)), (0.22, (-0.45, 0.45))),
    "shape_a": ((0.12, (0.0, 0.3)), (0.12, (0.0, 0.35))),
    "shape_b": ((0.1, (0.0, 0.25)), (0.2, (-0.3, 0.45))),
    "part_a": ((32.0, None), (32.0, None)),
    "part_d": ((0.15, (0.5, 1.2)), (0.15, (0.5, 1.2))),
    "part_s": ((0.18, (_LOG(0.2), _LOG(0.55))), (0.18, (_LOG(0.2), _LOG(0.55)))),
    "part_o": ((2.2, (-4.0, 4.0)), (2.2, (-4.0, 4.0))),
}


def param_info(archetype: str, param: str) -> tuple[float, tuple[float, float] | None]:
    """Class-to-class spread (at separation 1) and valid range of one object parameter."""
    return _PARAM_TABLE[param.rstrip("012")][ARCHETYPES.index(archetype)]


def param_scale(archetype: str, param: str) -> float:
    """Class-to-class spread (at separation 1) of one object parameter."""
    return param_info(archetype, param)[0]


def _fold(x: Any, bounds: tuple[float, float] | None) -> Any:
    """Reflect x into [lo, hi] (keeps nearby values apart, unlike clipping)."""
    if bounds is None:
        return x
    lo, hi = bounds
    width = hi - lo
    y = (x - lo) % (2 * width)
    return lo + width - abs(y - width)


def _group_weight(group: str, cues: tuple[str, str]) -> float:
    """Class-offset weight of a group: strong on the clade's cues, normalised for the group's size."""
    return (1.0 if group in cues else MINOR_CUE_WEIGHT) * math.sqrt(4.0 / len(GROUPS[group]))


@dataclass(frozen=True)
class ClassModel:
    """Everything needed to render one class: categorical vocabulary, mean parameters, nuisance levels."""

    archetype: str
    hue_shift: float
    texture: str
    sides: int
    part_sides: int
    part_aspect: float
    phase2: float
    phase3: float
    sat: tuple[float, float, float]  # body, texture, parts
    background: dict
    mean: dict  # parameter -> class mean
    bounds: dict  # parameter -> valid range (or None)
    difficulty: float


def _clade(seed: int, d: int, c: int) -> dict:
    """A clade's vocabulary and base parameters (shared by its orders)."""
    archetype = ARCHETYPES[d % len(ARCHETYPES)]
    dom = rng(seed, K_DOMAIN, d)
    offset = int(dom.integers(3))
    hue_shift = 0.0 if d < len(ARCHETYPES) else float(110 * (d // len(ARCHETYPES)) + dom.uniform(-20, 20))
    r = rng(seed, K_CLADE, d, c)
    u = r.uniform
    base: dict[str, float] = {}
    if archetype == "organic":
        texture = ("bands", "spots", "gradient")[(c + offset) % 3]
        bounds = {}
        base["body_h"] = u(-15, 55)
        base["tex_h"] = base["body_h"] + u(-50, 50)
        base["body_v"] = u(0.5, 0.85)
        base["tex_v"] = base["body_v"] + (u(0.3, 0.45) if base["body_v"] < 0.6 else -u(0.3, 0.45))
        for j in range(3):
            base[f"part_h{j}"], base[f"part_v{j}"] = u(-20, 60), u(0.35, 0.9)
        sat = (u(0.5, 0.85), u(0.4, 0.85), u(0.5, 0.9))
        base["tex_f"], base["tex_c"] = math.log(u(2.2, 4.0)), u(0.5, 0.85)
        base["shape_a"], base["shape_b"] = u(0.0, 0.2), u(0.0, 0.14)
        background = {
            "h": u(20, 60),
            "dh": u(-40, 40),
            "s": u(0.25, 0.55),
            "v": u(0.55, 0.85),
            "f": u(0.4, 1.1),
            "kind": "smooth",
        }
    else:
        texture = ("stripes", "checker", "rings")[(c + offset) % 3]
        base["body_h"] = u(185, 255)
        base["tex_h"] = u(185, 255)
        # bodies stay dark or bright against the mid-grey background, textures take the other polarity
        dark, bright = (0.03, 0.33), (0.67, 0.97)
        bounds = {"body_v": dark, "tex_v": bright} if r.random() < 0.5 else {"body_v": bright, "tex_v": dark}
        base["body_v"], base["tex_v"] = u(*bounds["body_v"]), u(*bounds["tex_v"])
        for j in range(3):
            base[f"part_h{j}"], base[f"part_v{j}"] = u(175, 265), u(0.05, 0.25) if r.random() < 0.5 else u(0.75, 0.95)
        sat = (u(0.05, 0.3), u(0.05, 0.3), u(0.1, 0.35))
        base["tex_f"], base["tex_c"] = math.log(u(5.5, 9.0)), u(0.7, 1.0)
        base["shape_a"], base["shape_b"] = u(0.0, 0.2), u(-0.3, 0.3)
        background = {
            "h": u(190, 250),
            "s": u(0.0, 0.15),
            "v": u(0.35, 0.65),
            "f": u(8.0, 14.0),
            "c": u(0.08, 0.22),
            "kind": ("stripes", "grid")[int(r.integers(2))],
        }
    base["tex_theta"] = u(0, 180)
    base["body_r"], base["body_asp"] = math.log(u(0.38, 0.5)), u(-0.25, 0.25)
    for j in range(3):
        base[f"part_a{j}"] = u(0, 360)
        base[f"part_d{j}"] = u(0.75, 1.05)
        base[f"part_s{j}"] = math.log(u(0.25, 0.45))
        base[f"part_o{j}"] = u(1.0, 3.0)
    return {
        "archetype": archetype,
        "hue_shift": hue_shift,
        "texture": texture,
        "sides": int(r.integers(3, 7)),
        "part_sides": int(r.integers(3, 5)),
        "part_aspect": u(1.0, 1.8),
        "phase2": u(0, 2 * math.pi),
        "phase3": u(0, 2 * math.pi),
        "sat": sat,
        "background": background,
        "cues": CUE_PAIRS[(2 * offset + c) % len(CUE_PAIRS)],
        "bounds": bounds,
        "base": base,
    }


def class_model(
    seed: int, ref: ClassRef, order_z: np.ndarray | None = None, class_z: np.ndarray | None = None
) -> ClassModel:
    """A class's model; with ``order_z`` and ``class_z`` of shape (N, params), one order and class per image (the
    means are then arrays over the N images)."""
    clade = _clade(seed, ref.d, ref.c)
    archetype = clade["archetype"]
    if order_z is None:
        order_z = rng(seed, K_ORDER, ref.d, ref.c, ref.o).standard_normal(len(PARAMS))
    if class_z is None:
        class_z = rng(seed, K_CLASS, ref.d, ref.c, ref.o, ref.k).standard_normal(len(PARAMS))
    separation = SEPARATION[0] + (SEPARATION[1] - SEPARATION[0]) * ref.difficulty
    mean, bounds_of = {}, {}
    i = 0
    for group, names in GROUPS.items():
        weight = _group_weight(group, clade["cues"])
        for p in names:
            scale, bounds = param_info(archetype, p)
            bounds = bounds_of[p] = clade["bounds"].get(p, bounds)
            prototype = _fold(clade["base"][p] + scale * ORDER_SPREAD * order_z[..., i], bounds)
            mean[p] = _fold(prototype + scale * separation * weight * class_z[..., i], bounds)
            i += 1
    return ClassModel(
        archetype=archetype,
        hue_shift=clade["hue_shift"],
        texture=clade["texture"],
        sides=clade["sides"],
        part_sides=clade["part_sides"],
        part_aspect=clade["part_aspect"],
        phase2=clade["phase2"],
        phase3=clade["phase3"],
        sat=clade["sat"],
        background=clade["background"],
        mean=mean,
        bounds=bounds_of,
        difficulty=ref.difficulty,
    )
