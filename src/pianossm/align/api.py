"""One interface for every alignment method, windowed CRNN inference, and file I/O.

Methods: ``dtw`` (chroma + onset-chroma DTW), ``mrmsdtw`` (synctoolbox), ``crnn`` (the
CRNN on the input timing), ``dtw+crnn`` / ``mrmsdtw+crnn`` (DTW first, then the CRNN
refines note by note).  Audio of any length: the CRNN runs on overlapping windows whose
centres are stitched.  The CRNN decodes every note from several starts (the first stage's
output; the input when that was roughly in time, else the input moved by the smooth part
of the first decode's shift; the first stage's output moved by the first decode's
running-median shift), refines each (the CRNN again, its input roll the notes just
decoded, searching +-60 ms) and keeps per note the refinement that a small learnt
selector ranks first (:mod:`pianossm.align.select`; without it, the one with the highest
onset logit), or, where they disagree and none is sure, their mean;
then a half-frame pass (the same on the CQT of the audio 5 ms later, so its frames fall
between the first grid's; each onset is the mean of the two grids' decodes); then notes
that stray from their neighbours' common shift (from the input when it was roughly in
time, else from the DTW's output) are put back on it (:func:`follow_consensus`); when the
input was far out of time, notes it clipped to time 0 are tried at their keys' largest
attacks before the first other note, the CRNN's onset logit picking
(:func:`place_stacked`).  Three networks ship: the first makes the first decodes
(+-150 ms) and the trials at time 0, the second (``refine_model``) the refinements and
the pick between them, the third (``half_model``) the half-frame pass (both +-60 ms around
the first's proposals).  Given several CRNN checkpoints, each aligns the notes so and
their times are averaged.
"""

from __future__ import annotations

import functools
import os
import time
import warnings
from collections.abc import Callable, Sequence

import numpy as np

from pianossm.align.decode import MIN_GAP
from pianossm.align.features import HOP, SAMPLE_RATE, audio_to_cqt, check_audio
from pianossm.align.notes import (
    FPS,
    Notes,
    local_shift,
    midi_to_notes,
    midi_to_piano_roll,
    retime_midi,
    velocity_roll,
)
from pianossm.errors import PianoSSMError

__all__ = ["METHODS", "align_files", "align_notes", "blend_decodes", "check_lengths",
           "follow_consensus", "label_latency", "onset_logits", "pick_decodes",
           "place_stacked", "predict_rolls", "timing_lag"]

METHODS = ("crnn", "dtw", "dtw+crnn", "mrmsdtw", "mrmsdtw+crnn")
WINDOW, OVERLAP = 3000, 250
#: windows per BiGRU batch in :func:`predict_rolls` (bounds memory: about 10 MB a window)
_WINDOW_BATCH = 32
#: ``crnn`` warns when the MIDI is further than this (s) from the audio in most of the
#: 10 s windows of :func:`timing_lag`.
WARN_LAG = 0.1
#: Search half-width (s) of the CRNN's refinement passes (see :func:`align_notes`).
REFINE_SEARCH = 0.06
#: A note whose final shift (from the input roughly in time, or from the DTW's output)
#: differs from the running median of its 9 neighbours' shifts by more than this (s) takes
#: that median shift instead.  0.06 on the development set (10 pieces of the training
#: pianos and rooms, unseen): human-like input, notes beyond 100 ms 5 -> 2 (0.08), within
#: 25 ms 92.1 -> 92.6 %; coarse input (the rule newly applied after the DTW) 49 -> 22,
#: 91.3 -> 91.9 %.
OUTLIER = 0.06
#: ... or, when larger, this many robust standard deviations of every note's departure from
#: its neighbours' shift.  With the per-note jitter of the input at U(+-60 ms) instead of
#: U(+-30 ms) (an input as far out as the issue's real-recording one: 32 % within 25 ms,
#: 62 % within 50 ms) the fixed 60 ms sent correctly aligned notes back to the neighbours'
#: shift: 20 s segments of the development set, within 25 ms 86.4 -> 92.6 %, within 50 ms
#: 90.7 -> 95.7 % (with +-30 ms jitter unchanged, 95.9 %; README, "Wider per-note jitter").
OUTLIER_SIGMAS = 3.0
#: Notes in the running median of the first CRNN decode's shift that moves a far out of time
#: input onto the recording as one more start of the CRNN (:func:`align_notes`; README,
#: "Several starts"): hall excerpts, coarse input, within 25 ms 84.8 -> 85.4 % (51 or 21).
WARP_WIDTH = 51
#: A note whose several decodes (:func:`align_notes`) spread over more than
#: ``BLEND_SPREAD`` (s) while none of them is more confident than ``BLEND_CONF``
#: (window-softmax probability) takes their confidence-weighted mean instead of the most
#: confident one (:func:`blend_decodes`; README, "Uncertain notes take the decodes' mean").
BLEND_SPREAD = 0.02
BLEND_CONF = 0.5
#: Largest rises of its key at which :func:`place_stacked` tries a note the input clipped
#: to time 0 (the CRNN's onset logit picks one).  Chosen on the development sets (coarse
#: input, 386 such notes): within 25 ms 35.5 / 57.0 / 58.3 % with 1 / 8 / 12 trials
#: (hall excerpts: 44.5 / 65.8 / 67.1 %; README, "Notes clipped to time 0").
STACK_TRIALS = 12
#: Frames past the stacked notes' window that the CRNN reads, at least, in
#: :func:`place_stacked`'s trials (it reads the first window of a full pass when that is
#: longer).  The reach of the BiGRU matters: the hall excerpts' stacked notes within 25 ms
#: 64.4 / 67.1 / 71.2 % with 100 / 300 frames / the whole excerpt.
STACK_CONTEXT = 300
#: Default ``earliest`` of :func:`align_notes`: the first CRNN decodes (+-150 ms) take the
#: earliest peak of a note's onset logits at most this far (log-probability) below the one
#: they chose (:func:`pianossm.align.decode.roll_to_notes`; README, "Earliest peak"): in a
#: hall the onset posterior has later peaks and a late tail, and two thirds of the misses
#: were late.  Applied in the +-60 ms refinement and half-frame passes too, it mostly moved
#: onsets by a frame or two (generated sets within 10 ms 89.6 -> 88.2 %); so not there.
EARLIEST = 1.0
#: Seconds of silence after the recording that the CRNN hears by default
#: (:func:`align_notes`).  0: 0.5 s moved the shipped CRNN by nothing on the real MAESTRO
#: clip and the Piano-SSM split, and on the development segments, which end mid-sound, it
#: left 4 more of 25066 notes beyond 100 ms (README, "The end of the recording").
TAIL = 0.0
#: Confidence (:func:`align_notes`, ``with_confidence``) below which ``pianossm align``
#: counts a note as unsure: on the rendered hall excerpts about a quarter of the notes, three
#: quarters of them within 25 ms against 98 % of the others (README, "How sure each note
#: is").
UNSURE = 0.4


def timing_lag(cqt: np.ndarray, notes: Notes, window: int = 1000, max_lag: int = 100,
               near_lag: int = 10, margin: float = 1.3) -> np.ndarray:
    """Lag (s) of the audio behind the MIDI in each 10 s window, by cross-correlation.

    Per key, the rectified rise of the log CQT is correlated with the MIDI's onset roll
    (smoothed over +-20 ms) at lags of up to ``max_lag`` frames; the lag of the summed
    correlation's peak is that window's lag, unless the peak is not ``margin`` times the
    highest correlation within ``near_lag`` frames (then that one's lag).

    Parameters
    ----------
    cqt : np.ndarray
        ``(T, 88)`` log CQT.
    notes : Notes
        The unaligned notes.
    window, max_lag : int
        Frames per window (hop: half of it) and the largest lag searched.

    Returns
    -------
    np.ndarray
        ``(W,)`` lags in seconds of the windows holding at least 5 onsets.
    """
    from pianossm.align.features import cqt_to_onset_strength

    t = len(cqt)
    ons = cqt_to_onset_strength(cqt)
    ons -= ons.mean(axis=0, keepdims=True)
    roll = midi_to_piano_roll(notes, t)[0]
    roll = np.apply_along_axis(np.convolve, 0, roll, np.ones(5, np.float32), mode="same")
    lags = []
    for a in range(0, max(1, t - window // 2), window // 2):
        r = roll[a:a + window]
        if (r > 0).sum() < 25:  # about 5 onsets
            continue
        lo, hi = max(0, a - max_lag), min(t, a + len(r) + max_lag)
        o = ons[lo:hi]
        n = len(o) + len(r)
        spec = np.fft.rfft(o, n, axis=0) * np.conj(np.fft.rfft(r, n, axis=0))
        corr = np.fft.irfft(spec.sum(axis=1), n)  # corr[l] = sum o[t + l] r[t]
        cand = np.arange(-max_lag, max_lag + 1)
        idx = cand + (a - lo)
        ok = (idx >= 0) & (idx < n)
        c, l = corr[idx[ok]], cand[ok]
        best = int(np.argmax(c))
        near = np.abs(l) <= near_lag
        # a peak elsewhere only counts when clearly above the best near lag 0 (repeated
        # patterns of a piece give side peaks of about the same height)
        if c[best] > margin * max(c[near].max(), 1e-9):
            lags.append(l[best] / FPS)
        else:
            lags.append(l[near][np.argmax(c[near])] / FPS)
    return np.array(lags)


@functools.lru_cache(maxsize=4)  # the shipped one and three more
def _model(path: str | None) -> AlignCRNN:  # noqa: F821
    """The CRNN, with ``subframe``: how its onsets are refined below a frame (see
    :func:`pianossm.align.decode.roll_to_notes`; ``centroid`` for sub-frame targets)."""
    import torch

    from pianossm.align.model import fold_batchnorm, load_crnn

    model, payload = load_crnn(path)
    model = fold_batchnorm(model)  # inference only: one pass over each feature map fewer
    # channels-last weights make every convolution take oneDNN's channels-last path, which
    # skips the layout reorders around each call: the same logits bit for bit, the
    # convolutional features about 20 % faster on a CPU thread (README, "Speed")
    model = model.to(memory_format=torch.channels_last)
    soft = bool((payload.get("train_config") or {}).get("soft_onsets", False))
    model.subframe = "centroid" if soft else "parabola"
    # seconds from its training labels to the sound they label (README, "Labels at the
    # sound"): 0 for networks trained on labels at the sound
    model.label_latency = float(payload.get("label_latency", 0.0))
    return model


def label_latency(model: str | os.PathLike[str] | None = None) -> float:
    """Seconds from a CRNN checkpoint's training labels to the sound they label (0 for
    labels at the sound; the shipped network's: its FluidSynth renders' note-on delay).

    Parameters
    ----------
    model : str or PathLike, optional
        The checkpoint (default: the shipped one).

    Returns
    -------
    float
        Seconds; :func:`align_notes` adds it to the network's outputs.
    """
    from pianossm.align.model import default_crnn_path

    return _model(default_crnn_path() if model is None else os.fspath(model)).label_latency


def predict_rolls(model: AlignCRNN, cqt: np.ndarray, notes: Notes,  # noqa: F821
                  window: int = WINDOW, overlap: int = OVERLAP,
                  plain: np.ndarray | None = None) -> np.ndarray:
    """Aligned onset/frame probabilities from the CQT and the unaligned notes.

    Parameters
    ----------
    model : AlignCRNN
        In eval mode.
    cqt : np.ndarray
        ``(T, 88)`` log CQT.
    notes : Notes
        Unaligned notes (those beyond the audio are ignored).
    window, overlap : int
        Frames per window and frames discarded at each inner window edge.
    plain : np.ndarray, optional
        ``(T, 88)`` log CQT of the recording itself, for a network that reads it beside
        ``cqt`` (:attr:`~pianossm.align.model.CRNNConfig.plain_cqt`; required there).

    Returns
    -------
    np.ndarray
        ``(2, T, 88)`` float32: onset logits (trained as a softmax over each note's
        search window) and frame probabilities.
    """
    import torch

    t = len(cqt)
    parts = [cqt[None], midi_to_piano_roll(notes, t)]
    if model.config.velocity:
        parts.append(velocity_roll(notes, t)[None])
    if model.config.plain_cqt:
        if plain is None or plain.shape != cqt.shape:
            raise PianoSSMError(f"this CRNN reads the recording's own CQT beside the WPE "
                                f"one: expected one of shape {cqt.shape}, got "
                                f"{None if plain is None else plain.shape}")
        parts.append(plain[None].astype(cqt.dtype, copy=False))
    x = np.concatenate(parts)  # (C_in, T, 88)
    out = np.zeros((2, t, x.shape[2]), np.float32)
    hop = window - 2 * overlap
    spans = [(start, max(0, start - overlap), min(t, start + hop + overlap))
             for start in range(0, t, hop)]
    # The convolutions run once over the whole input (the windows' overlaps share them),
    # and windows of equal length go through the BiGRU as one batch (it steps through time
    # one frame at a time, so a batch costs far less than its windows one by one;
    # AlignCRNN.forward_spans)
    groups: dict[int, list[tuple[int, int, int]]] = {}
    for span in spans:
        groups.setdefault(span[2] - span[1], []).append(span)
    with torch.inference_mode():
        xt = torch.from_numpy(x)[None]
        feats = model.sequence_features(xt, window)
        for group in groups.values():
            for i in range(0, len(group), _WINDOW_BATCH):
                part = group[i:i + _WINDOW_BATCH]
                y = model.forward_spans(xt, [(a, b) for _, a, b in part], features=feats)
                y = torch.stack([y[:, 0], torch.sigmoid(y[:, 1])], dim=1).numpy()
                for (start, a, _), yw in zip(part, y):  # yw: (2, b - a, 88)
                    keep_to = min(t, start + hop)
                    out[:, start:keep_to] = yw[:, start - a:keep_to - a]
    return out


def _half_frame_pass(net: AlignCRNN, cqt_half: np.ndarray,  # noqa: F821
                     notes: Notes, search: float, subframe: str,
                     plain_half: np.ndarray | None = None) -> Notes:
    """Average each note's onset and offset with a decode on the half-frame-later grid.

    Parameters
    ----------
    net : AlignCRNN
        The CRNN.
    cqt_half : np.ndarray
        ``(T, 88)`` CQT of the audio half a frame later (:func:`_half_frame_cqt`).
    notes : Notes
        ``N`` notes as decoded on the first grid.
    search : float
        Half-width of the search window, seconds.
    subframe : str
        Sub-frame refinement (see :func:`pianossm.align.decode.roll_to_notes`).
    plain_half : np.ndarray, optional
        ``(T, 88)`` CQT of the recording itself half a frame later (a network reading
        it: :func:`predict_rolls`).

    Returns
    -------
    Notes
        ``N`` notes; those within half a frame of time 0 keep the first grid's times.
    """
    from pianossm.align.decode import roll_to_notes

    dt = (HOP // 2) / SAMPLE_RATE
    moved = notes.with_times(notes.onset - dt, notes.offset - dt)
    rolls = predict_rolls(net, cqt_half, moved, plain=plain_half)
    alt = roll_to_notes(rolls[0], rolls[1], moved, search=search, subframe=subframe)
    ok = notes.onset >= dt
    return notes.with_times(np.where(ok, 0.5 * (notes.onset + alt.onset + dt), notes.onset),
                            np.where(ok, 0.5 * (notes.offset + alt.offset + dt), notes.offset))


def check_lengths(audio_s: float, notes: Notes, name: str = "audio") -> None:
    """Refuse audio much shorter than the MIDI (it cannot hold the performance)."""
    span = float(notes.onset.max())
    if audio_s < 0.5 * span - 1.0:
        raise PianoSSMError(f"{name} lasts {audio_s:.1f} s but the MIDI's notes span "
                            f"{span:.1f} s; is it the right recording?")


def align_notes(audio16: np.ndarray, notes: Notes, method: str = "dtw+crnn",
                model: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
                search: float = 0.15, cqt: np.ndarray | None = None, refine: int = 1,
                half_frame: bool = True, wpe: bool = True,
                earliest: float | None = None, tail: float | None = None,
                refine_model: str | os.PathLike[str] | None = None,
                half_model: str | os.PathLike[str] | None = None,
                selector: str | os.PathLike[str] | bool | None = None,
                with_confidence: bool = False) -> Notes | tuple[Notes, np.ndarray]:
    """Align notes to 16 kHz audio with one of :data:`METHODS`.

    Parameters
    ----------
    audio16 : np.ndarray
        ``(n,)`` audio at 16 kHz (see :func:`pianossm.align.features.check_audio`).
    notes : Notes
        ``N`` roughly timed notes.
    method : str
        One of :data:`METHODS`.
    model : str, PathLike or sequence of them, optional
        CRNN checkpoint path, or several whose aligned times are averaged (default: the
        shipped one, :func:`pianossm.align.model.default_crnn_paths`).
    search : float
        CRNN decoding window half-width, seconds.
    cqt : np.ndarray, optional
        ``(T, 88)`` precomputed :func:`audio_to_cqt` of ``audio16`` (what the DTW stage
        reads, the CRNN with ``wpe=False``, and a CRNN's plain-CQT channel).
    refine : int
        CRNN methods: passes whose input roll is the previous pass's notes, searching
        +-:data:`REFINE_SEARCH` (the CRNN places onsets more sharply when its input is
        closer to the audio); the first refines each start's decode, and per note the
        refinement with the highest onset logit is kept (0: the first decode with the
        highest).  (The logit, not the window probability: README, "Picking by onset
        logit".)
    half_frame : bool
        CRNN methods: decode once more on a CQT whose frames sit half a frame (5 ms) later
        and average the two onsets (and offsets) of each note: two grids sample the onset
        curve twice as densely as one, which the parabola's sub-frame refinement alone does
        not replace (README, "Half-frame pass").  Costs one more CQT and CRNN pass.
    wpe : bool
        CRNN methods: the CRNN reads the CQT of the audio's WPE linear-prediction error
        (:func:`pianossm.align.wpe.wpe_filter`: the sustain of ringing notes and the
        room's reverberation fall 15-25 dB below the attacks, so a key struck again
        while it rings stands out; README, "WPE filtering"); the DTW stage reads the
        recording as it is.  About 3 s more for a 5-minute recording.
    earliest : float, optional
        CRNN methods: the first decodes (searching +-``search``) move a note to the
        earliest peak of its onset logits at most this far below the peak they chose
        (log-probability; 0: the chosen peak; default :data:`EARLIEST`; see
        :func:`pianossm.align.decode.roll_to_notes`).  The refinement and half-frame
        passes keep the peak they find.
    tail : float, optional
        CRNN methods: seconds of silence the CRNN hears after the recording (default
        :data:`TAIL`, 0: none); the WPE error is followed by true silence, the recording's
        own CQT by silent frames.
    refine_model : str or PathLike, optional
        CRNN methods: the checkpoint that decodes the refinement passes (the pick between
        them by its own onset logits included), +-60 ms around where ``model`` put the
        notes; ``model`` makes the first decodes (+-``search``).  Default: with ``model``
        left out, the shipped one (:func:`pianossm.align.model.default_refine_path`;
        README, "Other networks for the refinements"); with ``model`` given, ``model``
        itself.  Its label latency must be ``model``'s.
    half_model : str or PathLike, optional
        CRNN methods: the checkpoint of the half-frame pass (each onset the mean of the
        refined one and this network's decode on the half-frame grid, +-60 ms).  Default
        as for ``refine_model`` (:func:`pianossm.align.model.default_half_path`).
    selector : str, PathLike or bool, optional
        CRNN methods: a :class:`~pianossm.align.select.DecodeSelector` file whose scores
        pick between each note's refined decodes instead of their onset logits.  Default:
        with ``model`` left out, the shipped one
        (:func:`pianossm.align.select.default_selector_path`, trained on the shipped
        networks' decodes; README, "A learnt choice between the decodes"); with ``model``
        given, none.  ``True``: the shipped one; ``False``: none (the onset logits pick).
    with_confidence : bool
        Also return each note's confidence: the CRNN's window probability of the decode
        kept for it (its softmax over the note's search window; with several ``model``
        their mean), 0 where a later step overruled the decodes (the consensus step, or
        the trials of notes the input clipped to time 0), NaN for the DTW methods.  On
        rendered halls, notes below 0.4 are about a quarter of all and hold most of the
        misses (README, "How sure each note is").

    Returns
    -------
    Notes
        ``N`` notes, same order, at the aligned times.
    np.ndarray
        ``(N,)`` confidences in [0, 1] (NaN for the DTW methods), with ``with_confidence``
        only.
    """
    from pianossm.align.dtw import align_dtw, align_mrmsdtw
    from pianossm.align.model import default_crnn_paths, default_half_path, default_refine_path

    if method not in METHODS:
        raise PianoSSMError(f"unknown alignment method {method!r}; allowed: {list(METHODS)}")
    if len(notes) == 0:
        raise PianoSSMError("no notes to align")
    if refine < 0:
        raise PianoSSMError(f"refine must be >= 0, got {refine!r}")
    earliest = EARLIEST if earliest is None else float(earliest)
    tail = TAIL if tail is None else float(tail)
    if not 0 <= tail <= 60:
        raise PianoSSMError(f"tail must be 0-60 s of silence, got {tail!r}")
    if not earliest >= 0:
        raise PianoSSMError(f"earliest must be >= 0, got {earliest!r}")
    # the networks of the refinement and half-frame passes: given, else the shipped ones
    # when `model` is the shipped one too, else `model` itself (None)
    pass_paths = [os.fspath(given) if given is not None else shipped() if model is None else None
                  for given, shipped in ((refine_model, default_refine_path),
                                         (half_model, default_half_path))]
    if model is None:
        paths = list(default_crnn_paths())
    elif isinstance(model, (str, os.PathLike)):
        paths = [os.fspath(model)]
    else:
        paths = [os.fspath(m) for m in model]
        if not paths:
            raise PianoSSMError("no CRNN checkpoint given (an empty list of models)")
    check_lengths(len(audio16) / SAMPLE_RATE, notes)
    # every checkpoint is loaded (and a bad one refused) before any work
    nets = [_model(p) for p in paths] if "crnn" in method else []
    refiner, halver = (_model(p) if nets and p is not None else None for p in pass_paths)
    others = [(p, m) for p, m in zip(pass_paths, (refiner, halver)) if m is not None]
    for net, (path, other) in ((n, o) for n in nets for o in others):
        if abs(other.label_latency - net.label_latency) > 1e-6:
            raise PianoSSMError(
                f"the CRNN {path!r} places notes {1000 * other.label_latency:.2f} ms before "
                f"their sound, the first network {1000 * net.label_latency:.2f} ms: their "
                f"label latencies must agree")
    if selector is True or (selector is None and model is None):
        from pianossm.align.select import default_selector_path

        selector = default_selector_path()
    if selector is not None and selector is not False and "crnn" in method:
        from pianossm.align.select import load_selector

        selector = load_selector(selector)
    else:
        selector = None
    first, rough = method.split("+")[0], notes
    plain = any(net.config.plain_cqt for net in [*nets, *(m for _, m in others)])
    if first == "dtw" or ("crnn" in method and (plain or not wpe)):  # the recording's CQT
        cqt = audio_to_cqt(audio16, SAMPLE_RATE) if cqt is None else cqt
    if first == "dtw":
        notes = align_dtw(cqt, notes)
    elif first == "mrmsdtw":
        notes = align_mrmsdtw(audio16, notes)
    if "crnn" not in method:
        return (notes, np.full(len(notes), np.nan)) if with_confidence else notes
    # The CRNN hears the recording followed by `tail` s of silence (when asked), so that its
    # last notes can sound and fade instead of being cut off by the input's end (README,
    # "The end of the recording").  The silence goes after the WPE filter: in the filter's
    # fit a silent frame weighs 1 / its power, so silence before it would change the filter
    # over the whole recording.  The recording's own CQT (given or not) is followed by
    # silent frames, so that a given CQT changes nothing.
    pad = np.zeros(round(tail * SAMPLE_RATE), np.float32)
    raw, raw_cqt = audio16, cqt
    if wpe:  # the CRNN hears the prediction error; the DTW stage heard the recording
        from pianossm.align.wpe import wpe_filter

        audio16 = np.concatenate([wpe_filter(audio16), pad])
        cqt = audio_to_cqt(audio16, SAMPLE_RATE)
    need = int(np.ceil(max(notes.end_time, rough.end_time) * FPS)) + 10
    cqt = _pad_frames(cqt, max(need, 1 + (len(raw) + len(pad)) // HOP))  # then silence
    # a network reading the recording's own CQT beside the WPE one gets it on the same grid
    raw_cqt = _pad_frames(raw_cqt, len(cqt))[:len(cqt)] if plain else None
    if method == "crnn":
        # most windows must agree: the lower median (with two windows, both; one window of
        # ringing hall audio, its cross-correlation misled, made a false warning)
        lag = np.sort(np.abs(timing_lag(cqt, notes)))
        typical = float(lag[(len(lag) - 1) // 2]) if len(lag) else 0.0
        if typical > WARN_LAG:
            warnings.warn(f"the MIDI looks about {1000 * typical:.0f} ms out of "
                          f"time with the audio; 'crnn' only searches +-{1000 * search:.0f} ms "
                          f"around each note: use 'dtw+crnn'", stacklevel=2)
    cqt_half = _half_frame_cqt(audio16, len(cqt)) if half_frame else None
    raw_half = _half_frame_cqt(raw, len(cqt)) if half_frame and plain else None
    outs, sure, at = [], [], lambda n, d: n.with_times(n.onset + d, n.offset + d)
    for net in nets:
        # the network works in its labels' times: a network trained on note-on labels of
        # renders that sound `lat` later places each note `lat` before its sound, so it
        # reads the notes `lat` earlier and its output moves `lat` later (README, "Labels
        # at the sound")
        lat = getattr(net, "label_latency", 0.0)
        out, c = _crnn_align(net, cqt, cqt_half, at(notes, -lat), at(rough, -lat), method,
                             search, refine, earliest, raw_cqt, raw_half, origin=-lat,
                             refiner=refiner, halver=halver, selector=selector)
        outs.append(at(out, lat))
        sure.append(c)
    # an ensemble: each checkpoint's alignment (its consensus step included), averaged
    out = outs[0] if len(outs) == 1 else outs[0].with_times(
        np.mean([o.onset for o in outs], axis=0), np.mean([o.offset for o in outs], axis=0))
    return (out, np.mean(sure, axis=0)) if with_confidence else out


def _half_frame_cqt(audio16: np.ndarray, t: int) -> np.ndarray:
    """``(t, 88)`` CQT of the audio half a frame later: frame ``k`` at ``k / FPS + HOP / 2``
    samples (cut or zero-padded to ``t`` frames)."""
    return _pad_frames(audio_to_cqt(audio16[HOP // 2:], SAMPLE_RATE)[:t], t)


def _pad_frames(cqt: np.ndarray, t: int) -> np.ndarray:
    """``(T, 88)`` features followed by zero (silent) frames up to ``max(T, t)`` frames."""
    if t <= len(cqt):
        return cqt
    return np.concatenate([cqt, np.zeros((t - len(cqt), cqt.shape[1]), cqt.dtype)])


def _crnn_align(net: AlignCRNN, cqt: np.ndarray, cqt_half: np.ndarray | None,  # noqa: F821
                notes: Notes, rough: Notes, method: str, search: float,
                refine: int, earliest: float = 0.0, plain: np.ndarray | None = None,
                plain_half: np.ndarray | None = None, origin: float = 0.0,
                refiner: AlignCRNN | None = None,  # noqa: F821
                halver: AlignCRNN | None = None,  # noqa: F821
                selector: DecodeSelector | None = None,  # noqa: F821
                ) -> tuple[Notes, np.ndarray]:
    """One CRNN's decode of ``notes`` (the first stage's output; ``rough`` the input).

    Parameters
    ----------
    net : AlignCRNN
        The CRNN (with its ``subframe`` refinement).
    cqt : np.ndarray
        ``(T, 88)`` CQT.
    cqt_half : np.ndarray or None
        ``(T, 88)`` CQT half a frame later (:func:`_half_frame_cqt`), or None: no
        half-frame pass.
    notes, rough : Notes
        ``N`` notes after the first stage, and as given.
    method : str
        The alignment method (``crnn`` or ``...+crnn``).
    search : float
        Search half-width, seconds.
    refine : int
        Refinement passes.
    earliest : float
        Earliest-peak tolerance of the first decodes (see :func:`align_notes`).
    plain, plain_half : np.ndarray, optional
        ``(T, 88)`` CQTs of the recording itself on the two grids (a network reading it:
        :func:`predict_rolls`).
    origin : float
        Where the input's time 0 is in the notes' times (they are the network's: minus
        its label latency), for :func:`place_stacked`.
    refiner, halver : AlignCRNN, optional
        The networks of the refinement passes and of the half-frame pass (default:
        ``net``).
    selector : DecodeSelector, optional
        Scores the refined decodes for the pick (default: their onset logits).

    Returns
    -------
    Notes
        ``N`` aligned notes.
    np.ndarray
        ``(N,)`` their confidences (see :func:`align_notes`, ``with_confidence``).
    """
    from pianossm.align.decode import roll_to_notes

    refiner = net if refiner is None else refiner
    halver = net if halver is None else halver

    def decode(start: Notes, width: float, peak: float = 0.0, frames: int | None = None,
               by: AlignCRNN = net,  # noqa: F821
               ) -> tuple[Notes, np.ndarray, np.ndarray, np.ndarray]:
        # the decoded notes, their window probabilities and their onset logits (on the
        # recording's first `frames` frames only, when given), by network `by`, and its
        # (T, 88) onset logits
        rolls = predict_rolls(by, cqt[:frames], start,
                              plain=None if plain is None else plain[:frames])
        got, prob = roll_to_notes(rolls[0], rolls[1], start, search=width,
                                  with_confidence=True,
                                  subframe=getattr(by, "subframe", "parabola"), earliest=peak)
        return got, prob, onset_logits(rolls[0], got), rolls[0]

    first = decode(notes, search, earliest)
    starts = [first]
    in_time = method == "crnn" or np.median(np.abs(notes.onset - rough.onset)) <= search
    if method != "crnn" and in_time:
        # The input was already roughly in time: DTW can still misplace sparse passages by
        # more than the CRNN's search window (seen on the madmom sample), so each note also
        # gets a CRNN decode from its input time.
        starts.append(decode(rough, search, earliest))
    elif not in_time:
        # Far out of time: the input moved by the smooth part of the first decode's shift
        # (running median over WARP_WIDTH notes) keeps the input's own note-to-note timing
        # without its offset and tempo change, or the DTW's local errors
        warp = local_shift(rough.onset, first[0].onset, rough.onset, WARP_WIDTH)
        starts.append(decode(rough.with_times(rough.onset + warp, rough.offset + warp),
                             search, earliest))
    # ... and one from where its neighbours say the performance is: the first decode's
    # running-median shift (over 9 notes) applied to the first stage's output
    shift = local_shift(notes.onset, first[0].onset, notes.onset, 9)
    starts.append(decode(notes.with_times(notes.onset + shift, notes.offset + shift),
                         search, earliest))
    # the first decodes' onsets and window probabilities (for the selector; their rolls
    # are not kept)
    first_onsets = np.stack([o.onset for o, *_ in starts])
    first_conf = np.stack([s[1] for s in starts])
    if refine:
        # each start refined once (+-REFINE_SEARCH): the CRNN places onsets more sharply
        # when its input is closer, so the logits compared are the sharper ones (all the
        # refiner's: one network's logits are compared)
        starts = [decode(o, min(search, REFINE_SEARCH), by=refiner) for o, *_ in starts]
    # per note the decode with the highest onset logit (or the selector's score), the
    # notes of one key kept apart (each decode keeps them so, but two decodes' picks can
    # put two notes on one attack)
    onsets, conf = np.stack([o.onset for o, *_ in starts]), np.stack([s[1] for s in starts])
    pick = _pick(onsets, conf, np.stack([s[2] for s in starts]), first_onsets, first_conf,
                 rough, notes, in_time, selector,
                 np.stack([[onset_logits(r, o) for o, *_ in starts] for *_, r in starts]))
    n = np.arange(len(rough))
    # ... or, where the decodes disagree and none is sure, their confidence-weighted mean
    onset = blend_decodes(onsets, conf, pick, rough.pitch)
    offset = np.stack([o.offset for o, *_ in starts])[pick, n] + (onset - onsets[pick, n])
    out = starts[0][0].with_times(onset, offset)  # (each duration kept)
    # each note's confidence: its kept decode's window probability (a blended note's
    # decodes are all at most BLEND_CONF: their largest)
    sure = np.where(onset == onsets[pick, n], conf[pick, n], conf.max(axis=0))
    for _ in range(refine - 1):
        out, sure = decode(out, min(search, REFINE_SEARCH), by=refiner)[:2]
    if cqt_half is not None:
        out = _half_frame_pass(halver, cqt_half, out, min(search, REFINE_SEARCH),
                               getattr(halver, "subframe", "parabola"), plain_half)
    # neighbouring notes share their timing error (offset, tempo drift), in the input and in
    # the DTW's output alike: a note that strays from its neighbours' common shift is put
    # back on it (relative to the input when that was roughly in time, else to the DTW)
    before, out = out, follow_consensus(rough if in_time else notes, out)
    sure = np.where(out.onset == before.onset, sure, 0.0)  # overruled: no decode's time
    if in_time:
        return out, sure
    # far out of time, the input's first notes may have been clipped to time 0

    def probe(start: Notes, frames: int) -> tuple[np.ndarray, np.ndarray]:
        # a decode (+-REFINE_SEARCH) on the recording's first frames only:
        # place_stacked tries its notes there several times.  The first window of a
        # full pass (predict_rolls: it keeps frames up to WINDOW - 2 OVERLAP of it), so
        # those frames decode as in a full pass, or STACK_CONTEXT frames past `frames`
        got, _, logit, _ = decode(start, min(search, REFINE_SEARCH), frames=min(
            len(cqt), max(frames + STACK_CONTEXT, WINDOW - OVERLAP)))
        return got.onset, logit

    before, out = out, place_stacked(cqt, rough, out, probe, origin=origin)
    return out, np.where(out.onset == before.onset, sure, 0.0)


def place_stacked(cqt: np.ndarray, rough: Notes, out: Notes,
                  probe: Callable[[Notes, int], tuple[np.ndarray, np.ndarray]] | None = None,
                  trials: int = STACK_TRIALS, origin: float = 0.0) -> Notes:
    """Notes the input stacks at time 0, placed on their keys' attacks before the others.

    A MIDI file moved earlier than its recording (a negative offset) has its first notes
    clipped to time 0: their own timing is lost, the DTW puts them together near the
    first note that was not clipped, up to a second from where they sound, and the CRNN,
    which searches +-0.15 s around where it is told to look, cannot reach them.  They
    sound between 0 and that note's aligned onset (50 ms more allowed), so the candidates
    of each are its key's attacks there: the local maxima of the rise of the key's CQT bin
    from one frame to the next, largest first.

    Without ``probe`` each goes to its key's largest rise (a key with several stacked
    notes takes that many attacks at least 20 ms apart, in time order; a key with fewer
    attacks than notes is left as it was) unless it already sits on an attack of its key
    at least half as large (a loud chord lifts the bins of keys it does not hold, and the
    DTW often has the last stacked notes right).  With ``probe`` (the CRNN) a key's only
    stacked note is tried at each of its ``trials`` largest rises: trial ``j`` places
    every such note at its key's ``j``-th rise, the CRNN decodes them from there, and each
    note keeps the trial whose decoded onset has the highest onset logit (the largest rise
    is the attack for only about a quarter of these notes in a hall: the ringing of
    earlier notes and other keys' harmonics rise too; README, "Notes clipped to time
    0").  Keys with several stacked notes take the placement without ``probe``, then the
    CRNN's decode from there.

    Parameters
    ----------
    cqt : np.ndarray
        ``(T, 88)`` CQT the notes were aligned on.
    rough, out : Notes
        ``N`` notes as given and as aligned.
    probe : callable, optional
        ``(notes, frames) -> (onsets, logits)``: the ``(N,)`` onsets (s) of a decode of
        ``notes`` from the given times and the ``(N,)`` onset logits there, needed only
        for notes within the first ``frames`` frames (None: the attacks as found).
    trials : int
        Largest rises tried per note with ``probe``.
    origin : float
        The time the input's clipped notes sit at (its time 0, in the times of ``rough``
        and ``out``).

    Returns
    -------
    Notes
        ``out`` with the stacked notes' onsets (and offsets, by the same shift) replaced;
        ``out`` itself when the input stacks nothing at 0 or the first other note is
        within 0.15 s of it.
    """
    from scipy.signal import find_peaks

    from pianossm.align.notes import FPS, LOWEST_KEY

    if trials < 1:
        raise PianoSSMError(f"trials must be >= 1, got {trials!r}")
    stack = rough.onset <= origin + 1e-9
    if not stack.any() or stack.all():
        return out
    hi = float(out.onset[~stack].min())  # they sound before the first other note
    if hi <= 0.15:
        return out  # within the CRNN's reach
    top = min(len(cqt), int(np.ceil(hi * FPS)) + 6)  # up to 50 ms past it
    rise = np.maximum(np.diff(cqt[:top], axis=0, prepend=cqt[:1]), 0.0)  # (top, 88)
    gap = max(1, round(MIN_GAP * FPS))
    onset, idx = out.onset.copy(), np.nonzero(stack)[0]
    moved = lambda t: out.with_times(t, out.offset + (t - out.onset))  # durations kept
    tries: dict[int, np.ndarray] = {}  # note -> its candidate frames, largest rise first
    for k in np.unique(rough.pitch[idx]):
        mine = idx[rough.pitch[idx] == k]
        r = rise[:, int(np.clip(k - LOWEST_KEY, 0, cqt.shape[1] - 1))]
        # local maxima above 0, the larger kept first where two are closer than the gap (a
        # zero appended: the last frame may be one)
        peaks = find_peaks(np.append(r, 0.0), height=np.finfo(r.dtype).tiny, distance=gap)[0]
        ranked = peaks[np.argsort(-r[peaks], kind="stable")]
        if probe is not None and len(mine) == 1 and len(ranked):
            tries[int(mine[0])] = ranked[:trials]
            continue
        chosen = ranked[:len(mine)]
        if len(chosen) < len(mine):
            continue
        # a note already on an attack of its key (one at least half the largest rise) stays:
        # a loud chord's attack also lifts the bins of keys it does not hold
        mine = mine[np.argsort(out.onset[mine], kind="stable")]
        now = np.clip(np.round(out.onset[mine] * FPS).astype(np.int64), 0, top - 1)
        near = np.array([r[max(0, f - 2):f + 3].max() for f in now])
        found = np.sort(chosen)
        new = np.where(near >= 0.5 * r[found], out.onset[mine], found / FPS)
        if np.all(np.diff(np.sort(new)) >= MIN_GAP - 1e-9):
            onset[mine] = new
    if probe is None:
        return moved(onset)
    best = np.full(len(out), -np.inf)
    placed = onset.copy()
    for j in range(max([len(c) for c in tries.values()], default=1)):
        start = placed.copy()
        for i, cand in tries.items():
            start[i] = cand[min(j, len(cand) - 1)] / FPS
        got, logit = probe(moved(start), top)
        for i in idx:
            if i in tries and j >= len(tries[i]):
                continue  # (fewer attacks than trials)
            if i not in tries and j > 0:
                continue  # the other stacked notes start the same in every trial
            if logit[i] > best[i]:
                best[i], onset[i] = logit[i], got[i]
    return moved(onset)


def _pick(onsets: np.ndarray, conf: np.ndarray, logit: np.ndarray,
          first_onsets: np.ndarray, first_conf: np.ndarray, rough: Notes, start: Notes,
          in_time: bool, selector: DecodeSelector | None,  # noqa: F821
          cross: np.ndarray | None = None) -> np.ndarray:
    """``(N,)`` decode picked per note from ``(S, N)`` refined decodes: by onset logit, or
    by a :class:`~pianossm.align.select.DecodeSelector`'s scores (:func:`pick_decodes`
    keeps the notes of one key apart either way).  ``cross``: ``(S, S, N)`` decode ``r``'s
    onset logits at decode ``s``'s onsets (default: ``logit`` on the diagonal only).  The
    selector was trained on the three starts of ``dtw+crnn`` (``crnn`` alone makes two):
    with another number of decodes the onset logits pick."""
    if selector is None or len(onsets) != 3:
        return pick_decodes(onsets, logit, rough.pitch)
    from pianossm.align.select import decode_features

    by_logit = pick_decodes(onsets, logit, rough.pitch)
    feats = decode_features(onsets, conf, logit, first_onsets, first_conf, rough, start,
                            in_time, by_logit, cross)
    return pick_decodes(onsets, selector.scores(feats), rough.pitch)


def onset_logits(logits: np.ndarray, notes: Notes) -> np.ndarray:
    """Each note's onset logit at its onset frame.

    Parameters
    ----------
    logits : np.ndarray
        ``(T, 88)`` onset logits (:func:`predict_rolls`).
    notes : Notes
        ``N`` notes (onsets outside the roll read its first or last frame).

    Returns
    -------
    np.ndarray
        ``(N,)`` logits.
    """
    from pianossm.align.notes import LOWEST_KEY, N_KEYS

    frame = np.clip(np.round(notes.onset * FPS).astype(np.int64), 0, len(logits) - 1)
    return logits[frame, np.clip(notes.pitch - LOWEST_KEY, 0, N_KEYS - 1)]


def pick_decodes(onsets: np.ndarray, conf: np.ndarray, pitch: np.ndarray,
                 min_gap: float = MIN_GAP) -> np.ndarray:
    """Per note, the highest-scoring of several decodes, the notes of one key kept apart.

    Each decode keeps the notes of a key in order and ``min_gap`` apart
    (:func:`pianossm.align.decode.roll_to_notes`), but picking per note across decodes
    can put two of them on one attack: a re-struck key's second note on the first's
    onset.  Where the per-note picks of a key collide, that key's picks are chosen
    jointly instead, by a dynamic programme over its notes in the order of their
    per-note picks that maximises the summed score with consecutive onsets at least
    ``min_gap`` apart (a collision it cannot avoid costs 10, as in the decoder).  Keys
    without a collision keep their per-note picks, ties going to the earlier decode.

    Parameters
    ----------
    onsets, conf : np.ndarray
        ``(S, N)`` onsets (s) and scores of ``N`` notes in ``S`` decodes (the aligner's:
        the onset logits there, :func:`onset_logits`).
    pitch : np.ndarray
        ``(N,)`` MIDI pitches.
    min_gap : float
        Smallest onset distance (s) of two notes of one key.

    Returns
    -------
    np.ndarray
        ``(N,)`` int index of the decode chosen for each note.
    """
    pick = np.argmax(conf, axis=0)
    for k in np.unique(pitch):
        idx = np.nonzero(pitch == k)[0]
        if len(idx) < 2:
            continue
        idx = idx[np.argsort(onsets[pick[idx], idx], kind="stable")]
        t, c = onsets[:, idx], conf[:, idx]
        if np.all(np.diff(t[pick[idx], np.arange(len(idx))]) >= min_gap - 1e-9):
            continue
        # a few notes per key and a handful of decodes: plain loops are cheap enough
        score, back = c[:, 0].astype(np.float64), np.zeros((len(idx), len(t)), np.int64)
        for i in range(1, len(idx)):
            new = np.empty(len(t))
            for a in range(len(t)):
                prev = np.where(t[:, i - 1] + min_gap <= t[a, i] + 1e-9, score, score - 10.0)
                back[i, a] = int(np.argmax(prev))
                new[a] = c[a, i] + prev[back[i, a]]
            score = new
        a = int(np.argmax(score))
        for i in range(len(idx) - 1, -1, -1):
            pick[idx[i]] = a
            a = back[i, a]
    return pick


def blend_decodes(onsets: np.ndarray, conf: np.ndarray, pick: np.ndarray,
                  pitch: np.ndarray, spread: float = BLEND_SPREAD, below: float = BLEND_CONF,
                  min_gap: float = MIN_GAP) -> np.ndarray:
    """Per note the picked decode's onset, or the decodes' mean where none is sure.

    Each decode leans towards the time it started from when the recording hides the
    attack (a soft note in a room: the misses keep the sign of their start's error), and
    the starts' errors differ, so where a note's decodes spread over more than
    ``spread`` and none has a confidence above ``below``, the confidence-weighted mean of
    its decodes is nearer the attack, on average, than the most confident one.  A mean
    that would come within ``min_gap`` of another note of its key keeps the pick.

    Parameters
    ----------
    onsets, conf : np.ndarray
        ``(S, N)`` onsets (s) and confidences (window-softmax probabilities) of ``N``
        notes in ``S`` decodes.
    pick : np.ndarray
        ``(N,)`` decode picked per note (:func:`pick_decodes`).
    pitch : np.ndarray
        ``(N,)`` MIDI pitches.
    spread : float
        Largest spread (s) of a note's decodes that keeps the pick regardless.
    below : float
        A note whose most confident decode exceeds this keeps the pick.
    min_gap : float
        Smallest onset distance (s) of two notes of one key.

    Returns
    -------
    np.ndarray
        ``(N,)`` onsets (s).
    """
    n = np.arange(onsets.shape[1])
    chosen = onsets[pick, n]
    weight = np.maximum(conf, 0.0)
    total = weight.sum(axis=0)
    blend = ((np.ptp(onsets, axis=0) > spread) & (conf.max(axis=0) <= below) & (total > 0))
    if not blend.any():
        return chosen
    mean = (weight * onsets).sum(axis=0) / np.where(total > 0, total, 1.0)
    out = np.where(blend, mean, chosen)
    for k in np.unique(pitch[blend]):
        idx = np.nonzero(pitch == k)[0]
        while True:  # means sharing an attack with another note of the key keep the pick
            t = out[idx]
            close = np.abs(t[:, None] - t[None, :]) < min_gap - 1e-9
            np.fill_diagonal(close, False)
            back = close.any(axis=1) & (out[idx] != chosen[idx])
            if not back.any():
                break  # (the picks themselves are min_gap apart: pick_decodes)
            out[idx[back]] = chosen[idx[back]]
    return out


def follow_consensus(before: Notes, after: Notes, tolerance: float = OUTLIER,
                     width: int = 9, sigmas: float = OUTLIER_SIGMAS) -> Notes:
    """Notes whose shift strays from their neighbours' take the neighbours' shift.

    Timing errors of neighbouring notes are correlated (offset, tempo drift), so a note
    moved further than the running median shift of the ``width`` notes around it was
    most likely put on another note's onset; it moves by that median.  "Further" is
    ``tolerance``, or ``sigmas`` robust standard deviations (``1.4826 x`` the median
    absolute deviation) of all notes' departures from their neighbours' shift when that is
    larger: the input's own per-note jitter sets how far a correctly moved note departs
    from its neighbours.

    Parameters
    ----------
    before, after : Notes
        ``N`` notes before and after alignment (same order).
    tolerance : float
        Smallest departure (s) that counts as straying.
    width : int
        Notes in the running median.
    sigmas : float
        Robust standard deviations of the departures that count as straying (0: only
        ``tolerance``).

    Returns
    -------
    Notes
        ``after`` with the outliers' onsets and offsets moved.
    """
    shift = local_shift(before.onset, after.onset, before.onset, width)
    resid = after.onset - before.onset - shift
    if sigmas > 0 and len(resid):
        tolerance = max(tolerance, sigmas * 1.4826 * float(np.median(np.abs(resid))))
    odd = np.abs(resid) > tolerance
    if not odd.any():
        return after
    onset = np.where(odd, np.maximum(before.onset + shift, 0.0), after.onset)
    offset = np.where(odd, before.offset + (onset - before.onset), after.offset)
    return after.with_times(onset, np.maximum(offset, onset + 0.02))


def _write_report(path: str, before: Notes, after: Notes, sure: np.ndarray) -> None:
    from pianossm.checkpoint import atomic_write

    def write(tmp: str) -> None:
        with open(tmp, "w") as f:
            f.write("index,pitch,velocity,onset_in,onset_out,offset_in,offset_out,shift_ms,"
                    "confidence\n")
            f.writelines(f"{i},{before.pitch[i]},{before.velocity[i]},{before.onset[i]:.4f},"
                         f"{after.onset[i]:.4f},{before.offset[i]:.4f},{after.offset[i]:.4f},"
                         f"{1000 * (after.onset[i] - before.onset[i]):.1f},{sure[i]:.3f}\n"
                         for i in range(len(before)))
    atomic_write(path, write)


def align_files(audio_path: str, midi_path: str, out_path: str, method: str = "dtw+crnn",
                model: str | Sequence[str] | None = None, report: str | None = None,
                search: float = 0.15, wpe: bool = True,
                refine_model: str | None = None,
                half_model: str | None = None,
                selector: str | bool | None = None) -> dict[str, float]:
    """Align ``midi_path`` to ``audio_path`` and write the aligned MIDI (atomically).

    ``method``, ``model``, ``search``, ``wpe``, ``refine_model``, ``half_model`` and
    ``selector`` as in :func:`align_notes`; ``report``: a CSV of every note's old and new
    times and its confidence (``with_confidence`` of :func:`align_notes`; ``nan`` for the
    DTW methods).

    Returns
    -------
    dict
        ``notes``, ``median_shift_ms``, ``max_shift_ms``, ``unsure`` (notes whose
        confidence is below :data:`UNSURE`; 0 for the DTW methods), ``seconds`` (wall
        time).
    """
    from pianossm.audio import read_audio
    from pianossm.checkpoint import atomic_write
    from pianossm.features import load_midi

    if not out_path.lower().endswith((".mid", ".midi")):
        raise PianoSSMError(f"output must be a .mid file, got {out_path!r}")
    t0 = time.perf_counter()
    midi = load_midi(midi_path)
    notes = midi_to_notes(midi)
    audio, sr = read_audio(audio_path)
    audio16 = check_audio(audio, sr, os.path.basename(audio_path))
    check_lengths(len(audio16) / SAMPLE_RATE, notes, os.path.basename(audio_path))
    aligned, sure = align_notes(audio16, notes, method, model, search, wpe=wpe,
                                refine_model=refine_model, half_model=half_model,
                                selector=selector, with_confidence=True)
    out = retime_midi(midi, notes, aligned)
    atomic_write(out_path, lambda tmp: out.write(tmp))
    if report:
        _write_report(report, notes, aligned, sure)
    shift = np.abs(aligned.onset - notes.onset) * 1000
    return {"notes": len(notes), "median_shift_ms": float(np.median(shift)),
            "max_shift_ms": float(shift.max()), "unsure": int(np.sum(sure < UNSURE)),
            "seconds": time.perf_counter() - t0}
