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
from taskspace.study import expert_tasks, meta_tasks, transfer_pairs

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
EXPERT_TASKS = expert_tasks(config, TASKS)  # tasks that get a fine-tuned expert
EXPERTS = EXPERT_TASKS + [GENERIC]
# The meta-tasks scored (target x expert matrices); only their (expert, target) pairs are computed.
META_TASKS = meta_tasks(config, TASKS, EXPERT_TASKS)
TRANSFER_FILES = [
    f"results/transfer/{expert}/{task}.parquet"
    for expert, task in transfer_pairs(META_TASKS, GENERIC)
]
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
PROBE_FILES = {
    "pretrained": "results/probe/probe.pt",
    "random": "results/probe/random.pt",
}


wildcard_constraints:
    task="|".join(map(re.escape, SPLIT_TASKS)),
    expert="|".join(map(re.escape, EXPERTS)),
    method="|".join(map(re.escape, METHODS)),


def split_params(wildcards):
    """The data config that makes this task (taskspace.data.task_config): no task list, no other source's
    section, no other task's overrides; for data.source combined, only the task's own entry.
    """
    from taskspace.data import task_config

    return task_config(config["data"], wildcards.task)


def task_file(wildcards):
    return f"results/tasks/{wildcards.task}.h5"


def expert_checkpoint(wildcards):
    if wildcards.expert == GENERIC:
        return "results/probe/probe.pt"
    return f"results/experts/{wildcards.expert}.pt"


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


def embed_params(wildcards):
    """A method's config without its distance-only keys (alpha): changing those re-embeds nothing."""
    return get_method(*METHOD_CONFIGS[wildcards.method]).embed_config()


def registered_method(wildcards):
    return METHOD_CONFIGS[wildcards.method][0]


def method_probe(wildcards):
    """The probe checkpoint a method reads (pretrained, or the seeded random initialisation)."""
    return PROBE_FILES[get_method(*METHOD_CONFIGS[wildcards.method]).probe]


EMBEDDING_FILES = {
    m: {t: f"results/embeddings/{m}/{t}.h5" for t in TASKS} for m in EMBED_METHODS
}


def method_embeddings(wildcards):
    return EMBEDDING_FILES[wildcards.method]


def base_embeddings(wildcards):
    """The per-task embeddings a derived method (MODEL2VEC) learns from."""
    return EMBEDDING_FILES[method_params(wildcards)["base"]]


def grow_with_attempt(base):
    """A resource that grows with each retry (mem_mb, runtime)."""

    def resource(wildcards, attempt):
        return base * attempt

    return resource
