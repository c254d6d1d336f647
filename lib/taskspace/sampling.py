"""Class-balanced subsampling: which samples of a labelled task a method reads, so that no class dominates."""

from __future__ import annotations

import numpy as np

FILLS = ("even", "random")


def balanced_sample(labels: np.ndarray, size: int, rng: np.random.Generator, *, fill: str = "even") -> np.ndarray:
    """Sorted indices of ``size`` samples (every one when there are no more), as equally many per class as the
    class sizes allow, each class's drawn at random from ``rng``.

    ``fill`` places what an equal split leaves over: "even" shares it equally among the classes that have samples
    left, round after round, the last few one each to the first classes in class order (nothing left to chance);
    "random" gives one more to each of some random classes, and the places of classes that run short to random
    samples of the others.
    """
    if fill not in FILLS:
        raise ValueError(f"fill must be one of {FILLS}, got {fill!r}")
    classes = np.unique(labels)
    pools = [rng.permutation(np.flatnonzero(labels == c)) for c in classes]
    if size >= len(labels):
        return np.arange(len(labels))
    chosen = _fill_evenly(pools, size) if fill == "even" else _fill_randomly(pools, size, rng)
    return np.sort(chosen)


def _fill_evenly(pools: list[np.ndarray], size: int) -> np.ndarray:
    """Equal shares of what is left from the classes that have samples left, until ``size`` are taken."""
    chosen: list[np.ndarray] = []
    remaining, open_pools = size, [p for p in pools if len(p)]
    while remaining > 0 and open_pools:
        share = max(1, remaining // len(open_pools))
        nxt = []
        for pool in open_pools:
            take = pool[: min(share, remaining)]
            chosen.append(take)
            remaining -= len(take)
            if len(pool) > len(take):
                nxt.append(pool[len(take) :])
            if remaining == 0:
                break
        open_pools = nxt
    return np.concatenate(chosen)


def _fill_randomly(pools: list[np.ndarray], size: int, rng: np.random.Generator) -> np.ndarray:
    """A quota per class (the remainder to random classes), short classes' places topped up at random."""
    quota = np.full(len(pools), size // len(pools))
    quota[rng.choice(len(pools), size % len(pools), replace=False)] += 1
    chosen = np.concatenate([pool[:q] for pool, q in zip(pools, quota)])
    short = size - len(chosen)
    if short > 0:
        rest = np.concatenate([pool[q:] for pool, q in zip(pools, quota)])
        chosen = np.concatenate([chosen, rng.choice(rest, short, replace=False)])
    return chosen
