import sys

sys.stderr = open(snakemake.log[0], "w")

from taskspace.stages import split_task

split_task(snakemake.params.data, snakemake.wildcards.task, snakemake.output[0], snakemake.log[0])
