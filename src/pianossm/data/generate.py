"""MIDI for the built-in dataset, MAPS-style: isolated notes, random chords, usual chords, pieces.

Everything is drawn from one ``numpy.random.Generator``, so a seed fixes every file.
Pieces are generated rather than taken from a corpus (no PyPI package we depend on ships
a piano performance corpus): a chord progression in a random key, an arpeggiated or
block-chord left hand, a scale-wise melody, with expressive timing (a smooth tempo curve
plus onset jitter), phrase-level dynamics, and legato sustain pedalling at chord changes.
"""

from __future__ import annotations

import numpy as np

__all__ = ["HIGH", "LOW", "isolated_notes", "piece", "random_chords", "usual_chords"]

LOW, HIGH = 21, 108  # piano keys A0..C8
_CHORD_SHAPES = {"maj": (0, 4, 7), "min": (0, 3, 7), "dim": (0, 3, 6), "aug": (0, 4, 8),
                 "dom7": (0, 4, 7, 10), "maj7": (0, 4, 7, 11), "min7": (0, 3, 7, 10)}
_MAJOR = (0, 2, 4, 5, 7, 9, 11)
_MINOR = (0, 2, 3, 5, 7, 8, 10)
_PROGRESSIONS = ((0, 5, 3, 4), (0, 3, 4, 0), (0, 4, 5, 3), (1, 4, 0, 0), (0, 3, 1, 4),
                 (5, 3, 0, 4))


def _midi(notes: list[tuple[int, float, float, int]],
          pedal: list[tuple[float, int]] | None = None) -> pretty_midi.PrettyMIDI:  # noqa: F821
    """A one-piano ``PrettyMIDI`` from ``(pitch, start, end, velocity)`` and CC64 events."""
    import pretty_midi

    pm = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    inst = pretty_midi.Instrument(program=0, name="piano")
    for pitch, start, end, vel in notes:
        inst.notes.append(pretty_midi.Note(int(np.clip(vel, 1, 127)), int(pitch),
                                           float(start), float(max(end, start + 0.02))))
    for time, value in pedal or []:
        inst.control_changes.append(pretty_midi.ControlChange(64, int(value), float(time)))
    pm.instruments.append(inst)
    return pm


def isolated_notes(rng: np.random.Generator, velocities: tuple[int, ...],
                   keys: range = range(LOW, HIGH + 1)) -> pretty_midi.PrettyMIDI:  # noqa: F821
    """Every key at every velocity, one at a time, in random order (MAPS ISOL).

    Each note is held 0.3-1.5 s and followed by 0.4-0.9 s of silence; a third of them
    are played with the sustain pedal down, as MAPS does.
    """
    pairs = [(k, v) for k in keys for v in velocities]
    order = rng.permutation(len(pairs))
    notes, pedal, t = [], [], 0.2
    for i in order:
        key, vel = pairs[i]
        dur = float(rng.uniform(0.3, 1.5))
        vel = int(np.clip(vel + rng.integers(-4, 5), 1, 127))
        if rng.random() < 1 / 3:
            pedal += [(t - 0.05, 127), (t + dur + 0.3, 0)]
            notes.append((key, t, t + dur, vel))
            t += dur + 0.3 + float(rng.uniform(0.4, 0.9))
        else:
            notes.append((key, t, t + dur, vel))
            t += dur + float(rng.uniform(0.4, 0.9))
    return _midi(notes, pedal)


def random_chords(rng: np.random.Generator, n: int) -> pretty_midi.PrettyMIDI:  # noqa: F821
    """``n`` chords of 2-7 random keys within two octaves (MAPS RAND)."""
    notes, t = [], 0.2
    for _ in range(n):
        size = int(rng.integers(2, 8))
        base = int(rng.integers(LOW, HIGH - 24))
        keys = rng.choice(np.arange(base, base + 25), size=size, replace=False)
        vel = int(rng.integers(25, 120))
        dur = float(rng.uniform(0.3, 1.5))
        for k in keys:
            notes.append((int(k), t + float(rng.uniform(0, 0.01)), t + dur,
                          vel + int(rng.integers(-6, 7))))
        t += dur + float(rng.uniform(0.2, 0.6))
    return _midi(notes)


def usual_chords(rng: np.random.Generator, n: int) -> pretty_midi.PrettyMIDI:  # noqa: F821
    """``n`` common chords (triads and sevenths, root position and inversions) (MAPS UCHO)."""
    shapes = list(_CHORD_SHAPES.values())
    notes, t = [], 0.2
    for _ in range(n):
        shape = list(shapes[int(rng.integers(len(shapes)))])
        for _ in range(int(rng.integers(0, len(shape)))):  # inversion
            shape = shape[1:] + [shape[0] + 12]
        root = int(rng.integers(LOW + 12, HIGH - 24))
        vel = int(rng.integers(25, 120))
        dur = float(rng.uniform(0.4, 2.0))
        for s in shape:
            notes.append((root + s, t + float(rng.uniform(0, 0.012)), t + dur,
                          vel + int(rng.integers(-5, 6))))
        t += dur + float(rng.uniform(0.2, 0.6))
    return _midi(notes)


def piece(rng: np.random.Generator, bars: int = 12) -> pretty_midi.PrettyMIDI:  # noqa: F821
    """A short expressive performance: melody over a chord progression, with pedal.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of every choice.
    bars : int
        Length in 4/4 bars.

    Returns
    -------
    pretty_midi.PrettyMIDI
    """
    tonic = int(rng.integers(0, 12))
    scale = _MAJOR if rng.random() < 0.6 else _MINOR
    bpm = float(rng.uniform(60, 132))
    prog = _PROGRESSIONS[int(rng.integers(len(_PROGRESSIONS)))]
    style = int(rng.integers(3))  # 0 block chords, 1 arpeggio, 2 alberti bass
    beats = 4 * bars
    # Expressive timing: a smooth tempo curve (rubato) integrated beat by beat.
    phase = float(rng.uniform(0, 2 * np.pi))
    tempo = bpm * (1 + 0.08 * np.sin(np.arange(beats + 1) * 2 * np.pi / 8 + phase)
                   + 0.03 * rng.standard_normal(beats + 1))
    tempo[-4:] *= np.linspace(1.0, 0.75, 4)  # final ritardando
    beat_time = np.concatenate([[0.3], 0.3 + np.cumsum(60.0 / tempo[:-1])])

    def at(beat: float) -> float:
        i = min(int(beat), beats - 1)
        return float(beat_time[i] + (beat - i) * (beat_time[i + 1] - beat_time[i])
                     + rng.normal(0, 0.008))

    # Phrase-level dynamics: a crescendo-diminuendo arc per 4 bars.
    def loud(beat: float) -> float:
        return 55 + 30 * np.sin(np.pi * (beat % 16) / 16) + float(rng.normal(0, 4))

    notes: list[tuple[int, float, float, int]] = []
    pedal: list[tuple[float, int]] = []
    lh_base, rh_base = 48 + tonic, 60 + tonic
    melody = 7 + int(rng.integers(-3, 4))  # scale degree index relative to rh_base
    for bar in range(bars):
        degree = prog[bar % len(prog)]
        chord = [scale[(degree + j) % 7] + 12 * ((degree + j) // 7) for j in (0, 2, 4)]
        b0 = 4.0 * bar
        # legato pedal: up just at the chord change, down again shortly after
        pedal += [(at(b0) - 0.02, 0), (at(b0) + 0.06, 100 + int(rng.integers(0, 28)))]
        if style == 0:
            for half in (0, 2):
                for c in chord:
                    notes.append((lh_base + c, at(b0 + half), at(b0 + half + 1.9),
                                  int(loud(b0) - 12)))
        else:
            pattern = (0, 1, 2, 1) if style == 1 else (0, 2, 1, 2)
            for k in range(8):
                c = chord[pattern[k % 4]] + (12 if style == 1 and k % 4 == 2 else 0)
                notes.append((lh_base + c, at(b0 + k / 2), at(b0 + k / 2 + 0.45),
                              int(loud(b0 + k / 2) - 15)))
        beat = 0.0
        while beat < 4.0:
            dur = float(rng.choice([0.5, 0.5, 1.0, 1.0, 1.5, 2.0])) if beat < 3.5 else 0.5
            dur = min(dur, 4.0 - beat)
            melody = int(np.clip(melody + rng.choice([-2, -1, -1, 0, 1, 1, 2, 3, -3]), 0, 13))
            if beat == 0 and rng.random() < 0.5:  # land on a chord tone at the bar line
                melody = min(range(14), key=lambda m: min(abs(m % 7 - c % 7) for c in chord)
                             + abs(m - melody) * 0.1)
            pitch = rh_base + scale[melody % 7] + 12 * (melody // 7)
            accent = 8 if beat == 0 else 0
            notes.append((pitch, at(b0 + beat), at(b0 + beat + dur * 0.95),
                          int(loud(b0 + beat) + accent)))
            beat += dur
    end = at(float(beats)) + 1.0
    pedal.append((end, 0))
    return _midi(notes, pedal)
