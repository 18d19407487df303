"""Note-level decoding keeps every note and follows the predicted onsets."""

import numpy as np
import pytest

from pianossm.align.decode import roll_to_notes
from pianossm.align.notes import Notes
from pianossm.errors import PianoSSMError


@pytest.fixture
def rng():
    return np.random.default_rng(7)


def _peaks(t: int, frames: list[int], keys: list[int], width: float = 1.0) -> np.ndarray:
    """Onset logits: log of Gaussian bumps at ``frames`` on ``keys``, (t, 88)."""
    p = np.full((t, 88), 1e-4, np.float32)
    k = np.arange(t)
    for f, key in zip(frames, keys):
        p[:, key] = np.maximum(p[:, key], np.exp(-0.5 * ((k - f) / width) ** 2))
    return np.log(p)


def test_notes_move_to_their_peaks():
    notes = Notes(np.array([1.00, 2.00, 2.00]), np.array([1.5, 2.5, 2.4]),
                  np.array([60, 60, 64]), np.array([70, 80, 90]))
    onset = _peaks(400, [108, 193, 205], [39, 39, 43])
    frame = np.zeros_like(onset)
    out = roll_to_notes(onset, frame, notes)
    np.testing.assert_allclose(out.onset, [1.08, 1.93, 2.05], atol=1e-6)
    np.testing.assert_array_equal(out.pitch, notes.pitch)
    np.testing.assert_array_equal(out.velocity, notes.velocity)
    np.testing.assert_allclose(out.offset - out.onset, notes.offset - notes.onset, atol=1e-9)


def test_subframe_refinement_is_symmetric():
    onset = np.full((100, 88), -9.0, np.float32)
    onset[48, 10] = onset[51, 10] = 0.0
    onset[49, 10] = onset[50, 10] = 2.0  # the true peak lies at 49.5
    notes = Notes(np.array([0.5]), np.array([0.7]), np.array([31]), np.array([64]))
    out = roll_to_notes(onset, np.zeros_like(onset), notes)
    assert abs(out.onset[0] - 0.495) < 1e-6


def test_repeated_notes_keep_order_and_distinct_onsets():
    # two notes of one key, both input onsets nearer the first peak
    notes = Notes(np.array([1.00, 1.04]), np.array([1.03, 1.3]), np.array([50, 50]),
                  np.array([60, 60]))
    onset = _peaks(300, [100, 112], [29, 29])
    out = roll_to_notes(onset, np.zeros_like(onset), notes)
    np.testing.assert_allclose(out.onset, [1.00, 1.12], atol=1e-6)


def test_unconfident_notes_follow_neighbours(rng):
    n = 30
    on = np.sort(rng.uniform(0.5, 9.0, n))
    keys = rng.integers(30, 60, n)
    notes = Notes(on, on + 0.3, keys + 21, np.full(n, 64))
    true = on + 0.06
    onset = _peaks(1000, list(np.round(true * 100).astype(int)), list(keys))
    onset[:, keys[5]] = -9.0  # no evidence for note 5's key at all
    out = roll_to_notes(onset, np.zeros_like(onset), notes)
    assert len(out) == n
    np.testing.assert_allclose(out.onset, true, atol=0.006)


def test_offsets_snap_to_falling_edge():
    notes = Notes(np.array([1.0]), np.array([1.50]), np.array([60]), np.array([64]))
    onset = _peaks(300, [103], [39])
    frame = np.zeros_like(onset)
    frame[103:160, 39] = 0.9  # last held frame 159: the roll's offset 1.60 s
    out = roll_to_notes(onset, frame, notes)
    assert abs(out.offset[0] - 1.60) < 1e-9


def test_no_evidence_keeps_input():
    notes = Notes(np.array([0.5, 1.0]), np.array([0.8, 1.2]), np.array([60, 62]),
                  np.array([64, 64]))
    flat = np.full((200, 88), -9.0, np.float32)
    out = roll_to_notes(flat, np.zeros_like(flat), notes)
    np.testing.assert_allclose(out.onset, notes.onset)


def test_bad_inputs():
    notes = Notes(np.array([0.5]), np.array([0.8]), np.array([60]), np.array([64]))
    with pytest.raises(PianoSSMError, match="probability rolls"):
        roll_to_notes(np.zeros((10, 87)), np.zeros((10, 87)), notes)
    with pytest.raises(PianoSSMError, match="search"):
        roll_to_notes(np.zeros((10, 88)), np.zeros((10, 88)), notes, search=0.0)
    for bad in (-0.5, float("nan")):
        with pytest.raises(PianoSSMError, match="earliest"):
            roll_to_notes(np.zeros((10, 88)), np.zeros((10, 88)), notes, earliest=bad)


def _bumps(t: int, peaks: list[tuple[int, float]]) -> np.ndarray:
    """``(t,)`` log of the largest of Gaussian bumps ``(frame, height)`` over 1e-4."""
    k = np.arange(t)
    return np.log(np.maximum.reduce([np.full(t, 1e-4)] + [
        h * np.exp(-0.5 * (k - f) ** 2) for f, h in peaks]))


@pytest.mark.parametrize(("earliest", "expect"), [(0.0, [1.06, 1.52]), (0.5, [1.06, 1.52]),
                                                   (1.0, [1.00, 1.47]), (4.0, [1.00, 1.47])])
def test_earliest_takes_the_first_peak_within_delta_of_the_chosen(earliest, expect):
    # key 39: peaks at frames 95 (log 0.01: -4.6 below the maximum), 100 (log 0.5: -0.69)
    # and 106 (the maximum); key 43: 147 (-0.69) and 152 (the maximum)
    onset = np.full((300, 88), np.log(1e-4))
    onset[:, 39] = _bumps(300, [(95, 0.01), (100, 0.5), (106, 1.0)])
    onset[:, 43] = _bumps(300, [(147, 0.5), (152, 1.0)])
    notes = Notes(np.array([1.03, 1.50]), np.array([1.3, 1.8]), np.array([60, 64]),
                  np.array([64, 64]))
    out = roll_to_notes(onset, np.zeros_like(onset), notes, earliest=earliest)
    np.testing.assert_allclose(out.onset, expect, atol=1e-6)


def test_earliest_keeps_a_keys_notes_in_order():
    # two notes of one key at peaks 100 and 112; the second must not jump back onto 100
    onset = _peaks(300, [100, 112], [29, 29])
    notes = Notes(np.array([1.00, 1.10]), np.array([1.05, 1.3]), np.array([50, 50]),
                  np.array([60, 60]))
    out = roll_to_notes(onset, np.zeros_like(onset), notes, earliest=50.0)
    np.testing.assert_allclose(out.onset, [1.00, 1.12], atol=1e-6)
