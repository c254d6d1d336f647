import sys

sys.stderr = open(snakemake.log[0], "w")
from taskspace.io import record_job
record_job(snakemake)  # every artifact written carries this job's stamp

from taskspace.stages import train_expert

train_expert(
    snakemake.input.probe,
    snakemake.input.task,
    snakemake.wildcards.task,
    snakemake.params.experts,
    snakemake.params.seed,
    snakemake.output.checkpoint,
    snakemake.output.metrics,
    snakemake.threads,
    snakemake.log[0],
)
