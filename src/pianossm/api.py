"""The Python API: load a model, synthesise MIDI to samples, render MIDI to a file.

``pianossm render`` is a thin layer over :func:`render`, and :func:`synthesize` returns the
very samples that command writes (both go through :func:`pianossm.pipeline.synthesis_stream`).
"""

from __future__ import annotations

import io
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any

import numpy as np

from pianossm.errors import PianoSSMError
from pianossm.inputs import read_midi

__all__ = ["DEMO_MIDI", "LICENCE_NOTE", "RenderResult", "load_model", "open_model", "prepare",
           "read_midi", "render", "synthesize"]

#: Printed (once per process) when a published ``.pth`` is imported on the fly.
LICENCE_NOTE = ("note: the published Piano-SSM weights are licensed CC BY-NC-SA 4.0 "
                "(non-commercial, share-alike); they are not part of pianossm")
#: ``progress(done_seconds, total_seconds)`` after each rendered block.
Progress = Callable[[float, float], None]

#: Path of the built-in demo phrase (what ``pianossm render`` plays without an input).
DEMO_MIDI = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets", "demo.mid")

_licence_shown = False
_default_model: Any = None


def load_model(source: str | os.PathLike[str] = "default", device: str = "cpu") -> Any:
    """A Piano-SSM model in eval mode.

    Parameters
    ----------
    source : str or PathLike
        ``"default"`` (the built-in model), a pianossm checkpoint (``.pt``), or a published
        Piano-SSM ``.pth``, imported on the fly (the licence note is printed once).
    device : str
        Torch device of the parameters (rendering itself runs on the CPU engine).

    Returns
    -------
    PianoSSM
    """
    global _licence_shown
    from pianossm.checkpoint import import_official
    from pianossm.checkpoint import load_model as load_checkpoint_model
    from pianossm.pipeline import default_model_path

    path = default_model_path() if os.fspath(source) == "default" else os.fspath(source)
    if path.endswith(".pth"):
        try:
            model = import_official(path)
        except (KeyError, IndexError, RuntimeError) as exc:
            raise PianoSSMError(f"not a complete published Piano-SSM state_dict: {path!r} "
                                f"({type(exc).__name__}: {exc})") from None
        if not _licence_shown:
            print(LICENCE_NOTE, file=sys.stderr)
            _licence_shown = True
    else:
        model = load_checkpoint_model(path)
    return model.to(device)


def open_model(source: Any = None) -> Any:
    """A model to render with: a :class:`~pianossm.packed.PackedModel` for the built-in model
    and pianossm checkpoints (cached packed weights, no torch once cached), a loaded
    :class:`~pianossm.model.PianoSSM` for a published ``.pth``; a model given is returned.

    Parameters
    ----------
    source : PianoSSM, PackedModel, str, PathLike or None
        ``None`` or ``"default"`` (the built-in model, opened once per process), a path, or
        a model.

    Returns
    -------
    PackedModel or PianoSSM
    """
    global _default_model
    from pianossm.packed import PackedModel

    if source is None or (isinstance(source, str) and source == "default"):
        if _default_model is None:
            from pianossm.pipeline import default_model_path

            _default_model = PackedModel(default_model_path())
        return _default_model
    if isinstance(source, (str, os.PathLike)):
        return load_model(source) if os.fspath(source).endswith(".pth") else PackedModel(source)
    return source


def prepare(model: Any = None, sample_rate: int | None = None, head: str | int | None = None,
            *, alias_mode: str = "none", numerics: str = "exact", float64: bool = False) -> Any:
    """Open a model and pack it for these options ahead of rendering.

    For a :class:`~pianossm.packed.PackedModel` this fills the cache (so worker processes
    that receive it render without torch); bad options fail here, once.

    Parameters
    ----------
    model, sample_rate, head, alias_mode, numerics, float64
        As :func:`synthesize`.

    Returns
    -------
    PackedModel or PianoSSM
        The opened model (:func:`open_model`).
    """
    from pianossm.alias import internal_rate
    from pianossm.packed import PackedModel
    from pianossm.pipeline import alias_mode_of, pack_weights

    net = open_model(model)
    out_rate = int(sample_rate or net.config.train_sample_rate)
    index = net.resolve_head(head)
    if isinstance(net, PackedModel) and numerics == "exact":
        before = alias_mode_of(net)
        net.set_alias_mode(alias_mode)
        try:
            rate = internal_rate(alias_mode, net.config.train_sample_rate, out_rate)
            pack_weights(net, rate, index, "float64" if float64 else "float32")
        finally:
            net.set_alias_mode(before)
    return net


@contextmanager
def _stream(midi: Any, model: Any, sample_rate: int | None, head: str | int | None,
            tail: float, alias_mode: str, frame_grid: str, numerics: str, float64: bool,
            max_seconds: float | None) -> Iterator[tuple[Iterator[np.ndarray], int, float, Any,
                                                         int]]:
    """Blocks, output rate, seconds, model, head index; the model's alias mode is restored."""
    from pianossm.pipeline import alias_mode_of, synthesis_stream

    pm = read_midi(midi)
    net = open_model(model)
    out_rate = int(sample_rate or net.config.train_sample_rate)
    index = net.resolve_head(head)
    before = alias_mode_of(net)
    net.set_alias_mode(alias_mode)
    try:
        dtype = "float64" if float64 else "float32"
        blocks, seconds = synthesis_stream(net, pm, out_rate, index, tail, frame_grid,
                                           numerics, dtype, max_seconds)
        yield blocks, out_rate, seconds, net, index
    finally:
        net.set_alias_mode(before)


def synthesize(midi: Any, model: Any = None, sample_rate: int | None = None,
               head: str | int | None = None, *, tail: float = 0.0, alias_mode: str = "none",
               frame_grid: str = "synth", numerics: str = "exact", float64: bool = False,
               max_seconds: float | None = None, progress: Progress | None = None,
               ) -> tuple[np.ndarray, int]:
    """Synthesise MIDI to audio samples (the samples ``pianossm render`` writes).

    Parameters
    ----------
    midi : str, PathLike, bytes, pretty_midi.PrettyMIDI or list
        See :func:`read_midi`.
    model : PianoSSM, PackedModel, str or None
        A model, a source for :func:`open_model`, or ``None`` for the built-in model
        (rendered from cached packed weights: no torch once the cache holds them).
    sample_rate : int, optional
        Output rate in Hz (default: the model's training rate).
    head : str or int, optional
        Head name or index (default: ``2009`` where the model has it, else the first).
    tail : float
        Seconds rendered after the last MIDI event.
    alias_mode, frame_grid, numerics : str
        As ``pianossm render --alias-mode/--frame-grid/--numerics``.
    float64 : bool
        Compute in float64.
    max_seconds : float, optional
        Render at most this much of the MIDI (before the tail).
    progress : callable, optional
        ``progress(done_seconds, total_seconds)`` after each block.

    Returns
    -------
    audio : np.ndarray
        ``(n,)`` float32 samples (not clipped).
    sample_rate : int
        Their rate, Hz.
    """
    with _stream(midi, model, sample_rate, head, tail, alias_mode, frame_grid, numerics,
                 float64, max_seconds) as (blocks, rate, seconds, _, _):
        parts, done = [], 0
        for block in blocks:
            parts.append(block)
            done += len(block)
            if progress is not None:
                progress(done / rate, seconds)
    audio = np.concatenate(parts).astype(np.float32, copy=False) if parts else np.zeros(
        0, np.float32)
    return audio, rate


@dataclass(frozen=True)
class RenderResult:
    """What :func:`render` wrote: ``path`` (``"-"`` for a stream), ``seconds`` of audio at
    ``sample_rate`` Hz, ``head`` name, ``wall`` seconds and ``clipped`` samples."""

    path: str
    seconds: float
    sample_rate: int
    synth_rate: int
    head: str
    wall: float
    clipped: int


def render(midi_path: Any, out_path: str | os.PathLike[str] | IO[bytes], model: Any = None,
           sample_rate: int | None = None, head: str | int | None = None, *,
           bits: str = "16", force: bool = False, tail: float = 0.0, alias_mode: str = "none",
           frame_grid: str = "synth", numerics: str = "exact", float64: bool = False,
           progress: Progress | None = None) -> RenderResult:
    """Render MIDI to a WAV/FLAC file, streaming, written atomically.

    Parameters
    ----------
    midi_path : str, PathLike, bytes, pretty_midi.PrettyMIDI or list
        See :func:`read_midi`.
    out_path : str, PathLike or binary file
        ``.wav``/``.flac`` path (temporary file renamed into place on success), or an open
        binary stream (``sys.stdout.buffer``) that receives a whole WAV at the end.
    model, sample_rate, head, tail, alias_mode, frame_grid, numerics, float64, progress
        As :func:`synthesize`.
    bits : str
        ``16``, ``24`` or ``float``.
    force : bool
        Overwrite an existing file.

    Returns
    -------
    RenderResult
    """
    from pianossm.alias import internal_rate
    from pianossm.audio import AudioWriter

    start = time.perf_counter()
    if not isinstance(out_path, (str, os.PathLike)):
        return _render_stream(midi_path, out_path, start, model, sample_rate, head, bits,
                              tail, alias_mode, frame_grid, numerics, float64, progress)
    with _stream(midi_path, model, sample_rate, head, tail, alias_mode, frame_grid, numerics,
                 float64, None) as (blocks, rate, seconds, net, index):
        with AudioWriter(out_path, rate, bits, force=force) as out:
            for block in blocks:
                out.write(block)
                if progress is not None:
                    progress(out.frames / rate, seconds)
        synth = internal_rate(alias_mode, net.config.train_sample_rate, rate)
        return RenderResult(os.fspath(out_path), out.frames / rate, rate, synth,
                            net.config.heads[index], time.perf_counter() - start, out.clipped)


def _render_stream(midi: Any, stream: IO[bytes], start: float, model: Any,
                   sample_rate: int | None, head: str | int | None, bits: str, tail: float,
                   alias_mode: str, frame_grid: str, numerics: str, float64: bool,
                   progress: Progress | None) -> RenderResult:
    """:func:`render` to an open binary stream: the whole WAV is built, then written."""
    import soundfile as sf

    from pianossm.alias import internal_rate
    from pianossm.audio import SUBTYPES

    if bits not in SUBTYPES:
        raise PianoSSMError(f"unknown sample format {bits!r}; allowed: {sorted(SUBTYPES)}")
    net = open_model(model)
    audio, rate = synthesize(midi, net, sample_rate, head, tail=tail, alias_mode=alias_mode,
                             frame_grid=frame_grid, numerics=numerics, float64=float64,
                             progress=progress)
    if not np.all(np.isfinite(audio)):
        raise PianoSSMError("synthesised audio holds NaN or infinite samples "
                            "(a broken checkpoint?)")
    clipped = int((np.abs(audio) > 1.0).sum()) if bits != "float" else 0
    buf = io.BytesIO()
    sf.write(buf, np.clip(audio, -1.0, 1.0) if bits != "float" else audio, rate,
             subtype=SUBTYPES[bits], format="WAV")
    stream.write(buf.getvalue())
    stream.flush()
    index = net.resolve_head(head)
    synth = internal_rate(alias_mode, net.config.train_sample_rate, rate)
    return RenderResult("-", len(audio) / rate, rate, synth, net.config.heads[index],
                        time.perf_counter() - start, clipped)
