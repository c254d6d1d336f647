import sys

sys.stderr = open(snakemake.log[0], "w")
from taskspace.io import record_job
record_job(snakemake)  # every artifact written carries this job's stamp

from taskspace.stages import init_random_probe

init_random_probe(
    snakemake.input[0],
    snakemake.params.seed,
    snakemake.output.checkpoint,
    snakemake.log[0],
)
