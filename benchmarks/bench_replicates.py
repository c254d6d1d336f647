"""The ground truth's own noise, from a finished run with replicates (``experts.replicates`` >= 2, e.g.
configs/world_replicates.yaml): how far each expert's transfer errors move when it is trained again with another
seed, how often the best expert changes, the noise ceiling, and every selector scored against the replicate mean
and against each single replicate (what a run without replicates would have scored it against).

    python benchmarks/bench_replicates.py RESULTS [--wall SECONDS [--increment]] [--readme docs/studies.md]

``--readme PAGE`` rewrites the generated block ``replicates`` of that page.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "lib"))

import taskspace  # noqa: E402,F401  first: numeric kernels pinned before numpy loads (taskspace.numerics)
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from taskspace.replicates import replicate_count  # noqa: E402
from taskspace.results import GENERIC, Layout, read_table  # noqa: E402
from taskspace.selection import NOISE_CEILING, candidate_table, score_selection  # noqa: E402
from generated import write_block  # noqa: E402  benchmarks/generated.py


def pct(x: float) -> str:
    return f"{100 * x:+.1f}"


def replicate_spread(per_replicate: pd.DataFrame) -> dict[str, float]:
    """The noise against the signal: the median over candidate pairs of the standard deviation of a pair's test
    error across replicates, and the median over targets of the standard deviation across candidates of the mean
    errors; how often every replicate agrees on a target's best candidate."""
    r = per_replicate[(per_replicate.expert != GENERIC) & (per_replicate.expert != per_replicate.task)]
    noise = r.groupby(["expert", "task"]).test_error.std(ddof=1)
    mean = r.groupby(["expert", "task"]).test_error.mean().reset_index()
    signal = mean.groupby("task").test_error.std(ddof=1)
    best = r.sort_values(["task", "replicate", "test_error", "expert"], kind="mergesort").groupby(
        ["task", "replicate"]).head(1)
    agree = best.groupby("task").expert.nunique() == 1
    return {"noise": float(noise.median()), "signal": float(signal.median()), "agree": int(agree.sum()),
            "targets": int(len(agree))}


def _rerank(methods: list[str]) -> list[tuple[str, str, int]]:
    out = []
    for m in methods:
        if ">" in m:
            embedding, rest = m.split(">", 1)
            score, k = rest.rsplit("@", 1)
            out.append((embedding, score, int(k)))
    return out


def scored_against(results: Path, per_replicate: pd.DataFrame, summary: pd.DataFrame) -> dict[str, pd.Series]:
    """Every selector's mean relative increase with each single replicate as the ground truth (the distances and
    the scores as the run computed them)."""
    layout = Layout(str(results))
    folder = Path(layout.distances()).parent
    dist = pd.concat([read_table(p) for p in sorted(folder.glob("*.parquet"))], ignore_index=True)
    dist = dist[dist.method.isin(summary.index)]
    tasks = read_table(layout.tasks_table())
    images = dict(zip(tasks["task"].astype(str), tasks["n_train"].astype(int)))
    scores = [m for m in summary.index if summary.loc[m, "kind"] == "per-expert"]
    out = {}
    for r in range(replicate_count(per_replicate)):
        # the generic probe is not retrained: its one replicate stands in every matrix
        table = per_replicate[(per_replicate.replicate == r)
                              | ((per_replicate.expert == GENERIC) & (per_replicate.replicate == 0))]
        table = table.drop(columns="replicate")
        _, summ = score_selection(table, dist, scores=scores, rerank=_rerank(list(summary.index)),
                                  expert_images=images)
        out[f"replicate {r}"] = summ.set_index("method").mean_relative_increase
    out["their mean"] = pd.concat(list(out.values()), axis=1).mean(axis=1)
    return out


def render(results: Path, wall: float | None, increment: bool = False) -> str:
    layout = Layout(str(results))
    per_replicate = read_table(layout.transfer_replicates())
    count = replicate_count(per_replicate)
    if count < 2:
        raise SystemExit(f"{results}: one replicate only; run a config with experts.replicates >= 2")
    summary = read_table(layout.table("summary"))
    meta_task = summary.meta_task.iloc[0]
    summary = summary[summary.meta_task == meta_task].set_index("method")
    comparisons = read_table(layout.table("comparisons"))
    comparisons = comparisons[comparisons.meta_task == meta_task]
    spread = replicate_spread(per_replicate)
    ceiling = summary.loc[NOISE_CEILING]
    n_cands = candidate_table(read_table(layout.transfer())).groupby("target").size()
    lines = [f"A run of `configs/world_replicates.yaml` ({count} replicates of each of the "
             f"{per_replicate[per_replicate.expert != GENERIC].expert.nunique()} experts, {len(n_cands)} targets, "
             f"meta-task `{meta_task}`)"
             + ((f", run as an increment of the run without replicates (only the new replicates trained and "
                 f"transferred, every other result reused): {wall / 60:.1f} min with `--cores 2`:" if increment else
                 f", {wall / 60:.1f} min with `--cores 2`:") if wall else ":"), ""]
    lines += [f"- A candidate's test error moves by a median standard deviation of {100 * spread['noise']:.1f} points "
              f"between replicates; the candidates of a target differ by a median {100 * spread['signal']:.1f} "
              f"points (standard deviation of their mean errors).",
              f"- Every replicate agrees on the best candidate on {spread['agree']} of {spread['targets']} targets; "
              f"the best expert of one replicate is the best of another on {100 * ceiling.top1_hit_rate:.0f} % of "
              f"(target, replicate pair)s [95% CI {100 * ceiling.top1_hit_rate_lo:.0f}, "
              f"{100 * ceiling.top1_hit_rate_hi:.0f}].",
              f"- **The noise ceiling**: choosing the best expert of one replicate costs "
              f"{pct(ceiling.mean_relative_increase)} % [{pct(ceiling.mean_relative_increase_lo)}, "
              f"{pct(ceiling.mean_relative_increase_hi)}] relative error on another (weighted tau between two "
              f"replicates' rankings: {ceiling.mean_weighted_tau:+.2f}). No selector scored on one replicate can be "
              "told from the oracle by less than that.", ""]
    single = scored_against(results, per_replicate, summary)
    lines += ["Every selector's mean relative error increase (%, lower is better) against the mean of the replicates "
              "(how the run scores it), the paired difference to the noise ceiling (points, with its 95 % interval "
              "and verdict, from comparisons.parquet), and against each single replicate as the ground truth (a run "
              "without replicates would score it against one such matrix) and the mean of those. The noise ceiling "
              "is itself measured against single replicates: the last column is the one to hold against it.", "",
              "| selector | kind | against the mean [95% CI] | minus the noise ceiling [95% CI] | verdict | "
              + " | ".join(f"against {name}" for name in single) + " |",
              "|---|---|---|---|---|" + "---|" * len(single)]
    for method, row in summary.iterrows():
        if method in ("oracle", NOISE_CEILING):
            continue
        c = comparisons[(comparisons.method_a == NOISE_CEILING) & (comparisons.method_b == method)]
        if len(c):
            c = c.iloc[0]
            diff = (f"{pct(-c.mean_difference)} [{pct(-c.difference_hi)}, {pct(-c.difference_lo)}]")
            verdict = c.verdict
        else:
            diff, verdict = "-", "-"
        cells = [pct(s.get(method, np.nan)) for s in single.values()]
        lines.append(f"| {method} | {row.kind} | {pct(row.mean_relative_increase)} "
                     f"[{pct(row.mean_relative_increase_lo)}, {pct(row.mean_relative_increase_hi)}] | {diff} "
                     f"| {verdict} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("results", type=Path, help="a finished run's results folder (experts.replicates >= 2)")
    parser.add_argument("--wall", type=float, help="the run's measured wall time in seconds, to state it")
    parser.add_argument("--increment", action="store_true",
                        help="--wall is the time of raising experts.replicates on a finished run, not of a cold run")
    parser.add_argument("--readme", type=Path, help="rewrite the generated block of this markdown page")
    parser.add_argument("--block", default="replicates")
    args = parser.parse_args()
    text = render(args.results, args.wall, args.increment)
    print(text)
    if args.readme:
        write_block(args.readme, args.block, text)


if __name__ == "__main__":
    main()
