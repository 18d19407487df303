"""Timing accuracy of a synthesiser: align its audio to the MIDI it was rendered from.

A perfect synthesiser's note onsets sit exactly at the MIDI times, so the aligner's
correction of each note is the synthesiser's timing error (plus the aligner's own error,
which :func:`synthesis_timing_report` on FluidSynth audio measures as a floor).  The times
are those of the aligning network's training labels: the shipped network's are FluidSynth
renders' MIDI note-ons, so a synthesiser that sounds when FluidSynth does, some 6 ms after
each note-on, has no error (the aligner itself returns where notes sound: README, "Labels
at the sound").
"""

from __future__ import annotations

import os

import numpy as np

from pianossm.align.metrics import summarize

__all__ = ["synthesis_onset_errors", "synthesis_timing_report", "timing_summary"]


def synthesis_onset_errors(audio: np.ndarray, sr: int,
                           midi_path: str | os.PathLike[str],
                           method: str = "crnn", model: str | None = None,
                           ) -> np.ndarray:
    """Signed onset error of every note of ``midi_path`` in synthesised ``audio``.

    Parameters
    ----------
    audio : np.ndarray
        ``(n,)`` or ``(n, channels)`` synthesised audio, starting at MIDI time 0.
    sr : int
        Its rate in Hz.
    midi_path : str or PathLike
        The MIDI file it was rendered from.
    method : str
        Alignment method (see :data:`pianossm.align.api.METHODS`).  ``crnn`` by default:
        the audio starts at MIDI time 0, so each note is only searched for near its MIDI
        onset; a global DTW pass can lose its way on a weak synthesiser and report errors
        of seconds.
    model : str, optional
        CRNN checkpoint (default: the shipped one).

    Returns
    -------
    np.ndarray
        ``(N,)`` float64 seconds, aligned onset minus MIDI onset (positive = audio late),
        one per note in the MIDI file's note order, in the CRNN's label times (its label
        latency subtracted; none without a CRNN).
    """
    from pianossm.align.api import align_notes, label_latency
    from pianossm.align.features import check_audio
    from pianossm.align.notes import midi_to_notes

    notes = midi_to_notes(midi_path)
    audio16 = check_audio(audio, sr, os.path.basename(os.fspath(midi_path)) + " audio")
    aligned = align_notes(audio16, notes, method, model)
    lat = label_latency(model) if "crnn" in method else 0.0
    return np.asarray(aligned.onset - lat - notes.onset, np.float64)


def timing_summary(signed: np.ndarray) -> dict[str, float]:
    """Statistics of ``(N,)`` signed onset errors in seconds.

    Returns
    -------
    dict
        ``n``, ``mean_ms``, ``median_ms``, ``within_10ms`` .. ``within_100ms`` of the
        absolute errors, plus ``bias_ms`` (mean signed error, positive = audio late) and
        ``std_ms`` (spread of the signed error).
    """
    signed = np.asarray(signed, np.float64)
    out = summarize(np.abs(signed))
    out["bias_ms"] = 1000 * float(signed.mean())
    out["std_ms"] = 1000 * float(signed.std())
    return out


def synthesis_timing_report(audio: np.ndarray, sr: int,
                            midi_path: str | os.PathLike[str],
                            method: str = "crnn", model: str | None = None,
                            ) -> dict[str, float]:
    """Onset-error statistics of synthesised ``audio`` against its source MIDI.

    Parameters
    ----------
    audio : np.ndarray
        ``(n,)`` or ``(n, channels)`` synthesised audio, starting at MIDI time 0.
    sr : int
        Its rate in Hz.
    midi_path : str or PathLike
        The MIDI file it was rendered from.
    method : str
        Alignment method (see :data:`pianossm.align.api.METHODS`).
    model : str, optional
        CRNN checkpoint (default: the shipped one).

    Returns
    -------
    dict
        See :func:`timing_summary`.
    """
    return timing_summary(synthesis_onset_errors(audio, sr, midi_path, method, model))
