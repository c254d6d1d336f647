"""File-backed data sources (imagefolder, cub200, inat2018, stanford_cars, combined) on tiny fixtures of their exact
on-disk layouts: plans with known answers, decoded pixels, determinism, and every bad input named."""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import datasets as D
from taskspace.data import build_task, get_source, plan_report, plan_tasks, task_config
from taskspace.data.grouping import DataWarning, slugify
from taskspace.data.stanford_cars import MULTI_WORD_MAKES, make_of
from taskspace.errors import ConfigError, TaskDataError
from taskspace.results import read_provenance, read_task
from taskspace.stages import split_task, tabulate_tasks

# the data warnings a test does not check are expected noise here; pytest.warns still records them
pytestmark = pytest.mark.filterwarnings("ignore::taskspace.data.grouping.DataWarning")


def cfg_of(source: str, section: dict, **top) -> dict:
    return {"source": source, "seed": 0, "resolution": 16, "tasks": "all", source: section, **top}


def quiet(fn, *args):
    """Call without letting the data warnings through (tests that check them use pytest.warns)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        return fn(*args)


def names(cfg: dict) -> list[str]:
    return [s.name for s in quiet(plan_tasks, cfg)]


def specs(cfg: dict) -> dict:
    return {s.name: s for s in quiet(plan_tasks, cfg)}


def members(cfg: dict, task: str):
    """The planned files of a task's classes (name, train, test), in label order."""
    source = get_source(cfg["source"])
    return quiet(source.grouped, cfg).members[task]


def assert_known_colours(cfg: dict, task: str, expected: dict, data=None) -> None:
    """Every decoded image equals the colour its file was written with (training images first, label order)."""
    data = data if data is not None else quiet(build_task, cfg, task)
    files = [f for m in members(cfg, task) for f in m.train] + [f for m in members(cfg, task) for f in m.test]
    assert len(files) == len(data.labels)
    for image, file in zip(data.images, files):
        colour, tolerance = expected[file]
        assert np.abs(image.astype(int) - np.array(colour)).max() <= tolerance, file


def assert_split_fails(cfg: dict, task: str, tmp_path: Path, error, match: str) -> None:
    """split_task raises ``error`` matching ``match`` and leaves no task file (nor a temporary one) behind."""
    out = tmp_path / "results" / "tasks" / f"{task}.h5"
    with pytest.raises(error, match=match):
        quiet(split_task, cfg, task, str(out))
    assert not out.exists()
    assert not out.parent.exists() or not any(out.parent.iterdir())


# ---------------------------------------------------------------------------------------------------- imagefolder


@pytest.fixture
def folder(tmp_path):
    return D.write_imagefolder(tmp_path / "if")


def test_imagefolder_plan(folder):
    cfg = cfg_of("imagefolder", folder["config"])
    with pytest.warns(DataWarning, match=r"task 'strigiformes'.*fewer than min_classes=2"):
        plan = {s.name: s for s in plan_tasks(cfg)}
    assert list(plan) == ["anseriformes", "passeriformes"]
    ans = plan["anseriformes"]
    assert ans.classes == ("mallard", "teal", "wigeon") and ans.role == "task" and ans.source == "imagefolder"
    assert (ans.n_train, ans.n_test) == (3 * 3, 3 * 2)  # 5 images: max(1, round(0.3 * 5)) = 2 test
    assert ans.taxonomy == (("order", "Anseriformes"),)
    assert dict(ans.notes)["group"] == "Anseriformes"
    report = quiet(plan_report, cfg)
    assert report["skipped_tasks"] == [{"task": "strigiformes", "reason": "1 class(es), fewer than min_classes=2"}]


def test_imagefolder_refine_splits_a_group_at_a_finer_level(folder):
    cfg = cfg_of("imagefolder", {**folder["config"], "level": "order", "refine": {"Passeriformes": "family"}})
    plan = specs(cfg)
    assert list(plan) == ["anseriformes", "corvidae"]  # troglodytidae (wren alone) and strigiformes skipped
    assert plan["corvidae"].classes == ("crow", "jay")
    assert plan["corvidae"].taxonomy == (("order", "Passeriformes"), ("family", "Corvidae"))
    assert dict(plan["corvidae"].notes)["level"] == "family"
    skipped = {s["task"] for s in quiet(plan_report, cfg)["skipped_tasks"]}
    assert skipped == {"troglodytidae", "strigiformes"}


def test_imagefolder_level_defaults_to_the_first_column_and_can_be_finer(folder):
    assert names(cfg_of("imagefolder", folder["config"])) == ["anseriformes", "passeriformes"]
    by_family = specs(cfg_of("imagefolder", {**folder["config"], "level": "family"}))
    assert list(by_family) == ["anatidae", "corvidae"]
    assert by_family["corvidae"].taxonomy == (("order", "Passeriformes"), ("family", "Corvidae"))


def test_imagefolder_build_decodes_every_mode_to_its_colour(folder):
    cfg = cfg_of("imagefolder", folder["config"])
    for task in ("anseriformes", "passeriformes"):
        data = quiet(build_task, cfg, task)
        assert data.images.shape[1:] == (16, 16, 3) and data.attrs["skipped_images"] == 0
        assert_known_colours(cfg, task, folder["expected"], data)
        assert data.class_names == list(specs(cfg)[task].classes)
        assert np.bincount(data.labels[data.is_train]).tolist() == [3, 3, 3]
    kinds_used = {Path(f).suffix for f in folder["expected"]}
    assert {".gif", ".png", ".jpg", ".bmp", ".webp", ".pgm", ".TIF"} <= kinds_used


def test_imagefolder_build_is_deterministic_and_the_split_is_seeded(folder, tmp_path):
    cfg = cfg_of("imagefolder", folder["config"])
    a, b = quiet(build_task, cfg, "passeriformes"), quiet(build_task, cfg, "passeriformes")
    assert np.array_equal(a.images, b.images) and np.array_equal(a.labels, b.labels)
    assert np.array_equal(a.is_train, b.is_train)
    split0 = {m.name: (m.train, m.test) for m in members(cfg, "passeriformes")}
    split1 = {m.name: (m.train, m.test) for m in members({**cfg, "seed": 1}, "passeriformes")}
    assert split0 != split1
    # another class in the tree (and the task) leaves every other class's split as it was
    raven = {**D.IMAGEFOLDER_CLASSES, "raven": ("Passeriformes", "Corvidae")}
    more = D.write_imagefolder(tmp_path / "more", classes=raven)
    split_more = {m.name: (m.train, m.test) for m in members(cfg_of("imagefolder", more["config"]), "passeriformes")}
    assert set(split_more) == set(split0) | {"raven"}
    rel = lambda files: [Path(f).name for f in files]  # noqa: E731
    for cls, (train, test) in split0.items():
        assert (rel(train), rel(test)) == (rel(split_more[cls][0]), rel(split_more[cls][1])), cls


def test_imagefolder_max_train_per_class_is_a_seeded_nested_subsample(folder):
    small = members(cfg_of("imagefolder", {**folder["config"], "max_train_per_class": 1}), "anseriformes")
    large = members(cfg_of("imagefolder", {**folder["config"], "max_train_per_class": 2}), "anseriformes")
    full = members(cfg_of("imagefolder", folder["config"]), "anseriformes")
    for s, l, f in zip(small, large, full):
        assert len(s.train) == 1 and len(l.train) == 2 and set(s.train) <= set(l.train) <= set(f.train)
        assert s.test == f.test
    assert specs(cfg_of("imagefolder", {**folder["config"], "max_train_per_class": 1}))["anseriformes"].n_train == 3


def test_imagefolder_max_test_per_class_caps_the_test_split_only(folder):
    full = members(cfg_of("imagefolder", {**folder["config"], "test_fraction": 0.6}), "anseriformes")
    capped = members(cfg_of("imagefolder", {**folder["config"], "test_fraction": 0.6, "max_test_per_class": 1}),
                     "anseriformes")
    assert all(len(f.test) >= 2 for f in full)  # the cap bites
    for c, f in zip(capped, full):
        assert len(c.test) == 1 and set(c.test) <= set(f.test) and c.train == f.train
    both = members(cfg_of("imagefolder", {**folder["config"], "test_fraction": 0.6, "max_test_per_class": 1,
                                          "max_train_per_class": 1}), "anseriformes")
    assert [m.test for m in both] == [c.test for c in capped]  # the two subsamples draw from separate streams


def test_imagefolder_split_file(tmp_path):
    fx = D.write_imagefolder(tmp_path / "if", split_file=True)
    cfg = cfg_of("imagefolder", fx["config"])
    for m in members(cfg, "anseriformes"):
        assert [Path(f).stem for f in m.test] == ["img04"] and len(m.train) == 4
    assert (specs(cfg)["anseriformes"].n_train, specs(cfg)["anseriformes"].n_test) == (12, 3)


def test_class_folder_missing_is_an_error_naming_class_file_and_folder(tmp_path):
    fx = D.write_imagefolder(tmp_path / "if", inject={"missing_folder"})
    cfg = cfg_of("imagefolder", fx["config"])
    with pytest.raises(TaskDataError, match=r"taxonomy\.csv, line 9: class 'ghost' has no folder .*images/ghost"):
        quiet(plan_tasks, cfg)
    assert_split_fails(cfg, "anseriformes", tmp_path, TaskDataError, "ghost")


def test_class_with_zero_images_is_dropped_and_counted(tmp_path):
    fx = D.write_imagefolder(tmp_path / "if", inject={"empty_class"})
    cfg = cfg_of("imagefolder", fx["config"])
    with pytest.warns(DataWarning, match=r"class 'empty' left out of task 'anseriformes': 0 image"):
        plan = {s.name: s for s in plan_tasks(cfg)}
    assert plan["anseriformes"].classes == ("mallard", "teal", "wigeon")
    assert dict(plan["anseriformes"].notes)["dropped_classes"] == 1
    assert dict(plan["passeriformes"].notes)["dropped_classes"] == 0


def test_folder_not_in_the_taxonomy_is_unused_and_counted(tmp_path):
    fx = D.write_imagefolder(tmp_path / "if", inject={"extra_folder"})
    cfg = cfg_of("imagefolder", fx["config"])
    with pytest.warns(DataWarning, match=r"folder .*stray is not a class"):
        plan = plan_tasks(cfg)
    assert all("stray" not in s.classes for s in plan)
    assert quiet(plan_report, cfg)["unused_folders"] == 1


def test_non_image_files_are_counted_and_hidden_files_ignored(tmp_path):
    fx = D.write_imagefolder(tmp_path / "if", inject={"non_image"})
    cfg = cfg_of("imagefolder", fx["config"])
    with pytest.warns(DataWarning, match=r"1 non-image entry in .*mallard not used: notes\.txt$"):
        plan = {s.name: s for s in plan_tasks(cfg)}
    assert dict(plan["anseriformes"].notes)["non_image_files"] == 1  # .DS_Store is hidden: not counted
    assert dict(plan["passeriformes"].notes)["non_image_files"] == 0
    assert plan["anseriformes"].n_train + plan["anseriformes"].n_test == 15


def test_split_file_listing_a_missing_path_names_file_line_and_path(tmp_path):
    fx = D.write_imagefolder(tmp_path / "if", inject={"split_missing"})
    cfg = cfg_of("imagefolder", fx["config"])
    match = r"split\.csv, line 5: 'crow/nope\.jpg' does not exist"
    with pytest.raises(TaskDataError, match=match):
        quiet(plan_tasks, cfg)
    assert_split_fails(cfg, "passeriformes", tmp_path, TaskDataError, match)


def test_split_file_with_a_bad_split_value_names_the_line(tmp_path):
    fx = D.write_imagefolder(tmp_path / "if", inject={"split_bad_value"})
    with pytest.raises(TaskDataError, match=r"split\.csv, line 4: split must be 'train' or 'test', got 'validation'"):
        quiet(plan_tasks, cfg_of("imagefolder", fx["config"]))


def test_images_missing_from_the_split_file_are_left_out_and_counted(tmp_path):
    fx = D.write_imagefolder(tmp_path / "if", inject={"split_unlisted"})
    cfg = cfg_of("imagefolder", fx["config"])
    with pytest.warns(DataWarning, match=r"1 image\(s\) of class 'wren' are not in .*split\.csv"):
        plan = {s.name: s for s in plan_tasks(cfg)}
    assert dict(plan["passeriformes"].notes)["unlisted_images"] == 1
    assert dict(plan["anseriformes"].notes)["unlisted_images"] == 0
    wren = [m for m in members(cfg, "passeriformes") if m.name == "wren"][0]
    assert [Path(f).stem for f in wren.train] == ["img01", "img02", "img03"]


def test_taxonomy_row_with_an_empty_level_names_file_line_and_class(tmp_path):
    fx = D.write_imagefolder(tmp_path / "if", inject={"empty_level"})
    cfg = cfg_of("imagefolder", fx["config"])
    match = r"taxonomy\.csv, line 8: class 'owl' has an empty 'order' value"
    with pytest.raises(TaskDataError, match=match):
        quiet(plan_tasks, cfg)
    assert_split_fails(cfg, "anseriformes", tmp_path, TaskDataError, match)


def test_unsafe_group_values_are_slugged_and_kept_as_the_group(tmp_path):
    classes = {"a": ("Owls & Nightjars!", "x"), "b": ("Owls & Nightjars!", "x"),
               "c": ("../Hawks/Eagles", "y"), "d": ("../Hawks/Eagles", "y")}
    fx = D.write_imagefolder(tmp_path / "if", classes=classes, images_per_class=2)
    plan = specs(cfg_of("imagefolder", fx["config"]))
    assert list(plan) == ["hawks-eagles", "owls-nightjars"]
    assert dict(plan["owls-nightjars"].notes)["group"] == "Owls & Nightjars!"
    assert slugify("  Déjà Vu__ ") == "d-j-vu" and slugify("A.b_c-d") == "a.b_c-d"


def test_colliding_or_empty_slugs_are_errors_naming_the_values(tmp_path):
    classes = {"a": ("Owls & Nightjars", "x"), "b": ("Owls & Nightjars", "x"),
               "c": ("owls nightjars", "y"), "d": ("owls nightjars", "y")}
    fx = D.write_imagefolder(tmp_path / "one", classes=classes, images_per_class=2)
    cfg = cfg_of("imagefolder", fx["config"])
    with pytest.raises(TaskDataError, match=r"taxonomy\.csv: order 'Owls & Nightjars' and order 'owls nightjars' "
                                            r"both give the task name 'owls-nightjars'"):
        quiet(plan_tasks, cfg)
    assert_split_fails(cfg, "owls-nightjars", tmp_path, TaskDataError, "both give the task name")
    fx = D.write_imagefolder(tmp_path / "two", classes={"a": ("???", "x"), "b": ("???", "x")}, images_per_class=2)
    with pytest.raises(TaskDataError, match=r"order '\?\?\?' gives an empty task name"):
        quiet(plan_tasks, cfg_of("imagefolder", fx["config"]))


def test_corrupt_and_truncated_images_are_skipped_and_counted(tmp_path):
    fx = D.write_imagefolder(tmp_path / "if", inject={"corrupt", "truncated"})
    cfg = cfg_of("imagefolder", fx["config"])
    planned = specs(cfg)["passeriformes"]
    with pytest.warns(DataWarning) as caught:
        data = build_task(cfg, "passeriformes")
    messages = " ".join(str(w.message) for w in caught)
    assert str(fx["bad"]["corrupt"]) in messages and str(fx["bad"]["truncated"]) in messages
    assert data.attrs["skipped_images"] == 2
    assert len(data.labels) == planned.n_train + planned.n_test - 2
    assert data.attrs["n_train"] + data.attrs["n_test"] == len(data.labels)
    out = tmp_path / "results" / "tasks" / "passeriformes.h5"
    quiet(split_task, cfg, "passeriformes", str(out))
    stored, attrs = read_task(out)
    assert attrs["provenance"]["skipped_images"] == 2 and np.array_equal(stored.images, data.images)


def test_a_class_left_without_test_images_is_an_error_naming_task_and_class(tmp_path):
    fx = D.write_imagefolder(tmp_path / "if", split_file=True)
    cfg = cfg_of("imagefolder", fx["config"])
    test_file = [m for m in members(cfg, "anseriformes") if m.name == "teal"][0].test[0]
    D.corrupt(Path(test_file))
    match = r"task 'anseriformes': class 'teal' has no decodable test image"
    with pytest.raises(TaskDataError, match=match):
        quiet(build_task, cfg, "anseriformes")
    assert_split_fails(cfg, "anseriformes", tmp_path, TaskDataError, match)


@pytest.mark.parametrize(
    "change,match",
    [
        ({"root": None}, r"data\.imagefolder\.root: required"),
        ({"root": "/nonexistent/taskspace/images"}, r"data\.imagefolder\.root: /nonexistent.* does not exist"),
        ({"root": "TAXONOMY"}, r"data\.imagefolder\.root: .*taxonomy\.csv is not a directory"),
        ({"taxonomy": None}, r"data\.imagefolder\.taxonomy: required"),
        ({"level": "genus"}, r"data\.imagefolder\.level: 'genus' is not a level of .*taxonomy\.csv.*order"),
        ({"refine": {"Passeriformes": "tribe"}}, r"data\.imagefolder\.refine\.Passeriformes: 'tribe' is not a level"),
        ({"refine": {"Passeriforms": "family"}}, r"data\.imagefolder\.refine\.Passeriforms: no class .* has order"),
        ({"min_classes": 1}, r"data\.imagefolder\.min_classes: 1 is less than the minimum of 2"),
        ({"max_classes": 2, "min_classes": 3}, r"data\.imagefolder\.max_classes: 2 is below min_classes=3"),
        ({"test_fraction": 1.0}, r"data\.imagefolder\.test_fraction: 1\.0 is greater than or equal to the maximum"),
        ({"rooot": "x"}, r"data\.imagefolder\.rooot: unknown key 'rooot' \(did you mean 'root'\?\)"),
        ({"split": "nope.csv"}, r"data\.imagefolder\.split: nope\.csv is not a file"),
    ],
)
def test_imagefolder_config_errors_name_the_key(folder, change, match):
    section = {**folder["config"], **change}
    if section.get("root") == "TAXONOMY":
        section["root"] = folder["config"]["taxonomy"]
    with pytest.raises(ConfigError, match=match):
        quiet(plan_tasks, cfg_of("imagefolder", section))


def test_max_classes_skips_large_tasks(folder):
    cfg = cfg_of("imagefolder", {**folder["config"], "max_classes": 2, "level": "family"})
    with pytest.warns(DataWarning, match=r"task 'anatidae'.*more than max_classes=2"):
        assert [s.name for s in plan_tasks(cfg)] == ["corvidae"]


# ------------------------------------------------------------------------------------------------------------- cub


@pytest.fixture
def cub(tmp_path):
    return D.write_cub(tmp_path / "cub")


def test_cub_plan_uses_the_official_split_and_refines_passeriformes(cub):
    cfg = cfg_of("cub200", cub["config"])
    plan = specs(cfg)
    assert list(plan) == ["corvidae", "icteridae", "procellariiformes"]
    assert plan["procellariiformes"].classes == (
        "001.Black_footed_Albatross", "002.Laysan_Albatross", "003.Sooty_Albatross"
    )
    assert (plan["icteridae"].n_train, plan["icteridae"].n_test) == (4, 4)  # 4 images per class, 2 flagged train
    assert plan["icteridae"].taxonomy == (("order", "Passeriformes"), ("family", "Icteridae"))
    assert plan["procellariiformes"].taxonomy == (("order", "Procellariiformes"),)
    for m in members(cfg, "icteridae"):
        assert m.train == [str(p) for p in cub["paths"][m.name]["train"]]
        assert m.test == [str(p) for p in cub["paths"][m.name]["test"]]
    skipped = {s["task"]: s["reason"] for s in quiet(plan_report, cfg)["skipped_tasks"]}
    assert set(skipped) == {"piciformes", "sittidae"}
    unrefined = specs(cfg_of("cub200", {**cub["config"], "refine": {}}))
    assert list(unrefined) == ["passeriformes", "procellariiformes"]
    assert len(unrefined["passeriformes"].classes) == 5


def test_cub_build_known_colours(cub):
    cfg = cfg_of("cub200", cub["config"])
    data = quiet(build_task, cfg, "corvidae")
    assert data.class_names == ["029.American_Crow", "030.Fish_Crow"] and data.images.shape == (8, 16, 16, 3)
    assert_known_colours(cfg, "corvidae", cub["expected"], data)


@pytest.mark.parametrize(
    "inject,match",
    [
        ("split_unknown_id", r"train_test_split\.txt, line 3: image id 99999 is not in images\.txt"),
        ("label_unknown_id", r"image_class_labels\.txt, line 3: image id 99999 is not in images\.txt"),
        ("missing_file", r"images\.txt, line 1: image id 1: .*Black_footed_Albatross_0000_1\.jpg does not exist"),
        ("empty_level", r"cub_taxonomy\.csv, line 2: class '001\.Black_footed_Albatross' has an empty 'order' value"),
    ],
)
def test_cub_bad_input_names_file_line_and_id(tmp_path, inject, match):
    fx = D.write_cub(tmp_path / "cub", inject={inject})
    cfg = cfg_of("cub200", fx["config"])
    with pytest.raises(TaskDataError, match=match):
        quiet(plan_tasks, cfg)
    assert_split_fails(cfg, "corvidae", tmp_path, TaskDataError, match)


def test_cub_class_missing_from_the_taxonomy_is_unused_and_counted(tmp_path):
    fx = D.write_cub(tmp_path / "cub", inject={"unlisted_class"})
    cfg = cfg_of("cub200", fx["config"])
    with pytest.warns(DataWarning, match=r"class '094\.White_breasted_Nuthatch' .* is not in the taxonomy"):
        plan_tasks(cfg)
    assert quiet(plan_report, cfg)["unused_classes"] == 1


def test_cub_corrupt_image_skipped_but_losing_all_test_images_is_an_error(tmp_path):
    fx = D.write_cub(tmp_path / "cub", inject={"corrupt"})
    cfg = cfg_of("cub200", fx["config"])
    with pytest.warns(DataWarning, match="American_Crow_0000"):
        data = build_task(cfg, "corvidae")
    assert data.attrs["skipped_images"] == 1 and int(data.is_train.sum()) == 3
    fx = D.write_cub(tmp_path / "cub2", inject={"corrupt_test"})
    cfg = cfg_of("cub200", fx["config"])
    match = r"task 'corvidae': class '030\.Fish_Crow' has no decodable test image"
    assert_split_fails(cfg, "corvidae", tmp_path, TaskDataError, match)


def test_cub_root_must_be_the_cub_folder(cub):
    with pytest.raises(ConfigError, match=r"data\.cub200\.root: .* has no images\.txt"):
        quiet(plan_tasks, cfg_of("cub200", {**cub["config"], "root": str(cub["root"] / "images")}))
    with pytest.raises(ConfigError, match=r"data\.cub200\.taxonomy: required"):
        quiet(plan_tasks, cfg_of("cub200", {**cub["config"], "taxonomy": None}))


# ------------------------------------------------------------------------------------------------------------ inat


@pytest.fixture
def inat(tmp_path):
    return D.write_inat(tmp_path / "inat")


def test_inat_plan_takes_train_and_test_from_their_files_and_taxonomy_from_categories(inat):
    cfg = cfg_of("inat2018", inat["config"])
    with pytest.warns(DataWarning, match=r"task 'squamata'.*fewer than min_classes"):
        plan = {s.name: s for s in plan_tasks(cfg)}
    assert list(plan) == ["anura", "asterales", "lepidoptera", "odonata"]
    lep = plan["lepidoptera"]
    assert lep.classes == ("Lepigenus0 species0", "Lepigenus0 species1")
    assert (lep.n_train, lep.n_test) == (4, 2)
    assert lep.taxonomy == (("kingdom", "Animalia"), ("phylum", "Arthropoda"), ("class", "Insecta"),
                            ("order", "Lepidoptera"))
    for m in members(cfg, "lepidoptera"):
        assert [Path(f).stem for f in m.train] == ["train0", "train1"]
        assert all(Path(f).stem.startswith("test") for f in m.test)
    assert_known_colours(cfg, "lepidoptera", inat["expected"])


def test_inat_taxonomy_from_a_separate_categories_file(tmp_path, inat):
    fx = D.write_inat(tmp_path / "sep", inject={"separate_categories"})
    assert names(cfg_of("inat2018", fx["config"])) == names(cfg_of("inat2018", inat["config"]))
    assert specs(cfg_of("inat2018", {**fx["config"], "level": "genus"}))  # genera of two species: tasks exist


@pytest.mark.parametrize(
    "inject,match",
    [
        ("unknown_image_id", r"val2018\.json: annotations\[\d+\]: image_id 999999 is not in the file's images"),
        ("missing_level", r"train2018\.json: category id 0 \('Lepigenus0 species0'\) has no 'order' field"),
        ("empty_level", r"train2018\.json, category id 0: class 'Lepigenus0 species0' has an empty 'order' value"),
    ],
)
def test_inat_bad_input_names_the_json_file(tmp_path, inject, match):
    fx = D.write_inat(tmp_path / "inat", inject={inject})
    cfg = cfg_of("inat2018", fx["config"])
    with pytest.raises(TaskDataError, match=match):
        quiet(plan_tasks, cfg)
    assert_split_fails(cfg, "odonata", tmp_path, TaskDataError, match)


def test_inat_unlabelled_images_are_counted(tmp_path):
    fx = D.write_inat(tmp_path / "inat", inject={"unlabelled"})
    cfg = cfg_of("inat2018", fx["config"])
    with pytest.warns(DataWarning, match=r"1 image\(s\) of .*train2018\.json have no annotation"):
        plan_tasks(cfg)
    assert quiet(plan_report, cfg)["unlabelled_images"] == 1


def test_inat_config_errors(inat):
    with pytest.raises(ConfigError, match=r"data\.inat2018\.level: 'species' is not one of"):
        quiet(plan_tasks, cfg_of("inat2018", {**inat["config"], "level": "species"}))
    with pytest.raises(ConfigError, match=r"data\.inat2018\.test_annotations: .*test2018\.json is not a file"):
        quiet(plan_tasks, cfg_of("inat2018", {**inat["config"], "test_annotations": "test2018.json"}))


# --------------------------------------------------------------------------------------------------- stanford cars


@pytest.fixture
def cars(tmp_path):
    return D.write_stanford_cars(tmp_path / "cars")


def test_fixture_is_the_layout_torchvision_reads(cars):
    from torchvision.datasets import StanfordCars

    train, test = StanfordCars(str(cars["root"]), split="train"), StanfordCars(str(cars["root"]), split="test")
    assert train.classes == list(D.CAR_MODELS) and len(train) == 18 and len(test) == 9
    assert train[0][1] == 0 and test[len(test) - 1][1] == 8


def test_stanford_cars_tasks_are_makes_with_two_or_more_models(cars):
    cfg = cfg_of("stanford_cars", cars["config"])
    with pytest.warns(DataWarning, match=r"task 'am-general' \(manufacturer 'AM General'\) skipped"):
        plan = {s.name: s for s in plan_tasks(cfg)}
    assert list(plan) == ["aston-martin", "bmw", "land-rover"]
    assert dict(plan["aston-martin"].notes)["group"] == "Aston Martin"
    assert plan["bmw"].classes == ("BMW 1 Series Convertible 2012", "BMW M3 Coupe 2012", "BMW X5 SUV 2007")
    assert (plan["bmw"].n_train, plan["bmw"].n_test) == (6, 3)
    assert {s["task"] for s in quiet(plan_report, cfg)["skipped_tasks"]} == {"am-general", "tesla"}
    assert_known_colours(cfg, "land-rover", cars["expected"])


def test_make_of_class_names():
    assert MULTI_WORD_MAKES == ("AM General", "Aston Martin", "Land Rover")
    assert make_of("Land Rover LR2 SUV 2012") == "Land Rover"
    assert make_of("Mercedes-Benz C-Class Sedan 2012") == "Mercedes-Benz"
    assert make_of("Ram C/V Cargo Van Minivan 2012") == "Ram"
    assert make_of("AM General Hummer SUV 2000") == "AM General"


def test_stanford_cars_taxonomy_table_overrides_makes(cars, tmp_path):
    table = tmp_path / "makes.csv"
    table.write_text("class,manufacturer\nTesla Model S Sedan 2012,Land Rover\n")
    plan = specs(cfg_of("stanford_cars", {**cars["config"], "taxonomy": str(table)}))
    assert "Tesla Model S Sedan 2012" in plan["land-rover"].classes and len(plan["land-rover"].classes) == 3
    table.write_text("class,manufacturer\nTesla Model X 2016,Tesla\n")
    with pytest.raises(TaskDataError, match=r"makes\.csv, line 2: class 'Tesla Model X 2016' is not in .*cars_meta"):
        quiet(plan_tasks, cfg_of("stanford_cars", {**cars["config"], "taxonomy": str(table)}))


@pytest.mark.parametrize(
    "inject,match",
    [
        ("bad_class", r"cars_train_annos\.mat: annotation 19 \(00001\.jpg\): class 999 is not in 1\.\.9"),
        ("missing_image", r"cars_test_annos_withlabels\.mat: annotation 1: .*cars_test/00001\.jpg does not exist"),
    ],
)
def test_stanford_cars_bad_input(tmp_path, inject, match):
    fx = D.write_stanford_cars(tmp_path / "cars", inject={inject})
    cfg = cfg_of("stanford_cars", fx["config"])
    with pytest.raises(TaskDataError, match=match):
        quiet(plan_tasks, cfg)
    assert_split_fails(cfg, "bmw", tmp_path, TaskDataError, match)


def test_stanford_cars_root_without_the_layout(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"data\.stanford_cars\.root: .*cars_meta\.mat does not exist"):
        quiet(plan_tasks, cfg_of("stanford_cars", {"root": str(tmp_path / "empty")}))


# -------------------------------------------------------------------------------------------------------- combined


@pytest.fixture(scope="module")
def cub_inat(tmp_path_factory):
    return D.write_cub_inat(tmp_path_factory.mktemp("cub_inat"))


def test_combined_plans_the_50_tasks_of_the_published_cub_inat_meta_task(cub_inat):
    plan = specs(cub_inat["config"])
    assert len(plan) == 50 and sorted(plan) == cub_inat["tasks"]
    assert len([n for n in plan if n.startswith("cub-")]) == 25
    for name, spec in plan.items():
        published = cub_inat["reference"][name]  # e.g. "[inat] lepidoptera (insecta)"
        notes = dict(spec.notes)
        assert spec.role == "task" and spec.source == "combined" and len(spec.classes) == 2
        assert published.startswith(f"[{notes['entry']}] {notes['group'].lower()} (")
        if notes["entry"] == "inat":
            assert dict(spec.taxonomy)["class"].lower() == published.split("(")[1][:-1]
            assert notes["level"] == "order" and notes["entry_source"] == "inat2018"
        else:
            assert notes["level"] == ("order" if name.endswith("iformes") else "family")
            assert all(c.startswith("cub/") for c in spec.classes)
    assert plan["cub-icteridae"].taxonomy == (
        ("collection", "cub"), ("order", "Passeriformes"), ("family", "Icteridae"))
    assert plan["inat-lepidoptera"].taxonomy[-2:] == (("class", "Insecta"), ("order", "Lepidoptera"))


def test_combined_build_dispatches_to_each_entry(cub_inat):
    cfg = cub_inat["config"]
    expected = {**cub_inat["cub"]["expected"], **cub_inat["inat"]["expected"]}
    for task in ("cub-icteridae", "inat-lepidoptera"):
        data = quiet(build_task, cfg, task)
        assert data.class_names == list(specs(cfg)[task].classes) and data.images.shape[1:] == (16, 16, 3)
        prefix, _, sub = task.partition("-")
        entry = cub_inat[prefix]
        sub_cfg = cfg_of({"cub": "cub200", "inat": "inat2018"}[prefix], entry["config"])
        assert_known_colours(sub_cfg, sub, expected, data)
        assert data.attrs["entry"] == prefix


def test_a_task_config_holds_only_its_own_entry(cub_inat):
    cfg = cub_inat["config"]
    own = task_config(cfg, "cub-icteridae")
    assert list(own["combined"]) == ["cub"] and "tasks" not in own
    edited = copy.deepcopy(cfg)
    edited["combined"]["inat"]["max_train_per_class"] = 1
    assert task_config(edited, "cub-icteridae") == own
    assert task_config(edited, "inat-lepidoptera") != task_config(cfg, "inat-lepidoptera")
    # the task's own config plans and builds it exactly as the full config does
    assert specs(own)["cub-icteridae"].classes == specs(cfg)["cub-icteridae"].classes
    alone, full = quiet(build_task, own, "cub-icteridae"), quiet(build_task, cfg, "cub-icteridae")
    assert np.array_equal(alone.images, full.images) and np.array_equal(alone.is_train, full.is_train)


def test_task_config_of_a_single_source_drops_other_sources_and_other_overrides(folder):
    cfg = cfg_of("imagefolder", folder["config"], cub200={"root": "x"}, synthetic={"overrides": {}})
    assert task_config(cfg, "anseriformes") == {k: v for k, v in cfg.items() if k not in ("tasks", "cub200",
                                                                                            "synthetic")}
    syn = {"source": "synthetic", "seed": 0, "tasks": ["a"], "imagefolder": {},
           "synthetic": {"overrides": {"a": {"n_classes": 3}, "b": {"n_classes": 4}}}}
    expected = {"source": "synthetic", "seed": 0, "synthetic": {"overrides": {"a": {"n_classes": 3}}}}
    assert task_config(syn, "a") == expected


def test_duplicate_class_names_across_entries_are_namespaced_and_counted(folder):
    section = {"source": "imagefolder", **folder["config"]}
    cfg = {"source": "combined", "seed": 0, "resolution": 16, "combined": {"one": section, "two": dict(section)}}
    with pytest.warns(DataWarning) as caught:
        plan = {s.name: s for s in plan_tasks(cfg)}
    shared = [str(w.message) for w in caught if "also" in str(w.message)]
    # one warning per pair of entries, naming every shared class
    assert shared == ["data.combined.one: 6 classes 'crow', 'jay', 'mallard', 'teal', 'wigeon', 'wren' are also "
                      "classes of data.combined.two (kept apart as one/<class>)",
                      "data.combined.two: 6 classes 'crow', 'jay', 'mallard', 'teal', 'wigeon', 'wren' are also "
                      "classes of data.combined.one (kept apart as two/<class>)"]
    assert sorted(plan) == ["one-anseriformes", "one-passeriformes", "two-anseriformes", "two-passeriformes"]
    assert plan["one-anseriformes"].classes == ("one/mallard", "one/teal", "one/wigeon")
    assert plan["two-anseriformes"].classes == ("two/mallard", "two/teal", "two/wigeon")
    assert all(dict(s.notes)["classes_in_other_sources"] == 3 for s in plan.values())
    data = quiet(build_task, cfg, "two-passeriformes")
    assert data.class_names == ["two/crow", "two/jay", "two/wren"]


@pytest.mark.parametrize(
    "combined,match",
    [
        ({}, r"data\.combined: must be a non-empty mapping"),
        ({"Cub": {"source": "cub200"}}, r"data\.combined\.Cub: a prefix must match"),
        ({"cub-1": {"source": "cub200"}}, r"data\.combined\.cub-1: a prefix must match"),
        ({"cub": {"root": "x"}}, r"data\.combined\.cub\.source: required"),
        ({"cub": {"source": "synthetic"}}, r"data\.combined\.cub\.source: 'synthetic' cannot be combined"),
        ({"cub": {"source": "birds"}}, r"data\.combined\.cub\.source: unknown data source 'birds'"),
        ({"cub": {"source": "cub200", "rooot": "x"}}, r"data\.combined\.cub\.rooot: unknown key"),
        ({"cub": {"source": "cub200"}}, r"data\.combined\.cub\.root: required"),
        ({"cub": {"source": "cub200", "root": "/nonexistent/x"}}, r"data\.combined\.cub\.root: .* does not exist"),
        ({"cub": {"source": "cub200", "min_images": 0}}, r"data\.combined\.cub\.min_images: 0 is less than the min"),
    ],
)
def test_combined_config_errors_name_the_key_path(combined, match):
    with pytest.raises(ConfigError, match=match):
        quiet(plan_tasks, {"source": "combined", "seed": 0, "resolution": 16, "combined": combined})


# ---------------------------------------------------------------------------------------------------------- schema


def test_schema_defaults_match_each_source():
    from taskspace.plan import validate_config
    from taskspace.data.cub200 import Cub200Settings
    from taskspace.data.imagefolder import ImageFolderSettings
    from taskspace.data.inat2018 import INat2018Settings
    from taskspace.data.stanford_cars import StanfordCarsSettings
    from taskspace.data.synthetic import SyntheticSettings

    data = validate_config({})["data"]
    for settings in (ImageFolderSettings, Cub200Settings, INat2018Settings, StanfordCarsSettings, SyntheticSettings):
        name = settings.SECTION.rsplit(".", 1)[1]
        assert data[name] == settings.from_config().as_dict(), name
    assert data["combined"] == {}


def test_schema_accepts_combined_entries_and_checks_their_prefix_and_source(cub_inat):
    from taskspace.plan import validate_config

    cfg = validate_config({"data": copy.deepcopy(cub_inat["config"])})
    assert sorted(s.name for s in quiet(plan_tasks, cfg["data"])) == cub_inat["tasks"]
    with pytest.raises(ConfigError, match=r"data\.combined"):
        validate_config({"data": {"source": "combined", "combined": {"CUB": {"source": "cub200"}}}})
    with pytest.raises(ConfigError, match=r"data\.combined\.cub"):
        validate_config({"data": {"source": "combined", "combined": {"cub": {"source": "synthetic"}}}})
    with pytest.raises(ConfigError, match=r"data\.cub200\.rooot: unknown key"):
        validate_config({"data": {"cub200": {"rooot": "x"}}})


# ------------------------------------------------------------------------------------------------------ task table


def test_task_table_has_the_group_and_every_count(tmp_path):
    fx = D.write_imagefolder(tmp_path / "if", inject={"empty_class", "non_image", "corrupt"})
    cfg = cfg_of("imagefolder", fx["config"])
    files = {}
    for name in names(cfg):
        files[name] = str(tmp_path / "results" / "tasks" / f"{name}.h5")
        quiet(split_task, cfg, name, files[name])
    quiet(tabulate_tasks, cfg, files, str(tmp_path / "tasks.parquet"))
    table = pd.read_parquet(tmp_path / "tasks.parquet").set_index("task")
    assert table.loc["anseriformes", "group"] == "Anseriformes" and table.loc["anseriformes", "order"] == "Anseriformes"
    counts = ["dropped_classes", "non_image_files", "unlisted_images", "classes_in_other_sources", "skipped_images"]
    assert table.loc["anseriformes", counts].tolist() == [1, 1, 0, 0, 0]
    assert table.loc["passeriformes", counts].tolist() == [0, 0, 0, 0, 1]  # crow/img00 is corrupt
    assert table.loc["passeriformes", "n_train"] + table.loc["passeriformes", "n_test"] == 15 - 1
    plan = read_provenance(tmp_path / "tasks.parquet")["plan"]
    assert plan["skipped_tasks"] == [{"task": "strigiformes", "reason": "1 class(es), fewer than min_classes=2"}]
    assert plan["unused_folders"] == 0


def test_split_task_logs_the_data_warnings(tmp_path):
    fx = D.write_imagefolder(tmp_path / "if", inject={"corrupt"})
    cfg = cfg_of("imagefolder", fx["config"])
    log = tmp_path / "split.log"
    split_task(cfg, "passeriformes", str(tmp_path / "p.h5"), str(log))
    text = log.read_text()
    assert "image skipped" in text and str(fx["bad"]["corrupt"]) in text and "1 skipped" in text


def test_planning_imports_no_image_library(folder, cub):
    import subprocess
    import sys

    code = (
        "import sys, warnings; warnings.simplefilter('ignore')\n"
        "from taskspace.data import plan_tasks\n"
        f"plan_tasks({cfg_of('imagefolder', folder['config'])!r})\n"
        f"plan_tasks({cfg_of('cub200', cub['config'])!r})\n"
        "print(sorted(m for m in ('PIL', 'scipy', 'torch') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
