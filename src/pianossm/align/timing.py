"""Timing accuracy of a synthesiser: align its audio to the MIDI it was rendered from.

A perfect synthesiser's note onsets sit exactly at the MIDI times, so the aligner's
correction of each note is the synthesiser's timing error (plus the aligner's own error,
which :func:`synthesis_timing_report` on FluidSynth audio measures as a floor).
"""

from __future__ import annotations

import os

import numpy as np

from pianossm.align.metrics import summarize

__all__ = ["synthesis_timing_report"]


def synthesis_timing_report(audio: np.ndarray, sr: int,
                            midi_path: str | os.PathLike[str],
                            method: str = "dtw+crnn", model: str | None = None,
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
        CRNN checkpoint (default: shipped).

    Returns
    -------
    dict
        ``n``, ``mean_ms``, ``median_ms``, ``within_10ms`` .. ``within_100ms`` of the
        absolute errors, plus ``bias_ms`` (mean signed error, positive = audio late) and
        ``std_ms`` (spread of the signed error).
    """
    from pianossm.align.api import align_notes
    from pianossm.align.features import check_audio
    from pianossm.align.notes import midi_to_notes

    notes = midi_to_notes(midi_path)
    audio16 = check_audio(audio, sr, os.path.basename(os.fspath(midi_path)) + " audio")
    aligned = align_notes(audio16, notes, method, model)
    signed = aligned.onset - notes.onset
    out = summarize(np.abs(signed))
    out["bias_ms"] = 1000 * float(signed.mean())
    out["std_ms"] = 1000 * float(signed.std())
    return out
