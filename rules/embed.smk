# One job per batch of tasks (config execution.tasks_per_embed_job): every embedding method of each task, each probe
# loaded once. An embedding whose probe checkpoint, task file, method config and seed are byte-identical to a stored
# one (results/reuse/) is reused, so changing one method's config recomputes that method only.
rule embed_batch:
    input:
        unpack(embed_probes),
        tasks=batch_task_files,
    output:
        RESULTS.embeddings_part(),
    log:
        RESULTS.log("embed_batch", "{batch}"),
    benchmark:
        RESULTS.benchmark("embed_batch", "{batch}")
    conda:
        "../envs/taskspace.yaml"
    threads: THREADS["embed_batch"]
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
        expand(RESULTS.embeddings_part(), batch=EMBED_BATCHES),
    output:
        RESULTS.embeddings(),
    log:
        RESULTS.log("gather_embeddings"),
    benchmark:
        RESULTS.benchmark("gather_embeddings")
    localrule: True
    conda:
        "../envs/taskspace.yaml"
    script:
        "../workflow_scripts/gather_embeddings.py"


# Every embedded method's distances in one light job (numpy only).
rule compute_distances:
    input:
        RESULTS.embeddings(),
    output:
        expand(RESULTS.distances(), method=EMBED_METHODS),
    log:
        RESULTS.log("compute_distances"),
    benchmark:
        RESULTS.benchmark("compute_distances")
    localrule: True
    conda:
        "../envs/taskspace.yaml"
    params:
        methods=distance_params(),
    script:
        "../workflow_scripts/compute_distances.py"


rule learn_model2vec:
    input:
        embeddings=RESULTS.embeddings(),
        transfer=RESULTS.transfer(),
    output:
        distances=RESULTS.distances(),
        model=RESULTS.model2vec(),
    log:
        RESULTS.log("learn_model2vec", "{method}"),
    benchmark:
        RESULTS.benchmark("learn_model2vec", "{method}")
    wildcard_constraints:
        method="|".join(map(re.escape, DERIVED_METHODS)) or "(?!x)x",
    conda:
        "../envs/taskspace.yaml"
    # leave-one-target-out fits, after every other job: on one core they took 14 min on 17,056-filter embeddings
    threads: THREADS["learn_model2vec"]  # computes on these threads whatever --cores grants (taskspace.numerics)
    resources:
        mem_mb=grow_with_attempt(4000),
        runtime=grow_with_attempt(60),
    params:
        method=method_params,
        store=REUSE_STORE,
        version=TASKSPACE_VERSION,
    script:
        "../workflow_scripts/learn_model2vec.py"
