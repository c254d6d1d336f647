import sys

sys.stderr = open(snakemake.log[0], "w")
from taskspace.io import record_job
record_job(snakemake)  # every artifact written carries this job's stamp

from taskspace.stages import import_probe

import_probe(
    snakemake.params.probe,
    snakemake.params.resolution,
    snakemake.params.seed,
    snakemake.output.checkpoint,
    snakemake.params.classes,
    snakemake.log[0],
)
