"""Artifact I/O: task HDF5 files, model checkpoints, Parquet tables; every write is atomic and carries provenance."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd

from . import __version__
from .data import TaskData
from .errors import TaskDataError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def write_task(path: str | os.PathLike, name: str, role: str, data: TaskData) -> None:
    """Write one task as HDF5: uint8 images, labels, train/test split, class names and provenance attrs."""
    import h5py

    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("images", data=data.images, dtype="uint8")
        f.create_dataset("labels", data=data.labels.astype(np.int64))
        f.create_dataset("is_train", data=data.is_train.astype(bool))
        f.create_dataset("class_names", data=np.array(data.class_names, dtype=object), dtype=h5py.string_dtype())
        f.attrs["task"] = name
        f.attrs["role"] = role
        f.attrs["n_classes"] = len(data.class_names)
        f.attrs["n_train"] = int(data.is_train.sum())
        f.attrs["n_test"] = int((~data.is_train).sum())
        f.attrs["taskspace_version"] = __version__
        f.attrs["provenance"] = _json(data.attrs)


def _decoded_attrs(f) -> dict:
    attrs = {k: (v.item() if hasattr(v, "item") else v) for k, v in f.attrs.items()}
    attrs["provenance"] = json.loads(attrs.get("provenance", "{}"))
    return attrs


def read_task_attrs(path: str | os.PathLike) -> dict:
    """A task file's attrs (sizes, provenance decoded) without reading its images."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return _decoded_attrs(f)
    except OSError as err:
        raise TaskDataError(f"{path}: not a readable task file ({err})") from err


def read_task(path: str | os.PathLike, labels: bool = True) -> tuple[TaskData, dict]:
    """Read a task file written by :func:`write_task`; returns the data and its attrs (provenance decoded).

    ``labels=False`` never reads the labels (``data.labels`` is None): label-free methods run on tasks whose
    labels are withheld.
    """
    import h5py

    try:
        with h5py.File(path, "r") as f:
            if labels and "labels" not in f:
                raise TaskDataError(f"{path}: the task's labels are withheld (no 'labels' dataset)")
            attrs = _decoded_attrs(f)
            data = TaskData(
                images=f["images"][()],
                labels=f["labels"][()] if labels else None,
                is_train=f["is_train"][()],
                class_names=[c.decode() if isinstance(c, bytes) else str(c) for c in f["class_names"][()]],
                attrs=attrs["provenance"],
            )
    except (OSError, KeyError) as err:
        raise TaskDataError(f"{path}: not a readable task file ({err})") from err
    return data, attrs


def save_checkpoint(path: str | os.PathLike, checkpoint: dict) -> None:
    """Save a model checkpoint (weights + what made them) atomically. Saved through a file object, so the archive
    inside does not take the temporary file's name: the same checkpoint always gives the same bytes."""
    import torch

    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        torch.save(checkpoint, fh)


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Load a checkpoint saved by :func:`save_checkpoint` (tensors and plain Python values only)."""
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)


def write_table(df: pd.DataFrame, path: str | os.PathLike, provenance: dict | None = None) -> None:
    """Write a Parquet table atomically, with ``provenance`` as JSON under the schema metadata key ``taskspace``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df.reset_index(drop=True), preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta[b"taskspace"] = _json({"taskspace_version": __version__, **(provenance or {})}).encode()
    table = table.replace_schema_metadata(meta)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a Parquet table."""
    return pd.read_parquet(path)


def read_provenance(path: str | os.PathLike) -> dict:
    """The provenance stored in a Parquet table's metadata by :func:`write_table`."""
    import pyarrow.parquet as pq

    meta = pq.read_schema(path).metadata or {}
    return json.loads(meta.get(b"taskspace", b"{}"))
