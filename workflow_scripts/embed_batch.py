import sys

sys.stderr = open(snakemake.log[0], "w")
from taskspace.io import record_job
record_job(snakemake)  # every artifact written carries this job's stamp

from taskspace.numerics import job_threads
from taskspace.stages import embed_tasks

embed_tasks(
    dict(zip(snakemake.params.tasks, snakemake.input.tasks)),
    {name: tuple(entry) for name, entry in snakemake.params.methods.items()},
    {kind: path for kind, path in snakemake.input.items() if kind != "tasks"},
    snakemake.params.seed,
    snakemake.output[0],
    snakemake.params.store,
    job_threads(snakemake.rule, snakemake.threads),  # pinned per rule (taskspace.numerics)
    snakemake.log[0],
)
