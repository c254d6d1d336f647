"""Rank a finished run's experts for a new dataset: embed it exactly as the run embedded its tasks (same probe,
method config and seed derivation), then score every expert with the method's own distance.

A run is read from its results folder: ``embeddings.h5`` (one group per method, one per task), the probe
checkpoints in ``probe/``, the expert checkpoints in ``experts/`` (which tasks are candidates), ``tasks.parquet``
(the working resolution) and, for MODEL2VEC, ``model2vec/{method}.h5`` (the learned expert biases).
"""

from __future__ import annotations

import json
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .embeddings import Embedding
from .errors import ConfigError, TaskDataError
from .progress import Progress
from .results import Layout, embedding_names, load_checkpoint, read_method_group, read_model2vec

NEW = "\x00new task"  # the new task's key among the run's tasks: no task name can collide with it


@dataclass
class FolderTask:
    """Images read from a folder: labelled (one sub-folder per class) or not (images directly in the folder)."""

    path: Path
    images: np.ndarray  # uint8 (N, r, r, 3)
    labels: np.ndarray | None
    class_names: list[str]
    skipped: list[str] = field(default_factory=list)  # files left out, each with the reason


@dataclass
class Recommendation:
    """The ranked experts for one new dataset (``table``: rank, expert, distance; lower distance = better)."""

    method: str
    selector: str
    task: str
    folder: str
    n_images: int
    n_classes: int | None
    skipped: list[str]
    table: pd.DataFrame  # rank, expert, distance; a score's columns (score, seconds) where experts were run
    embedding: Embedding | None  # the new task's embedding (of the base method, for MODEL2VEC); None for a score

    def as_dict(self) -> dict:
        def value(v):
            return v if isinstance(v, str) else int(v) if isinstance(v, (int, np.integer)) else (
                float(v) if np.isfinite(v) else None)

        return {
            "method": self.method,
            "selector": self.selector,
            "task": self.task,
            "folder": self.folder,
            "n_images": self.n_images,
            "n_classes": self.n_classes,
            "skipped": self.skipped,
            "experts": [{k: value(v) for k, v in row.items()} for row in self.table.to_dict("records")],
        }


def results_folder(run: str | os.PathLike) -> Path:
    """The results folder of a run: ``run`` itself when it holds embeddings.h5, else ``run/results``."""
    run = Path(run)
    for candidate in (run, run / "results"):
        if Path(Layout(str(candidate)).embeddings()).is_file():
            return candidate
    raise FileNotFoundError(f"{run}: no embeddings.h5 here or in {run / 'results'}; is this a finished run?")


def _image_files(folder: Path) -> tuple[list[Path], list[str]]:
    """Image files under ``folder`` (recursively, sorted), and the non-image files left out (hidden files ignored)."""
    from .data.images import is_image_file

    images, others = [], []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if name.startswith("."):
                continue
            path = Path(root) / name
            (images if is_image_file(path) else others).append(path)
    return images, [f"{p}: not an image file" for p in others]


def read_folder(folder: str | os.PathLike, resolution: int, progress: bool = True, workers: int = 4) -> FolderTask:
    """Decode every image of ``folder`` at ``resolution``; undecodable and non-image files are skipped with a
    warning and listed in ``skipped``."""
    from .data.images import ImageDecodeError, is_image_file, load_image

    folder = Path(folder)
    if not folder.is_dir():
        raise TaskDataError(f"{folder}: not a folder")
    entries = sorted(e for e in folder.iterdir() if not e.name.startswith("."))
    class_dirs = [e for e in entries if e.is_dir()]
    loose = [e for e in entries if e.is_file()]
    if class_dirs:
        loose_images = [f for f in loose if is_image_file(f)]
        if loose_images:
            raise TaskDataError(
                f"{folder}: holds both class folders ({class_dirs[0].name}, ...) and images ({loose_images[0].name}, "
                "...); give one sub-folder per class, or only images (unlabelled)"
            )
        class_names = [d.name for d in class_dirs]
        files, labels, skipped = [], [], [f"{p}: not an image file" for p in loose]
        for k, d in enumerate(class_dirs):
            found, others = _image_files(d)
            skipped += others
            if not found:
                raise TaskDataError(f"{d}: class {d.name!r} has no image files")
            files += found
            labels += [k] * len(found)
    else:
        files, skipped = _image_files(folder)
        class_names, labels = [], None
    if not files:
        raise TaskDataError(f"{folder}: no image files found")

    def decode(path: Path):
        try:
            return load_image(path, resolution)
        except ImageDecodeError as err:
            return err

    images, keep = [], []
    with Progress("reading images", len(files), "images", enabled=progress) as bar, \
            ThreadPoolExecutor(max(1, workers)) as pool:
        for i, result in enumerate(pool.map(decode, files)):
            bar.update()
            if isinstance(result, Exception):
                skipped.append(f"{files[i]}: {result}")
            else:
                images.append(result)
                keep.append(i)
    for line in skipped:
        warnings.warn(f"skipped {line}", stacklevel=2)
    if not images:
        raise TaskDataError(f"{folder}: none of its {len(files)} image files could be decoded")
    y = None
    if labels is not None:
        y = np.asarray(labels, dtype=np.int64)[keep]
        empty = [class_names[k] for k in range(len(class_names)) if not (y == k).any()]
        if empty:
            raise TaskDataError(f"{folder}: class {empty[0]!r} has no decodable image left")
    return FolderTask(folder, np.stack(images), y, class_names, skipped)


def read_method_embeddings(results: Path, method: str) -> dict[str, Embedding]:
    """Every task's embedding of the config entry ``method`` from ``embeddings.h5``."""
    path = Layout(str(results)).embeddings()
    if method not in embedding_names(path):
        raise ConfigError(f"--method: the run has no embeddings for {method!r}; it has {embedding_names(path)}")
    return read_method_group(path, method)


def run_methods(results: Path) -> list[str]:
    """The methods a run can recommend with: its embedded methods and its MODEL2VEC fits."""
    names = embedding_names(Layout(str(results)).embeddings())
    folder = Path(Layout(str(results)).model2vec()).parent
    derived = sorted(p.stem for p in folder.glob("*.h5")) if folder.is_dir() else []
    return names + derived


def _resolution(results: Path, probe_ckpt: dict | None = None) -> int:
    """The run's working resolution (from tasks.parquet, else the probe checkpoint)."""
    tasks = Path(Layout(str(results)).tasks_table())
    if tasks.is_file():
        df = pd.read_parquet(tasks, columns=["role", "resolution"])
        rows = df[df["role"] == "task"]["resolution"]
        if len(rows):
            return int(rows.iloc[0])
    if probe_ckpt is None:
        probe_ckpt = load_checkpoint(Layout(str(results)).probe())
    return int(probe_ckpt["resolution"])


def _expert_checkpoints(results: Path) -> list[str]:
    """The experts whose checkpoints the run holds, sorted: replicate 0 of each (the others, ``<task>@r<r>``, only
    measure the ground truth's noise; :mod:`taskspace.replicates`)."""
    from .replicates import split_replicate

    folder = Path(Layout(str(results)).experts())
    names = sorted(p.stem for p in folder.glob("*.pt")) if folder.is_dir() else []
    return [n for n in names if split_replicate(n)[1] == 0]


def _experts(results: Path, embedded: list[str], wanted: list[str] | None) -> list[str]:
    if wanted:
        missing = sorted(set(wanted) - set(embedded))
        if missing:
            raise ConfigError(f"--experts: the run has no embedding for {missing}")
        return sorted(set(wanted))
    found = _expert_checkpoints(results)
    experts = [e for e in found if e in set(embedded)]
    if not experts:
        warnings.warn(f"{Layout(str(results)).experts()}: no expert checkpoints; ranking every embedded task", stacklevel=2)
        experts = sorted(embedded)
    return experts


# recommend's default for a labelled folder, from the studies (docs/studies.md). Pooled over the four embedded worlds
# (168 targets), LogME, NCE and LEEP beat the generic probe by 18-21 points of relative error with each world's
# experts kept (LogME alone also with them resampled; NCE is 2.7 points behind it, not distinguishable), and no
# embedding does; on real images NCE is the only selector that beat the generic probe, and LogME is undefined on 9
# of 21 targets there. NCE runs every expert once on the new images (a pass per expert).
DEFAULT_SCORE = "nce"


def _labelled(folder: Path) -> bool:
    """Whether ``folder`` holds one sub-folder of images per class (a missing folder counts as labelled: reading it
    names the problem)."""
    return any(e.is_dir() and not e.name.startswith(".") for e in folder.iterdir()) if folder.is_dir() else True


def _default_method(available: list[str], labelled: bool) -> str:
    for name in (["task2vec", "task2vec_mc"] if labelled else []) + ["pseudotask"]:
        if name in available:
            return name
    raise ConfigError(
        f"--method: give one of the run's methods {available}"
        + ("" if labelled else " that needs no labels (the folder has no class sub-folders)")
    )


def _threads(threads: int | None, rule: str) -> int:
    """``threads``, or by default those of the run's own jobs of ``rule`` when kernels are pinned (the same numbers
    as the run computed), else every core."""
    from .numerics import job_threads

    return threads if threads else job_threads(rule, os.cpu_count() or 1)


def score_experts(
    results: Path, task: FolderTask, experts: list[str], score: str, threads: int | None = None, progress: bool = True,
    batch_size: int = 64,
) -> pd.DataFrame:
    """Run each expert of ``experts`` on the new task's images and compute the transferability ``score`` (as the
    transfer stage does, on every image); columns expert, score, seconds (that expert's load, pass and score).
    Says so on stderr, with the time per expert, unless ``progress`` is False."""
    import sys
    import time

    import torch

    from .device import prepare_device
    from .training import network_from_checkpoint
    from .transfer import image_features
    from .transferability import POOL_SCORES, expert_scores

    if task.labels is None or len(task.class_names) < 2:
        raise TaskDataError(f"{task.path}: the per-expert score {score!r} needs labels: one sub-folder per class, "
                            "at least 2")
    device = prepare_device(_threads(threads, "transfer_batch"))
    images = torch.from_numpy(np.ascontiguousarray(task.images)).to(device)
    say = (lambda msg: print(msg, file=sys.stderr)) if progress else (lambda msg: None)
    say(f"{score}: running each of {len(experts)} experts on the {len(task.images)} images")
    rows = []
    for expert in experts:
        t0 = time.perf_counter()
        path = Path(Layout(str(results)).expert(expert))
        if not path.is_file():
            raise ConfigError(f"--experts: {expert!r} has no checkpoint {path}")
        ckpt = load_checkpoint(path)
        net = network_from_checkpoint(ckpt).to(device)
        feats = image_features(net, images, ckpt["normalization"], batch_size, device)
        value = expert_scores(net, feats, task.labels, [score], device, f"expert {expert!r} on {task.path}")
        seconds = time.perf_counter() - t0
        if score in POOL_SCORES:  # raw terms now, normalised over the experts run once all have run
            rows.append({"expert": expert, "terms": [value[c] for c in POOL_SCORES[score].columns(score)],
                         "seconds": seconds})
            say(f"  {expert}: {score} terms {', '.join(f'{v:.4g}' for v in rows[-1]['terms'])} ({seconds:.2f} s)")
            continue
        rows.append({"expert": expert, "score": value[f"score_{score}"], "seconds": seconds})
        say(f"  {expert}: {score} {rows[-1]['score']:.4f} ({seconds:.2f} s)")
    if score in POOL_SCORES:
        combined = POOL_SCORES[score].combine(np.array([row.pop("terms") for row in rows], dtype=float))
        for row, value in zip(rows, combined):
            row["score"] = float(value)
        say(f"{score}: normalised over the {len(rows)} experts run")
    return pd.DataFrame(rows, columns=["expert", "score", "seconds"])


def _score_table(scored: pd.DataFrame) -> pd.DataFrame:
    """Experts ranked by a score (highest first; an undefined score last), distance = -score."""
    table = scored.assign(distance=-scored["score"])
    return table.sort_values(["distance", "expert"], kind="mergesort", na_position="last")


def recommend(
    run: str | os.PathLike,
    folder: str | os.PathLike,
    method: str | None = None,
    kind: str | None = None,
    experts: list[str] | None = None,
    name: str | None = None,
    threads: int | None = None,
    progress: bool = True,
    rerank: str | None = None,
    shortlist: int = 5,
) -> Recommendation:
    """Embed the images of ``folder`` with ``method`` as the run did and rank the run's experts for it.

    ``kind`` picks the score of methods with several (``sym`` or ``asym``, default ``asym``); ``name`` is the new
    task's name (it seeds the embedding as a task name does in the run; default: the folder's name).
    ``method`` may also be a per-expert transferability score (``logme``, ``leep``, ...: every expert runs on the
    images); ``rerank`` a score that re-ranks the ``shortlist`` experts nearest by the embedding method. Without
    ``method`` (and ``rerank``), a labelled folder is ranked by :data:`DEFAULT_SCORE` and an unlabelled one by the
    run's PseudoTask (see :data:`DEFAULT_SCORE` for why).
    """
    from .transferability import SCORE_NAMES

    if method is None and rerank is None and _labelled(Path(folder)):
        method = DEFAULT_SCORE

    if method in SCORE_NAMES:
        if rerank:
            raise ConfigError(f"--rerank re-ranks an embedding's shortlist; --method {method!r} is already a "
                              "per-expert score")
        return _recommend_by_score(run, folder, method, experts, name, threads, progress)
    if rerank is not None and rerank not in SCORE_NAMES:
        raise ConfigError(f"--rerank: unknown score {rerank!r}; there are {sorted(SCORE_NAMES)}")
    if rerank is not None and shortlist < 1:
        raise ConfigError(f"--shortlist must be >= 1, got {shortlist}")
    rec = _recommend_by_embedding(run, folder, method, kind, experts, name, threads, progress)
    if rerank is None:
        return rec
    results = results_folder(run)
    table = rec.table.rename(columns={"distance": "embedding_distance"})
    task = read_folder(Path(folder), _resolution(results), progress=False)
    short = table.head(shortlist)[["expert", "embedding_distance"]]
    scored = score_experts(results, task, list(short["expert"]), rerank, threads, progress)
    head = _score_table(short.merge(scored, on="expert")).drop(columns="distance")
    out = pd.concat([head, table.iloc[shortlist:][["expert", "embedding_distance"]]], ignore_index=True)
    out.insert(0, "rank", np.arange(1, len(out) + 1))
    rec.table = out[["rank", "expert", "score", "embedding_distance", "seconds"]]
    rec.selector = f"{rec.selector}>{rerank}@{shortlist}"
    return rec


def _recommend_by_score(run, folder, score: str, experts: list[str] | None, name: str | None, threads: int,
                        progress: bool) -> Recommendation:
    """Rank the run's experts by a per-expert score: every expert runs on the folder's images."""
    results = results_folder(run)
    found = _expert_checkpoints(results)
    if experts:
        missing = sorted(set(experts) - set(found))
        if missing:
            raise ConfigError(f"--experts: the run has no expert checkpoint for {missing}")
        found = sorted(set(experts))
    if not found:
        raise ConfigError(f"{Layout(str(results)).experts()}: no expert checkpoints to run")
    folder = Path(folder)
    task = read_folder(folder, _resolution(results), progress=progress)
    table = _score_table(score_experts(results, task, found, score, threads, progress)).reset_index(drop=True)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    return Recommendation(
        method=score, selector=score, task=name or folder.resolve().name, folder=str(folder),
        n_images=len(task.images), n_classes=len(task.class_names) or None, skipped=task.skipped,
        table=table[["rank", "expert", "score", "distance", "seconds"]], embedding=None,
    )


def _recommend_by_embedding(
    run: str | os.PathLike,
    folder: str | os.PathLike,
    method: str | None = None,
    kind: str | None = None,
    experts: list[str] | None = None,
    name: str | None = None,
    threads: int | None = None,
    progress: bool = True,
) -> Recommendation:
    """Embed the images of ``folder`` with the embedding ``method`` as the run did and rank the experts by it."""
    from .device import prepare_device
    from .embeddings import get_method
    from .models import last_conv
    from .seeding import stable_seed
    from .training import network_from_checkpoint

    results = results_folder(run)
    available = run_methods(results)
    folder = Path(folder)
    labelled = _labelled(folder)
    method = method or _default_method(available, labelled)
    if method not in available:
        raise ConfigError(f"--method: the run has no method {method!r}; it has {available}")

    fit = None
    base = method
    if Path(Layout(str(results)).model2vec(method)).is_file():
        fit, base, m2v_cfg = _read_model2vec(Layout(str(results)).model2vec(method))
    bank = read_method_embeddings(results, base)
    first = next(iter(bank.values())).attrs
    registered, cfg = first["method"], json.loads(first["config"])
    m = get_method(registered, cfg)
    if m.uses_labels and not labelled:
        raise TaskDataError(
            f"{folder}: method {base!r} needs labels but the folder has no class sub-folders; "
            "give one sub-folder per class, or use a label-free method such as pseudotask"
        )
    probe_path = Layout(str(results)).probe(m.probe)
    probe_ckpt = load_checkpoint(probe_path)
    task = read_folder(folder, _resolution(results, probe_ckpt), progress=progress)
    if m.uses_labels and len(task.class_names) < 2:
        raise TaskDataError(f"{folder}: a labelled task needs at least 2 class folders, found {task.class_names}")

    device = prepare_device(_threads(threads, "embed_batch"))
    net = network_from_checkpoint(probe_ckpt)
    task_name = name or folder.resolve().name
    seed = stable_seed(int(first["seed"]), "embed", base, task_name)
    with Progress(f"embedding with {base}", unit="images through the probe", enabled=progress) as bar:
        # the last convolution runs in every pass of every probe-based method, whatever layers it skips
        hook = last_conv(net).register_forward_hook(lambda mod, inp, out: bar.update(len(inp[0])))
        try:
            emb = m.embed(net, task.images, task.labels if m.uses_labels else None, probe_ckpt["normalization"],
                          device, seed)
        except (FloatingPointError, TaskDataError) as err:
            raise type(err)(f"{folder}, embedding method {base!r}: {err}") from err
        finally:
            hook.remove()

    if fit is not None:
        from .embeddings.model2vec import Model2VecSettings, rank_experts

        trivial = np.stack([bank[e].extras["trivial"] for e in fit.experts])
        d = rank_experts(fit, trivial, emb.vector, Model2VecSettings.from_config(m2v_cfg, f"embeddings.{method}").alpha)
        table, selector = pd.DataFrame({"expert": fit.experts, "distance": d}), method
        if experts:
            table = table[table["expert"].isin(experts)]
    else:
        candidates = _experts(results, list(bank), experts)
        df = m.distances({**bank, NEW: emb})
        kinds = sorted(set(df["kind"]))
        chosen = kind if kind is not None else ("asym" if "asym" in kinds else kinds[0])
        if chosen not in kinds:
            raise ConfigError(f"--kind: method {method!r} has scores {kinds}, not {chosen!r}")
        df = df[(df["kind"] == chosen) & (df["target"] == NEW) & df["source"].isin(candidates)]
        table = df.rename(columns={"source": "expert"})[["expert", "distance"]]
        selector = method if chosen == "" else f"{method}.{chosen}"
    table = table.sort_values(["distance", "expert"], kind="mergesort").reset_index(drop=True)
    table.insert(0, "rank", np.arange(1, len(table) + 1))
    return Recommendation(
        method=method, selector=selector, task=task_name, folder=str(folder), n_images=len(task.images),
        n_classes=len(task.class_names) or None, skipped=task.skipped, table=table, embedding=emb,
    )


def _read_model2vec(path: str):
    """The MODEL2VEC fit stored at ``path``, its base method and its config."""
    from .embeddings.model2vec import Model2VecFit

    stored = read_model2vec(path)
    attrs = stored["attrs"]
    fit = Model2VecFit(stored["experts"], stored["model_embeddings"], stored["biases"], float(attrs["temperature"]), [])
    return fit, attrs["base"], attrs["config"]
