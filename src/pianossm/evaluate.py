"""Evaluation: MSSL over non-overlapping 10 s windows, per piece and mean.

Three kinds of candidates are scored against the references of a cache split:

* a model, synthesised at the reference rate or at ``synth_rate`` (then resampled to
  the reference rate with soxr for scoring, as the paper does);
* a folder of audio files named ``<item name>.wav`` / ``.flac`` (DDSP-Piano, FluidSynth
  with another SoundFont, ...), resampled to the reference rate;
* silence, the trivial yardstick.
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
    "WindowScore",
    "evaluate_windows",
    "folder_source",
    "format_table",
    "model_source",
    "silence_source",
    "summarise",
    "write_csv",
]

#: ``source(item_index, first_frame, n_frames) -> (n_frames * hop,)`` audio at the cache rate.
Source = Callable[[int, int, int], np.ndarray]


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


def model_source(model: PianoSSM, cache: AudioCache, synth_rate: int | None = None,  # noqa: F821
                 head: int | None = None) -> Source:
    """Windows synthesised by ``model`` from zero state, at ``synth_rate`` if given.

    At the cache rate the cached roll is used; at another rate the roll is recomputed
    from the item's MIDI file at that rate and the audio resampled back with soxr.
    """
    from pianossm.data.cache import load_performance
    from pianossm.features import PianoRoll, frame_hop

    ref_rate = cache.sample_rate
    rate = synth_rate or ref_rate
    hop = frame_hop(rate)
    ts = model.ts_for(rate)
    rolls: dict[int, PianoRoll] = {}

    def head_of(item: int) -> int:
        if head is not None:
            return head
        name = cache.items[item]["head"]
        return model.config.heads.index(name) if name in model.config.heads else 0

    def source(item: int, first: int, n: int) -> np.ndarray:
        if rate == ref_rate:
            feats, _ = cache.segment(item, first, n)
        else:
            if item not in rolls:
                rolls[item] = PianoRoll(load_performance(cache.items[item]["midi"]), rate / hop,
                                        model.config.pedal_threshold)
            t0, t1 = first * cache.hop / ref_rate, (first + n) * cache.hop / ref_rate
            feats = rolls[item].frames(round(t0 * rate / hop), round(t1 * rate / hop))
        with torch.no_grad():
            audio = model(torch.from_numpy(feats)[None], hop, ts, head_of(item))[0].numpy()
        if rate != ref_rate:
            import soxr

            audio = soxr.resample(audio, rate, ref_rate, quality="HQ")
        return _fit(audio, n * cache.hop)

    return source


def folder_source(folder: str | os.PathLike[str], cache: AudioCache) -> Source:
    """Windows cut from ``folder/<name>.wav`` (or ``.flac``), resampled to the cache rate."""
    from pianossm.audio import read_audio

    folder = os.fspath(folder)
    loaded: dict[int, np.ndarray] = {}

    def source(item: int, first: int, n: int) -> np.ndarray:
        if item not in loaded:
            name = cache.items[item]["name"]
            paths = [os.path.join(folder, name + ext) for ext in (".wav", ".flac")]
            found = [p for p in paths if os.path.isfile(p)]
            if not found:
                raise PianoSSMError(f"no candidate audio for {name!r} in {folder!r} "
                                    f"(expected {name}.wav or {name}.flac)")
            loaded[item] = read_audio(found[0], cache.sample_rate)[0]
        a = first * cache.hop
        return _fit(loaded[item][a:a + n * cache.hop], n * cache.hop)

    return source


def silence_source(cache: AudioCache) -> Source:
    """All-zero candidates: the score a model must beat."""
    return lambda item, first, n: np.zeros(n * cache.hop, dtype=np.float32)


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
    from pianossm.checkpoint import atomic_write

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["candidate", "piece", "start_s", "seconds", "mssl"])
    for name, scores in columns.items():
        for s in scores:
            w.writerow([name, s.piece, f"{s.start_s:.3f}", f"{s.seconds:.3f}", f"{s.mssl:.6f}"])

    def write(tmp: str) -> None:
        with open(tmp, "w", newline="") as f:
            f.write(buf.getvalue())

    atomic_write(path, write)
