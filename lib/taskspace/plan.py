"""The plan of a run: from a validated config, every task, expert, batch and method, every artifact the workflow
writes under ``results/``, and the params of the job that writes it.

The rules (``rules/common.smk``) take their lists and params from here, and ``taskspace check`` reads the same plan to
know what a finished run must hold and what config must have made each artifact: one source for both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .config import canonical, method_configs
from .errors import ConfigError

GENERIC = "generic"  # the probe, used as an expert
REUSE_STORE = "results/reuse"
PROBE_FILES = {"pretrained": "results/probe/probe.pt", "random": "results/probe/random.pt"}
# What plot_selection writes per meta-task (results/plots/{meta_task}/...).
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
        # The meta-tasks scored (target x expert matrices); only their (expert, target) pairs are computed.
        self.meta_tasks = meta_tasks(config, self.tasks, self.expert_tasks)
        self.meta_task_names = [m.name for m in self.meta_tasks]
        # Taxonomy levels above a task, coarsest first (tasks.parquet columns): the figures' groups and distances.
        self.taxonomy_levels = taxonomy_levels([self.specs[t] for t in self.tasks])
        # Every (expert, target) pair of the declared matrices, as one column of targets per expert.
        self.columns: dict[str, list[str]] = {}
        for expert, task in transfer_pairs(self.meta_tasks, GENERIC):
            self.columns.setdefault(expert, []).append(task)
        # Jobs cover batches of consecutive experts (transfer) and tasks (embeddings), sized by config["execution"].
        self.transfer_batches = batches(sorted(self.columns), config["execution"]["experts_per_transfer_job"])
        self.embed_batches = batches(self.tasks, config["execution"]["tasks_per_embed_job"])
        # Each embeddings.methods entry: (registered method, its config); unknown names stop here, naming the key.
        self.method_configs = {
            name: (registered, canonical(cfg)) for name, (registered, cfg) in method_configs(config).items()
        }
        self.methods = list(self.method_configs)
        self._method = {m: get_method(*self.method_configs[m]) for m in self.methods}
        # learned from other embeddings and the transfer matrix (MODEL2VEC)
        self.derived_methods = [m for m in self.methods if self._method[m].derived]
        self.embed_methods = [m for m in self.methods if m not in self.derived_methods]
        # Two-stage selectors: their embeddings and scores must be configured (full names checked when scoring).
        rerank_selectors(config["selection"]["rerank"], self.methods, config["transfer"]["scores"], entries_only=True)

    # -- inputs ------------------------------------------------------------------------------------------------------

    @staticmethod
    def task_file(task: str) -> str:
        return f"results/tasks/{task}.h5"

    @staticmethod
    def checkpoint_of(expert: str) -> str:
        return PROBE_FILES["pretrained"] if expert == GENERIC else f"results/experts/{expert}.pt"

    def transfer_runtime(self, batch: str, attempt: int) -> int:
        """Minutes for a transfer batch: 5 a pair (grows with each retry)."""
        return 5 * sum(len(self.columns[e]) for e in self.transfer_batches[batch]) * attempt

    def embed_runtime(self, batch: str, attempt: int) -> int:
        """Minutes for an embedding batch: 10 per task and method (grows with each retry)."""
        return 10 * len(self.embed_batches[batch]) * max(1, len(self.embed_methods)) * attempt

    def embed_probes(self) -> dict[str, str]:
        """The probe checkpoints the embedding methods read, by kind (pretrained, random)."""
        return {kind: PROBE_FILES[kind] for kind in sorted({self._method[m].probe for m in self.embed_methods})}

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

    def expert_params(self) -> dict:
        """The experts' training config: which tasks get one (experts.tasks) is left out, so listing one more expert
        trains just that one."""
        return {k: v for k, v in self.config["experts"].items() if k != "tasks"}

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
        out.append(Artifact("results/tasks.parquet", "tabulate_tasks"))
        if self.probe.kind == "source":
            out += [Artifact(PROBE_FILES["pretrained"], "train_probe"),
                    Artifact("results/probe/metrics.parquet", "train_probe")]
        else:
            out.append(Artifact(PROBE_FILES["pretrained"], "import_probe"))
        if "random" in self.embed_probes():
            out.append(Artifact(PROBE_FILES["random"], "init_random_probe"))
            if self.probe.kind == "source":
                out.append(Artifact("results/probe/random_metrics.parquet", "init_random_probe"))
        for t in self.expert_tasks:
            out += [Artifact(f"results/experts/{t}.pt", "train_expert", (("task", t),)),
                    Artifact(f"results/experts/{t}.metrics.parquet", "train_expert", (("task", t),))]
        out += [Artifact(f"results/transfer/part-{b}.parquet", "transfer_batch", (("batch", b),))
                for b in self.transfer_batches]
        out.append(Artifact("results/transfer.parquet", "gather_transfer"))
        out += [Artifact(f"results/embeddings/part-{b}.h5", "embed_batch", (("batch", b),)) for b in self.embed_batches]
        out.append(Artifact("results/embeddings.h5", "gather_embeddings"))
        out += [Artifact(f"results/distances/{m}.parquet", "compute_distances") for m in self.embed_methods]
        for m in self.derived_methods:
            out += [Artifact(f"results/distances/{m}.parquet", "learn_model2vec", (("method", m),)),
                    Artifact(f"results/model2vec/{m}.h5", "learn_model2vec", (("method", m),))]
        out += [Artifact(f"results/{name}.parquet", "score_selection") for name in ("selection", "summary", "comparisons")]
        out += [Artifact(f"results/plots/{m}/{f}", "plot_selection", (("meta_task", m),))
                for m in self.meta_task_names for f in PLOTS]
        return out
