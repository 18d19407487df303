"""Does a synthesiser play the key it is given?  The loudest CQT key after an onset."""

from __future__ import annotations

import numpy as np

__all__ = ["loudest_key"]


def loudest_key(audio: np.ndarray, sample_rate: int, onset: float = 0.5,
                window: tuple[float, float] = (0.05, 0.4)) -> int:
    """MIDI key of the loudest CQT bin, averaged over a window after a note's onset.

    The CQT is the aligner's (:func:`pianossm.align.features.audio_to_cqt`: 100 frames
    per second, one bin per key from A0), so a fundamental at a key's frequency lands in
    that key's bin; a strong second partial lands an octave up.

    Parameters
    ----------
    audio : np.ndarray
        ``(n,)`` samples holding one note.
    sample_rate : int
        Their rate, Hz.
    onset : float
        The note's start, s.
    window : tuple of float
        Seconds after the onset averaged over.

    Returns
    -------
    int
        MIDI key number, 21 (A0) .. 108 (C8).
    """
    from pianossm.align.features import audio_to_cqt

    cqt = audio_to_cqt(audio, sample_rate)  # (frames, 88)
    lo, hi = int(round((onset + window[0]) * 100)), int(round((onset + window[1]) * 100))
    return int(np.argmax(cqt[lo:hi].mean(axis=0))) + 21
