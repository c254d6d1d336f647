import sys

sys.stderr = open(snakemake.log[0], "w")

from taskspace.stages import tabulate_tasks

tabulate_tasks(snakemake.params.data, dict(zip(snakemake.params.tasks, snakemake.input)), snakemake.output[0])
