"""DTW baselines: chroma + onset DTW (ours: a pooled coarse pass, refined in a band) and
synctoolbox's MrMsDTW with DLNCO onset features.  Both return a warping path ``wp``
``(L, 2)`` of ``(midi_frame, audio_frame)`` pairs at 100 frames/s, turned into note times
by :func:`warp_notes`.

Our features per 10 ms frame are a unit-norm chroma and a *decaying locally normalised
chroma onset* vector (DLNCO, as in synctoolbox): onsets (audio: the rectified rise of the
log CQT; MIDI: note onset impulses) folded to chroma, divided by the largest
onset norm within +-0.4 s (at least 10 % of the piece's largest), and held with a
``sqrt(1/n)`` decay over 200 ms.  The local cost is

    c(i, j) = BASE + (1 - chroma_i . chroma_j) + ONSET_WEIGHT * ||onset_i - onset_j||

with step weights :data:`STEP_WEIGHTS` (diagonal, vertical, horizontal).  The first pass
runs librosa's ``sequence.dtw`` on frames pooled so that its cost matrix has at most
``max_cells`` cells; the second refines at 10 ms inside a band around it with a jitted
banded DTW (librosa computes the full ``N x M`` matrix: 9e8 cells, 7 GB, for five minutes
at 10 ms).

Why: the previous features normalised the onset chroma of *every* frame to unit length,
so between attacks the audio side's noise and reverberation tails weighed as much as an
attack, and the cost could not tell a path one chord early from the right one (on the
segments below, the true path cost more than the one found); with a cost ``1 - cos`` and
all step weights 1 only the implicit preference for diagonal steps held the path
together.  Locally normalised, decaying onsets are zero between attacks on both sides.
Chosen on 20 s segments cut out of 60 s renders of the *training* pianos and rooms
(``runs/align/dev_seg``: seeds 3000-3009, close/ambient; :func:`align_dtw` also runs a
second pass), then measured on the unseen piano and rooms (``scripts/align_segments.py``
and ``scripts/align_conditions.py``; README, Alignment): coarse input, 20 s segments,
within 100 ms 91.1 -> 98.3 % (synctoolbox's MrMsDTW 80.2 %), whole pieces 94.6 -> 99.6 %.
"""

from __future__ import annotations

import contextlib
import io

import numpy as np
from numba import njit

from pianossm.align.features import TOP_DB, cqt_to_chroma, cqt_to_onset_strength
from pianossm.align.notes import FPS, Notes, midi_to_piano_roll
from pianossm.errors import PianoSSMError

__all__ = [
    "BASE",
    "ONSET_WEIGHT",
    "STEP_WEIGHTS",
    "align_dtw",
    "align_mrmsdtw",
    "audio_features",
    "cost_matrix",
    "dlnco",
    "dtw_path",
    "linear_fit",
    "midi_features",
    "sounding_at_start",
    "warp_notes",
]

#: Weights of the diagonal, vertical and horizontal steps (synctoolbox's 2 / 1.5 / 1.5).
STEP_WEIGHTS = (2.0, 1.5, 1.5)
#: Constant added to every cell's cost (a price on the path's length).
BASE = 0.3
#: Weight of the onset half of the cost.
ONSET_WEIGHT = 0.5
#: Local normalisation window (s) and floor (share of the largest onset) of :func:`dlnco`.
LN_SECONDS, LN_FLOOR = 0.8, 0.1
#: Frames of the onset decay (``sqrt(1/n)``, n = 1..DECAY).
DECAY = 20


def _normalize(f: np.ndarray, eps: float = 1e-3) -> np.ndarray:
    norm = np.linalg.norm(f, axis=1, keepdims=True)
    flat = np.full_like(f, 1.0 / np.sqrt(f.shape[1]))
    return np.where(norm > eps, f / np.maximum(norm, eps), flat).astype(np.float32)


def dlnco(onset_chroma: np.ndarray, ln_seconds: float = LN_SECONDS,
          floor: float = LN_FLOOR, decay: int = DECAY) -> np.ndarray:
    """Decaying locally normalised chroma onsets of ``(T, 12)`` onset impulses.

    Each frame is divided by the largest frame norm within ``ln_seconds`` around it (at
    least ``floor`` times the largest of all), then every value is held for ``decay``
    frames, decaying as ``sqrt(1 / n)``.  Frames far from any onset stay 0.
    """
    from scipy.ndimage import maximum_filter1d

    co = np.asarray(onset_chroma, np.float32)
    norm = np.linalg.norm(co, axis=1)
    local = maximum_filter1d(norm, size=max(1, int(ln_seconds * FPS)) | 1, mode="constant")
    local = np.maximum(local, floor * max(float(norm.max()), 1e-9))
    ln = co / local[:, None]
    out = ln.copy()
    for n in range(1, decay):
        out[n:] = np.maximum(out[n:], np.sqrt(1.0 / (n + 1)) * ln[:-n])
    return out.astype(np.float32)


def audio_features(cqt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(T, 88)`` log CQT -> unit-norm chroma ``(T, 12)`` and DLNCO onsets ``(T, 12)``.

    Chroma folds ``log(1 + amplitude)`` (amplitude relative to the loudest bin), so quiet
    bleed and noise barely count.  Onsets: the rectified rise of the log CQT above -56 dB,
    folded to chroma, then :func:`dlnco` (keeping only per-key peaks of the rise was
    within 0.3 points at 150 ms and 2-3 points worse within 25 ms on the development
    segments).
    """
    amp = 10.0 ** (TOP_DB / 20 * (cqt - 1.0))
    rise = cqt_to_onset_strength(np.maximum(cqt - 0.3, 0.0))
    return _normalize(cqt_to_chroma(np.log1p(amp))), dlnco(cqt_to_chroma(rise))


def _ring(onset: np.ndarray, frame: np.ndarray, ring: float) -> np.ndarray:
    """``(T, 88)`` frame roll where every key also rings after its last onset, decaying
    as ``exp(-dt / ring)`` (release, pedal and room keep a note sounding in the audio)."""
    if ring <= 0:
        return frame
    t = np.arange(len(onset), dtype=np.float64)[:, None]
    last = np.maximum.accumulate(np.where(onset > 0, t, -np.inf), axis=0)
    env = np.exp(-(t - last) / (ring * FPS))  # 0 before a key's first onset
    return np.maximum(frame, env).astype(np.float32)


def midi_features(notes: Notes, n_frames: int, ring: float = 0.7,
                  lead: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Notes -> unit-norm chroma ``(n_frames, 12)`` and DLNCO onsets ``(n_frames, 12)``.

    ``ring`` (s): each key's chroma also decays exponentially after its onset instead of
    stopping at the note's offset (0: the plain frame roll).  On reverberant renders of
    training pianos/rooms (6 `ambient` + 4 `close` pieces of the training set, human-like
    and coarse perturbations), ``ring=0.7`` put 98.7 % of ambient onsets within 150 ms
    of the truth (the CRNN's search window) against 92.6 % for the plain roll.

    ``lead`` ``(88,)``: keys already sounding when the recording begins
    (:func:`sounding_at_start`), which ring on from frame 0 with the same decay, so that a
    recording cut out of a longer one, which begins with the ringing of notes struck
    before the cut, has something to match on the MIDI side other than silence (README,
    "The DTW hears what rang before the cut").  None or all zero: nothing rings there.
    """
    roll = midi_to_piano_roll(notes, n_frames)
    frame = _ring(roll[0], roll[1], ring)
    if lead is not None and ring > 0 and np.any(lead > 0):
        t = np.arange(n_frames, dtype=np.float64)[:, None]
        frame = np.maximum(frame, lead[None, :] * np.exp(-t / (ring * FPS))).astype(np.float32)
    return _normalize(cqt_to_chroma(frame)), dlnco(cqt_to_chroma(roll[0]))


def sounding_at_start(cqt: np.ndarray, floor: float = 0.3) -> np.ndarray:
    """Each key's linear amplitude in the recording's first frame.

    Parameters
    ----------
    cqt : np.ndarray
        ``(T, 88)`` log CQT scaled to ``[0, 1]`` over :data:`TOP_DB` dB
        (:func:`pianossm.align.features.audio_to_cqt`).
    floor : float
        Keys at or below this (0.3: -56 dB, the onset features' floor) count as silent,
        so a recording that begins in silence gives all zeros.

    Returns
    -------
    np.ndarray
        ``(88,)`` amplitudes, 1 at full scale, 0 for silent keys.
    """
    first = cqt[0].astype(np.float64)
    return np.where(first > floor, 10.0 ** (TOP_DB / 20 * (first - 1.0)), 0.0)


@njit(cache=True)
def _band_dtw(xc: np.ndarray, xo: np.ndarray, yc: np.ndarray, yo: np.ndarray,
              lo: np.ndarray, hi: np.ndarray, w: np.ndarray, base: float,
              onset_weight: float) -> np.ndarray:  # pragma: no cover - jitted
    n = xc.shape[0]
    offs = np.zeros(n + 1, np.int64)
    for i in range(n):
        offs[i + 1] = offs[i] + hi[i] - lo[i]
    d = np.full(offs[n], np.inf)
    step = np.zeros(offs[n], np.int8)
    for i in range(n):
        for j in range(lo[i], hi[i]):
            e = 0.0
            for q in range(xo.shape[1]):
                e += (xo[i, q] - yo[j, q]) ** 2
            c = base + 1.0 - np.dot(xc[i], yc[j]) + onset_weight * np.sqrt(e)
            best, s = np.inf, -1
            if i == 0 and j == 0:
                best, s = c, 3
            if i > 0 and lo[i - 1] <= j - 1 < hi[i - 1]:
                v = d[offs[i - 1] + j - 1 - lo[i - 1]] + w[0] * c
                if v < best:
                    best, s = v, 0
            if i > 0 and lo[i - 1] <= j < hi[i - 1]:
                v = d[offs[i - 1] + j - lo[i - 1]] + w[1] * c
                if v < best:
                    best, s = v, 1
            if j - 1 >= lo[i]:
                v = d[offs[i] + j - 1 - lo[i]] + w[2] * c
                if v < best:
                    best, s = v, 2
            d[offs[i] + j - lo[i]] = best
            step[offs[i] + j - lo[i]] = s
    path = np.zeros((offs[n] + n, 2), np.int64)
    i, j, k = n - 1, hi[n - 1] - 1, 0
    while True:
        path[k, 0], path[k, 1] = i, j
        k += 1
        s = step[offs[i] + j - lo[i]]
        if s == 3 or s < 0:
            break
        if s == 0:
            i, j = i - 1, j - 1
        elif s == 1:
            i -= 1
        else:
            j -= 1
    return path[:k][::-1]


def _pool(f: np.ndarray, k: int) -> np.ndarray:
    n = -(-len(f) // k) * k
    pad = np.concatenate([f, np.repeat(f[-1:], n - len(f), axis=0)])
    return pad.reshape(-1, k, f.shape[1]).mean(axis=1)


def cost_matrix(xc: np.ndarray, xo: np.ndarray, yc: np.ndarray, yo: np.ndarray,
                base: float = BASE, onset_weight: float = ONSET_WEIGHT) -> np.ndarray:
    """``(N, M)`` local cost of the module docstring (float64)."""
    sq = (xo ** 2).sum(1)[:, None] + (yo ** 2).sum(1)[None] - 2.0 * (xo @ yo.T)
    return (base + np.maximum(1.0 - xc @ yc.T, 0.0)
            + onset_weight * np.sqrt(np.maximum(sq, 0.0))).astype(np.float64)


def dtw_path(x: tuple[np.ndarray, np.ndarray], y: tuple[np.ndarray, np.ndarray],
             max_cells: float = 4e6, radius: int = 20, base: float = BASE,
             onset_weight: float = ONSET_WEIGHT) -> np.ndarray:
    """Two-resolution DTW between ``(chroma, onset)`` feature pairs (module docstring).

    Parameters
    ----------
    x, y : tuple of np.ndarray
        ``(chroma, onset)`` of ``N`` and ``M`` frames: unit-norm ``(., 12)`` chroma and
        :func:`dlnco` onsets.
    max_cells : float
        Largest coarse cost matrix.
    radius : int
        Band half-width (frames) of the fine pass around the upsampled coarse path.

    Returns
    -------
    np.ndarray
        ``wp`` ``(L, 2)`` int64 pairs ``(i, j)`` from ``(0, 0)`` to ``(N-1, M-1)``.
    """
    import librosa

    (xc, xo), (yc, yo) = x, y
    n, m = len(xc), len(yc)
    if n < 2 or m < 2:
        raise PianoSSMError(f"sequences too short for DTW ({n} and {m} frames)")
    k = max(1, int(np.ceil(np.sqrt(n * m / max_cells))))
    if k > 1:
        cost = cost_matrix(_normalize(_pool(xc, k)), _pool(xo, k), _normalize(_pool(yc, k)),
                           _pool(yo, k), base, onset_weight)
    else:
        cost = cost_matrix(xc, xo, yc, yo, base, onset_weight)
    w = np.array(STEP_WEIGHTS, np.float64)
    _, wp = librosa.sequence.dtw(C=cost, step_sizes_sigma=np.array([[1, 1], [1, 0], [0, 1]]),
                                 weights_mul=w)
    wp = wp[::-1]
    if k == 1:
        return wp.astype(np.int64)
    lo, hi = np.full(n, m, np.int64), np.zeros(n, np.int64)
    for ci, cj in wp:  # every fine cell of a coarse path cell, dilated by `radius`
        a, b = ci * k, min(n, (ci + 1) * k)
        lo[a:b] = np.minimum(lo[a:b], max(0, cj * k - radius))
        hi[a:b] = np.maximum(hi[a:b], min(m, (cj + 1) * k + radius))
    lo[0], hi[-1] = 0, m
    lo, hi = np.minimum.accumulate(lo[::-1])[::-1], np.maximum.accumulate(hi)
    f = lambda z: np.ascontiguousarray(z, dtype=np.float64)  # noqa: E731
    return _band_dtw(f(xc), f(xo), f(yc), f(yo), lo, hi, w, float(base), float(onset_weight))


def warp_notes(notes: Notes, wp: np.ndarray, fps: float = FPS) -> Notes:
    """Move notes through a warping path ``wp`` ``(L, 2)`` of (midi frame, audio frame).

    Returns
    -------
    Notes
        Same notes; onsets and offsets mapped by the path (audio frame averaged over each
        MIDI frame, linearly interpolated between frames).
    """
    i, inv = np.unique(wp[:, 0], return_inverse=True)
    j = np.bincount(inv, weights=wp[:, 1]) / np.bincount(inv)
    on = np.interp(notes.onset * fps, i, j) / fps
    off = np.interp(notes.offset * fps, i, j) / fps
    return notes.with_times(on, np.maximum(off, on + 0.02))


def linear_fit(x: np.ndarray, y: np.ndarray, trim: float = 0.1, tol: float = 0.1,
               iters: int = 3) -> tuple[float, float]:
    """Robust ``y ~ a + b x``: least squares on the middle ``1 - 2 trim`` of ``x``, then
    ``iters`` refits on the points within ``max(tol, median residual)`` of the line."""
    order = np.argsort(x, kind="stable")
    n = len(x)
    keep = np.zeros(n, bool)
    keep[order[int(trim * n):max(int((1 - trim) * n), int(trim * n) + 2)]] = True
    b, a = np.polyfit(x[keep], y[keep], 1)
    for _ in range(iters):
        r = np.abs(y - (a + b * x))
        nk = keep & (r <= max(tol, float(np.median(r[keep]))))
        if nk.sum() < 5:
            break
        keep = nk
        b, a = np.polyfit(x[keep], y[keep], 1)
    return float(a), float(b)


def _dtw_once(cqt: np.ndarray, notes: Notes, onset_weight: float, ring: float) -> Notes:
    # The MIDI side spans the audio too, so trailing silence/release maps onto silence,
    # but is not padded beyond the audio: a recording cut off while notes still sound
    # has no silence to match (a 0.5 s pad put the last notes of such excerpts 0.2-0.4 s
    # early; development segments, human-like input: within 100 ms 97.7 -> 99.8 %).
    m = max(int(np.ceil(notes.end_time * FPS)) + 1, len(cqt))
    wp = dtw_path(midi_features(notes, m, ring, sounding_at_start(cqt)), audio_features(cqt),
                  onset_weight=onset_weight)
    return warp_notes(notes, wp)


def align_dtw(cqt: np.ndarray, notes: Notes, onset_weight: float = ONSET_WEIGHT,
              ring: float = 0.7, passes: int = 2) -> Notes:
    """Chroma + DLNCO onset DTW, in ``passes`` passes.

    After the first pass, the input is re-timed by a robust straight-line fit of the
    DTW's onsets against the input's (:func:`linear_fit`: global offset and tempo) and
    aligned again.  With the global offset and tempo change removed, the ends of the
    recording line up and the DTW no longer has to absorb them where the music begins or
    ends: on coarse input most of its errors were there (20 s segments of the
    development set, >150 ms: 4.5 -> 2.1 % of the notes).

    Parameters
    ----------
    cqt : np.ndarray
        ``(T, 88)`` log CQT of the audio (:func:`pianossm.align.features.audio_to_cqt`).
    notes : Notes
        ``N`` unaligned notes.
    onset_weight : float
        Weight of the onset half of the cost.
    ring : float
        Decay time (s) of the MIDI side's notes (see :func:`midi_features`).
    passes : int
        1: a single DTW; 2 (default): re-timed and aligned again.

    Returns
    -------
    Notes
        ``N`` notes at the aligned times.
    """
    if passes not in (1, 2):
        raise PianoSSMError(f"passes must be 1 or 2, got {passes!r}")
    out = _dtw_once(cqt, notes, onset_weight, ring)
    if passes == 1 or len(notes) < 10 or np.ptp(notes.onset) < 1.0:
        return out
    a, b = linear_fit(notes.onset, out.onset)
    if not 0.5 < b < 2.0:
        return out
    on = np.maximum(a + b * notes.onset, 0.0)
    pre = notes.with_times(on, np.maximum(a + b * notes.offset, on + 0.02))
    return _dtw_once(cqt, pre, onset_weight, ring)


def align_mrmsdtw(audio16: np.ndarray, notes: Notes) -> Notes:
    """synctoolbox MrMsDTW with chroma and DLNCO onset features (its reference recipe).

    Parameters
    ----------
    audio16 : np.ndarray
        ``(n,)`` audio at 16 kHz (resampled to synctoolbox's 22.05 kHz here).
    notes : Notes
        ``N`` unaligned notes.

    Returns
    -------
    Notes
        ``N`` notes at the aligned times.
    """
    try:
        import pandas as pd
        from synctoolbox.dtw.mrmsdtw import sync_via_mrmsdtw
        from synctoolbox.dtw.utils import make_path_strictly_monotonic
        from synctoolbox.feature.chroma import pitch_to_chroma, quantize_chroma
        from synctoolbox.feature.csv_tools import df_to_pitch_features, df_to_pitch_onset_features
        from synctoolbox.feature.dlnco import pitch_onset_features_to_DLNCO
        from synctoolbox.feature.pitch import audio_to_pitch_features
        from synctoolbox.feature.pitch_onset import audio_to_pitch_onset_features
    except ImportError as exc:
        raise PianoSSMError(f"method 'mrmsdtw' needs synctoolbox: pip install "
                            f"'pianossm[align]' ({exc})") from None
    import soxr

    rate, fs = 50, 22050
    audio = soxr.resample(audio16, 16000, fs).astype(np.float64)
    with contextlib.redirect_stdout(io.StringIO()):
        f_pitch = audio_to_pitch_features(f_audio=audio, Fs=fs, feature_rate=rate)
        f_chroma = quantize_chroma(pitch_to_chroma(f_pitch))
        f_dlnco = pitch_onset_features_to_DLNCO(
            f_peaks=audio_to_pitch_onset_features(f_audio=audio, Fs=fs), feature_rate=rate,
            feature_sequence_length=f_chroma.shape[1])
    df = pd.DataFrame({"start": notes.onset, "duration": notes.offset - notes.onset,
                       "pitch": notes.pitch, "velocity": notes.velocity / 127.0,
                       "instrument": "piano"})
    s_chroma = quantize_chroma(pitch_to_chroma(df_to_pitch_features(df, feature_rate=rate)))
    s_dlnco = pitch_onset_features_to_DLNCO(
        f_peaks=df_to_pitch_onset_features(df), feature_rate=rate,
        feature_sequence_length=s_chroma.shape[1])
    pad = f_chroma.shape[1] - s_chroma.shape[1]  # score silence up to the audio's end
    if pad > 0:
        s_chroma = np.pad(s_chroma, ((0, 0), (0, pad)))
        s_dlnco = np.pad(s_dlnco, ((0, 0), (0, pad)))
    with contextlib.redirect_stdout(io.StringIO()):  # synctoolbox prints progress dots
        wp = sync_via_mrmsdtw(f_chroma1=s_chroma, f_onset1=s_dlnco, f_chroma2=f_chroma,
                              f_onset2=f_dlnco, input_feature_rate=rate,
                              step_weights=np.array([1.5, 1.5, 2.0]),
                              threshold_rec=10 ** 6, verbose=False)
    wp = make_path_strictly_monotonic(wp).T.astype(np.float64)
    return warp_notes(notes, wp, fps=rate)
