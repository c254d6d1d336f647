import sys

sys.stderr = open(snakemake.log[0], "w")

from taskspace.stages import init_random_probe

init_random_probe(
    snakemake.input[0],
    snakemake.params.seed,
    snakemake.output.checkpoint,
    snakemake.log[0],
)
