import sys

sys.stderr = open(snakemake.log[0], "w")

from taskspace.stages import train_expert

train_expert(
    snakemake.input.probe,
    snakemake.input.task,
    snakemake.wildcards.task,
    snakemake.params.experts,
    snakemake.params.seed,
    snakemake.output.checkpoint,
    snakemake.output.metrics,
    snakemake.threads,
    snakemake.log[0],
)
