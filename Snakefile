# taskspace: which pretrained expert should I transfer from for a new image task?
#
# results/
#   tasks/{task}.h5                  one task: uint8 images, labels, train/test split, class names, provenance
#   tasks.parquet                    one row per task (the source task too when the probe is pretrained here)
#   probe/probe.pt (trained on the source task, or imported: ImageNet weights, a checkpoint), probe/metrics.parquet;
#   probe/random.pt (the probe's seeded init, for random-probe methods)
#   experts/{task}.pt, experts/{task}.metrics.parquet
#   transfer/part-{batch}.parquet    the transfer pairs of a batch of experts; expert "generic" = the probe
#   transfer.parquet                 the full expert x task matrix, long format
#   embeddings/part-{batch}.h5       every embedding of a batch of tasks; gathered into embeddings.h5
#   reuse/transfer/{expert}/{task}.parquet, reuse/embeddings/{method}/{task}.h5
#                                    each pair and embedding with the digests of its inputs (reused when equal)
#   distances/{method}.parquet       method (selector: name or name.kind), embedding, kind, source, target, distance
#   model2vec/{method}.h5            MODEL2VEC model embeddings and biases fitted on every target
#   selection.parquet, summary.parquet, comparisons.parquet   one block of rows per meta-task (column meta_task)
#   plots/{meta_task}/*.png, *.csv   the papers' figures and the summary/comparison tables of the report
#   logs/{rule}/..., benchmarks/{rule}/...

from snakemake.utils import min_version

min_version("9.0")


# A run reads one config: the files given with --configfile (in order), or else config.yaml, the demo's; the schema
# (lib/taskspace/config.schema.yaml) fills in every key left out. A study's file is never merged over the demo's.
if not workflow.overwrite_configfiles:

    configfile: "config.yaml"


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/split.smk"
include: "rules/probe.smk"
include: "rules/experts.smk"
include: "rules/transfer.smk"
include: "rules/embed.smk"
include: "rules/select.smk"


localrules:
    all,


rule all:
    default_target: True
    input:
        RESULTS.tasks_table(),
        RESULTS.transfer(),
        RESULTS.embeddings(),
        RESULTS.table("summary"),
        RESULTS.table("comparisons"),
        expand(
            RESULTS.plot(figure="{figure}"),
            meta_task=META_TASK_NAMES,
            figure=PLOTS,
        ),
        expand(RESULTS.expert(), task=EXPERT_TASKS),  # the whole declared bank
