# probe.weights imagenet (from the local torch cache), a checkpoint file (an input: editing it reruns the probe and
# every job after it) or random (the seeded initialisation): no source task is split, nothing is trained.
rule import_probe:
    input:
        probe_weights_file(),
    output:
        checkpoint="results/probe/probe.pt",
    log:
        "results/logs/import_probe.log",
    benchmark:
        "results/benchmarks/import_probe.tsv"
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
        "results/probe/probe.pt",
    output:
        checkpoint="results/probe/random.pt",
    log:
        "results/logs/init_random_probe.log",
    benchmark:
        "results/benchmarks/init_random_probe.tsv"
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
