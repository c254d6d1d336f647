"""A run's results, defined once: where each artifact lives (:class:`Layout`) and the format of each kind of file
(task HDF5, checkpoint, Parquet table, embeddings HDF5, MODEL2VEC HDF5).

The workflow's rules (``rules/common.smk``), the stages, ``taskspace check`` and ``taskspace recommend`` all name and
read artifacts through this module. Every write goes through :func:`taskspace.io.atomic_path` (durable, atomic) and
carries the stamp of the job writing it (:func:`taskspace.io.job_stamp`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import __version__
from .data import TaskData
from .embeddings import Embedding
from .errors import ArtifactError, TaskDataError
from .io import atomic_path, job_stamp, json_text, stamp_h5

GENERIC = "generic"  # the probe, used as an expert
PROBE_KINDS = ("pretrained", "random")  # the probe checkpoints an embedding method may read
# What plot_selection writes per meta-task.
PLOTS = [
    "selection_violin.png",
    "summary.png",
    "cost_frontier.png",
    "distance_heatmaps.png",
    "task_maps.png",
    "norm_vs_error.png",
    "taxonomy_curve.png",
    "summary.csv",
    "comparisons.csv",
]
TABLES = ("selection", "summary", "comparisons")  # what score_selection writes, one block of rows per meta-task


@dataclass(frozen=True)
class Layout:
    """The paths of a run's artifacts under ``root`` (``results`` in the workflow's working directory; a run's results
    folder for ``recommend``). Called without arguments, a method gives the rule's template (``{task}`` etc.)."""

    root: str = "results"

    def _path(self, *parts: str) -> str:
        return "/".join([self.root, *parts])

    def task(self, task: str = "{task}") -> str:
        return self._path("tasks", f"{task}.h5")

    def tasks_table(self) -> str:
        return self._path("tasks.parquet")

    def probe(self, kind: str = "pretrained") -> str:
        """The probe checkpoint an embedding method reads: ``pretrained`` (probe.pt), ``random`` (its seeded init)
        or the name of a further probe (embeddings.probes: named/<name>.pt)."""
        builtin = {"pretrained": "probe.pt", "random": "random.pt"}
        return self._path("probe", builtin[kind]) if kind in builtin else self._path("probe", "named", f"{kind}.pt")

    def probe_metrics(self, kind: str = "pretrained") -> str:
        return self._path("probe", {"pretrained": "metrics.parquet", "random": "random_metrics.parquet"}[kind])

    def experts(self) -> str:
        return self._path("experts")

    def expert(self, expert: str = "{task}") -> str:
        """An expert's checkpoint; the generic expert is the probe."""
        return self.probe() if expert == GENERIC else self._path("experts", f"{expert}.pt")

    def expert_metrics(self, task: str = "{task}") -> str:
        return self._path("experts", f"{task}.metrics.parquet")

    def transfer_part(self, batch: str = "{batch}") -> str:
        return self._path("transfer", f"part-{batch}.parquet")

    def transfer(self) -> str:
        """The transfer matrix, the mean over the experts' replicates (:mod:`taskspace.replicates`)."""
        return self._path("transfer.parquet")

    def transfer_replicates(self) -> str:
        """Every replicate's transfer row (a ``replicate`` column)."""
        return self._path("transfer_replicates.parquet")

    def embeddings_part(self, batch: str = "{batch}") -> str:
        return self._path("embeddings", f"part-{batch}.h5")

    def embeddings(self) -> str:
        return self._path("embeddings.h5")

    def distances(self, method: str = "{method}") -> str:
        return self._path("distances", f"{method}.parquet")

    def model2vec(self, method: str = "{method}") -> str:
        return self._path("model2vec", f"{method}.h5")

    def table(self, name: str) -> str:
        """``selection``, ``summary`` or ``comparisons``."""
        return self._path(f"{name}.parquet")

    def plot(self, meta_task: str = "{meta_task}", figure: str = "{figure}") -> str:
        return self._path("plots", meta_task, figure)

    def reuse_store(self) -> str:
        """Units of work (a transfer pair, an embedding, a MODEL2VEC fit) kept with the digests of their inputs."""
        return self._path("reuse")

    def log(self, rule: str, name: str = "") -> str:
        return self._path("logs", rule, f"{name}.log") if name else self._path("logs", f"{rule}.log")

    def benchmark(self, rule: str, name: str = "") -> str:
        return self._path("benchmarks", rule, f"{name}.tsv") if name else self._path("benchmarks", f"{rule}.tsv")


RESULTS = Layout()


def reuse_transfer(store: str | os.PathLike, expert: str, task: str) -> Path:
    """A transfer pair kept in the reuse store."""
    return Path(store) / "transfer" / expert / f"{task}.parquet"


def reuse_embedding(store: str | os.PathLike, name: str, task: str) -> Path:
    """One task's embedding by a method entry, kept in the reuse store."""
    return Path(store) / "embeddings" / name / f"{task}.h5"


def reuse_model2vec(store: str | os.PathLike, name: str) -> Path:
    """A MODEL2VEC fit (key.json, distances.parquet, model.h5) kept in the reuse store."""
    return Path(store) / "model2vec" / name


# ---------------------------------------------------------------- task files


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
        f.attrs["provenance"] = json_text(data.attrs)
        stamp_h5(f)


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


# ---------------------------------------------------------------- checkpoints


def save_checkpoint(path: str | os.PathLike, checkpoint: dict) -> None:
    """Save a model checkpoint (weights + what made them) atomically. Saved through a file object, so the archive
    inside does not take the temporary file's name: the same checkpoint always gives the same bytes."""
    import torch

    job = job_stamp()
    if job is not None:
        checkpoint = {**checkpoint, "job": job}
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        torch.save(checkpoint, fh)


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Load a checkpoint saved by :func:`save_checkpoint`: tensors and plain Python values only. A file that holds
    anything else (a pickled object, which could run code) is refused without running it; an unreadable one raises
    :class:`ArtifactError` naming it."""
    import pickle

    import torch

    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise ArtifactError(
            f"{path}: refused: it holds Python objects other than tensors and plain values, which loading would "
            f"run; only checkpoints of weights are read ({str(err).splitlines()[0]})"
        ) from err
    except (RuntimeError, EOFError, ValueError, OSError) as err:
        if isinstance(err, FileNotFoundError):
            raise
        raise ArtifactError(f"{path}: not a readable checkpoint ({str(err).splitlines()[0]})") from err
    if not isinstance(checkpoint, dict):
        raise ArtifactError(f"{path}: not a taskspace checkpoint (a {type(checkpoint).__name__}, not a dict)")
    return checkpoint


# ---------------------------------------------------------------- Parquet tables


def write_table(df: pd.DataFrame, path: str | os.PathLike, provenance: dict | None = None) -> None:
    """Write a Parquet table atomically, with ``provenance`` as JSON under the schema metadata key ``taskspace``."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(df.reset_index(drop=True), preserve_index=False)
    meta = dict(table.schema.metadata or {})
    job = job_stamp()
    stamp = {"job": job} if job is not None else {}
    meta[b"taskspace"] = json_text({"taskspace_version": __version__, **(provenance or {}), **stamp}).encode()
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


def read_stamp(path: str | os.PathLike) -> dict | None:
    """The job stamp an artifact carries (HDF5 attr, checkpoint key, Parquet metadata), or None if it has none.
    Raises on a file that cannot be read."""
    path = Path(path)
    if path.suffix == ".h5":
        import h5py

        with h5py.File(path, "r") as f:
            raw = f.attrs.get("job")
        return json.loads(raw) if raw is not None else None
    if path.suffix == ".pt":
        job = load_checkpoint(path).get("job")
        return dict(job) if isinstance(job, dict) else None
    if path.suffix == ".parquet":
        job = read_provenance(path).get("job")
        return job if isinstance(job, dict) else None
    return None


# ---------------------------------------------------------------- embeddings HDF5


def h5_attrs(values: dict) -> dict:
    """Values as HDF5 attrs: numbers and strings as they are, anything else as sorted JSON."""
    return {k: v if isinstance(v, (int, float, str)) else json.dumps(v, sort_keys=True, default=str)
            for k, v in values.items()}


def write_embedding_file(path: str | os.PathLike, arrays: dict[str, np.ndarray], attrs: dict,
                         reuse_key: dict) -> None:
    """One task's embedding by one method entry: a dataset per array (``embedding`` and extras such as
    ``trivial``; float32 kept, anything else as float64), ``attrs`` and the reuse key."""
    import h5py

    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        for k, value in arrays.items():
            f.create_dataset(k, data=value.astype(np.float32 if value.dtype == np.float32 else np.float64))
        f.attrs.update(h5_attrs(attrs))
        f.attrs["reuse_key"] = json.dumps(reuse_key, sort_keys=True)


def read_reuse_key(path: str | os.PathLike) -> dict:
    """The reuse key of an embedding file written by :func:`write_embedding_file`."""
    import h5py

    with h5py.File(path, "r") as f:
        return json.loads(f.attrs["reuse_key"])


def embedding_from_group(group) -> Embedding:
    """An HDF5 group (a per-task file, or a task's group in embeddings.h5) as an
    :class:`~taskspace.embeddings.Embedding`: dataset ``embedding``, the other datasets as extras, attrs as Python
    values."""
    attrs = {k: v.item() if hasattr(v, "item") else v for k, v in group.attrs.items()}
    extras = {k: group[k][()] for k in group if k != "embedding"}
    return Embedding(group["embedding"][()], attrs, extras)


def embedding_names(path: str | os.PathLike) -> list[str]:
    """The method entries of an ``embeddings.h5``-layout file."""
    import h5py

    with h5py.File(path, "r") as f:
        return sorted(f)


def read_method_group(path: str | os.PathLike, name: str) -> dict[str, Embedding]:
    """{task: Embedding} of the method entry ``name`` in an ``embeddings.h5``-layout file."""
    import h5py

    with h5py.File(path, "r") as f:
        if name not in f:
            raise KeyError(f"{path}: no embeddings of method {name!r}; it has {sorted(f)}")
        return {task: embedding_from_group(group) for task, group in f[name].items()}


def read_task_arrays(path: str | os.PathLike, tasks: list[str]) -> dict[str, dict[str, dict[str, np.ndarray]]]:
    """{method: {task: {array: values}}} for the method entries of an ``embeddings.h5``-layout file that hold every
    task of ``tasks`` (the others are left out), methods in sorted order."""
    import h5py

    out = {}
    with h5py.File(path, "r") as f:
        for method in sorted(f):
            if all(t in f[method] for t in tasks):
                out[method] = {t: {k: f[method][t][k][()] for k in f[method][t]} for t in tasks}
    return out


def gather_embeddings(files: dict[str, dict[str, str | os.PathLike]], output: str | os.PathLike) -> None:
    """An ``embeddings.h5``-layout file: a group per method, in it a group per task with the datasets and attrs of
    that task's embedding file (``files``: method -> task -> file)."""
    import h5py

    with atomic_path(output) as tmp, h5py.File(tmp, "w") as out:
        stamp_h5(out)
        for method, per_task in sorted(files.items()):
            group = out.create_group(method)
            for task, path in sorted(per_task.items()):
                with h5py.File(path, "r") as f:
                    f.copy(f, group, name=task)


def merge_embeddings(parts: list[str], output: str | os.PathLike) -> None:
    """``embeddings.h5`` from the batch files of the embedding jobs (same layout, disjoint tasks)."""
    import h5py

    with atomic_path(output) as tmp, h5py.File(tmp, "w") as out:
        stamp_h5(out)
        for path in parts:
            with h5py.File(path, "r") as f:
                for method in sorted(f):
                    group = out.require_group(method)
                    for task in sorted(f[method]):
                        if task in group:
                            raise ValueError(f"{path}: task {task!r} of method {method!r} is in two batches")
                        f.copy(f[method][task], group, name=task)


# ---------------------------------------------------------------- MODEL2VEC HDF5


def write_model2vec(path: str | os.PathLike, experts: list[str], model_embeddings: np.ndarray, biases: np.ndarray,
                    attrs: dict) -> None:
    """A MODEL2VEC fit on every target: the experts, their model embeddings and biases, ``attrs`` (config, loss)."""
    import h5py

    with atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        stamp_h5(f)
        f.create_dataset("experts", data=np.array(experts, dtype=object), dtype=h5py.string_dtype())
        f.create_dataset("model_embeddings", data=model_embeddings)
        f.create_dataset("biases", data=biases)
        f.attrs.update(h5_attrs(attrs))


def read_model2vec(path: str | os.PathLike) -> dict:
    """What :func:`write_model2vec` wrote: experts (list), model_embeddings, biases, attrs (config decoded)."""
    import h5py

    with h5py.File(path, "r") as f:
        attrs = {k: v.item() if hasattr(v, "item") else v for k, v in f.attrs.items()}
        attrs["config"] = json.loads(attrs.get("config", "{}"))
        return {"experts": [e.decode() if isinstance(e, bytes) else str(e) for e in f["experts"][()]],
                "model_embeddings": f["model_embeddings"][()], "biases": f["biases"][()], "attrs": attrs}
