import sys

sys.stderr = open(snakemake.log[0], "w")
from taskspace.io import record_job
record_job(snakemake)  # every artifact written carries this job's stamp

from taskspace.numerics import job_threads
from taskspace.stages import train_expert

train_expert(
    snakemake.input.probe,
    snakemake.input.task,
    snakemake.wildcards.task,  # the expert: a task, or a replicate (task@r<r>)
    snakemake.params.experts,
    snakemake.params.seed,
    snakemake.output.checkpoint,
    snakemake.output.metrics,
    job_threads(snakemake.rule, snakemake.threads),  # pinned per rule (taskspace.numerics)
    snakemake.log[0],
)
