"""The large built-in dataset, checked from its program list and MIDI (nothing is rendered)."""

from __future__ import annotations

import collections
import dataclasses
import io
import shutil

import numpy as np
import pytest

from pianossm.data import large
from pianossm.data.corpus import ScoreNotes, corpus_available, tune_key
from pianossm.data.large import DURATIONS, VELOCITIES, Program, large_programs, make_midi
from pianossm.data.pool import ordered_map
from pianossm.errors import PianoSSMError


def _bytes(pm) -> bytes:  # noqa: ANN001
    buf = io.BytesIO()
    pm.write(buf)
    return buf.getvalue()


@pytest.fixture(scope="module")
def generated() -> list[tuple[Program, object]]:
    """Every program of the corpus-free large set with its MIDI (about 8 s)."""
    return [(p, make_midi(p)) for p in large_programs(0)]


def test_large_is_over_six_hours_without_the_corpus(generated: list) -> None:
    hours = collections.Counter()
    for p, pm in generated:
        hours[p.name.split("_")[0]] += pm.get_end_time() / 3600
    assert sum(hours.values()) >= 6.0
    assert hours["isol"] > 1.0 and hours["fast"] > 0.5 and hours["rept"] > 0.2
    assert hours["rand"] + hours["ucho"] > 0.8 and hours["piece"] > 2.5
    splits = collections.Counter(p.split for p, _ in generated)
    assert splits["validation"] == 4 and splits["test"] == 6
    val = sum(pm.get_end_time() for p, pm in generated if p.split == "validation")
    assert 60 < val < 300  # cheap to validate on


def test_isolated_notes_cover_every_key_velocity_and_duration(generated: list) -> None:
    notes = [n for p, pm in generated if p.kind == "isol" for n in pm.instruments[0].notes]
    assert len(notes) == 88 * len(VELOCITIES) * len(DURATIONS)
    pairs = collections.Counter(
        (n.pitch, min(VELOCITIES, key=lambda v: abs(v - n.velocity))) for n in notes)
    assert len(pairs) == 88 * len(VELOCITIES) and set(pairs.values()) == {len(DURATIONS)}
    lengths = np.array([n.end - n.start for n in notes])
    for d in DURATIONS:
        assert np.sum(np.abs(lengths / d - 1) < 0.16) >= 88 * len(VELOCITIES)
    # one note at a time, pedalled and dry releases
    isol = [pm for p, pm in generated if p.kind == "isol"]
    assert all(pm.instruments[0].control_changes for pm in isol)
    on = np.sort([n.start for n in isol[0].instruments[0].notes])
    assert np.all(np.diff(on) > 0.3)


def test_material_has_pedal_chords_and_fast_runs(generated: list) -> None:
    by_kind = collections.defaultdict(list)
    for p, pm in generated:
        by_kind[p.kind].append(pm)
    for kind in ("chords", "rept", "fast", "piece"):
        assert any(any(c.number == 64 for c in pm.instruments[0].control_changes)
                   for pm in by_kind[kind]), kind
    fast = by_kind["fast"][0].instruments[0].notes
    ioi = np.diff(np.sort([n.start for n in fast]))
    assert np.median(ioi[ioi > 0]) < 0.15  # more than 6 notes per second
    chord = by_kind["chords"][0].instruments[0].notes
    starts = np.round([n.start for n in chord], 1)
    assert collections.Counter(starts).most_common(1)[0][1] >= 3
    keys = {n.pitch for pm in generated for n in pm[1].instruments[0].notes}
    assert min(keys) == 21 and max(keys) == 108


def test_large_is_deterministic_given_the_seed(generated: list) -> None:
    again = large_programs(0)
    assert [p.name for p in again] == [p.name for p, _ in generated]
    for i in (0, 17, 30, 45, len(again) - 1):
        assert _bytes(make_midi(again[i])) == _bytes(generated[i][1])
    other = large_programs(1)
    assert _bytes(make_midi(other[-1])) != _bytes(generated[-1][1])


def test_splits_are_disjoint(generated: list) -> None:
    names = [p.name for p, _ in generated]
    assert len(set(names)) == len(names)
    seeds = collections.defaultdict(set)
    for p, _ in generated:
        seeds[p.split].add(p.seed)
    assert not seeds["train"] & seeds["test"] and not seeds["train"] & seeds["validation"]
    assert all(p.kind == "piece" for p, _ in generated if p.split != "train")


def _fake_score(path: str, melody: list[int]) -> ScoreNotes:
    n = len(melody)
    pitch = np.array(melody + [m - 12 for m in melody])
    onset = np.tile(np.arange(n, dtype=float), 2)
    notes = ScoreNotes(path, pitch, onset, np.ones(2 * n), np.repeat([0, 1], n),
                       np.arange(2 * n) % 8 == 7)
    return dataclasses.replace(notes, melody=tune_key(notes))


def test_chorale_tunes_never_straddle_splits() -> None:
    rng = np.random.default_rng(5)
    scores = []
    for t in range(12):  # 12 tunes, some with several settings in other keys
        tune = list(60 + np.cumsum(rng.integers(-3, 4, 12)))
        for k in range(1 + t % 3):
            scores.append(_fake_score(f"bach/bwv{t}.{k}.mxl", [m + 2 * k for m in tune]))
    scores.append(_fake_score("mozart/k545/movement1_exposition.mxl", [60, 62, 64, 65]))
    progs = large_programs(0, scores)
    split_of = collections.defaultdict(set)
    for p in progs:
        if p.kind == "score":
            split_of[tune_key(p.args["notes"])].add(p.split)
    assert all(len(s) == 1 for s in split_of.values())
    splits = collections.Counter(p.split for p in progs if p.kind == "score")
    assert splits["validation"] == 2 and splits["test"] == 3
    assert [p.name for p in large_programs(0, scores)] == [p.name for p in progs]
    pm = make_midi(next(p for p in progs if p.kind == "score"))
    assert 21 <= min(n.pitch for n in pm.instruments[0].notes)


def test_held_out_tunes_leave_training_whatever_part_is_on_top() -> None:
    rng = np.random.default_rng(7)
    scores = []
    for t in range(12):  # each tune once plain, once under a descant instrument
        tune = list(60 + np.cumsum(rng.integers(-3, 4, 12)))
        scores.append(_fake_score(f"bach/bwv{t}.1.mxl", tune))
        descant = list(84 + np.cumsum(rng.integers(-3, 4, 12)))
        twin = _fake_score(f"bach/bwv{t}.2.mxl", tune)
        n = len(tune)
        scores.append(ScoreNotes(twin.path, np.concatenate([descant, twin.pitch]),
                                 np.concatenate([np.arange(n, dtype=float), twin.onset]),
                                 np.ones(3 * n), np.concatenate([np.zeros(n, int),
                                                                 twin.voice + 1]),
                                 np.zeros(3 * n, bool), melody=tune_key(twin)))
    progs = [p for p in large_programs(0, scores) if p.kind == "score"]
    melody = {p.split: set() for p in progs}
    for p in progs:
        notes = p.args["notes"]
        melody[p.split].add(notes.melody[:8])
    assert melody["validation"] and melody["test"]
    assert not melody["train"] & (melody["validation"] | melody["test"])


@pytest.mark.skipif(not corpus_available(), reason="music21's corpus is not installed")
def test_humanised_chorale() -> None:
    from pianossm.data.corpus import humanise, parse_score

    notes = parse_score("bach/bwv10.7.mxl")
    assert notes.fermata.any() and len(np.unique(notes.voice)) >= 4
    violin = parse_score("bach/bwv31.9.mxl")  # a violin above the soprano
    assert violin.melody[:8] != tune_key(violin)[:8]
    assert violin.melody[:8] == parse_score("bach/bwv95.7.mxl").melody[:8]  # one tune
    pm = humanise(notes, np.random.default_rng(0), 66.0, transpose=2, pedal=True)
    inst = pm.instruments[0]
    assert len(inst.notes) == len(notes.pitch)
    assert any(c.number == 64 for c in inst.control_changes)
    vel = np.array([n.velocity for n in inst.notes])
    assert vel.std() > 5
    # one sounding note per key
    by_key = collections.defaultdict(list)
    for n in inst.notes:
        by_key[n.pitch].append((n.start, n.end))
    for spans in by_key.values():
        spans.sort()
        assert all(a[1] <= b[0] + 1e-6 for a, b in zip(spans, spans[1:]))
    again = humanise(notes, np.random.default_rng(0), 66.0, transpose=2, pedal=True)
    assert _bytes(again) == _bytes(pm)


def _square(x: int) -> int:
    return x * x


def test_ordered_map_keeps_order_and_checks_jobs() -> None:
    assert list(ordered_map(_square, range(9), 2)) == [x * x for x in range(9)]
    with pytest.raises(PianoSSMError, match="jobs"):
        list(ordered_map(_square, range(3), 0))


def test_large_checks_its_input_first(tmp_path) -> None:  # noqa: ANN001
    from pianossm.data.builtin import build_builtin

    with pytest.raises(PianoSSMError, match="jobs"):
        build_builtin(tmp_path / "x", size="large", jobs=0, progress=False)
    with pytest.raises(PianoSSMError, match="exists"):
        build_builtin(tmp_path, size="large", progress=False)
    with pytest.raises(PianoSSMError, match="SoundFont"):
        build_builtin(tmp_path / "y", soundfont="nope", size="large", progress=False)
    with pytest.raises(PianoSSMError, match="large"):
        build_builtin(tmp_path / "z", size="huge", progress=False)


def test_corpus_required_but_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    import pianossm.data.corpus as corpus

    monkeypatch.setattr(corpus, "corpus_available", lambda: False)
    with pytest.raises(PianoSSMError, match="music21"):
        large.build_large_programs(0, corpus=True, progress=False)
    progs, meta = large.build_large_programs(0, corpus=None, progress=False)
    assert meta == {"corpus": None} and len(progs) == len(large_programs(0))


@pytest.mark.skipif(shutil.which("fluidsynth") is None, reason="no fluidsynth")
def test_two_jobs_build_the_same_dataset(tmp_path) -> None:  # noqa: ANN001
    from pianossm.data.builtin import build_builtin

    caches = [build_builtin(tmp_path / f"j{j}", seed=2, size="tiny", progress=False, jobs=j)
              for j in (1, 2)]
    assert np.array_equal(caches[0].audio, caches[1].audio)
    assert np.array_equal(caches[0].features, caches[1].features)
    strip = [[{k: v for k, v in it.items() if k not in ("midi", "audio")} for it in c.items]
             for c in caches]
    assert strip[0] == strip[1]
    assert caches[0].index["audio_std"] == caches[1].index["audio_std"]
