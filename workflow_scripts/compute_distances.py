import sys

sys.stderr = open(snakemake.log[0], "w")
from taskspace.io import record_job
record_job(snakemake)  # every artifact written carries this job's stamp

from pathlib import Path

from taskspace.stages import compute_distances

for output in snakemake.output:  # results/distances/{method}.parquet
    name = Path(output).stem
    registered, config = snakemake.params.methods[name]
    compute_distances(name, registered, config, snakemake.input[0], output)
