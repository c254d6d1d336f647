import sys

sys.stderr = open(snakemake.log[0], "w")
from taskspace.io import record_job
record_job(snakemake)  # every artifact written carries this job's stamp

from taskspace.stages import score

score(
    snakemake.input.transfer,
    list(snakemake.input.distances),
    snakemake.output.selection,
    snakemake.output.summary,
    snakemake.params.meta_tasks,
    comparisons=snakemake.output.comparisons,
    selection_cfg=snakemake.params.selection,
    scores=list(snakemake.params.scores),
    tasks=snakemake.input.tasks,
    replicates=snakemake.input.replicates,
)
