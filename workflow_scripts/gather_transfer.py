import sys

sys.stderr = open(snakemake.log[0], "w")

from taskspace.stages import gather_tables

gather_tables(list(snakemake.input), snakemake.output[0], {"transfer": snakemake.params.transfer})
