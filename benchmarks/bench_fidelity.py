"""Which of the papers' claims a finished run reproduces, printed from its tables (nothing is recomputed).

    snakemake --cores 2 && python benchmarks/bench_fidelity.py results
    python benchmarks/bench_fidelity.py packaged/results --levels entry group --block packaged --readme docs/studies.md
    python benchmarks/bench_fidelity.py results --levels collection group --block collections --readme docs/studies.md

Prints the summary table with a 95% bootstrap interval (over targets) for each method's mean relative error
increase, each selection claim with its numbers and the paired bootstrap interval of every difference it claims
(the verdict is read from those intervals: REPRODUCED / NOT REPRODUCED when they exclude 0, else NOT
DISTINGUISHABLE),
and per method the Spearman correlation between its symmetric distance and the taxonomic distance (``--levels``,
coarsest first, the task's own level last: domain > clade > order for the synthetic world), the mean taxonomic
distance to each task's nearest neighbour, and the Spearman correlation between the Fisher norm ||F||_1 (embedding
minus the trivial embedding) and the test error of the task's best expert. ``--readme PAGE`` rewrites the generated
block between the ``<!-- <block>:begin -->`` / ``<!-- <block>:end -->`` markers of that markdown page (docs/studies.md,
block ``packaged``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from taskspace.fidelity import (  # noqa: E402
    difficulty_correlation,
    premise,
    neighbour_taxonomy,
    selection_claims,
    taxonomic_distance,
    taxonomy_correlation,
)
from generated import write_block  # noqa: E402  benchmarks/generated.py

LEVELS = ["domain", "clade", "order"]


def fisher_norms(embeddings: Path, method: str) -> dict[str, float] | None:
    """||embedding - trivial||_1 per task, or None for a method without a trivial embedding."""
    with h5py.File(embeddings, "r") as f:
        if method not in f:
            return None
        out = {}
        for task, group in f[method].items():
            if "trivial" not in group:
                return None
            out[task] = float(np.abs(group["embedding"][()] - group["trivial"][()]).sum())
        return out


LEVEL_NOTES = {
    ("domain", "clade", "order"): "1 = sister orders (same clade), 2 = same domain, 3 = other domain",
    ("entry", "group"): "1 = same source (e.g. two emoji categories), 2 = different sources",
    ("collection", "group"): "1 = same collection (e.g. two Wesnoth factions), 2 = different collections",
}


def summary_table(summary: pd.DataFrame) -> list[str]:
    """The summary as a markdown table: each mean relative increase and top-1 rate with its 95% bootstrap interval
    over targets (summary.parquet's own columns), the selector's kind and cost."""
    lines = ["| method | kind | cost (passes) | targets | optimal error % | chosen error % "
             "| mean rel. increase % [95% CI] | median rel. increase % | top-1 % [95% CI] | rank corr |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for row in summary.itertuples(index=False):
        targets = f"{row.n_targets}" + (f" ({row.n_skipped} skipped)" if row.n_skipped else "")
        lines.append(
            f"| {row.method} | {row.kind} | {row.cost:g} | {targets} | {100 * row.mean_optimal_error:.2f} "
            f"| {100 * row.mean_chosen_error:.2f} | {100 * row.mean_relative_increase:+.1f} "
            f"[{100 * row.mean_relative_increase_lo:+.1f}, {100 * row.mean_relative_increase_hi:+.1f}] "
            f"| {100 * row.median_relative_increase:+.1f} | {100 * row.top1_hit_rate:.0f} "
            f"[{100 * row.top1_hit_rate_lo:.0f}, {100 * row.top1_hit_rate_hi:.0f}] | {row.mean_rank_corr:.2f} |"
        )
    return lines


def report(results: Path, levels: list[str] = LEVELS, meta_task: str | None = None) -> str:
    summary = pd.read_parquet(results / "summary.parquet")
    selection = pd.read_parquet(results / "selection.parquet")
    meta_task = meta_task or summary["meta_task"].iloc[0]
    summary = summary[summary["meta_task"] == meta_task]
    selection = selection[selection["meta_task"] == meta_task]
    tasks = pd.read_parquet(results / "tasks.parquet")
    tasks = tasks[tasks["role"] == "task"]
    taxonomy = taxonomic_distance(tasks, levels)
    lines = [f"Meta-task `{meta_task}`: mean relative error increase over the best expert (%, lower is better), "
             "with its 95% bootstrap interval over targets:", "", *summary_table(summary), ""]
    if "generic" in set(selection["method"]):
        n, better, clearly = premise(selection)
        lines += [f"The best candidate expert beats the generic probe on {better} of {n} targets, by at least 10% "
                  f"relative error on {clearly}.", ""]
    lines += ["Claims:", ""]
    for claim in selection_claims(selection):
        lines.append(f"- {claim.verdict}: {claim.text}. {claim.evidence}.")
    lines += ["", "| method | Spearman(distance, taxonomic distance) | nearest neighbour's taxonomic distance "
              "| Spearman(Fisher norm, best expert's error) |", "|---|---|---|---|"]
    chance = taxonomy.to_numpy()[~np.eye(len(taxonomy), dtype=bool)].mean()
    for path in sorted((results / "distances").glob("*.parquet")):
        dist = pd.read_parquet(path)
        kinds = set(dist["kind"])
        kind = "sym" if "sym" in kinds else "" if "" in kinds else None
        if kind is None or dist["embedding"].iloc[0] == "model2vec":
            continue
        norms = fisher_norms(results / "embeddings.h5", path.stem)
        difficulty = f"{difficulty_correlation(norms, selection):+.2f}" if norms else "-"
        lines.append(f"| {path.stem}{'.sym' if kind else ''} | {taxonomy_correlation(dist, taxonomy, kind):+.2f} "
                     f"| {neighbour_taxonomy(dist, taxonomy, kind):.2f} | {difficulty} |")
    note = LEVEL_NOTES.get(tuple(levels), f"levels {' > '.join(levels)}")
    lines += ["", f"Taxonomic distance: {note}; a random neighbour is at {chance:.2f} on average."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="?", default="results", type=Path)
    parser.add_argument("--levels", nargs="+", default=LEVELS,
                        help="tasks.parquet columns of the taxonomy, coarsest first (default: domain clade order)")
    parser.add_argument("--meta-task", help="the meta-task to report (default: the first)")
    parser.add_argument("--readme", type=Path,
                        help="rewrite the generated block of this markdown page (docs/studies.md)")
    parser.add_argument("--block", help="name of the generated block (with --readme; e.g. packaged)")
    args = parser.parse_args()
    text = report(args.results, args.levels, args.meta_task)
    print(text)
    if args.readme:
        if not args.block:
            raise SystemExit("--readme needs --block: the name of the generated block (e.g. packaged)")
        write_block(args.readme, args.block, text)


if __name__ == "__main__":
    main()
