rule embed_task:
    input:
        probe="results/probe/probe.pt",
        task=task_file,
    output:
        "results/embeddings/{method}/{task}.h5",
    log:
        "results/logs/embed_task/{method}/{task}.log",
    threads: 1
    resources:
        mem_mb=grow_with_attempt(2000),
        runtime=grow_with_attempt(30),
    params:
        method=method_params,
        seed=config["seed"],
        version=TASKSPACE_VERSION,
    run:
        from taskspace.stages import embed_task

        embed_task(
            wildcards.method,
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
    localrule: True
    params:
        method=method_params,
    run:
        from taskspace.stages import compute_distances

        compute_distances(
            wildcards.method, params.method, dict(input.items()), output[0]
        )
