"""``collections``: every packaged collection at its default options, in DIR/<name>: the three of ``packaged``
(emoji, clipart, fashion_mnist) and wesnoth, animal_mnist, openmoji and tuxpaint, read side by side as one
``combined`` source (one prefix per part; the larger study on real images).
"""

from __future__ import annotations

from . import register_preparer
from .packaged import PARTS, PackagedPreparer


@register_preparer("collections")
class CollectionsPreparer(PackagedPreparer):
    """Every packaged collection side by side: the three of ``packaged`` and wesnoth, animal_mnist, openmoji and
    tuxpaint, each at its default options in DIR/<name>, read as one ``combined`` source (the larger study on real
    images)."""

    VERSION = 1
    SUMMARY = "all seven packaged collections (default options) in DIR/<name>"
    PARTS = {**PARTS, "wesnoth": "wesnoth", "animal_mnist": "animalmnist", "openmoji": "openmoji",
             "tuxpaint": "tuxpaint"}
