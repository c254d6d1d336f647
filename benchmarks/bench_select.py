"""What the selection stage and the per-expert scores cost on a finished run, measured side by side.

    snakemake --cores 2 && python benchmarks/bench_select.py . [--repeats 3] [--demo-seconds S]

Prints (medians over --repeats, each repeat a fresh Python process, as a job is):
  * the select stage: scoring every selector with its bootstrap intervals and the paired comparisons
    (`score_selection`), and every figure and report table of each meta-task (`plot_selection`); against the run's
    own work (the sum of every rule's benchmark file) and, with --demo-seconds, the demo's cold wall time;
  * the transfer stage computed from scratch (every expert over every target of the run, one process, nothing
    reused) with transfer.scores as configured and with none, alternately; their ratio is what the scores add.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "lib"))

SELECT = """
import json, sys, time
sys.path.insert(0, {lib!r})
t0 = time.perf_counter()
from taskspace.stages import score, plot
a = json.loads({args!r})
score(a["transfer"], a["distances"], a["selection"], a["summary"], a["meta_tasks"], comparisons=a["comparisons"],
      selection_cfg=a["selection_cfg"], scores=a["scores"])
t1 = time.perf_counter()
for name, outputs in a["plots"].items():
    plot(name, a["plot_inputs"], outputs, a["levels"], a["seed"])
print(json.dumps({{"score": t1 - t0, "plot": time.perf_counter() - t1}}))
"""

TRANSFER = """
import json, sys, time, warnings
sys.path.insert(0, {lib!r})
warnings.simplefilter("ignore")
t0 = time.perf_counter()
from taskspace.stages import transfer_batch
a = json.loads({args!r})
transfer_batch(a["experts"], a["columns"], a["tasks"], a["cfg"], a["output"], a["store"], threads=1)
print(json.dumps({{"seconds": time.perf_counter() - t0}}))
"""


def python(code: str) -> dict:
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def job_seconds(results: Path) -> float:
    """The sum of the wall seconds of every job of the run (its rules' benchmark files)."""
    total = 0.0
    for tsv in (results / "benchmarks").rglob("*.tsv"):
        total += float(pd.read_csv(tsv, sep="\t")["s"].iloc[0])
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", nargs="?", default=".", type=Path, help="the run's working directory")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--demo-seconds", type=float, help="the demo's cold wall time, measured elsewhere")
    parser.add_argument("--skip-transfer", action="store_true")
    args = parser.parse_args()

    from taskspace.plan import validate_config
    from taskspace.results import read_provenance

    run = args.run.resolve()
    res = run / "results"
    cfg = validate_config(yaml.safe_load((run / "config.yaml").read_text()))
    meta_tasks = read_provenance(res / "selection.parquet")["meta_tasks"]
    from taskspace.data import plan_tasks
    from taskspace.study import taxonomy_levels

    levels = taxonomy_levels([s for s in plan_tasks(cfg["data"]) if s.role == "task"])
    distances = sorted(str(p) for p in (res / "distances").glob("*.parquet"))

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        plots = {name: {k: str(tmp / name / f"{k}.{'csv' if k.endswith('table') else 'png'}") for k in
                        ("violin", "bars", "frontier", "heatmaps", "maps", "norms", "taxonomy", "summary_table",
                         "comparisons_table")} for name in meta_tasks}
        select_args = {
            "transfer": str(res / "transfer.parquet"), "distances": distances, "meta_tasks": meta_tasks,
            "selection": str(tmp / "selection.parquet"), "summary": str(tmp / "summary.parquet"),
            "comparisons": str(tmp / "comparisons.parquet"), "selection_cfg": cfg["selection"],
            "scores": cfg["transfer"]["scores"], "plots": plots, "levels": levels,
            "seed": cfg["selection"]["bootstrap"]["seed"],
            "plot_inputs": {"transfer": str(res / "transfer.parquet"), "selection": str(tmp / "selection.parquet"),
                            "summary": str(tmp / "summary.parquet"), "comparisons": str(tmp / "comparisons.parquet"),
                            "tasks": str(res / "tasks.parquet"), "embeddings": str(res / "embeddings.h5"),
                            "distances": distances},
        }
        runs = [python(SELECT.format(lib=str(REPO / "lib"), args=json.dumps(select_args)))
                for _ in range(args.repeats)]
        score_s = statistics.median(r["score"] for r in runs)
        plot_s = statistics.median(r["plot"] for r in runs)
        total = statistics.median(r["score"] + r["plot"] for r in runs)
        work = job_seconds(res)
        n_methods = len(pd.read_parquet(tmp / "summary.parquet"))
        print(f"select stage ({len(meta_tasks)} meta-task(s), {n_methods} summary rows, "
              f"{cfg['selection']['bootstrap']['resamples']} resamples), median of {args.repeats}: "
              f"{total:.1f} s (score + intervals + comparisons {score_s:.1f} s, figures and tables {plot_s:.1f} s)")
        print(f"  the run's jobs took {work:.0f} s in all: the select stage is {100 * total / work:.1f}% of them")
        if args.demo_seconds:
            print(f"  the demo's cold wall time {args.demo_seconds:.0f} s: the select stage is "
                  f"{100 * total / args.demo_seconds:.1f}% of it")
        if args.skip_transfer:
            return

        transfer = pd.read_parquet(res / "transfer.parquet")
        columns = {e: sorted(g["task"]) for e, g in transfer.groupby("expert")}
        experts = {e: str(res / ("probe/probe.pt" if e == "generic" else f"experts/{e}.pt")) for e in columns}
        task_files = {t: str(res / "tasks" / f"{t}.h5") for t in transfer["task"].unique()}
        times: dict[str, list[float]] = {"with scores": [], "without": []}
        for rep in range(args.repeats):
            for label, scores in (("with scores", cfg["transfer"]["scores"]), ("without", [])):
                a = {"experts": experts, "columns": columns, "tasks": task_files,
                     "cfg": {**cfg["transfer"], "scores": scores}, "output": str(tmp / f"t{rep}{label[0]}.parquet"),
                     "store": str(tmp / f"store{rep}{label[0]}")}
                times[label].append(python(TRANSFER.format(lib=str(REPO / "lib"), args=json.dumps(a)))["seconds"])
        on, off = statistics.median(times["with scores"]), statistics.median(times["without"])
        pairs = sum(len(c) for c in columns.values())
        print(f"transfer stage from scratch, {pairs} pairs in one process, median of {args.repeats} alternating: "
              f"with {cfg['transfer']['scores']} {on:.1f} s, without {off:.1f} s: x{on / off:.3f} "
              f"(+{100 * (on / off - 1):.1f}%; each: {', '.join(f'{v:.1f}' for v in times['with scores'])} vs "
              f"{', '.join(f'{v:.1f}' for v in times['without'])})")
        t = pd.read_parquet(res / "transfer.parquet")
        if "seconds_scores" in t:
            share = t["seconds_scores"].sum() / t[["seconds_load", "seconds_features", "seconds_fit",
                                                   "seconds_scores"]].sum().sum()
            print(f"  in the run's own transfer.parquet the scores took {t['seconds_scores'].sum():.1f} s, "
                  f"{100 * share:.1f}% of the pairs' timed work")


if __name__ == "__main__":
    main()
