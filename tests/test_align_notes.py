"""Notes, piano rolls, re-timing and the perturbation model."""

import numpy as np
import pretty_midi
import pytest

from pianossm.align.notes import (
    Notes,
    local_shift,
    midi_to_notes,
    midi_to_piano_roll,
    retime_midi,
    velocity_roll,
)
from pianossm.align.perturb import PerturbConfig, perturb_notes
from pianossm.errors import PianoSSMError


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def _midi(n: int = 20) -> pretty_midi.PrettyMIDI:
    midi = pretty_midi.PrettyMIDI()
    inst = pretty_midi.Instrument(0)
    for i in range(n):
        inst.notes.append(pretty_midi.Note(40 + i, 48 + i % 12, 0.5 * i, 0.5 * i + 0.4))
    inst.control_changes += [pretty_midi.ControlChange(64, 100, 1.0),
                             pretty_midi.ControlChange(64, 0, 3.0)]
    midi.instruments.append(inst)
    return midi


def test_roll_onset_frames_and_frames():
    notes = Notes(np.array([0.0, 0.104, 0.5]), np.array([0.2, 0.3, 0.51]),
                  np.array([21, 60, 108]), np.array([64, 64, 64]))
    roll = midi_to_piano_roll(notes, 100)
    assert roll.shape == (2, 100, 88)
    assert np.flatnonzero(roll[0, :, 0]).tolist() == [0]
    assert np.flatnonzero(roll[0, :, 39]).tolist() == [10]
    assert np.flatnonzero(roll[1, :, 39]).tolist() == list(range(10, 30))
    assert np.flatnonzero(roll[1, :, 87]).tolist() == [50]  # at least the onset frame


def test_velocity_roll_holds_each_note_velocity_over_its_frames():
    """velocity / 127 over the frame channel's frames; the louder of two overlapping notes
    of a key; keys outside the piano ignored."""
    notes = Notes(np.array([0.0, 0.104, 0.2, 0.5, 0.3]), np.array([0.2, 0.3, 0.4, 0.51, 0.4]),
                  np.array([21, 60, 60, 108, 20]), np.array([127, 40, 100, 64, 90]))
    v = velocity_roll(notes, 100)
    frames = midi_to_piano_roll(notes, 100)[1]
    assert v.shape == (100, 88) and v.dtype == np.float32
    np.testing.assert_array_equal(v > 0, frames > 0)
    np.testing.assert_allclose(v[0:20, 0], 1.0)
    np.testing.assert_allclose(v[10:20, 39], 40 / 127)
    np.testing.assert_allclose(v[20:40, 39], 100 / 127)  # the louder where both are held
    np.testing.assert_allclose(v[50, 87], 64 / 127)
    w = velocity_roll(notes, 100, offset_s=0.15)  # frame k at 0.15 + k / 100 s
    np.testing.assert_array_equal(w[:85], v[15:])


def test_roll_with_offset_drops_earlier_onsets():
    notes = Notes(np.array([1.0, 2.0]), np.array([3.0, 2.5]), np.array([60, 61]),
                  np.array([80, 80]))
    roll = midi_to_piano_roll(notes, 200, offset_s=1.5)
    assert roll[0].sum() == 1 and roll[0, 50, 40] == 1
    assert roll[1, :150, 39].sum() == 150  # the held note without its onset


def test_retime_keeps_every_note_and_moves_pedal():
    midi = _midi()
    notes = midi_to_notes(midi)
    moved = notes.with_times(notes.onset + 0.05, notes.offset + 0.05)
    out = retime_midi(midi, notes, moved)
    got = midi_to_notes(out)
    assert len(got) == len(notes)
    np.testing.assert_array_equal(got.pitch, notes.pitch)
    np.testing.assert_array_equal(got.velocity, notes.velocity)
    np.testing.assert_allclose(got.onset, notes.onset + 0.05, atol=2e-3)
    cc = [c.time for c in out.instruments[0].control_changes]
    np.testing.assert_allclose(cc, [1.05, 3.05], atol=2e-3)


def test_local_shift_interpolates_and_holds():
    old = np.array([0.0, 1.0, 2.0])
    new = old + np.array([0.1, 0.2, 0.3])
    np.testing.assert_allclose(local_shift(old, new, np.array([-1.0, 0.5, 5.0]), width=1),
                               [0.1, 0.15, 0.3])


def test_midi_without_notes_is_an_error():
    with pytest.raises(PianoSSMError, match="no notes"):
        midi_to_notes(pretty_midi.PrettyMIDI())


def test_perturbation_bounds_and_determinism(rng):
    notes = midi_to_notes(_midi(200))
    cfg = PerturbConfig(max_shift=0.1)
    a = perturb_notes(notes, cfg, np.random.default_rng(5))
    b = perturb_notes(notes, cfg, np.random.default_rng(5))
    np.testing.assert_array_equal(a.onset, b.onset)
    d = a.onset - notes.onset
    assert np.abs(d).max() <= 0.1 + 1e-9 and np.abs(d).max() > 0.03
    assert np.all(a.offset - a.onset >= 0.02 - 1e-9)
    np.testing.assert_array_equal(a.pitch, notes.pitch)


def test_zero_perturbation_is_identity(rng):
    notes = midi_to_notes(_midi())
    cfg = PerturbConfig(0.1, 0.0, 0.0, 0.0, 0.0)
    out = perturb_notes(notes, cfg, rng)
    np.testing.assert_allclose(out.onset, notes.onset)


def test_global_offset_only_shifts_everything_equally(rng):
    notes = midi_to_notes(_midi())
    out = perturb_notes(notes, PerturbConfig(0.1, 0.08, 0.0, 0.0, 0.0), rng)
    d = (out.onset - notes.onset)[1:]  # the first note may be clipped at 0
    assert np.ptp(d) < 1e-9 and abs(d[0]) <= 0.08


@pytest.mark.parametrize("kw", [{"jitter": -0.1}, {"offset": float("nan")},
                                {"period_min": 0.0}, {"period_min": 5.0, "period_max": 1.0}])
def test_bad_perturbation_config(kw):
    with pytest.raises(PianoSSMError):
        PerturbConfig(**kw)


def test_hard_piece_score_closed_form():
    """scripts/align_hard_pieces.py: density * soft share + 20 * re-struck share."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scripts" / "align_hard_pieces.py"
    spec = importlib.util.spec_from_file_location("align_hard_pieces", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    # 10 notes in 2 s (5 per s), 4 softer than 50; key 60 struck at 0, 0.2, 0.6 (one
    # re-strike within 0.3 s), key 62 at 1.0, 1.25 (one more), the rest once
    onset = np.array([0.0, 0.2, 0.6, 1.0, 1.25, 0.1, 0.3, 0.5, 0.7, 0.9])
    pitch = np.array([60, 60, 60, 62, 62, 64, 65, 67, 69, 71])
    velocity = np.array([30, 40, 49, 45, 80, 90, 100, 60, 70, 50])
    assert mod.difficulty(onset, pitch, velocity, 2.0) == pytest.approx(5 * 0.4 + 20 * 0.2)
    assert mod.difficulty(onset[:0], pitch[:0], velocity[:0], 2.0) == 0.0


def test_key_gaps_is_the_nearest_other_onset_of_the_key():
    from pianossm.align.notes import key_gaps

    onset = np.array([1.0, 0.2, 0.5, 0.9, 3.0])
    notes = Notes(onset, onset + 0.1, np.array([60, 60, 62, 60, 64]), np.full(5, 64))
    np.testing.assert_allclose(key_gaps(notes), [0.1, 0.7, np.inf, 0.1, np.inf])
