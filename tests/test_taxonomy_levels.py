"""Taxonomy levels above the task: an imagefolder's declared levels (``level: [category, collection]``) and the
``collection`` level of a combined source, carried into the plan and tasks.parquet, checked with errors naming the
key, the file and the column, and used by the figures' groups and the distance-vs-taxonomy analysis."""

from __future__ import annotations

import csv
import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from taskspace.data import plan_tasks
from taskspace.data.grouping import TASK_TABLE_COLUMNS, DataWarning
from taskspace.errors import ConfigError, TaskDataError
from taskspace.fidelity import taxonomic_distance
from taskspace.figures import taxonomy_curve
from taskspace.results import read_task_attrs
from taskspace.stages import split_task, tabulate_tasks
from taskspace.study import group_level, taxonomy_levels

pytestmark = pytest.mark.filterwarnings("ignore::taskspace.data.grouping.DataWarning")

# class -> (subcategory, category, collection): 2 collections x 2-3 categories x 2 classes; subcategory varies
# within a category (it is below the task level)
SHOP = {
    "red_block": ("square", "blocks", "toys"),
    "blue_block": ("oblong", "blocks", "toys"),
    "red_ball": ("small", "balls", "toys"),
    "blue_ball": ("large", "balls", "toys"),
    "apple": ("pome", "fruit", "food"),
    "cherry": ("drupe", "fruit", "food"),
    "bagel": ("ring", "bread", "food"),
    "bun": ("roll", "bread", "food"),
    "brie": ("soft", "cheese", "food"),
    "feta": ("brined", "cheese", "food"),
}
FIELDS = ("subcategory", "category", "collection")
COLUMNS = {f: f for f in FIELDS}  # column name -> field of SHOP, fine to coarse: any column order is allowed
TASKS = ["balls", "blocks", "bread", "cheese", "fruit"]
COLLECTION_OF = {"balls": "toys", "blocks": "toys", "bread": "food", "cheese": "food", "fruit": "food"}


def write_shop(root: Path, columns: dict = COLUMNS, rows: dict | None = None, per_class: int = 3) -> dict:
    """root/images/<class>/imgN.png (8x8, one colour per class) + root/taxonomy.csv (``class`` then ``columns``: name
    -> field of SHOP, in that order); the data.imagefolder section."""
    rows = SHOP if rows is None else rows
    for k, cls in enumerate(rows):
        folder = root / "images" / cls
        folder.mkdir(parents=True)
        for i in range(per_class):
            Image.new("RGB", (8, 8), (20 * k, 10 * i, 200 - 15 * k)).save(folder / f"img{i}.png")
    with open(root / "taxonomy.csv", "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["class", *columns])
        for cls, values in rows.items():
            by_field = dict(zip(FIELDS, values))
            writer.writerow([cls] + [by_field[f] for f in columns.values()])
    return {"root": str(root / "images"), "taxonomy": str(root / "taxonomy.csv")}


def data_cfg(section: dict, source: str = "imagefolder") -> dict:
    return {"source": source, "seed": 0, "resolution": 8, "tasks": "all", source: section}


def plan(cfg: dict) -> dict:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        return {s.name: s for s in plan_tasks(cfg)}


def tasks_table(cfg: dict, tmp_path: Path) -> pd.DataFrame:
    """Split every planned task and tabulate them: results/tasks.parquet as the workflow writes it."""
    files = {}
    for name in plan(cfg):
        files[name] = str(tmp_path / "tasks" / f"{name}.h5")
        split_task(cfg, name, files[name])
    tabulate_tasks(cfg, files, str(tmp_path / "tasks.parquet"))
    return pd.read_parquet(tmp_path / "tasks.parquet")


@pytest.fixture
def shop(tmp_path):
    return write_shop(tmp_path / "shop")


# ---------------------------------------------------------------------------------------------------- imagefolder


def test_declared_levels_above_the_task_are_recorded_in_the_plan_the_task_files_and_tasks_parquet(shop, tmp_path):
    cfg = data_cfg({**shop, "level": ["category", "collection"]})
    specs = plan(cfg)
    assert sorted(specs) == TASKS
    assert specs["fruit"].taxonomy == (("collection", "food"), ("category", "fruit"))
    assert specs["balls"].taxonomy == (("collection", "toys"), ("category", "balls"))
    assert specs["fruit"].classes == ("apple", "cherry")
    table = tasks_table(cfg, tmp_path / "results").set_index("task")
    assert table["collection"].to_dict() == COLLECTION_OF
    assert table["category"].to_dict() == {t: t for t in TASKS}
    assert table["group"].to_dict() == {t: t for t in TASKS} and set(table["level"]) == {"category"}
    assert "subcategory" not in table.columns  # below the task: not a level of it
    assert set(table.reset_index().columns) - {"collection", "category"} <= TASK_TABLE_COLUMNS
    provenance = read_task_attrs(table.loc["cheese", "path"])["provenance"]
    assert json.loads(provenance["taxonomy"]) == [["collection", "food"], ["category", "cheese"]]


def test_a_single_level_name_keeps_the_tables_order_rule(shop, tmp_path):
    # fine-to-coarse columns: nothing is left of category but subcategory, which varies within a task
    specs = plan(data_cfg({**shop, "level": "category"}))
    assert specs["fruit"].taxonomy == (("category", "fruit"),)
    assert taxonomy_levels(list(specs.values())) == ["category"]
    # coarse-to-fine columns: collection, left of category and shared by each task's classes, is above it
    coarse = write_shop(tmp_path / "coarse", {f: f for f in reversed(FIELDS)})
    specs = plan(data_cfg({**coarse, "level": "category"}))
    assert specs["fruit"].taxonomy == (("collection", "food"), ("category", "fruit"))
    # a one-name list declares no level above the task, whatever the column order
    assert plan(data_cfg({**coarse, "level": ["category"]}))["fruit"].taxonomy == (("category", "fruit"),)


def test_declared_levels_above_a_refined_task_come_before_its_grouping_level(tmp_path):
    fruit = {"apple": ("pome", "fruit", "food"), "pear": ("pome", "fruit", "food"),
             "cherry": ("drupe", "fruit", "food"), "plum": ("drupe", "fruit", "food")}
    rows = {**{c: v for c, v in SHOP.items() if v[1] != "fruit"}, **fruit}
    section = write_shop(tmp_path / "shop", rows=rows)
    specs = plan(data_cfg({**section, "level": ["category", "collection"], "refine": {"fruit": "subcategory"}}))
    assert sorted(specs) == ["balls", "blocks", "bread", "cheese", "drupe", "pome"]
    assert specs["pome"].taxonomy == (("collection", "food"), ("category", "fruit"), ("subcategory", "pome"))
    assert specs["bread"].taxonomy == (("collection", "food"), ("category", "bread"))


def moved(cls: str, collection: str) -> dict:
    return {**SHOP, cls: SHOP[cls][:2] + (collection,)}


@pytest.mark.parametrize(
    "level,extra,rows,error,match",
    [
        (["category", "colection"], {}, None, ConfigError,
         r"^data\.imagefolder\.level: 'colection' is not a column of .*taxonomy\.csv; its level columns are "
         r"\['subcategory', 'category', 'collection'\]"),
        (["category", "subcategory"], {}, None, TaskDataError,
         r"^data\.imagefolder\.level: column 'subcategory' of .*taxonomy\.csv is not constant within category "
         r"'bread': class 'bagel' \(line 8\) has 'ring', class 'bun' \(line 9\) has 'roll'"),
        (["category", "collection"], {}, moved("bun", "toys"), TaskDataError,
         r"^data\.imagefolder\.level: column 'collection' of .*taxonomy\.csv is not constant within category "
         r"'bread': class 'bagel' \(line 8\) has 'food', class 'bun' \(line 9\) has 'toys'"),
        (["category", "collection"], {}, moved("brie", ""), TaskDataError,
         r"^data\.imagefolder\.level: .*taxonomy\.csv, line 10: class 'brie' has an empty 'collection' value"),
        (["category", "collection"], {"refine": {"fruit": "collection"}}, None, ConfigError,
         r"^data\.imagefolder\.refine\.fruit: 'collection' is listed in data\.imagefolder\.level as a level above"),
        ([], {}, None, ConfigError, r"^config key data\.imagefolder\.level: \[\] should be non-empty"),
        (["category", "category"], {}, None, ConfigError,
         r"^config key data\.imagefolder\.level: .* has non-unique elements"),
    ],
)
def test_bad_declared_levels_are_errors_naming_the_key_the_file_and_the_column(tmp_path, level, extra, rows, error,
                                                                                match):
    section = write_shop(tmp_path / "shop", rows=rows)
    with pytest.raises(error, match=match):
        plan(data_cfg({**section, "level": level, **extra}))


def test_a_declared_level_may_not_take_a_tasks_parquet_column_name(tmp_path):
    columns = {"subcategory": "subcategory", "category": "category", "group": "collection"}
    section = write_shop(tmp_path / "shop", columns)
    with pytest.raises(ConfigError, match=r"^data\.imagefolder\.level: 'group' \(a column of .*taxonomy\.csv\) "
                                          r"names a column tasks\.parquet holds"):
        plan(data_cfg({**section, "level": ["category", "group"]}))


# -------------------------------------------------------------------------------------------------------- combined


def test_combined_adds_the_collection_level_of_each_entry(tmp_path):
    toys = write_shop(tmp_path / "toys", rows={c: v for c, v in SHOP.items() if v[2] == "toys"})
    food = write_shop(tmp_path / "food", rows={c: v for c, v in SHOP.items() if v[2] == "food"})
    cfg = data_cfg({"toys": {"source": "imagefolder", **toys, "level": "category"},
                    "food": {"source": "imagefolder", **food, "level": "category"}}, "combined")
    specs = plan(cfg)
    assert sorted(specs) == ["food-bread", "food-cheese", "food-fruit", "toys-balls", "toys-blocks"]
    assert specs["food-fruit"].taxonomy == (("collection", "food"), ("category", "fruit"))
    assert specs["toys-balls"].taxonomy == (("collection", "toys"), ("category", "balls"))
    table = tasks_table(cfg, tmp_path / "results").set_index("task")
    assert table["collection"].to_dict() == {f"{c}-{t}": c for t, c in COLLECTION_OF.items()}
    assert (table["collection"] == table["entry"]).all()
    assert set(table.reset_index().columns) - {"collection", "category"} <= TASK_TABLE_COLUMNS
    assert taxonomy_levels([specs[t] for t in sorted(specs)]) == ["collection", "category"]


def test_combined_entries_grouped_at_differently_named_levels_end_their_levels_with_the_task(tmp_path):
    toys = write_shop(tmp_path / "toys", {"subcategory": "subcategory", "kind": "category", "collection": "collection"},
                      rows={c: v for c, v in SHOP.items() if v[2] == "toys"})
    food = write_shop(tmp_path / "food", rows={c: v for c, v in SHOP.items() if v[2] == "food"})
    cfg = data_cfg({"toys": {"source": "imagefolder", **toys, "level": "kind"},
                    "food": {"source": "imagefolder", **food, "level": "category"}}, "combined")
    specs = plan(cfg)
    assert specs["toys-balls"].taxonomy == (("collection", "toys"), ("kind", "balls"))
    assert taxonomy_levels([specs[t] for t in sorted(specs)]) == ["collection", "task"]


def test_an_entry_with_a_collection_level_of_its_own_is_an_error(shop):
    cfg = data_cfg({"shop": {"source": "imagefolder", **shop, "level": ["category", "collection"]}}, "combined")
    with pytest.raises(ConfigError, match=r"^data\.combined\.shop: task 'balls' has a taxonomy level 'collection' "
                                          r"of its own"):
        plan(cfg)


def test_errors_of_a_combined_entrys_declared_levels_name_the_entrys_key(shop):
    cfg = data_cfg({"shop": {"source": "imagefolder", **shop, "level": ["category", "aisle"]}}, "combined")
    with pytest.raises(ConfigError, match=r"^data\.combined\.shop\.level: 'aisle' is not a column of "):
        plan(cfg)


# -------------------------------------------------------------------------------------------------------- analysis


def test_the_figures_and_the_taxonomy_analysis_group_tasks_by_the_level_above_them(shop, tmp_path):
    cfg = data_cfg({**shop, "level": ["category", "collection"]})
    specs = plan(cfg)
    levels = taxonomy_levels([specs[t] for t in TASKS])
    assert levels == ["collection", "category"] and group_level(levels) == "collection"
    table = tasks_table(cfg, tmp_path / "results")
    tax = taxonomic_distance(table, levels)
    same = np.array([[COLLECTION_OF[a] == COLLECTION_OF[b] for b in TASKS] for a in TASKS])
    expected = np.where(same, 1, 2) * (1 - np.eye(len(TASKS), dtype=int))  # siblings 1, across collections 2
    assert np.array_equal(tax.loc[TASKS, TASKS].to_numpy(), expected)
    # a method that puts tasks of one collection at 1 and of two at 3: the curve compares within and across
    distance = pd.DataFrame(np.where(same, 1.0, 3.0) * (1 - np.eye(len(TASKS))), index=TASKS, columns=TASKS)
    curve = taxonomy_curve(distance, tax, n_boot=10)
    assert curve["taxonomic_distance"].tolist() == [1, 2]
    assert curve["mean"].tolist() == [1.0, 3.0]
    assert curve["n_pairs"].tolist() == [2 * 1 + 3 * 2, 2 * 2 * 3]  # ordered pairs within / across collections


def test_without_a_level_above_the_task_each_task_is_its_own_group(shop, tmp_path):
    cfg = data_cfg({**shop, "level": "category"})
    levels = taxonomy_levels(list(plan(cfg).values()))
    assert levels == ["category"] and group_level(levels) == "category"
    tax = taxonomic_distance(tasks_table(cfg, tmp_path / "results"), levels)
    assert np.array_equal(tax.loc[TASKS, TASKS].to_numpy(), 1 - np.eye(len(TASKS), dtype=int))
    assert group_level([]) is None and group_level(["domain", "clade", "order"]) == "clade"


def test_the_task_level_separates_tasks_that_share_every_common_level():
    tasks = pd.DataFrame({"task": ["a-x", "a-y", "b-z"], "collection": ["a", "a", "b"]})
    tax = taxonomic_distance(tasks, ["collection", "task"])
    assert tax.to_numpy().tolist() == [[0, 1, 2], [1, 0, 2], [2, 2, 0]]
