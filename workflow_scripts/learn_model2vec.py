import sys

sys.stderr = open(snakemake.log[0], "w")
from taskspace.io import record_job
record_job(snakemake)  # every artifact written carries this job's stamp

from taskspace.numerics import job_threads
from taskspace.stages import learn_model2vec

learn_model2vec(
    snakemake.wildcards.method,
    snakemake.params.method,
    snakemake.input.transfer,
    snakemake.input.embeddings,
    snakemake.output.distances,
    snakemake.output.model,
    snakemake.log[0],
    job_threads(snakemake.rule, snakemake.threads),  # pinned per rule (taskspace.numerics)
    snakemake.params.store,
)
