import sys

sys.stderr = open(snakemake.log[0], "w")
from taskspace.io import record_job
record_job(snakemake)  # every artifact written carries this job's stamp

from taskspace.stages import split_task

split_task(snakemake.params.data, snakemake.wildcards.task, snakemake.output[0], snakemake.log[0])
