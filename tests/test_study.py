"""Expert bank and meta-tasks: which transfer pairs a study computes, and errors naming the config key."""

from __future__ import annotations

import pytest

from taskspace.config import canonical
from taskspace.plan import validate_config
from taskspace.errors import ConfigError
from taskspace.study import expert_tasks, meta_tasks, transfer_pairs

TASKS = ["a", "b", "c", "d"]


def _study(experts="all", meta=None):
    config = validate_config({"experts": {"tasks": experts}, "meta_tasks": meta or {}})
    bank = expert_tasks(config, TASKS)
    return bank, meta_tasks(config, TASKS, bank)


def test_default_is_one_full_matrix():
    bank, matrices = _study()
    assert bank == TASKS
    assert [(m.name, m.targets, m.experts) for m in matrices] == [("all", tuple(TASKS), tuple(TASKS))]
    assert len(transfer_pairs(matrices, "generic")) == 4 * 5


def test_experts_go_to_tasks_with_enough_training_images():
    sizes = {"a": 12, "b": 100, "c": 99, "d": 448}
    config = validate_config({"experts": {"min_train_images": 100}})
    bank = expert_tasks(config, TASKS, sizes)
    assert bank == ["b", "d"]
    (matrix,) = meta_tasks(config, TASKS, bank)
    assert matrix.targets == tuple(TASKS) and matrix.experts == ("b", "d")  # every task stays a target
    listed = validate_config({"experts": {"tasks": ["a", "c", "d"], "min_train_images": 50}})
    assert expert_tasks(listed, TASKS, sizes) == ["c", "d"]
    with pytest.raises(ConfigError, match=r"experts\.min_train_images: 500 leaves no task.*448 training images"):
        expert_tasks(validate_config({"experts": {"min_train_images": 500}}), TASKS, sizes)


def test_meta_tasks_compute_the_union_of_their_pairs():
    bank, matrices = _study(["a", "b", "c"], {"m1": {"targets": ["a", "b"], "experts": ["a", "b"]},
                                              "m2": {"targets": "all", "experts": ["b", "c"]}})
    pairs = transfer_pairs(matrices, "g")
    expected = {(e, t) for t in "ab" for e in ("a", "b", "g")} | {(e, t) for t in TASKS for e in ("b", "c", "g")}
    assert set(pairs) == expected and len(pairs) == len(expected) and pairs == sorted(pairs)


@pytest.mark.parametrize(
    "experts,meta,message",
    [
        (["a", "x"], None, "experts.tasks: unknown task(s) ['x']"),
        ("all", {"m": {"targets": ["a", "zz"], "experts": "all"}}, "meta_tasks.m.targets: unknown task(s) ['zz']"),
        (["a", "b"], {"m": {"targets": "all", "experts": ["c"]}}, "meta_tasks.m.experts: unknown expert(s)"),
        (["a", "b"], {"m": {"targets": ["a"], "experts": ["a"]}}, "meta_tasks.m: target(s) ['a'] have no expert"),
    ],
)
def test_errors_name_the_key(experts, meta, message):
    with pytest.raises(ConfigError) as err:
        _study(experts, meta)
    assert message in str(err.value)


def test_meta_task_schema_requires_both_lists():
    with pytest.raises(ConfigError, match="meta_tasks.m"):
        validate_config({"meta_tasks": {"m": {"targets": "all"}}})


def test_canonical_sorts_keys_recursively():
    value = {"b": {"y": 1, "x": [{"d": 1, "c": 2}]}, "a": 0}
    out = canonical(value)
    assert list(out) == ["a", "b"] and list(out["b"]) == ["x", "y"] and list(out["b"]["x"][0]) == ["c", "d"]
    assert out == value


def test_the_paper_scale_config_declares_the_papers_study():
    from pathlib import Path

    import yaml

    from taskspace.data import plan_tasks

    path = Path(__file__).resolve().parents[1] / "configs" / "paper_scale.yaml"
    config = validate_config(yaml.safe_load(path.read_text()))
    tasks = sorted(s.name for s in plan_tasks(config["data"]) if s.role == "task")
    bank = expert_tasks(config, tasks)
    matrices = {m.name: m for m in meta_tasks(config, tasks, bank)}
    assert len(tasks) == 1460 and len(bank) == 156
    assert {n: (len(m.targets), len(m.experts)) for n, m in matrices.items()} == {
        "inat_cub": (50, 50), "mixed": (50, 26)}
