rule train_probe:
    input:
        f"results/tasks/{SOURCE_TASK}.h5",
    output:
        checkpoint="results/probe/probe.pt",
        metrics="results/probe/metrics.parquet",
    log:
        "results/logs/train_probe.log",
    benchmark:
        "results/benchmarks/train_probe.tsv"
    conda:
        "../envs/taskspace.yaml"
    threads: 2
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
        f"results/tasks/{SOURCE_TASK}.h5",
    output:
        checkpoint="results/probe/random.pt",
        metrics="results/probe/random_metrics.parquet",
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
        probe={"arch": config["probe"]["arch"], "weights": "random"},
        seed=config["seed"],
        version=TASKSPACE_VERSION,
    script:
        "../workflow_scripts/train_probe.py"
