import sys

sys.stderr = open(snakemake.log[0], "w")
from taskspace.io import record_job
record_job(snakemake)  # every artifact written carries this job's stamp

from taskspace.results import merge_embeddings

merge_embeddings(list(snakemake.input), snakemake.output[0])
