# One job per batch of tasks (config execution.tasks_per_embed_job): every embedding method of each task, each probe
# loaded once. An embedding whose probe checkpoint, task file, method config and seed are byte-identical to a stored
# one (results/reuse/) is reused, so changing one method's config recomputes that method only.
rule embed_batch:
    input:
        unpack(embed_probes),
        tasks=batch_task_files,
    output:
        "results/embeddings/part-{batch}.h5",
    log:
        "results/logs/embed_batch/{batch}.log",
    benchmark:
        "results/benchmarks/embed_batch/{batch}.tsv"
    conda:
        "../envs/taskspace.yaml"
    threads: 1
    resources:
        mem_mb=grow_with_attempt(4000),
        runtime=embed_runtime,
        gpu=1,
    params:
        tasks=batch_tasks,
        methods=embed_params(),
        seed=config["seed"],
        store=REUSE_STORE,
        version=TASKSPACE_VERSION,
    script:
        "../workflow_scripts/embed_batch.py"


rule gather_embeddings:
    input:
        expand("results/embeddings/part-{batch}.h5", batch=EMBED_BATCHES),
    output:
        "results/embeddings.h5",
    log:
        "results/logs/gather_embeddings.log",
    benchmark:
        "results/benchmarks/gather_embeddings.tsv"
    localrule: True
    conda:
        "../envs/taskspace.yaml"
    script:
        "../workflow_scripts/gather_embeddings.py"


# Every embedded method's distances in one light job (numpy only).
rule compute_distances:
    input:
        "results/embeddings.h5",
    output:
        expand("results/distances/{method}.parquet", method=EMBED_METHODS),
    log:
        "results/logs/compute_distances.log",
    benchmark:
        "results/benchmarks/compute_distances.tsv"
    localrule: True
    conda:
        "../envs/taskspace.yaml"
    params:
        methods=distance_params(),
    script:
        "../workflow_scripts/compute_distances.py"


rule learn_model2vec:
    input:
        embeddings="results/embeddings.h5",
        transfer="results/transfer.parquet",
    output:
        distances="results/distances/{method}.parquet",
        model="results/model2vec/{method}.h5",
    log:
        "results/logs/learn_model2vec/{method}.log",
    benchmark:
        "results/benchmarks/learn_model2vec/{method}.tsv"
    wildcard_constraints:
        method="|".join(map(re.escape, DERIVED_METHODS)) or "(?!x)x",
    conda:
        "../envs/taskspace.yaml"
    # leave-one-target-out fits, after every other job: on one core they took 14 min on 17,056-filter embeddings
    threads: 4  # capped at --cores when run locally
    resources:
        mem_mb=grow_with_attempt(4000),
        runtime=grow_with_attempt(60),
    params:
        method=method_params,
        store=REUSE_STORE,
        version=TASKSPACE_VERSION,
    script:
        "../workflow_scripts/learn_model2vec.py"
