"""Benchmark of the embedded world: does choosing an expert matter in it, what the demo costs, and how stable the
study's verdicts are across world seeds.

    python benchmarks/bench_world.py [--seeds 0 1 2] [--config config.yaml] [--workdir DIR] [--readme docs/studies.md]
    python benchmarks/bench_world.py --worlds benchmarks/worlds.yaml ...   (every world of a world list)
    python benchmarks/bench_world.py --reuse --workdir DIR ...   (report the finished runs in DIR/seed-<s>; run the others)

For each seed s, the config with ``data.seed`` and ``seed`` set to s (another world and other training draws) is
run cold with ``--cores 2``, one seed after the other. Printed per seed:

* the cold wall time of the run and each stage's time read from its jobs' ``benchmark:`` files (jobs, seconds summed
  over the jobs, the longest job): the budget can be audited stage by stage;
* the premise of the study: on how many targets the best candidate expert (own expert and generic probe excluded)
  beats the generic probe, and by >= 10 % relative error (generic's relative error increase over it); the mean
  test error of the candidate experts by relation to the target (sister order, same domain, other domain);
* every selector's mean relative error increase with its 95 % bootstrap interval over targets.

Across seeds: each selector's mean over the seeds, their standard deviation and range, and the interval of each
seed; which differences between the headline selectors are larger than the noise (the paired interval excludes 0
with the same sign in every seed); the papers' claims with their verdict in each world. ``--readme PAGE`` writes
the generated block between ``<!-- world:begin -->`` and ``<!-- world:end -->`` of that markdown page
(docs/studies.md, section "What the default run shows").
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "lib"))

import taskspace  # noqa: E402,F401  first: numeric kernels pinned before numpy loads (taskspace.numerics)
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402

from taskspace.fidelity import (  # noqa: E402
    difficulty_correlation,
    neighbour_taxonomy,
    premise,
    selection_claims,
    taxonomic_distance,
    taxonomy_correlation,
)
from taskspace.pooled import WorldRun, draw_means, load_world_list, per_target, world_from_run  # noqa: E402
from generated import write_block  # noqa: E402  benchmarks/generated.py

LEVELS = ["domain", "clade", "order"]

# the selectors compared pairwise in the claims (the per-expert scores and two-stage ones are in the table)
HEADLINE = ["task2vec.asym", "task2vec.sym", "task2vec_mc.asym", "pseudotask.asym", "ttk", "model2vec", "domain",
            "logme", "knn", "sfda", "ncti", "task2vec.asym>logme@3", "agnostic.mean_quality", "agnostic.most_images",
            "generic", "random"]
RELATIONS = ("sister order", "same domain", "other domain")


def run_cold(workdir: Path, config: dict) -> float:
    """One cold run of the whole study in ``workdir``; its wall time in seconds."""
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
           "--configfile", str(workdir / "config.yaml"), "--cores", "2", "--quiet", "all"]
    env = dict(os.environ, PYTHONPATH=str(REPO / "lib"))
    start = time.perf_counter()
    with open(workdir / "run.log", "w") as log:
        subprocess.run(cmd, check=True, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, env=env)
    seconds = time.perf_counter() - start
    (workdir / "wall_seconds.txt").write_text(f"{seconds:.1f}\n")
    return seconds


def stage_times(results: Path) -> pd.DataFrame:
    """Per rule, from its jobs' benchmark files: jobs, seconds summed over them, the longest job."""
    rows = []
    for entry in sorted((results / "benchmarks").iterdir()):
        files = [entry] if entry.is_file() else sorted(entry.glob("*.tsv"))
        seconds = [float(pd.read_csv(f, sep="\t")["s"].iloc[0]) for f in files]
        if seconds:
            rows.append({"stage": entry.stem, "jobs": len(seconds), "seconds": sum(seconds), "longest": max(seconds)})
    return pd.DataFrame(rows).sort_values("seconds", ascending=False, ignore_index=True)


def relation_errors(results: Path) -> dict[str, float]:
    """Mean test error of candidate experts (not the target's own, not generic) by their relation to the target:
    averaged per target first, then over targets."""
    transfer = pd.read_parquet(results / "transfer.parquet")
    tasks = pd.read_parquet(results / "tasks.parquet").set_index("task")
    pairs = transfer[(transfer.expert != "generic") & (transfer.expert != transfer.task)].copy()
    same_clade = tasks.clade[pairs.expert].to_numpy() == tasks.clade[pairs.task].to_numpy()
    same_domain = tasks.domain[pairs.expert].to_numpy() == tasks.domain[pairs.task].to_numpy()
    pairs["relation"] = np.where(same_clade, RELATIONS[0], np.where(same_domain, RELATIONS[1], RELATIONS[2]))
    per_target = pairs.groupby(["task", "relation"]).test_error.mean().unstack()
    return {r: float(per_target[r].mean()) for r in RELATIONS if r in per_target}


def fisher_norms(embeddings: Path, method: str) -> dict[str, float] | None:
    """||embedding - trivial||_1 per task, or None for a method without a trivial embedding."""
    import h5py

    with h5py.File(embeddings, "r") as f:
        if method not in f or not all("trivial" in g for g in f[method].values()):
            return None
        return {t: float(np.abs(g["embedding"][()] - g["trivial"][()]).sum()) for t, g in f[method].items()}


def embedding_structure(results: Path, tasks: pd.DataFrame, selection: pd.DataFrame) -> dict[str, tuple]:
    """Per method (symmetric distance where there is one): Spearman(distance, taxonomic distance), the mean
    taxonomic distance of each task's nearest neighbour, Spearman(Fisher norm, best expert's error) or None."""
    taxonomy = taxonomic_distance(tasks, LEVELS)
    out = {}
    for path in sorted((results / "distances").glob("*.parquet")):
        dist = pd.read_parquet(path)
        kinds = set(dist["kind"])
        kind = "sym" if "sym" in kinds else "" if "" in kinds else None
        if kind is None or dist["embedding"].iloc[0] == "model2vec":
            continue
        norms = fisher_norms(results / "embeddings.h5", path.stem)
        out[f"{path.stem}{'.sym' if kind else ''}"] = (
            taxonomy_correlation(dist, taxonomy, kind), neighbour_taxonomy(dist, taxonomy, kind),
            difficulty_correlation(norms, selection) if norms else None)
    return out


def seed_report(seed: int, results: Path, wall: float | None, name: str | None = None, config: str = "config.yaml"
                ) -> dict:
    summary = pd.read_parquet(results / "summary.parquet")
    meta_task = summary.meta_task.iloc[0]
    summary = summary[summary.meta_task == meta_task].set_index("method")
    selection = pd.read_parquet(results / "selection.parquet")
    selection = selection[selection.meta_task == meta_task]
    comparisons = pd.read_parquet(results / "comparisons.parquet")
    comparisons = comparisons[comparisons.meta_task == meta_task]
    tasks = pd.read_parquet(results / "tasks.parquet")
    tasks = tasks[tasks.role == "task"]
    return {
        "seed": seed,
        "name": name or f"seed-{seed}",
        "config": config,
        "wall": wall,
        "stages": stage_times(results),
        "premise": premise(selection),
        "relations": relation_errors(results),
        "summary": summary,
        "comparisons": comparisons,
        "claims": selection_claims(selection),
        "ranks": selector_ranks(summary),
        "wide": selection.pivot_table(index="target", columns="method", values="relative_increase", aggfunc="first"),
        "sizes": (int(tasks.n_train.min()), int(tasks.n_train.max())),
        "structure": embedding_structure(results, tasks, selection),
        "world": world_from_run(results, name=name or f"seed-{seed}", meta_task=meta_task),
    }


def pct(x: float) -> str:
    return f"{100 * x:+.1f}"


def across_seeds(reports: list[dict]) -> pd.DataFrame:
    """Per selector: mean over seeds, standard deviation and range across them, each seed's value and interval."""
    methods = list(reports[0]["summary"].index)
    rows = []
    for m in methods:
        values = [r["summary"].loc[m] for r in reports if m in r["summary"].index]
        means = [float(v.mean_relative_increase) for v in values]
        rows.append({
            "method": m,
            "kind": values[0].kind,
            "cost": float(values[0].cost),
            "mean": float(np.mean(means)),
            "sd": float(np.std(means, ddof=1)) if len(means) > 1 else float("nan"),
            "min": min(means),
            "max": max(means),
            "per_seed": [(float(v.mean_relative_increase), float(v.mean_relative_increase_lo),
                          float(v.mean_relative_increase_hi), int(v.n_targets)) for v in values],
            "tau": float(np.nanmean([float(v.mean_weighted_tau) for v in values]))
            if any(np.isfinite(float(v.mean_weighted_tau)) for v in values) else float("nan"),
            "ranks": [int(r["ranks"][m]) if m in r["ranks"] else None for r in reports],
        })
    return pd.DataFrame(rows)


def selector_ranks(summary: pd.DataFrame) -> dict[str, int]:
    """Rank of each selector (the references oracle and random left out) by mean relative increase, 1 = best; ties
    by name."""
    s = summary[(summary.kind != "reference") | (summary.index == "generic")]
    s = s[s.n_targets > 0].reset_index().sort_values(["mean_relative_increase", "method"], kind="mergesort")
    return {m: i + 1 for i, m in enumerate(s["method"])}


def setup_stability(reports: list[dict]) -> tuple[float, list[float]]:
    """Agostinelli et al.'s setup-stability score across worlds: the Kendall tau between the selectors' rankings
    of every two worlds (over the selectors ranked in both), and their mean."""
    from scipy.stats import kendalltau

    taus = []
    for i, a in enumerate(reports):
        for b in reports[i + 1:]:
            common = sorted(set(a["ranks"]) & set(b["ranks"]))
            taus.append(float(kendalltau([a["ranks"][m] for m in common], [b["ranks"][m] for m in common]).statistic))
    return (float(np.mean(taus)) if taus else float("nan")), taus


def stable_differences(reports: list[dict], methods: list[str]) -> list[tuple[str, str, str, list[float], str]]:
    """Pairs of headline selectors with their verdict in each seed (from comparisons.parquet's paired intervals):
    (a, b, 'a better' / 'b better' / 'not distinguishable', per-seed mean differences, per-seed verdicts)."""
    out = []
    for i, a in enumerate(methods):
        for b in methods[i + 1:]:
            diffs, verdicts = [], []
            for r in reports:
                c = r["comparisons"]
                row = c[(c.method_a == a) & (c.method_b == b)]
                sign = 1.0
                if row.empty:
                    row, sign = c[(c.method_a == b) & (c.method_b == a)], -1.0
                if row.empty:
                    break
                row = row.iloc[0]
                diffs.append(sign * float(row.mean_difference))
                lo, hi = sorted((sign * float(row.difference_lo), sign * float(row.difference_hi)))
                verdicts.append(f"{a} better" if hi < 0 else f"{b} better" if lo > 0 else "not distinguishable")
            if len(diffs) != len(reports):
                continue
            overall = verdicts[0] if len(set(verdicts)) == 1 and verdicts[0] != "not distinguishable" else \
                "not distinguishable"
            out.append((a, b, overall, diffs, "; ".join(verdicts)))
    return out


POOLED_RESAMPLES = 4000


def pooled_comparisons(reports: list[dict], pairs: list[tuple[str, str]], draws: pd.DataFrame,
                       fixed: pd.DataFrame | None = None) -> list[dict]:
    """Each pair (selector, reference), pooled over the worlds: the mean of the per-target paired differences of
    relative increase (selector - reference; < 0: the selector is better) over every world's targets, its 95 %
    interval from the pooled bootstrap (``draws``: :func:`taskspace.pooled.draw_means`, worlds, then the targets
    and the experts of each), the verdict read from it, the interval with every world's pool of experts kept
    (``fixed``: worlds and targets resampled only), and the targets a comparison needs for 80 % power at that
    effect."""
    from taskspace.fidelity import interval
    from taskspace.uncertainty import targets_for_power, verdict

    rows = []
    for m, ref in pairs:
        groups = [(r["wide"][m] - r["wide"][ref]).dropna().to_numpy(float) for r in reports
                  if m in r["wide"] and ref in r["wide"]]
        if len(groups) != len(reports) or m not in draws or ref not in draws:
            continue
        d = np.concatenate(groups)
        lo, hi = interval((draws[m] - draws[ref]).dropna())
        fixed_lo, fixed_hi = interval((fixed[m] - fixed[ref]).dropna()) if fixed is not None else (np.nan, np.nan)
        rows.append({"method": m, "reference": ref, "mean": float(d.mean()), "lo": lo, "hi": hi, "n": len(d),
                     "verdict": verdict(m, ref, lo, hi), "needed": targets_for_power(d),
                     "fixed_lo": fixed_lo, "fixed_hi": fixed_hi,
                     "fixed_verdict": verdict(m, ref, fixed_lo, fixed_hi) if fixed is not None else "-"})
    return rows


def render(reports: list[dict]) -> str:
    names = [r["name"] for r in reports]
    table = across_seeds(reports)
    configs = list(dict.fromkeys(r["config"] for r in reports))
    lines = ["Each world run cold with `--cores 2`, its config with `data.seed` = `seed` = s ("
             + "; ".join(f"`{c}`: " + ", ".join(f"{r['name']}" for r in reports if r["config"] == c) for c in configs)
             + "):", ""]
    lines += ["| world | cold wall time | best other expert beats generic | ... by >= 10 % relative "
              "| mean error: sister-order / same-domain / other-domain experts | task sizes (training images) |",
              "|---|---|---|---|---|---|"]
    for r in reports:
        n, better, clearly = r["premise"]
        rel = r["relations"]
        wall = f"{r['wall']:.0f} s" if r["wall"] is not None else "-"
        lines.append(f"| {r['name']} | {wall} | {better} of {n} ({100 * better / n:.0f} %) "
                     f"| {clearly} of {n} ({100 * clearly / n:.0f} %) "
                     f"| {' / '.join(f'{100 * rel[k]:.1f} %' for k in RELATIONS if k in rel)} "
                     f"| {r['sizes'][0]} to {r['sizes'][1]} |")
    for c in configs:
        first = next(r for r in reports if r["config"] == c)
        lines += ["", f"Each stage's time in the run of {first['name']} (`{c}`), from its jobs' `benchmark:` files "
                  "(seconds summed over the jobs; two run at once):", "", "| stage | jobs | seconds | longest job |",
                  "|---|---|---|---|"]
        for row in first["stages"].itertuples():
            lines.append(f"| {row.stage} | {row.jobs} | {row.seconds:.1f} | {row.longest:.1f} |")
    lines += ["", "Mean relative error increase over the best expert (%, lower is better): the mean over the worlds, "
              "its standard deviation and range across them, and each world's value with its 95 % bootstrap "
              "interval over targets (cost: passes over the new task for the first world's pool):", "",
              "| method | kind | cost (passes) | mean over worlds | sd across worlds | range | "
              + " | ".join(f"{n} [95% CI]" for n in names) + " | rank per world | weighted tau |",
              "|---|---|---|---|---|---|" + "---|" * len(names) + "---|---|"]
    for row in table.sort_values(["kind", "mean"]).itertuples():
        cells = []
        for mean, lo, hi, n in row.per_seed:
            cells.append(f"{pct(mean)} [{pct(lo)}, {pct(hi)}]" if n else "- (every target skipped)")
        ranks = ", ".join("-" if r is None else str(r) for r in row.ranks)
        tau = f"{row.tau:+.2f}" if np.isfinite(row.tau) else "-"
        lines.append(f"| {row.method} | {row.kind} | {row.cost:g} | {pct(row.mean)} | {100 * row.sd:.1f} "
                     f"| {pct(row.min)} to {pct(row.max)} | " + " | ".join(cells) + f" | {ranks} | {tau} |")
    stability, taus = setup_stability(reports)
    lines += ["", f"Rank per world: the selector's place by mean relative increase among the {len(reports[0]['ranks'])} "
              "selectors of that world (generic included, the references not). Weighted tau: the mean over worlds "
              "of the mean per-target weighted Kendall tau between the selector's ranking and the true one "
              "(`scipy.stats.weightedtau`; 1 = the same order). Setup stability across worlds (Agostinelli et al. "
              "2022: the Kendall tau between the selectors' rankings of two worlds): "
              + (f"**{stability:+.2f}** (pairs of worlds: {', '.join(f'{t:+.2f}' for t in taus)})"
                 if taus else "one world only") + "."]
    present = [m for m in HEADLINE if all(m in r["summary"].index for r in reports)]
    pairs = stable_differences(reports, present)
    stable = [p for p in pairs if p[2] != "not distinguishable"]
    mixed = [p for p in pairs if p[2] == "not distinguishable" and "better" in p[4]]
    lines += ["", f"Differences larger than the noise: of the {len(pairs)} pairs of {', '.join(present)}, these "
              f"{len(stable)} have a paired 95 % interval over targets that excludes 0, with the same sign, in every "
              f"world (the winner's mean relative increase minus the loser's, in points, per world); {len(mixed)} "
              "more differ in some worlds only, the other "
              f"{len(pairs) - len(stable) - len(mixed)} in none:", ""]
    for a, b, overall, diffs, _ in stable:
        winner, loser, sign = (a, b, 1.0) if overall == f"{a} better" else (b, a, -1.0)
        lines.append(f"- {winner} beats {loser}: {', '.join(f'{100 * sign * d:+.1f}' for d in diffs)}")
    if not stable:
        lines.append("- none")
    references = [m for m in ("agnostic.mean_quality", "generic") if m in present]
    worlds = [r["world"] for r in reports]
    draws = draw_means(worlds, resamples=POOLED_RESAMPLES, seed=0)
    fixed = draw_means(worlds, resamples=POOLED_RESAMPLES, seed=0, experts=False)
    pooled = pooled_comparisons(reports, [(m, ref) for ref in references for m in present if m != ref], draws, fixed)
    n_pooled = sum(len(r["wide"]) for r in reports)
    lines += ["", f"Pooled over the {len(reports)} worlds ({n_pooled} targets): each selector against the "
              "target-agnostic references, the mean paired difference of relative increase (selector minus "
              "reference, points; < 0: the selector is better) with its 95 % interval from a bootstrap of "
              f"{POOLED_RESAMPLES} draws that resamples the worlds, then the targets of each drawn world and its "
              "experts, every selector choosing again among the drawn candidates (the oracle, NCTI's normalisation and "
              "the mean quality recomputed on each pool; `taskspace.pooled`) and the verdict read from it; beside "
              "them the interval and verdict with each world's pool of experts kept whole (worlds and targets "
              "resampled only); and the targets a comparison needs to detect that difference with 80 % power "
              "(paired, two-sided, 5 %). A draw keeps about 63 % of a world's experts, which lowers the oracle and "
              "so every relative increase, the generic probe's most: an interval with the experts resampled is "
              "wider and not centred on the full pool's difference.", "",
              "| selector | against | pooled difference | 95% CI, experts resampled | verdict | 95% CI, pools kept "
              "| verdict | targets | targets for 80 % power |",
              "|---|---|---|---|---|---|---|---|---|"]
    for row in pooled:
        needed = "-" if not np.isfinite(row["needed"]) else f"{row['needed']:.0f}"
        lines.append(f"| {row['method']} | {row['reference']} | {pct(row['mean'])} | [{pct(row['lo'])}, "
                     f"{pct(row['hi'])}] | {row['verdict']} | [{pct(row['fixed_lo'])}, {pct(row['fixed_hi'])}] "
                     f"| {row['fixed_verdict']} | {row['n']} | {needed} |")
    every = pooled_comparisons(reports, [(a, b) for i, a in enumerate(present) for b in present[i + 1:]], draws,
                               fixed)
    decided = [row for row in every if row["verdict"] != "not distinguishable"]
    fixed_decided = sum(row["fixed_verdict"] != "not distinguishable" for row in every)
    lines += ["", f"Every pair of those {len(present)} selectors pooled the same way: {len(decided)} of {len(every)} "
              f"pairs separate with the experts resampled ({fixed_decided} with each world's pool kept whole). "
              "Those that separate with the experts resampled (the winner's pooled mean relative increase minus the "
              "loser's, points [95% CI]; targets for 80 % power):", ""]
    for row in sorted(decided, key=lambda r: -abs(r["mean"])):
        sign = 1.0 if row["mean"] < 0 else -1.0
        winner, loser = (row["method"], row["reference"]) if sign > 0 else (row["reference"], row["method"])
        lo, hi = sorted((-sign * row["lo"], -sign * row["hi"]))
        lines.append(f"- {winner} beats {loser}: {pct(-sign * row['mean'])} [{pct(lo)}, {pct(hi)}]; "
                     f"{row['needed']:.0f} targets")
    if not decided:
        lines.append("- none")
    undecided = sorted((r for r in every if r["verdict"] == "not distinguishable" and np.isfinite(r["needed"])),
                       key=lambda r: r["needed"])
    if undecided:
        lines += ["", f"The undecided pairs would need, for 80 % power at their observed difference: median "
                  f"{statistics.median(r['needed'] for r in undecided):.0f} targets (from "
                  f"{undecided[0]['needed']:.0f}, {undecided[0]['method']} against {undecided[0]['reference']}, to "
                  f"{undecided[-1]['needed']:.0f})."]
    pooled_claims = {c.text: c for c in selection_claims(per_target(worlds), boot=draws)}
    lines += ["", f"The papers' claims, pooled over the {len(reports)} worlds (the verdict from the pooled bootstrap "
              "above), and the verdict in each world alone (from that world's paired intervals over targets):", ""]
    by_text: dict[str, list[str]] = {}
    for r in reports:
        for claim in r["claims"]:
            by_text.setdefault(claim.text, []).append(claim.verdict)
    for text, verdicts in by_text.items():
        claim = pooled_claims.get(text)
        pooled_verdict = claim.verdict if claim else "-"
        lines.append(f"- **{pooled_verdict}** pooled: {text} (worlds: {', '.join(verdicts)})"
                     + (f"; pooled: {claim.evidence}" if claim else ""))
    lines += ["", "What the embeddings see, per world: Spearman(symmetric distance, taxonomic distance) / mean taxonomic "
              "distance of each task's nearest neighbour / Spearman(Fisher norm, best expert's error); taxonomic "
              "distance 1 = sister orders, 2 = same domain, 3 = other domain:", "",
              "| method | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for method in reports[0]["structure"]:
        cells = []
        for r in reports:
            tax, neighbour, difficulty = r["structure"].get(method, (float("nan"),) * 3)
            cells.append(f"{tax:+.2f} / {neighbour:.2f} / " + (f"{difficulty:+.2f}" if difficulty is not None else "-"))
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--config", type=Path, default=REPO / "config.yaml")
    parser.add_argument("--worlds", type=Path,
                        help="a world list (benchmarks/worlds.yaml: configs and their seeds) instead of --config/--seeds")
    parser.add_argument("--workdir", type=Path, help="where the runs go (default: a temporary directory)")
    parser.add_argument("--reuse", action="store_true",
                        help="report a seed's finished run in --workdir instead of running it again")
    parser.add_argument("--readme", type=Path,
                        help="rewrite the generated block of this markdown page (docs/studies.md)")
    parser.add_argument("--block", default="world", help="name of the generated block (default: world)")
    args = parser.parse_args()
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="taskspace-world-"))
    worlds = load_world_list(args.worlds) if args.worlds else [WorldRun(args.config, s) for s in args.seeds]
    reports = []
    for world in worlds:
        run = workdir / world.name
        wall_file = run / "wall_seconds.txt"
        if args.reuse and (run / "results" / "summary.parquet").is_file():
            wall = float(wall_file.read_text()) if wall_file.is_file() else None
        else:
            base = yaml.safe_load(world.config.read_text())
            config = {**base, "seed": world.seed, "data": {**base.get("data", {}), "seed": world.seed}}
            wall = run_cold(run, config)
            print(f"{world.name}: cold run {wall:.1f} s", flush=True)
        reports.append(seed_report(world.seed, run / "results", wall, world.name, world.config.name))
    walls = [r["wall"] for r in reports if r["wall"] is not None]
    text = render(reports)
    print(text)
    if walls:
        print(f"\ncold wall time: median {statistics.median(walls):.1f} s over {len(walls)} runs")
    if args.readme:
        write_block(args.readme, args.block, text)


if __name__ == "__main__":
    main()
