"""``packaged``: every packaged dataset at its default options, in DIR/emoji, DIR/clipart and DIR/fashion_mnist.

Each part is a complete prepared folder (with its own prepared.json); the config snippet reads them side by side as
a ``combined`` source (one prefix per part).
"""

from __future__ import annotations

from pathlib import Path

from . import Package, Preparer, get_preparer, register_preparer

PARTS = {"emoji": "emoji", "clipart": "clipart", "fashion_mnist": "fashionmnist"}  # part -> combined prefix


@register_preparer("packaged")
class PackagedPreparer(Preparer):
    """The three packaged datasets side by side; see the module docstring."""

    VERSION = 1
    LEVEL = "category"  # of the emoji and clipart parts; fashion_mnist's is dataset (see data_config)
    SPLIT = False
    SUMMARY = "emoji, clipart and fashion_mnist (default options) in DIR/<name>"

    PARTS = PARTS

    def locate(self, options: dict) -> list[Package]:
        """Every part's packages (each part reports its own missing ones)."""
        return [p for part in self.PARTS for p in get_preparer(part).locate(get_preparer(part).options({}))]

    def build(self, options: dict, packages: list[Package], out: Path) -> dict:
        """Prepare each part into its sub-folder; the counts are the parts' counts."""
        from .run import write_prepared

        counts = {}
        for part in self.PARTS:
            preparer = get_preparer(part)
            part_options = preparer.options({})
            folder = out / part
            folder.mkdir()
            record = write_prepared(preparer, part_options, preparer.locate(part_options), folder)
            counts[part] = record["counts"]
        return counts

    def data_config(self, dest: str) -> dict:
        """A ``combined`` source with one imagefolder entry per part."""
        combined = {}
        for part, prefix in self.PARTS.items():
            section = get_preparer(part).data_config(f"{dest}/{part}")
            combined[prefix] = {"source": "imagefolder", **section["imagefolder"]}
        return {"source": "combined", "combined": combined}

