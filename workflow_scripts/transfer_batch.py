import sys

sys.stderr = open(snakemake.log[0], "w")
from taskspace.io import record_job
record_job(snakemake)  # every artifact written carries this job's stamp

from taskspace.numerics import job_threads
from taskspace.stages import transfer_batch

transfer_batch(
    dict(zip(snakemake.params.experts, snakemake.input.experts)),
    snakemake.params.columns,
    dict(zip(snakemake.params.targets, snakemake.input.tasks)),
    snakemake.params.transfer,
    snakemake.output[0],
    snakemake.params.store,
    job_threads(snakemake.rule, snakemake.threads),  # pinned per rule (taskspace.numerics)
    snakemake.log[0],
)
