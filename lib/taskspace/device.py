"""Where tensors go: CUDA when the job really has a GPU, otherwise the CPU."""

from __future__ import annotations

import os

import torch


def select_device(preference: str | None = None) -> torch.device:
    """Pick the device: ``preference`` or $TASKSPACE_DEVICE ("auto", "cpu", "cuda", "cuda:1"), auto = CUDA if usable.

    A job that was handed a GPU by the scheduler (CUDA_VISIBLE_DEVICES set) on a machine where CUDA cannot
    initialise falls back to the CPU instead of failing.
    """
    choice = (preference or os.environ.get("TASKSPACE_DEVICE") or "auto").lower()
    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    if choice.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {choice!r} was requested (TASKSPACE_DEVICE) but CUDA is not available here")
    device = torch.device(choice)
    if device.type == "cuda":
        configure_cuda()
    return device


def configure_cuda() -> None:
    """On a GPU, when kernels are pinned (:mod:`taskspace.numerics`): cuDNN's deterministic algorithms chosen without
    benchmarking, and full float32 (no TF32) in convolutions and matrix products, so that a run repeats bit for bit
    on the same card and software. Other cards or library versions may still choose other kernels."""
    from .numerics import reproducible

    if reproducible():
        torch.backends.cudnn.benchmark = False
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False


def configure_threads(threads: int) -> None:
    """Use ``threads`` CPU threads for torch ops and for numpy's BLAS: the cores the job was given.

    numpy's BLAS pool is by default as large as the machine: two jobs side by side would each ask for every core,
    and the oversubscribed pools run small matrix products several times slower.
    """
    threads = max(1, int(threads))
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads, user_api="blas")


def prepare_device(threads: int) -> torch.device:
    """A job's set-up: ``threads`` CPU threads (:func:`configure_threads`), then its device (:func:`select_device`);
    a warning if this process computes with kernels that are not pinned (:mod:`taskspace.numerics`)."""
    from .numerics import warn_if_unpinned

    configure_threads(threads)
    warn_if_unpinned("this job")
    return select_device()
