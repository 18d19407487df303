"""Batch rendering: many MIDI files into one folder with worker processes.

Each worker loads the model once and renders one file at a time with
:func:`pianossm.api.render` (streaming, so memory per worker does not grow with the file,
and each output is written atomically).  A bad file is reported and skipped while the rest
go on; ``skip_existing`` resumes an interrupted batch.
"""

from __future__ import annotations

import glob
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pianossm.errors import PianoSSMError, check_interrupted

__all__ = ["MIDI_SUFFIXES", "BatchResult", "FileResult", "collect_midi", "default_jobs",
           "output_paths", "render_batch"]

#: File name endings taken from a folder.
MIDI_SUFFIXES = (".mid", ".midi")


@dataclass(frozen=True)
class FileResult:
    """One input: its ``midi`` and ``output`` paths, ``seconds`` of audio rendered
    (0 when skipped or failed), ``skipped``, and ``error`` (one line, or ``None``)."""

    midi: str
    output: str
    seconds: float = 0.0
    skipped: bool = False
    error: str | None = None


@dataclass
class BatchResult:
    """All files of a batch, the wall time in seconds and the number of jobs."""

    files: list[FileResult] = field(default_factory=list)
    wall: float = 0.0
    jobs: int = 1

    @property
    def failed(self) -> list[FileResult]:
        """The files that failed."""
        return [f for f in self.files if f.error is not None]

    @property
    def rendered(self) -> list[FileResult]:
        """The files written by this batch."""
        return [f for f in self.files if f.error is None and not f.skipped]

    def summary(self) -> str:
        """One line: counts, audio hours, wall time, throughput and failures."""
        done = self.rendered
        hours = sum(f.seconds for f in done) / 3600
        skipped = len(self.files) - len(done) - len(self.failed)
        rate = (f" ({60 * len(done) / self.wall:.1f} files/min, "
                f"{hours * 3600 / self.wall:.1f} audio-hours/hour)" if self.wall > 0 and done
                else "")
        return (f"rendered {len(done)} of {len(self.files)} files ({len(self.failed)} failed, "
                f"{skipped} skipped): {hours:.3f} audio hours in {self.wall:.1f} s{rate}, "
                f"{self.jobs} job(s)")


def default_jobs() -> int:
    """Worker processes by default: the cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


def collect_midi(specs: list[str]) -> list[str]:
    """MIDI files named by paths, folders (their ``*.mid``/``*.midi``) and glob patterns.

    Parameters
    ----------
    specs : list of str
        ``(N,)`` file paths, folder paths or patterns (``corpus/**/*.mid``).

    Returns
    -------
    list of str
        The files in the order given (each folder's and pattern's sorted), each once.
    """
    found: list[str] = []
    for spec in specs:
        if os.path.isdir(spec):
            names = sorted(n for n in os.listdir(spec) if n.lower().endswith(MIDI_SUFFIXES))
            if not names:
                raise PianoSSMError(f"folder holds no .mid/.midi files: {spec!r}")
            found += [os.path.join(spec, n) for n in names]
        elif os.path.exists(spec) or not glob.has_magic(spec):
            found.append(spec)  # a missing file is reported in its own line later
        else:
            matches = sorted(p for p in glob.glob(spec, recursive=True) if os.path.isfile(p))
            if not matches:
                raise PianoSSMError(f"no files match {spec!r}")
            found += matches
    seen: set[str] = set()
    return [p for p in found if not (os.path.abspath(p) in seen or seen.add(os.path.abspath(p)))]


def output_paths(midis: list[str], outdir: str, ext: str = ".wav") -> list[str]:
    """``OUTDIR/STEM.wav`` for each input, refusing two inputs with the same stem."""
    outs = [os.path.join(outdir, os.path.splitext(os.path.basename(m))[0] + ext) for m in midis]
    first: dict[str, str] = {}
    for m, o in zip(midis, outs):
        if o in first:
            raise PianoSSMError(f"{first[o]!r} and {m!r} would both be written to {o!r}; "
                                f"rename one or render them into different folders")
        first[o] = m
    return outs


_worker: dict[str, Any] = {}
#: Options of :func:`pianossm.api.prepare` among the render options.
_PREPARE = ("sample_rate", "head", "alias_mode", "numerics", "float64")


def _init_worker(model: Any, options: dict[str, Any]) -> None:
    """Open the model once per worker process (a packed one arrives packed: no torch)."""
    from pianossm.api import open_model
    from pianossm.packed import PackedModel

    if not isinstance(model, PackedModel) or options.get("numerics") == "reference":
        import torch

        torch.set_num_threads(1)
    _worker.update(model=open_model(model), options=options)


def _render_one(midi: str, output: str) -> FileResult:
    """Render one file in a worker; any failure becomes the result's one-line error."""
    from pianossm.api import render

    try:
        res = render(midi, output, _worker["model"], **_worker["options"])
    except PianoSSMError as exc:
        return FileResult(midi, output, error=str(exc))
    except Exception as exc:  # noqa: BLE001  (one bad file must not stop the batch)
        first = (str(exc).strip().splitlines() or [""])[0][:200]
        return FileResult(midi, output, error=f"{type(exc).__name__}: {first}")
    return FileResult(midi, output, res.seconds)


def render_batch(midis: list[str], outdir: str, model: str = "default", jobs: int | None = None,
                 skip_existing: bool = False, force: bool = False,
                 on_result: Callable[[FileResult], None] | None = None,
                 **options: Any) -> BatchResult:
    """Render MIDI files into ``outdir`` with ``jobs`` worker processes.

    Parameters
    ----------
    midis : list of str
        ``(N,)`` MIDI files (see :func:`collect_midi`).
    outdir : str
        Output folder (created); file ``i`` goes to :func:`output_paths` ``[i]``.
    model : str
        A :func:`pianossm.load_model` source.
    jobs : int, optional
        Worker processes (default :func:`default_jobs`, at most ``N``); 1 renders here.
    skip_existing : bool
        Leave inputs whose output exists alone (resuming a batch).
    force : bool
        Overwrite existing outputs.
    on_result : callable, optional
        Called with each :class:`FileResult` as it completes.
    **options
        Keyword options of :func:`pianossm.render` (``sample_rate``, ``head``, ``bits``...).

    Returns
    -------
    BatchResult
    """
    start = time.perf_counter()
    outs = output_paths(midis, outdir)
    exist = [o for o in outs if os.path.exists(o)]
    if exist and not (skip_existing or force):
        raise PianoSSMError(f"{len(exist)} output(s) exist in {outdir!r}, e.g. {exist[0]!r} "
                            f"(use --skip-existing to resume or --force to overwrite)")
    os.makedirs(outdir, exist_ok=True)
    results: list[FileResult] = []

    def done(res: FileResult) -> None:
        results.append(res)
        if on_result is not None:
            on_result(res)

    todo = []
    for m, o in zip(midis, outs):
        if skip_existing and os.path.exists(o):
            done(FileResult(m, o, skipped=True))
        else:
            todo.append((m, o))
    options = options | {"force": force}
    jobs = max(1, min(jobs or default_jobs(), len(todo) or 1))
    if todo:
        from pianossm.api import open_model, prepare

        loaded = open_model(model)  # a bad model is one error here, before any work
        prepare(loaded, **{k: v for k, v in options.items() if k in _PREPARE})
        if jobs == 1:
            _worker.update(model=loaded, options=options)
            for m, o in todo:
                check_interrupted()  # a signal whose exception a finaliser swallowed
                done(_render_one(m, o))
        else:  # a packed model travels with its weights; a torch one is loaded per worker
            from pianossm.packed import PackedModel

            share = loaded if isinstance(loaded, PackedModel) else model
            _pool_render(todo, share, options, jobs, done)
    order = {m: i for i, m in enumerate(midis)}
    results.sort(key=lambda r: order[r.midi])
    return BatchResult(results, time.perf_counter() - start, jobs)


def _pool_render(todo: list[tuple[str, str]], model: Any, options: dict[str, Any], jobs: int,
                 done: Callable[[FileResult], None]) -> None:
    """Render ``todo`` on a pool of ``jobs`` spawned processes, reporting as they finish."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor, as_completed
    from concurrent.futures.process import BrokenProcessPool

    ctx = multiprocessing.get_context("spawn")  # no fork of a process holding torch threads
    with ProcessPoolExecutor(jobs, ctx, initializer=_init_worker,
                             initargs=(model, options)) as pool:
        futures = {pool.submit(_render_one, m, o): (m, o) for m, o in todo}
        try:
            for fut in as_completed(futures):
                m, o = futures[fut]
                try:
                    done(fut.result())
                except BrokenProcessPool:
                    done(FileResult(m, o, error="worker process died (out of memory?)"))
        except KeyboardInterrupt:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
