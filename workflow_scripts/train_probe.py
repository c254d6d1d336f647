import sys

sys.stderr = open(snakemake.log[0], "w")
from taskspace.io import record_job
record_job(snakemake)  # every artifact written carries this job's stamp

from taskspace.numerics import job_threads
from taskspace.stages import train_probe

train_probe(
    snakemake.input[0],
    snakemake.params.probe,
    snakemake.params.seed,
    snakemake.output.checkpoint,
    snakemake.output.metrics,
    job_threads(snakemake.rule, snakemake.threads),  # pinned per rule (taskspace.numerics)
    snakemake.log[0],
)
