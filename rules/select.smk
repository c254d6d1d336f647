rule score_selection:
    input:
        transfer="results/transfer.parquet",
        distances=expand("results/distances/{method}.parquet", method=METHODS),
    output:
        selection="results/selection.parquet",
        summary="results/summary.parquet",
        comparisons="results/comparisons.parquet",
    log:
        "results/logs/score_selection.log",
    benchmark:
        "results/benchmarks/score_selection.tsv"
    localrule: True
    conda:
        "../envs/taskspace.yaml"
    params:
        meta_tasks=meta_task_params(),
        selection=config["selection"],
        scores=config["transfer"]["scores"],
    script:
        "../workflow_scripts/score_selection.py"


# The papers' figures and the tables of the report, per meta-task, from the Parquet/HDF5 tables only.
rule plot_selection:
    input:
        transfer="results/transfer.parquet",
        selection="results/selection.parquet",
        summary="results/summary.parquet",
        comparisons="results/comparisons.parquet",
        tasks="results/tasks.parquet",
        embeddings="results/embeddings.h5",
        distances=expand("results/distances/{method}.parquet", method=METHODS),
    output:
        violin=report(
            "results/plots/{meta_task}/selection_violin.png",
            caption="../report/selection_violin.rst",
            category="{meta_task}",
            subcategory="1 selection",
        ),
        bars=report(
            "results/plots/{meta_task}/summary.png",
            caption="../report/summary.rst",
            category="{meta_task}",
            subcategory="1 selection",
        ),
        frontier=report(
            "results/plots/{meta_task}/cost_frontier.png",
            caption="../report/cost_frontier.rst",
            category="{meta_task}",
            subcategory="1 selection",
        ),
        heatmaps=report(
            "results/plots/{meta_task}/distance_heatmaps.png",
            caption="../report/distance_heatmaps.rst",
            category="{meta_task}",
            subcategory="2 task space",
        ),
        maps=report(
            "results/plots/{meta_task}/task_maps.png",
            caption="../report/task_maps.rst",
            category="{meta_task}",
            subcategory="2 task space",
        ),
        norms=report(
            "results/plots/{meta_task}/norm_vs_error.png",
            caption="../report/norm_vs_error.rst",
            category="{meta_task}",
            subcategory="2 task space",
        ),
        taxonomy=report(
            "results/plots/{meta_task}/taxonomy_curve.png",
            caption="../report/taxonomy_curve.rst",
            category="{meta_task}",
            subcategory="2 task space",
        ),
        summary_table=report(
            "results/plots/{meta_task}/summary.csv",
            caption="../report/summary_table.rst",
            category="{meta_task}",
            subcategory="3 tables",
        ),
        comparisons_table=report(
            "results/plots/{meta_task}/comparisons.csv",
            caption="../report/comparisons_table.rst",
            category="{meta_task}",
            subcategory="3 tables",
        ),
    log:
        "results/logs/plot_selection/{meta_task}.log",
    benchmark:
        "results/benchmarks/plot_selection/{meta_task}.tsv"
    wildcard_constraints:
        meta_task="|".join(map(re.escape, META_TASK_NAMES)),
    localrule: True
    conda:
        "../envs/taskspace.yaml"
    params:
        levels=TAXONOMY_LEVELS,
        seed=config["selection"]["bootstrap"]["seed"],
    script:
        "../workflow_scripts/plot_selection.py"
