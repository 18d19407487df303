"""Our DTW: DLNCO onset features, the local cost, the robust line fit and the two passes."""

import shutil

import numpy as np
import pytest

from pianossm.align.dtw import (BASE, DECAY, ONSET_WEIGHT, align_dtw, audio_features,
                                cost_matrix, dlnco, linear_fit)
from pianossm.errors import PianoSSMError


def test_dlnco_normalises_locally_and_decays_as_sqrt():
    co = np.zeros((400, 12), np.float32)
    co[10, 3] = 2.0    # loud onset
    co[15, 5] = 1.0    # a quieter one 50 ms later: same local norm (2)
    co[300, 7] = 0.1   # isolated and quiet: divided by the floor, 10 % of the largest (0.2)
    out = dlnco(co)
    n = np.arange(DECAY)
    np.testing.assert_allclose(out[10 + n, 3], np.sqrt(1.0 / (n + 1)), rtol=1e-6)
    assert np.all(out[10 + DECAY:, 3] == 0) and np.all(out[:10] == 0)
    np.testing.assert_allclose(out[15, 5], 0.5, rtol=1e-6)
    np.testing.assert_allclose(out[300, 7], 0.5, rtol=1e-6)
    np.testing.assert_allclose(out[301, 7], 0.5 * np.sqrt(0.5), rtol=1e-6)
    assert np.all(out[200:300] == 0)  # nothing between onsets


def test_audio_onsets_are_zero_between_attacks():
    """Below -56 dB (the noise floor of the CQT) nothing counts as an onset, however the
    floor fluctuates; the old features normalised such frames to unit length."""
    rng = np.random.default_rng(3)
    cqt = rng.uniform(0.0, 0.25, (500, 88)).astype(np.float32)
    cqt[100:160, 40] = np.linspace(0.9, 0.5, 60)  # one attack, then a decay
    chroma, onset = audio_features(cqt)
    np.testing.assert_allclose(np.linalg.norm(chroma, axis=1), 1.0, rtol=1e-5)
    assert onset[100, (40 + 21) % 12] == pytest.approx(1.0)
    assert np.all(onset[:100] == 0) and np.all(onset[100 + DECAY:] == 0)


def test_cost_matrix_is_the_documented_formula():
    rng = np.random.default_rng(0)
    xc, yc = rng.normal(size=(7, 12)), rng.normal(size=(5, 12))
    xc /= np.linalg.norm(xc, axis=1, keepdims=True)
    yc /= np.linalg.norm(yc, axis=1, keepdims=True)
    xo, yo = rng.uniform(size=(7, 12)), rng.uniform(size=(5, 12))
    got = cost_matrix(xc, xo, yc, yo)
    want = np.array([[BASE + 1 - xc[i] @ yc[j] + ONSET_WEIGHT * np.linalg.norm(xo[i] - yo[j])
                      for j in range(5)] for i in range(7)])
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


def test_linear_fit_ignores_outliers():
    rng = np.random.default_rng(5)
    x = np.sort(rng.uniform(0, 20, 200))
    y = 0.7 + 1.06 * x + rng.normal(0, 0.01, 200)
    bad = rng.choice(200, 40, replace=False)
    y[bad] += rng.choice([-1, 1], 40) * rng.uniform(0.3, 2.0, 40)
    a, b = linear_fit(x, y)
    assert a == pytest.approx(0.7, abs=0.02) and b == pytest.approx(1.06, abs=0.002)
    b_ls, a_ls = np.polyfit(x, y, 1)  # plain least squares is pulled away
    assert abs(a_ls - 0.7) + abs(b_ls - 1.06) > 5 * (abs(a - 0.7) + abs(b - 1.06))


def test_passes_argument_checked():
    from pianossm.align.notes import Notes

    notes = Notes(np.array([0.1, 0.5]), np.array([0.3, 0.7]), np.array([60, 62]),
                  np.array([80, 80]))
    with pytest.raises(PianoSSMError, match="passes"):
        align_dtw(np.zeros((100, 88), np.float32), notes, passes=3)


needs_fluidsynth = pytest.mark.skipif(shutil.which("fluidsynth") is None,
                                     reason="needs the fluidsynth program")
START, LENGTH = 3.0, 12.0


@pytest.fixture(scope="module")
def excerpts(tmp_path_factory):
    """A 12 s excerpt cut out of a longer recording (it starts with the ringing of earlier
    notes and ends while notes still sound), in a studio and in a hall: CQTs and notes."""
    from pianossm.align.acoustics import record
    from pianossm.align.features import SAMPLE_RATE, audio_to_cqt
    from pianossm.align.notes import Notes, midi_to_notes
    from pianossm.align.pieces import generate_piece
    from pianossm.fluid import render_fluidsynth

    midi = generate_piece(seed=12, seconds=16.0)
    path = str(tmp_path_factory.mktemp("dtw") / "p.mid")
    midi.write(path)
    audio = render_fluidsynth(path, SAMPLE_RATE, "fluidr3")
    notes = midi_to_notes(midi)
    keep = (notes.onset >= START) & (notes.onset < START + LENGTH - 0.05)
    ref = Notes(notes.onset[keep] - START, np.minimum(notes.offset[keep] - START, LENGTH),
                notes.pitch[keep], notes.velocity[keep])
    a, b = int(START * SAMPLE_RATE), int((START + LENGTH) * SAMPLE_RATE)
    cqts = {room: audio_to_cqt(record(audio, SAMPLE_RATE, room, np.random.default_rng(1))[0][a:b])
            for room in ("studio", "hall")}
    return cqts, ref


@needs_fluidsynth
def test_second_pass_fixes_cut_excerpts_with_coarse_timing(excerpts):
    """The studio excerpt, its MIDI 0.6 s early or late (early: the first notes clipped at
    0) and 7 % fast or slow.  One DTW pass put 12 % of the (unclipped) notes more than
    100 ms off, mostly near the ends; after the line fit and a second pass 4 %."""
    cqts, ref = excerpts
    ok = {1: [], 2: []}
    for slope, offset in ((1.07, -0.6), (0.93, 0.6), (1.07, 0.6), (0.93, -0.6)):
        on = np.maximum(slope * ref.onset + offset, 0.0)
        bad = ref.with_times(on, np.maximum(slope * ref.offset + offset, on + 0.02))
        for p in (1, 2):
            err = np.abs(align_dtw(cqts["studio"], bad, passes=p).onset - ref.onset)
            ok[p].append(err[bad.onset > 0] <= 0.1)
    share = {p: float(np.mean(np.concatenate(v))) for p, v in ok.items()}
    assert share[2] >= 0.95, share
    assert share[2] >= share[1] + 0.05, share


@needs_fluidsynth
def test_last_notes_of_a_cut_off_excerpt_stay_in_place(excerpts):
    """Human-like input (<= 100 ms) on the excerpts, which end while notes sound: the
    last notes stay within 100 ms (with the MIDI side padded 0.5 s beyond the audio they
    were put 0.13-0.39 s early)."""
    from pianossm.align.perturb import PerturbConfig, perturb_notes

    cqts, ref = excerpts
    last = ref.onset > LENGTH - 2.0
    for room, cqt in cqts.items():
        for seed in range(4):
            bad = perturb_notes(ref, PerturbConfig(), np.random.default_rng(seed))
            err = np.abs(align_dtw(cqt, bad).onset - ref.onset)
            assert err[last].max() <= 0.1, (room, seed, err[last].max())
            assert np.mean(err <= 0.1) >= 0.98, (room, seed)
