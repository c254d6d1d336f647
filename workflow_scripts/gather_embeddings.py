import sys

sys.stderr = open(snakemake.log[0], "w")

from taskspace.stages import merge_embeddings

merge_embeddings(list(snakemake.input), snakemake.output[0])
