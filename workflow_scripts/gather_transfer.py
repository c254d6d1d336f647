import sys

sys.stderr = open(snakemake.log[0], "w")
from taskspace.io import record_job
record_job(snakemake)  # every artifact written carries this job's stamp

from taskspace.stages import gather_tables

gather_tables(list(snakemake.input), snakemake.output[0], {"transfer": snakemake.params.transfer})
