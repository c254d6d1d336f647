rule embed_task:
    input:
        probe="results/probe/probe.pt",
        task=task_file,
    output:
        "results/embeddings/{method}/{task}.h5",
    params:
        method=method_params,
        seed=config["seed"],
        version=TASKSPACE_VERSION,
    threads: 1
    log:
        "results/logs/embed_task/{method}/{task}.log",
    resources:
        mem_mb=grow_with_attempt(2000),
        runtime=grow_with_attempt(30),
    run:
        from taskspace.stages import embed_task

        embed_task(
            wildcards.method, params.method, input.probe, input.task, wildcards.task, params.seed, output[0],
            threads, log[0],
        )


rule gather_embeddings:
    input:
        expand("results/embeddings/{method}/{task}.h5", method=METHODS, task=TASKS),
    output:
        "results/embeddings.h5",
    log:
        "results/logs/gather_embeddings.log",
    localrule: True
    run:
        from taskspace.stages import gather_embeddings

        gather_embeddings(
            {m: {t: f"results/embeddings/{m}/{t}.h5" for t in TASKS} for m in METHODS}, output[0]
        )


rule compute_distances:
    input:
        unpack(method_embeddings),
    output:
        "results/distances/{method}.parquet",
    params:
        method=method_params,
    log:
        "results/logs/compute_distances/{method}.log",
    localrule: True
    run:
        from taskspace.stages import compute_distances

        compute_distances(wildcards.method, params.method, dict(input.items()), output[0])
