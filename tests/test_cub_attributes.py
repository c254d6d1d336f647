"""cub200 with attribute labels (CUB-bp, Wallace et al. 2021): the species' tasks with breast-pattern classes, on a
fixture of CUB's attribute files in their real format whose per-image breast patterns are known (tests/datasets.py,
CUB_BREAST)."""

from __future__ import annotations

import shutil
import warnings
from collections import Counter

import numpy as np
import pandas as pd
import pytest

import datasets as D
from taskspace.plan import validate_config
from taskspace.data import build_task, get_source, plan_report, plan_tasks
from taskspace.data import cub200
from taskspace.data.grouping import DataWarning
from taskspace.errors import ConfigError, TaskDataError
from taskspace.results import read_provenance
from taskspace.stages import split_task, tabulate_tasks

pytestmark = pytest.mark.filterwarnings("ignore::taskspace.data.grouping.DataWarning")

BP = "has_breast_pattern"
SKIPPED = "1 class(es), fewer than min_classes=2"


def cfg_of(section: dict) -> dict:
    return {"source": "cub200", "seed": 0, "resolution": 16, "tasks": "all", "cub200": section}


def bp(fixture: dict, **keys) -> dict:
    """The fixture's data config with breast-pattern labels (and ``keys``)."""
    return cfg_of({**fixture["config"], "attribute": BP, **keys})


def quiet(fn, *args):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        return fn(*args)


def specs(cfg: dict) -> dict:
    return {s.name: s for s in quiet(plan_tasks, cfg)}


def sizes(cfg: dict) -> dict:
    """{task: {class: (n train, n test)}} of the planned members."""
    plan = quiet(get_source("cub200").grouped, cfg)
    return {task: {m.name: (len(m.train), len(m.test)) for m in members} for task, members in plan.members.items()}


@pytest.fixture
def cub(tmp_path):
    return D.write_cub(tmp_path / "cub", attributes=True)


def test_tasks_keep_the_species_grouping_and_their_classes_are_the_breast_patterns(cub):
    cfg = bp(cub)
    plan = specs(cfg)
    # piciformes has one species (skipped with species labels) but two patterns; corvidae and sittidae one pattern
    assert list(specs(cfg_of(cub["config"]))) == ["corvidae", "icteridae", "procellariiformes"]
    assert list(plan) == ["icteridae", "piciformes", "procellariiformes"]
    assert sizes(cfg) == {
        "procellariiformes": {"solid": (2, 4), "spotted": (2, 1)},
        "icteridae": {"solid": (2, 1), "striped": (1, 2)},
        "piciformes": {"solid": (1, 1), "spotted": (1, 1)},
    }
    assert plan["procellariiformes"].classes == ("solid", "spotted")
    assert [(plan[t].n_train, plan[t].n_test) for t in plan] == [(3, 3), (2, 2), (4, 5)]
    assert plan["icteridae"].taxonomy == (("order", "Passeriformes"), ("family", "Icteridae"))
    assert plan["procellariiformes"].taxonomy == (("order", "Procellariiformes"),)
    notes = {t: dict(s.notes) for t, s in plan.items()}
    # albatrosses: Laysan image 2 marked only "not visible" and Sooty image 3 unmarked; Sooty image 2 has two patterns
    assert notes["procellariiformes"] == {
        "group": "Procellariiformes", "level": "order", "attribute": BP,
        "dropped_classes": 0, "no_attribute_value": 2, "several_attribute_values": 1,
    }
    # blackbirds: spotted (1 image) and multi-colored (1 test image) are dropped by min_images
    assert (notes["icteridae"]["dropped_classes"], notes["icteridae"]["no_attribute_value"],
            notes["icteridae"]["several_attribute_values"]) == (2, 0, 0)
    report = quiet(plan_report, cfg)
    assert {s["task"]: s["reason"] for s in report["skipped_tasks"]} == {"corvidae": SKIPPED, "sittidae": SKIPPED}
    assert (report["no_attribute_value"], report["several_attribute_values"]) == (2, 2)  # + the nuthatch's two


def test_every_planned_image_has_its_known_pattern_and_split(cub):
    cfg = bp(cub)
    train = {str(p) for split in cub["paths"].values() for p in split["train"]}
    plan = quiet(get_source("cub200").grouped, cfg)
    seen = set()
    for members in plan.members.values():
        for m in members:
            for files, is_train in ((m.train, True), (m.test, False)):
                for file in files:
                    assert D.marked_values(cub["breast"][file]) == (m.name,), file
                    assert (file in train) == is_train
                    seen.add(file)
    # the first line of image 1's pattern carries an extra field, like some lines of the real file, and still counts
    lines = cub["attribute_files"]["labels"].read_text().splitlines()
    assert next(line for line in lines if line.startswith("1 55 ")).split()[:5] == ["1", "55", "1", "4", "0"]
    assert str(cub["paths"]["001.Black_footed_Albatross"]["train"][0]) in seen
    assert sum(len(line.split()) > 5 for line in lines) > 10


def test_warnings_name_the_left_out_images_per_task(cub):
    with pytest.warns(DataWarning) as caught:
        plan_tasks(bp(cub))
    messages = [str(w.message) for w in caught]
    assert ("data.cub200: task 'procellariiformes': 3 image(s) left out: 2 with no has_breast_pattern value marked "
            "present at certainty >= 2 (guessing), 1 with several") in messages
    assert "data.cub200: class 'multi-colored' left out of task 'icteridae': 1 image(s), fewer than min_images=2" in (
        messages)


@pytest.mark.parametrize("task", ["procellariiformes", "icteridae", "piciformes"])
def test_built_labels_are_each_images_known_breast_pattern(cub, task):
    cfg = bp(cub)
    data = quiet(build_task, cfg, task)
    members = quiet(get_source("cub200").grouped, cfg).members[task]
    files = [f for m in members for f in m.train] + [f for m in members for f in m.test]
    assert len(files) == len(data.labels) and data.class_names == [m.name for m in members]
    train = {str(p) for split in cub["paths"].values() for p in split["train"]}
    for image, label, is_train, file in zip(data.images, data.labels, data.is_train, files):
        assert D.marked_values(cub["breast"][file]) == (data.class_names[label],), file
        assert bool(is_train) == (file in train)
        colour, tolerance = cub["expected"][file]
        assert np.abs(image.astype(int) - np.array(colour)).max() <= tolerance, file
    # the same multiset from the fixture alone: (pattern, split) of the task's images with one pattern of its classes
    spec = specs(cfg)[task]
    level, value = dict(spec.notes)["level"], dict(spec.notes)["group"]
    species = [c for c, order, family in D.CUB_CLASSES if {"order": order, "family": family}[level] == value]
    expected = Counter()
    for cls in species:
        for split in ("train", "test"):
            for path in cub["paths"][cls][split]:
                marked = D.marked_values(cub["breast"][str(path)])
                if len(marked) == 1 and marked[0] in spec.classes:
                    expected[(marked[0], split == "train")] += 1
    built = Counter((data.class_names[y], bool(t)) for y, t in zip(data.labels, data.is_train))
    assert built == expected


def test_min_certainty_decides_which_marks_count(cub):
    # certainty 1 ("not visible") counts: the Laysan albatross's image 2 is solid, the Rusty blackbird's image 3 has
    # two patterns (striped at 2, multi-colored at 1)
    one = bp(cub, min_certainty=1)
    assert sizes(one)["procellariiformes"] == {"solid": (3, 4), "spotted": (2, 1)}
    assert sizes(one)["icteridae"] == {"solid": (2, 1), "striped": (1, 1)}
    notes = {t: dict(s.notes) for t, s in specs(one).items()}
    assert (notes["procellariiformes"]["no_attribute_value"], notes["procellariiformes"]["several_attribute_values"]) \
        == (1, 1)
    assert notes["icteridae"]["several_attribute_values"] == 1
    # only "definitely": the albatrosses keep one spotted image (dropped) and the flicker no solid one
    four = bp(cub, min_certainty=4)
    assert sizes(four) == {"icteridae": {"solid": (1, 1), "striped": (1, 1)}}
    skipped = {s["task"]: s["reason"] for s in quiet(plan_report, four)["skipped_tasks"]}
    assert skipped == dict.fromkeys(["corvidae", "piciformes", "procellariiformes", "sittidae"], SKIPPED)


def test_without_attribute_the_species_plan_is_unchanged(cub, tmp_path):
    plain = D.write_cub(tmp_path / "plain")  # no attribute files at all
    default = specs(cfg_of(cub["config"]))
    assert specs(cfg_of({**cub["config"], "attribute": None, "min_certainty": 2})) == default
    assert specs(cfg_of(plain["config"])) == default
    assert sizes(cfg_of(cub["config"])) == sizes(cfg_of({**cub["config"], "attribute": None}))
    assert default["icteridae"].classes == ("010.Red_winged_Blackbird", "011.Rusty_Blackbird")
    assert all("attribute" not in dict(s.notes) and "no_attribute_value" not in dict(s.notes) for s in default.values())
    assert set(quiet(plan_report, cfg_of(cub["config"]))) == {"skipped_tasks", "unused_classes"}
    assert cub200.Cub200Settings.from_config().attribute is None
    assert validate_config({})["data"]["cub200"]["attribute"] is None


def test_attributes_txt_is_found_where_the_readme_or_the_archive_puts_it(cub, tmp_path):
    expected = specs(bp(cub))
    assert cub["attribute_files"]["names"] == cub["root"].parent / "attributes.txt"  # the official archive's place
    readme = D.write_cub(tmp_path / "readme", attributes=True, attributes_txt="readme")
    assert readme["attribute_files"]["names"] == readme["root"] / "attributes" / "attributes.txt"
    assert specs(bp(readme)) == expected
    shutil.move(cub["attribute_files"]["names"], cub["root"] / "attributes.txt")  # inside the CUB_200_2011 folder
    assert specs(bp(cub)) == expected


def test_other_attribute_groups_work_the_same_way(cub):
    # every fixture image has exactly one bill shape, the one of index (image id % 9)
    plan = specs(bp(cub, attribute="has_bill_shape"))
    shapes = dict(D.CUB_ATTRIBUTE_GROUPS)["has_bill_shape"]
    assert all(set(s.classes) <= set(shapes) for s in plan.values())
    assert all(dict(s.notes)["no_attribute_value"] == 0 == dict(s.notes)["several_attribute_values"]
               for s in plan.values())


def test_combined_entries_prefix_the_attribute_classes(cub):
    entry = {"source": "cub200", **cub["config"]}
    cfg = {"source": "combined", "seed": 0, "resolution": 16,
           "combined": {"bp": {**entry, "attribute": BP}, "sp": entry}}
    plan = specs(cfg)
    assert plan["bp-procellariiformes"].classes == ("bp/solid", "bp/spotted")
    assert plan["sp-procellariiformes"].classes[0] == "sp/001.Black_footed_Albatross"
    assert "bp-piciformes" in plan and "sp-piciformes" not in plan
    data = quiet(build_task, cfg, "bp-icteridae")
    assert data.class_names == ["bp/solid", "bp/striped"] and data.attrs["entry"] == "bp"


def test_task_table_counts_the_left_out_images(cub, tmp_path):
    cfg = bp(cub)
    files = {}
    for name in specs(cfg):
        files[name] = str(tmp_path / "results" / "tasks" / f"{name}.h5")
        quiet(split_task, cfg, name, files[name])
    quiet(tabulate_tasks, cfg, files, str(tmp_path / "tasks.parquet"))
    table = pd.read_parquet(tmp_path / "tasks.parquet").set_index("task")
    columns = ["n_classes", "n_train", "n_test", "dropped_classes", "no_attribute_value", "several_attribute_values"]
    assert table.loc["procellariiformes", columns].tolist() == [2, 4, 5, 0, 2, 1]
    assert table.loc["icteridae", columns].tolist() == [2, 3, 3, 2, 0, 0]
    assert set(table["attribute"]) == {BP} and table.loc["icteridae", "group"] == "Icteridae"
    plan = read_provenance(tmp_path / "tasks.parquet")["plan"]
    assert (plan["no_attribute_value"], plan["several_attribute_values"]) == (2, 2)


def test_labels_are_parsed_once_per_process_while_the_file_is_unchanged(cub):
    cfg = bp(cub)
    cub200._read_labels.cache_clear()
    quiet(plan_tasks, cfg)
    quiet(plan_report, cfg)
    quiet(build_task, cfg, "piciformes")  # plans again, then builds from the plan
    assert cub200._read_labels.cache_info().misses == 1
    path = cub["attribute_files"]["labels"]
    path.write_text(path.read_text() + "\n")
    quiet(plan_tasks, cfg)
    assert cub200._read_labels.cache_info().misses == 2


# ------------------------------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    "inject,match",
    [
        ("attr_unknown_attribute", r"image_attribute_labels\.txt, line 6: attribute id 999 is not in .*attributes\.txt"),
        ("attr_unknown_image", r"image_attribute_labels\.txt, line 6: image id 99999 is not in .*images\.txt"),
        ("attr_short_line", r"image_attribute_labels\.txt, line 6: expected '<image id> <attribute id> "
                            r"<is_present 0\|1> <certainty id> <time>', got '3 55 1'"),
        ("attr_not_integer", r"image_attribute_labels\.txt, line 6: expected .*, got '3 55 yes 4 1\.0000'"),
        ("attr_bad_present", r"image_attribute_labels\.txt, line 6: is_present must be 0 or 1, got '2'"),
        ("attr_unknown_certainty", r"image_attribute_labels\.txt, line 6: certainty id 7 is not in .*certainties\.txt"),
        ("attr_names_malformed", r"attributes\.txt, line 59: expected '<attribute id> <group>::<value>', got "
                                 r"'59 has_back_color'"),
    ],
)
def test_bad_attribute_files_name_file_line_and_value(tmp_path, inject, match):
    fx = D.write_cub(tmp_path / "cub", attributes=True, inject={inject})
    assert fx["bad"][inject] == int(match.split("line ")[1].split(":")[0])
    with pytest.raises(TaskDataError, match=match):
        quiet(plan_tasks, bp(fx))
    assert specs(cfg_of(fx["config"]))  # species labels never read the attribute files


@pytest.mark.parametrize(
    "inject,keys,match",
    [
        ("attr_names_missing", {}, r"data\.cub200\.attribute: no attributes\.txt; expected "
                                   r".*CUB_200_2011/attributes/attributes\.txt, .*CUB_200_2011/attributes\.txt or "
                                   r".*CUB_200_2011/\.\./attributes\.txt"),
        ("attr_labels_missing", {}, r"data\.cub200\.attribute: .*CUB_200_2011/attributes/image_attribute_labels\.txt "
                                    r"does not exist"),
        ("attr_certainties_missing", {}, r"data\.cub200\.attribute: .*attributes/certainties\.txt does not exist"),
        (None, {"attribute": "has_brest_pattern"},
         r"data\.cub200\.attribute: unknown attribute group 'has_brest_pattern' \(did you mean 'has_breast_pattern'\?\); "
         r"the groups of .*attributes\.txt are has_bill_shape, has_wing_color, has_upperparts_color, "
         r"has_underparts_color, has_breast_pattern$"),
        (None, {"attribute": 5}, r"data\.cub200\.attribute: 5 is not of type 'string', 'null'"),
        (None, {"min_certainty": 5}, r"data\.cub200\.min_certainty: 5 is greater than the maximum of 4"),
        (None, {"min_certainty": 0}, r"data\.cub200\.min_certainty: 0 is less than the minimum of 1"),
    ],
)
def test_config_errors_name_the_key_and_the_expected_file(tmp_path, inject, keys, match):
    fx = D.write_cub(tmp_path / "cub", attributes=True, inject={inject} - {None})
    with pytest.raises(ConfigError, match=match):
        quiet(plan_tasks, bp(fx, **keys))


def test_the_schema_types_the_new_keys():
    data = validate_config({"data": {"cub200": {"attribute": BP, "min_certainty": 3}}})["data"]["cub200"]
    assert (data["attribute"], data["min_certainty"]) == (BP, 3)
    with pytest.raises(ConfigError, match=r"data\.cub200\.min_certainty"):
        validate_config({"data": {"cub200": {"min_certainty": 7}}})


# ---------------------------------------------------------------------------------------------------- the parsers


def test_label_lines_are_read_by_their_first_four_fields(tmp_path):
    path = tmp_path / "image_attribute_labels.txt"
    path.write_text("1 55 1 4 27.7080\n1 56 0 4 0 12.5\n\n2 55 1 3 0 8.25 1\n2 57 1 3 3.0\n3 58 1 1 2.0\r\n")
    labels = cub200.read_attribute_labels(path)
    assert labels.present.tolist() == [[1, 55, 4], [2, 55, 3], [2, 57, 3], [3, 58, 1]]
    assert labels.image_ids.tolist() == [1, 2, 3] and labels.attribute_ids.tolist() == [55, 56, 57, 58]
    assert labels.certainty_ids.tolist() == [1, 3, 4]
    path.write_text("")
    with pytest.raises(TaskDataError, match="no attribute labels"):
        cub200.read_attribute_labels(path)


def test_image_values_known_answers():
    present = np.array([[1, 55, 4], [1, 10, 4], [2, 55, 3], [2, 57, 3], [3, 58, 1], [4, 56, 2], [4, 56, 3],
                        [5, 55, 4], [5, 56, 1]], dtype=np.int32)
    labels = cub200.AttributeLabels(present, *(np.unique(present[:, c]) for c in (0, 1, 2)))
    values = {55: "solid", 56: "spotted", 57: "striped", 58: "multi-colored"}
    # 1: solid (wing colour 10 is another group); 2: two patterns; 3: only "not visible"; 4: the same value twice;
    # 5: spotted is only "not visible"
    assert cub200.image_values(labels, values, 2) == ({1: "solid", 4: "spotted", 5: "solid"}, {2})
    assert cub200.image_values(labels, values, 1) == ({1: "solid", 3: "multi-colored", 4: "spotted"}, {2, 5})
    assert cub200.image_values(labels, values, 4) == ({1: "solid", 5: "solid"}, set())
