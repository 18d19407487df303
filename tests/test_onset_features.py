"""The ``roll+onset+pedal`` input layout: offline (PianoRoll) against a slow reference
built from pretty_midi's notes and control changes, and streaming (EventRoll) against
offline."""

from __future__ import annotations

import io
import itertools
import math
from fractions import Fraction

import mido
import numpy as np
import pretty_midi
import pytest

from pianossm.engine.events import EventRoll, events_from_roll
from pianossm.errors import PianoSSMError
from pianossm.features import (N_KEYS, ONSET_SECONDS, PianoRoll, feature_channels, load_midi,
                               onset_frames)

LAYOUT = "roll+onset+pedal"


def reference(midi: pretty_midi.PrettyMIDI, fs: float, n: int) -> np.ndarray:
    """The layout's first ``n`` frames the obvious way: pretty_midi's roll, one box per
    note in exact arithmetic, the pedal frame by frame."""
    out = np.zeros((n, 177))
    roll = np.minimum(midi.get_piano_roll(fs=fs)[21:109].T, 127) / 127  # (F, 88)
    out[:min(n, len(roll)), :88] = roll[:n]
    onset_len = Fraction(1, 100)
    assert float(onset_len) == ONSET_SECONDS
    for inst in midi.instruments:
        if inst.is_drum:
            continue
        for note in inst.notes:
            if not 21 <= note.pitch <= 108:
                continue
            lo = int(note.start * fs)  # pretty_midi's (float) frame, as the roll's
            x = Fraction(note.start) * Fraction(fs)  # exact
            c = onset_len * Fraction(fs)
            if abs(x - round(x)) < Fraction(1, 10**6):  # on a boundary, up to float noise
                hi = lo + math.floor(c)
            else:
                hi = math.floor(x + c)
            for f in range(lo, min(hi, n)):
                out[f, 88 + note.pitch - 21] = max(out[f, 88 + note.pitch - 21],
                                                   note.velocity / 127)
        level = np.zeros(n)
        for f in range(n):
            latest = [cc for cc in inst.control_changes
                      if cc.number == 64 and int(cc.time * fs) <= f]
            if latest:  # the last of the latest time
                level[f] = [cc for cc in latest if cc.time == max(c.time for c in latest)
                            ][-1].value / 127
        out[:, 176] = np.maximum(out[:, 176], level)
    return out.astype(np.float32)


def random_midi(rng: np.random.Generator, n_notes: int = 40) -> pretty_midi.PrettyMIDI:
    """Two piano tracks with re-strikes under the pedal, sub-frame and out-of-range notes,
    a pedal-only track and drums (with a CC64 that must be ignored)."""
    midi = pretty_midi.PrettyMIDI()
    for _ in range(2):
        inst = pretty_midi.Instrument(program=0)
        for _ in range(n_notes):
            start = float(rng.uniform(0, 3))
            dur = float(rng.choice([rng.uniform(0.0002, 0.002), rng.uniform(0.01, 0.8)]))
            inst.notes.append(pretty_midi.Note(int(rng.integers(1, 128)),
                                               int(rng.integers(15, 110)), start, start + dur))
        pitch = int(rng.integers(40, 80))  # one key struck again and again, without gaps
        for k in range(5):
            inst.notes.append(pretty_midi.Note(int(rng.integers(20, 120)), pitch, 0.3 * k,
                                               0.3 * k + 0.3))
        t = 0.0
        while t < 3.5:
            t += float(rng.uniform(0.05, 0.6))
            inst.control_changes.append(
                pretty_midi.ControlChange(64, int(rng.integers(0, 128)), t))
        midi.instruments.append(inst)
    pedal_only = pretty_midi.Instrument(program=0)
    pedal_only.control_changes += [pretty_midi.ControlChange(64, 30, 0.7),
                                   pretty_midi.ControlChange(64, 0, 1.9)]
    midi.instruments.append(pedal_only)
    drums = pretty_midi.Instrument(program=0, is_drum=True)
    drums.notes.append(pretty_midi.Note(100, 40, 0.5, 4.0))
    drums.control_changes.append(pretty_midi.ControlChange(64, 127, 0.1))
    midi.instruments.append(drums)
    return midi


@pytest.mark.parametrize("seed,fs", [(0, 1000.0), (1, 1200.0), (2, 1764.0), (3, 100.0),
                                     (4, 1000.0), (5, 1764.0)])
def test_layout_equals_slow_reference(seed: int, fs: float) -> None:
    midi = random_midi(np.random.default_rng(seed))
    roll = PianoRoll(midi, fs, features=LAYOUT)
    assert roll.channels == 177 == feature_channels(LAYOUT)
    n = roll.n_frames + 40
    got = roll.frames(0, n)
    assert got.shape == (n, 177) and got.dtype == np.float32
    want = reference(midi, fs, n)
    np.testing.assert_allclose(got, want, atol=1e-6, rtol=0)
    assert got[:, 88:176].any() and got[:, 176].any()
    # channels 0-87 are the roll layout's, bit for bit
    np.testing.assert_array_equal(got[:, :88], PianoRoll(midi, fs).frames(0, n))


def test_any_frame_range(rng: np.random.Generator) -> None:
    midi = random_midi(rng)
    roll = PianoRoll(midi, 1000.0, features=LAYOUT)
    whole = roll.frames(0, roll.n_frames + 30)
    cuts = sorted({0, roll.n_frames + 30, *rng.integers(0, roll.n_frames, 12).tolist()})
    parts = [roll.frames(a, b) for a, b in itertools.pairwise(cuts)]
    np.testing.assert_array_equal(np.concatenate(parts), whole)
    a = int(rng.integers(0, roll.n_frames))
    np.testing.assert_array_equal(roll.frames(a, a + 7), whole[a:a + 7])
    assert roll.frames(5, 5).shape == (0, 177)


def test_restrike_under_the_pedal_shows_only_in_the_onsets() -> None:
    midi = pretty_midi.PrettyMIDI()
    inst = pretty_midi.Instrument(program=0)
    inst.notes += [pretty_midi.Note(80, 60, 0.5, 1.0), pretty_midi.Note(40, 60, 1.5, 2.0),
                   pretty_midi.Note(90, 62, 2.2, 2.4), pretty_midi.Note(50, 62, 2.4, 2.6)]
    inst.control_changes += [pretty_midi.ControlChange(64, 100, 0.2),
                             pretty_midi.ControlChange(64, 0, 3.0)]
    midi.instruments.append(inst)
    f = PianoRoll(midi, 1000.0, features=LAYOUT).frames(0, 3100)
    k60, k62 = 60 - 21, 62 - 21
    # the roll holds 80 from 0.5 s to the pedal's release: the re-strike changes nothing
    np.testing.assert_array_equal(f[500:3000, k60], np.float32(80 / 127))
    assert not f[3000:, k60].any()
    np.testing.assert_array_equal(f[2200:3000, k62], np.float32(90 / 127))  # no gap: 90 held
    onset = f[:, 88 + k60]
    np.testing.assert_array_equal(np.nonzero(onset)[0], np.r_[500:510, 1500:1510])
    np.testing.assert_array_equal(onset[1500:1510], np.float32(40 / 127))
    np.testing.assert_array_equal(np.nonzero(f[:, 88 + k62])[0], np.r_[2200:2210, 2400:2410])
    np.testing.assert_array_equal(f[2400:2410, 88 + k62], np.float32(50 / 127))
    pedal = f[:, 176]
    assert not pedal[:200].any() and not pedal[3000:].any()
    np.testing.assert_array_equal(pedal[200:3000], np.float32(100 / 127))


def test_overlapping_onsets_take_the_maximum() -> None:
    midi = pretty_midi.PrettyMIDI()
    for vel, start in ((30, 0.100), (100, 0.105)):
        inst = pretty_midi.Instrument(program=0)
        inst.notes.append(pretty_midi.Note(vel, 70, start, start + 0.5))
        midi.instruments.append(inst)
    on = PianoRoll(midi, 1000.0, features=LAYOUT).frames(0, 200)[:, 88 + 70 - 21]
    expect = np.zeros(200, np.float32)
    expect[100:110] = 30 / 127
    expect[105:115] = 100 / 127
    np.testing.assert_array_equal(on, expect)


def _grid_midi(rng: np.random.Generator, fs: float, ticks_per_frame: int = 1,
               n_notes: int = 120, release_last: bool = False) -> pretty_midi.PrettyMIDI:
    """A MIDI file written and read back (so pretty_midi pairs its notes) whose ticks
    fall on a grid of ``ticks_per_frame`` ticks per frame at ``fs`` frames/s."""
    tempo = {1000.0: 500_000, 1200.0: 500_000, 1764.0: 1_000_000}[fs]
    mf = mido.MidiFile(ticks_per_beat=int(round(fs * tempo / 1e6)) * ticks_per_frame)
    events = []
    for ch in (0, 1):
        for _ in range(n_notes):
            t = int(rng.integers(0, 3000 * ticks_per_frame))
            d = int(rng.choice([rng.integers(1, 3), rng.integers(3, 600 * ticks_per_frame)]))
            key = int(rng.integers(18, 112))
            events += [(t, 1, mido.Message("note_on", note=key, velocity=int(
                rng.integers(1, 128)), channel=ch)),
                       (t + d, 0, mido.Message("note_off", note=key, channel=ch))]
        t = 0
        while t < 3200 * ticks_per_frame:
            t += int(rng.integers(1, 400 * ticks_per_frame))
            events.append((t, 0, mido.Message("control_change", control=64,
                                              value=int(rng.integers(0, 128)), channel=ch)))
    if release_last:
        events += [(3600 * ticks_per_frame, 0, mido.Message("control_change", control=64,
                                                            value=0, channel=ch))
                   for ch in (0, 1)]
    events.sort(key=lambda e: (e[0], e[1]))
    track = mido.MidiTrack([mido.MetaMessage("set_tempo", tempo=tempo, time=0)])
    now = 0
    for t, _, msg in events:
        track.append(msg.copy(time=t - now))
        now = t
    mf.tracks.append(track)
    buf = io.BytesIO()
    mf.save(file=buf)
    buf.seek(0)
    return pretty_midi.PrettyMIDI(buf)


def _stream_rows(er: EventRoll, n_samples: int, rng: np.random.Generator) -> np.ndarray:
    """Every frame of ``n_samples`` read in random block sizes: ``(frames, channels)``."""
    rows, done = [], 0
    while done < n_samples:
        n = min(int(rng.integers(1, 700)), n_samples - done)
        values, lens = er.advance(n)
        rows.append(np.repeat(np.stack(values), lens, axis=0))
        done += n
    return np.concatenate(rows)[::er.hop]


@pytest.mark.parametrize("seed,fs,hop,ticks", [(0, 1000.0, 16, 1), (1, 1200.0, 20, 1),
                                               (2, 1764.0, 25, 1), (3, 1000.0, 16, 2),
                                               (4, 1764.0, 25, 1)])
def test_event_roll_equals_offline_on_the_grid(seed: int, fs: float, hop: int,
                                               ticks: int) -> None:
    """Random files (re-strikes, pedals never released, sub-frame notes at 2 ticks a
    frame): the streamed rows equal the offline frames bit for bit."""
    rng = np.random.default_rng(seed)
    midi = _grid_midi(rng, fs, ticks, release_last=seed == 4)
    roll = PianoRoll(midi, fs, features=LAYOUT)
    er = EventRoll(hop, features=LAYOUT, sample_rate=int(round(fs * hop)))
    assert er.onset_len == onset_frames(fs) == {1000.0: 10, 1200.0: 12, 1764.0: 17}[fs]
    for t, msg in events_from_roll(roll, hop):
        er.add(t, msg)
    n = roll.n_frames + 60
    got = _stream_rows(er, n * hop, rng)
    want = roll.frames(0, n)
    assert got.shape == want.shape
    bad = np.argwhere(got != want)
    assert not bad.size, f"first mismatch (frame, channel) {bad[:5].tolist()}"
    assert want[:, 88:176].any() and want[:, 176].any()
    # the layout's box on this grid: every note's onset lasts exactly onset_frames(fs)
    pitch = np.concatenate([tr.pitch for tr in roll.tracks])
    start = np.concatenate([tr.start for tr in roll.tracks])
    lengths = {int(np.count_nonzero(want[s:s + 40, 88 + p])) for p, s in zip(pitch, start)
               if np.sum((pitch == p) & (np.abs(start - s) < 40)) == 1}
    assert lengths == {onset_frames(fs)}


def test_event_roll_rules_of_the_layout() -> None:
    er = EventRoll(10, features=LAYOUT, sample_rate=10000)  # 1000 frames/s: 10-frame boxes
    er.add(0, ("cc", 64, 90, 0))
    er.add(10, ("note_on", 60, 80, 0))
    er.add(25, ("note_on", 60, 20, 0))  # off the grid: from frame 3, under the pedal
    er.add(40, ("note_on", 61, 50, 1))
    er.add(45, ("cc", 64, 30, 1))  # group 1's pedal: maximum with group 0's 90
    er.add(60, ("note_off", 60, 0))
    er.add(150, ("cc", 64, 0, 0))
    values, lens = er.advance(200)
    rows = np.repeat(np.stack(values), lens, axis=0)[::10]  # (20, 177)
    k = 60 - 21
    np.testing.assert_array_equal(rows[:, k], np.r_[0, 80, 80, [100] * 3, [100] * 9,
                                                   [0] * 5].astype(np.float32) / 127)
    np.testing.assert_array_equal(rows[:, 88 + k], np.r_[0, [80] * 2, [80] * 8, [20] * 2,
                                                        [0] * 7].astype(np.float32) / 127)
    np.testing.assert_array_equal(rows[:, 88 + k + 1], np.r_[[0] * 4, [50] * 10, [0] * 6]
                                  .astype(np.float32) / 127)
    np.testing.assert_array_equal(rows[:, 176], np.r_[[90] * 15, [30] * 5]
                                  .astype(np.float32) / 127)
    assert er.value.shape == (177,)


def test_unknown_layouts_and_missing_rate() -> None:
    with pytest.raises(PianoSSMError, match="unknown feature layout 'roll\\+onsets'"):
        PianoRoll(pretty_midi.PrettyMIDI(), 1000.0, features="roll+onsets")
    with pytest.raises(PianoSSMError, match="unknown feature layout"):
        EventRoll(16, features="velocity")
    with pytest.raises(PianoSSMError, match="needs the sample rate"):
        EventRoll(16, features=LAYOUT)
    assert feature_channels("roll") == N_KEYS


def test_demo_file_streams_exactly() -> None:
    from importlib import resources

    midi = load_midi(str(resources.files("pianossm") / "assets" / "demo.mid"))
    roll = PianoRoll(midi, 1000.0, features=LAYOUT)
    er = EventRoll(16, features=LAYOUT, sample_rate=16000)
    for t, msg in events_from_roll(roll, 16):
        er.add(t, msg)
    values, lens = er.advance(roll.n_frames * 16)
    rows = np.repeat(np.stack(values), lens, axis=0)[::16]
    np.testing.assert_array_equal(rows, roll.frames(0, roll.n_frames))
