"""The plan of a run: the config checked across its sections (:func:`validate_config`), and from it every task, expert, batch and method, every artifact the workflow
writes under ``results/``, and the params of the job that writes it.

The rules (``rules/common.smk``) take their lists and params from here, and ``taskspace check`` reads the same plan to
know what a finished run must hold and what config must have made each artifact: one source for both.
"""

from __future__ import annotations

import copy
import difflib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .config import canonical, load_schema, validate_schema, validate_section
from .errors import ConfigError
from .results import GENERIC, PLOTS, RESULTS, TABLES


def validate_config(config: dict, schema: dict | None = None) -> dict:
    """Validate ``config`` in place (defaults filled in) and return it; a ConfigError names the offending key.

    Beyond the schema: the probe section's cross-key checks, and ``data.resolution: auto`` replaced by the
    resolution of the probe's weights (see :func:`taskspace.probes.check_probe_config`).
    """
    from .probes import check_probe_config

    validate_schema(config, schema)
    if isinstance(config.get("probe"), dict) and isinstance(config.get("data"), dict):
        check_probe_config(config)
    return config


# The config a run reads when no --configfile is given: the demo's, in the working directory.
DEFAULT_CONFIG = "config.yaml"


def config_files(run: str | os.PathLike = ".", configfiles: list | None = None) -> list[Path]:
    """The files a run in ``run`` reads, as the Snakefile reads them: each ``--configfile`` in the order given, or
    else ``run/config.yaml`` alone. A named file is never merged over another file (the demo's included)."""
    if configfiles:
        return [Path(f) for f in configfiles]
    return [Path(run) / DEFAULT_CONFIG]


def load_config_files(files: list) -> dict:
    """The files merged in order, a later file's keys over an earlier one's at every level (as Snakemake merges
    several ``--configfile``); an unreadable file or one that is not a mapping is named."""
    merged: dict = {}
    for f in files:
        try:
            loaded = yaml.safe_load(Path(f).read_text()) or {}
        except (OSError, yaml.YAMLError) as err:
            raise ConfigError(f"{f}: not a readable config file ({err})") from err
        if not isinstance(loaded, dict):
            raise ConfigError(f"{f}: a config file holds a mapping of keys, not a {type(loaded).__name__}")
        _deep_update(merged, copy.deepcopy(loaded))
    return merged


def _deep_update(base: dict, new: dict) -> dict:
    for key, value in new.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _deep_update(base[key], value)
        else:
            base[key] = value
    return base


def effective_config(config: dict) -> dict:
    """The config a run uses: ``config`` (the merged files and any ``--config`` values) over the schema's defaults,
    checked across sections, keys sorted. The Snakefile and ``taskspace check-config`` both build it here."""
    return canonical(validate_config(copy.deepcopy(config)))


def config_digest(config: dict) -> str:
    """A short sha256 of an effective config as canonical JSON: the same digest means the same run settings."""
    import hashlib
    import json

    return hashlib.sha256(json.dumps(canonical(config), sort_keys=True).encode()).hexdigest()[:12]


def method_configs(config: dict, schema: dict | None = None) -> dict[str, tuple[str, dict]]:
    """{name: (registered method, its config)} for every entry of ``embeddings.methods`` (config validated).

    A name is either a registered method (its own section) or a key of ``embeddings.variants``, whose keys
    override the named method's section and are checked against that section's schema.
    """
    from .embeddings import known_methods

    schema = schema or load_schema()
    sections = schema["properties"]["embeddings"]["properties"]
    emb = config["embeddings"]
    variants = emb.get("variants", {})
    known = known_methods()
    out: dict[str, tuple[str, dict]] = {}
    for name in sorted(set(variants) & set(known)):
        raise ConfigError(f"config key embeddings.variants.{name}: a variant cannot reuse a method's name")
    for name in emb["methods"]:
        if name in variants:
            base = variants[name]["method"]
            where = f"embeddings.variants.{name}"
            if base not in known:
                raise ConfigError(f"config key {where}.method: unknown embedding method {base!r}; known: {known}")
            merged = copy.deepcopy(emb.get(base, {}))
            merged.update({k: copy.deepcopy(v) for k, v in variants[name].items() if k != "method"})
            if base in sections:
                merged = validate_section(f"embeddings.{base}", merged, where, schema)
            out[name] = (base, merged)
        elif name in known:
            out[name] = (name, emb.get(name, {}))
        else:
            close = difflib.get_close_matches(name, known + list(variants), n=1)
            raise ConfigError(
                f"config key embeddings.methods: unknown embedding method {name!r}"
                + (f" (did you mean {close[0]!r}?)" if close else "")
                + f"; known: {known}, variants: {sorted(variants)}"
            )
    for name, (base, cfg) in out.items():
        if base == "model2vec":
            if cfg["base"] not in out or out[cfg["base"]][0] not in ("task2vec", "task2vec_mc"):
                raise ConfigError(
                    f"config key embeddings.{name}.base: {cfg['base']!r} must be a Task2Vec method listed in "
                    f"embeddings.methods"
                )
    return out


REUSE_STORE = RESULTS.reuse_store()


@dataclass(frozen=True)
class Artifact:
    """One file the run writes: its path, the rule that writes it, and that job's wildcards."""

    path: str
    rule: str
    wildcards: tuple[tuple[str, str], ...] = ()

    @property
    def kind(self) -> str:
        return self.path.rsplit(".", 1)[-1]


class RunPlan:
    """Every list and param of the workflow, from a validated config (``config.validate_config``)."""

    def __init__(self, config: dict, version: str | None = None):
        from . import __version__
        from .data import plan_tasks
        from .embeddings import get_method
        from .probes import plan_probe
        from .replicates import replicate_names, split_replicate
        from .study import batches, expert_tasks, meta_tasks, rerank_selectors, taxonomy_levels, transfer_pairs

        self.config = config
        self.version = version or __version__
        self.specs = {spec.name: spec for spec in plan_tasks(config["data"])}
        # The probe's weights (probe.weights): only `source` pretrains on, and so splits, the source task.
        self.probe = plan_probe(config, self.specs.values())
        self.source_task = self.probe.source_task  # None unless probe.weights is source
        self.tasks = sorted(name for name, spec in self.specs.items() if spec.role == "task")
        self.split_tasks = ([self.source_task] if self.source_task else []) + self.tasks  # every task file written
        if GENERIC in self.tasks:
            raise ConfigError(f"data.tasks: {GENERIC!r} names the probe used as an expert; rename that task")
        self.expert_tasks = expert_tasks(config, self.tasks, {t: self.specs[t].n_train for t in self.tasks})
        self.experts = self.expert_tasks + [GENERIC]
        # Every expert trained: each expert task's replicates 0 .. R-1, replicate 0 named after its task (R = 1: the
        # expert tasks themselves; taskspace.replicates).
        self.replicates = int(config["experts"]["replicates"])
        self.trained_experts = replicate_names(self.expert_tasks, self.replicates)
        # The meta-tasks scored (target x expert matrices); only their (expert, target) pairs are computed.
        self.meta_tasks = meta_tasks(config, self.tasks, self.expert_tasks)
        self.meta_task_names = [m.name for m in self.meta_tasks]
        # Taxonomy levels above a task, coarsest first (tasks.parquet columns): the figures' groups and distances.
        self.taxonomy_levels = taxonomy_levels([self.specs[t] for t in self.tasks])
        # Every (expert, target) pair of the declared matrices, as one column of targets per expert.
        self.columns: dict[str, list[str]] = {}
        for expert, task in transfer_pairs(self.meta_tasks, GENERIC):
            self.columns.setdefault(expert, []).append(task)
        for expert in self.trained_experts:  # each replicate transfers to its task's column of targets
            task, _ = split_replicate(expert)
            if task in self.columns:
                self.columns[expert] = self.columns[task]
        # Jobs cover batches of consecutive experts (transfer) and tasks (embeddings), sized by config["execution"].
        self.transfer_batches = batches(sorted(self.columns), config["execution"]["experts_per_transfer_job"])
        self.embed_batches = batches(self.tasks, config["execution"]["tasks_per_embed_job"])
        # Each embeddings.methods entry: (registered method, its config); unknown names stop here, naming the key.
        self.method_configs = {
            name: (registered, canonical(cfg)) for name, (registered, cfg) in method_configs(config).items()
        }
        self.methods = list(self.method_configs)
        self._method = {m: get_method(*self.method_configs[m]) for m in self.methods}
        # Further embedding probes (embeddings.probes) that some method reads; a name no probe has stops here.
        declared = config["embeddings"].get("probes") or {}
        for m in self.methods:
            kind = self._method[m].probe
            if kind not in ("pretrained", "random") and kind not in declared:
                where = (f"embeddings.variants.{m}" if m in config["embeddings"].get("variants", {})
                         else f"embeddings.{m}")
                raise ConfigError(f"config key {where}.probe: {kind!r} is neither pretrained, random nor a probe of "
                                  f"embeddings.probes (declared: {sorted(declared) or 'none'})")
        self.named_probes = {name: declared[name] for name in
                             sorted({self._method[m].probe for m in self.methods} - {"pretrained", "random"})}
        self._check_sample_minimums(config)
        # learned from other embeddings and the transfer matrix (MODEL2VEC)
        self.derived_methods = [m for m in self.methods if self._method[m].derived]
        self.embed_methods = [m for m in self.methods if m not in self.derived_methods]
        # Two-stage selectors: their embeddings and scores must be configured (full names checked when scoring).
        rerank_selectors(config["selection"]["rerank"], self.methods, config["transfer"]["scores"], entries_only=True)

    def _check_sample_minimums(self, config: dict) -> None:
        """A method with a sample minimum (``min_samples``) refuses a task with fewer training images: say so before
        any job runs, naming the key and every such task, rather than stopping the run at its embeddings."""
        for m in self.methods:
            minimum = getattr(self._method[m].settings, "min_samples", None)
            if minimum is None:
                continue
            short = [t for t in self.tasks if self.specs[t].n_train < minimum]
            if short:
                variant = config["embeddings"].get("variants", {}).get(m) or {}
                where = (f"embeddings.variants.{m}" if "min_samples" in variant
                         else f"embeddings.{self.method_configs[m][0]}")  # a variant takes its method's section
                listed = ", ".join(f"{t} ({self.specs[t].n_train})" for t in short[:10])
                more = f" and {len(short) - 10} more" if len(short) > 10 else ""
                raise ConfigError(
                    f"config key {where}.min_samples: {minimum}, but {len(short)} task(s) have fewer training images: "
                    f"{listed}{more}. Leave them out (data.tasks, or the data source's min_images / min_classes) or "
                    "lower the minimum"
                )

    # -- inputs ------------------------------------------------------------------------------------------------------

    @staticmethod
    def task_file(task: str) -> str:
        return RESULTS.task(task)

    @staticmethod
    def expert_task_file(expert: str) -> str:
        """The task file an expert (any replicate) is trained on."""
        from .replicates import split_replicate

        return RESULTS.task(split_replicate(expert)[0])

    @staticmethod
    def checkpoint_of(expert: str) -> str:
        return RESULTS.expert(expert)

    def transfer_runtime(self, batch: str, attempt: int) -> int:
        """Minutes for a transfer batch: 5 a pair (grows with each retry)."""
        return 5 * sum(len(self.columns[e]) for e in self.transfer_batches[batch]) * attempt

    def embed_runtime(self, batch: str, attempt: int) -> int:
        """Minutes for an embedding batch: 10 per task and method (grows with each retry)."""
        return 10 * len(self.embed_batches[batch]) * max(1, len(self.embed_methods)) * attempt

    def embed_probes(self) -> dict[str, str]:
        """The probe checkpoints the embedding methods read, by kind (pretrained, random)."""
        return {kind: RESULTS.probe(kind) for kind in sorted({self._method[m].probe for m in self.embed_methods})}

    # -- params, rule by rule ----------------------------------------------------------------------------------------

    def split_params(self, task: str) -> dict:
        """The data config that makes this task (taskspace.data.task_config): no task list, no other source's
        section, no other task's overrides; for data.source combined, only the task's own entry."""
        from .data import task_config

        return task_config(self.config["data"], task)

    def probe_params(self) -> dict:
        """The probe config its kind of weights depends on (probe.train only for source): changing another key of
        the probe section reruns nothing."""
        from .probes import probe_config

        return probe_config(self.config["probe"])

    def probe_weights_file(self) -> list[str]:
        """The checkpoint file probe.weights names (an input of import_probe), or none."""
        return [self.probe.weights_file] if self.probe.weights_file else []

    def probe_classes(self) -> list[str] | None:
        """The head's class names of a random probe (from the plan); None for the other kinds."""
        return list(self.probe.classes) if self.probe.classes else None

    def named_probe_params(self, name: str) -> dict:
        """The config that makes the further probe ``name`` (import_named_probe's params)."""
        from .probes import probe_config

        return probe_config(self.named_probes[name])

    def named_probe_file(self, name: str) -> list[str]:
        """The checkpoint file the further probe ``name`` is read from (an input of its job), or none."""
        from .probes import CHECKPOINT, weights_kind

        weights = self.named_probes[name]["weights"]
        return [weights] if weights_kind(weights) == CHECKPOINT else []

    def expert_params(self) -> dict:
        """The experts' training config: which tasks get one (experts.tasks) and how many replicates
        each gets are left out, so listing one more expert, or one more replicate, trains just that one."""
        return {k: v for k, v in self.config["experts"].items() if k not in ("tasks", "replicates")}

    def batch_targets(self, batch: str) -> list[str]:
        """Every task a transfer batch reads (the union of its experts' columns), sorted."""
        return sorted({t for e in self.transfer_batches[batch] for t in self.columns[e]})

    def meta_task_params(self) -> dict:
        """The meta-tasks as plain data for the scoring rule's params."""
        return {m.name: {"targets": list(m.targets), "experts": list(m.experts)} for m in self.meta_tasks}

    def embed_params(self) -> dict:
        """Every embedded method: {name: [registered method, its config without the distance-only keys (alpha)]};
        changing a distance-only key re-embeds nothing."""
        return {m: [self.method_configs[m][0], self._method[m].embed_config()] for m in self.embed_methods}

    def distance_params(self) -> dict:
        """Every embedded method's entry: {name: [registered method, its whole config]} (the distances' params:
        changing alpha reruns the distances, not the embeddings)."""
        return {m: [self.method_configs[m][0], self.method_configs[m][1]] for m in self.embed_methods}

    def params(self, rule: str, wildcards: dict[str, str] | None = None) -> dict[str, Any]:
        """The params of a job of ``rule`` (as its ``params:`` block gives them), by name."""
        w = wildcards or {}
        c = self.config
        seed, version = c["seed"], self.version
        if rule == "split_task":
            return {"data": self.split_params(w["task"]), "version": version}
        if rule == "tabulate_tasks":
            return {"data": c["data"], "tasks": self.split_tasks}
        if rule == "train_probe":
            return {"probe": self.probe_params(), "seed": seed, "version": version}
        if rule == "init_random_probe":
            if self.probe.kind == "source":
                return {"probe": {"arch": c["probe"]["arch"], "weights": "random"}, "seed": seed, "version": version}
            return {"seed": seed, "version": version}
        if rule == "import_probe":
            return {"probe": self.probe_params(), "classes": self.probe_classes(),
                    "resolution": c["data"]["resolution"], "seed": seed, "version": version}
        if rule == "import_named_probe":
            return {"probe": self.named_probe_params(w["probe"]), "classes": None,
                    "resolution": c["data"]["resolution"], "seed": seed, "version": version}
        if rule == "train_expert":
            return {"experts": self.expert_params(), "seed": seed, "version": version}
        if rule == "transfer_batch":
            b = w["batch"]
            return {"experts": self.transfer_batches[b], "targets": self.batch_targets(b),
                    "columns": {e: self.columns[e] for e in self.transfer_batches[b]}, "transfer": c["transfer"],
                    "store": REUSE_STORE, "version": version}
        if rule == "gather_transfer":
            return {"transfer": c["transfer"]}
        if rule == "embed_batch":
            return {"tasks": self.embed_batches[w["batch"]], "methods": self.embed_params(), "seed": seed,
                    "store": REUSE_STORE, "version": version}
        if rule == "gather_embeddings":
            return {}
        if rule == "compute_distances":
            return {"methods": self.distance_params()}
        if rule == "learn_model2vec":
            return {"method": self.method_configs[w["method"]][1], "store": REUSE_STORE, "version": version}
        if rule == "score_selection":
            return {"meta_tasks": self.meta_task_params(), "selection": c["selection"],
                    "scores": c["transfer"]["scores"]}
        if rule == "plot_selection":
            return {"levels": self.taxonomy_levels, "seed": c["selection"]["bootstrap"]["seed"]}
        raise KeyError(f"no rule {rule!r}")

    # -- what a finished run holds -----------------------------------------------------------------------------------

    def artifacts(self) -> list[Artifact]:
        """Every file ``rule all`` makes the workflow write (logs and benchmark files aside), in stage order."""
        out = [Artifact(self.task_file(t), "split_task", (("task", t),)) for t in self.split_tasks]
        out.append(Artifact(RESULTS.tasks_table(), "tabulate_tasks"))
        if self.probe.kind == "source":
            out += [Artifact(RESULTS.probe(), "train_probe"),
                    Artifact(RESULTS.probe_metrics(), "train_probe")]
        else:
            out.append(Artifact(RESULTS.probe(), "import_probe"))
        if "random" in self.embed_probes():
            out.append(Artifact(RESULTS.probe("random"), "init_random_probe"))
            if self.probe.kind == "source":
                out.append(Artifact(RESULTS.probe_metrics("random"), "init_random_probe"))
        out += [Artifact(RESULTS.probe(name), "import_named_probe", (("probe", name),)) for name in self.named_probes]
        for e in self.trained_experts:
            out += [Artifact(RESULTS.expert(e), "train_expert", (("task", e),)),
                    Artifact(RESULTS.expert_metrics(e), "train_expert", (("task", e),))]
        out += [Artifact(RESULTS.transfer_part(b), "transfer_batch", (("batch", b),))
                for b in self.transfer_batches]
        out += [Artifact(RESULTS.transfer(), "gather_transfer"), Artifact(RESULTS.transfer_replicates(), "gather_transfer")]
        out += [Artifact(RESULTS.embeddings_part(b), "embed_batch", (("batch", b),)) for b in self.embed_batches]
        out.append(Artifact(RESULTS.embeddings(), "gather_embeddings"))
        out += [Artifact(RESULTS.distances(m), "compute_distances") for m in self.embed_methods]
        for m in self.derived_methods:
            out += [Artifact(RESULTS.distances(m), "learn_model2vec", (("method", m),)),
                    Artifact(RESULTS.model2vec(m), "learn_model2vec", (("method", m),))]
        out += [Artifact(RESULTS.table(name), "score_selection") for name in TABLES]
        out += [Artifact(RESULTS.plot(m, f), "plot_selection", (("meta_task", m),))
                for m in self.meta_task_names for f in PLOTS]
        return out
