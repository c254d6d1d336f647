"""Pinned numeric kernels: the same config and seed give bit-identical tables on any x86-64 CPU with AVX2.

torch, MKL, oneDNN and numpy each pick their CPU kernels by the vector units of the machine (AVX2, AVX-512, AMX),
and each kernel rounds differently; a reduction split over threads rounds by its thread count. One changed last
bit in a training step changes every number downstream. So, unless ``TASKSPACE_REPRODUCIBLE=0``:

- every process that imports taskspace sets, for itself and the jobs it starts, the environment variables of
  :data:`PINNED`, which hold each library to one code path: the AVX2 kernels of ATen, oneDNN and
  numpy, MKL's compatible branch (read by the libraries when they load, so they must be
  set before torch and numpy are imported: the workflow sets them in the Snakemake process, whose jobs inherit
  them, and ``taskspace/__init__`` sets them on import);
- every job computes on the thread count of its rule in :data:`THREADS`, whatever cores Snakemake grants it.

What stays machine-dependent: GPU runs (on a GPU, :func:`taskspace.device.configure_cuda` makes cuDNN deterministic
and turns TF32 off, so a run repeats on the same card and software; other cards or CUDA/cuDNN versions may choose
other kernels), CPUs without AVX2, and oneDNN's blocking, which may follow the CPU's cache sizes (the tests emulate
other vector units and core counts, not other caches). ``TASKSPACE_REPRODUCIBLE=0`` lets each library use the machine's fastest kernels and each
job the threads Snakemake grants (numbers then differ from the published ones in their last bits, and onwards).
This module imports neither torch nor numpy.
"""

from __future__ import annotations

import os
import warnings

SWITCH = "TASKSPACE_REPRODUCIBLE"

PINNED = {
    # ATen's vectorised kernels (elementwise maths through Sleef, reductions, softmax): the AVX2 build
    "ATEN_CPU_CAPABILITY": "avx2",
    # oneDNN's JIT kernels (convolutions, batch norm, pooling in training and inference): at most AVX2
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    # MKL's conditional numerical reproducibility (GEMM, LAPACK: linear layers, the transfer fits, taskspace.linalg):
    # its one code path that gives the same results on Intel and AMD CPUs (MKL runs its AVX2 branch, MKL_CBWR=AVX2,
    # on Intel CPUs only and silently falls back to the CPU's own elsewhere)
    "MKL_CBWR": "COMPATIBLE",
    # the thread count of every library's pool until a job sets its own (THREADS): not the machine's core count
    "OMP_NUM_THREADS": "1",
    # cuBLAS's deterministic reductions on a GPU (a fixed workspace; see torch.use_deterministic_algorithms)
    "CUBLAS_WORKSPACE_CONFIG": ":4096:8",
    # numpy's AVX-512 loops (exp, log, ...): the names of numpy 2.0-2.3 and of numpy >= 2.4; unknown ones are ignored
    "NPY_DISABLE_CPU_FEATURES": "AVX512F AVX512_SKX AVX512_CLX AVX512_CNL AVX512_ICL AVX512_SPR X86_V4",
}

# The CPU threads each rule computes on when pinned (a reduction split over threads rounds by their number), and
# reserves from the scheduler. Rules not listed compute on one thread.
THREADS = {
    "train_probe": 2,
    "train_expert": 1,
    "transfer_batch": 1,
    "embed_batch": 1,
    "learn_model2vec": 2,
}


def reproducible(environ: os._Environ | dict | None = None) -> bool:
    """Whether kernels and threads are pinned: yes unless ``TASKSPACE_REPRODUCIBLE`` is ``0``/``false``/``no``/``off``."""
    value = (environ if environ is not None else os.environ).get(SWITCH, "1").strip().lower()
    return value not in {"0", "false", "no", "off"}


def pin_environment(environ: os._Environ | dict | None = None) -> dict[str, str]:
    """Set :data:`PINNED` in ``environ`` (default: this process's, which the processes it starts inherit) when
    :func:`reproducible`; return what was set. A value already there is replaced: a cap set for another purpose
    would change the numbers."""
    environ = os.environ if environ is None else environ
    if not reproducible(environ):
        return {}
    environ.update(PINNED)
    return dict(PINNED)


def job_threads(rule: str, granted: int) -> int:
    """The CPU threads a job of ``rule`` computes on: its :data:`THREADS` entry when pinned (whatever the machine
    and ``--cores``), else the ``granted`` cores."""
    if reproducible():
        return THREADS.get(rule, 1)
    return max(1, int(granted))


def unpinned() -> list[str]:
    """What of this process's loaded kernels is not pinned (empty when all is, or when pinning is off).

    torch and numpy read their caps when they load: a process that imported them before taskspace computes with
    the machine's own kernels. Libraries not yet loaded are not checked.
    """
    import sys

    if not reproducible():
        return []
    problems = [f"${name} is {os.environ.get(name)!r}, not {value!r}" for name, value in PINNED.items()
                if os.environ.get(name) != value]
    if "torch" in sys.modules:
        import torch

        capability = torch.backends.cpu.get_cpu_capability()
        if capability not in {"AVX2", "DEFAULT"}:
            problems.append(f"torch uses its {capability} kernels (it was imported before taskspace)")
    if "numpy" in sys.modules:
        try:
            from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__
        except ImportError:  # numpy's private module moved: nothing to read
            __cpu_dispatch__, __cpu_features__ = [], {}
        capped = set(PINNED["NPY_DISABLE_CPU_FEATURES"].split())
        wide = [f for f in __cpu_dispatch__ if f in capped and __cpu_features__.get(f)]
        if wide:
            problems.append(f"numpy uses its {', '.join(wide)} loops (it was imported before taskspace)")
    return problems


def warn_if_unpinned(what: str) -> None:
    """Warn, naming ``what`` (a job, a command), when :func:`unpinned` finds anything."""
    problems = unpinned()
    if problems:
        warnings.warn(f"{what}: numbers are not reproducible across CPUs: " + "; ".join(problems)
                      + f" (set ${SWITCH}=0 to silence this by choosing speed)", stacklevel=2)
