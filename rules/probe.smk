rule train_probe:
    input:
        f"results/tasks/{SOURCE_TASK}.h5",
    output:
        checkpoint="results/probe/probe.pt",
        metrics="results/probe/metrics.parquet",
    params:
        probe=config["probe"],
        seed=config["seed"],
        version=TASKSPACE_VERSION,
    threads: 2
    log:
        "results/logs/train_probe.log",
    benchmark:
        "results/benchmarks/train_probe.tsv"
    resources:
        mem_mb=grow_with_attempt(4000),
        runtime=grow_with_attempt(60),
    script:
        "../workflow_scripts/train_probe.py"
