"""An ordered process-pool map with a bounded window, for dataset building.

Results come back in input order whatever the number of workers, so a dataset built with
``jobs=2`` is byte-identical to one built with ``jobs=1``; at most ``2 * jobs`` results
wait in memory at once.  Workers are started with ``spawn`` (no forked copy of a parent
that may hold threads or a torch runtime).
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import TypeVar

from pianossm.errors import PianoSSMError

__all__ = ["default_jobs", "ordered_map"]

T = TypeVar("T")
R = TypeVar("R")


def default_jobs() -> int:
    """Worker processes by default: the CPUs this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def ordered_map(fn: Callable[[T], R], args: Iterable[T], jobs: int = 1) -> Iterator[R]:
    """``fn(a)`` for each ``a`` of ``args``, in order, on ``jobs`` worker processes.

    Parameters
    ----------
    fn : callable
        A module-level (picklable) function.
    args : iterable
        Its arguments, one call each.
    jobs : int
        Worker processes; 1 runs everything in this process.

    Yields
    ------
    object
        ``fn(a)``, in the order of ``args``.
    """
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise PianoSSMError(f"jobs must be a whole number >= 1, got {jobs!r}")
    if jobs == 1:
        for a in args:
            yield fn(a)
        return
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(jobs, mp_context=ctx) as pool:
        window: deque[Future] = deque()
        try:
            for a in args:
                window.append(pool.submit(fn, a))
                if len(window) >= 2 * jobs:
                    yield window.popleft().result()
            while window:
                yield window.popleft().result()
        finally:
            for f in window:
                f.cancel()
