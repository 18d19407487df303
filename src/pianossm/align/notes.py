"""Notes of a MIDI file as arrays, piano rolls at the alignment frame rate, and re-timing.

A :class:`Notes` holds every note of the non-drum instruments in file order, so a new
set of onsets/offsets can be written back onto a copy of the original file
(:func:`retime_midi`): pitch, velocity, programs and controllers survive, and controller
events (pedal) move with the local shift of the notes around them.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass

import numpy as np

from pianossm.errors import PianoSSMError

__all__ = [
    "FPS",
    "LOWEST_KEY",
    "N_KEYS",
    "Notes",
    "key_gaps",
    "local_shift",
    "midi_to_notes",
    "midi_to_piano_roll",
    "retime_midi",
    "velocity_roll",
]

#: Alignment frame rate: 16 kHz audio, hop 160 samples -> 10 ms frames.
FPS = 100
LOWEST_KEY, N_KEYS = 21, 88


@dataclass(frozen=True)
class Notes:
    """Note arrays, all ``(N,)``, in file order (instrument by instrument).

    Attributes
    ----------
    onset, offset : np.ndarray
        Seconds, float64.
    pitch : np.ndarray
        MIDI pitch, int64.
    velocity : np.ndarray
        1..127, int64.
    """

    onset: np.ndarray
    offset: np.ndarray
    pitch: np.ndarray
    velocity: np.ndarray

    def __len__(self) -> int:
        return len(self.onset)

    def with_times(self, onset: np.ndarray, offset: np.ndarray) -> Notes:
        """The same notes at new ``(N,)`` onset/offset times."""
        return Notes(np.asarray(onset, np.float64), np.asarray(offset, np.float64),
                     self.pitch, self.velocity)

    @property
    def end_time(self) -> float:
        """Last offset in seconds (0 for no notes)."""
        return float(self.offset.max()) if len(self) else 0.0


def midi_to_notes(midi: pretty_midi.PrettyMIDI | str | os.PathLike[str]) -> Notes:  # noqa: F821
    """Collect the notes of all non-drum instruments.

    Parameters
    ----------
    midi : pretty_midi.PrettyMIDI or path
        The performance.

    Returns
    -------
    Notes
        ``N`` notes in file order; raises :class:`PianoSSMError` when there are none.
    """
    if isinstance(midi, (str, os.PathLike)):
        from pianossm.features import load_midi

        midi = load_midi(midi)
    notes = [n for inst in midi.instruments if not inst.is_drum for n in inst.notes]
    if not notes:
        raise PianoSSMError("MIDI has no notes to align")
    return Notes(np.array([n.start for n in notes], np.float64),
                 np.array([n.end for n in notes], np.float64),
                 np.array([n.pitch for n in notes], np.int64),
                 np.array([n.velocity for n in notes], np.int64))


def midi_to_piano_roll(notes: Notes, n_frames: int, fps: float = FPS,
                       offset_s: float = 0.0) -> np.ndarray:
    """Onset and frame channels of keys 21..108 at ``fps``.

    Frame ``k`` is centred on time ``offset_s + k / fps`` (like a centred CQT frame), so a
    note starting at ``t`` has its onset in frame ``round((t - offset_s) * fps)``.

    Parameters
    ----------
    notes : Notes
        The notes; pitches outside the piano are ignored.
    n_frames : int
        Length ``T`` of the roll.
    fps : float
        Frames per second.
    offset_s : float
        Time of frame 0.

    Returns
    -------
    np.ndarray
        ``(2, T, 88)`` float32: channel 0 onsets (1 at the onset frame), channel 1 frames
        (1 while the key is held, at least the onset frame).
    """
    roll = np.zeros((2, n_frames, N_KEYS), np.float32)
    key, on, off, _ = _note_frames(notes, n_frames, fps, offset_s)
    for k, a, b in zip(key, on, off):
        roll[1, max(a, 0):min(b, n_frames), k] = 1.0
        if a >= 0:
            roll[0, a, k] = 1.0
    return roll


def _note_frames(notes: Notes, n_frames: int, fps: float, offset_s: float,
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Key, onset frame, end frame (exclusive, at least onset + 1) and index of the ``M``
    notes on the piano that overlap frames ``0..n_frames-1`` (:func:`midi_to_piano_roll`'s
    grid), each ``(M,)`` int64."""
    key = notes.pitch - LOWEST_KEY
    on = np.round((notes.onset - offset_s) * fps).astype(np.int64)
    off = np.maximum(np.round((notes.offset - offset_s) * fps).astype(np.int64), on + 1)
    idx = np.flatnonzero((key >= 0) & (key < N_KEYS) & (off > 0) & (on < n_frames))
    return key[idx], on[idx], off[idx], idx


def velocity_roll(notes: Notes, n_frames: int, fps: float = FPS,
                  offset_s: float = 0.0) -> np.ndarray:
    """Each note's velocity / 127 over the frames its key is held.

    The frames are those of :func:`midi_to_piano_roll`'s frame channel (where two notes of
    a key overlap, the louder).

    Parameters
    ----------
    notes : Notes
        The notes; pitches outside the piano are ignored.
    n_frames : int
        Length ``T`` of the roll.
    fps : float
        Frames per second.
    offset_s : float
        Time of frame 0.

    Returns
    -------
    np.ndarray
        ``(T, 88)`` float32 in [0, 1].
    """
    roll = np.zeros((n_frames, N_KEYS), np.float32)
    key, on, off, idx = _note_frames(notes, n_frames, fps, offset_s)
    vel = np.clip(notes.velocity[idx], 0, 127).astype(np.float32) / 127.0
    for k, a, b, v in zip(key, on, off, vel):
        span = roll[max(a, 0):min(b, n_frames), k]
        np.maximum(span, v, out=span)
    return roll


def key_gaps(notes: Notes) -> np.ndarray:
    """Each note's distance to the nearest other onset of its key.

    Parameters
    ----------
    notes : Notes
        ``N`` notes, in any order.

    Returns
    -------
    np.ndarray
        ``(N,)`` seconds (``inf`` for a key's only note).
    """
    gap = np.full(len(notes), np.inf)
    for k in np.unique(notes.pitch):
        idx = np.nonzero(notes.pitch == k)[0]
        idx = idx[np.argsort(notes.onset[idx], kind="stable")]
        d = np.diff(notes.onset[idx])
        gap[idx[1:]] = np.minimum(gap[idx[1:]], d)
        gap[idx[:-1]] = np.minimum(gap[idx[:-1]], d)
    return gap


def local_shift(old: np.ndarray, new: np.ndarray, times: np.ndarray,
                width: int = 5) -> np.ndarray:
    """Smooth shift ``new - old`` of the notes, evaluated at ``times``.

    Parameters
    ----------
    old, new : np.ndarray
        ``(N,)`` onsets before and after alignment.
    times : np.ndarray
        ``(M,)`` times (on the old time line) at which to evaluate the shift.
    width : int
        Running-median width over notes sorted by time (removes per-note jitter).

    Returns
    -------
    np.ndarray
        ``(M,)`` shift in seconds, held constant before the first / after the last note.
    """
    order = np.argsort(old, kind="stable")
    t, s = old[order], (new - old)[order]
    if len(t) >= width > 1:
        pad = width // 2
        padded = np.pad(s, pad, mode="edge")
        s = np.median(np.lib.stride_tricks.sliding_window_view(padded, width), axis=1)
    t, idx = np.unique(t, return_index=True)
    return np.interp(times, t, s[idx])


def retime_midi(midi: pretty_midi.PrettyMIDI, notes: Notes,  # noqa: F821
                aligned: Notes) -> pretty_midi.PrettyMIDI:  # noqa: F821
    """A copy of ``midi`` with every note moved to its aligned time.

    Parameters
    ----------
    midi : pretty_midi.PrettyMIDI
        The input file ``notes`` came from (same order, see :func:`midi_to_notes`).
    notes, aligned : Notes
        ``N`` notes before and after alignment.

    Returns
    -------
    pretty_midi.PrettyMIDI
        Same instruments, notes (pitch, velocity), controllers and pitch bends; notes at
        the aligned times, controllers shifted by the local note shift, kept in order.
    """
    out = copy.deepcopy(midi)
    i = 0
    for inst in out.instruments:
        if inst.is_drum:
            continue
        for note in inst.notes:
            note.start = max(0.0, float(aligned.onset[i]))
            note.end = max(note.start + 1e-3, float(aligned.offset[i]))
            i += 1
        for events in (inst.control_changes, inst.pitch_bends):
            if not events:
                continue
            times = np.array([e.time for e in events])
            moved = np.maximum.accumulate(
                np.maximum(times + local_shift(notes.onset, aligned.onset, times), 0.0))
            for e, t in zip(events, moved):
                e.time = float(t)
    if i != len(aligned):
        raise PianoSSMError(f"aligned notes ({len(aligned)}) do not match the MIDI file ({i})")
    return out
