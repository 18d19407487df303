"""A compact, memory-mapped training cache: piano roll at the MIDI rate, audio as int16.

Layout of a cache folder::

    index.json     rate, hop, heads, audio statistics, and one record per item
    features.u8    (total_frames, 88) uint8: the roll times 127 (exact: velocities are
                   integers and the roll clips at 127)
    audio.i16      (total_frames * hop,) int16: audio times 32767

Items are stored back to back; an item is ``n_frames`` frames from ``frame_offset`` and
the matching ``n_frames * hop`` samples.  Both files are opened with ``numpy.memmap``,
so a dataset of any size (MAESTRO: 159 h) never sits in RAM.  The folder is built under a
temporary name and renamed into place, so a half-built cache never looks finished.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from pianossm.errors import PianoSSMError
from pianossm.data.notes import load_performance
from pianossm.features import N_KEYS, PianoRoll, frame_hop

__all__ = ["CACHE_VERSION", "AudioCache", "Item", "build_cache", "load_performance"]

log = logging.getLogger(__name__)
CACHE_VERSION = 1
_INDEX = "index.json"


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


def _prepare(task: tuple[Item, int, int, int]) -> tuple[bytes, bytes, int, np.ndarray]:
    """One item's roll (uint8 bytes), audio (int16 bytes), frame count and audio sums."""
    from pianossm.audio import read_audio

    item, sample_rate, pedal_threshold, tail = task
    hop = frame_hop(sample_rate)
    audio, _ = read_audio(item.audio, sample_rate)
    roll = PianoRoll(load_performance(item.midi), sample_rate / hop, pedal_threshold)
    n = _aligned_frames(os.path.basename(item.audio), roll.n_frames, len(audio) // hop,
                        tail, sample_rate / hop)
    feats = np.rint(roll.frames(0, n) * 127).astype(np.uint8)
    clip = np.zeros(n * hop, dtype=np.float32)
    clip[:min(len(audio), n * hop)] = audio[:n * hop]
    sums = np.array([clip.size, clip.sum(dtype=np.float64),
                     np.square(clip, dtype=np.float64).sum()])
    pcm = np.rint(np.clip(clip, -1, 1) * 32767).astype(np.int16)
    return feats.tobytes(), pcm.tobytes(), n, sums


def build_cache(items: Sequence[Item], out_dir: str | os.PathLike[str], sample_rate: int,
                pedal_threshold: int = 64, tail_seconds: float = 3.0,
                progress: bool = True, force: bool = False, jobs: int = 1) -> AudioCache:
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

    Returns
    -------
    AudioCache
        The opened cache.
    """
    from tqdm import tqdm

    from pianossm.data.pool import ordered_map

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
    tasks = ((item, sample_rate, pedal_threshold, tail) for item in items)
    with open(os.path.join(tmp, "features.u8"), "wb") as ff, \
            open(os.path.join(tmp, "audio.i16"), "wb") as fa:
        results = ordered_map(_prepare, tasks, jobs)
        for item, (feats, pcm, n, item_sums) in tqdm(zip(items, results), total=len(items),
                                                     desc="cache", unit="file",
                                                     disable=not progress):
            if item.split == "train":
                sums += item_sums
            ff.write(feats)
            fa.write(pcm)
            if item.head not in heads:
                heads.append(item.head)
            records.append({**asdict(item), "frame_offset": offset, "n_frames": n})
            offset += n
    mean = float(sums[1] / sums[0]) if sums[0] else 0.0
    std = float(np.sqrt(max(sums[2] / sums[0] - mean * mean, 0.0))) if sums[0] else 1.0
    index = {"version": CACHE_VERSION, "sample_rate": sample_rate, "hop": hop,
             "pedal_threshold": pedal_threshold, "total_frames": offset, "heads": heads,
             "audio_mean": mean, "audio_std": std or 1.0, "items": records}
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
        self.features = np.memmap(os.path.join(self.path, "features.u8"), np.uint8, "r",
                                  shape=(total, N_KEYS))
        self.audio = np.memmap(os.path.join(self.path, "audio.i16"), np.int16, "r",
                               shape=(total * self.hop,))

    def split(self, name: str) -> list[int]:
        """Indices of the items of one split (``train``, ``validation``, ``test``)."""
        return [i for i, it in enumerate(self.items) if it["split"] == name]

    def seconds(self, split: str | None = None) -> float:
        """Audio duration of a split (or of everything)."""
        ids = range(len(self.items)) if split is None else self.split(split)
        return sum(self.items[i]["n_frames"] for i in ids) * self.hop / self.sample_rate

    def segment(self, item: int, first: int, n_frames: int) -> tuple[np.ndarray, np.ndarray]:
        """Frames ``first .. first+n_frames-1`` of one item, zero past its end.

        Returns
        -------
        features : np.ndarray
            ``(n_frames, 88)`` float32 in [0, 1].
        audio : np.ndarray
            ``(n_frames * hop,)`` float32.
        """
        rec = self.items[item]
        have = max(0, min(n_frames, rec["n_frames"] - first))
        feats = np.zeros((n_frames, N_KEYS), dtype=np.float32)
        audio = np.zeros(n_frames * self.hop, dtype=np.float32)
        a = rec["frame_offset"] + first
        feats[:have] = self.features[a:a + have] / np.float32(127)
        audio[:have * self.hop] = self.audio[a * self.hop:(a + have) * self.hop] / np.float32(32767)
        return feats, audio

    def sample_crops(self, rng: np.random.Generator, batch: int, seconds: float,
                     split: str = "train") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``batch`` random crops, items drawn with probability proportional to length.

        Returns
        -------
        features : np.ndarray
            ``(B, F, 88)`` float32.
        audio : np.ndarray
            ``(B, F * hop)`` float32.
        heads : np.ndarray
            ``(B,)`` int64 head indices.
        """
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
            f, a = self.segment(item, first, n_frames)
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
