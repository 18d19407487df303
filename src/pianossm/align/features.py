"""Audio features for alignment: 16 kHz, a CQT of the 88 keys with 10 ms hop, chroma.

The CQT has one bin per key (A0..C8, 12 bins per octave), so bin ``k`` and piano-roll
column ``k`` are the same pitch; magnitudes are log-compressed to [0, 1] relative to the
loudest bin of the signal (so the input level does not matter).
"""

from __future__ import annotations

import numpy as np

from pianossm.align.notes import FPS, N_KEYS
from pianossm.errors import PianoSSMError

__all__ = [
    "HOP",
    "SAMPLE_RATE",
    "TOP_DB",
    "audio_to_cqt",
    "check_audio",
    "cqt_to_chroma",
    "cqt_to_onset_strength",
]

SAMPLE_RATE = 16000
HOP = SAMPLE_RATE // FPS
TOP_DB = 80.0
_SILENCE_RMS = 1e-4


def check_audio(audio: np.ndarray, sr: int, name: str = "audio") -> np.ndarray:
    """Validate a signal and resample it to 16 kHz mono float32.

    Parameters
    ----------
    audio : np.ndarray
        ``(n,)`` or ``(n, channels)`` samples.
    sr : int
        Its rate in Hz.
    name : str
        How to name it in error messages (a file name).

    Returns
    -------
    np.ndarray
        ``(m,)`` float32 at :data:`SAMPLE_RATE`.
    """
    audio = np.asarray(audio, dtype=np.float32)
    if audio.ndim == 2:
        audio = audio.mean(axis=1)
    if audio.ndim != 1 or audio.size == 0:
        raise PianoSSMError(f"{name}: expected a non-empty mono or multichannel signal, "
                            f"got shape {audio.shape}")
    if not np.all(np.isfinite(audio)):
        raise PianoSSMError(f"{name}: holds NaN or infinite samples")
    if sr != SAMPLE_RATE:
        import soxr

        audio = soxr.resample(audio, sr, SAMPLE_RATE, quality="HQ").astype(np.float32)
    if audio.size < SAMPLE_RATE // 10:
        raise PianoSSMError(f"{name}: too short to align ({audio.size / SAMPLE_RATE:.3f} s)")
    if float(np.sqrt(np.mean(audio.astype(np.float64) ** 2))) < _SILENCE_RMS:
        raise PianoSSMError(f"{name}: is silent (RMS below {_SILENCE_RMS:g}); nothing to "
                            f"align to")
    return audio


def audio_to_cqt(audio: np.ndarray, sr: int = SAMPLE_RATE) -> np.ndarray:
    """Log-magnitude CQT of the 88 piano keys at 100 frames per second.

    Parameters
    ----------
    audio : np.ndarray
        ``(n,)`` samples.
    sr : int
        Their rate (resampled to 16 kHz here when different).

    Returns
    -------
    np.ndarray
        ``(T, 88)`` float32 in [0, 1], ``T = 1 + n16 // 160``; frame ``k`` is centred on
        ``k / 100`` s.
    """
    import librosa

    audio = check_audio(audio, sr)
    c = np.abs(librosa.cqt(audio, sr=SAMPLE_RATE, hop_length=HOP, n_bins=N_KEYS,
                           bins_per_octave=12, fmin=librosa.midi_to_hz(21)))
    db = librosa.amplitude_to_db(c, ref=np.max, top_db=TOP_DB)
    return (1.0 + db / TOP_DB).T.astype(np.float32)


def cqt_to_chroma(cqt: np.ndarray) -> np.ndarray:
    """Fold a ``(T, 88)`` CQT into ``(T, 12)`` chroma (pitch class of key 21 = A = 9).

    Parameters
    ----------
    cqt : np.ndarray
        ``(T, 88)`` non-negative features (a log CQT or a piano roll).

    Returns
    -------
    np.ndarray
        ``(T, 12)`` float32, column 0 = C.
    """
    out = np.zeros((cqt.shape[0], 12), np.float32)
    for k in range(cqt.shape[1]):
        out[:, (k + 21) % 12] += cqt[:, k]
    return out


def cqt_to_onset_strength(cqt: np.ndarray) -> np.ndarray:
    """Half-wave rectified frame difference of a ``(T, 88)`` feature, ``(T, 88)``."""
    diff = np.diff(cqt, axis=0, prepend=cqt[:1])
    return np.maximum(diff, 0.0).astype(np.float32)
