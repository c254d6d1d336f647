"""The centre-tap path of 1 x 1 convolutions against nn.Conv2d's, side by side in one run, on the pinned kernels.

    python benchmarks/bench_center_tap.py [--repeats 9] [--steps 8]

A ResNet at 32 px reaches 1 x 1 in its last stage. There oneDNN's AVX2 kernels, which every job pins
(taskspace.numerics), compute the 3 x 3 convolutions' weight gradient with a generic GEMM over nine taps of which
eight see only padding. ``taskspace.models.CenterTapConv2d`` computes such a layer as the linear map of its centre
tap (the same function and gradients). For the demo's shapes (a ResNet-18 at 32 px: the experts' training steps,
batch 32 on one thread; the probe's, batch 64 on two; a forward and backward pass at the Fisher embeddings' batch
of 64 on one; and an inference pass of the transfer stage, batch 256 on one), each repeat times one median training step of each path in
alternating order; the table gives the medians over repeats and the ratio centre tap / convolution (below 1: the
centre tap is faster).
"""

from __future__ import annotations

import argparse
import statistics
import time

import taskspace  # noqa: F401  pins the kernels before torch loads
import torch
import torch.nn.functional as F
from torch import nn

from taskspace.models import CenterTapConv2d, Network

SHAPES = [  # (what, batch, threads, train)
    ("expert training step", 32, 1, True),
    ("probe training step", 64, 2, True),
    ("forward and backward pass (the Fisher embeddings' batch)", 64, 1, True),
    ("transfer inference pass", 256, 1, False),
]


def _network(center: bool) -> nn.Module:
    torch.manual_seed(0)
    net = Network("resnet18", 10)
    if not center:
        for m in net.modules():
            if type(m) is CenterTapConv2d:
                m.__class__ = nn.Conv2d
    return net


def _median_step(net: nn.Module, batch: int, train: bool, steps: int) -> float:
    x = torch.randn(batch, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    y = torch.arange(batch) % 10
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    net.train(train)
    times = []
    for _ in range(steps + 2):
        start = time.perf_counter()
        if train:
            opt.zero_grad()
            F.cross_entropy(net(x), y).backward()
            opt.step()
        else:
            with torch.no_grad():
                net(x)
        times.append(time.perf_counter() - start)
    return statistics.median(times[2:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--steps", type=int, default=8)
    args = parser.parse_args()
    print("| ResNet-18 at 32 px, pinned kernels | nn.Conv2d | centre tap | ratio |")
    print("|---|---|---|---|")
    for what, batch, threads, train in SHAPES:
        torch.set_num_threads(threads)
        conv, center = [], []
        for repeat in range(args.repeats):
            order = [(False, conv), (True, center)] if repeat % 2 == 0 else [(True, center), (False, conv)]
            for use_center, sink in order:
                sink.append(_median_step(_network(use_center), batch, train, args.steps))
        a, b = statistics.median(conv) * 1e3, statistics.median(center) * 1e3
        print(f"| {what} (batch {batch}, {threads} thread{'s' * (threads > 1)}) | {a:.0f} ms | {b:.0f} ms "
              f"| {b / a:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
