"""``taskspace prepare animal_mnist``: the silhouettes of the PyPI package animal-mnist as one task of 10 classes, on
tiny gzip+pickle files in the package's format (with a duplicate and a copy under two classes) with known answers;
then once on the real package (installed with pip --no-deps when missing where the machine allows it)."""

from __future__ import annotations

import gzip
import json
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from taskspace.prepare import MissingPackageError, PrepareError
from taskspace.prepare import animal_mnist as A
from taskspace.prepare.run import prepare

from packages import ensure_pip_no_deps
from prepared import class_files, pixels, plan_prepared, read_csv, tree

FOLDERS = ["bear", "bird", "cat", "cow", "dog", "elephant", "giraffe", "horse", "sheep", "zebra"]
LABELS = [0, 0, 0, 0, 1, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 9]  # sorted, as the package's


def image(i: int) -> np.ndarray:
    a = np.full((28, 28), 7 * i + 3, np.uint8)
    a[0, 0] = 255  # an orientation marker
    a[27, i % 28] = 0
    return a


def fixture_images() -> np.ndarray:
    images = np.stack([image(i) for i in range(len(LABELS))])
    images[3] = images[1]  # a duplicate within bear
    images[22] = images[21]  # and within zebra
    images[10] = images[8]  # cow 10 = cat 8: an ambiguous label, both dropped
    return images


def write_pickle(path: Path, value) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wb") as fh:
        pickle.dump(value, fh, protocol=4)


def write_animal(root: Path, images: np.ndarray | None = None, labels=None) -> Path:
    """The package's two files: a gzipped pickle of uint8 (N, 28, 28) images and of int64 (N,) labels."""
    write_pickle(root / A.FILES[0], fixture_images() if images is None else images)
    write_pickle(root / A.FILES[1], np.array(LABELS if labels is None else labels, np.int64))
    return root


@pytest.fixture
def animal_root(tmp_path):
    return write_animal(tmp_path / "animal")












def test_animal_mnist_layout_taxonomy_split_and_counts(animal_root, tmp_path):
    dest = tmp_path / "am"
    result = prepare("animal_mnist", dest, {"root": str(animal_root)})
    assert class_files(dest) == {
        "bear": ["00000.png", "00001.png", "00002.png"],  # 00003 is a copy of 00001
        "bird": ["00004.png", "00005.png", "00006.png"], "cat": ["00007.png"],  # 00008 is also cow's 00010
        "cow": ["00009.png"], "dog": ["00011.png", "00012.png"], "elephant": ["00013.png", "00014.png"],
        "giraffe": ["00015.png", "00016.png"], "horse": ["00017.png", "00018.png"],
        "sheep": ["00019.png", "00020.png"], "zebra": ["00021.png", "00023.png"]}  # 00022 is a copy of 00021
    assert read_csv(dest / "taxonomy.csv") == [["class", "dataset"]] + [[f, "animal-mnist"] for f in FOLDERS]
    split = dict(read_csv(dest / "split.csv")[1:])
    assert sorted(split) == sorted(f"{c}/{f}" for c, fs in class_files(dest).items() for f in fs)
    tests = {c: sum(s == "test" for p, s in split.items() if p.startswith(c + "/")) for c in FOLDERS}
    assert tests == {"bear": 1, "bird": 1, "cat": 0, "cow": 0, "dog": 1, "elephant": 1, "giraffe": 1, "horse": 1,
                     "sheep": 1, "zebra": 1}  # max(1, round(0.3 n)), one image left in training
    for c, files in class_files(dest).items():
        for f in files:
            assert np.array_equal(pixels(dest / "images" / c / f), fixture_images()[int(f[:5])])
    rec = json.loads((dest / "prepared.json").read_text())
    counts = rec["counts"]
    assert counts["classes"] == 10 and counts["images"] == 20 and counts["files"] == 24
    assert counts["images_per_split"] == {"train": 12, "test": 8}
    assert counts["skipped"] == {"duplicate_images": 2, "conflicting_images": 2}
    assert counts["class_names"]["bear"] == "Bear" and counts["class_names"]["zebra"] == "Zebra"
    assert rec["packages"][0]["name"] == "animal-mnist" and rec["packages"][0]["version"] is None
    assert result.data_config["imagefolder"]["level"] == "dataset"
    tasks = plan_prepared(dest, "dataset")
    assert list(tasks) == ["animal-mnist"]  # cat and cow: one image each, no test image: dropped by the pipeline
    assert tasks["animal-mnist"].classes == tuple(f for f in FOLDERS if f not in ("cat", "cow"))


def test_animal_mnist_per_class_seed_and_rerun(animal_root, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for dest in (a, b):
        prepare("animal_mnist", dest, {"root": str(animal_root), "per_class": 2, "seed": 5})
    assert tree(a) == tree(b)
    assert class_files(a)["bear"] == ["00000.png", "00001.png"] and class_files(a)["zebra"] == ["00021.png"]
    assert not prepare("animal_mnist", a, {"root": str(animal_root), "per_class": 2, "seed": 5}).built
    with pytest.raises(PrepareError, match=r"--per-class must be >= 1, got 0"):
        prepare("animal_mnist", tmp_path / "c", {"root": str(animal_root), "per_class": 0})


def test_animal_mnist_missing_package_is_named_with_the_install_command(tmp_path, monkeypatch):
    monkeypatch.setattr(A, "installed_data", lambda: None)
    with pytest.raises(MissingPackageError, match=r"PyPI package animal-mnist; install it with "
                                                  r"`pip install --no-deps animal-mnist==0\.4`"):
        prepare("animal_mnist", tmp_path / "am", {})
    with pytest.raises(MissingPackageError, match=r"animal_label_version_3\.gz in .*"
                                                  r"`pip install --no-deps animal-mnist==0\.4`"):
        write_pickle(tmp_path / "half" / A.FILES[0], fixture_images())
        prepare("animal_mnist", tmp_path / "am", {"root": str(tmp_path / "half")})
    assert not (tmp_path / "am").exists()


def test_animal_mnist_bad_files_name_the_file(tmp_path):
    root = write_animal(tmp_path / "bad", labels=LABELS[:-1] + [10])
    with pytest.raises(PrepareError, match=r"animal_label_version_3\.gz: label 10 is not one of the 10 classes"):
        prepare("animal_mnist", tmp_path / "am", {"root": str(root)})
    write_pickle(root / A.FILES[0], fixture_images()[:, :14])
    with pytest.raises(PrepareError, match=r"animal_data_version_3\.gz: expected uint8 images \(N, 28, 28\)"):
        prepare("animal_mnist", tmp_path / "am", {"root": str(root)})
    write_pickle(root / A.FILES[0], [os.getcwd])  # a pickle that would call a function: refused, not run
    with pytest.raises(PrepareError, match=r"animal_data_version_3\.gz: not a gzipped pickle of a numpy array "
                                           r"\(UnpicklingError: refusing posix\.getcwd"):
        prepare("animal_mnist", tmp_path / "am", {"root": str(root)})
    (root / A.FILES[0]).write_bytes(b"not gzip")
    with pytest.raises(PrepareError, match=r"animal_data_version_3\.gz: not a gzipped pickle"):
        prepare("animal_mnist", tmp_path / "am", {"root": str(root)})
    assert not (tmp_path / "am").exists()


def test_real_animal_mnist(tmp_path):
    reason = ensure_pip_no_deps("animal-mnist")
    if reason is not None:
        pytest.skip(reason)
    found = A.installed_data()
    assert found is not None and found[1] == "0.4"
    dest = tmp_path / "am"
    rec = prepare("animal_mnist", dest, {"per_class": 30}).record
    assert rec["packages"][0] == {"name": "animal-mnist", "version": "0.4", "path": str(found[0]),
                                  "digest": rec["packages"][0]["digest"]}
    files = class_files(dest)
    assert sorted(files) == FOLDERS
    counts = rec["counts"]
    assert counts["files"] == 300
    assert counts["images"] == 300 - counts["skipped"]["duplicate_images"] - counts["skipped"]["conflicting_images"]
    assert files["bear"][0] == "00000.png" and files["zebra"][-1] <= "09999.png"
    data = A.read_array(found[0] / A.FILES[0])
    assert np.array_equal(pixels(dest / "images/bear/00000.png"), data[0])
    labels = A.read_array(found[0] / A.FILES[1])
    assert labels[9000] == 9 and labels[0] == 0  # sorted by label: zebras last
    assert list(plan_prepared(dest, "dataset")) == ["animal-mnist"]
