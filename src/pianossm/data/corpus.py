"""Scores from music21's corpus of public-domain music, humanised into piano performances.

music21 (BSD-3-Clause, ``pip install "pianossm[data]"``) ships encodings of public-domain
works: we use J. S. Bach's four-part chorales (about 400) and a few keyboard and song
pieces.  A score becomes note arrays (:class:`ScoreNotes`, in quarter notes, ties merged,
one sounding note per key), and :func:`humanise` turns those into a performance: a tempo
curve with rubato, lengthened fermatas and a final ritardando, onset jitter with a leading
top voice, articulation, phrase-level velocity arcs with voice balance and accents, and
(in most pieces) legato sustain pedalling at bass changes.

Everything here is optional: :func:`corpus_available` says whether music21 and its corpus
can be used offline, and the built-in dataset falls back to generated pieces without it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from pianossm.errors import PianoSSMError

__all__ = ["PIANO_WORKS", "ScoreNotes", "chorale_paths", "corpus_available", "humanise",
           "parse_score", "tune_key"]

#: Keyboard and song pieces of the corpus with a performance tempo (quarter notes/min).
PIANO_WORKS = {
    "mozart/k545/movement1_exposition.mxl": 126.0,
    "joplin/maple_leaf_rag.mxl": 84.0,
    "chopin/mazurka06-2.krn": 132.0,
    "schubert/Lindenbaum.xml": 84.0,
}
LOW, HIGH = 21, 108


@dataclass(frozen=True)
class ScoreNotes:
    """The notes of a score in score time.

    Attributes
    ----------
    path : str
        Corpus path (relative to the corpus root), e.g. ``bach/bwv1.6.mxl``.
    pitch, onset, duration, voice : np.ndarray
        ``(N,)`` MIDI pitch, onset and duration in quarter notes, part index (0 = top).
    fermata : np.ndarray
        ``(N,)`` bool, the note carries a fermata.
    melody : tuple of int
        The first 10 intervals of the part that carries the tune: the one named soprano,
        else the top one (cantata chorales may put a descant instrument above the
        soprano), read before doublings are removed.
    """

    path: str
    pitch: np.ndarray
    onset: np.ndarray
    duration: np.ndarray
    voice: np.ndarray
    fermata: np.ndarray
    melody: tuple[int, ...] = ()

    @property
    def quarters(self) -> float:
        """Score length in quarter notes."""
        return float((self.onset + self.duration).max()) if len(self.pitch) else 0.0


def corpus_available() -> bool:
    """Whether music21 is installed with its corpus (no network is ever used)."""
    try:
        from music21 import corpus
    except ImportError:
        return False
    root = os.path.dirname(corpus.__file__)
    return os.path.isdir(os.path.join(root, "bach"))


def _corpus_root() -> str:
    from music21 import corpus

    return os.path.dirname(corpus.__file__)


def chorale_paths() -> list[str]:
    """Corpus paths of the Bach chorales (``bach/bwvN.M.mxl``), sorted."""
    root = os.path.join(_corpus_root(), "bach")
    return sorted(f"bach/{f}" for f in os.listdir(root)
                  if f.startswith("bwv") and f.endswith(".mxl"))


def parse_score(path: str) -> ScoreNotes:
    """Read one corpus score into :class:`ScoreNotes`.

    Ties are merged, grace notes dropped, and a key sounding in two parts at once (a
    doubling instrument) keeps one note: an earlier note is cut at the next onset of its key.
    """
    from music21 import converter, expressions

    full = os.path.join(_corpus_root(), path)
    if not os.path.isfile(full):
        raise PianoSSMError(f"not in music21's corpus: {path!r}")
    score = converter.parse(full, forceSource=True)
    rows, melody = [], 0  # melody: the part named soprano, else the top one
    for v, part in enumerate(score.parts):
        if not melody and "sopran" in (part.partName or "").lower():
            melody = v
        for n in part.stripTies().flatten().notes:
            ql = float(n.duration.quarterLength)
            if ql <= 0:
                continue
            ferm = any(isinstance(e, expressions.Fermata) for e in n.expressions)
            for p in n.pitches:
                rows.append((int(p.midi), float(n.offset), ql, v, ferm))
    if not rows:
        raise PianoSSMError(f"corpus score has no notes: {path!r}")
    tune = np.array([(r[1], r[0]) for r in rows if r[3] == melody], float).reshape(-1, 2)
    rows.sort(key=lambda r: (r[0], r[1], r[3]))
    keep = []
    for r in rows:  # one sounding note per key
        if keep and keep[-1][0] == r[0] and r[1] < keep[-1][1] + keep[-1][2]:
            if r[1] == keep[-1][1]:
                continue
            last = keep[-1]
            keep[-1] = (last[0], last[1], r[1] - last[1], last[3], last[4])
        keep.append(r)
    keep.sort(key=lambda r: (r[1], r[3], r[0]))
    a = list(zip(*keep))
    return ScoreNotes(path, np.array(a[0], np.int64), np.array(a[1]), np.array(a[2]),
                      np.array(a[3], np.int64), np.array(a[4], bool),
                      _intervals(tune[:, 0], tune[:, 1], 10))


def tune_key(notes: ScoreNotes, length: int = 10) -> tuple[int, ...]:
    """The top part's first melodic intervals: equal for settings of one tune.

    Two harmonisations of the same chorale melody (in any key) share this key, so the
    dataset can keep every setting of a tune in one split (:attr:`ScoreNotes.melody`
    also catches settings with a descant above the tune).
    """
    top = notes.voice == notes.voice.min()
    return _intervals(notes.onset[top], notes.pitch[top], length)


def _intervals(on: np.ndarray, pitch: np.ndarray, length: int) -> tuple[int, ...]:
    """First ``length`` intervals between the highest notes of successive onsets."""
    if not len(on):
        return ()
    order = np.lexsort((-pitch, on))
    on, pitch = on[order], pitch[order]
    first = np.concatenate([[True], np.diff(on) > 0])  # highest note at each onset
    return tuple(int(x) for x in np.diff(pitch[first])[:length])


def humanise(notes: ScoreNotes, rng: np.random.Generator, bpm: float,
             transpose: int = 0, pedal: bool = True) -> pretty_midi.PrettyMIDI:  # noqa: F821
    """An expressive piano performance of a score.

    Parameters
    ----------
    notes : ScoreNotes
        The score.
    rng : numpy.random.Generator
        Source of every expressive choice.
    bpm : float
        Mean tempo in quarter notes per minute.
    transpose : int
        Semitones; octaves are added or removed so that every note is a piano key.
    pedal : bool
        Use the sustain pedal.

    Returns
    -------
    pretty_midi.PrettyMIDI
        One piano, starting 0.3 s in.
    """
    from pianossm.data.generate import _midi

    pitch = notes.pitch + transpose
    while pitch.min() < LOW:
        pitch = pitch + 12
    while pitch.max() > HIGH and pitch.min() + 12 <= HIGH:
        pitch = pitch - 12
    pitch = np.clip(pitch, LOW, HIGH)
    n_q = int(np.ceil(notes.quarters)) + 1
    # Tempo: smooth rubato around bpm, fermatas held longer, a final ritardando.
    q = np.arange(n_q)
    period = float(rng.uniform(8, 16))
    drift = np.convolve(rng.standard_normal(n_q + 8), np.ones(8) / 8, "same")[4:n_q + 4]
    tempo = bpm * (1 + 0.07 * np.sin(2 * np.pi * q / period + rng.uniform(0, 2 * np.pi))
                   + 0.08 * drift)
    tempo[-4:] *= np.linspace(1.0, 0.7, min(4, n_q))
    stretch = np.ones(n_q)
    ferm_q = np.unique(np.floor(notes.onset[notes.fermata] + notes.duration[notes.fermata]
                                - 1e-6).astype(int).clip(0, n_q - 1))
    stretch[ferm_q] = rng.uniform(1.6, 2.3, len(ferm_q))
    grid = np.concatenate([[0.3], 0.3 + np.cumsum(60.0 / tempo * stretch)])

    def at(x: np.ndarray) -> np.ndarray:
        return np.interp(x, np.arange(n_q + 1), grid)

    n = len(pitch)
    top = notes.voice == notes.voice.min()
    bass = notes.voice == notes.voice.max()
    start = at(notes.onset) + rng.normal(0, 0.008, n) - 0.012 * top
    end = at(notes.onset + notes.duration) - rng.uniform(0.02, 0.08, n)
    end = np.maximum(end, start + 0.05)
    # Dynamics: a level per piece, an arc per phrase (fermata to fermata), voice balance.
    level = float(rng.uniform(45, 90))
    bounds = np.concatenate([[0.0], np.sort(notes.onset[notes.fermata]), [notes.quarters]])
    if len(bounds) < 4:  # no fermatas: phrases of 8 quarters
        bounds = np.arange(0.0, notes.quarters + 8, 8)
    idx = np.clip(np.searchsorted(bounds, notes.onset, side="right") - 1, 0, len(bounds) - 2)
    pos = (notes.onset - bounds[idx]) / np.maximum(bounds[idx + 1] - bounds[idx], 1e-3)
    arc_depth = rng.uniform(8, 24, len(bounds))[idx]
    vel = (level + arc_depth * np.sin(np.pi * np.clip(pos, 0, 1)) + 10 * top + 4 * bass
           - 6 * (~top & ~bass) + 5 * (np.mod(notes.onset, 4) == 0) + rng.normal(0, 4, n))
    vel = np.clip(np.rint(vel), 15, 127).astype(int)
    cc: list[tuple[float, int]] = []
    if pedal:  # legato pedal: up at each new bass onset, down again 50-90 ms later
        changes = np.unique(notes.onset[bass])
        for t in at(changes):
            cc += [(float(t) - 0.01, 0), (float(t) + rng.uniform(0.05, 0.09),
                                          int(rng.integers(90, 128)))]
        cc.append((float(end.max()) + 0.4, 0))
    return _midi([(int(p), float(s), float(e), int(v))
                  for p, s, e, v in zip(pitch, start, end, vel)], cc)
