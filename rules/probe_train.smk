rule train_probe:
    input:
        RESULTS.task(SOURCE_TASK),
    output:
        checkpoint=RESULTS.probe(),
        metrics=RESULTS.probe_metrics(),
    log:
        RESULTS.log("train_probe"),
    benchmark:
        RESULTS.benchmark("train_probe")
    conda:
        "../envs/taskspace.yaml"
    threads: THREADS["train_probe"]
    resources:
        mem_mb=grow_with_attempt(4000),
        runtime=grow_with_attempt(60),
        gpu=1,
    params:
        probe=probe_params(),
        seed=config["seed"],
        version=TASKSPACE_VERSION,
    script:
        "../workflow_scripts/train_probe.py"


rule init_random_probe:
    input:
        RESULTS.task(SOURCE_TASK),
    output:
        checkpoint=RESULTS.probe("random"),
        metrics=RESULTS.probe_metrics("random"),
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
        probe={"arch": config["probe"]["arch"], "weights": "random"},
        seed=config["seed"],
        version=TASKSPACE_VERSION,
    script:
        "../workflow_scripts/train_probe.py"
