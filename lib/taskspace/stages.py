"""One function per workflow job: read the job's inputs, call the science, write its outputs atomically.

The rules of the Snakefile call these through ``workflow_scripts/``, each job in its own process; they are plain
functions, usable without Snakemake.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import Iterator

import numpy as np
import pandas as pd

from . import __version__
from .data import build_task, plan_report, plan_tasks
from .errors import TaskDataError
from .device import prepare_device
from .io import atomic_path
from .results import (
    GENERIC,
    gather_embeddings,
    load_checkpoint,
    read_method_group,
    read_provenance,
    read_task_arrays,
    read_reuse_key,
    read_table,
    read_task,
    read_task_attrs,
    reuse_embedding,
    reuse_model2vec,
    reuse_transfer,
    save_checkpoint,
    write_embedding_file,
    write_model2vec,
    write_table,
    write_task,
)


@contextlib.contextmanager
def job_log(path: str | os.PathLike | None) -> Iterator:
    """The job's log file, its lines timed from the start of the job; a failure's traceback lands in it too. When
    the job's stderr already goes to the same file (the workflow scripts send it there), the lines are written
    through that same stream, so that warnings and log lines interleave in order and never overwrite each other."""
    if path is None:
        yield lambda msg: None
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    shares_stderr = os.path.abspath(getattr(sys.stderr, "name", "")) == os.path.abspath(path)
    with contextlib.nullcontext(sys.stderr) if shares_stderr else open(path, "w") as fh:
        start = time.perf_counter()

        def log(msg: str) -> None:
            fh.write(f"[{time.perf_counter() - start:8.2f}s] {msg}\n")
            fh.flush()

        try:
            yield log
        except BaseException:
            fh.write(traceback.format_exc())
            fh.flush()
            raise


# ---------------------------------------------------------------- split


def split_task(data_cfg: dict, task: str, output: str, log: str | None = None) -> None:
    """Generate (or load) one task and write ``results/tasks/{task}.h5``; the data's warnings (skipped images,
    classes, ...) go to the log. A failure leaves no task file (the build raises before the atomic write)."""
    import warnings

    with job_log(log) as say:
        caught: list = []
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                data = build_task(data_cfg, task)
        finally:
            seen = set()  # planning runs more than once per build: log each warning once
            for w in caught:
                if str(w.message) not in seen:
                    seen.add(str(w.message))
                    say(f"warning: {w.message}")
                    if log is None:
                        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        skipped = int(data.attrs.get("skipped_images", 0))
        say(f"built {task}: {len(data.labels)} images, {len(data.class_names)} classes, {skipped} skipped")
        write_task(output, task, data.attrs["role"], data)


# per-task counts of what planning or building left out: columns of results/tasks.parquet, 0 where none
TASK_COUNTS = ("dropped_classes", "non_image_files", "unlisted_images", "classes_in_other_sources", "skipped_images",
               "no_attribute_value", "several_attribute_values")


def tabulate_tasks(data_cfg: dict, task_files: dict[str, str], output: str) -> None:
    """``results/tasks.parquet``: one row per task (the source task included) with its sizes, taxonomy, the group
    it is named after and counts of what was left out; the provenance lists the tasks the filters skipped."""
    rows = []
    for spec in plan_tasks(data_cfg):
        if spec.name not in task_files:
            continue
        attrs = read_task_attrs(task_files[spec.name])
        notes = dict(spec.notes)
        notes["skipped_images"] = int(attrs["provenance"].get("skipped_images", 0))
        row = {
            "task": spec.name,
            "role": spec.role,
            "source": spec.source,
            "n_classes": int(attrs["n_classes"]),
            "n_train": int(attrs["n_train"]),
            "n_test": int(attrs["n_test"]),
            "resolution": int(attrs["provenance"].get("resolution", 0)),
            "path": str(task_files[spec.name]),
        }
        row.update({level: value for level, value in spec.taxonomy if level not in row})
        row["group"] = notes.pop("group", None)
        row.update({k: int(notes.pop(k, 0)) for k in TASK_COUNTS})
        row.update({k: v for k, v in notes.items() if k not in row})
        rows.append(row)
    write_table(pd.DataFrame(rows), output, {"data": data_cfg, "plan": plan_report(data_cfg)})


# ---------------------------------------------------------------- probe and experts


def _split_tensors(data, normalization: dict):
    """(x_train, y_train, x_test, y_test) as normalised tensors."""
    import torch

    from .training import to_tensor

    x, y = to_tensor(data.images, normalization), torch.from_numpy(data.labels)
    tr, te = torch.from_numpy(data.is_train), torch.from_numpy(~data.is_train)
    return x[tr], y[tr], x[te], y[te]


def train_probe(
    source_task: str, probe_cfg: dict, seed: int, output: str, metrics: str, threads: int = 1, log: str | None = None
) -> None:
    """The probe network: trained on the broad source task (``weights: source``) or left at its seeded init."""
    import torch

    from .models import Network
    from .probes import ProbeSettings
    from .seeding import stable_seed
    from .training import TrainingSettings, channel_stats, checkpoint, fit

    probe = ProbeSettings.from_config(probe_cfg)
    with job_log(log) as say:
        device = prepare_device(threads)
        data, _ = read_task(source_task)
        normalization = channel_stats(data.images[data.is_train])
        torch.manual_seed(stable_seed(seed, "probe-init"))
        net = Network(probe.arch, len(data.class_names))
        history: list[dict] = []
        if probe.kind == "source":
            x_tr, y_tr, x_te, y_te = _split_tensors(data, normalization)
            history = fit(net, x_tr, y_tr, TrainingSettings.from_config(probe.train, "probe.train"),
                          stable_seed(seed, "probe-train"), device, x_te, y_te)
            say(f"probe trained: final test accuracy {history[-1].get('test_accuracy', float('nan')):.3f}")
        ckpt = checkpoint(
            net.cpu(),
            role="probe",
            task="source",
            classes=list(data.class_names),
            normalization=normalization,
            resolution=int(data.images.shape[1]),
            config=probe_cfg,
            seed=seed,
            metrics=_untimed(history),
        )
        write_table(pd.DataFrame(history, columns=_METRIC_COLUMNS), metrics, {"probe": probe_cfg, "seed": seed})
        save_checkpoint(output, ckpt)


def _untimed(history: list[dict]) -> list[dict]:
    """Per-epoch metrics without wall times: a checkpoint holds only what the same inputs reproduce, so retraining
    on the same inputs gives the same bytes (and the work downstream of it is reused)."""
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


_METRIC_COLUMNS = ["epoch", "steps", "lr", "train_loss", "train_accuracy", "seconds", "test_loss", "test_accuracy"]


def import_probe(
    probe_cfg: dict, resolution: int, seed: int, output: str, classes: list[str] | None = None,
    log: str | None = None,
) -> None:
    """The probe from ``probe.weights`` without training: imagenet (local torch cache), a checkpoint file, or
    random (the seeded initialisation, with a head for ``classes``); written in :func:`train_probe`'s format.

    ``resolution`` is data.resolution: a difference from the weights' own resolution is logged as a warning.
    """
    import torch

    from .models import Network
    from .probes import ProbeSettings, load_probe_weights
    from .training import checkpoint

    probe = ProbeSettings.from_config(probe_cfg)
    with job_log(log) as say:
        weights = load_probe_weights(probe, seed, classes)
        with torch.device("meta"):
            net = Network(probe.arch, len(weights.classes))
        net.load_state_dict(weights.state_dict, assign=True)
        say(f"probe from {weights.origin}: {probe.arch}, {len(weights.classes)} source classes, "
            f"normalization {weights.normalization}")
        if weights.resolution is not None and weights.resolution != int(resolution):
            say(f"warning: the probe's weights were made at {weights.resolution}x{weights.resolution} pixels but "
                f"the tasks are at {resolution}x{resolution} (data.resolution); features may be weaker than at "
                f"{weights.resolution}")
        ckpt = checkpoint(
            net.eval(),
            role="probe",
            task=probe.kind,
            weights=weights.origin,
            classes=list(weights.classes),
            normalization=weights.normalization,
            resolution=int(weights.resolution if weights.resolution is not None else resolution),
            config=probe_cfg,
            seed=seed,
            metrics=[],
        )
        save_checkpoint(output, ckpt)


def init_random_probe(probe: str, seed: int, output: str, log: str | None = None) -> None:
    """The random-probe variant of a probe checkpoint: its architecture and head size at the seeded
    initialisation, with its classes, normalisation and resolution."""
    from .probes import seeded_network
    from .training import checkpoint

    with job_log(log) as say:
        source = load_checkpoint(probe)
        net = seeded_network(source["arch"], int(source["num_classes"]), seed)
        ckpt = checkpoint(
            net.eval(),
            role="probe",
            task="random",
            weights=f"seeded initialisation (seed {seed})",
            classes=list(source["classes"]),
            normalization=source["normalization"],
            resolution=source["resolution"],
            config={"arch": source["arch"], "weights": "random"},
            seed=seed,
            metrics=[],
        )
        save_checkpoint(output, ckpt)
        say(f"random probe: {source['arch']} with {source['num_classes']} outputs at its seeded initialisation")


def train_expert(
    probe: str, task_file: str, expert: str, expert_cfg: dict, seed: int, output: str, metrics: str,
    threads: int = 1, log: str | None = None,
) -> None:
    """Fine-tune the probe on one task's training split; keep weights, config, seed and per-epoch metrics.

    ``expert``: the task's name, or a replicate's (``<task>@r<r>``, :mod:`taskspace.replicates`), whose head and
    training are seeded from that name."""
    import torch

    from .replicates import split_replicate
    from .seeding import stable_seed
    from .study import ExpertsSettings
    from .training import TrainingSettings, checkpoint, fit, network_from_checkpoint

    train_cfg = TrainingSettings.from_config(ExpertsSettings.from_config(expert_cfg).train, "experts.train")
    with job_log(log) as say:
        device = prepare_device(threads)
        probe_ckpt = load_checkpoint(probe)
        data, _ = read_task(task_file)
        net = network_from_checkpoint(probe_ckpt)
        task, replicate = split_replicate(expert)
        task_seed = stable_seed(seed, "expert", expert)
        net.replace_head(len(data.class_names), torch.Generator().manual_seed(task_seed))
        x_tr, y_tr, x_te, y_te = _split_tensors(data, probe_ckpt["normalization"])
        history = fit(net, x_tr, y_tr, train_cfg, task_seed, device, x_te, y_te)
        say(f"expert {expert}: final test accuracy {history[-1]['test_accuracy']:.3f}")
        df = pd.DataFrame(history, columns=_METRIC_COLUMNS)
        df.insert(0, "expert", expert)
        extra = {"replicate": replicate} if replicate else {}  # replicate 0 as without replicates
        ckpt = checkpoint(
            net.cpu(), role="expert", task=task, classes=list(data.class_names),
            normalization=probe_ckpt["normalization"], resolution=probe_ckpt["resolution"],
            config=expert_cfg, seed=seed, metrics=_untimed(history), **extra,
        )
        write_table(df, metrics, {"experts": expert_cfg, "seed": seed, "task": task, **extra})
        save_checkpoint(output, ckpt)


# ---------------------------------------------------------------- transfer


def _stored_table_row(path: Path, key: dict) -> dict | None:
    """The row stored at ``path`` when its key equals ``key``; None (with a warning if unreadable or made by
    another version) otherwise."""
    from .reuse import matches, unreadable

    if not path.is_file():
        return None
    try:
        stored_key = read_provenance(path).get("reuse_key")
        if not matches(stored_key, key, str(path)):
            return None
        rows = read_table(path).to_dict("records")
        if len(rows) != 1:
            raise ValueError(f"{len(rows)} rows, expected 1")
    except Exception as err:  # truncated or corrupt files raise from pyarrow in many ways
        unreadable(path, err)
        return None
    return rows[0]


def transfer_pair(
    net, data, normalization: dict, expert: str, task: str, transfer_cfg: dict, device, images=None
) -> dict:
    """One transfer pair: the frozen ``net``'s features of every image of ``data`` (``images``: its uint8 images as
    a tensor, already on ``device``; batches converted there, under inference mode), a linear classifier on the
    training split, its error on the test split, and the per-expert transferability scores of ``transfer.scores``
    on the training split (from the same features and the expert's own head: no further forward pass); the row."""
    import torch

    from .transfer import TransferSettings, image_features, linear_probe_error, pair_row
    from .transferability import expert_scores

    settings = TransferSettings.from_config(transfer_cfg)
    t1 = time.perf_counter()
    if images is None:
        images = torch.from_numpy(np.ascontiguousarray(data.images))
    feats = image_features(net, images, normalization, settings.batch_size, device)
    t2 = time.perf_counter()
    tr = torch.from_numpy(data.is_train)
    y = torch.from_numpy(data.labels)
    result = linear_probe_error(
        feats[tr], y[tr], feats[~tr], y[~tr], len(data.class_names), settings.l2, settings.max_iter,
    )
    t3 = time.perf_counter()
    row = pair_row(expert, task, data.labels, data.is_train)
    row.update(result)
    row.update(expert_scores(net, feats[tr], data.labels[data.is_train], list(settings.scores),
                             device, f"expert {expert!r} on task {task!r}"))
    row.update(classifier="logistic", l2=settings.l2, seconds_load=0.0, seconds_features=t2 - t1,
               seconds_fit=t3 - t2, seconds_scores=time.perf_counter() - t3)
    return row


def transfer_batch(
    experts: dict[str, str], columns: dict[str, list[str]], task_files: dict[str, str], transfer_cfg: dict,
    output: str, store: str, threads: int = 1, log: str | None = None,
) -> dict[str, list[list[str]]]:
    """The transfer columns of a batch of experts: ``experts`` maps an expert to its checkpoint, ``columns`` an
    expert to its targets, ``task_files`` a target to its task file. Each task file is read once and each expert
    loaded once (when a pair of it is computed); tasks go through every expert of the batch that needs them.

    A pair is computed only when no stored result under ``store`` has the same key: the sha256 of the expert
    checkpoint and of the task file, and the transfer config (:mod:`taskspace.reuse`). Writes the batch's rows to
    ``output`` (provenance: which pairs were computed, which reused) and returns those two lists of [expert, task].
    """
    from .reuse import file_digest, make_key
    from .training import network_from_checkpoint

    with job_log(log) as say:
        device = prepare_device(threads)
        expert_digests = {e: file_digest(path) for e, path in sorted(experts.items())}
        nets: dict[str, tuple] = {}
        rows, done = [], {"computed": [], "reused": []}
        for task in sorted({t for e in experts for t in columns[e]}):
            task_digest, data, images, load = file_digest(task_files[task]), None, None, 0.0
            for expert in sorted(e for e in experts if task in columns[e]):
                key = make_key({"expert": expert_digests[expert], "task": task_digest}, transfer=transfer_cfg)
                stored = reuse_transfer(store, expert, task)
                row = _stored_table_row(stored, key)
                if row is None:
                    t0 = time.perf_counter()
                    if expert not in nets:
                        ckpt = load_checkpoint(experts[expert])
                        nets[expert] = (network_from_checkpoint(ckpt).to(device), ckpt["normalization"])
                    if data is None:  # read once; its uint8 images go to the device once for every expert
                        import torch

                        data, _ = read_task(task_files[task])
                        images = torch.from_numpy(np.ascontiguousarray(data.images)).to(device)
                    net, normalization = nets[expert]
                    load = time.perf_counter() - t0
                    row = transfer_pair(net, data, normalization, expert, task, transfer_cfg, device, images)
                    row["seconds_load"] = load
                    write_table(pd.DataFrame([row]), stored, {"transfer": transfer_cfg, "reuse_key": key})
                    done["computed"].append([expert, task])
                    say(f"{expert} -> {task}: test error {row['test_error']:.4f} (computed)")
                else:
                    done["reused"].append([expert, task])
                    say(f"{expert} -> {task}: test error {row['test_error']:.4f} (reused: same inputs)")
                rows.append(row)
        table = pd.DataFrame(rows).sort_values(["expert", "task"], kind="mergesort")
        write_table(table, output, {"transfer": transfer_cfg, "experts": sorted(experts), **done})
        say(f"{len(done['computed'])} pairs computed, {len(done['reused'])} reused")
        return done


def gather_transfer(inputs: list[str], output: str, replicates: str, transfer_cfg: dict) -> pd.DataFrame:
    """The transfer batches' rows as the matrix with its replicate axis (``replicates``: every replicate's row,
    :func:`taskspace.replicates.with_replicate_axis`) and as its replicate mean (``output``, which selection is
    scored against; with one replicate, the batches' rows as they are)."""
    from .replicates import replicate_count, replicate_mean, with_replicate_axis

    per_replicate = with_replicate_axis(pd.concat([read_table(p) for p in inputs], ignore_index=True))
    count = replicate_count(per_replicate)
    write_table(per_replicate, replicates, {"transfer": transfer_cfg, "replicates": count})
    mean = replicate_mean(per_replicate)
    write_table(mean, output, {"transfer": transfer_cfg} | ({"replicates": count} if count > 1 else {}))
    return mean


# ---------------------------------------------------------------- embeddings


def embed_tasks(
    task_files: dict[str, str], methods: dict[str, tuple[str, dict]], probes: dict[str, str], seed: int,
    output: str, store: str, threads: int = 1, log: str | None = None,
) -> dict[str, list[list[str]]]:
    """Every embedding of a batch of tasks (``task_files``: task -> task file), written to ``output`` in the layout of
    ``embeddings.h5`` (a group per method entry, in it a group per task). ``methods`` maps a config entry's name to
    (registered method, its embed config), ``probes`` a probe kind (pretrained, random) to its checkpoint; each
    probe is loaded once.

    An embedding is computed only when no stored one under ``store`` has the same key: the sha256 of the probe
    checkpoint it reads and of the task file, the method, its config and the seed (:mod:`taskspace.reuse`); the
    stored file (``store/embeddings/{name}/{task}.h5``: dataset ``embedding``, extra arrays such as ``trivial``,
    provenance as attrs) is what ``output`` copies. Returns which (name, task) were computed and which reused.
    """
    from .embeddings import get_method
    from .reuse import file_digest, make_key, matches, unreadable
    from .seeding import stable_seed
    from .training import network_from_checkpoint

    with job_log(log) as say:
        device = prepare_device(threads)
        digests = {kind: file_digest(path) for kind, path in probes.items()}
        checkpoints: dict[str, dict] = {}
        done = {"computed": [], "reused": []}
        files: dict[str, dict[str, Path]] = {name: {} for name in methods}
        for task in sorted(task_files):
            task_digest = file_digest(task_files[task])
            loaded: dict[bool, object] = {}
            for name in sorted(methods):
                registered, method_cfg = methods[name]
                m = get_method(registered, method_cfg)
                key = make_key({"probe": digests[m.probe], "task": task_digest}, method=registered, name=name,
                               config=method_cfg, seed=seed)
                stored = reuse_embedding(store, name, task)
                files[name][task] = stored
                reuse = False
                if stored.is_file():
                    try:
                        reuse = matches(read_reuse_key(stored), key, str(stored))
                    except Exception as err:  # truncated or corrupt HDF5 raises OSError, KeyError, ...
                        unreadable(stored, err)
                if reuse:
                    done["reused"].append([name, task])
                    say(f"{name} embedding of {task}: reused (same inputs)")
                    continue
                if m.probe not in checkpoints:
                    checkpoints[m.probe] = load_checkpoint(probes[m.probe])
                ckpt = checkpoints[m.probe]
                try:
                    if m.uses_labels not in loaded:
                        loaded[m.uses_labels] = read_task(task_files[task], labels=m.uses_labels)[0]
                    data = loaded[m.uses_labels]
                    train = data.is_train
                    emb = m.embed(network_from_checkpoint(ckpt), data.images[train],
                                  data.labels[train] if m.uses_labels else None, ckpt["normalization"], device,
                                  stable_seed(seed, "embed", name, task))
                except (FloatingPointError, TaskDataError) as err:
                    raise type(err)(f"task {task!r}, embedding method {name!r}: {err}") from err
                arrays = {"embedding": emb.vector, **emb.extras}
                bad = [k for k, value in arrays.items() if not np.isfinite(value).all()]
                if bad:
                    raise FloatingPointError(f"task {task!r}, embedding method {name!r}: non-finite values in {bad}")
                write_embedding_file(stored, arrays, {"method": registered, "name": name, "task": task,
                                                      "probe": str(probes[m.probe]), "seed": seed, "config": method_cfg,
                                                      "taskspace_version": __version__, **emb.attrs}, key)
                done["computed"].append([name, task])
                say(f"{name} embedding of {task}: shape {tuple(emb.vector.shape)} (computed)")
        gather_embeddings(files, output)
        say(f"{len(done['computed'])} embeddings computed, {len(done['reused'])} reused")
        return done


def compute_distances(name: str, method: str, method_cfg: dict, embeddings: str, output: str) -> None:
    """``results/distances/{name}.parquet``: every score of the method from every task (source) to every other,
    from ``embeddings`` (an embeddings.h5)."""
    from .embeddings import get_method

    df = get_method(method, method_cfg).distances(read_method_group(embeddings, name))
    write_table(_label_distances(name, df), output, {"method": name, "registered": method, "config": method_cfg})


def _label_distances(name: str, df: pd.DataFrame) -> pd.DataFrame:
    """Add the selector label (``name`` or ``name.kind``) as ``method``, keeping ``embedding`` and ``kind``."""
    df = df.copy()
    df.insert(0, "method", [name if k == "" else f"{name}.{k}" for k in df["kind"]])
    df.insert(1, "embedding", name)
    return df


def _embeddings_digest(embeddings: dict) -> str:
    """sha256 over every task's arrays (name, dtype, shape, bytes), tasks and arrays in sorted order."""
    import hashlib

    h = hashlib.sha256()
    for task in sorted(embeddings):
        e = embeddings[task]
        for key, value in sorted({"embedding": e.vector, **e.extras}.items()):
            value = np.ascontiguousarray(value)
            h.update(f"{task}/{key}/{value.dtype.str}/{value.shape}".encode())
            h.update(value.tobytes())
    return h.hexdigest()


def _table_digest(df: pd.DataFrame) -> str:
    """sha256 of a table's values (timing columns aside): equal for equal content, whatever the file's bytes."""
    import hashlib

    kept = df[[c for c in df.columns if not c.startswith("seconds")]].reset_index(drop=True)
    return hashlib.sha256(pd.util.hash_pandas_object(kept, index=False).to_numpy().tobytes()).hexdigest()


def learn_model2vec(
    name: str, method_cfg: dict, transfer: str, embeddings: str, output: str, model: str,
    log: str | None = None, threads: int = 1, store: str | None = None,
) -> bool:
    """MODEL2VEC: cross-validated distances (``output``; ``folds``) and the biases fitted on every target (``model``),
    on the ``base`` method's embeddings in ``embeddings`` (an embeddings.h5).

    With a ``store``, the fit is reused when the base embeddings' arrays, the transfer table's values and the
    config are identical to a stored fit's (:mod:`taskspace.reuse`). Returns whether it was computed.
    """
    from .embeddings.model2vec import held_out_distances
    from .reuse import make_key, matches, place, unreadable

    with job_log(log) as say:
        prepare_device(threads)
        base = read_method_group(embeddings, method_cfg["base"])
        table = read_table(transfer)
        key = make_key({"embeddings": _embeddings_digest(base), "transfer": _table_digest(table)}, name=name,
                       config=method_cfg)
        stored = reuse_model2vec(store, name) if store else None
        if stored is not None and (stored / "key.json").is_file():
            try:
                if matches(json.loads((stored / "key.json").read_text()), key, str(stored)):
                    place(stored / "distances.parquet", output)
                    place(stored / "model.h5", model)
                    say(f"{name}: reused (same base embeddings, transfer table and config)")
                    return False
            except Exception as err:  # a partial store: missing file, unreadable key
                unreadable(stored, err)
        targets = (stored / "distances.parquet", stored / "model.h5") if stored is not None else (output, model)
        if stored is not None:
            (stored / "key.json").unlink(missing_ok=True)
        df, full = held_out_distances(base, table, method_cfg, GENERIC)
        write_table(_label_distances(name, df), targets[0], {"method": name, "registered": "model2vec",
                                                              "config": method_cfg})
        write_model2vec(targets[1], full.experts, full.model_embeddings, full.biases,
                        {"method": name, "base": method_cfg["base"], "config": method_cfg,
                         "temperature": full.temperature, "final_loss": full.losses[-1],
                         "taskspace_version": __version__})
        if stored is not None:
            with atomic_path(stored / "key.json") as tmp:
                tmp.write_text(json.dumps(key, sort_keys=True))
            place(targets[0], output)
            place(targets[1], model)
        say(f"{name}: {len(base)} experts, final training loss {full.losses[-1]:.4f} (computed)")
        return True


# ---------------------------------------------------------------- selection


def score(
    transfer: str, distances: list[str], selection: str, summary: str, meta_tasks: dict | None = None,
    comparisons: str | None = None, selection_cfg: dict | None = None, scores: list[str] | None = None,
    tasks: str | None = None, replicates: str | None = None,
) -> None:
    """Score every method's choices against the transfer matrix of each meta-task (``selection``/``summary``), and
    compare every two methods on their common targets (``comparisons``).

    ``meta_tasks``: {name: {"targets": [...], "experts": [...]}}; None scores the whole matrix as ``all``.
    Within a meta-task, a target's candidates are that meta-task's experts (never its own). ``selection_cfg``: the
    config's ``selection`` section (bootstrap, rerank); ``scores``: the per-expert scores of transfer.parquet
    scored as selectors (None: every score column); ``tasks``: the task table, whose training-image counts rank the
    experts for the target-agnostic ``agnostic.most_images`` (None: that selector is left out); ``replicates``: the
    matrix with its replicate axis, ``transfer`` being its mean (with two or more replicates the noise ceiling is
    scored; None: it is not).
    """
    import warnings

    from .selection import method_order, score_selection
    from .study import SelectionSettings, rerank_selectors
    from .uncertainty import compare_methods

    settings = SelectionSettings.from_config(selection_cfg)
    table = read_table(transfer)
    per_replicate = read_table(replicates) if replicates is not None else None
    dist = pd.concat([read_table(p) for p in distances], ignore_index=True) if distances else None
    images = None
    if tasks is not None:
        task_table = read_table(tasks)
        images = dict(zip(task_table["task"].astype(str), task_table["n_train"].astype(int)))
    rerank = rerank_selectors(settings.rerank, sorted(set(dist["method"])) if dist is not None else [],
                              list(scores) if scores is not None else None)
    if meta_tasks is None:
        meta_tasks = {"all": {"targets": sorted(set(table["task"])),
                              "experts": sorted(set(table["expert"]) - {GENERIC})}}
    selections, summaries, compared = [], [], []
    for name, spec in meta_tasks.items():
        experts, targets = set(spec["experts"]), set(spec["targets"])
        t = table[(table["expert"].isin(experts | {GENERIC})) & table["task"].isin(targets)]
        d = None if dist is None else dist[dist["source"].isin(experts) & dist["target"].isin(targets)]
        r = None if per_replicate is None else per_replicate[
            per_replicate["expert"].isin(experts) & per_replicate["task"].isin(targets)]
        sel, summ = score_selection(t, d, generic=GENERIC, scores=scores, rerank=rerank,
                                    bootstrap=settings.bootstrap, expert_images=images, replicates=r)
        for row in summ[summ["n_skipped"] > 0].itertuples():
            warnings.warn(f"meta-task {name!r}: {row.method} is undefined on {row.n_skipped} target(s) and made no "
                          "choice there (see the transfer log for which expert and task)", RuntimeWarning)
        selections.append(sel.assign(meta_task=name))
        summaries.append(summ.assign(meta_task=name))
        order = method_order(sel["method"].unique(), GENERIC)
        compared.append(compare_methods(sel, order, settings.bootstrap).assign(meta_task=name))
    provenance = {"meta_tasks": meta_tasks, "selection": selection_cfg or {}, "scores": scores,
                  "expert_images": images}
    write_table(_meta_task_first(pd.concat(selections, ignore_index=True)), selection, provenance)
    write_table(_meta_task_first(pd.concat(summaries, ignore_index=True)), summary, provenance)
    if comparisons is not None:
        write_table(_meta_task_first(pd.concat(compared, ignore_index=True)), comparisons, provenance)


def _meta_task_first(df: pd.DataFrame) -> pd.DataFrame:
    return df[["meta_task", *[c for c in df.columns if c != "meta_task"]]]


def _square(dist: pd.DataFrame, tasks: list[str]) -> pd.DataFrame | None:
    """One selector kind of a distance table (sym if it has one, else its single kind) as a task x task matrix over
    ``tasks`` (diagonal 0); None when the table does not cover every pair."""
    kinds = list(dict.fromkeys(dist["kind"]))
    kind = "sym" if "sym" in kinds else "" if "" in kinds else kinds[0]
    d = dist[(dist["kind"] == kind) & dist["source"].isin(tasks) & dist["target"].isin(tasks)]
    m = d.pivot_table(index="source", columns="target", values="distance", aggfunc="first")
    m = m.reindex(index=tasks, columns=tasks)
    for t in tasks:
        m.loc[t, t] = 0.0
    return None if m.isna().any().any() else m.astype(float)


def _percent(value: float) -> float:
    return round(100.0 * value, 2) if np.isfinite(value) else float("nan")


def report_tables(summary: pd.DataFrame, comparisons: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The summary and comparison tables as a reader wants them in the report: percentages, intervals beside."""
    s = pd.DataFrame({
        "method": summary["method"], "kind": summary["kind"], "cost (passes)": summary["cost"].round(1),
        "targets": summary["n_targets"], "skipped": summary["n_skipped"],
        "mean rel. increase %": summary["mean_relative_increase"].map(_percent),
        "95% CI low": summary["mean_relative_increase_lo"].map(_percent),
        "95% CI high": summary["mean_relative_increase_hi"].map(_percent),
        "top-1 %": summary["top1_hit_rate"].map(_percent),
        "top-1 CI low": summary["top1_hit_rate_lo"].map(_percent),
        "top-1 CI high": summary["top1_hit_rate_hi"].map(_percent),
        "rank corr": summary["mean_rank_corr"].round(3),
        "weighted tau": summary["mean_weighted_tau"].round(3),
        "tau CI low": summary["mean_weighted_tau_lo"].round(3),
        "tau CI high": summary["mean_weighted_tau_hi"].round(3),
    })
    c = pd.DataFrame({
        "A": comparisons["method_a"], "B": comparisons["method_b"], "targets": comparisons["n_targets"],
        "mean A - B (points)": comparisons["mean_difference"].map(_percent),
        "95% CI low": comparisons["difference_lo"].map(_percent),
        "95% CI high": comparisons["difference_hi"].map(_percent),
        "A wins": comparisons["wins"], "ties": comparisons["ties"], "A loses": comparisons["losses"],
        "Wilcoxon p": comparisons["wilcoxon_p"].round(4), "verdict": comparisons["verdict"],
    })
    return s, c


def plot(meta_task: str, inputs: dict, outputs: dict, levels: list[str], seed: int = 0) -> None:
    """The papers' figures of one meta-task and its report tables, from the run's tables only.

    ``inputs``: transfer, selection, summary, comparisons, tasks (Parquet), embeddings (embeddings.h5), distances
    (list of distance Parquet files); ``outputs``: violin, bars, frontier, heatmaps, maps, norms, taxonomy (PNG),
    summary_table, comparisons_table (CSV). ``levels``: the taxonomy levels, coarsest first; tasks are coloured by
    the level above their own (the only level when there is one).
    """
    from .fidelity import taxonomic_distance
    from .figures import (
        plot_cost_frontier,
        plot_distance_heatmaps,
        plot_message,
        plot_norm_vs_error,
        plot_summary_ci,
        plot_task_maps,
        plot_taxonomy_curve,
    )
    from .plots import plot_selection
    from .study import group_level

    sel, summ, table = read_table(inputs["selection"]), read_table(inputs["summary"]), read_table(inputs["transfer"])
    comp = read_table(inputs["comparisons"])
    spec = read_provenance(inputs["selection"]).get("meta_tasks", {}).get(meta_task)
    if spec is None:
        raise ValueError(f"{inputs['selection']}: no meta-task {meta_task!r}")
    sel = sel[sel["meta_task"] == meta_task].drop(columns="meta_task")
    summ = summ[summ["meta_task"] == meta_task].drop(columns="meta_task")
    comp = comp[comp["meta_task"] == meta_task].drop(columns="meta_task")
    table = table[table["expert"].isin({*spec["experts"], GENERIC}) & table["task"].isin(spec["targets"])]
    tasks = sorted(set(spec["targets"]) | set(spec["experts"]))

    info = read_table(inputs["tasks"]).set_index("task")
    level = group_level(levels)
    groups = info.loc[tasks, level].astype(str) if level else pd.Series("all", index=tasks)

    plot_selection(table, sel, outputs["violin"], generic=GENERIC)
    plot_summary_ci(summ, outputs["bars"], generic=GENERIC)
    plot_cost_frontier(summ, outputs["frontier"])

    matrices = {}
    for path in inputs["distances"]:
        dist = read_table(path)
        m = _square(dist, tasks)
        if m is not None:
            matrices[str(dist["embedding"].iloc[0])] = m
    plot_distance_heatmaps(matrices, groups, outputs["heatmaps"], title=f"meta-task {meta_task}")
    taxonomic = taxonomic_distance(info.loc[tasks].reset_index(), levels) if levels else None
    plot_taxonomy_curve(matrices, taxonomic if taxonomic is not None else pd.DataFrame(
        0, index=tasks, columns=tasks), outputs["taxonomy"])

    vectors, norms = {}, {}
    for method, arrays in read_task_arrays(inputs["embeddings"], tasks).items():
        vecs = {t: np.asarray(arrays[t]["embedding"], dtype=float).ravel() for t in tasks}
        if len({v.size for v in vecs.values()}) == 1:
            vectors[method] = pd.DataFrame.from_dict(vecs, orient="index").loc[tasks]
        if all("trivial" in arrays[t] for t in tasks):
            norms[method] = pd.Series({t: float(np.abs(vecs[t] - np.asarray(
                arrays[t]["trivial"], dtype=float).ravel()).sum()) for t in tasks})
    plot_task_maps(vectors, groups, outputs["maps"], seed=seed)
    best = sel.drop_duplicates("target").set_index("target")["optimal_error"]
    if norms:
        plot_norm_vs_error({m: n.loc[[t for t in n.index if t in best.index]] for m, n in norms.items()}, best,
                           groups, outputs["norms"])
    else:
        plot_message(outputs["norms"], "Embedding norm vs best expert's error",
                     "No configured embedding method has a trivial embedding to measure a norm from\n"
                     "(task2vec, task2vec_mc and pseudotask do: add one to embeddings.methods).")

    s, c = report_tables(summ, comp)
    for frame, path in ((s, outputs["summary_table"]), (c, outputs["comparisons_table"])):
        with atomic_path(path) as tmp:
            frame.to_csv(tmp, index=False)
