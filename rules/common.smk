# Imports, the config check, the task and expert lists, wildcard constraints and every input function.
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "lib"))

from taskspace import __version__ as TASKSPACE_VERSION
from taskspace.config import canonical, method_configs, validate_config
from taskspace.embeddings import get_method
from taskspace.errors import ConfigError
from taskspace.data import plan_tasks
from taskspace.probes import plan_probe, probe_config
from taskspace.study import (
    batches,
    expert_tasks,
    meta_tasks,
    rerank_selectors,
    taxonomy_levels,
    transfer_pairs,
)

# Schema check (defaults filled in) and the task plan: bad input stops here, before any job runs.
validate_config(config)
# Sorted keys: params compare equal whatever the key order of the config file.
_canonical = canonical(config)
config.clear()
config.update(_canonical)
PLAN = {spec.name: spec for spec in plan_tasks(config["data"])}
# The probe's weights (probe.weights): only `source` pretrains on, and so splits, the source task.
PROBE = plan_probe(config, PLAN.values())
SOURCE_TASK = PROBE.source_task  # None unless probe.weights is source
TASKS = sorted(name for name, spec in PLAN.items() if spec.role == "task")
# Every task file the run writes.
SPLIT_TASKS = ([SOURCE_TASK] if SOURCE_TASK else []) + TASKS
GENERIC = "generic"
if GENERIC in TASKS:
    raise ConfigError(
        f"data.tasks: {GENERIC!r} names the probe used as an expert; rename that task"
    )
EXPERT_TASKS = expert_tasks(config, TASKS, {t: PLAN[t].n_train for t in TASKS})  # tasks that get an expert
EXPERTS = EXPERT_TASKS + [GENERIC]
# The meta-tasks scored (target x expert matrices); only their (expert, target) pairs are computed.
META_TASKS = meta_tasks(config, TASKS, EXPERT_TASKS)
META_TASK_NAMES = [m.name for m in META_TASKS]
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
# Taxonomy levels above a task, coarsest first (tasks.parquet columns): the figures' groups and distances.
TAXONOMY_LEVELS = taxonomy_levels([PLAN[t] for t in TASKS])
# Every (expert, target) pair of the declared matrices, as one column of targets per expert.
COLUMNS = {}
for _expert, _task in transfer_pairs(META_TASKS, GENERIC):
    COLUMNS.setdefault(_expert, []).append(_task)
# Jobs cover batches of consecutive experts (transfer) and tasks (embeddings), sized by config["execution"].
TRANSFER_BATCHES = batches(sorted(COLUMNS), config["execution"]["experts_per_transfer_job"])
EMBED_BATCHES = batches(TASKS, config["execution"]["tasks_per_embed_job"])
# Units of work (a transfer pair, an embedding) kept with the sha256 of their inputs, so that a rerun batch job
# reuses those whose inputs are byte-identical (taskspace.reuse).
REUSE_STORE = "results/reuse"
# Each embeddings.methods entry: (registered method, its config); unknown names stop here, naming the key.
METHOD_CONFIGS = {
    name: (registered, canonical(cfg))
    for name, (registered, cfg) in method_configs(config).items()
}
METHODS = list(METHOD_CONFIGS)
DERIVED_METHODS = [
    m for m in METHODS if get_method(*METHOD_CONFIGS[m]).derived
]  # learned from other embeddings and the transfer matrix (MODEL2VEC)
EMBED_METHODS = [m for m in METHODS if m not in DERIVED_METHODS]
# Two-stage selectors: their embeddings and scores must be configured (the full names are checked when scoring).
rerank_selectors(
    config["selection"]["rerank"],
    METHODS,
    config["transfer"]["scores"],
    entries_only=True,
)
PROBE_FILES = {
    "pretrained": "results/probe/probe.pt",
    "random": "results/probe/random.pt",
}


wildcard_constraints:
    task="|".join(map(re.escape, SPLIT_TASKS)),
    expert="|".join(map(re.escape, EXPERTS)),
    method="|".join(map(re.escape, METHODS)),
    batch=r"\d+",


def split_params(wildcards):
    """The data config that makes this task (taskspace.data.task_config): no task list, no other source's
    section, no other task's overrides; for data.source combined, only the task's own entry.
    """
    from taskspace.data import task_config

    return task_config(config["data"], wildcards.task)


def task_file(wildcards):
    return f"results/tasks/{wildcards.task}.h5"


def checkpoint_of(expert):
    return "results/probe/probe.pt" if expert == GENERIC else f"results/experts/{expert}.pt"


def batch_experts(wildcards):
    """The experts of a transfer batch, sorted (params; their checkpoints are the input ``experts``, in order)."""
    return TRANSFER_BATCHES[wildcards.batch]


def batch_expert_files(wildcards):
    return [checkpoint_of(e) for e in TRANSFER_BATCHES[wildcards.batch]]


def batch_columns(wildcards):
    """{expert: its targets} for a transfer batch."""
    return {e: COLUMNS[e] for e in TRANSFER_BATCHES[wildcards.batch]}


def batch_targets(wildcards):
    """Every task a transfer batch reads (the union of its experts' columns), sorted (params; the task files are
    the input ``tasks``, in order)."""
    return sorted({t for e in TRANSFER_BATCHES[wildcards.batch] for t in COLUMNS[e]})


def batch_target_files(wildcards):
    return [f"results/tasks/{t}.h5" for t in batch_targets(wildcards)]


def transfer_runtime(wildcards, attempt):
    """Minutes for a transfer batch: 5 a pair (grows with each retry)."""
    pairs = sum(len(COLUMNS[e]) for e in TRANSFER_BATCHES[wildcards.batch])
    return 5 * pairs * attempt


def batch_tasks(wildcards):
    """The tasks of an embedding batch (params; their files are the input ``tasks``, in order)."""
    return EMBED_BATCHES[wildcards.batch]


def batch_task_files(wildcards):
    return [f"results/tasks/{t}.h5" for t in EMBED_BATCHES[wildcards.batch]]


def embed_runtime(wildcards, attempt):
    """Minutes for an embedding batch: 10 per task and method (grows with each retry)."""
    return 10 * len(EMBED_BATCHES[wildcards.batch]) * max(1, len(EMBED_METHODS)) * attempt


def probe_params():
    """The probe config its kind of weights depends on (probe.train only for source): changing another key of
    the probe section reruns nothing."""
    return probe_config(config["probe"])


def probe_weights_file():
    """The checkpoint file probe.weights names (an input of import_probe), or none."""
    return [PROBE.weights_file] if PROBE.weights_file else []


def probe_classes():
    """The head's class names of a random probe (from the plan); None for the other kinds."""
    return list(PROBE.classes) if PROBE.classes else None


def expert_params():
    """The experts' training config: which tasks get one (experts.tasks) is left out, so listing one more expert
    trains just that one."""
    return {k: v for k, v in config["experts"].items() if k != "tasks"}


def meta_task_params():
    """The meta-tasks as plain data for the scoring rule's params."""
    return {
        m.name: {"targets": list(m.targets), "experts": list(m.experts)}
        for m in META_TASKS
    }


def method_params(wildcards):
    return METHOD_CONFIGS[wildcards.method][1]


def embed_params():
    """Every embedded method: {name: [registered method, its config without the distance-only keys (alpha)]};
    changing a distance-only key re-embeds nothing."""
    return {
        m: [METHOD_CONFIGS[m][0], get_method(*METHOD_CONFIGS[m]).embed_config()]
        for m in EMBED_METHODS
    }


def embed_probes(wildcards):
    """The probe checkpoints the embedding methods read, by kind (pretrained, random)."""
    kinds = {get_method(*METHOD_CONFIGS[m]).probe for m in EMBED_METHODS}
    return {kind: PROBE_FILES[kind] for kind in sorted(kinds)}


def distance_params():
    """Every embedded method's entry: {name: [registered method, its whole config]} (the distances' params: changing
    alpha reruns the distances, not the embeddings)."""
    return {m: [METHOD_CONFIGS[m][0], METHOD_CONFIGS[m][1]] for m in EMBED_METHODS}


def registered_method(wildcards):
    return METHOD_CONFIGS[wildcards.method][0]


def grow_with_attempt(base):
    """A resource that grows with each retry (mem_mb, runtime)."""

    def resource(wildcards, attempt):
        return base * attempt

    return resource
