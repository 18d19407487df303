"""MSSL over non-overlapping windows of a cache split: candidates (a model, a folder of
audio files, silence) as window sources, and the scoring loop."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from pianossm.data.cache import AudioCache
from pianossm.errors import PianoSSMError
from pianossm.losses import MSSL

__all__ = ["Source", "WindowScore", "evaluate_windows", "folder_source", "item_midi",
           "model_source", "silence_source"]

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
    """The MIDI (or MAPS ``.txt``) file of one cache item, as a usable path
    (:meth:`pianossm.data.cache.AudioCache.item_midi`).

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
    return cache.item_midi(item)


def model_source(model: PianoSSM, cache: AudioCache, synth_rate: int | None = None,  # noqa: F821
                 head: int | None = None, alias_mode: str | None = None,
                 frame_grid: str = "synth") -> Source:
    """Windows synthesised by ``model`` from zero state, at ``synth_rate`` if given.

    The input is in the model's layout (``model.config.features``).  At the cache rate
    the cached frames are used where the cache holds that layout; otherwise (another
    rate, or a layout the cache lacks) they are computed from the item's MIDI file at
    that rate, and the audio is resampled back with soxr.

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

    def roll_of(item: int) -> PianoRoll:
        if item not in rolls:
            rolls[item] = PianoRoll.for_model(load_performance(item_midi(cache, item)), fps,
                                              model.config)
        return rolls[item]

    def source(item: int, first: int, n: int) -> np.ndarray:
        if on_grid:  # one feature row per sample: the training-grid frame in force then
            t0 = first * cache.hop / ref_rate
            count = round(n * cache.hop / ref_rate * rate)
            frame = np.floor((t0 + np.arange(count) / rate) * fps + 1e-9).astype(np.int64)
            feats = roll_of(item).frames(int(frame[0]), int(frame[-1]) + 1)[frame - frame[0]]
        elif rate == ref_rate and cache.holds(model.config.features):
            feats, _ = cache.segment(item, first, n, model.config.features,
                                     model.config.delay_frames(fps))
        else:
            t0, t1 = first * cache.hop / ref_rate, (first + n) * cache.hop / ref_rate
            feats = roll_of(item).frames(round(t0 * rate / hop), round(t1 * rate / hop))
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


def _candidate_file(folder: str, name: str) -> str:
    """``folder/name.wav`` or ``folder/name.flac``, whichever exists."""
    for ext in (".wav", ".flac"):
        path = os.path.join(folder, name + ext)
        if os.path.isfile(path):
            return path
    raise PianoSSMError(f"no candidate audio for {name!r} in {folder!r} "
                        f"(expected {name}.wav or {name}.flac)")


def _fit(audio: np.ndarray, length: int) -> np.ndarray:
    """Trim or zero-pad ``(n,)`` audio to ``length`` samples."""
    out = np.zeros(length, dtype=np.float32)
    out[:min(length, len(audio))] = audio[:length]
    return out
