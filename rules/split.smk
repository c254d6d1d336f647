rule split_task:
    output:
        "results/tasks/{task}.h5",
    log:
        "results/logs/split_task/{task}.log",
    benchmark:
        "results/benchmarks/split_task/{task}.tsv"
    conda:
        "../envs/taskspace.yaml"
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        data=split_params,
        version=TASKSPACE_VERSION,
    script:
        "../workflow_scripts/split_task.py"


rule tabulate_tasks:
    input:
        expand("results/tasks/{task}.h5", task=SPLIT_TASKS),
    output:
        "results/tasks.parquet",
    log:
        "results/logs/tabulate_tasks.log",
    benchmark:
        "results/benchmarks/tabulate_tasks.tsv"
    localrule: True
    conda:
        "../envs/taskspace.yaml"
    params:
        data=config["data"],
        tasks=SPLIT_TASKS,
    script:
        "../workflow_scripts/tabulate_tasks.py"
