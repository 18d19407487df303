"""Note-level decoding: move every input note to its predicted onset (and offset).

No note is invented or dropped: for each key, the input notes (in time order) are
assigned onset frames inside ``+-search`` of their input onset by a dynamic programme
that maximises the summed onset logits (the CRNN is trained with a softmax over exactly
these windows, so a logit is a log-probability up to a per-note constant), plus a weak
pull towards the input time, while keeping the notes of one key in order and at least
``min_gap`` apart.  The chosen frame is refined to sub-frame precision by a parabola
through the neighbouring logits (optionally first moved to the earliest peak nearly as
high: ``earliest``).  Notes whose window-softmax probability is below
``threshold`` take the local shift of their confident neighbours instead, and so do notes
below ``keep`` whose decoded shift differs from that local shift by more than
``tolerance`` (a weak peak far from where the neighbours say the performance is: on real,
reverberant audio these were the notes moved further away than the input's own error).
Offsets move by the note's onset shift and then snap to a falling edge of the predicted
frame channel when one is near.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from pianossm.align.notes import FPS, LOWEST_KEY, N_KEYS, Notes, local_shift
from pianossm.errors import PianoSSMError

__all__ = ["MIN_GAP", "roll_to_notes"]

#: Smallest onset distance (s) of two notes of one key in a decode.
MIN_GAP = 0.02


@njit(cache=True)
def _assign(logp: np.ndarray, centre: np.ndarray, radius: int, gap: int,
            pull: float) -> np.ndarray:  # pragma: no cover - jitted
    """Order-keeping assignment of K notes (sorted centres) to frames of one key."""
    k, t, w = len(centre), len(logp), 2 * radius + 1
    score = np.full((k, w), -np.inf)
    back = np.zeros((k, w), np.int64)
    for i in range(k):
        for a in range(w):
            f = centre[i] - radius + a
            if f < 0 or f >= t:
                continue
            own = logp[f] - pull * ((f - centre[i]) / radius) ** 2
            if i == 0:
                score[i, a] = own
                continue
            best, arg = -np.inf, -1
            for b in range(w):
                g = centre[i - 1] - radius + b
                if g + gap <= f and score[i - 1, b] > best:
                    best, arg = score[i - 1, b], b
            if arg < 0:  # no room after the previous note: allow the tie, penalised
                for b in range(w):
                    if score[i - 1, b] - 10.0 > best:
                        best, arg = score[i - 1, b] - 10.0, b
            score[i, a] = own + best
            back[i, a] = arg
    out = np.zeros(k, np.int64)
    a = np.argmax(score[k - 1])
    for i in range(k - 1, -1, -1):
        out[i] = centre[i] - radius + a
        a = back[i, a]
    return out


@njit(cache=True)
def _earliest_peaks(logp: np.ndarray, frames: np.ndarray, centre: np.ndarray, radius: int,
                    gap: int, delta: float) -> np.ndarray:  # pragma: no cover - jitted
    """Move each assigned frame to the earliest local peak (a frame above the one before it
    and not below the one after) before it in its window whose logit is at least
    ``logp[frame] - delta`` (notes in time order, kept ``gap`` apart)."""
    out = frames.copy()
    t = len(logp)
    for i in range(len(frames)):
        f = frames[i]
        if f < 0 or f >= t:
            continue
        lo = max(1, centre[i] - radius)  # a peak needs a frame before it
        if i > 0:
            lo = max(lo, out[i - 1] + gap)
        floor = logp[f] - delta
        for p in range(lo, f):
            if logp[p] >= floor and logp[p] > logp[p - 1] and logp[p] >= logp[p + 1]:
                out[i] = p
                break
    return out


def _refine(p: np.ndarray, f: int) -> float:
    """Sub-frame peak position by a parabola through ``p[f-1], p[f], p[f+1]``."""
    if f <= 0 or f >= len(p) - 1:
        return float(f)
    a, b, c = p[f - 1], p[f], p[f + 1]
    den = a - 2 * b + c
    return float(f) if den >= 0 else f + float(np.clip(0.5 * (a - c) / den, -0.5, 0.5))


def _centroid(logit: np.ndarray, f: int) -> float:
    """Sub-frame onset as the probability-weighted mean frame of ``f-1, f, f+1``.

    A CRNN trained on sub-frame (two-frame) onset targets puts ``1 - a`` and ``a`` of the
    window probability on frames ``f`` and ``f + 1`` for an onset at ``f + a``: the local
    mean of its probabilities reads ``a`` back, where a parabola through the logits would
    bend it.
    """
    lo, hi = max(0, f - 1), min(len(logit), f + 2)
    w = np.exp(logit[lo:hi] - logit[lo:hi].max())
    return float(np.dot(np.arange(lo, hi), w) / w.sum())


def _offsets(frame: np.ndarray, key: np.ndarray, on: np.ndarray, off: np.ndarray,
             radius: int, fps: float) -> np.ndarray:
    """Snap expected offsets ``off`` (s) to the nearest falling edge of ``frame`` (T, 88)."""
    active = frame >= 0.5
    out = off.copy()
    for i in range(len(key)):
        e = round(off[i] * fps)
        lo, hi = max(int(on[i] * fps) + 2, e - radius), min(len(frame) - 1, e + radius)
        if hi <= lo:
            continue
        col = active[lo - 1:hi + 1, key[i]]
        falls = np.nonzero(col[:-1] & ~col[1:])[0] + lo
        if len(falls):
            out[i] = falls[np.argmin(np.abs(falls - e))] / fps
    return np.maximum(out, on + 0.02)


def _keep_unsure(before: np.ndarray, after: np.ndarray, prob: np.ndarray,
                 threshold: float, keep: float, tolerance: float) -> np.ndarray:
    """Unsure notes ``(N,)`` take the smooth shift of the confident ones (see module doc).

    With no confident note at all every note stays at its input time.
    """
    conf = prob >= threshold
    if not conf.any():
        return before.copy()
    out = after.copy()
    if conf.all() and keep <= threshold:
        return out
    strong = prob >= max(keep, threshold)
    ref = strong if strong.sum() >= 3 else conf
    shift = local_shift(before[ref], after[ref], before)
    odd = ~conf | (~strong & (np.abs(after - before - shift) > tolerance))
    out[odd] = before[odd] + shift[odd]
    return out


def roll_to_notes(onset_logit: np.ndarray, frame_prob: np.ndarray, notes: Notes,
                  search: float = 0.15, threshold: float = 0.1, min_gap: float = MIN_GAP,
                  pull: float = 0.5, fps: float = FPS, with_confidence: bool = False,
                  keep: float = 0.3, tolerance: float = 0.05, subframe: str = "parabola",
                  earliest: float = 0.0) -> Notes | tuple[Notes, np.ndarray]:
    """Move the unaligned ``notes`` to the onsets predicted in ``onset_prob``.

    Parameters
    ----------
    onset_logit : np.ndarray
        ``(T, 88)`` aligned onset scores (logits; ``log p`` of any onset probability
        works too); frame ``k`` is at ``k / fps`` s.
    frame_prob : np.ndarray
        ``(T, 88)`` aligned frame (key held) probabilities.
    notes : Notes
        ``N`` unaligned notes (their times are the search centres).
    search : float
        Half-width in seconds of the window searched around each input onset.
    threshold : float
        Window-softmax probability below which a note follows its neighbours' shift.
    min_gap : float
        Smallest distance in seconds between two aligned onsets of one key.
    pull : float
        Log-probability penalty at the edge of the window (prefers the input time on ties).
    fps : float
        Frame rate.
    with_confidence : bool
        Also return each note's window-softmax probability ``(N,)``.
    keep : float
        Notes below this probability whose shift differs from their confident
        neighbours' by more than ``tolerance`` (s) follow the neighbours too (0: off).
    tolerance : float
        See ``keep``.
    subframe : str
        Sub-frame refinement of the chosen frame: ``parabola`` (through the logits of the
        neighbouring frames; CRNNs trained on whole-frame targets) or ``centroid`` (the
        local probability-weighted mean frame; CRNNs trained on sub-frame targets).
    earliest : float
        When > 0, each note's chosen frame moves to the earliest local peak before it (in
        its window, after the key's previous note) whose logit is at most ``earliest``
        below the chosen one's: the first arrival of a note's energy is its attack, and in
        a reverberant room the onset posterior has later peaks and a late tail (0: off).

    Returns
    -------
    Notes
        ``N`` notes, same order, pitches and velocities, at the decoded times (and the
        confidences when ``with_confidence``).
    """
    if onset_logit.shape != frame_prob.shape or onset_logit.shape[1:] != (N_KEYS,):
        raise PianoSSMError(f"expected two (T, 88) probability rolls, got "
                            f"{onset_logit.shape} and {frame_prob.shape}")
    if search <= 0 or not 0 <= threshold < 1:
        raise PianoSSMError(f"search must be > 0 and threshold in [0, 1), got "
                            f"{search!r}, {threshold!r}")
    if not earliest >= 0:
        raise PianoSSMError(f"earliest must be >= 0, got {earliest!r}")
    if subframe not in ("parabola", "centroid"):
        raise PianoSSMError(f"subframe must be 'parabola' or 'centroid', got {subframe!r}")
    refine = _refine if subframe == "parabola" else _centroid
    radius, gap = max(1, round(search * fps)), max(1, round(min_gap * fps))
    key = np.clip(notes.pitch - LOWEST_KEY, 0, N_KEYS - 1)
    centre = np.round(notes.onset * fps).astype(np.int64)
    onset, prob = notes.onset.copy(), np.zeros(len(notes))
    logit = np.maximum(onset_logit.astype(np.float64), -50.0)
    t = len(logit)
    for k in np.unique(key):
        idx = np.nonzero(key == k)[0]
        idx = idx[np.argsort(centre[idx], kind="stable")]
        frames = _assign(logit[:, k], centre[idx], radius, gap, pull)
        if earliest > 0:
            frames = _earliest_peaks(logit[:, k], frames, centre[idx], radius, gap, earliest)
        for i, f in zip(idx, frames):
            if 0 <= f < t:
                win = logit[max(0, centre[i] - radius):min(t, centre[i] + radius + 1), k]
                prob[i] = np.exp(logit[f, k] - np.logaddexp.reduce(win))
                onset[i] = refine(logit[:, k], int(f)) / fps
    onset = _keep_unsure(notes.onset, onset, prob, threshold, keep, tolerance)
    onset = np.maximum(onset, 0.0)
    offset = _offsets(frame_prob, key, onset, notes.offset + (onset - notes.onset),
                      radius, fps)
    out = notes.with_times(onset, offset)
    return (out, prob) if with_confidence else out
