"""A compact, memory-mapped training cache: model input at the MIDI rate, audio as int16.

Layout of a cache folder::

    index.json     rate, hop, heads, audio statistics, the input layout it holds
                   (``features``, default ``roll``) and one record per item
    features.u8    (total_frames, 88) uint8: the roll times 127 (exact: velocities are
                   integers and the roll clips at 127)
    onset.u8       (total_frames, 88) uint8: the onset channels times 127   } layout
    pedal.u8       (total_frames, 1) uint8: the CC64 level times 127       } roll+onset+pedal
    audio.i16      (total_frames * hop,) int16: audio times 32767

A layout is its parts joined by ``+`` (``roll``, ``onset``, ``pedal``; see
:mod:`pianossm.features`), one file each, so a ``roll+onset+pedal`` cache also serves
``roll`` models, and :func:`add_features` gives an existing ``roll`` cache the other
parts from its items' MIDI files without reading the audio again.

Items are stored back to back; an item is ``n_frames`` frames from ``frame_offset`` and
the matching ``n_frames * hop`` samples.  Both files are opened with ``numpy.memmap``,
so a dataset of any size (MAESTRO: 159 h) never sits in RAM.  The folder is built under a
temporary name and renamed into place, so a half-built cache never looks finished.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from pianossm.errors import PianoSSMError
from pianossm.data.notes import load_performance
from pianossm.features import (N_KEYS, PianoRoll, check_delay_frames, feature_channels,
                               frame_hop)

__all__ = ["CACHE_VERSION", "AudioCache", "Item", "add_features", "build_cache",
           "load_performance"]

log = logging.getLogger(__name__)
CACHE_VERSION = 1
_INDEX = "index.json"
#: Channels and file of each part of a layout (``features.u8``: the name of version 1).
_PARTS = {"roll": (N_KEYS, "features.u8"), "onset": (N_KEYS, "onset.u8"),
          "pedal": (1, "pedal.u8")}


def _parts(features: str) -> list[str]:
    """The parts of a layout, in channel order (``roll+onset+pedal`` -> three)."""
    feature_channels(features)  # a clear error for an unknown layout
    return features.split("+")


def _part_frames(roll: PianoRoll, part: str, n: int) -> np.ndarray:
    """``(n, channels)`` uint8 of one part of ``roll`` (values times 127)."""
    values = {"roll": roll.roll, "onset": roll.onsets, "pedal": roll.pedal}[part](0, n)
    return np.rint(values.reshape(n, -1) * 127).astype(np.uint8)


@dataclass(frozen=True)
class Item:
    """One recording: a MIDI file, its audio, its split and its head (condition/year)."""

    name: str
    midi: str
    audio: str
    split: str  # "train", "validation" or "test"
    head: str = "default"


def _aligned_frames(name: str, midi_frames: int, audio_frames: int, tail_frames: int,
                    fps: float) -> int:
    """Frames to keep when MIDI and audio lengths differ (trimmed, with a warning).

    Audio may ring on after the last MIDI event by up to ``tail_frames`` (the release);
    that is kept, with a silent roll.  Anything else is trimmed to the shorter one.
    """
    if midi_frames <= audio_frames <= midi_frames + tail_frames:
        return audio_frames
    if audio_frames > midi_frames:
        keep = midi_frames + tail_frames
        log.warning("%s: audio is %.2f s longer than its MIDI; trimmed to the MIDI end "
                    "plus %.2f s of release", name, (audio_frames - midi_frames) / fps,
                    tail_frames / fps)
        return keep
    log.warning("%s: MIDI runs %.2f s past the end of its audio; trimmed to the audio",
                name, (midi_frames - audio_frames) / fps)
    return audio_frames


def _prepare(task: tuple[Item, int, int, int, str],
             ) -> tuple[list[bytes], bytes, int, np.ndarray]:
    """One item's input parts (uint8 bytes each), audio (int16 bytes), frame count and
    audio sums."""
    from pianossm.audio import read_audio

    item, sample_rate, pedal_threshold, tail, features = task
    hop = frame_hop(sample_rate)
    audio, _ = read_audio(item.audio, sample_rate)
    roll = PianoRoll(load_performance(item.midi), sample_rate / hop, pedal_threshold,
                     features)
    n = _aligned_frames(os.path.basename(item.audio), roll.n_frames, len(audio) // hop,
                        tail, sample_rate / hop)
    parts = [_part_frames(roll, part, n).tobytes() for part in _parts(features)]
    clip = np.zeros(n * hop, dtype=np.float32)
    clip[:min(len(audio), n * hop)] = audio[:n * hop]
    sums = np.array([clip.size, clip.sum(dtype=np.float64),
                     np.square(clip, dtype=np.float64).sum()])
    pcm = np.rint(np.clip(clip, -1, 1) * 32767).astype(np.int16)
    return parts, pcm.tobytes(), n, sums


def build_cache(items: Sequence[Item], out_dir: str | os.PathLike[str], sample_rate: int,
                pedal_threshold: int = 64, tail_seconds: float = 3.0,
                progress: bool = True, force: bool = False, jobs: int = 1,
                features: str = "roll") -> AudioCache:
    """Preprocess ``items`` into a cache folder.

    Parameters
    ----------
    items : sequence of Item
        Recordings; audio is read as mono and resampled to ``sample_rate`` with soxr.
    out_dir : str or PathLike
        Cache folder to create.
    sample_rate : int
        Training rate in Hz.
    pedal_threshold : int
        CC64 threshold of the roll.
    tail_seconds : float
        Audio kept after the last MIDI event without a warning.
    progress : bool
        Show a tqdm bar.
    force : bool
        Replace an existing cache.
    jobs : int
        Worker processes computing the items (the result does not depend on it).
    features : str
        Input layout to store (``roll`` or ``roll+onset+pedal``).

    Returns
    -------
    AudioCache
        The opened cache.
    """
    from tqdm import tqdm

    from pianossm.data.pool import ordered_map

    parts = _parts(features)
    out_dir = os.fspath(out_dir)
    if os.path.exists(out_dir) and not force:
        raise PianoSSMError(f"cache exists: {out_dir!r} (use --force to rebuild)")
    if not items:
        raise PianoSSMError("no recordings to cache")
    hop = frame_hop(sample_rate)
    tmp = out_dir.rstrip("/") + ".partial"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    records, offset = [], 0
    sums = np.zeros(3)  # count, sum, sum of squares of the training audio
    heads: list[str] = []
    tail = round(tail_seconds * sample_rate / hop)
    tasks = ((item, sample_rate, pedal_threshold, tail, features) for item in items)
    with contextlib.ExitStack() as stack:
        files = [stack.enter_context(open(os.path.join(tmp, _PARTS[p][1]), "wb"))
                 for p in parts]
        fa = stack.enter_context(open(os.path.join(tmp, "audio.i16"), "wb"))
        results = ordered_map(_prepare, tasks, jobs)
        for item, (feats, pcm, n, item_sums) in tqdm(zip(items, results), total=len(items),
                                                     desc="cache", unit="file",
                                                     disable=not progress):
            if item.split == "train":
                sums += item_sums
            for f, data in zip(files, feats):
                f.write(data)
            fa.write(pcm)
            if item.head not in heads:
                heads.append(item.head)
            records.append({**asdict(item), "frame_offset": offset, "n_frames": n})
            offset += n
    mean = float(sums[1] / sums[0]) if sums[0] else 0.0
    std = float(np.sqrt(max(sums[2] / sums[0] - mean * mean, 0.0))) if sums[0] else 1.0
    index = {"version": CACHE_VERSION, "sample_rate": sample_rate, "hop": hop,
             "pedal_threshold": pedal_threshold, "features": features,
             "total_frames": offset, "heads": heads, "audio_mean": mean,
             "audio_std": std or 1.0, "items": records}
    with open(os.path.join(tmp, _INDEX), "w") as f:
        json.dump(index, f, indent=1)
    if os.path.exists(out_dir):
        shutil.rmtree(out_dir)
    os.replace(tmp, out_dir)
    return AudioCache(out_dir)


class AudioCache:
    """Read access to a cache folder: random training crops and evaluation windows.

    Parameters
    ----------
    path : str or PathLike
        Folder written by :func:`build_cache`.

    Attributes
    ----------
    layout : str
        The input layout the cache holds (``roll`` for a cache without the entry); any
        layout made of its parts can be read (:meth:`holds`).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        index_path = os.path.join(self.path, _INDEX)
        if not os.path.isfile(index_path):
            raise PianoSSMError(f"not a pianossm data cache (no {_INDEX}): {self.path!r}")
        with open(index_path) as f:
            self.index = json.load(f)
        if self.index.get("version") != CACHE_VERSION:
            raise PianoSSMError(f"cache {self.path!r} has version {self.index.get('version')!r}; "
                                f"this pianossm reads version {CACHE_VERSION}")
        self.sample_rate: int = self.index["sample_rate"]
        self.hop: int = self.index["hop"]
        self.heads: list[str] = self.index["heads"]
        self.items: list[dict] = self.index["items"]
        total = self.index["total_frames"]
        self.layout: str = self.index.get("features", "roll")
        try:
            parts = _parts(self.layout)
        except PianoSSMError as exc:
            raise PianoSSMError(f"cache {self.path!r}: {exc}") from None
        for p in parts:
            if not os.path.isfile(os.path.join(self.path, _PARTS[p][1])):
                raise PianoSSMError(f"cache {self.path!r} holds {self.layout!r} but has no "
                                    f"{_PARTS[p][1]}; build it again")
        self._parts = {p: np.memmap(os.path.join(self.path, _PARTS[p][1]), np.uint8, "r",
                                    shape=(total, _PARTS[p][0])) for p in parts}
        self.features = self._parts["roll"]  # (total_frames, 88) uint8
        self.audio = np.memmap(os.path.join(self.path, "audio.i16"), np.int16, "r",
                               shape=(total * self.hop,))

    def holds(self, features: str) -> bool:
        """Whether the cache can give the input layout ``features``."""
        return all(p in self._parts for p in _parts(features))

    def require(self, features: str) -> list[str]:
        """The parts of layout ``features``, or a :class:`PianoSSMError` saying that the
        cache does not hold it and how to add it.

        Returns
        -------
        list of str
            Part names in channel order.
        """
        parts = _parts(features)
        if not self.holds(features):
            raise PianoSSMError(
                f"cache {self.path!r} holds the {self.layout!r} input layout, not "
                f"{features!r}; add it with 'pianossm dataset features --data "
                f"{self.path} --features {features}'")
        return parts

    def item_midi(self, item: int) -> str:
        """The MIDI (or MAPS ``.txt``) file of one item, as a usable path.

        A cache records the path it was built with, which may be relative to the folder
        the build ran in; when that path is not found from here, it is looked up beside
        the cache (``DATASET/cache`` next to ``DATASET/midi``).

        Parameters
        ----------
        item : int
            Item index.

        Returns
        -------
        str
            An existing file path.
        """
        rec = self.items[item]
        path = rec["midi"]
        if os.path.isfile(path):
            return path
        root = os.path.dirname(os.path.abspath(self.path))
        for cand in (os.path.join(root, path),
                     os.path.join(root, "midi", os.path.basename(path))):
            if os.path.isfile(cand):
                return cand
        raise PianoSSMError(f"MIDI file of {rec['name']!r} not found: {path!r} (cache "
                            f"{self.path!r}; run from the folder the cache was built in)")

    def split(self, name: str) -> list[int]:
        """Indices of the items of one split (``train``, ``validation``, ``test``)."""
        return [i for i, it in enumerate(self.items) if it["split"] == name]

    def seconds(self, split: str | None = None) -> float:
        """Audio duration of a split (or of everything)."""
        ids = range(len(self.items)) if split is None else self.split(split)
        return sum(self.items[i]["n_frames"] for i in ids) * self.hop / self.sample_rate

    def segment(self, item: int, first: int, n_frames: int, features: str = "roll",
                delay: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Frames ``first .. first+n_frames-1`` of one item, zero past its end.

        Parameters
        ----------
        item, first, n_frames : int
            Item index, first frame, frames.
        features : str
            Input layout to return; the cache must hold it (:meth:`holds`).
        delay : int
            Input delay in frames (a model's
            :meth:`~pianossm.config.PianoSSMConfig.delay_frames`): feature row ``k``
            holds the cached frame ``first + k - delay`` (zero before frame 0), the audio
            stays frames ``first ..``.

        Returns
        -------
        features : np.ndarray
            ``(n_frames, C)`` float32 in [0, 1], ``C`` the layout's channels.
        audio : np.ndarray
            ``(n_frames * hop,)`` float32.
        """
        parts = self.require(features)
        rec = self.items[item]
        feats = np.zeros((n_frames, feature_channels(features)), dtype=np.float32)
        src = first - check_delay_frames(delay)  # cached frame shown in row 0
        lo = max(0, -src)  # rows before cached frame 0 stay zero
        hi = max(lo, min(n_frames, rec["n_frames"] - src))
        a = rec["frame_offset"] + src
        col = 0
        for part in parts:
            width = _PARTS[part][0]
            feats[lo:hi, col:col + width] = self._parts[part][a + lo:a + hi] / np.float32(127)
            col += width
        have = max(0, min(n_frames, rec["n_frames"] - first))
        audio = np.zeros(n_frames * self.hop, dtype=np.float32)
        b = rec["frame_offset"] + first
        audio[:have * self.hop] = self.audio[b * self.hop:(b + have) * self.hop] / np.float32(32767)
        return feats, audio

    def sample_crops(self, rng: np.random.Generator, batch: int, seconds: float,
                     split: str = "train", features: str = "roll", delay: int = 0,
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``batch`` random crops, items drawn with probability proportional to length.

        Parameters
        ----------
        rng : np.random.Generator
            Draws the items and offsets (the draws do not depend on ``features``).
        batch : int
            Crops.
        seconds : float
            Crop length.
        split : str
            Split to draw from.
        features : str
            Input layout to return (see :meth:`segment`).
        delay : int
            Input delay in frames (see :meth:`segment`).

        Returns
        -------
        features : np.ndarray
            ``(B, F, C)`` float32, ``C`` the layout's channels.
        audio : np.ndarray
            ``(B, F * hop)`` float32.
        heads : np.ndarray
            ``(B,)`` int64 head indices.
        """
        self.require(features)
        ids = self.split(split)
        if not ids:
            raise PianoSSMError(f"cache {self.path!r} has no {split!r} items")
        n_frames = round(seconds * self.sample_rate / self.hop)
        lengths = np.array([self.items[i]["n_frames"] for i in ids], dtype=np.float64)
        picks = rng.choice(len(ids), size=batch, p=lengths / lengths.sum())
        feats, audio, heads = [], [], []
        for p in picks:
            item = ids[int(p)]
            first = int(rng.integers(0, max(1, self.items[item]["n_frames"] - n_frames + 1)))
            f, a = self.segment(item, first, n_frames, features, delay)
            feats.append(f)
            audio.append(a)
            heads.append(self.heads.index(self.items[item]["head"]))
        return np.stack(feats), np.stack(audio), np.array(heads, dtype=np.int64)

    def windows(self, split: str, seconds: float = 10.0, min_seconds: float = 1.0,
                ) -> list[tuple[int, int, int]]:
        """Non-overlapping evaluation windows ``(item, first_frame, n_frames)``.

        The last window of an item is shorter; one under ``min_seconds`` is dropped.
        """
        size = round(seconds * self.sample_rate / self.hop)
        least = round(min_seconds * self.sample_rate / self.hop)
        out = []
        for i in self.split(split):
            n = self.items[i]["n_frames"]
            for first in range(0, n, size):
                if min(size, n - first) >= least:
                    out.append((i, first, min(size, n - first)))
        return out


def _extra_parts(task: tuple[str, int, float, int, str, bytes]) -> list[bytes]:
    """The layout's parts of one item from its MIDI file, after checking that the roll
    computed from it is the stored one (uint8 bytes per part, roll left out)."""
    midi, n, fs, threshold, features, stored = task
    roll = PianoRoll(load_performance(midi), fs, threshold, features)
    if _part_frames(roll, "roll", n).tobytes() != stored:
        raise PianoSSMError(f"{midi!r} no longer gives the roll stored in the cache (was the "
                            "MIDI file changed after the cache was built?); build it again")
    return [_part_frames(roll, part, n).tobytes() for part in _parts(features)[1:]]


def add_features(path: str | os.PathLike[str], features: str, progress: bool = True,
                 jobs: int = 1) -> AudioCache:
    """Give an existing cache the parts of another input layout, from its items' MIDI.

    The audio is not read again; each item's roll is recomputed and must equal the
    stored one (so the new channels line up with it).  The new part files are written
    under temporary names and renamed into place, then ``index.json`` is replaced, so an
    interrupted run leaves the cache as it was.

    Parameters
    ----------
    path : str or PathLike
        Cache folder (:func:`build_cache`).
    features : str
        Layout to hold, e.g. ``roll+onset+pedal`` (it must start with ``roll``).
    progress : bool
        Show a tqdm bar.
    jobs : int
        Worker processes.

    Returns
    -------
    AudioCache
        The cache, reopened.
    """
    from tqdm import tqdm

    from pianossm.data.pool import ordered_map

    cache = AudioCache(path)
    parts = _parts(features)
    if parts[0] != "roll":
        raise PianoSSMError(f"layout {features!r} does not start with the roll")
    if cache.holds(features):
        return cache
    fs = cache.sample_rate / cache.hop
    threshold = int(cache.index.get("pedal_threshold", 64))
    tasks = ((cache.item_midi(i), rec["n_frames"], fs, threshold, features,
              cache.features[rec["frame_offset"]:rec["frame_offset"] + rec["n_frames"]]
              .tobytes()) for i, rec in enumerate(cache.items))
    names = [os.path.join(cache.path, _PARTS[p][1]) for p in parts[1:]]
    with contextlib.ExitStack() as stack:
        files = [stack.enter_context(open(n + ".partial", "wb")) for n in names]
        for extra in tqdm(ordered_map(_extra_parts, tasks, jobs), total=len(cache.items),
                          desc="features", unit="file", disable=not progress):
            for f, data in zip(files, extra):
                f.write(data)
    for name in names:
        os.replace(name + ".partial", name)
    index = dict(cache.index, features=features)
    tmp = os.path.join(cache.path, _INDEX + ".partial")
    with open(tmp, "w") as f:
        json.dump(index, f, indent=1)
    os.replace(tmp, os.path.join(cache.path, _INDEX))
    return AudioCache(cache.path)
