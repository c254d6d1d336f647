"""What the working resolution costs and buys: the generic probe's transfer error and forward speed per image side.

For each task of a study config (all by default, or ``--tasks``), built at each ``--sizes`` side from its image
files, the probe's penultimate features of every image feed the transfer stage's linear classifier (the same
L-BFGS logistic regression, fitted on the training split, scored on the test split). Printed per side: the mean
test error over tasks with its 95% bootstrap interval over tasks, the mean paired difference to ``--reference``
with its interval, and the forward throughput relative to the reference side, measured side by side in this run
(medians of ``--repeats`` passes over the same images).

    python benchmarks/bench_resolution.py configs/packaged.yaml [--sizes 32 64 96 128] [--threads 2]

Run it from the study's working directory (the config's data paths are relative to it) with TORCH_HOME holding the
probe's ImageNet weights.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from taskspace.plan import validate_config  # noqa: E402
from taskspace.data import build_task, plan_tasks  # noqa: E402
from taskspace.models import Network  # noqa: E402
from taskspace.probes import load_probe_weights  # noqa: E402
from taskspace.training import to_tensor  # noqa: E402
from taskspace.transfer import extract_features, linear_probe_error  # noqa: E402


def probe_network(config: dict) -> tuple[Network, dict]:
    weights = load_probe_weights(config["probe"], int(config["seed"]))
    with torch.device("meta"):
        net = Network(config["probe"]["arch"], len(weights.classes))
    net.load_state_dict(weights.state_dict, assign=True)
    return net.eval(), weights.normalization


def bootstrap(values: np.ndarray, resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, len(values), size=(resamples, len(values)))].mean(1)
    lo, hi = np.quantile(means, [0.025, 0.975])
    return float(lo), float(hi)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 96, 128])
    parser.add_argument("--reference", type=int, default=64)
    parser.add_argument("--tasks", nargs="*", help="task names (default: every task of the config)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    raw = yaml.safe_load(args.config.read_text())
    config = validate_config(raw)
    transfer = config["transfer"]
    net, normalization = probe_network(config)
    tasks = args.tasks or [s.name for s in plan_tasks(config["data"]) if s.role == "task"]
    errors = {size: [] for size in args.sizes}
    speed = {size: [] for size in args.sizes}
    for task in tasks:
        for size in args.sizes:
            data_cfg = validate_config({**raw, "data": {**raw["data"], "resolution": size}})["data"]
            data = build_task(data_cfg, task)
            x = to_tensor(data.images, normalization)
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                feats = extract_features(net, x, int(transfer["batch_size"]), "cpu")
                times.append(time.perf_counter() - start)
            speed[size].append(len(x) / statistics.median(times))
            tr, y = torch.from_numpy(data.is_train), torch.from_numpy(data.labels)
            result = linear_probe_error(feats[tr], y[tr], feats[~tr], y[~tr], len(data.class_names),
                                        float(transfer["l2"]), int(transfer["max_iter"]))
            errors[size].append(result["test_error"])
        print(f"{task}: " + ", ".join(f"{s} px {100 * errors[s][-1]:.1f}%" for s in args.sizes), flush=True)
    ref = np.array(errors[args.reference])
    print(f"\n{len(tasks)} tasks; generic probe ({config['probe']['arch']}, {config['probe']['weights']}) transfer "
          f"error by image side, 95% bootstrap intervals over tasks:\n")
    print(f"| side | mean test error % | difference to {args.reference} px (points) | images/s "
          f"| throughput / {args.reference} px |")
    print("|---|---|---|---|---|")
    ref_speed = statistics.median(speed[args.reference])
    for size in args.sizes:
        e = np.array(errors[size])
        lo, hi = bootstrap(100 * e)
        dlo, dhi = bootstrap(100 * (e - ref))
        s = statistics.median(speed[size])
        print(f"| {size} | {100 * e.mean():.1f} [{lo:.1f}, {hi:.1f}] | {100 * (e - ref).mean():+.1f} "
              f"[{dlo:+.1f}, {dhi:+.1f}] | {s:.0f} | {s / ref_speed:.2f}x |")


if __name__ == "__main__":
    main()
