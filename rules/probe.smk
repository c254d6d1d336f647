# The probe stage: results/probe/probe.pt, and results/probe/random.pt (the same architecture, head size and input
# normalisation at its seeded initialisation, read by the random-probe methods). probe.weights picks the rules:
# source trains the probe on the source task; imagenet, a checkpoint file and random import it (no source task).
if PROBE.kind == "source":

    include: "probe_train.smk"

else:

    include: "probe_import.smk"


# A further embedding probe (embeddings.probes), imported like probe.weights imagenet or a checkpoint file: read only
# by the methods whose `probe` key names it; the experts and the matrix stay the probe section's.
rule import_named_probe:
    input:
        named_probe_file,
    output:
        checkpoint=RESULTS.probe("{probe}"),
    log:
        RESULTS.log("import_named_probe", "{probe}"),
    benchmark:
        RESULTS.benchmark("import_named_probe", "{probe}")
    wildcard_constraints:
        probe="|".join(map(re.escape, RUN.named_probes)) or "(?!x)x",
    localrule: True
    conda:
        "../envs/taskspace.yaml"
    threads: 1
    resources:
        mem_mb=grow_with_attempt(4000),
        runtime=grow_with_attempt(10),
    params:
        probe=named_probe_params,
        classes=None,
        resolution=config["data"]["resolution"],
        seed=config["seed"],
        version=TASKSPACE_VERSION,
    script:
        "../workflow_scripts/import_probe.py"
