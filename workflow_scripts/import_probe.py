import sys

sys.stderr = open(snakemake.log[0], "w")

from taskspace.stages import import_probe

import_probe(
    snakemake.params.probe,
    snakemake.params.resolution,
    snakemake.params.seed,
    snakemake.output.checkpoint,
    snakemake.params.classes,
    snakemake.log[0],
)
