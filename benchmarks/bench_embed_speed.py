"""Speed of the Fisher estimators against one plain forward+backward pass, measured side by side in one run.

    python benchmarks/bench_embed_speed.py [--size 32] [--samples 256] [--batch 32] [--rounds 5]

Prints medians over interleaved rounds and the ratios the targets are stated in:
  - Monte-Carlo Fisher with per-sample gradients / one plain epoch (forward + backward with weight gradients)
    over the same samples at the same batch size (target <= 1.5);
  - the variational estimator, 2 epochs / that epoch (target <= 2.5), and the same after the Monte-Carlo pass that
    starts it by default (``init: monte_carlo``);
  - the Monte-Carlo Fisher with the first k feature units skipped (inputs cached once) / without skipping, next
    to the share of conv multiply-adds those layers still cover (what "proportionally cheaper" means).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lib"))

from taskspace.device import configure_threads, select_device  # noqa: E402
from taskspace.embeddings.fisher import covered_layers, monte_carlo_fisher  # noqa: E402
from taskspace.embeddings.variational import variational_fisher  # noqa: E402
from taskspace.models import Network, split_features  # noqa: E402


def conv_macs(body: nn.Module, x: torch.Tensor) -> int:
    """Multiply-adds of every conv layer in ``body`` for one forward pass of ``x``."""
    total = 0

    def hook(module, inputs, output):
        nonlocal total
        total += output.numel() * module.weight[0].numel()

    handles = [m.register_forward_hook(hook) for _, m in covered_layers(body) if isinstance(m, nn.Conv2d)]
    with torch.no_grad():
        body(x)
    for h in handles:
        h.remove()
    return total


def timed(fn) -> float:
    t = time.perf_counter()
    fn()
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--skip", type=int, nargs="*", default=[1, 3, 5, 7])
    args = parser.parse_args()

    configure_threads(args.threads)
    device = select_device()
    torch.manual_seed(0)
    net = Network("resnet18", 10).to(device).eval()
    x = torch.randn(args.samples, 3, args.size, args.size)
    y = torch.randint(0, 10, (args.samples,))
    bs = args.batch
    generator = torch.Generator().manual_seed(0)

    def plain_epoch() -> None:
        for i in range(0, len(x), bs):
            net.zero_grad(set_to_none=True)
            F.cross_entropy(net(x[i : i + bs].to(device)), y[i : i + bs].to(device), reduction="sum").backward()
        net.zero_grad(set_to_none=True)

    splits = {k: split_features(net, k) for k in [0, *args.skip]}
    cached = {k: torch.cat([prefix(x[i : i + bs].to(device)).detach() for i in range(0, len(x), bs)])
              for k, (prefix, _, _) in splits.items()}

    def mc(k: int):
        _, body, _ = splits[k]
        layers = [(n, m) for n, m in covered_layers(body) if isinstance(m, nn.Conv2d)]
        return lambda: monte_carlo_fisher(body, net.head, cached[k], layers=layers, batch_size=bs,
                                          generator=generator, device=device)

    def variational() -> None:
        _, body, _ = splits[0]

        def batches(epoch: int):
            for i in range(0, len(x), bs):
                yield x[i : i + bs], y[i : i + bs]

        variational_fisher(body, net.head, batches, len(x), epochs=2, generator=generator, device=device)

    def variational_mc_start() -> None:
        """The configured Task2Vec default (init: monte_carlo): one Monte-Carlo pass, then 2 epochs."""
        mc(0)()
        variational()

    cases = {"plain epoch (fwd+bwd)": plain_epoch, "monte-carlo fisher": mc(0), "variational, 2 epochs": variational,
             "variational, monte-carlo start": variational_mc_start}
    cases.update({f"monte-carlo fisher, skip {k}": mc(k) for k in args.skip})
    times: dict[str, list[float]] = {name: [] for name in cases}
    for fn in cases.values():
        fn()  # warm-up
    for _ in range(args.rounds):
        for name, fn in cases.items():
            times[name].append(timed(fn))
    med = {name: statistics.median(v) for name, v in times.items()}

    macs0 = conv_macs(splits[0][1], x[:1].to(device))
    print(f"device {device}, resnet18, {args.samples} samples at {args.size}x{args.size}, batch {bs}, "
          f"{args.threads} threads, medians of {args.rounds}")
    for name, t in med.items():
        print(f"  {name:34s} {t:8.3f} s")
    base = med["plain epoch (fwd+bwd)"]
    print(f"monte-carlo fisher / plain epoch:      {med['monte-carlo fisher'] / base:5.2f}x  (target <= 1.5)")
    print(f"variational (2 epochs) / plain epoch:  {med['variational, 2 epochs'] / base:5.2f}x  (target <= 2.5)")
    print(f"... with its monte-carlo start (the configured default) / plain epoch: "
          f"{med['variational, monte-carlo start'] / base:5.2f}x")
    for k in args.skip:
        share = conv_macs(splits[k][1], cached[k][:1]) / macs0
        ratio = med[f"monte-carlo fisher, skip {k}"] / med["monte-carlo fisher"]
        print(f"skip {k} units ({', '.join(splits[k][2])}): fisher time {ratio:4.2f}x of no skip; "
              f"conv multiply-adds still covered {share:4.2f}x")


if __name__ == "__main__":
    main()
