import sys

sys.stderr = open(snakemake.log[0], "w")

from taskspace.stages import plot

plot(
    snakemake.input.transfer,
    snakemake.input.selection,
    snakemake.input.summary,
    snakemake.output.violin,
    snakemake.output.bars,
)
