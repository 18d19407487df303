"""Data parallelism over threads inside one process: each thread trains a slice of the batch.

On a CPU with the compiled scan, one training step with ``torch.set_num_threads(2)`` ran
little faster than with one thread (S at 16 kHz: 7.1 -> 8.3-9.3 audio-s/s), because its
thin matrix products, element-wise work and numba kernels hand over between thread pools
thousands of times a step, while two single-threaded steps side by side (two processes)
ran at 7.2 audio-s/s each (all measured in one session on the 2-core machine).  So with
``--threads N`` the trainer splits the batch into ``N`` slices and runs each slice's
forward, loss and backward on its own thread with single-threaded kernels (PyTorch,
numpy's BLAS and numba all release the GIL inside their work); the slices' gradients are
then added in slice order, so the result does not depend on which thread finished first.

The loss of a slice is weighted by its share of the batch, so for losses that are means
over the batch (MSSL, the envelope term) the summed gradient equals the whole batch's, up
to rounding.  SMML's spectral convergence is a ratio over its batch, so there it is close,
not equal (as with DistributedDataParallel).
"""

from __future__ import annotations

import ctypes
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import torch

__all__ = ["batch_slices", "keep_freed_memory", "sharded_backward"]

#: One slice's work: ``slice -> (objective, parts)``, both computed on that slice only.
SliceStep = Callable[[slice], tuple[torch.Tensor, dict[str, torch.Tensor]]]


_POOLS: dict[int, ThreadPoolExecutor] = {}  # kept: a thread's malloc arena stays warm


def keep_freed_memory() -> bool:
    """Make glibc's ``malloc`` keep freed memory for reuse instead of unmapping it.

    A training step allocates and frees arrays of 5-65 MB hundreds of times; glibc hands
    blocks over 32 MB (and, dynamically, smaller ones) to ``mmap`` and returns them on
    ``free``, so each new array page-faults its memory in again, and with several
    threads every unmap also interrupts the other cores (S at 16 kHz, one thread: 7.1 ->
    7.9 audio-s/s; two slices on threads 8.7 -> 9.6; one session).  Sets ``M_MMAP_MAX``
    to 0 and a 2 GiB ``M_TRIM_THRESHOLD`` for this process (the freed memory stays
    mapped: the process keeps its peak size), and ``M_ARENA_MAX`` to 1: a thread other than
    the main one allocates from an arena of its own made of 64 MB heaps, which glibc
    unmaps as soon as one falls empty whatever the trim threshold, so the slices' threads
    (``--threads 2``) re-faulted their arrays every step; with one arena they share the
    main one (its lock is taken a few hundred times a step).  S at 16 kHz with two slices
    on two threads: 7.0-10.3 -> 12.7-13.9 audio-s/s (three runs each, alternated, one
    session).  Call it before other threads allocate: glibc fixes the arena limit the
    first time a second thread needs an arena.  A no-op where libc is not glibc.

    Returns
    -------
    bool
        Whether the settings were applied.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    m_trim_threshold, m_mmap_max, m_arena_max = -1, -4, -8  # glibc's malloc.h
    return (bool(mallopt(m_mmap_max, 0)) and bool(mallopt(m_trim_threshold, (1 << 31) - 1))
            and bool(mallopt(m_arena_max, 1)))


def batch_slices(batch: int, parts: int) -> list[slice]:
    """``parts`` contiguous, near-equal slices of ``range(batch)`` (fewer if ``batch`` is).

    Parameters
    ----------
    batch : int
        Batch size.
    parts : int
        Wanted number of slices.

    Returns
    -------
    list of slice
        Non-empty slices covering ``0 .. batch``, in order.
    """
    parts = max(1, min(parts, batch))
    edges = [round(i * batch / parts) for i in range(parts + 1)]
    return [slice(a, b) for a, b in zip(edges[:-1], edges[1:])]


def sharded_backward(step: SliceStep, slices: list[slice], batch: int,
                     params: list[torch.nn.Parameter]) -> dict[str, torch.Tensor]:
    """Run ``step`` on every slice on its own thread and set ``p.grad`` to the weighted sum.

    Parameters
    ----------
    step : callable
        ``slice -> (objective, parts)`` for that slice of the batch (scalar tensors).
    slices : list of slice
        The batch's slices (:func:`batch_slices`).
    batch : int
        The whole batch's size (a slice's weight is its length over this).
    params : list of torch.nn.Parameter
        Parameters that receive gradients; ``p.grad`` is replaced (``None`` where no
        slice reached ``p``).

    Returns
    -------
    dict
        ``parts`` averaged over the batch (weighted by slice length), detached.
    """
    threads = torch.get_num_threads()

    def work(part: slice) -> tuple[dict[str, torch.Tensor], tuple[torch.Tensor | None, ...]]:
        weight = (part.stop - part.start) / batch
        # OpenMP's thread count is per thread: a new thread would otherwise start a team
        # of every core for each element-wise op (a torch multiply ran 50x slower, measured)
        torch.set_num_threads(1)
        objective, parts = step(part)
        grads = torch.autograd.grad(objective * weight, params, allow_unused=True)
        return {k: v.detach() * weight for k, v in parts.items()}, grads

    torch.set_num_threads(1)  # every slice single-threaded: the threads are the slices
    try:
        pool = _POOLS.get(len(slices))
        if pool is None:
            pool = _POOLS[len(slices)] = ThreadPoolExecutor(
                len(slices), thread_name_prefix="pianossm-slice")
        results = list(pool.map(work, slices))
    finally:
        torch.set_num_threads(threads)
    for i, p in enumerate(params):
        total = None
        for _, grads in results:  # slice order: deterministic sums
            g = grads[i]
            if g is not None:
                total = g.clone() if total is None else total + g
        p.grad = total
    parts0 = results[0][0]
    return {k: sum((r[0][k] for r in results[1:]), parts0[k]) for k in parts0}
