# One job per batch of experts (config execution.experts_per_transfer_job): each expert's whole column of targets,
# every expert loaded once and every task file read once. A pair whose expert checkpoint, task file and transfer
# config are byte-identical to a stored result (results/reuse/) is reused, not recomputed, so a batch rerun because
# its task list grew computes only the new pairs.
rule transfer_batch:
    input:
        experts=batch_expert_files,
        tasks=batch_target_files,
    output:
        RESULTS.transfer_part(),
    log:
        RESULTS.log("transfer_batch", "{batch}"),
    benchmark:
        RESULTS.benchmark("transfer_batch", "{batch}")
    conda:
        "../envs/taskspace.yaml"
    threads: THREADS["transfer_batch"]
    resources:
        mem_mb=grow_with_attempt(4000),
        runtime=transfer_runtime,
        gpu=1,
    params:
        experts=batch_experts,
        targets=batch_targets,
        columns=batch_columns,
        transfer=config["transfer"],
        store=REUSE_STORE,
        version=TASKSPACE_VERSION,
    script:
        "../workflow_scripts/transfer_batch.py"


rule gather_transfer:
    input:
        expand(RESULTS.transfer_part(), batch=TRANSFER_BATCHES),
    output:
        mean=RESULTS.transfer(),
        replicates=RESULTS.transfer_replicates(),
    log:
        RESULTS.log("gather_transfer"),
    benchmark:
        RESULTS.benchmark("gather_transfer")
    localrule: True
    conda:
        "../envs/taskspace.yaml"
    params:
        transfer=config["transfer"],
    script:
        "../workflow_scripts/gather_transfer.py"
