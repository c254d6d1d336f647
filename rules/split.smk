rule split_task:
    output:
        RESULTS.task(),
    log:
        RESULTS.log("split_task", "{task}"),
    benchmark:
        RESULTS.benchmark("split_task", "{task}")
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
        expand(RESULTS.task(), task=SPLIT_TASKS),
    output:
        RESULTS.tasks_table(),
    log:
        RESULTS.log("tabulate_tasks"),
    benchmark:
        RESULTS.benchmark("tabulate_tasks")
    localrule: True
    conda:
        "../envs/taskspace.yaml"
    params:
        data=config["data"],
        tasks=SPLIT_TASKS,
    script:
        "../workflow_scripts/tabulate_tasks.py"
