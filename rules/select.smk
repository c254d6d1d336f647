rule score_selection:
    input:
        transfer=RESULTS.transfer(),
        replicates=RESULTS.transfer_replicates(),
        distances=expand(RESULTS.distances(), method=METHODS),
        tasks=RESULTS.tasks_table(),
    output:
        selection=RESULTS.table("selection"),
        summary=RESULTS.table("summary"),
        comparisons=RESULTS.table("comparisons"),
    log:
        RESULTS.log("score_selection"),
    benchmark:
        RESULTS.benchmark("score_selection")
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
        transfer=RESULTS.transfer(),
        selection=RESULTS.table("selection"),
        summary=RESULTS.table("summary"),
        comparisons=RESULTS.table("comparisons"),
        tasks=RESULTS.tasks_table(),
        embeddings=RESULTS.embeddings(),
        distances=expand(RESULTS.distances(), method=METHODS),
    output:
        violin=report(
            RESULTS.plot(figure="selection_violin.png"),
            caption="../report/selection_violin.rst",
            category="{meta_task}",
            subcategory="1 selection",
        ),
        bars=report(
            RESULTS.plot(figure="summary.png"),
            caption="../report/summary.rst",
            category="{meta_task}",
            subcategory="1 selection",
        ),
        frontier=report(
            RESULTS.plot(figure="cost_frontier.png"),
            caption="../report/cost_frontier.rst",
            category="{meta_task}",
            subcategory="1 selection",
        ),
        heatmaps=report(
            RESULTS.plot(figure="distance_heatmaps.png"),
            caption="../report/distance_heatmaps.rst",
            category="{meta_task}",
            subcategory="2 task space",
        ),
        maps=report(
            RESULTS.plot(figure="task_maps.png"),
            caption="../report/task_maps.rst",
            category="{meta_task}",
            subcategory="2 task space",
        ),
        norms=report(
            RESULTS.plot(figure="norm_vs_error.png"),
            caption="../report/norm_vs_error.rst",
            category="{meta_task}",
            subcategory="2 task space",
        ),
        taxonomy=report(
            RESULTS.plot(figure="taxonomy_curve.png"),
            caption="../report/taxonomy_curve.rst",
            category="{meta_task}",
            subcategory="2 task space",
        ),
        summary_table=report(
            RESULTS.plot(figure="summary.csv"),
            caption="../report/summary_table.rst",
            category="{meta_task}",
            subcategory="3 tables",
        ),
        comparisons_table=report(
            RESULTS.plot(figure="comparisons.csv"),
            caption="../report/comparisons_table.rst",
            category="{meta_task}",
            subcategory="3 tables",
        ),
    log:
        RESULTS.log("plot_selection", "{meta_task}"),
    benchmark:
        RESULTS.benchmark("plot_selection", "{meta_task}")
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
