"""How long `taskspace recommend` takes for a new dataset of a few hundred images, per method (medians).

A new labelled dataset is made from the run's own data source: one of its synthetic tasks regenerated with
``--per-class`` training images per class and written as PNG files (one folder per class). Each method of the run
then ranks the experts for it ``--repeats`` times in a fresh process each (the command a user types, imports and
reading included); the table gives the median wall time.

    python benchmarks/bench_recommend.py --run /path/to/finished/run [--task organic-c1-o2] [--per-class 60]

``--example README.md docs/recommend.md`` writes instead the example of those pages, between their
``<!-- recommend-example:begin -->`` and ``<!-- recommend-example:end -->`` markers: the output of
``taskspace recommend path/to/my_dataset --run . --top 3`` run in the finished demo's working directory, for
``--task`` (default EXAMPLE_TASK) regenerated with ``--per-class`` images per class as ``path/to/my_dataset``.

``--at-scale N`` times instead the embedding step alone at the papers' scale, without a run: N random 224 x 224
images through a seeded ResNet-34 (the CUB+iNat probe) with each method's default config.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
from PIL import Image

from taskspace.data import build_task
from taskspace.results import read_task_attrs
from taskspace.recommend import results_folder, run_methods


EXAMPLE_TASK = "organic-c2-o1"  # the docs' example dataset: a task of the demo without an expert, regenerated
EXAMPLE_COMMAND = "taskspace recommend path/to/my_dataset --run . --top 3"


def write_example(run: Path, task: str, per_class: int, pages: list[Path]) -> str:
    """Run the docs' example command in the finished run ``run`` and write its output into ``pages``."""
    import os
    import re
    import shlex
    import shutil

    results = results_folder(run)
    folder = Path(run) / "path" / "to" / "my_dataset"
    shutil.rmtree(Path(run) / "path", ignore_errors=True)
    try:
        n = make_dataset(results, task, per_class, folder)
        out = subprocess.run([sys.executable, "-m", "taskspace", *shlex.split(EXAMPLE_COMMAND)[1:], "--quiet"], cwd=run,
                             check=True, capture_output=True, text=True, env=dict(os.environ)).stdout
    finally:
        shutil.rmtree(Path(run) / "path", ignore_errors=True)
    block = (f"<!-- recommend-example:begin -->\n```\n{EXAMPLE_COMMAND}\n```\n\n```\n{out.rstrip()}\n```\n\n"
             f"(the finished demo; `path/to/my_dataset` is its task {task} regenerated with {per_class} training "
             f"images per class, {n} images: `python benchmarks/bench_recommend.py --run . --example README.md "
             f"docs/recommend.md` writes this block)\n<!-- recommend-example:end -->")
    for page in pages:
        text = page.read_text()
        new, count = re.subn(r"<!-- recommend-example:begin -->.*?<!-- recommend-example:end -->", lambda m: block,
                             text, flags=re.S)
        if count != 1:
            raise SystemExit(f"{page}: no recommend-example markers")
        page.write_text(new)
    return block


def make_dataset(results: Path, task: str, per_class: int, folder: Path) -> int:
    """Regenerate ``task`` of the run's synthetic world with ``per_class`` training images per class, as PNG files."""
    provenance = read_task_attrs(results / "tasks" / f"{task}.h5")["provenance"]
    data_cfg = json.loads(provenance["data_config"])
    if data_cfg.get("source") != "synthetic":
        raise SystemExit(f"{results}: the run's data source is {data_cfg.get('source')!r}; this benchmark needs synthetic")
    data_cfg["synthetic"] = dict(data_cfg.get("synthetic", {}),
                                 overrides={task: {"train_per_class": per_class, "test_per_class": 1}})
    data = build_task(data_cfg, task)
    count = 0
    for i in np.flatnonzero(data.is_train):
        sub = folder / data.class_names[data.labels[i]]
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(data.images[i]).save(sub / f"{i:05d}.png")
        count += 1
    return count


def embed_at_scale(n: int, repeats: int, threads: int, arch: str = "resnet34", resolution: int = 224) -> None:
    """Median seconds of each method's ``embed`` on ``n`` random images at the papers' resolution and probe."""
    import yaml

    from taskspace.plan import method_configs, validate_config
    from taskspace.embeddings import get_method
    from taskspace.probes import IMAGENET_NORMALIZATION, seeded_network
    from taskspace.device import prepare_device

    device = prepare_device(threads)
    config = validate_config(yaml.safe_load((Path(__file__).resolve().parents[1] / "config.yaml").read_text()))
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(n, resolution, resolution, 3), dtype=np.uint8)
    labels = np.arange(n) % 5
    print(f"{n} images at {resolution}x{resolution}, {arch} probe, {threads} threads, default method configs")
    print(f"{'method':<20} {'median s':>9} {'min s':>7} {'max s':>7}")
    for name, (registered, cfg) in method_configs(config).items():
        m = get_method(registered, cfg)
        if m.derived:
            continue
        times = []
        for _ in range(repeats):
            net = seeded_network(arch, 1000, 0)
            start = time.perf_counter()
            m.embed(net, images, labels if m.uses_labels else None, IMAGENET_NORMALIZATION, device, 0)
            times.append(time.perf_counter() - start)
        print(f"{name:<20} {statistics.median(times):9.1f} {min(times):7.1f} {max(times):7.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", help="a finished run (working directory or results folder)")
    parser.add_argument("--at-scale", type=int, metavar="N", help="time the embedding of N 224x224 images instead")
    parser.add_argument("--task", help="the run's task to regenerate (default: its first task)")
    parser.add_argument("--per-class", type=int, default=60, help="training images per class of the new dataset")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--example", nargs="+", type=Path, metavar="PAGE",
                        help="write the docs' example output into these pages instead of timing")
    args = parser.parse_args()
    if args.example:
        if not args.run:
            parser.error("--example needs --run (the finished demo's working directory)")
        print(write_example(Path(args.run), args.task or EXAMPLE_TASK, args.per_class, args.example))
        return
    if args.at_scale:
        embed_at_scale(args.at_scale, args.repeats, args.threads)
        return
    if not args.run:
        parser.error("give --run (or --at-scale N)")
    results = results_folder(args.run)
    with h5py.File(results / "embeddings.h5") as f:
        task = args.task or sorted(next(iter(f.values())))[0]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "new_dataset"
        n = make_dataset(results, task, args.per_class, folder)
        print(f"new dataset: {n} images ({task} regenerated with {args.per_class} per class), run {results}")
        print(f"{'method':<20} {'median s':>9} {'min s':>7} {'max s':>7}")
        for method in run_methods(results):
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                subprocess.run([sys.executable, "-m", "taskspace", "recommend", str(folder), "--run", str(results),
                                "--method", method, "--quiet", "--json", "--threads", str(args.threads)],
                               check=True, capture_output=True)
                times.append(time.perf_counter() - start)
            print(f"{method:<20} {statistics.median(times):9.1f} {min(times):7.1f} {max(times):7.1f}")


if __name__ == "__main__":
    main()
