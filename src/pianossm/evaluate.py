"""Evaluation: MSSL over non-overlapping 10 s windows, per piece and mean; onset timing.

Three kinds of candidates are scored against the references of a cache split:

* a model, synthesised at the reference rate or at ``synth_rate`` (then resampled to
  the reference rate with soxr for scoring, as the paper does), optionally with an
  alias mode (``oversample`` runs the model at :func:`pianossm.alias.internal_rate`
  and resamples down to ``synth_rate`` first);
* a folder of audio files named ``<item name>.wav`` / ``.flac`` (DDSP-Piano, FluidSynth
  with another SoundFont, ...), resampled to the reference rate;
* silence, the trivial yardstick.

:func:`evaluate_timing` instead synthesises (or reads) each whole piece of a split,
aligns it to the piece's own MIDI file (:mod:`pianossm.align.timing`) and keeps every
note's signed onset error: a synthesiser's timing, comparable across synthesisers.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from pianossm.data.cache import AudioCache
from pianossm.errors import PianoSSMError
from pianossm.losses import MSSL

__all__ = [
    "PieceTiming",
    "WindowScore",
    "evaluate_timing",
    "evaluate_windows",
    "folder_piece_source",
    "folder_source",
    "format_table",
    "format_timing_table",
    "item_midi",
    "model_piece_source",
    "model_source",
    "silence_source",
    "summarise",
    "timing_rows",
    "write_csv",
    "write_timing_csv",
]

#: ``source(item_index, first_frame, n_frames) -> (n_frames * hop,)`` audio at the cache rate.
Source = Callable[[int, int, int], np.ndarray]
#: ``piece_source(item_index) -> (audio, rate)``: a whole piece, ``(n,)`` float32 from
#: MIDI time 0, at any rate.
PieceSource = Callable[[int], tuple[np.ndarray, int]]


@dataclass(frozen=True)
class WindowScore:
    """MSSL of one window of one piece."""

    piece: str
    start_s: float
    seconds: float
    mssl: float


@torch.no_grad()
def evaluate_windows(cache: AudioCache, source: Source, split: str = "test",
                     seconds: float = 10.0, max_windows: int | None = None,
                     progress: bool = False) -> list[WindowScore]:
    """Score ``source`` on every evaluation window of ``split``.

    Parameters
    ----------
    cache : AudioCache
        References (audio) and features.
    source : callable
        Candidate audio for a window, see :data:`Source`.
    split : str
        Cache split.
    seconds : float
        Window length.
    max_windows : int, optional
        Score only the first windows (quick validation during training).
    progress : bool
        Show a tqdm bar.

    Returns
    -------
    list of WindowScore
    """
    from tqdm import tqdm

    windows = cache.windows(split, seconds)
    if not windows:
        raise PianoSSMError(f"cache {cache.path!r} has no {split!r} windows to evaluate")
    windows = windows[:max_windows] if max_windows else windows
    loss = MSSL(cache.sample_rate)
    fps = cache.sample_rate / cache.hop
    out = []
    for item, first, n in tqdm(windows, desc=f"evaluate {split}", disable=not progress):
        _, ref = cache.segment(item, first, n)
        cand = np.asarray(source(item, first, n), dtype=np.float32)
        if cand.shape != ref.shape:
            raise PianoSSMError(f"candidate for {cache.items[item]['name']!r} has "
                                f"{cand.shape[0]} samples where {ref.shape[0]} are expected")
        value = loss(torch.from_numpy(cand), torch.from_numpy(ref))["loss"].item()
        out.append(WindowScore(cache.items[item]["name"], first / fps, n / fps, value))
    return out


def _alias_rates(model: PianoSSM, alias_mode: str | None,  # noqa: F821
                 synth_rate: int) -> int:
    """Set ``alias_mode`` on ``model`` (``None``: keep its mode) and return the rate it
    must run at to deliver ``synth_rate`` (:func:`pianossm.alias.internal_rate`)."""
    from pianossm.alias import internal_rate

    if alias_mode is not None:
        model.set_alias_mode(alias_mode)  # PianoSSMError naming an unknown mode
    mode = model.blocks[0].ssm.alias_mode  # set_alias_mode sets every layer alike
    return internal_rate(mode, model.config.train_sample_rate, synth_rate)


def item_midi(cache: AudioCache, item: int) -> str:
    """The MIDI (or MAPS ``.txt``) file of one cache item, as a usable path.

    A cache records the path it was built with, which may be relative to the folder the
    build ran in; when that path is not found from here, a built dataset's
    ``manifest.json`` beside the cache (``DATASET/cache``) resolves the item by name.

    Parameters
    ----------
    cache : AudioCache
        The cache.
    item : int
        Item index.

    Returns
    -------
    str
        An existing file path.
    """
    rec = cache.items[item]
    path = rec["midi"]
    if os.path.isfile(path):
        return path
    root = os.path.dirname(os.path.abspath(cache.path))
    for cand in (os.path.join(root, path),
                 os.path.join(root, "midi", os.path.basename(path))):
        if os.path.isfile(cand):
            return cand
    raise PianoSSMError(f"MIDI file of {rec['name']!r} not found: {path!r} (cache "
                        f"{cache.path!r}; run from the folder the cache was built in)")


def model_source(model: PianoSSM, cache: AudioCache, synth_rate: int | None = None,  # noqa: F821
                 head: int | None = None, alias_mode: str | None = None,
                 frame_grid: str = "synth") -> Source:
    """Windows synthesised by ``model`` from zero state, at ``synth_rate`` if given.

    At the cache rate the cached roll is used; at another rate the roll is recomputed
    from the item's MIDI file at that rate and the audio resampled back with soxr.

    Parameters
    ----------
    model : PianoSSM
        The model.
    cache : AudioCache
        References; windows are returned at its rate.
    synth_rate : int, optional
        Synthesis rate in Hz (default: the cache rate).
    head : int, optional
        Output head (default: the item's head where the model has it, else 0).
    alias_mode : str, optional
        One of :data:`pianossm.alias.ALIAS_MODES`, set on ``model`` (default: keep the
        model's).  Under ``oversample`` the model runs at
        :func:`pianossm.alias.internal_rate` and its audio is resampled (soxr, very high
        quality) to ``synth_rate`` before the resampling to the cache rate.
    frame_grid : str
        ``synth`` (the paper's) or ``train``: the input frames stay on the training rate's
        frame grid and each sample takes the frame in force at its time (see
        :func:`pianossm.render.render_blocks`).

    Returns
    -------
    Source
        ``source(item, first, n) -> (n * hop,)`` float32 at the cache rate.
    """
    from pianossm.data.cache import load_performance
    from pianossm.features import PianoRoll, frame_hop
    from pianossm.render import FRAME_GRIDS, training_frame_rate

    ref_rate = cache.sample_rate
    out_rate = synth_rate or ref_rate
    rate = _alias_rates(model, alias_mode, out_rate)
    if frame_grid not in FRAME_GRIDS:
        raise PianoSSMError(f"unknown frame grid {frame_grid!r}; allowed: {list(FRAME_GRIDS)}")
    on_grid = frame_grid == "train" and rate != model.config.train_sample_rate
    hop = 1 if on_grid else frame_hop(rate)
    fps = training_frame_rate(model) if on_grid else rate / hop
    ts = model.ts_for(rate)
    rolls: dict[int, PianoRoll] = {}

    def source(item: int, first: int, n: int) -> np.ndarray:
        if on_grid:  # one feature row per sample: the training-grid frame in force then
            if item not in rolls:
                rolls[item] = PianoRoll(load_performance(item_midi(cache, item)), fps,
                                        model.config.pedal_threshold)
            t0 = first * cache.hop / ref_rate
            count = round(n * cache.hop / ref_rate * rate)
            frame = np.floor((t0 + np.arange(count) / rate) * fps + 1e-9).astype(np.int64)
            feats = rolls[item].frames(int(frame[0]), int(frame[-1]) + 1)[frame - frame[0]]
        elif rate == ref_rate:
            feats, _ = cache.segment(item, first, n)
        else:
            if item not in rolls:
                rolls[item] = PianoRoll(load_performance(item_midi(cache, item)), fps,
                                        model.config.pedal_threshold)
            t0, t1 = first * cache.hop / ref_rate, (first + n) * cache.hop / ref_rate
            feats = rolls[item].frames(round(t0 * rate / hop), round(t1 * rate / hop))
        x = torch.from_numpy(np.ascontiguousarray(feats))[None].to(model.heads.weight.dtype)
        with torch.no_grad():
            audio = model(x, hop, ts, _head_of(model, cache, item, head))[0].numpy()
        if rate != out_rate or out_rate != ref_rate:
            import soxr

            if rate != out_rate:
                audio = soxr.resample(audio, rate, out_rate, quality="VHQ")
            if out_rate != ref_rate:
                audio = soxr.resample(audio, out_rate, ref_rate, quality="HQ")
        return _fit(audio, n * cache.hop)

    return source


def _head_of(model: PianoSSM, cache: AudioCache, item: int,  # noqa: F821
             head: int | None) -> int:
    """``head``, else the item's head where the model has it, else 0."""
    if head is not None:
        return head
    name = cache.items[item]["head"]
    return model.config.heads.index(name) if name in model.config.heads else 0


def folder_source(folder: str | os.PathLike[str], cache: AudioCache) -> Source:
    """Windows cut from ``folder/<name>.wav`` (or ``.flac``), resampled to the cache rate."""
    from pianossm.audio import read_audio

    folder = os.fspath(folder)
    loaded: dict[int, np.ndarray] = {}

    def source(item: int, first: int, n: int) -> np.ndarray:
        if item not in loaded:
            path = _candidate_file(folder, cache.items[item]["name"])
            loaded[item] = read_audio(path, cache.sample_rate)[0]
        a = first * cache.hop
        return _fit(loaded[item][a:a + n * cache.hop], n * cache.hop)

    return source


def silence_source(cache: AudioCache) -> Source:
    """All-zero candidates: the score a model must beat."""
    return lambda item, first, n: np.zeros(n * cache.hop, dtype=np.float32)


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


def _candidate_file(folder: str, name: str) -> str:
    """``folder/name.wav`` or ``folder/name.flac``, whichever exists."""
    for ext in (".wav", ".flac"):
        path = os.path.join(folder, name + ext)
        if os.path.isfile(path):
            return path
    raise PianoSSMError(f"no candidate audio for {name!r} in {folder!r} "
                        f"(expected {name}.wav or {name}.flac)")


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
        CRNN checkpoint (default: shipped).
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


_TIMING_KEYS = ("n", "mean_ms", "median_ms", "bias_ms", "std_ms", "within_10ms",
                "within_25ms", "within_50ms", "within_100ms")


def format_timing_table(columns: dict[str, list[PieceTiming]]) -> str:
    """A text table: per candidate, one row per piece and an ``all`` row.

    Columns: notes, mean and median absolute onset error (ms), mean signed error
    (``bias``, positive = late, ms) and the share of notes within 10/25/50/100 ms.
    """
    from pianossm.align.metrics import THRESHOLDS_MS

    rows = {name: timing_rows(t) for name, t in columns.items()}
    cw = max([len(n) for n in rows] + [9])
    pw = max([len(p) for r in rows.values() for p, _ in r] + [5])
    head = (f"{'candidate':<{cw}} {'piece':<{pw}} {'notes':>6} {'mean ms':>8} "
            f"{'median ms':>9} {'bias ms':>8}" + "".join(f"{f'<={t}ms':>9}"
                                                      for t in THRESHOLDS_MS))
    lines = [head, "-" * len(head)]
    for name, rs in rows.items():
        for piece, r in rs:
            lines.append(f"{name:<{cw}} {piece:<{pw}} {int(r['n']):>6} {r['mean_ms']:>8.1f} "
                         f"{r['median_ms']:>9.1f} {r['bias_ms']:>+8.1f}"
                         + "".join(f"{100 * r[f'within_{t}ms']:>8.1f}%" for t in THRESHOLDS_MS))
    return "\n".join(lines)


def write_timing_csv(path: str | os.PathLike[str], columns: dict[str, list[PieceTiming]],
                     ) -> None:
    """Per-piece and pooled (``all``) timing statistics, one row per candidate and piece,
    written atomically.  Columns: ``candidate, piece, n, mean_ms, median_ms, bias_ms,
    std_ms, within_10ms .. within_100ms`` (shares 0..1)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["candidate", "piece", *_TIMING_KEYS])
    for name, timings in columns.items():
        for piece, r in timing_rows(timings):
            w.writerow([name, piece, int(r["n"]), *(f"{r[k]:.6f}" for k in _TIMING_KEYS[1:])])
    _write_text(path, buf.getvalue())


def _fit(audio: np.ndarray, length: int) -> np.ndarray:
    """Trim or zero-pad ``(n,)`` audio to ``length`` samples."""
    out = np.zeros(length, dtype=np.float32)
    out[:min(length, len(audio))] = audio[:length]
    return out


def summarise(scores: list[WindowScore]) -> tuple[list[tuple[str, int, float]], float]:
    """Per-piece means ``(piece, windows, mssl)`` in order of appearance, and the mean
    over all windows."""
    pieces: dict[str, list[float]] = {}
    for s in scores:
        pieces.setdefault(s.piece, []).append(s.mssl)
    rows = [(p, len(v), float(np.mean(v))) for p, v in pieces.items()]
    return rows, float(np.mean([s.mssl for s in scores]))


def format_table(columns: dict[str, list[WindowScore]]) -> str:
    """A text table: one row per piece, one column per candidate, and the mean row."""
    names = list(columns)
    per = {n: summarise(columns[n]) for n in names}
    pieces = [r[0] for r in per[names[0]][0]]
    width = max([len(p) for p in pieces] + [6])
    lines = [f"{'piece':<{width}} {'win':>4} " + " ".join(f"{n:>12}" for n in names)]
    for i, piece in enumerate(pieces):
        cells = " ".join(f"{per[n][0][i][2]:>12.4f}" for n in names)
        lines.append(f"{piece:<{width}} {per[names[0]][0][i][1]:>4} {cells}")
    total = sum(r[1] for r in per[names[0]][0])
    lines.append(f"{'mean':<{width}} {total:>4} " +
                 " ".join(f"{per[n][1]:>12.4f}" for n in names))
    return "\n".join(lines)


def write_csv(path: str | os.PathLike[str], columns: dict[str, list[WindowScore]]) -> None:
    """Per-window scores, one row per window and candidate, written atomically."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["candidate", "piece", "start_s", "seconds", "mssl"])
    for name, scores in columns.items():
        for s in scores:
            w.writerow([name, s.piece, f"{s.start_s:.3f}", f"{s.seconds:.3f}", f"{s.mssl:.6f}"])
    _write_text(path, buf.getvalue())


def _write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    from pianossm.checkpoint import atomic_write

    def write(tmp: str) -> None:
        with open(tmp, "w", newline="") as f:
            f.write(text)

    atomic_write(path, write)
