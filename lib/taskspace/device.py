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
        return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    if choice.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {choice!r} was requested (TASKSPACE_DEVICE) but CUDA is not available here")
    return torch.device(choice)


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
    """A job's set-up: ``threads`` CPU threads (:func:`configure_threads`), then its device (:func:`select_device`)."""
    configure_threads(threads)
    return select_device()
