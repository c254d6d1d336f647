rule embed_task:
    input:
        probe=method_probe,
        task=task_file,
    output:
        "results/embeddings/{method}/{task}.h5",
    log:
        "results/logs/embed_task/{method}/{task}.log",
    wildcard_constraints:
        method="|".join(map(re.escape, EMBED_METHODS)),
    group:
        "embed"
    threads: 1
    resources:
        mem_mb=grow_with_attempt(4000),
        runtime=grow_with_attempt(10),
        gpu=1,
    params:
        registered=registered_method,
        method=embed_params,
        seed=config["seed"],
        version=TASKSPACE_VERSION,
    run:
        from taskspace.stages import embed_task

        embed_task(
            wildcards.method,
            params.registered,
            params.method,
            input.probe,
            input.task,
            wildcards.task,
            params.seed,
            output[0],
            threads,
            log[0],
        )


rule gather_embeddings:
    input:
        [path for per_task in EMBEDDING_FILES.values() for path in per_task.values()],
    output:
        "results/embeddings.h5",
    log:
        "results/logs/gather_embeddings.log",
    localrule: True
    run:
        from taskspace.stages import gather_embeddings

        gather_embeddings(EMBEDDING_FILES, output[0])


rule compute_distances:
    input:
        unpack(method_embeddings),
    output:
        "results/distances/{method}.parquet",
    log:
        "results/logs/compute_distances/{method}.log",
    wildcard_constraints:
        method="|".join(map(re.escape, EMBED_METHODS)),
    localrule: True
    params:
        registered=registered_method,
        method=method_params,
    run:
        from taskspace.stages import compute_distances

        compute_distances(
            wildcards.method,
            params.registered,
            params.method,
            dict(input.items()),
            output[0],
        )


rule learn_model2vec:
    input:
        unpack(base_embeddings),
        transfer="results/transfer.parquet",
    output:
        distances="results/distances/{method}.parquet",
        model="results/model2vec/{method}.h5",
    log:
        "results/logs/learn_model2vec/{method}.log",
    wildcard_constraints:
        method="|".join(map(re.escape, DERIVED_METHODS)) or "(?!x)x",
    localrule: True
    # the fits run after every other job has finished; on one core they took 14 min on 17,056-filter embeddings
    threads: 4  # capped at --cores when run locally; a number, since SLURM submissions have no --cores
    params:
        method=method_params,
        version=TASKSPACE_VERSION,
    run:
        from taskspace.stages import learn_model2vec

        files = {k: v for k, v in input.items() if k != "transfer"}
        learn_model2vec(
            wildcards.method,
            params.method,
            input.transfer,
            files,
            output.distances,
            output.model,
            log[0],
            threads,
        )
