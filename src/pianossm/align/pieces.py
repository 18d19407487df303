"""Deterministic generated piano performances for alignment training data.

Each piece (seeded) has a right-hand random-walk melody with varied rhythm (including
fast runs and repeated notes), a left hand of block chords, arpeggios or octaves in a
random key, a smoothly varying tempo (rubato), phrase-shaped velocities with random
accents, and sustain pedal changed with the harmony.  Hand-written because no library
generates expressive piano performances; it only needs to cover the kinds of textures an
aligner meets (monophony, dense chords, repeated notes, pedalled resonance).
"""

from __future__ import annotations

import numpy as np

__all__ = ["generate_piece"]

_MAJOR = np.array([0, 2, 4, 5, 7, 9, 11])
_MINOR = np.array([0, 2, 3, 5, 7, 8, 10])


def _scale_pitches(root: int, minor: bool, lo: int, hi: int) -> np.ndarray:
    steps = _MINOR if minor else _MAJOR
    return np.array([p for p in range(lo, hi + 1) if (p - root) % 12 in steps])


def _tempo_map(n_beats: int, rng: np.random.Generator) -> np.ndarray:
    """``(n_beats + 1,)`` beat times in seconds with smooth rubato."""
    bpm = rng.uniform(55, 150)
    beat = 60.0 / bpm
    t = np.arange(n_beats + 1)
    rub = rng.uniform(0.0, 0.25)
    dev = rub * np.sin(2 * np.pi * t / rng.uniform(6, 20) + rng.uniform(0, 6.3))
    dev += rng.normal(0, 0.03, n_beats + 1)
    return np.concatenate([[0.0], np.cumsum(beat * np.exp(dev[:-1]))])


def _melody(scale: np.ndarray, n_beats: int, rng: np.random.Generator) -> list[tuple]:
    """``(beat_on, beat_off, pitch, velocity)`` of the right hand."""
    out, b = [], 0.0
    idx = int(rng.integers(len(scale) // 3, 2 * len(scale) // 3))
    durs = rng.choice([[1.0, 0.5, 0.5, 2.0], [0.25, 0.5, 0.5, 1.0], [0.25, 0.25, 0.5, 1.0]])
    base_vel = rng.uniform(45, 95)
    while b < n_beats:
        d = float(rng.choice(durs))
        if rng.random() < 0.05:  # a fast run
            d = 0.125
        idx = int(np.clip(idx + rng.choice([-2, -1, -1, 0, 1, 1, 2, 3, -3]), 0, len(scale) - 1))
        vel = base_vel + 20 * np.sin(np.pi * (b % 8) / 8) + rng.normal(0, 8)
        legato = rng.uniform(0.6, 1.05)
        if rng.random() > 0.06:  # some rests
            out.append((b, b + d * legato, int(scale[idx]), vel))
            if rng.random() < 0.15 and idx >= 2:  # a third below
                out.append((b, b + d * legato, int(scale[idx - 2]), vel - 10))
        b += d
    return out


def _left_hand(root: int, minor: bool, n_beats: int, rng: np.random.Generator,
               ) -> tuple[list[tuple], list[float]]:
    """Left-hand notes and the beats of harmony changes (for the pedal)."""
    degrees = [0, 3, 4, 5, 1, 4] if not minor else [0, 3, 4, 5, 6, 4]
    style = rng.integers(0, 3)
    beats_per_chord = int(rng.choice([2, 4]))
    bass_oct = int(rng.integers(36, 49))
    scale = _scale_pitches(root, minor, 24, 72)
    out, changes, b = [], [], 0
    base_vel = rng.uniform(35, 80)
    while b < n_beats:
        deg = int(rng.choice(degrees))
        low = scale[np.searchsorted(scale, bass_oct) + deg]
        chord = [int(low), int(scale[np.searchsorted(scale, low) + 2]),
                 int(scale[np.searchsorted(scale, low) + 4])]
        vel = base_vel + rng.normal(0, 6)
        changes.append(float(b))
        if style == 0:  # block chords on every beat
            for k in range(beats_per_chord):
                out += [(b + k, b + k + 0.9, p, vel - 5 * (k % 2)) for p in chord]
        elif style == 1:  # arpeggio in eighths
            pattern = [chord[0], chord[2], chord[1], chord[2]]
            for k in range(2 * beats_per_chord):
                p = pattern[k % 4]
                out.append((b + k / 2, b + k / 2 + 0.45, p + (12 if k % 4 == 3 else 0), vel))
        else:  # octave bass and off-beat chord
            out.append((b, b + beats_per_chord, chord[0] - 12, vel + 8))
            out.append((b, b + beats_per_chord, chord[0], vel))
            for k in range(1, beats_per_chord):
                out += [(b + k, b + k + 0.5, p + 12, vel - 10) for p in chord[1:]]
        b += beats_per_chord
    return out, changes


def generate_piece(seed: int, seconds: float = 30.0) -> pretty_midi.PrettyMIDI:  # noqa: F821
    """A generated expressive piano performance.

    Parameters
    ----------
    seed : int
        Makes the piece (the same seed gives the same file).
    seconds : float
        Approximate length; notes after it are cut.

    Returns
    -------
    pretty_midi.PrettyMIDI
        One acoustic-piano instrument with notes and sustain-pedal events.
    """
    import pretty_midi

    rng = np.random.default_rng(seed)
    root, minor = int(rng.integers(0, 12)), bool(rng.random() < 0.4)
    n_beats = int(seconds * 3) + 8
    times = _tempo_map(n_beats, rng)
    n_beats = min(n_beats, int(np.searchsorted(times, seconds)))
    rh = _melody(_scale_pitches(root, minor, 55, 96), n_beats, rng)
    lh, changes = _left_hand(root, minor, n_beats, rng)
    to_sec = lambda b: float(np.interp(b, np.arange(len(times)), times))
    inst = pretty_midi.Instrument(program=0, name="piano")
    for on, off, pitch, vel in rh + lh:
        t0 = to_sec(on) + rng.normal(0, 0.008)  # the "player's" own asynchrony
        t1 = to_sec(off)
        if t0 < 0 or t0 >= seconds or t1 <= t0 + 0.03:
            continue
        v = int(np.clip(vel + rng.normal(0, 5) + (25 if rng.random() < 0.04 else 0), 12, 127))
        inst.notes.append(pretty_midi.Note(v, int(pitch), t0, min(t1, seconds + 1.0)))
    if rng.random() < 0.7:  # pedal changed with the harmony
        for c in changes:
            t = to_sec(c)
            if t < seconds:
                inst.control_changes.append(pretty_midi.ControlChange(64, 0, t + 0.02))
                inst.control_changes.append(pretty_midi.ControlChange(64, 100, t + 0.08))
        inst.control_changes.append(pretty_midi.ControlChange(64, 0, seconds))
    inst.notes.sort(key=lambda n: (n.start, n.pitch))
    midi = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    midi.instruments.append(inst)
    return midi
