"""Generated material of the large built-in dataset: notes, chords, repetitions, runs.

Each function draws one file from a ``numpy.random.Generator`` and returns a one-piano
``PrettyMIDI``.  Where the sustain pedal is used, it goes down just before the sound and
comes up a random time after the key release, so the data holds both dry releases and
pedalled ones (the release then happens at the pedal-up).
"""

from __future__ import annotations

import numpy as np

from pianossm.data.generate import _CHORD_SHAPES, _MAJOR, _MINOR, HIGH, LOW, _midi

__all__ = ["chords", "fast_passages", "isolated_notes", "repeated_notes"]

_Note = tuple[int, float, float, int]


def _release(rng: np.random.Generator, pedal: list, t0: float, t1: float,
             share: float) -> float:
    """Pedal (with probability ``share``) over ``[t0, t1]`` plus a held release; the end time."""
    if rng.random() < share:
        up = t1 + float(rng.uniform(0.1, 1.2))
        pedal += [(t0 - 0.05, int(rng.integers(100, 128))), (up, 0)]
        return up
    return t1


def isolated_notes(rng: np.random.Generator,
                   triples: list[tuple[int, int, float]],
                   pedal_share: float = 1 / 3) -> pretty_midi.PrettyMIDI:  # noqa: F821
    """Single notes ``(key, velocity, duration)``, in the given order, with silence between.

    Velocity varies by +-3 and duration by +-15 %; the silence after each release is
    0.35-1.0 s, longer for low keys (they ring longer).
    """
    notes: list[_Note] = []
    pedal: list[tuple[float, int]] = []
    t = 0.2
    for key, vel, dur in triples:
        dur = dur * float(rng.uniform(0.85, 1.15))
        notes.append((key, t, t + dur, int(vel + rng.integers(-3, 4))))
        end = _release(rng, pedal, t, t + dur, pedal_share)
        t = end + float(rng.uniform(0.35, 1.0)) + 0.6 * (HIGH - key) / (HIGH - LOW)
    return _midi(notes, pedal)


def chords(rng: np.random.Generator, n: int, usual: bool,
           pedal_share: float = 0.4) -> pretty_midi.PrettyMIDI:  # noqa: F821
    """``n`` chords: random (2-7 keys within two octaves) or usual (triads, sevenths,
    inversions, sometimes with the bass doubled an octave below), held 0.15-3 s.
    """
    shapes = list(_CHORD_SHAPES.values())
    notes: list[_Note] = []
    pedal: list[tuple[float, int]] = []
    t = 0.2
    for _ in range(n):
        if usual:
            shape = list(shapes[int(rng.integers(len(shapes)))])
            for _ in range(int(rng.integers(0, len(shape)))):
                shape = shape[1:] + [shape[0] + 12]
            root = int(rng.integers(LOW + 12, HIGH - 20))
            keys = [root + s for s in shape]
            if rng.random() < 0.3:
                keys.append(root - 12)
        else:
            base = int(rng.integers(LOW, HIGH - 24))
            keys = [int(k) for k in rng.choice(np.arange(base, base + 25),
                                               size=int(rng.integers(2, 8)), replace=False)]
        vel = int(rng.integers(20, 126))
        dur = float(rng.choice([0.15, 0.4, 1.0, 2.0, 3.0])) * float(rng.uniform(0.8, 1.2))
        for k in keys:
            notes.append((k, t + float(rng.uniform(0, 0.015)), t + dur,
                          vel + int(rng.integers(-6, 7))))
        end = _release(rng, pedal, t, t + dur, pedal_share)
        t = end + float(rng.uniform(0.3, 0.8))
    return _midi(notes, pedal)


def repeated_notes(rng: np.random.Generator, n: int) -> pretty_midi.PrettyMIDI:  # noqa: F821
    """``n`` groups of one key (or a small chord) struck 3-16 times at 3-14 per second.

    Velocity patterns: even, crescendo, diminuendo or accented every 3rd/4th note;
    key-down time 30-90 % of the interval; a third of the groups with pedal.
    """
    notes: list[_Note] = []
    pedal: list[tuple[float, int]] = []
    t = 0.2
    for _ in range(n):
        key = int(np.clip(rng.normal(64, 16), LOW, HIGH))
        keys = [key] if rng.random() < 0.7 else [k for k in (key, key + 4, key + 7) if k <= HIGH]
        count, rate = int(rng.integers(3, 17)), float(rng.uniform(3, 14))
        base, kind = float(rng.uniform(30, 110)), int(rng.integers(4))
        hold = float(rng.uniform(0.3, 0.9)) / rate
        t0 = t
        for i in range(count):
            ramp = (i / max(count - 1, 1) - 0.5) * 40
            vel = base + (ramp if kind == 1 else -ramp if kind == 2 else 0)
            if kind == 3:
                vel += 15 if i % (3 + int(base) % 2) == 0 else -5
            on = t + float(rng.normal(0, 0.004))
            for k in keys:
                notes.append((k, max(on, t0), on + hold, int(vel + rng.normal(0, 3))))
            t += 1.0 / rate
        end = _release(rng, pedal, t0, t - 1.0 / rate + hold, 1 / 3)
        t = end + float(rng.uniform(0.5, 1.2))
    return _midi(notes, pedal)


def _scale(rng: np.random.Generator) -> list[int]:
    """Pitches of a 1-4 octave scale run (major, minor or chromatic), up, down or both."""
    steps = (_MAJOR, _MINOR, tuple(range(12)))[int(rng.choice(3, p=[0.45, 0.35, 0.2]))]
    octaves = int(rng.integers(1, 5))
    low = int(rng.integers(LOW + 3, HIGH - 12 * octaves))
    run = [low + 12 * o + s for o in range(octaves) for s in steps] + [low + 12 * octaves]
    way = int(rng.integers(3))
    return run if way == 0 else run[::-1] if way == 1 else run + run[-2::-1]


def _arpeggio(rng: np.random.Generator) -> list[int]:
    """A triad or seventh broken over 2-4 octaves, up, down or both."""
    shape = list(_CHORD_SHAPES.values())[int(rng.integers(len(_CHORD_SHAPES)))]
    octaves = int(rng.integers(2, 5))
    low = int(rng.integers(LOW, HIGH - 12 * octaves))
    run = [low + 12 * o + s for o in range(octaves) for s in shape] + [low + 12 * octaves]
    return run if rng.random() < 0.4 else run + run[-2::-1]


def _trill(rng: np.random.Generator) -> list[int]:
    """A half- or whole-tone trill of 1-4 s at the passage rate, ending on the main note."""
    key = int(rng.integers(LOW + 12, HIGH - 2))
    other = key + int(rng.integers(1, 3))
    length = int(rng.integers(12, 49))
    return [key if i % 2 == 0 else other for i in range(length)] + [key]


def fast_passages(rng: np.random.Generator, n: int) -> pretty_midi.PrettyMIDI:  # noqa: F821
    """``n`` fast runs: scales, arpeggios and trills at 6-16 notes per second.

    Each run has a crescendo or diminuendo, slightly uneven timing, sometimes a doubling
    an octave or two below (both hands), and the pedal in most arpeggios.
    """
    notes: list[_Note] = []
    pedal: list[tuple[float, int]] = []
    t = 0.2
    for _ in range(n):
        kind = int(rng.choice(3, p=[0.45, 0.35, 0.2]))
        run = (_scale, _arpeggio, _trill)[kind](rng)
        rate = float(rng.uniform(6, 16)) if kind < 2 else float(rng.uniform(10, 16))
        v0, v1 = rng.uniform(30, 115, 2)
        double = -12 * int(rng.integers(1, 3)) if kind == 0 and rng.random() < 0.3 else 0
        hold = float(rng.uniform(0.6, 1.1)) / rate
        t0 = last_off = t
        for i, key in enumerate(run):
            on = t + float(rng.normal(0, 0.005))
            vel = v0 + (v1 - v0) * i / max(len(run) - 1, 1) + float(rng.normal(0, 4))
            last = i == len(run) - 1
            off = on + (float(rng.uniform(0.3, 1.0)) if last else hold)
            notes.append((key, max(on, t0), off, int(vel)))
            last_off = off
            if double and key + double >= LOW:
                notes.append((key + double, max(on, t0) + 0.003, off, int(vel - 6)))
            t += 1.0 / rate * float(rng.uniform(0.93, 1.07))
        share = 0.7 if kind == 1 else 0.2
        end = _release(rng, pedal, t0, last_off, share)
        t = end + float(rng.uniform(0.6, 1.2))
    return _midi(notes, pedal)
