# One job per trained expert: each expert task's replicates (experts.replicates); replicate r >= 1 of task t is the
# expert t@r<r>, trained on t's task file. The wildcard keeps its name, so replicate 0 is the job, and writes the
# files, of a run without replicates.
rule train_expert:
    wildcard_constraints:
        task="|".join(map(re.escape, TRAINED_EXPERTS)),
    input:
        probe=RESULTS.probe(),
        task=expert_task_file,
    output:
        checkpoint=RESULTS.expert(),
        metrics=RESULTS.expert_metrics(),
    log:
        RESULTS.log("train_expert", "{task}"),
    benchmark:
        RESULTS.benchmark("train_expert", "{task}")
    conda:
        "../envs/taskspace.yaml"
    threads: THREADS["train_expert"]  # two 1-thread jobs side by side beat one on 2 threads at 32x32
    resources:
        mem_mb=grow_with_attempt(4000),
        runtime=grow_with_attempt(60),
        gpu=1,
    params:
        experts=expert_params(),
        seed=config["seed"],
        version=TASKSPACE_VERSION,
    script:
        "../workflow_scripts/train_expert.py"
