"""``fashion_mnist``: the first N images per class of Fashion-MNIST (Debian package dataset-fashion-mnist).

The package holds the four official IDX files (``{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz``). The first
``--train-per-class`` / ``--test-per-class`` images of each class, in file order, are written as 28x28 grey PNGs
with the official split kept (``split.csv``). One task of the 10 classes (``level: dataset``).
"""

from __future__ import annotations

import gzip
from collections import Counter
from pathlib import Path

import numpy as np

from . import Option, Package, Preparer, PrepareError, register_preparer
from .layout import class_folders, images_dir, save_array, write_split, write_taxonomy
from .packages import content_digest, debian_missing, debian_package

PACKAGE = "dataset-fashion-mnist"
DEFAULT_ROOT = "/usr/share/datasets/fashion-mnist"
DATASET = "fashion-mnist"
CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
FILES = {  # split -> (images file, labels file), the official names
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
IDX_UBYTE = 0x08  # the IDX type code of unsigned bytes


def read_idx(path: Path, dims: int) -> np.ndarray:
    """A gzipped IDX file of unsigned bytes with ``dims`` dimensions as a uint8 array; a bad header names the file."""
    with gzip.open(path, "rb") as fh:
        data = fh.read()
    if len(data) < 4 + 4 * dims:
        raise PrepareError(f"{path}: too short for an IDX header ({len(data)} bytes)")
    if data[0] != 0 or data[1] != 0 or data[2] != IDX_UBYTE or data[3] != dims:
        raise PrepareError(f"{path}: not an IDX file of unsigned bytes with {dims} dimensions (magic {data[:4].hex()})")
    shape = tuple(int(n) for n in np.frombuffer(data, ">u4", dims, 4))
    body = np.frombuffer(data, np.uint8, offset=4 + 4 * dims)
    if body.size != int(np.prod(shape)):
        raise PrepareError(f"{path}: the header says {shape} = {int(np.prod(shape))} bytes, the file has {body.size}")
    return body.reshape(shape)


def first_per_class(labels: np.ndarray, n: int, classes: int) -> np.ndarray:
    """Indices of the first ``n`` items of each class in file order (sorted)."""
    keep = [np.flatnonzero(labels == c)[:n] for c in range(classes)]
    return np.sort(np.concatenate(keep)) if keep else np.zeros(0, np.int64)


@register_preparer("fashion_mnist")
class FashionMnistPreparer(Preparer):
    """Fashion-MNIST's 10 classes as one task with the official split; see the module docstring."""

    VERSION = 1
    LEVEL = "dataset"
    SPLIT = True
    SUMMARY = "Fashion-MNIST of the Debian package dataset-fashion-mnist: one task of 10 classes, official split"
    OPTIONS = (
        Option("root", "the folder of the four Fashion-MNIST IDX files", DEFAULT_ROOT),
        Option("train-per-class", "the first N training images of each class", 100, int),
        Option("test-per-class", "the first N test images of each class", 100, int),
    )

    def check(self, options: dict) -> dict:
        """Counts >= 1; root absolute."""
        for key in ("train_per_class", "test_per_class"):
            if int(options[key]) < 1:
                raise PrepareError(f"--{key.replace('_', '-')} must be >= 1, got {options[key]}")
        return {"root": str(Path(options["root"]).absolute()), "train_per_class": int(options["train_per_class"]),
                "test_per_class": int(options["test_per_class"])}

    def locate(self, options: dict) -> list[Package]:
        """The four IDX files (a digest of their bytes; the Debian version when they are the installed ones)."""
        root = Path(options["root"])
        files = [root / name for pair in FILES.values() for name in pair]
        absent = [f.name for f in files if not f.is_file()]
        if absent:
            raise debian_missing(PACKAGE, f"Fashion-MNIST file(s) {', '.join(absent)} in {root}")
        return [debian_package(PACKAGE, root, Path(DEFAULT_ROOT), content_digest(files))]

    def build(self, options: dict, packages: list[Package], out: Path) -> dict:
        """Write the chosen images of each split as images/<class>/<split>_<index>.png, with split.csv."""
        root = Path(options["root"])
        folders = class_folders(CLASSES, "Fashion-MNIST class")
        images = images_dir(out)
        split: dict[str, str] = {}
        per_class: Counter = Counter()
        for name, (image_file, label_file) in FILES.items():
            pixels, labels = read_idx(root / image_file, 3), read_idx(root / label_file, 1)
            if len(pixels) != len(labels):
                raise PrepareError(f"{root / image_file}: {len(pixels)} images but {len(labels)} labels")
            if labels.size and int(labels.max()) >= len(CLASSES):
                raise PrepareError(f"{root / label_file}: label {int(labels.max())} is not one of the 10 classes")
            per = options["train_per_class" if name == "train" else "test_per_class"]
            for i in first_per_class(labels, per, len(CLASSES)):
                folder = folders[CLASSES[labels[i]]]
                (images / folder).mkdir(exist_ok=True)
                file = f"{name}_{i:05d}.png"
                save_array(pixels[i], images / folder / file)
                split[f"{folder}/{file}"] = name
                per_class[folder] += 1
        write_taxonomy(out, ("dataset",), {folders[c]: (DATASET,) for c in CLASSES if per_class[folders[c]]})
        write_split(out, split)
        return {
            "classes": len(per_class),
            "images": sum(per_class.values()),
            "images_per_split": {s: sum(v == s for v in split.values()) for s in FILES},
            "images_per_class": dict(sorted(per_class.items())),
            "class_names": {folders[c]: c for c in CLASSES},
            "skipped": {},
        }
