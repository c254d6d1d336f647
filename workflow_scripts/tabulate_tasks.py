import sys

sys.stderr = open(snakemake.log[0], "w")
from taskspace.io import record_job
record_job(snakemake)  # every artifact written carries this job's stamp

from taskspace.stages import tabulate_tasks

tabulate_tasks(snakemake.params.data, dict(zip(snakemake.params.tasks, snakemake.input)), snakemake.output[0])
