"""The program list of the ``large`` built-in dataset (about 9 hours with music21's corpus).

A :class:`Program` is a recipe (kind, seed, arguments) rather than a MIDI file, so that
worker processes generate, render and cache files independently and the list itself is
cheap to build and test.  Parts (train unless said):

* ``isol``: every key (88) x 8 velocities x 3 durations, dry or pedalled releases;
* ``rand`` / ``ucho``: random and usual chords, several durations, pedal on and off;
* ``rept``: repeated notes and chords; ``fast``: scales, arpeggios and trills;
* ``piece``: generated pieces (:func:`pianossm.data.generate.piece`), own seeds per split;
* ``chorale`` / ``work``: humanised scores of music21's corpus (:mod:`pianossm.data.corpus`).
  Settings of one chorale tune never straddle splits; without music21, more generated
  pieces take their place (still over 6 hours).

Validation: 2 generated pieces + 2 chorales (about 3 minutes); test: 3 generated pieces,
2 chorales and 1 keyboard work (about 6 minutes).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from pianossm.data.corpus import PIANO_WORKS, ScoreNotes, tune_key

__all__ = ["DURATIONS", "VELOCITIES", "Program", "build_large_programs", "large_programs",
           "make_midi"]

VELOCITIES = (20, 35, 50, 65, 80, 95, 110, 125)
DURATIONS = (0.15, 0.6, 2.0)
_ISOL_FILES, _CHORD_FILES, _CHORDS, _REPT_FILES, _REPTS, _FAST_FILES, _FASTS = \
    16, 8, 120, 6, 96, 10, 90
_TRAIN_PIECES, _FALLBACK_PIECES, _TRAIN_CHORALES = 90, 170, 250


@dataclass(frozen=True)
class Program:
    """One file of the dataset: how to generate its MIDI.

    Attributes
    ----------
    name : str
        File stem.
    split : str
        ``train``, ``validation`` or ``test``.
    kind : str
        ``isol``, ``chords``, ``rept``, ``fast``, ``piece`` or ``score``.
    seed : int
        Seed of its generator.
    args : dict
        Keyword arguments of the kind (a :class:`ScoreNotes` for ``score``).
    """

    name: str
    split: str
    kind: str
    seed: int
    args: dict = field(default_factory=dict)


def make_midi(program: Program) -> pretty_midi.PrettyMIDI:  # noqa: F821
    """Generate the MIDI of one program (deterministic given the program)."""
    from pianossm.data import generate as g
    from pianossm.data import passages as p
    from pianossm.data.corpus import humanise

    rng = np.random.default_rng(program.seed)
    a = program.args
    if program.kind == "isol":
        order = np.random.default_rng(a["master"])
        triples = [(k, v, d) for k in range(g.LOW, g.HIGH + 1) for v in VELOCITIES
                   for d in DURATIONS]
        perm = order.permutation(len(triples))
        part = np.array_split(perm, a["parts"])[a["part"]]
        return p.isolated_notes(rng, [triples[i] for i in part])
    if program.kind == "chords":
        return p.chords(rng, a["n"], a["usual"])
    if program.kind == "rept":
        return p.repeated_notes(rng, a["n"])
    if program.kind == "fast":
        return p.fast_passages(rng, a["n"])
    if program.kind == "piece":
        return g.piece(rng, a["bars"])
    if program.kind == "score":
        return humanise(a["notes"], rng, a["bpm"], a["transpose"], a["pedal"])
    raise ValueError(f"unknown program kind {program.kind!r}")


def _seed(ss: np.random.SeedSequence) -> int:
    return int(ss.generate_state(1, np.uint64)[0] >> np.uint64(1))


def _score_program(name: str, split: str, notes: ScoreNotes,
                   ss: np.random.SeedSequence) -> Program:
    """A humanised-score program; tempo, transposition and pedal drawn from ``ss``."""
    rng = np.random.default_rng(ss)
    work = PIANO_WORKS.get(notes.path)
    bpm = work * float(rng.uniform(0.92, 1.05)) if work else float(rng.uniform(56, 80))
    transpose = 0 if work else int(rng.integers(-3, 4))
    pedal = bool(rng.random() < (0.8 if work else 0.65))
    return Program(name, split, "score", _seed(ss.spawn(1)[0]),
                   {"notes": notes, "bpm": bpm, "transpose": transpose, "pedal": pedal})


def _corpus_programs(scores: list[ScoreNotes], ss: np.random.SeedSequence) -> list[Program]:
    """Chorales split by tune (held-out tunes have a single setting; at most
    ``_TRAIN_CHORALES`` in train); keyboard works in train, one in test."""
    chorales = [s for s in scores if s.path not in PIANO_WORKS]
    works = sorted((s for s in scores if s.path in PIANO_WORKS), key=lambda s: s.path)
    tunes: dict[tuple[int, ...], list[ScoreNotes]] = {}
    for s in sorted(chorales, key=lambda s: s.path):
        tunes.setdefault(tune_key(s), []).append(s)
    single = sorted(k for k, v in tunes.items() if len(v) == 1)
    rng = np.random.default_rng(ss.spawn(1)[0])
    picks = [single[i] for i in rng.permutation(len(single))[:4]]
    split_of = {k: "validation" for k in picks[:2]} | {k: "test" for k in picks[2:4]}
    test_work = works[int(rng.integers(len(works)))].path if works else None
    train = [s.path for s in sorted(chorales, key=lambda s: s.path)
             if tune_key(s) not in split_of]
    kept = {train[i] for i in rng.permutation(len(train))[:_TRAIN_CHORALES]}
    # The grouping above reads the top part, which in some cantata settings is a descant
    # instrument: drop from training any setting whose soprano opens like a held-out one's.
    held = {s.melody[:8] for s in chorales if tune_key(s) in split_of}
    kept -= {s.path for s in chorales if s.melody[:8] in held}
    seeds = iter(ss.spawn(len(scores) + 1)[1:])
    out = []
    for s in sorted(chorales, key=lambda s: s.path):
        seed_seq = next(seeds)
        if tune_key(s) not in split_of and s.path not in kept:
            continue
        stem = s.path.split("/")[-1].rsplit(".", 1)[0]
        out.append(_score_program(f"chorale_{stem}", split_of.get(tune_key(s), "train"), s,
                                  seed_seq))
    for s in works:
        stem = s.path.rsplit(".", 1)[0].replace("/", "_")
        out.append(_score_program(f"work_{stem}", "test" if s.path == test_work else "train",
                                  s, next(seeds)))
    return out


def large_programs(seed: int, scores: list[ScoreNotes] | None = None) -> list[Program]:
    """Every file of the large dataset.

    Parameters
    ----------
    seed : int
        Dataset seed; every program's seed is spawned from it.
    scores : list of ScoreNotes, optional
        Parsed corpus scores (:func:`pianossm.data.corpus.parse_score`); without them,
        generated pieces replace the corpus (validation and test included).

    Returns
    -------
    list of Program
    """
    root = np.random.SeedSequence(seed)
    ss = dict(zip(("isol", "rand", "ucho", "rept", "fast", "train", "validation", "test",
                   "corpus"), root.spawn(9)))
    out: list[Program] = []
    master = _seed(ss["isol"])
    for i, s in enumerate(ss["isol"].spawn(_ISOL_FILES)):
        out.append(Program(f"isol_{i:02d}", "train", "isol", _seed(s),
                           {"master": master, "part": i, "parts": _ISOL_FILES}))
    for kind in ("rand", "ucho"):
        for i, s in enumerate(ss[kind].spawn(_CHORD_FILES)):
            out.append(Program(f"{kind}_{i:02d}", "train", "chords", _seed(s),
                               {"n": _CHORDS, "usual": kind == "ucho"}))
    for i, s in enumerate(ss["rept"].spawn(_REPT_FILES)):
        out.append(Program(f"rept_{i:02d}", "train", "rept", _seed(s), {"n": _REPTS}))
    for i, s in enumerate(ss["fast"].spawn(_FAST_FILES)):
        out.append(Program(f"fast_{i:02d}", "train", "fast", _seed(s), {"n": _FASTS}))
    counts = {"train": _TRAIN_PIECES if scores else _FALLBACK_PIECES,
              "validation": 2 if scores else 4, "test": 3 if scores else 6}
    for split, n in counts.items():
        rng = np.random.default_rng(ss[split])
        bars = {"train": lambda: int(rng.integers(16, 33)), "validation": lambda: 16,
                "test": lambda: 24}[split]
        for i, s in enumerate(ss[split].spawn(n)):
            out.append(Program(f"piece_{split}_{i:03d}", split, "piece", _seed(s),
                               {"bars": bars()}))
    if scores:
        out += _corpus_programs(scores, ss["corpus"])
    return out


def build_large_programs(seed: int, corpus: bool | None = None, jobs: int = 1,
                         progress: bool = True) -> tuple[list[tuple[str, str, Program]], dict]:
    """``(name, split, program)`` triples of the large dataset and its manifest fields.

    Parameters
    ----------
    seed : int
        Dataset seed.
    corpus : bool, optional
        Use music21's corpus; default: when it is installed.  ``True`` without it is an error.
    jobs : int
        Worker processes parsing the scores.
    progress : bool
        Show a tqdm bar.

    Returns
    -------
    programs : list of tuple
    meta : dict
        ``corpus``: the music21 version used, or ``None``.
    """
    from tqdm import tqdm

    from pianossm.data.corpus import chorale_paths, corpus_available, parse_score
    from pianossm.data.pool import ordered_map
    from pianossm.errors import PianoSSMError

    have = corpus_available()
    if corpus and not have:
        raise PianoSSMError("music21's corpus is not installed (pip install 'pianossm[data]')")
    scores, version = None, None
    if have and corpus is not False:
        import music21

        paths = chorale_paths() + sorted(PIANO_WORKS)
        scores = list(tqdm(ordered_map(parse_score, paths, jobs), total=len(paths),
                           desc="scores", unit="file", disable=not progress))
        version = music21.__version__
    programs = large_programs(seed, scores)
    return [(p.name, p.split, p) for p in programs], {"corpus": version}
