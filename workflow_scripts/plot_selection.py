import sys

sys.stderr = open(snakemake.log[0], "w")

from taskspace.stages import plot

plot(
    snakemake.wildcards.meta_task,
    dict(snakemake.input.items()) | {"distances": list(snakemake.input.distances)},
    dict(snakemake.output.items()),
    list(snakemake.params.levels),
    int(snakemake.params.seed),
)
