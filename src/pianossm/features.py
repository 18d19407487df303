"""MIDI to model input at the MIDI frame rate: the piano roll of the 88 keys, and in the
``roll+onset+pedal`` layout onsets and the pedal level too.

The roll follows ``pretty_midi.PrettyMIDI.get_piano_roll`` exactly (the published models
were trained on it): frame ``k`` covers ``[k/fs, (k+1)/fs)``, a note fills frames
``int(start*fs) .. int(end*fs)-1`` with its velocity (overlapping notes of one key add),
and while the sustain pedal is down (CC64 >= threshold) each key keeps the running maximum
since the pedal went down.  Values are clipped to 127 and divided by 127 (the reference
casts to ``uint8``, which only differs when one key overlaps itself above 127).

It is computed frame range by frame range (:meth:`PianoRoll.frames`), so a file of any
length never needs its whole roll in memory; a test checks it against pretty_midi.

Input layouts (``PianoSSMConfig.features``, :data:`pianossm.config.FEATURE_KINDS`):

``roll`` (88 channels)
    The roll above: the paper's input and the published models'.
``roll+onset+pedal`` (177 channels)
    Channels 0-87: the ``roll``, unchanged (so a ``roll`` model's weights keep their
    meaning).  Channels 88-175: onsets: key ``k`` has velocity/127 in frames
    ``int(start*fs) .. int((start + ONSET_SECONDS)*fs) - 1`` of every note
    (:data:`ONSET_SECONDS` = 0.01; overlapping onsets of one key, of any instrument: the
    maximum), whatever the pedal does, so a note re-struck under the pedal (or without a
    gap) shows.  The box end is exact up to float noise: a start within 1e-6 frames of a
    frame boundary counts as on it, and its box is :func:`onset_frames` frames
    (``floor(ONSET_SECONDS * fs)``) from the frame the roll starts the note in, so a note on
    the frame grid always gets that many frames (as streaming gives), never one more or
    less (plain float arithmetic gives notes on a 1 ms tick grid 9, 10 or 11 frames at
    1000 frames/s).
    Channel 176: the sustain pedal level, the latest CC64 value/127 at each frame (0
    before any CC64; control changes in time order, ties in list order), per non-drum
    instrument combined by maximum.

MIDI frame rate per sample rate: one frame every ``hop`` samples, with ``hop`` = 16, 20,
25 at 16, 24, 44.1 kHz (1000, 1200, 1764 frames/s, as the published checkpoints) and
``round(sr / 1000)`` at other rates.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np

from pianossm.config import FEATURE_KINDS
from pianossm.errors import PianoSSMError

__all__ = ["FEATURE_KINDS", "LOWEST_KEY", "MAX_MIDI_SECONDS", "N_KEYS", "ONSET_SECONDS",
           "PianoRoll", "check_delay_frames", "feature_channels", "frame_hop", "load_midi",
           "onset_end", "onset_frames"]

LOWEST_KEY = 21
N_KEYS = 88
#: Length of a note's onset box in the ``roll+onset+pedal`` layout, seconds.
ONSET_SECONDS = 0.01
#: A start this close (in frames) to a frame boundary counts as on it (float noise).
_GRID_TOLERANCE = 1e-6
_STANDARD_HOPS = {16000: 16, 24000: 20, 44100: 25, 48000: 24, 22050: 21, 32000: 32}
MIN_RATE, MAX_RATE = 8000, 192000
#: Longest MIDI file rendered, seconds (6 h); longer ones are refused by :func:`load_midi`.
MAX_MIDI_SECONDS = 6 * 3600
#: Shortest: one MIDI frame at the lowest frame rate (1 ms), seconds.
MIN_MIDI_SECONDS = 1e-3


def frame_hop(sample_rate: int) -> int:
    """Audio samples per MIDI frame at ``sample_rate``.

    Parameters
    ----------
    sample_rate : int
        Synthesis rate in Hz, from 8000 to 192000.

    Returns
    -------
    int
        ``hop``; the MIDI frame rate is ``sample_rate / hop``.
    """
    if isinstance(sample_rate, bool) or not isinstance(sample_rate, (int, np.integer)):
        raise PianoSSMError(f"sample rate must be a whole number of Hz, got {sample_rate!r}")
    if not MIN_RATE <= sample_rate <= MAX_RATE:
        raise PianoSSMError(
            f"sample rate {sample_rate} Hz is out of reach; allowed: {MIN_RATE}..{MAX_RATE} Hz")
    return _STANDARD_HOPS.get(int(sample_rate), max(1, round(sample_rate / 1000)))


def feature_channels(features: str) -> int:
    """Channels of an input layout, with a clear error for an unknown one.

    Parameters
    ----------
    features : str
        A key of :data:`FEATURE_KINDS` (``roll`` or ``roll+onset+pedal``).

    Returns
    -------
    int
        88 or 177.
    """
    if not isinstance(features, str) or features not in FEATURE_KINDS:
        raise PianoSSMError(f"unknown feature layout {features!r}; this pianossm knows "
                            f"{sorted(FEATURE_KINDS)}")
    return FEATURE_KINDS[features]


def check_delay_frames(delay: int) -> int:
    """An input delay in frames, or one clear error.

    Parameters
    ----------
    delay : int
        Frames, ``>= 0``.

    Returns
    -------
    int
        ``delay`` as a Python int.
    """
    if isinstance(delay, bool) or not isinstance(delay, (int, np.integer)) or delay < 0:
        raise PianoSSMError(f"input delay must be a whole number of frames >= 0, got {delay!r}")
    return int(delay)


def onset_frames(fs: float) -> int:
    """Frames of the onset box of a note that starts on a frame boundary.

    Parameters
    ----------
    fs : float
        Frame rate, frames per second.

    Returns
    -------
    int
        ``floor(ONSET_SECONDS * fs)`` (10 at 1000 frames/s, 12 at 1200, 17 at 1764).
    """
    return int(math.floor(ONSET_SECONDS * fs + 1e-9))


def onset_end(start: np.ndarray, fs: float) -> np.ndarray:
    """One past the last frame of each note's onset box, ``int((start + ONSET_SECONDS)*fs)``.

    Exact up to float noise: a start within 1e-6 frames of a frame boundary counts as on
    it, and its box is :func:`onset_frames` frames from the frame the roll starts the note
    in (see the module docstring).

    Parameters
    ----------
    start : np.ndarray
        ``(N,)`` note starts, seconds (>= 0).
    fs : float
        Frame rate, frames per second.

    Returns
    -------
    np.ndarray
        ``(N,)`` int64 frames; the box is ``int(start*fs) .. end-1``.
    """
    x = np.asarray(start, dtype=np.float64) * fs
    first = x.astype(np.int64)  # the roll's start frame
    frac = x - first
    on_grid = (frac < _GRID_TOLERANCE) | (frac > 1.0 - _GRID_TOLERANCE)
    end = first + np.floor(frac + ONSET_SECONDS * fs + 1e-9).astype(np.int64)
    return np.where(on_grid, first + onset_frames(fs), end)


@dataclass(frozen=True)
class _Track:
    """One non-drum instrument: note arrays, pedal-down frame intervals and its CC64s."""

    pitch: np.ndarray  # (N,) int
    start: np.ndarray  # (N,) int, first frame
    end: np.ndarray  # (N,) int, one past the last frame
    velocity: np.ndarray  # (N,) float
    pedal: np.ndarray  # (P, 2) int, [down, up) frames
    n_frames: int
    onset_end: np.ndarray  # (N,) int, one past the last frame of each onset box
    cc_frame: np.ndarray  # (C,) int, frames of the CC64 events in time order
    cc_value: np.ndarray  # (C,) int, their values


class PianoRoll:
    """Frame-range access to the model input of a MIDI file, in one of the input layouts.

    Parameters
    ----------
    midi : pretty_midi.PrettyMIDI
        The performance.
    fs : float
        MIDI frame rate in frames per second.
    pedal_threshold : int
        CC64 value at and above which the pedal is down.
    features : str
        Input layout, a key of :data:`FEATURE_KINDS` (see the module docstring).
    delay : int
        Frames by which every channel is delayed (a model's
        :meth:`~pianossm.config.PianoSSMConfig.delay_frames`): frame ``k`` holds the
        undelayed frame ``k - delay`` (zero before it); :attr:`n_frames` stays the file's
        (the rendered length does not depend on the delay: its last frames reach past it,
        into the tail).

    Attributes
    ----------
    channels : int
        Width of :meth:`frames` (88 or 177).
    n_frames : int
        Frames of the file (pretty_midi's roll length).
    tracks : list
        One entry per non-drum instrument with notes or CC64 events.
    """

    def __init__(self, midi: pretty_midi.PrettyMIDI, fs: float,  # noqa: F821
                 pedal_threshold: int = 64, features: str = "roll", delay: int = 0) -> None:
        self.delay = check_delay_frames(delay)
        self.channels = feature_channels(features)
        self.features = features
        self.fs = fs
        self.pedal_threshold = int(pedal_threshold)
        self.tracks = [self._track(inst, fs, pedal_threshold) for inst in midi.instruments
                       if not inst.is_drum and (inst.notes or any(
                           cc.number == 64 for cc in inst.control_changes))]
        # pretty_midi sizes the roll by every instrument's end, drums included.
        ends = [int(fs * inst.get_end_time()) for inst in midi.instruments
                if inst.notes or inst.is_drum]
        self.n_frames = max(ends, default=0)
        self.n_notes = int(sum(len(t.pitch) for t in self.tracks))

    @classmethod
    def for_model(cls, midi: pretty_midi.PrettyMIDI, fs: float,  # noqa: F821
                  config: PianoSSMConfig) -> PianoRoll:  # noqa: F821
        """The input of a model with ``config`` at ``fs`` frames per second: its layout,
        pedal threshold and input delay (:meth:`~pianossm.config.PianoSSMConfig.delay_frames`)."""
        return cls(midi, fs, config.pedal_threshold, config.features, config.delay_frames(fs))

    @staticmethod
    def _track(inst: pretty_midi.Instrument, fs: float, threshold: int) -> _Track:  # noqa: F821
        notes = inst.notes
        pitch = np.array([n.pitch for n in notes], dtype=np.int64)
        start = np.array([int(n.start * fs) for n in notes], dtype=np.int64)
        end = np.array([int(n.end * fs) for n in notes], dtype=np.int64)
        vel = np.array([n.velocity for n in notes], dtype=np.float64)
        seconds = np.array([n.start for n in notes], dtype=np.float64)
        intervals, down, is_down = [], 0, False
        for cc in inst.control_changes:
            if cc.number != 64:
                continue
            now, pressed = int(cc.time * fs), cc.value >= threshold
            if pressed and not is_down:
                down, is_down = now, True
            elif is_down and not pressed:
                intervals.append((down, now))
                is_down = False
        ccs = sorted((cc for cc in inst.control_changes if cc.number == 64),
                     key=lambda cc: cc.time)  # stable: ties keep their order
        keep = (pitch >= LOWEST_KEY) & (pitch < LOWEST_KEY + N_KEYS)
        return _Track(pitch[keep] - LOWEST_KEY, start[keep], end[keep], vel[keep],
                      np.array(intervals, dtype=np.int64).reshape(-1, 2),
                      int(fs * inst.get_end_time()), onset_end(seconds, fs)[keep],
                      np.array([int(cc.time * fs) for cc in ccs], dtype=np.int64),
                      np.array([cc.value for cc in ccs], dtype=np.int64))

    def frames(self, first: int, last: int) -> np.ndarray:
        """Frames ``first .. last-1`` of the input.

        Parameters
        ----------
        first, last : int
            Frame range, ``0 <= first <= last``; the roll is zero past the end (an onset
            box may reach past it, the pedal keeps its last value).

        Returns
        -------
        np.ndarray
            ``(last - first, channels)`` float32 in [0, 1].
        """
        if not 0 <= first <= last:
            raise PianoSSMError(f"bad frame range {first}..{last}")
        out = np.zeros((last - first, self.channels), dtype=np.float32)
        lo = max(first, self.delay)  # frames before the delay stay zero
        if last > lo:
            a, b = lo - self.delay, last - self.delay  # the undelayed frames shown there
            rows = out[lo - first:]
            rows[:, :N_KEYS] = self.roll(a, b)
            if self.channels > N_KEYS:
                rows[:, N_KEYS:2 * N_KEYS] = self.onsets(a, b)
                rows[:, 2 * N_KEYS] = self.pedal(a, b)
        return out

    def roll(self, first: int, last: int) -> np.ndarray:
        """The ``roll`` channels of frames ``first .. last-1`` (undelayed): ``(n, 88)`` float32."""
        out = np.zeros((last - first, N_KEYS), dtype=np.float64)
        for track in self.tracks:
            out += self._track_frames(track, first, last)
        return (np.minimum(out, 127.0) / 127.0).astype(np.float32)

    def onsets(self, first: int, last: int) -> np.ndarray:
        """The onset channels of frames ``first .. last-1`` (undelayed): ``(n, 88)`` float32, the
        maximum velocity/127 of the notes whose onset box covers each frame."""
        out = np.zeros((last - first, N_KEYS), dtype=np.float64)
        for tr in self.tracks:
            lo = np.clip(tr.start, first, last) - first
            hi = np.clip(tr.onset_end, first, last) - first
            for i in np.nonzero(hi > lo)[0]:
                seg = out[lo[i]:hi[i], tr.pitch[i]]
                np.maximum(seg, tr.velocity[i], out=seg)
        return (np.minimum(out, 127.0) / 127.0).astype(np.float32)

    def pedal(self, first: int, last: int) -> np.ndarray:
        """The pedal channel of frames ``first .. last-1`` (undelayed): ``(n,)`` float32, the latest
        CC64 value/127 (0 before any), maximum over instruments."""
        out = np.zeros(last - first, dtype=np.float64)
        frames = np.arange(first, last, dtype=np.int64)
        for tr in self.tracks:
            if not tr.cc_frame.size:
                continue
            idx = np.searchsorted(tr.cc_frame, frames, side="right") - 1
            level = np.where(idx >= 0, tr.cc_value[np.maximum(idx, 0)], 0)
            np.maximum(out, level, out=out)
        return (np.minimum(out, 127.0) / 127.0).astype(np.float32)

    @staticmethod
    def _raw(track: _Track, first: int, last: int) -> np.ndarray:
        """Summed velocities of the notes of ``track`` in frames ``first..last-1``."""
        raw = np.zeros((last - first, N_KEYS), dtype=np.float64)
        lo = np.clip(track.start, first, last) - first
        hi = np.clip(np.minimum(track.end, track.n_frames), first, last) - first
        for i in np.nonzero(hi > lo)[0]:
            raw[lo[i]:hi[i], track.pitch[i]] += track.velocity[i]
        return raw

    def _track_frames(self, track: _Track, first: int, last: int) -> np.ndarray:
        roll = self._raw(track, first, last)
        for down, up in track.pedal:
            up = min(up, track.n_frames)
            lo, hi = max(down, first), min(up, last)
            if hi <= lo:
                continue
            seg = roll[lo - first:hi - first]
            if down < lo:  # the running maximum started before this range
                carry = self._raw(track, down, lo).max(axis=0)
                seg = np.vstack([carry[None], seg])
                roll[lo - first:hi - first] = np.maximum.accumulate(seg, axis=0)[1:]
            else:
                roll[lo - first:hi - first] = np.maximum.accumulate(seg, axis=0)
        return roll


class _TooLong(Exception):
    """The tempo map asks for more than :data:`MAX_MIDI_SECONDS` (``args[0]``: seconds)."""


def _smpte_to_beats(mf: mido.MidiFile) -> mido.MidiFile:  # noqa: F821
    """The same file with its SMPTE time division (ticks per video frame, tempo ignored)
    expressed as ticks per beat, one beat per second of frames, which pretty_midi reads."""
    import mido

    division = mf.ticks_per_beat & 0xFFFF
    fps = -((division >> 8) - 256)  # the high byte is -24, -25, -29 (29.97) or -30
    per_frame = division & 0xFF
    if fps not in (24, 25, 29, 30) or per_frame == 0:
        raise ValueError(f"bad SMPTE time division {division:#06x}")
    nominal = 30 if fps == 29 else fps  # 29: drop-frame, 30000/1001 frames per second
    tempo = 1_001_000 if fps == 29 else 1_000_000  # us per beat of ``nominal`` frames
    out = mido.MidiFile(type=mf.type, ticks_per_beat=nominal * per_frame)
    for track in mf.tracks:
        new = mido.MidiTrack()
        pending = 0
        for msg in track:
            if msg.type == "set_tempo":  # SMPTE time does not follow the tempo
                pending += msg.time
                continue
            new.append(msg.copy(time=msg.time + pending))
            pending = 0
        out.tracks.append(new)
    out.tracks[0].insert(0, mido.MetaMessage("set_tempo", tempo=tempo, time=0))
    return out


def load_midi(path: str | os.PathLike[str]) -> pretty_midi.PrettyMIDI:  # noqa: F821
    """Read a MIDI file, with one clear error for a missing, corrupt, empty or absurdly long
    file.

    SMPTE time division is converted to beats; a file lasting more than
    :data:`MAX_MIDI_SECONDS` (a broken tempo map, usually) is refused before any
    synthesis.

    Parameters
    ----------
    path : str or PathLike
        The ``.mid`` file.

    Returns
    -------
    pretty_midi.PrettyMIDI
    """
    import io

    import mido
    import pretty_midi

    name = os.fspath(path)
    if os.path.isdir(name):
        raise PianoSSMError(f"MIDI file is a folder: {name!r}")
    if not os.path.isfile(name):
        raise PianoSSMError(f"MIDI file not found: {name!r}")
    if os.path.getsize(name) == 0:
        raise PianoSSMError(f"MIDI file is empty (0 bytes): {name!r}")
    try:
        source: str | io.BytesIO = name
        mf = mido.MidiFile(name)
        if not mf.tracks:
            raise ValueError("it has no tracks")
        if mf.ticks_per_beat <= 0 or mf.ticks_per_beat >= 0x8000:
            source = io.BytesIO()
            mf = _smpte_to_beats(mf)
            mf.save(file=source)
            source.seek(0)
        seconds = max((mido.MidiFile(type=1, ticks_per_beat=mf.ticks_per_beat,
                                     tracks=[t]).length for t in mf.tracks)
                       ) if mf.type == 2 else mf.length  # the tempo map, before any arrays
        if not seconds <= MAX_MIDI_SECONDS:
            raise _TooLong(seconds)
        midi = pretty_midi.PrettyMIDI(source)
        end = midi.get_end_time()
    except _TooLong as exc:
        end = exc.args[0]
    except Exception as exc:  # noqa: BLE001  (mido/pretty_midi raise many types)
        why = (str(exc).strip().splitlines() or [""])[0][:200] or type(exc).__name__
        if isinstance(exc, EOFError):
            why = "it ends in the middle of a chunk: truncated?"
        raise PianoSSMError(f"not a readable MIDI file: {name!r} ({why})") from None
    if not end <= MAX_MIDI_SECONDS:
        raise PianoSSMError(f"MIDI file lasts {end:.4g} s, more than the {MAX_MIDI_SECONDS} s "
                            f"pianossm renders (a broken tempo map?): {name!r}")
    if not any(inst.notes for inst in midi.instruments if not inst.is_drum):
        raise PianoSSMError(f"MIDI file has no notes to play: {name!r}")
    if end < MIN_MIDI_SECONDS:
        raise PianoSSMError(f"MIDI file lasts only {end:.3g} s, too short to render (under "
                            f"{MIN_MIDI_SECONDS * 1000:g} ms; a tempo near 0?): {name!r}")
    return midi
