"""What one transfer pair costs on this machine, to size the transfer jobs' time limits at a study's scale.

A pair is the expert's forward pass over every image of the target (the batched job's own code path:
``taskspace.transfer.image_features``, uint8 images on the job's device, converted there per batch, under inference
mode) and the linear classifier fitted on the training features (``linear_probe_error``: L-BFGS on the CPU, whatever
the device). Both are measured here, on random weights and images of the given shape, medians of ``--repeats``.
The forward cost does not depend on the values; the fit's does, through its number of iterations (random labels on
random features; printed, with the cap ``--max-iter`` that bounds it on real data):

    python benchmarks/bench_pair_cost.py --arch resnet34 --resolution 224 --images 512 \\
        --fit-samples 4000 --classes 100 [--device cuda] [--threads 2]

Prints seconds per image of the forward pass, seconds of the fit, and the estimate for a pair of N images and for
a transfer job of E experts over targets totalling N images: E * (N * forward + fits).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from taskspace.device import configure_threads, select_device  # noqa: E402
from taskspace.models import Network  # noqa: E402
from taskspace.transfer import fit_logistic, image_features, standardize  # noqa: E402


def timed(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--arch", default="resnet34")
    ap.add_argument("--resolution", type=int, default=224)
    ap.add_argument("--images", type=int, default=256, help="images in the timed forward pass")
    ap.add_argument("--batch-size", type=int, default=64, help="transfer.batch_size")
    ap.add_argument("--fit-samples", type=int, default=2000, help="training samples of the timed fit")
    ap.add_argument("--classes", type=int, default=50)
    ap.add_argument("--max-iter", type=int, default=200, help="transfer.max_iter")
    ap.add_argument("--l2", type=float, default=0.001)
    ap.add_argument("--device", default=None, help="cpu, cuda, auto (default: $TASKSPACE_DEVICE or auto)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--estimate-images", type=int, default=10_000, help="a target's images, for the pair estimate")
    ap.add_argument("--estimate-experts", type=int, default=4, help="execution.experts_per_transfer_job")
    ap.add_argument("--estimate-targets", type=int, default=50, help="targets per expert column")
    args = ap.parse_args()

    configure_threads(args.threads)
    device = select_device(args.device)
    torch.manual_seed(0)
    net = Network(args.arch, 10).to(device).eval()
    images = torch.randint(0, 256, (args.images, args.resolution, args.resolution, 3), dtype=torch.uint8).to(device)
    normalization = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}

    def forward() -> None:
        image_features(net, images, normalization, args.batch_size, device)
        if device.type == "cuda":
            torch.cuda.synchronize()

    forward()  # warm-up (cuDNN autotuning, allocator)
    per_image = timed(forward, args.repeats) / args.images

    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.standard_normal((args.fit_samples, net.num_features)))
    y = torch.from_numpy(rng.integers(0, args.classes, args.fit_samples))
    (xs,) = standardize(x)
    iterations = []

    def fit() -> None:
        iterations.append(fit_logistic(xs, y, args.classes, args.l2, args.max_iter)[2])

    fit_s = timed(fit, args.repeats)
    fit_per_sample = fit_s / args.fit_samples

    print(f"device {device}, {args.threads} CPU thread(s), {args.arch} at {args.resolution} px, batch {args.batch_size}")
    print(f"forward: {per_image * 1e3:.2f} ms per image ({1 / per_image:.0f} images/s), median of {args.repeats}")
    print(f"fit: {fit_s:.2f} s for {args.fit_samples} samples x {net.num_features} features x {args.classes} "
          f"classes ({statistics.median(iterations):.0f} iterations, cap {args.max_iter}); "
          f"{fit_per_sample * 1e3:.2f} ms per training sample")
    n = args.estimate_images
    pair = n * per_image + n * fit_per_sample
    job = args.estimate_experts * args.estimate_targets * pair
    print(f"estimate, a pair of {n} images ({args.classes} classes, the fit scaled linearly in samples): "
          f"{pair / 60:.1f} min")
    print(f"estimate, a transfer job of {args.estimate_experts} experts x {args.estimate_targets} such targets: "
          f"{job / 3600:.1f} h")


if __name__ == "__main__":
    main()
