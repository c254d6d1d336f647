"""Taxonomy tables: class -> {level: value}, read from CSV or Parquet, remembering where each row came from.

A table has a column ``class`` (the class name as the source spells it) and one column per level, coarse to fine
(e.g. ``class,order,family,genus``). Values are stripped of surrounding whitespace; a missing value reads as "".
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError, TaskDataError

CLASS_COLUMN = "class"


@dataclass(frozen=True)
class Taxonomy:
    """Levels (coarse to fine) and, per class, where its row is (for messages) and its value at each level."""

    file: str
    levels: tuple[str, ...]
    rows: dict[str, tuple[str, dict[str, str]]]  # class -> (location such as "line 7", {level: value})

    def value(self, cls: str, level: str) -> str:
        """The class's value at ``level``; an empty one is a TaskDataError naming the file, row and class."""
        where, values = self.rows[cls]
        value = values.get(level, "")
        if not value:
            raise TaskDataError(f"{self.file}, {where}: class {cls!r} has an empty {level!r} value")
        return value


def _clean(value) -> str:
    if value is None or (isinstance(value, float) and value != value):  # None or NaN
        return ""
    return str(value).strip()


def _from_records(path: Path, columns: list[str], records, location: str) -> Taxonomy:
    """``records``: (row number, fields) pairs."""
    columns = [_clean(c) for c in columns]
    if CLASS_COLUMN not in columns:
        raise TaskDataError(f"{path}: a taxonomy table needs a column {CLASS_COLUMN!r}; its columns are {columns}")
    if len(set(columns)) != len(columns):
        raise TaskDataError(f"{path}: repeated column names in {columns}")
    levels = tuple(c for c in columns if c != CLASS_COLUMN)
    if not levels:
        raise TaskDataError(f"{path}: a taxonomy table needs at least one level column besides {CLASS_COLUMN!r}")
    rows: dict[str, tuple[str, dict[str, str]]] = {}
    for n, record in records:
        where = f"{location} {n}"
        if len(record) != len(columns):
            raise TaskDataError(f"{path}, {where}: has {len(record)} fields, the header has {len(columns)}")
        values = dict(zip(columns, (_clean(v) for v in record)))
        cls = values.pop(CLASS_COLUMN)
        if not cls:
            raise TaskDataError(f"{path}, {where}: empty {CLASS_COLUMN!r}")
        if cls in rows:
            raise TaskDataError(f"{path}, {where}: class {cls!r} is listed again (first at {rows[cls][0]})")
        rows[cls] = (where, values)
    return Taxonomy(str(path), levels, rows)


def read_taxonomy(path: str | os.PathLike, key: str) -> Taxonomy:
    """Read a CSV (``.csv``) or Parquet (``.parquet``, ``.pq``) taxonomy table; ``key`` names the config key."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{key}: {path} is not a file (expected a taxonomy table: class -> levels)")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                raise TaskDataError(f"{path}: empty taxonomy table")
            # line numbers as an editor shows them (header = line 1); blank lines are skipped
            records = [(reader.line_num, r) for r in reader if any(field.strip() for field in r)]
        return _from_records(path, header, records, "line")
    if suffix in (".parquet", ".pq"):
        import pyarrow.parquet as pq

        table = pq.read_table(path)
        data = table.to_pydict()
        records = list(enumerate(zip(*(data[c] for c in table.column_names)), start=1))
        return _from_records(path, list(table.column_names), records, "row")
    raise ConfigError(f"{key}: {path}: a taxonomy table must be .csv or .parquet")


def taxonomy_from_mapping(file: str, levels: tuple[str, ...], rows: dict[str, tuple[str, dict]]) -> Taxonomy:
    """A taxonomy built in code (iNat categories, car makes) rather than read from a table."""
    clean = {c: (where, {k: _clean(v) for k, v in values.items()}) for c, (where, values) in rows.items()}
    return Taxonomy(file, levels, clean)
