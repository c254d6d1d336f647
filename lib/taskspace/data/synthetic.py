"""The embedded benchmark: a generated image world with a taxonomy domain -> clade -> order -> class.

A task is "classify the classes of one order", like the CUB+iNat meta-task of Task2Vec. Domains differ in image
statistics (``organic``: smooth warm backgrounds, soft blobs, low-frequency textures; ``geometric``: grey-blue
striped backgrounds, hard-edged polygons, high-frequency textures, pixel noise). A clade fixes a vocabulary (texture
family, body and part shapes, palette) and which cues tell its classes apart; an order is a prototype drawn around
its clade; a class is a variation of its order's prototype along the clade's cues, and every image adds nuisance
(position, scale, rotation, colour and background jitter, clutter, noise). Task difficulty (class separation,
nuisance strength) is spread evenly over the tasks.

Task sizes are log-uniform (heavy-tailed) and dealt within clades: the size ranks are cut into tiers of one rank
per clade and every clade takes one rank of each tier, so each clade has small orders and one large one, as the
taxa of iNaturalist do (the papers' expert banks hold a few large tasks among many small ones). A task's relatives
are then useful only through what its clade's larger orders teach an expert.

The source task, the ImageNet analogue for pretraining the probe, is broad and coarse: each of its classes is a
whole clade of its own (never a task's clade), dealt round-robin over the domains, and every source image draws an
order and a class of that clade afresh. The probe thus learns the domains' vocabulary (textures, shapes, palettes,
backgrounds) and not the fine cues that tell the classes of one clade apart, as ImageNet's basic-level classes
do not teach the species distinctions of CUB and iNat: those are what an expert trained on a relative adds.

Every random stream is keyed by stable ids (seed, kind, domain, clade, order, class, split), so a task does not
depend on ``data.tasks``; a class's training images are a prefix of those made with a larger ``train_per_class``
and its test images do not depend on the training size. Sizes and difficulties are dealt out over the orders of the
world, so they (only they) change when the number of domains, clades or orders changes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import ConfigError, TaskDataError
from . import SOURCE_TASK, TaskData, TaskSpec, register_source

GENERATOR_VERSION = "2"

DEFAULTS: dict[str, Any] = {
    "domains": 2,
    "clades_per_domain": 3,
    "orders_per_clade": 4,
    "classes_per_order": [3, 8],
    "train_per_class": [4, 64],
    "test_per_class": 20,
    "source_classes": 24,
    "source_train_per_class": 100,
    "source_test_per_class": 20,
    "difficulty": [0.0, 0.8],
    "overrides": {},
}
OVERRIDE_KEYS = ("n_classes", "train_per_class", "test_per_class", "difficulty")
ARCHETYPES = ("organic", "geometric")
SOURCE_CLADE_BASE = 1000  # ids of the source's own clades (never a task's clade)
CHUNK = 256  # images rendered at once; bounds memory at large resolutions

# stream kinds: the first element of every spawn key
_K_LAYOUT, _K_DOMAIN, _K_CLADE, _K_ORDER, _K_COUNT, _K_CLASS, _K_IMAGE = range(1, 8)

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
INTRA = (0.25, 0.32)  # per-image parameter noise (in class-scales) at difficulty 0 and 1
N_NORMAL, N_UNIFORM = 48, 48  # random numbers drawn per image (fixed, so streams stay prefix-stable)


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


def _param_info(archetype: str, param: str) -> tuple[float, tuple[float, float] | None]:
    """Class-to-class spread (at separation 1) and valid range of one object parameter."""
    return _PARAM_TABLE[param.rstrip("012")][ARCHETYPES.index(archetype)]


def _scale(archetype: str, param: str) -> float:
    return _param_info(archetype, param)[0]


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


def _rng(seed: int, *key: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=key)))


# ----------------------------------------------------------------------------------------------- config and plan


@dataclass(frozen=True)
class _Settings:
    seed: int
    resolution: int
    domains: int
    clades: int
    orders: int
    classes: tuple[int, int]
    train: tuple[int, int]
    test: int
    source_classes: int
    source_train: int
    source_test: int
    difficulty: tuple[float, float]
    overrides: dict


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _int(value: Any, key: str, minimum: int, why: str = "") -> int:
    if not _is_int(value) or value < minimum:
        raise ConfigError(f"{key}: must be an integer >= {minimum}{why}, got {value!r}")
    return int(value)


def _int_range(value: Any, key: str, minimum: int, why: str = "") -> tuple[int, int]:
    if _is_int(value):
        value = [value, value]
    if not isinstance(value, (list, tuple)) or len(value) != 2 or not all(_is_int(v) for v in value):
        raise ConfigError(f"{key}: must be [min, max] (integers), got {value!r}")
    lo, hi = int(value[0]), int(value[1])
    if lo < minimum:
        raise ConfigError(f"{key}: min must be >= {minimum}{why}, got {value!r}")
    if lo > hi:
        raise ConfigError(f"{key}: min > max in {value!r}")
    return lo, hi


def _unit_interval(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or not 0.0 <= value <= 1.0:
        raise ConfigError(f"{key}: must be a number in [0, 1], got {value!r}")
    return float(value)


def _settings(data_cfg: dict) -> _Settings:
    syn = data_cfg.get("synthetic") or {}
    if not isinstance(syn, dict):
        raise ConfigError(f"data.synthetic: must be a mapping, got {syn!r}")
    cfg = {**DEFAULTS, **syn}
    key = "data.synthetic."
    difficulty = cfg["difficulty"]
    if not isinstance(difficulty, (list, tuple)) or len(difficulty) != 2:
        raise ConfigError(f"{key}difficulty: must be [min, max] in [0, 1], got {difficulty!r}")
    d_lo, d_hi = (_unit_interval(v, f"{key}difficulty") for v in difficulty)
    if d_lo > d_hi:
        raise ConfigError(f"{key}difficulty: min > max in {difficulty!r}")
    overrides = cfg["overrides"] or {}
    if not isinstance(overrides, dict):
        raise ConfigError(f"{key}overrides: must be a mapping task -> {{{', '.join(OVERRIDE_KEYS)}}}")
    clades = _int(cfg["clades_per_domain"], f"{key}clades_per_domain", 1)
    if clades > MAX_CLADES:
        raise ConfigError(
            f"{key}clades_per_domain: at most {MAX_CLADES}, got {clades}: a domain has {MAX_CLADES} distinct pairs of "
            "cues that tell a clade's classes apart, so more clades would repeat another clade's cues"
        )
    domains = _int(cfg["domains"], f"{key}domains", 1)
    source_classes = _int(cfg["source_classes"], f"{key}source_classes", 2)
    if source_classes < domains:
        raise ConfigError(
            f"{key}source_classes: {source_classes} is fewer than the {domains} domains: the probe would never see "
            "a domain's images (the source classes are dealt round-robin over the domains)"
        )
    return _Settings(
        seed=int(data_cfg.get("seed", 0)),
        resolution=int(data_cfg.get("resolution", 32)),
        domains=_int(cfg["domains"], f"{key}domains", 1),
        clades=_int(cfg["clades_per_domain"], f"{key}clades_per_domain", 1),
        orders=_int(cfg["orders_per_clade"], f"{key}orders_per_clade", 1),
        classes=_int_range(cfg["classes_per_order"], f"{key}classes_per_order", 2, " (a task needs >= 2 classes)"),
        train=_int_range(cfg["train_per_class"], f"{key}train_per_class", 1, " (0 would leave tasks empty)"),
        test=_int(cfg["test_per_class"], f"{key}test_per_class", 1, " (0 would leave every task without a test set)"),
        source_classes=source_classes,
        source_train=_int(cfg["source_train_per_class"], f"{key}source_train_per_class", 1),
        source_test=_int(cfg["source_test_per_class"], f"{key}source_test_per_class", 1),
        difficulty=(d_lo, d_hi),
        overrides=overrides,
    )


def domain_name(d: int) -> str:
    """organic, geometric, organic2, geometric2, ... (the archetypes alternate)."""
    return ARCHETYPES[d % len(ARCHETYPES)] + ("" if d < len(ARCHETYPES) else str(d // len(ARCHETYPES) + 1))


def order_name(d: int, c: int, o: int) -> str:
    return f"{domain_name(d)}-c{c + 1}-o{o + 1}"


@dataclass(frozen=True)
class _ClassRef:
    name: str
    d: int
    c: int
    o: int
    k: int
    difficulty: float
    coarse: bool = False  # a source class: a whole clade, its order and class drawn afresh for every image


@dataclass(frozen=True)
class _Group:
    """One planned task: its classes (with their place in the world) and per-class split sizes."""

    spec: TaskSpec
    members: tuple[_ClassRef, ...]
    train_per_class: int
    test_per_class: int
    difficulty: float


def _check_overrides(overrides: dict, tasks: list[str]) -> None:
    for task, pinned in overrides.items():
        key = f"data.synthetic.overrides.{task}"
        if task not in tasks:
            raise ConfigError(f"data.synthetic.overrides: unknown task {task!r}; available tasks: {sorted(tasks)}")
        if not isinstance(pinned, dict):
            raise ConfigError(f"{key}: must be a mapping with keys {list(OVERRIDE_KEYS)}")
        for k, v in pinned.items():
            if k not in OVERRIDE_KEYS:
                raise ConfigError(f"{key}.{k}: unknown key; allowed: {list(OVERRIDE_KEYS)}")
            if k == "difficulty":
                _unit_interval(v, f"{key}.difficulty")
            elif not _is_int(v) or v < 0:
                raise ConfigError(f"{key}.{k}: must be an integer >= 0, got {v!r}")
        where = f"task {task!r}: {key}"
        if pinned.get("n_classes", 2) < 2:
            raise TaskDataError(f"{where} gives n_classes={pinned['n_classes']}; a task needs >= 2 classes")
        if pinned.get("train_per_class", 1) < 1:
            raise TaskDataError(f"{where} gives train_per_class=0: the task would have no training images")
        if pinned.get("test_per_class", 1) < 1:
            raise TaskDataError(f"{where} gives test_per_class=0: the task would have no test images")


def _size_ranks(layout: np.random.Generator, clades: int, orders: int) -> np.ndarray:
    """Size rank of each order (clade-major): the ranks are cut into ``orders`` tiers of ``clades`` consecutive
    ranks and every clade takes one rank of each tier, so each clade has small and large orders, as the taxa of
    iNaturalist do; which clade takes which rank of a tier, and which of its orders takes which tier, are random."""
    tier_of_clade = np.stack([layout.permutation(clades) for _ in range(orders)])  # (tier, clade) -> rank in tier
    ranks = np.empty(clades * orders, dtype=np.int64)
    for j in range(clades):
        for o, tier in enumerate(layout.permutation(orders)):
            ranks[j * orders + o] = tier * clades + tier_of_clade[tier, j]
    return ranks


def _plan_world(s: _Settings) -> dict[str, _Group]:
    """Every task of the world plus the source task; sizes and difficulties are dealt out over the orders."""
    orders = [(d, c, o) for d in range(s.domains) for c in range(s.clades) for o in range(s.orders)]
    _check_overrides(s.overrides, [order_name(*doc) for doc in orders])
    layout = _rng(s.seed, _K_LAYOUT)
    size_rank = _size_ranks(layout, s.domains * s.clades, s.orders)
    difficulty_rank = layout.permutation(len(orders))
    (c_lo, c_hi), (t_lo, t_hi), (d_lo, d_hi) = s.classes, s.train, s.difficulty

    groups: dict[str, _Group] = {}
    for i, (d, c, o) in enumerate(orders):
        name = order_name(d, c, o)
        pinned = s.overrides.get(name, {})
        u_size = size_rank[i] / (len(orders) - 1) if len(orders) > 1 else 0.5
        train = pinned.get("train_per_class", int(round(t_lo * (t_hi / t_lo) ** u_size)))
        test = pinned.get("test_per_class", s.test)
        difficulty = float(pinned.get("difficulty", d_lo + (d_hi - d_lo) * (difficulty_rank[i] + 0.5) / len(orders)))
        u_count = _rng(s.seed, _K_COUNT, d, c, o).random()
        n_classes = pinned.get("n_classes", c_lo + min(int(u_count * (c_hi - c_lo + 1)), c_hi - c_lo))
        members = tuple(_ClassRef(f"{name}-k{k + 1}", d, c, o, k, difficulty) for k in range(n_classes))
        spec = TaskSpec(
            name=name,
            role="task",
            classes=tuple(m.name for m in members),
            n_train=int(train) * len(members),
            n_test=int(test) * len(members),
            taxonomy=(("domain", domain_name(d)), ("clade", f"{domain_name(d)}-c{c + 1}"), ("order", name)),
            source="synthetic",
        )
        groups[name] = _Group(spec, members, int(train), int(test), difficulty)

    # source classes: clades of their own (no task's clade), dealt round-robin over the domains; one class is a
    # whole clade, so the source teaches the domains' coarse vocabulary and none of the fine cues within a clade
    members = []
    for i in range(s.source_classes):
        d, m = i % s.domains, i // s.domains
        name = f"{SOURCE_TASK}-{domain_name(d)}-s{m + 1}"
        members.append(_ClassRef(name, d, SOURCE_CLADE_BASE + m, 0, 0, 0.5 * (d_lo + d_hi), coarse=True))
    spec = TaskSpec(
        name=SOURCE_TASK,
        role="source",
        classes=tuple(m.name for m in members),
        n_train=s.source_train * len(members),
        n_test=s.source_test * len(members),
        taxonomy=(),
        source="synthetic",
    )
    groups[SOURCE_TASK] = _Group(spec, tuple(members), s.source_train, s.source_test, 0.5 * (d_lo + d_hi))
    return groups


# ------------------------------------------------------------------------------------------------- class models


@dataclass(frozen=True)
class _ClassModel:
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
    dom = _rng(seed, _K_DOMAIN, d)
    offset = int(dom.integers(3))
    hue_shift = 0.0 if d < len(ARCHETYPES) else float(110 * (d // len(ARCHETYPES)) + dom.uniform(-20, 20))
    r = _rng(seed, _K_CLADE, d, c)
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


def _class_model(
    seed: int, ref: _ClassRef, order_z: np.ndarray | None = None, class_z: np.ndarray | None = None
) -> _ClassModel:
    """A class's model; with ``order_z`` and ``class_z`` of shape (N, params), one order and class per image (the
    means are then arrays over the N images)."""
    clade = _clade(seed, ref.d, ref.c)
    archetype = clade["archetype"]
    if order_z is None:
        order_z = _rng(seed, _K_ORDER, ref.d, ref.c, ref.o).standard_normal(len(PARAMS))
    if class_z is None:
        class_z = _rng(seed, _K_CLASS, ref.d, ref.c, ref.o, ref.k).standard_normal(len(PARAMS))
    separation = SEPARATION[0] + (SEPARATION[1] - SEPARATION[0]) * ref.difficulty
    mean, bounds_of = {}, {}
    i = 0
    for group, names in GROUPS.items():
        weight = _group_weight(group, clade["cues"])
        for p in names:
            scale, bounds = _param_info(archetype, p)
            bounds = bounds_of[p] = clade["bounds"].get(p, bounds)
            prototype = _fold(clade["base"][p] + scale * ORDER_SPREAD * order_z[..., i], bounds)
            mean[p] = _fold(prototype + scale * separation * weight * class_z[..., i], bounds)
            i += 1
    return _ClassModel(
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


# ------------------------------------------------------------------------------------------------------ rendering


def _hsv(h: np.ndarray, s: Any, v: np.ndarray) -> np.ndarray:
    """HSV (hue in degrees) -> RGB in [0, 1]; arrays of shape (N,) -> (N, 3)."""
    h = np.mod(h, 360.0) / 60.0
    s = np.clip(s, 0.0, 1.0)
    v = np.clip(v, 0.0, 1.0)
    out = [v - v * s * np.clip(np.minimum((n + h) % 6, 4 - (n + h) % 6), 0, 1) for n in (5.0, 3.0, 1.0)]
    return np.stack(out, -1).astype(np.float32)


def _col(x: np.ndarray) -> np.ndarray:
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
    return 0.5 + 0.5 * np.tanh(0.5 * x)


# columns of an image's random numbers: normals after the object parameters, then uniforms
_Z_DX, _Z_DY, _Z_SCALE, _Z_ROT, _Z_CONTRAST, _Z_BRIGHT, _Z_HUE, _Z_BG = range(len(PARAMS), len(PARAMS) + 8)
_U_TEX_PHASE, _U_BG, _U_CLUTTER, _U_PARTS = 0, 4, 8, 40
_CLUTTER_SLOTS = 4


@dataclass
class _Canvas:
    """Per-chunk rendering state: the class model, the images' random numbers and the pixel grid."""

    m: _ClassModel
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
            value = self.m.mean[name] + intra * _scale(self.m.archetype, name) * self.z[:, i]
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


def _render(m: _ClassModel, z: np.ndarray, un: np.ndarray, noise: np.ndarray, res: int) -> np.ndarray:
    """Render N images of one class from its model and the images' random numbers; returns uint8 (N, R, R, 3)."""
    cv = _Canvas(m, z, un, res)
    img = _background(cv)
    _clutter(cv, img)
    _object(cv, img)
    return _sensor(cv, img, noise)


def _render_images(seed: int, ref: _ClassRef, split: int, count: int, res: int) -> np.ndarray:
    """``count`` images of one class for one split (0 train, 1 test); a smaller count gives a prefix."""
    key = (_K_IMAGE, ref.d, ref.c, ref.o, ref.k, split)
    z = _rng(seed, *key, 0).standard_normal((count, N_NORMAL))
    un = _rng(seed, *key, 1).random((count, N_UNIFORM))
    noise = _rng(seed, *key, 2).standard_normal((count, res, res), dtype=np.float32)
    if ref.coarse:  # every image of a clade-level class has an order and a class of its own
        order_z = _rng(seed, *key, 3).standard_normal((count, len(PARAMS)))
        class_z = _rng(seed, *key, 4).standard_normal((count, len(PARAMS)))
    else:
        model = _class_model(seed, ref)
    out = np.empty((count, res, res, 3), dtype=np.uint8)
    for start in range(0, count, CHUNK):
        stop = min(start + CHUNK, count)
        if ref.coarse:
            model = _class_model(seed, ref, order_z[start:stop], class_z[start:stop])
        out[start:stop] = _render(model, z[start:stop], un[start:stop], noise[start:stop], res)
    return out


# --------------------------------------------------------------------------------------------------------- source


@register_source("synthetic")
class SyntheticSource:
    """Generated benchmark world; no files, deterministic from (data.seed, data.synthetic, data.resolution)."""

    name = "synthetic"

    def plan(self, data_cfg: dict) -> list[TaskSpec]:
        groups = _plan_world(_settings(data_cfg))
        tasks = sorted((g.spec for name, g in groups.items() if name != SOURCE_TASK), key=lambda spec: spec.name)
        return [groups[SOURCE_TASK].spec] + tasks

    def build(self, data_cfg: dict, spec: TaskSpec) -> TaskData:
        s = _settings(data_cfg)
        group = _plan_world(s)[spec.name]
        images, labels, is_train = [], [], []
        for split, per_class in ((0, group.train_per_class), (1, group.test_per_class)):
            for label, ref in enumerate(group.members):
                images.append(_render_images(s.seed, ref, split, per_class, s.resolution))
                labels.append(np.full(per_class, label, dtype=np.int64))
                is_train.append(np.full(per_class, split == 0))
        attrs = {
            "generator_version": GENERATOR_VERSION,
            "difficulty": float(group.difficulty),
            "train_per_class": group.train_per_class,
            "test_per_class": group.test_per_class,
        }
        return TaskData(
            np.concatenate(images), np.concatenate(labels), np.concatenate(is_train), list(spec.classes), attrs
        )
