# Imports, the config check, the task and expert lists, wildcard constraints and every input function.
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "lib"))

from taskspace import __version__ as TASKSPACE_VERSION
from taskspace.numerics import THREADS  # each rule's CPU threads, pinned
from taskspace.plan import DEFAULT_CONFIG, REUSE_STORE, RunPlan, config_digest, effective_config
from taskspace.results import GENERIC, PLOTS, RESULTS  # every path of the results layout

# The effective config: the file(s) read over the schema's defaults, checked across sections, keys sorted (params
# compare equal whatever the key order of the file). Bad input stops here, before any job runs.
_effective = effective_config(config)
config.clear()
config.update(_effective)
_files = [str(f) for f in workflow.overwrite_configfiles] or [DEFAULT_CONFIG]
_extra = " and --config values" if workflow.config_settings.config else ""
print(
    f"taskspace: config {', '.join(_files)}{_extra} over the schema's defaults (digest {config_digest(config)})",
    file=sys.stderr,
)
# Every list and param below comes from the run's plan (taskspace.plan), which `taskspace check` reads too.
RUN = RunPlan(config, TASKSPACE_VERSION)
PLAN = RUN.specs
PROBE = RUN.probe
SOURCE_TASK = RUN.source_task  # None unless probe.weights is source
TASKS = RUN.tasks
SPLIT_TASKS = RUN.split_tasks  # every task file the run writes
EXPERT_TASKS = RUN.expert_tasks  # tasks that get an expert
EXPERTS = RUN.experts
TRAINED_EXPERTS = RUN.trained_experts  # every replicate of every expert task (experts.replicates)
META_TASKS = RUN.meta_tasks
META_TASK_NAMES = RUN.meta_task_names
TAXONOMY_LEVELS = RUN.taxonomy_levels
COLUMNS = RUN.columns  # {expert: its targets}
TRANSFER_BATCHES = RUN.transfer_batches
EMBED_BATCHES = RUN.embed_batches
# Units of work (a transfer pair, an embedding) are kept with the sha256 of their inputs under REUSE_STORE, so that a
# rerun batch job reuses those whose inputs are byte-identical (taskspace.reuse).
METHOD_CONFIGS = RUN.method_configs
METHODS = RUN.methods
DERIVED_METHODS = RUN.derived_methods  # learned from other embeddings and the transfer matrix (MODEL2VEC)
EMBED_METHODS = RUN.embed_methods


wildcard_constraints:
    task="|".join(map(re.escape, SPLIT_TASKS)),
    expert="|".join(map(re.escape, EXPERTS)),
    method="|".join(map(re.escape, METHODS)),
    batch=r"\d+",


def split_params(wildcards):
    return RUN.split_params(wildcards.task)


def task_file(wildcards):
    return RUN.task_file(wildcards.task)


def expert_task_file(wildcards):
    """The task file of an expert (``{task}``: a task, or a replicate's name)."""
    return RUN.expert_task_file(wildcards.task)


def checkpoint_of(expert):
    return RUN.checkpoint_of(expert)


def batch_experts(wildcards):
    """The experts of a transfer batch, sorted (params; their checkpoints are the input ``experts``, in order)."""
    return TRANSFER_BATCHES[wildcards.batch]


def batch_expert_files(wildcards):
    return [checkpoint_of(e) for e in TRANSFER_BATCHES[wildcards.batch]]


def batch_columns(wildcards):
    """{expert: its targets} for a transfer batch."""
    return {e: COLUMNS[e] for e in TRANSFER_BATCHES[wildcards.batch]}


def batch_targets(wildcards):
    """Every task a transfer batch reads (params; the task files are the input ``tasks``, in order)."""
    return RUN.batch_targets(wildcards.batch)


def batch_target_files(wildcards):
    return [RUN.task_file(t) for t in batch_targets(wildcards)]


def transfer_runtime(wildcards, attempt):
    return RUN.transfer_runtime(wildcards.batch, attempt)


def batch_tasks(wildcards):
    """The tasks of an embedding batch (params; their files are the input ``tasks``, in order)."""
    return EMBED_BATCHES[wildcards.batch]


def batch_task_files(wildcards):
    return [RUN.task_file(t) for t in EMBED_BATCHES[wildcards.batch]]


def embed_runtime(wildcards, attempt):
    return RUN.embed_runtime(wildcards.batch, attempt)


def probe_params():
    return RUN.probe_params()


def probe_weights_file():
    return RUN.probe_weights_file()


def probe_classes():
    return RUN.probe_classes()


def named_probe_file(wildcards):
    return RUN.named_probe_file(wildcards.probe)


def named_probe_params(wildcards):
    return RUN.named_probe_params(wildcards.probe)


def expert_params():
    return RUN.expert_params()


def meta_task_params():
    return RUN.meta_task_params()


def method_params(wildcards):
    return METHOD_CONFIGS[wildcards.method][1]


def embed_params():
    return RUN.embed_params()


def embed_probes(wildcards):
    return RUN.embed_probes()


def distance_params():
    return RUN.distance_params()


def registered_method(wildcards):
    return METHOD_CONFIGS[wildcards.method][0]


def grow_with_attempt(base):
    """A resource that grows with each retry (mem_mb, runtime)."""

    def resource(wildcards, attempt):
        return base * attempt

    return resource
