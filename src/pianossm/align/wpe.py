"""WPE linear-prediction filtering before alignment: attacks stand out, sustain and rooms fade.

WPE (weighted prediction error; Nakatani et al., 2010; Yoshioka and Nakatani, 2012) was
made for dereverberation: in every STFT bin it predicts the current frame from the frames
``delay`` to ``delay + taps - 1`` before it (24-104 ms here) with a linear filter, fitted by
iteratively reweighted least squares so that the prediction error is as sparse in time
as possible, and keeps only the prediction error.  On piano audio what those frames
predict is not only a room's reverberation but also the steady sustain of every note
that is ringing (a decaying partial is as predictable as it gets), so what is left is
mostly attacks: on a dry FluidR3 note the sustain falls 15-25 dB below the attack
(README, "WPE filtering").  That is what the aligners need: a key struck again while its
previous note (or the room) still rings rises far above what remains, where before it
rose a few dB above its own sound, late and blurred (README, "Where the hall errors come
from").  On a synthetic diffuse room (a noise tail, sparse tone bursts) the filter
removes next to nothing, so the gain on rendered halls is the sustain's, not a
dereverberation's.

The filter estimation is ``nara_wpe``'s (MIT, the NTT / Paderborn reference
implementation), on a complex64 STFT (torch's), a few frequency bins at a time, so that
a 5-minute recording takes about three seconds on one thread (all bins at once: 4.5 s and
2 GB; complex128 and nara_wpe's own STFT: several times as long).
The settings are nara_wpe's defaults for 16 kHz (512-sample frames, 128 hop, ``delay`` 3,
3 iterations) but for ``taps``: 20 (24-184 ms back) instead of 10 (README, "Longer WPE
filters": on the development segments 94.3 -> 94.7 % within 25 ms, on the held-out hall
excerpts 0.5-0.9 points more).  Only the STFT bins up to :data:`MAX_HZ` are filtered (the
others are left as they are): the CQT's top key (C8, 4186 Hz) reads nothing above them, so
its features change by at most 5e-4 of their [0, 1] range, and the filter costs 63 % of
the full band's time (twice the taps cost about twice the time).
"""

from __future__ import annotations

import numpy as np

from pianossm.align.features import SAMPLE_RATE
from pianossm.errors import PianoSSMError

__all__ = ["BLOCK", "DELAY", "ITERATIONS", "MAX_HZ", "N_FFT", "SHIFT", "TAPS", "wpe_filter"]

N_FFT = 512
SHIFT = 128
TAPS = 20
DELAY = 3
ITERATIONS = 3
#: Frequency bins per call of nara_wpe (see :func:`wpe_filter`).
BLOCK = 4
#: Highest frequency filtered (Hz): the bins above are left as they are (module docstring).
MAX_HZ = 5000.0


def wpe_filter(audio16: np.ndarray, taps: int = TAPS, delay: int = DELAY,
               iterations: int = ITERATIONS, max_hz: float = MAX_HZ) -> np.ndarray:
    """Single-channel WPE prediction error of a 16 kHz signal (module docstring).

    Parameters
    ----------
    audio16 : np.ndarray
        ``(n,)`` finite float samples (16 kHz; the frame settings assume that rate).
    taps : int
        Prediction filter length, STFT frames (8 ms each).
    delay : int
        Frames between the current frame and the newest frame the filter predicts from:
        what it leaves alone (``delay * 8`` ms: an attack and its first reflections).
    iterations : int
        Reweighting iterations.
    max_hz : float
        Highest frequency filtered; the STFT bins above pass unchanged (8000: all).

    Returns
    -------
    np.ndarray
        ``(n,)`` float32 prediction error (silence stays silence; a signal too short to
        fit a filter, under ``taps + delay`` frames, comes back unchanged).
    """
    import torch
    from nara_wpe.wpe import wpe

    x = np.asarray(audio16, dtype=np.float32)
    if x.ndim != 1:
        raise PianoSSMError(f"wpe_filter: expected a mono signal, got shape {x.shape}")
    if taps < 1 or delay < 1 or iterations < 1:
        raise PianoSSMError(f"wpe_filter: taps, delay and iterations must be >= 1, got "
                            f"{taps}, {delay}, {iterations}")
    if not max_hz > 0:
        raise PianoSSMError(f"wpe_filter: max_hz must be > 0, got {max_hz!r}")
    if not np.any(x) or 1 + len(x) // SHIFT <= taps + delay:  # nothing to fit a filter to
        return x.copy()
    window = torch.hann_window(N_FFT)
    spec = torch.stft(torch.from_numpy(np.ascontiguousarray(x)), N_FFT, SHIFT, window=window,
                      return_complex=True)  # (F, T) complex64
    y = np.ascontiguousarray(spec.numpy())[:, None, :]  # (F, 1, T); torch's is transposed
    out = y.copy()
    top = min(len(y), int(np.ceil(max_hz * N_FFT / SAMPLE_RATE)) + 1)  # bins filtered
    with np.errstate(all="ignore"):
        # every bin has its own filter: blocks of BLOCK bins keep nara_wpe's (bins, taps,
        # frames) intermediates in cache (5 minutes: 4.5 s in one piece, 1.8 s in blocks)
        for a in range(0, top, BLOCK):
            b = min(top, a + BLOCK)
            out[a:b] = wpe(y[a:b], taps=taps, delay=delay, iterations=iterations)
    out = out[:, 0, :]
    if not np.all(np.isfinite(out)):  # a degenerate fit: leave the signal as it is
        return x.copy()
    y = torch.istft(torch.from_numpy(out), N_FFT, SHIFT, window=window, length=len(x))
    return y.numpy().astype(np.float32, copy=False)
