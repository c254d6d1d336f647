rule score_selection:
    input:
        transfer="results/transfer.parquet",
        distances=expand("results/distances/{method}.parquet", method=METHODS),
    output:
        selection="results/selection.parquet",
        summary="results/summary.parquet",
    log:
        "results/logs/score_selection.log",
    localrule: True
    params:
        meta_tasks=meta_task_params(),
    run:
        from taskspace.stages import score

        score(
            input.transfer,
            list(input.distances),
            output.selection,
            output.summary,
            params.meta_tasks,
        )


rule plot_selection:
    input:
        transfer="results/transfer.parquet",
        selection="results/selection.parquet",
        summary="results/summary.parquet",
    output:
        violin="results/plots/selection_violin.png",
        bars="results/plots/summary.png",
    log:
        "results/logs/plot_selection.log",
    localrule: True
    run:
        from taskspace.stages import plot

        plot(
            input.transfer,
            input.selection,
            input.summary,
            output.violin,
            output.bars,
        )
