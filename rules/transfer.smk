# One job per (expert, task) pair. The body runs in the Snakemake process (run:), so that the hundreds of
# pairs of a study do not each pay a Python + torch start-up; on a cluster, pairs are grouped per submission.
rule transfer_pair:
    input:
        expert=expert_checkpoint,
        task=task_file,
    output:
        "results/transfer/{expert}/{task}.parquet",
    log:
        "results/logs/transfer_pair/{expert}/{task}.log",
    group:
        "transfer"
    threads: 1
    resources:
        mem_mb=grow_with_attempt(4000),
        runtime=grow_with_attempt(5),
        gpu=1,
    params:
        transfer=config["transfer"],
        version=TASKSPACE_VERSION,
    run:
        from taskspace.stages import transfer_pair

        transfer_pair(
            wildcards.expert,
            input.expert,
            wildcards.task,
            input.task,
            params.transfer,
            output[0],
            threads,
            log[0],
        )


rule gather_transfer:
    input:
        TRANSFER_FILES,
    output:
        "results/transfer.parquet",
    log:
        "results/logs/gather_transfer.log",
    localrule: True
    params:
        transfer=config["transfer"],
    run:
        from taskspace.stages import gather_tables

        gather_tables(input, output[0], {"transfer": params.transfer})
