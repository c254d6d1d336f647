import sys

sys.stderr = open(snakemake.log[0], "w")
from taskspace.io import record_job
record_job(snakemake)  # every artifact written carries this job's stamp

from taskspace.stages import gather_transfer

gather_transfer(list(snakemake.input), snakemake.output.mean, snakemake.output.replicates, snakemake.params.transfer)
