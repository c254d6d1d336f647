"""The grouped train/test split of prepared datasets: duplicates removed, related images on one side."""

from __future__ import annotations

import numpy as np
import pytest

from taskspace.prepare import PrepareError
from taskspace.prepare.split import Item, grouped_split, pixel_digest


def items(cls: str, sizes: dict[str, int]) -> list[Item]:
    """Distinct images of ``cls``, ``sizes[group]`` in each group."""
    return [Item(f"{cls}/{g}-{i}.png", cls, g, f"{cls}{g}{i}") for g, n in sizes.items() for i in range(n)]


def test_whole_groups_go_to_one_side_near_the_fraction():
    given = items("a", {f"g{k}": 3 for k in range(10)})  # 30 images in 10 animations of 3
    for seed in range(5):
        split, counts = grouped_split(given, 0.2, seed)
        assert len(split) == 30 and counts == {"duplicate_images": 0, "conflicting_images": 0,
                                               "single_group_classes": 0}
        for g in {i.group for i in given}:
            assert len({split[i.path] for i in given if i.group == g}) == 1
        assert sum(v == "test" for v in split.values()) == 6  # round(0.2 * 30) = 6: two groups of 3


def test_a_group_that_would_overshoot_is_passed_over_and_one_group_always_stays_in_train():
    given = items("a", {"big": 20, "s1": 2, "s2": 2, "s3": 2})  # 26 images, target round(0.25 * 26) = 6
    for seed in range(8):
        split, _ = grouped_split(given, 0.25, seed)
        test = sorted({i.group for i in given if split[i.path] == "test"})
        assert test == ["s1", "s2", "s3"]  # the 20 frames of one animation never make the test side
    split, _ = grouped_split(items("b", {"x": 10, "y": 12}), 0.2, 0)  # every group overshoots: the smaller goes
    assert {p for p, s in split.items() if s == "test"} == {f"b/x-{i}.png" for i in range(10)}
    split, counts = grouped_split(items("c", {"only": 5}), 0.5, 0)
    assert set(split.values()) == {"train"} and counts["single_group_classes"] == 1


def test_exact_copies_are_kept_once_and_copies_under_two_classes_dropped():
    given = [Item("a/1.png", "a", "1", "d1"), Item("a/2.png", "a", "2", "d1"), Item("a/3.png", "a", "3", "d3"),
             Item("a/4.png", "a", "4", "d4"), Item("b/1.png", "b", "1", "d3"), Item("b/2.png", "b", "2", "d5"),
             Item("b/3.png", "b", "3", "d6")]
    split, counts = grouped_split(given, 0.5, 0)
    assert sorted(split) == ["a/1.png", "a/4.png", "b/2.png", "b/3.png"]
    assert counts == {"duplicate_images": 1, "conflicting_images": 2, "single_group_classes": 0}
    assert sorted(split.values()) == ["test", "test", "train", "train"]


def test_the_split_is_a_function_of_the_items_and_seed_only():
    given = items("a", {f"g{k}": k + 1 for k in range(8)}) + items("b", {f"h{k}": 2 for k in range(6)})
    first, _ = grouped_split(given, 0.3, 4)
    assert grouped_split(list(reversed(given)), 0.3, 4)[0] == first
    assert any(grouped_split(given, 0.3, s)[0] != first for s in range(5))


def test_pixel_digest_sees_shape_and_values_and_bad_input_is_named():
    a = np.zeros((4, 4, 3), np.uint8)
    assert pixel_digest(a) == pixel_digest(a.copy()) != pixel_digest(np.zeros((2, 8, 3), np.uint8))
    b = a.copy()
    b[0, 0, 0] = 1
    assert pixel_digest(a) != pixel_digest(b)
    with pytest.raises(PrepareError, match="test fraction must be in"):
        grouped_split(items("a", {"g": 2}), 1.0, 0)
    with pytest.raises(PrepareError, match="given twice"):
        grouped_split(items("a", {"g": 2}) * 2, 0.5, 0)
