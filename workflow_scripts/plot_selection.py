import sys

sys.stderr = open(snakemake.log[0], "w")
from taskspace.io import record_job
record_job(snakemake)  # every artifact written carries this job's stamp

from taskspace.stages import plot

plot(
    snakemake.wildcards.meta_task,
    dict(snakemake.input.items()) | {"distances": list(snakemake.input.distances)},
    dict(snakemake.output.items()),
    list(snakemake.params.levels),
    int(snakemake.params.seed),
)
