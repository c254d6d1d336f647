# probe.weights imagenet (from the local torch cache), a checkpoint file (an input: editing it reruns the probe and
# every job after it) or random (the seeded initialisation): no source task is split, nothing is trained.
rule import_probe:
    input:
        probe_weights_file(),
    output:
        checkpoint=RESULTS.probe(),
    log:
        RESULTS.log("import_probe"),
    benchmark:
        RESULTS.benchmark("import_probe")
    localrule: True
    conda:
        "../envs/taskspace.yaml"
    threads: 1
    resources:
        mem_mb=grow_with_attempt(4000),
        runtime=grow_with_attempt(10),
    params:
        probe=probe_params(),
        classes=probe_classes(),
        resolution=config["data"]["resolution"],
        seed=config["seed"],
        version=TASKSPACE_VERSION,
    script:
        "../workflow_scripts/import_probe.py"


rule init_random_probe:
    input:
        RESULTS.probe(),
    output:
        checkpoint=RESULTS.probe("random"),
    log:
        RESULTS.log("init_random_probe"),
    benchmark:
        RESULTS.benchmark("init_random_probe")
    localrule: True
    conda:
        "../envs/taskspace.yaml"
    threads: 1
    resources:
        mem_mb=grow_with_attempt(2000),
        runtime=grow_with_attempt(10),
    params:
        seed=config["seed"],
        version=TASKSPACE_VERSION,
    script:
        "../workflow_scripts/init_random_probe.py"
