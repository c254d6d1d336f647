"""Which of the papers' claims a finished run reproduces, printed from its tables (nothing is recomputed).

    snakemake --cores 2 && python benchmarks/bench_fidelity.py results [--readme README.md]

Prints the summary table, each selection claim with its numbers, and per method the Spearman correlation between
its symmetric distance and the taxonomic distance (levels domain > clade > order), the mean taxonomic distance to
each task's nearest neighbour, and the Spearman correlation between the Fisher norm ||F||_1 (embedding minus the
trivial embedding) and the test error of the task's best expert. ``--readme`` rewrites the generated block of the
README between its ``<!-- fidelity:begin -->`` / ``<!-- fidelity:end -->`` markers.
"""

from __future__ import annotations

import argparse
import io
import re
import sys
from contextlib import redirect_stdout
from pathlib import Path

import h5py
import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from taskspace.cli import main as cli  # noqa: E402
from taskspace.fidelity import (  # noqa: E402
    difficulty_correlation,
    neighbour_taxonomy,
    selection_claims,
    taxonomic_distance,
    taxonomy_correlation,
)

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


def report(results: Path) -> str:
    buf = io.StringIO()
    with redirect_stdout(buf):
        cli(["summary", str(results), "--markdown"])
    summary = pd.read_parquet(results / "summary.parquet")
    selection = pd.read_parquet(results / "selection.parquet")
    tasks = pd.read_parquet(results / "tasks.parquet")
    tasks = tasks[tasks["role"] == "task"]
    taxonomy = taxonomic_distance(tasks, LEVELS)
    lines = ["Mean relative error increase over the best expert (%), lower is better:", "", buf.getvalue().rstrip(),
             "", "Claims:", ""]
    for claim in selection_claims(summary):
        lines.append(f"- {'REPRODUCED' if claim.reproduced else 'NOT REPRODUCED'}: {claim.text}. {claim.evidence}.")
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
    lines += ["", f"Taxonomic distance: 1 = sister orders (same clade), 2 = same domain, 3 = other domain; a random "
              f"neighbour is at {chance:.2f} on average."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="?", default="results", type=Path)
    parser.add_argument("--readme", type=Path, help="rewrite the README's generated fidelity block")
    args = parser.parse_args()
    text = report(args.results)
    print(text)
    if args.readme:
        readme = args.readme.read_text()
        block = f"<!-- fidelity:begin -->\n{text}\n<!-- fidelity:end -->"
        new, n = re.subn(r"<!-- fidelity:begin -->.*?<!-- fidelity:end -->", lambda _: block, readme, flags=re.S)
        if n != 1:
            raise SystemExit(f"{args.readme}: expected one fidelity block between markers, found {n}")
        args.readme.write_text(new)


if __name__ == "__main__":
    main()
