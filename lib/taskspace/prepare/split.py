"""A prepared dataset's train/test split with no image on both sides: exact duplicates removed, related images
(frames of one animation, drawings of one emoji) kept together.

A preparer gives every written image as an :class:`Item`: its path ``<class>/<file>``, its class, a *group* (the
images that must land on one side together; the image's own path when it has no relatives) and the digest of its
pixels (:func:`pixel_digest`). :func:`grouped_split` then

1. drops exact duplicates: images of one class with equal digests keep only the first path (sorted) and the others
   are counted as ``duplicate_images``; equal digests under *different* classes are an ambiguous label and every
   copy is dropped (``conflicting_images``), so no image is left with a copy anywhere;
2. per class, orders the groups by a seeded hash of their names and goes through them, sending a whole group to
   test while the class has fewer than ``max(1, round(test_fraction * n))`` test images, unless that group would
   overshoot the target by more than the class then falls short of it (where every group would, the smallest one
   goes); at least one group stays in train (a class with one group goes to train whole and is counted in
   ``single_group_classes``).

The result is a pure function of the items, the fraction and the seed.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from . import PrepareError


@dataclass(frozen=True)
class Item:
    """One written image: ``path`` is ``<class>/<file>``, ``group`` what must stay on its side with it."""

    path: str
    cls: str
    group: str
    digest: str


def pixel_digest(array: np.ndarray) -> str:
    """sha256 of an image's pixels, with its shape (uint8 array as written)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    h = hashlib.sha256(repr(array.shape).encode())
    h.update(array.tobytes())
    return h.hexdigest()


def _rank(seed: int, cls: str, group: str) -> str:
    return hashlib.sha256(f"{seed}\0{cls}\0{group}".encode()).hexdigest()


def grouped_split(items: list[Item], test_fraction: float, seed: int) -> tuple[dict[str, str], dict[str, int]]:
    """({path: "train" | "test"} for the images kept, counts of what was dropped or special); see the module doc."""
    if not 0 < test_fraction < 1:
        raise PrepareError(f"test fraction must be in (0, 1), got {test_fraction}")
    paths = [i.path for i in items]
    if len(set(paths)) != len(paths):
        raise PrepareError("grouped_split: an image path is given twice")
    classes_of: dict[str, set[str]] = defaultdict(set)
    for item in items:
        classes_of[item.digest].add(item.cls)
    kept: dict[tuple[str, str], Item] = {}  # (class, digest) -> first item
    counts = {"duplicate_images": 0, "conflicting_images": 0, "single_group_classes": 0}
    for item in sorted(items, key=lambda i: i.path):
        if len(classes_of[item.digest]) > 1:
            counts["conflicting_images"] += 1
        elif (item.cls, item.digest) in kept:
            counts["duplicate_images"] += 1
        else:
            kept[(item.cls, item.digest)] = item
    by_class: dict[str, list[Item]] = defaultdict(list)
    for item in kept.values():
        by_class[item.cls].append(item)
    split: dict[str, str] = {}
    for cls in sorted(by_class):
        groups: dict[str, list[str]] = defaultdict(list)
        for item in by_class[cls]:
            groups[item.group].append(item.path)
        names = sorted(groups, key=lambda g: (_rank(seed, cls, g), g))
        n = sum(len(v) for v in groups.values())
        want = max(1, round(test_fraction * n))
        if len(names) == 1:
            counts["single_group_classes"] += 1
        test, size = set(), 0
        for g in names:
            if size >= want or len(test) == len(names) - 1:  # at least one group stays in train
                break
            if size + len(groups[g]) - want > want - size:
                continue  # taking this group would overshoot the target by more than it now falls short
            test.add(g)
            size += len(groups[g])
        if not test and len(names) > 1:  # every group is too large: the smallest goes (the first such, in order)
            test.add(min(names, key=lambda g: len(groups[g])))
        for g, members in groups.items():
            for p in members:
                split[p] = "test" if g in test else "train"
    return split, counts
