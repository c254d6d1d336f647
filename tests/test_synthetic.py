"""The data-source registry and the embedded synthetic world: plan, determinism, structure, bad input."""

from __future__ import annotations

import copy
import itertools
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from taskspace.data import (
    SOURCES,
    TASK_NAME_PATTERN,
    TaskData,
    TaskSpec,
    build_task,
    config_digest,
    get_source,
    plan_tasks,
    register_source,
)
from taskspace.data.synthetic import GENERATOR_VERSION, SyntheticSettings
from taskspace.errors import ConfigError, TaskDataError

DEFAULTS = SyntheticSettings.from_config().as_dict()  # the schema's data.synthetic

LIB = Path(__file__).resolve().parents[1] / "lib"


def data_cfg(**synthetic) -> dict:
    """The default data section (as the workflow fills it), with synthetic keys replaced."""
    return {
        "source": "synthetic",
        "seed": 0,
        "resolution": 32,
        "tasks": "all",
        "synthetic": {**copy.deepcopy(DEFAULTS), **synthetic},
    }


def tiny_cfg(**top) -> dict:
    """A small world (2x1x2 orders, 3 classes, few images) for fast exact checks."""
    cfg = data_cfg(
        clades_per_domain=1,
        orders_per_clade=2,
        classes_per_order=[3, 3],
        train_per_class=[4, 4],
        test_per_class=3,
        source_classes=4,
        source_train_per_class=5,
        source_test_per_class=2,
    )
    cfg.update(top)
    return cfg


@pytest.fixture(scope="module")
def default_world() -> dict[str, TaskData]:
    """Every planned task of the default world, built once (this is also the check that the world builds)."""
    cfg = data_cfg()
    return {spec.name: build_task(cfg, spec.name) for spec in plan_tasks(cfg)}


# ------------------------------------------------------------------------------------------------------- the plan


def test_default_world_plan():
    specs = plan_tasks(data_cfg())
    assert specs[0].name == "source" and specs[0].role == "source" and specs[0].taxonomy == ()
    tasks = specs[1:]
    assert len(tasks) >= 24
    assert [t.name for t in tasks] == sorted(t.name for t in tasks)
    assert all(t.role == "task" and t.source == "synthetic" for t in tasks)
    assert all(TASK_NAME_PATTERN.match(t.name) for t in specs)
    assert all([level for level, _ in t.taxonomy] == ["domain", "clade", "order"] for t in tasks)
    assert len({dict(t.taxonomy)["domain"] for t in tasks}) >= 2
    assert len({dict(t.taxonomy)["clade"] for t in tasks}) >= 4
    sizes = [t.n_train for t in tasks]
    assert max(sizes) / min(sizes) >= 10
    assert all(3 <= len(t.classes) <= 8 for t in tasks)
    task_classes = [c for t in tasks for c in t.classes]
    assert len(task_classes) == len(set(task_classes))
    assert not set(task_classes) & set(specs[0].classes)
    assert len(specs[0].classes) == 24 and specs[0].n_train == 2400 and specs[0].n_test == 480
    source_domains = {c.split("-")[1] for c in specs[0].classes}
    assert source_domains == {dict(t.taxonomy)["domain"] for t in tasks}


def test_every_clade_has_small_orders_and_a_large_one():
    """Sizes are dealt in tiers of one rank per clade: each clade holds one of the largest tasks and one of the
    smallest, so every target has a well-trained relative (or is that relative)."""
    tasks = plan_tasks(data_cfg())[1:]
    clades = {dict(t.taxonomy)["clade"] for t in tasks}
    per_class = sorted(t.n_train // len(t.classes) for t in tasks)
    top, bottom = per_class[-len(clades)], per_class[len(clades) - 1]
    for clade in clades:
        sizes = [t.n_train // len(t.classes) for t in tasks if dict(t.taxonomy)["clade"] == clade]
        assert max(sizes) >= top and min(sizes) <= bottom, (clade, sizes)
    assert per_class[-1] / per_class[0] >= 10


def test_source_classes_are_whole_clades_of_their_own():
    """The source is coarse: no task's clade, both domains, and its images vary far more within a class than a
    task's (every source image draws its own order and class)."""
    cfg = tiny_cfg(synthetic={**tiny_cfg()["synthetic"], "source_train_per_class": 40, "train_per_class": [40, 40]})
    specs = plan_tasks(cfg)
    task_clades = {dict(t.taxonomy)["clade"] for t in specs[1:]}
    source = build_task(cfg, "source")
    assert not any(name.startswith(f"source-{clade}-") for name in source.class_names for clade in task_clades)
    assert {name.split("-")[1] for name in source.class_names} == {"organic", "geometric"}

    task = build_task(cfg, "organic-c1-o1")
    source_feats, task_feats = _image_features(source.images), _image_features(task.images)
    scale = np.concatenate([source_feats, task_feats]).std(0) + 1e-9

    def spread(feats, labels):  # mean within-class spread of appearance descriptors
        return float(np.mean([(feats[labels == k].std(0) / scale).mean() for k in np.unique(labels)]))

    assert spread(source_feats, source.labels) > 1.15 * spread(task_feats, task.labels)


def test_plan_selects_tasks_without_changing_them():
    everything = plan_tasks(data_cfg())
    chosen = plan_tasks({**data_cfg(), "tasks": ["organic-c2-o1", "geometric-c1-o3"]})
    assert [s.name for s in chosen] == ["source", "geometric-c1-o3", "organic-c2-o1"]
    by_name = {s.name: s for s in everything}
    assert all(s == by_name[s.name] for s in chosen)


def test_plan_imports_no_torch():
    code = (
        "import sys; from taskspace.data import plan_tasks; "
        "plan_tasks({'source': 'synthetic'}); assert 'torch' not in sys.modules, 'torch imported'"
    )
    result = subprocess.run([sys.executable, "-c", code], env={"PYTHONPATH": str(LIB)}, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_overrides_pin_sizes():
    cfg = data_cfg(overrides={"organic-c1-o2": {"n_classes": 2, "train_per_class": 7, "test_per_class": 4}})
    spec = {s.name: s for s in plan_tasks(cfg)}["organic-c1-o2"]
    assert spec.classes == ("organic-c1-o2-k1", "organic-c1-o2-k2")
    assert (spec.n_train, spec.n_test) == (14, 8)


def test_difficulty_spread_over_tasks(default_world):
    low, high = DEFAULTS["difficulty"]
    levels = sorted(d.attrs["difficulty"] for name, d in default_world.items() if name != "source")
    margin = 0.1 * (high - low)
    assert low <= levels[0] < low + margin and high - margin < levels[-1] <= high
    assert default_world["source"].attrs["difficulty"] == pytest.approx((low + high) / 2)


# ------------------------------------------------------------------------------------------------ built task data


def test_built_tasks_match_plan(default_world):
    specs = plan_tasks(data_cfg())
    assert set(default_world) == {s.name for s in specs}
    for spec in specs:
        data = default_world[spec.name]
        n = spec.n_train + spec.n_test
        assert data.images.shape == (n, 32, 32, 3) and data.images.dtype == np.uint8
        assert data.labels.shape == (n,) and data.labels.dtype == np.int64
        assert data.is_train.dtype == bool and int(data.is_train.sum()) == spec.n_train
        assert data.class_names == list(spec.classes)
        per_class_train = np.bincount(data.labels[data.is_train], minlength=len(spec.classes))
        per_class_test = np.bincount(data.labels[~data.is_train], minlength=len(spec.classes))
        assert len(set(per_class_train)) == 1 and per_class_train.sum() == spec.n_train
        assert len(set(per_class_test)) == 1 and per_class_test.sum() == spec.n_test
        assert data.images.std() > 10  # not blank
        assert data.attrs["task"] == spec.name and data.attrs["source"] == "synthetic"
        assert data.attrs["n_train"] == spec.n_train and data.attrs["n_test"] == spec.n_test
        assert data.attrs["generator_version"] == GENERATOR_VERSION
        assert json.loads(data.attrs["taxonomy"]) == [list(p) for p in spec.taxonomy]
        assert all(isinstance(v, (str, int, float, bool)) for v in data.attrs.values())


def test_images_differ_within_and_between_classes(default_world):
    data = default_world["organic-c1-o1"]
    first = data.images[data.labels == 0]
    assert not any(np.array_equal(a, b) for a, b in itertools.combinations(first[:6], 2))
    means = [data.images[data.labels == k].mean(0) for k in range(len(data.class_names))]
    assert not any(np.allclose(a, b) for a, b in itertools.combinations(means, 2))


def test_resolution_is_rendered_not_resampled():
    for res in (8, 20, 48):
        data = build_task({**tiny_cfg(), "resolution": res}, "geometric-c1-o1")
        assert data.images.shape[1:] == (res, res, 3)
        assert data.attrs["resolution"] == res


# ---------------------------------------------------------------------------------------------------- determinism


def test_build_is_deterministic():
    cfg = tiny_cfg()
    a, b = build_task(cfg, "organic-c1-o2"), build_task(cfg, "organic-c1-o2")
    assert np.array_equal(a.images, b.images) and np.array_equal(a.labels, b.labels)
    assert np.array_equal(a.is_train, b.is_train) and a.attrs == b.attrs


def test_task_independent_of_task_selection(default_world):
    alone = build_task({**data_cfg(), "tasks": ["geometric-c2-o3"]}, "geometric-c2-o3")
    assert np.array_equal(alone.images, default_world["geometric-c2-o3"].images)
    assert alone.attrs["config_digest"] == default_world["geometric-c2-o3"].attrs["config_digest"]


def test_seed_changes_images_and_digest():
    a = build_task(tiny_cfg(), "organic-c1-o1")
    b = build_task(tiny_cfg(seed=1), "organic-c1-o1")
    assert a.images.shape == b.images.shape and not np.array_equal(a.images, b.images)
    assert a.attrs["config_digest"] != b.attrs["config_digest"]


def test_digest_ignores_tasks_only():
    cfg = data_cfg()
    assert config_digest(cfg) == config_digest({**cfg, "tasks": ["organic-c1-o1"]})
    assert config_digest(cfg) != config_digest({**cfg, "resolution": 64})


def test_more_training_images_extend_the_split():
    small = build_task(tiny_cfg(), "geometric-c1-o2")
    large = build_task(data_cfg(**{**tiny_cfg()["synthetic"], "train_per_class": [9, 9]}), "geometric-c1-o2")
    for k in range(3):
        small_train = small.images[small.is_train & (small.labels == k)]
        large_train = large.images[large.is_train & (large.labels == k)]
        assert np.array_equal(small_train, large_train[: len(small_train)])
    assert np.array_equal(small.images[~small.is_train], large.images[~large.is_train])


def test_other_tasks_do_not_change_a_task():
    """Pinning another task's size changes nothing in this one."""
    base = build_task(tiny_cfg(), "organic-c1-o1")
    cfg = tiny_cfg()
    cfg["synthetic"]["overrides"] = {"geometric-c1-o2": {"n_classes": 5, "train_per_class": 2}}
    assert np.array_equal(base.images, build_task(cfg, "organic-c1-o1").images)


# ---------------------------------------------------------------------------------------------- world structure


def _gray(images: np.ndarray) -> np.ndarray:
    return images.astype(np.float64).mean(-1) / 255.0


def _high_frequency_energy(images: np.ndarray) -> float:
    g = _gray(images)
    return float(np.abs(np.diff(g, axis=1)).mean() + np.abs(np.diff(g, axis=2)).mean())


def _saturation(images: np.ndarray) -> float:
    x = images.astype(np.float64) / 255.0
    hi, lo = x.max(-1), x.min(-1)
    return float(((hi - lo) / np.maximum(hi, 1e-3)).mean())


def test_domains_have_different_image_statistics(default_world):
    by_domain: dict[str, list[np.ndarray]] = {}
    for name, data in default_world.items():
        if name != "source":
            by_domain.setdefault(name.split("-")[0], []).append(data.images)
    organic, geometric = np.concatenate(by_domain["organic"]), np.concatenate(by_domain["geometric"])
    assert _high_frequency_energy(geometric) > 1.5 * _high_frequency_energy(organic)
    assert _saturation(organic) > 2.0 * _saturation(geometric)
    # the source task mixes both kinds of image
    source = default_world["source"]
    names = np.array(source.class_names)[source.labels]
    from_organic = np.char.startswith(names, "source-organic")
    assert _high_frequency_energy(source.images[~from_organic]) > 1.5 * _high_frequency_energy(
        source.images[from_organic]
    )


def _image_features(images: np.ndarray) -> np.ndarray:
    """Cheap appearance descriptors: colour moments, hue histogram, gradient-orientation histogram, edge energy."""
    x = images.astype(np.float64) / 255.0
    hi, lo = x.max(-1), x.min(-1)
    sat = (hi - lo) / np.maximum(hi, 1e-3)
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    hue = np.arctan2(np.sqrt(3) * (g - b), 2 * r - g - b)
    hue_bins = np.floor((hue + np.pi) / (2 * np.pi) * 12).clip(0, 11).astype(int)
    hue_hist = np.stack([((hue_bins == k) * sat).mean((1, 2)) for k in range(12)], 1)
    gray = x.mean(-1)
    gy, gx = np.gradient(gray, axis=(1, 2))
    mag = np.hypot(gx, gy)
    ori = np.floor(np.mod(np.arctan2(gy, gx), np.pi) / np.pi * 8).clip(0, 7).astype(int)
    ori_hist = np.stack([((ori == k) * mag).mean((1, 2)) for k in range(8)], 1)
    moments = np.concatenate([x.mean((1, 2)), x.std((1, 2)), sat.mean((1, 2))[:, None]], 1)
    return np.concatenate([moments, hue_hist, np.sort(ori_hist, 1), mag.mean((1, 2))[:, None]], 1)


def test_relatives_look_alike(default_world):
    """Mean appearance: sister orders are closer than orders of another clade, which are closer than across domains."""
    names = sorted(n for n in default_world if n != "source")
    centres = np.stack([_image_features(default_world[n].images).mean(0) for n in names])
    centres = (centres - centres.mean(0)) / (centres.std(0) + 1e-9)
    distance = np.linalg.norm(centres[:, None] - centres[None], axis=-1)
    groups: dict[str, list[float]] = {"sister": [], "cousin": [], "other domain": []}
    for i, j in itertools.combinations(range(len(names)), 2):
        (di, ci, _), (dj, cj, _) = names[i].split("-"), names[j].split("-")
        relation = "other domain" if di != dj else ("cousin" if ci != cj else "sister")
        groups[relation].append(distance[i, j])
    mean = {k: float(np.mean(v)) for k, v in groups.items()}
    assert mean["sister"] < mean["cousin"] < mean["other domain"], mean
    assert mean["sister"] < 0.8 * mean["cousin"], mean


# ---------------------------------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "cfg, error, match",
    [
        ({**data_cfg(), "source": "cub9000"}, ConfigError, r"data\.source.*cub9000.*synthetic"),
        ({**data_cfg(), "resolution": 4}, ConfigError, r"data\.resolution"),
        ({**data_cfg(), "resolution": 32.0}, ConfigError, r"data\.resolution"),
        ({**data_cfg(), "resolution": "32"}, ConfigError, r"data\.resolution"),
        ({**data_cfg(), "seed": -1}, ConfigError, r"data\.seed"),
        ({**data_cfg(), "tasks": ["organic-c1-o1", "birds"]}, ConfigError, r"data\.tasks.*'birds'.*organic-c1-o1"),
        ({**data_cfg(), "tasks": []}, ConfigError, r"data\.tasks"),
        ({**data_cfg(), "tasks": "organic-c1-o1"}, ConfigError, r"data\.tasks"),
        (data_cfg(overrides={"organic-c1-o2": {"n_classes": 1}}), TaskDataError, r"organic-c1-o2.*>= 2 classes"),
        (data_cfg(overrides={"organic-c1-o2": {"train_per_class": 0}}), TaskDataError, r"organic-c1-o2.*no training"),
        (data_cfg(overrides={"geometric-c2-o1": {"test_per_class": 0}}), TaskDataError, r"geometric-c2-o1.*no test"),
        (
            data_cfg(overrides={"organic-c9-o1": {"n_classes": 3}}),
            ConfigError,
            r"data\.synthetic\.overrides.*organic-c9-o1",
        ),
        (data_cfg(overrides={"organic-c1-o1": {"classes": 3}}), ConfigError, r"overrides\.organic-c1-o1\.classes"),
        (
            data_cfg(overrides={"organic-c1-o1": {"difficulty": 2}}),
            ConfigError,
            r"overrides\.organic-c1-o1\.difficulty",
        ),
        (data_cfg(classes_per_order=[5, 3]), ConfigError, r"data\.synthetic\.classes_per_order.*min > max"),
        (data_cfg(classes_per_order=[1, 3]), ConfigError, r"data\.synthetic\.classes_per_order.*>= 2"),
        (data_cfg(train_per_class=[0, 60]), ConfigError, r"data\.synthetic\.train_per_class.*empty"),
        (data_cfg(train_per_class=[60, 6]), ConfigError, r"data\.synthetic\.train_per_class.*min > max"),
        (data_cfg(test_per_class=0), ConfigError, r"data\.synthetic\.test_per_class"),
        (data_cfg(orders_per_clade=0), ConfigError, r"data\.synthetic\.orders_per_clade"),
        (data_cfg(domains=2.5), ConfigError, r"data\.synthetic\.domains"),
        (data_cfg(source_classes=1), ConfigError, r"data\.synthetic\.source_classes"),
        (data_cfg(domains=3, source_classes=2), ConfigError, r"data\.synthetic\.source_classes: 2 is fewer than the 3"),
        (
            data_cfg(clades_per_domain=7),
            ConfigError,
            r"data\.synthetic\.clades_per_domain: 7 is greater than the maximum of 6",
        ),
        (data_cfg(difficulty=[0.8, 0.2]), ConfigError, r"data\.synthetic\.difficulty"),
    ],
)
def test_bad_input_is_caught_at_plan_time(cfg, error, match):
    with pytest.raises(error, match=match):
        plan_tasks(cfg)


def test_building_an_unplanned_task_names_it():
    with pytest.raises(ConfigError, match=r"'organic-c1-o2'.*not planned"):
        build_task({**tiny_cfg(), "tasks": ["organic-c1-o1"]}, "organic-c1-o2")


# ------------------------------------------------------------------------------------------------------ registry


@pytest.fixture
def toy_source():
    """A throwaway source registered for one test: two tasks of constant images."""

    @register_source("toy")
    class Toy:
        def plan(self, data_cfg):
            n_classes = data_cfg.get("toy_classes", 2)
            classes = tuple(f"t-k{k}" for k in range(n_classes))
            return [
                TaskSpec("source", "source", ("s-a", "s-b"), 2, 2, (), "toy"),
                TaskSpec("t", "task", classes, n_classes, n_classes, (("group", "g"),), "toy"),
            ]

        def build(self, data_cfg, spec):
            k = len(spec.classes)
            labels = np.tile(np.arange(k, dtype=np.int64), 2)
            images = np.zeros((2 * k, 8, 8, 3), np.uint8)
            return TaskData(images, labels, np.arange(2 * k) < k, list(spec.classes), {})

    yield Toy
    SOURCES.pop("toy")


def test_registry_adds_a_source_with_one_registration(toy_source):
    assert isinstance(get_source("toy"), toy_source)
    cfg = {"source": "toy", "seed": 3, "resolution": 8, "tasks": "all"}
    assert [s.name for s in plan_tasks(cfg)] == ["source", "t"]
    data = build_task(cfg, "t")
    assert data.attrs["source"] == "toy" and data.attrs["seed"] == 3 and data.attrs["n_train"] == 2


def test_registry_rejects_single_class_tasks_of_any_source(toy_source):
    with pytest.raises(TaskDataError, match=r"task 't'.*>= 2 classes"):
        plan_tasks({"source": "toy", "toy_classes": 1})


def test_unknown_source_lists_known_ones():
    with pytest.raises(ConfigError, match=r"data\.source.*'nope'.*known sources.*synthetic"):
        get_source("nope")
    with pytest.raises(ConfigError, match=r"my\.key"):
        get_source(None, config_key="my.key")
