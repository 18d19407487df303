"""Realistic alignment data (rooms, microphones, noise), coarse perturbation, cautious
decoding: closed-form and seeded reference cases."""

import warnings

import numpy as np
import pytest

from pianossm.align.acoustics import HELDOUT_ROOMS, ROOMS, TRAIN_ROOMS, make_ir, record
from pianossm.align.decode import _refine, roll_to_notes
from pianossm.align.notes import Notes
from pianossm.align.perturb import PerturbConfig, coarse_perturb
from pianossm.errors import PianoSSMError

SR = 16000


def test_parabola_recovers_a_known_subframe_peak():
    f = np.arange(40, dtype=np.float64)
    for peak in (20.0, 20.3, 19.62):
        logit = -0.7 * (f - peak) ** 2  # a parabola: the refinement is exact
        assert abs(_refine(logit, int(np.argmax(logit))) - peak) < 1e-9


def test_decoded_onset_lies_between_frames():
    t = np.arange(300)
    onset = np.tile((-0.5 * (t - 123.4) ** 2)[:, None], (1, 88)).astype(np.float32)
    notes = Notes(np.array([1.20]), np.array([1.6]), np.array([60]), np.array([64]))
    out = roll_to_notes(onset, np.zeros_like(onset), notes)
    assert abs(out.onset[0] - 1.234) < 1e-4


def test_flat_logits_leave_the_note_where_it_is():
    notes = Notes(np.array([0.7, 1.31]), np.array([0.9, 1.5]), np.array([60, 72]),
                  np.array([64, 64]))
    flat = np.zeros((300, 88), np.float32)  # uniform window softmax: p = 1/31 < 0.1
    out, conf = roll_to_notes(flat, np.zeros_like(flat), notes, with_confidence=True)
    np.testing.assert_allclose(out.onset, notes.onset)
    assert np.all(conf < 0.05)


def test_a_weak_far_peak_does_not_pull_a_note_away():
    # 9 confident notes at +30 ms; note 4 has only a weak peak 120 ms late
    on = np.arange(1.0, 10.0)
    keys = np.arange(30, 39)
    notes = Notes(on, on + 0.3, keys + 21, np.full(9, 64))
    logit = np.full((1200, 88), -8.0, np.float32)
    for i, (t, k) in enumerate(zip(on, keys)):
        if i == 4:
            logit[round(t * 100) + 12, k] = -5.5  # window prob ~ 0.2: below keep=0.3
        else:
            logit[round(t * 100) + 3, k] = 4.0
    out, conf = roll_to_notes(logit, np.zeros_like(logit), notes, with_confidence=True)
    assert 0.1 < conf[4] < 0.3
    np.testing.assert_allclose(out.onset, on + 0.03, atol=1e-6)
    loose = roll_to_notes(logit, np.zeros_like(logit), notes, keep=0.0)
    assert abs(loose.onset[4] - (on[4] + 0.12)) < 0.006  # without keeping: moved away


def test_record_is_deterministic_and_keeps_timing():
    rng = np.random.default_rng(0)
    x = np.zeros(SR, np.float32)
    x[4000] = 1.0  # a click: its direct sound must stay at sample 4000
    for room in ROOMS:
        a, meta = record(x, SR, room, np.random.default_rng(5))
        b, _ = record(x, SR, room, np.random.default_rng(5))
        np.testing.assert_array_equal(a, b)
        assert a.shape == x.shape and a.dtype == np.float32
        assert np.max(np.abs(a)) <= 0.9 + 1e-6
        assert 20 <= meta["snr_db"] <= 50 and meta["room"] == room
        assert np.argmax(np.abs(a[3900:4100])) >= 95  # nothing loud before the click
    assert set(TRAIN_ROOMS).isdisjoint(HELDOUT_ROOMS)
    ir = make_ir(ROOMS["hall"], rng, SR)
    assert ir[0] == pytest.approx(1.0, abs=0.05) and len(ir) > SR
    with pytest.raises(PianoSSMError, match="unknown room"):
        record(x, SR, "cathedral", rng)
    with pytest.raises(PianoSSMError, match="mono"):
        record(np.zeros((2, 10), np.float32), SR, "dry", rng)


def test_room_reverberation_grows_with_rt60():
    def tail_energy(room: str) -> float:
        ir = make_ir(ROOMS[room], np.random.default_rng(1), SR)
        return float(np.sum(ir[int(0.3 * SR):] ** 2))

    assert tail_energy("hall") > 10 * tail_energy("studio")
    assert tail_energy("church") > tail_energy("hall") > tail_energy("ambient")


def _rt60(ir: np.ndarray) -> float:
    """RT60 from the Schroeder decay of an impulse response (-5 to -25 dB, T20 x 3)."""
    edc = np.cumsum(ir[::-1].astype(np.float64) ** 2)[::-1]
    db = 10 * np.log10(edc / edc[0] + 1e-30)
    t5, t25 = np.argmax(db <= -5), np.argmax(db <= -25)
    return 3.0 * (t25 - t5) / SR


@pytest.mark.parametrize("room", ["chamber", "church"])
def test_reverberant_training_rooms(room):
    spec = ROOMS[room]
    assert room in TRAIN_ROOMS and room not in HELDOUT_ROOMS
    hall = ROOMS["hall"]
    # their reverberation times do not overlap the held-out hall's, and no geometry seed
    # is shared with another family
    assert spec.rt60[1] < hall.rt60[0] or spec.rt60[0] > hall.rt60[1]
    assert len({r.seed for r in ROOMS.values() if r is not None}) == \
        sum(r is not None for r in ROOMS.values())
    for seed in range(4):
        a = make_ir(spec, np.random.default_rng(seed), SR)
        np.testing.assert_array_equal(a, make_ir(spec, np.random.default_rng(seed), SR))
        # the measured decay (mid band dominates the broadband T20) lies in the stated range
        lo, hi = spec.rt60
        assert 0.8 * lo <= _rt60(a) <= 1.2 * hi, (room, seed, _rt60(a))
        assert len(a) >= int(SR * min(5.0, 1.2 * lo))  # the tail is not cut at 3 s
    assert not np.array_equal(make_ir(spec, np.random.default_rng(0), SR)[:SR],
                              make_ir(spec, np.random.default_rng(1), SR)[:SR])


def test_coarse_perturbation_changes_tempo_and_offset():
    on = np.linspace(0.0, 30.0, 200) + 2.0
    notes = Notes(on, on + 0.2, np.full(200, 60), np.full(200, 64))
    zero = PerturbConfig(0, 0, 0, 0, 0)
    for seed in range(5):
        bad = coarse_perturb(notes, np.random.default_rng(seed), cfg=zero)
        slope, icept = np.polyfit(notes.onset, bad.onset, 1)
        assert 0.03 - 1e-9 <= abs(slope - 1) <= 0.10 + 1e-9
        assert 0.2 - 1e-6 <= abs(bad.onset[0] - slope * notes.onset[0]) <= 1.0 + 1e-6
        assert np.all(bad.onset >= 0)
    with pytest.raises(PianoSSMError, match="coarse"):
        coarse_perturb(notes, np.random.default_rng(0), tempo=(0.2, 0.1))


def _click_cqt(notes: Notes, lag: float, frames: int = 2500) -> np.ndarray:
    """A ``(T, 88)`` 'CQT' whose keys sound at the notes' onsets + ``lag`` s and decay."""
    cqt = np.zeros((frames, 88), np.float32)
    for on, p in zip(notes.onset, notes.pitch):
        f = int(round((on + lag) * 100))
        cqt[f:f + 30, p - 21] = np.linspace(1.0, 0.3, len(cqt[f:f + 30]))
    return cqt


def test_timing_lag_finds_a_known_offset_and_crnn_warns():
    from pianossm.align.api import align_notes, timing_lag

    rng = np.random.default_rng(3)
    on = np.sort(rng.uniform(0.5, 22.0, 150))
    notes = Notes(on, on + 0.3, rng.integers(40, 90, 150), np.full(150, 64))
    np.testing.assert_allclose(timing_lag(_click_cqt(notes, 0.0), notes), 0.0, atol=0.025)
    late = _click_cqt(notes, 0.6)
    np.testing.assert_allclose(np.median(timing_lag(late, notes)), 0.6, atol=0.025)
    audio = rng.normal(0, 0.1, 25 * 16000).astype(np.float32)
    with pytest.warns(UserWarning, match="out of time"):  # the given CQT: wpe=False
        align_notes(audio, notes, "crnn", cqt=late, wpe=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        align_notes(audio, notes, "crnn", cqt=_click_cqt(notes, 0.0), wpe=False)


@pytest.mark.parametrize(("lags", "warns"), [([0.06, -0.87], False), ([0.3, -0.4], True),
                                              ([0.02, 0.6, 0.7], True), ([0.6, 0.0, 0.01], False)])
def test_crnn_warns_only_when_most_windows_are_out_of_time(monkeypatch, lags, warns):
    """Two 10 s windows of a short hall recording, one misled by the ringing (a lag of
    -870 ms; seen with ``--no-wpe``), gave a false warning when the median was the mean of
    the two; now most windows must be out of time."""
    from pianossm.align import api

    monkeypatch.setattr(api, "timing_lag", lambda cqt, notes: np.array(lags))
    rng = np.random.default_rng(4)
    on = np.sort(rng.uniform(0.5, 9.0, 40))
    notes = Notes(on, on + 0.3, rng.integers(40, 90, 40), np.full(40, 64))
    audio = rng.normal(0, 0.1, 10 * 16000).astype(np.float32)
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        api.align_notes(audio, notes, "crnn", cqt=_click_cqt(notes, 0.0, 1000), wpe=False)
    assert any("out of time" in str(w.message) for w in seen) == warns


def test_a_note_straying_from_its_neighbours_takes_their_shift():
    from pianossm.align.api import OUTLIER, follow_consensus
    from pianossm.align.notes import Notes

    on = np.arange(20) * 0.25
    before = Notes(on, on + 0.2, np.full(20, 60), np.full(20, 80))
    shift = 0.04 + 0.01 * np.arange(20) / 20  # a smooth common shift
    moved = shift.copy()
    moved[7] += OUTLIER + 0.07  # put on another note's onset
    moved[12] += OUTLIER - 0.03  # jitter within the tolerance stays
    out = follow_consensus(before, before.with_times(on + moved, on + 0.2 + moved))
    np.testing.assert_allclose(out.onset[7], on[7] + shift[7], atol=0.002)
    np.testing.assert_allclose(out.offset[7] - out.onset[7], 0.2, atol=1e-9)
    np.testing.assert_allclose(np.delete(out.onset, 7), np.delete(on + moved, 7))


def test_wide_input_jitter_widens_the_outlier_tolerance():
    """Input with U(+-60 ms) per-note jitter, every note aligned correctly but one put 300 ms
    off: the correct notes depart from their neighbours' shift by up to ~90 ms (beyond the
    fixed 60 ms) and keep their times; the gross error still takes the neighbours' shift."""
    from pianossm.align.api import follow_consensus
    from pianossm.align.notes import Notes

    rng = np.random.default_rng(0)
    truth = np.arange(60) * 0.3
    jitter = rng.uniform(-0.06, 0.06, 60)
    before = Notes(truth + jitter, truth + jitter + 0.2, np.full(60, 60), np.full(60, 80))
    on = truth.copy()
    on[30] += 0.3
    after = before.with_times(on, on + 0.2)
    out = follow_consensus(before, after)
    np.testing.assert_allclose(np.delete(out.onset, 30), np.delete(on, 30))
    assert abs(out.onset[30] - truth[30]) < 0.1
    fixed = follow_consensus(before, after, sigmas=0.0)  # the fixed 60 ms alone
    assert np.sum(np.abs(fixed.onset - truth) > 0.025) >= 6


def test_picks_across_decodes_keep_a_keys_notes_apart():
    """Per note, the most confident decode; but where that puts two notes of one key on one
    attack, the key's picks are the best collision-free combination (closed form)."""
    from pianossm.align.api import pick_decodes

    # key 60: decode 0 places its notes at 1.00 / 1.12, decode 1 at 0.90 / 1.00; per note
    # note 0 takes decode 0 (0.9 > 0.2), note 1 decode 1 (0.5 > 0.3): both on 1.00.
    # Collision-free: (0, 0) sums 1.2, (1, 1) 0.7, (1, 0) 0.5.  Key 62 has no collision.
    onsets = np.array([[1.00, 1.12, 2.0, 2.5], [0.90, 1.00, 2.1, 2.4]])
    conf = np.array([[0.9, 0.3, 0.4, 0.2], [0.2, 0.5, 0.6, 0.7]])
    pitch = np.array([60, 60, 62, 62])
    np.testing.assert_array_equal(pick_decodes(onsets, conf, pitch), [0, 0, 1, 1])
    np.testing.assert_array_equal(np.argmax(conf, axis=0), [0, 1, 1, 1])


def test_picks_across_decodes_match_a_brute_force_search():
    """Seeded random cases against every combination of decodes: keys whose per-note picks
    collide get the best combination (order of the per-note picks, collisions cost 10),
    the others their per-note picks."""
    import itertools

    from pianossm.align.api import pick_decodes

    rng = np.random.default_rng(7)
    for _ in range(60):
        s, n = int(rng.integers(2, 5)), int(rng.integers(2, 6))
        onsets = np.round(rng.uniform(0, 0.2, (s, n)), 2)  # crowded: collisions are common
        conf = rng.uniform(0, 1, (s, n))
        pitch = np.full(n, 60)
        per_note = np.argmax(conf, axis=0)
        order = np.argsort(onsets[per_note, np.arange(n)], kind="stable")
        got = pick_decodes(onsets, conf, pitch, min_gap=0.02)
        if np.all(np.diff(onsets[per_note, np.arange(n)][order]) >= 0.02 - 1e-9):
            np.testing.assert_array_equal(got, per_note)
            continue

        best = max(_combination_score(onsets, conf, order, p)
                   for p in itertools.product(range(s), repeat=n))
        assert abs(_combination_score(onsets, conf, order, tuple(got)) - best) < 1e-9


def test_unsure_disagreeing_decodes_take_their_weighted_mean():
    """Closed form: a note whose decodes spread over more than 20 ms with no confidence
    above 0.5 takes their confidence-weighted mean; a sure note, or one whose decodes
    agree, keeps its pick; a mean that would land on another note of its key keeps the
    pick."""
    from pianossm.align.api import blend_decodes

    onsets = np.array([[1.00, 2.00, 3.000, 4.00, 4.030],
                       [1.05, 2.10, 3.005, 4.06, 4.030],
                       [1.10, 2.00, 3.010, 4.06, 4.030]])
    conf = np.array([[0.4, 0.9, 0.2, 0.3, 0.5],
                     [0.4, 0.05, 0.2, 0.3, 0.3],
                     [0.2, 0.05, 0.2, 0.3, 0.2]])
    pitch = np.array([60, 61, 62, 64, 64])
    pick = np.zeros(5, np.int64)
    got = blend_decodes(onsets, conf, pick, pitch)
    # note 0: (0.4 * 1.00 + 0.4 * 1.05 + 0.2 * 1.10) / 1.0; note 3's mean 4.04 would be
    # 10 ms from note 4 (4.03, key 64): it keeps 4.00
    np.testing.assert_allclose(got, [1.04, 2.0, 3.0, 4.0, 4.03])
    # with the pick 30 ms from note 4 already, and the mean clear of it, it blends
    onsets[:, 4] = 4.10
    np.testing.assert_allclose(blend_decodes(onsets, conf, pick, pitch)[3], 4.04)


def test_blended_decodes_keep_a_keys_notes_apart():
    """Seeded random cases: every note is its pick or its decodes' weighted mean, the mean
    exactly where the rule asks for it unless it would come within 20 ms of another note
    of the key, and the notes of a key stay 20 ms apart."""
    from pianossm.align.api import blend_decodes, pick_decodes

    rng = np.random.default_rng(11)
    blended = kept = 0
    for _ in range(200):
        s, n = int(rng.integers(2, 5)), int(rng.integers(2, 8))
        onsets = rng.uniform(0, 0.4, (s, n))
        conf = rng.uniform(0, 0.6, (s, n))
        pitch = rng.integers(60, 62, n)
        pick = pick_decodes(onsets, conf, pitch, min_gap=0.02)
        got = blend_decodes(onsets, conf, pick, pitch, spread=0.02, below=0.5, min_gap=0.02)
        chosen = onsets[pick, np.arange(n)]
        mean = (conf * onsets).sum(0) / conf.sum(0)
        asked = (np.ptp(onsets, axis=0) > 0.02) & (conf.max(0) <= 0.5)
        assert np.all(np.isclose(got, chosen) | (asked & np.isclose(got, mean)))
        for k in np.unique(pitch):
            t = np.sort(got[pitch == k])
            if np.all(np.diff(np.sort(chosen[pitch == k])) >= 0.02 - 1e-9):
                assert np.all(np.diff(t) >= 0.02 - 1e-9)
        for i in np.nonzero(asked & np.isclose(got, chosen) & ~np.isclose(mean, chosen))[0]:
            same = (pitch == pitch[i]) & (np.arange(n) != i)
            near = np.r_[chosen[same], mean[same]]  # what the others were when it was kept
            assert np.any(np.abs(near - mean[i]) < 0.02)  # kept: the mean collided
            kept += 1
        blended += int(np.sum(asked & np.isclose(got, mean) & ~np.isclose(mean, chosen)))
    assert blended > 50 and kept > 5  # both branches are exercised


def test_notes_stacked_at_zero_go_to_their_keys_attacks():
    """Closed form: notes the input clips to time 0 take their keys' largest CQT rises
    before the first other note's aligned onset (two notes of one key: its two attacks,
    in order); the other notes, and a stack whose key shows too few attacks, stay."""
    from pianossm.align.api import place_stacked
    from pianossm.align.notes import Notes

    cqt = np.zeros((120, 88), np.float32)
    cqt[20:, 60 - 21] = 0.5  # key 60 struck at 0.20 s and louder at 0.45 s
    cqt[45:, 60 - 21] = 1.0
    cqt[30:, 64 - 21] = 0.7  # key 64 at 0.30 s; key 62 never
    pitch = np.array([60, 60, 64, 62, 67])
    rough = Notes(np.array([0.0, 0.0, 0.0, 0.0, 0.5]), np.full(5, 1.0), pitch, np.full(5, 80))
    out = Notes(np.array([0.7, 0.72, 0.7, 0.7, 0.7]), np.array([1.0, 1.0, 1.0, 1.0, 1.2]),
                pitch, np.full(5, 80))
    got = place_stacked(cqt, rough, out)
    np.testing.assert_allclose(got.onset, [0.20, 0.45, 0.30, 0.7, 0.7])
    np.testing.assert_allclose(got.offset - got.onset, out.offset - out.onset)  # durations kept
    # nothing stacked at 0, or the first other note within the CRNN's reach: unchanged
    assert place_stacked(cqt, rough.with_times(rough.onset + 0.01, rough.offset), out) is out
    near = out.with_times(np.array([0.1, 0.12, 0.1, 0.1, 0.1]), out.offset)
    assert place_stacked(cqt, rough, near) is near


def test_onset_logits_read_each_notes_onset_frame():
    """Closed form: the logit of a note's key at its rounded onset frame (10 ms frames),
    onsets outside the roll reading its first or last frame."""
    from pianossm.align.api import onset_logits
    from pianossm.align.notes import Notes

    logits = np.arange(10 * 88, dtype=np.float32).reshape(10, 88)
    onset = np.array([0.0, 0.034, 0.036, 0.5, -0.02])
    notes = Notes(onset, onset + 0.1, np.array([21, 60, 60, 108, 22]), np.full(5, 80))
    np.testing.assert_array_equal(onset_logits(logits, notes),
                                  logits[[0, 3, 4, 9, 0], [0, 39, 39, 87, 1]])


def test_stacked_notes_take_the_trial_with_the_highest_onset_logit():
    """Closed form, with a probe (the CRNN's stand-in: it decodes 10 ms later than it was
    told and scores each note by closeness to a target): a key's only stacked note keeps
    the trial, among its key's largest rises, that scores highest; a key with two stacked
    notes takes its attacks in order, and a key without attacks stays where the DTW put
    it, both decoded from there; the other notes are untouched; ``trials`` bounds the
    rises tried."""
    from pianossm.align.api import place_stacked
    from pianossm.align.notes import Notes

    cqt = np.zeros((120, 88), np.float32)
    cqt[20:, 60 - 21] = 0.5  # key 60: a small rise at 0.20 s, a larger one at 0.45 s
    cqt[45:, 60 - 21] = 1.2
    cqt[30:, 64 - 21] = 0.7  # key 64: one attack at 0.30 s; key 62: none
    cqt[10:, 65 - 21] = 0.4  # key 65 (two stacked notes): attacks at 0.10 and 0.35 s
    cqt[35:, 65 - 21] = 0.9
    pitch = np.array([60, 64, 62, 65, 65, 67])
    rough = Notes(np.array([0, 0, 0, 0, 0, 0.5]), np.full(6, 1.0), pitch, np.full(6, 80))
    out = Notes(np.array([0.7, 0.7, 0.68, 0.7, 0.72, 0.7]), np.full(6, 1.5), pitch,
                np.full(6, 80))
    target = {60: 0.20, 64: 0.30, 62: 0.5, 65: 0.0, 67: 0.0}
    calls = []

    def probe(start: Notes, frames: int) -> tuple[np.ndarray, np.ndarray]:
        calls.append((start.onset.copy(), frames))
        score = -np.abs(start.onset - np.array([target[int(k)] for k in start.pitch]))
        return start.onset + 0.01, score

    got = place_stacked(cqt, rough, out, probe)
    np.testing.assert_allclose(got.onset, [0.21, 0.31, 0.69, 0.11, 0.36, 0.7])
    np.testing.assert_allclose(got.offset - got.onset, out.offset - out.onset)
    assert len(calls) == 2 and all(f == 76 for _, f in calls)  # 0.7 s + 50 ms, rounded up
    np.testing.assert_allclose(calls[0][0], [0.45, 0.30, 0.68, 0.10, 0.35, 0.7])
    np.testing.assert_allclose(calls[1][0], [0.20, 0.30, 0.68, 0.10, 0.35, 0.7])
    calls.clear()  # one trial: the largest rise
    np.testing.assert_allclose(place_stacked(cqt, rough, out, probe, trials=1).onset,
                               [0.46, 0.31, 0.69, 0.11, 0.36, 0.7])
    assert len(calls) == 1
    with pytest.raises(PianoSSMError, match="trials"):
        place_stacked(cqt, rough, out, probe, trials=0)


def _combination_score(onsets: np.ndarray, conf: np.ndarray, order: np.ndarray,
                       pick: tuple[int, ...]) -> float:
    """Summed confidence of one decode per note, minus 10 per pair of consecutive notes
    (in ``order``) closer than 20 ms."""
    n = np.arange(onsets.shape[1])
    t = onsets[list(pick), n][order]
    return float(conf[list(pick), n].sum() - 10.0 * np.sum(np.diff(t) < 0.02 - 1e-9))
