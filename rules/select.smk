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
    conda:
        "../envs/taskspace.yaml"
    params:
        meta_tasks=meta_task_params(),
    script:
        "../workflow_scripts/score_selection.py"


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
    conda:
        "../envs/taskspace.yaml"
    script:
        "../workflow_scripts/plot_selection.py"
