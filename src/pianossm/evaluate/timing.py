"""Onset timing of whole pieces: a synthesiser's audio aligned to the piece's own MIDI
(:mod:`pianossm.align.timing`), every note's signed onset error kept."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from pianossm.data.cache import AudioCache
from pianossm.errors import PianoSSMError
from pianossm.evaluate.windows import _candidate_file, _head_of, item_midi

__all__ = ["PieceSource", "PieceTiming", "evaluate_timing", "folder_piece_source",
           "model_piece_source", "timing_rows"]

#: ``piece_source(item_index) -> (audio, rate)``: a whole piece, ``(n,)`` float32 from
#: MIDI time 0, at any rate.
PieceSource = Callable[[int], tuple[np.ndarray, int]]


@dataclass(frozen=True)
class PieceTiming:
    """Signed onset errors of one synthesised piece against its MIDI file.

    ``signed`` is ``(N,)`` float64 seconds, aligned onset minus MIDI onset (positive:
    the audio is late), one per note.
    """

    piece: str
    signed: np.ndarray


def model_piece_source(model: PianoSSM, cache: AudioCache,  # noqa: F821
                       synth_rate: int | None = None, head: int | None = None,
                       alias_mode: str | None = None) -> PieceSource:
    """Whole pieces synthesised by ``model`` from their MIDI files, block-streamed.

    Parameters
    ----------
    model : PianoSSM
        The model.
    cache : AudioCache
        Gives the items' MIDI files and heads.
    synth_rate : int, optional
        Rate of the returned audio in Hz (default: the model's training rate).
    head : int, optional
        Output head (default: the item's head where the model has it, else 0).
    alias_mode : str, optional
        As in :func:`model_source`: under ``oversample`` the model runs at
        :func:`pianossm.alias.internal_rate` and is resampled (soxr, very high quality,
        streaming) to ``synth_rate``.

    Returns
    -------
    PieceSource
        ``piece(item) -> ((n,) float32, synth_rate)``.
    """
    from pianossm.data.cache import load_performance
    from pianossm.render import render_midi

    out_rate = synth_rate or model.config.train_sample_rate
    if alias_mode is not None:
        model.set_alias_mode(alias_mode)  # PianoSSMError naming an unknown mode

    def piece(item: int) -> tuple[np.ndarray, int]:
        midi = load_performance(item_midi(cache, item))
        return render_midi(model, midi, out_rate, _head_of(model, cache, item, head)), out_rate

    return piece


def folder_piece_source(folder: str | os.PathLike[str], cache: AudioCache) -> PieceSource:
    """Whole pieces read from ``folder/<name>.wav`` (or ``.flac``) at their own rate.

    Returns
    -------
    PieceSource
        ``piece(item) -> ((n,) float32 mono, file rate)``.
    """
    from pianossm.audio import read_audio

    folder = os.fspath(folder)

    def piece(item: int) -> tuple[np.ndarray, int]:
        return read_audio(_candidate_file(folder, cache.items[item]["name"]))

    return piece


def evaluate_timing(cache: AudioCache, source: PieceSource, split: str = "test",
                    method: str = "crnn", align_model: str | None = None,
                    progress: bool = False, desc: str = "timing") -> list[PieceTiming]:
    """Align every piece of ``split`` to its own MIDI file and keep the onset errors.

    Parameters
    ----------
    cache : AudioCache
        Gives the split's items and their MIDI files.
    source : PieceSource
        Candidate audio of a whole piece.
    split : str
        Cache split.
    method : str
        Alignment method (:data:`pianossm.align.api.METHODS`).  ``crnn`` (default)
        searches each note within 150 ms of its MIDI onset: a synthesiser rendering the
        MIDI cannot be off by more than that unless it is broken, and the DTW methods'
        global alignment can go astray on poor audio (seconds of error on a weak model).
    align_model : str, optional
        CRNN checkpoint (default: the shipped one).
    progress : bool
        Show a tqdm bar.
    desc : str
        Its label.

    Returns
    -------
    list of PieceTiming
        One per item of the split, in cache order.
    """
    from tqdm import tqdm

    from pianossm.align.api import METHODS
    from pianossm.align.timing import synthesis_onset_errors

    if method not in METHODS:
        raise PianoSSMError(f"unknown alignment method {method!r}; allowed: {list(METHODS)}")
    ids = cache.split(split)
    if not ids:
        raise PianoSSMError(f"cache {cache.path!r} has no {split!r} items to time")
    out = []
    for item in tqdm(ids, desc=desc, unit="piece", disable=not progress):
        audio, rate = source(item)
        signed = synthesis_onset_errors(audio, rate, item_midi(cache, item), method,
                                        align_model)
        out.append(PieceTiming(cache.items[item]["name"], signed))
    return out


def timing_rows(timings: list[PieceTiming]) -> list[tuple[str, dict[str, float]]]:
    """Per-piece statistics and, last, ``all``: every note of every piece pooled.

    Returns
    -------
    list of (str, dict)
        ``(piece, stats)``, stats as :func:`pianossm.align.timing.timing_summary`.
    """
    from pianossm.align.timing import timing_summary

    if not timings:
        raise PianoSSMError("no pieces were timed")
    rows = [(t.piece, timing_summary(t.signed)) for t in timings]
    rows.append(("all", timing_summary(np.concatenate([t.signed for t in timings]))))
    return rows
