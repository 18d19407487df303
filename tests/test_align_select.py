"""The decode selector: its features, its file format, its training and its use in the pick."""

import numpy as np
import pytest

from pianossm.align.notes import Notes
from pianossm.align.select import (
    FEATURES,
    DecodeSelector,
    decode_features,
    fit_selector,
    load_selector,
)
from pianossm.errors import PianoSSMError


def _notes(onset, pitch, velocity=64):
    onset = np.asarray(onset, float)
    n = len(onset)
    return Notes(onset, onset + 0.3, np.asarray(pitch, np.int64),
                 np.full(n, velocity, np.int64))


def _col(name):
    return FEATURES.index(name)


def test_features_closed_form():
    """Three decodes of three notes, each feature checked against its definition."""
    rough = _notes([1.0, 1.5, 1.62], [60, 62, 62], velocity=100)
    start = _notes([1.02, 1.52, 1.64], [60, 62, 62])
    onsets = np.array([[1.01, 1.50, 1.70],
                       [1.012, 1.60, 1.70],
                       [1.10, 1.505, 1.61]])
    first = onsets + np.array([[0.0], [0.02], [0.0]])
    conf = np.array([[0.9, 0.5, 0.2], [0.8, 0.3, 0.6], [0.1, 0.4, 0.2]])
    logit = np.array([[2.0, 1.0, 0.0], [3.0, -1.0, 1.0], [0.5, 0.0, 2.0]])
    pick = np.array([1, 0, 2])
    f = decode_features(onsets, conf, logit, first, conf * 0.5, rough, start, True, pick)
    assert f.shape == (3, 3, len(FEATURES)) and f.dtype == np.float32
    np.testing.assert_allclose(f[..., _col("logit")], logit)
    np.testing.assert_allclose(f[..., _col("logit - best logit")], logit - logit.max(0))
    np.testing.assert_allclose(f[..., _col("window probability - best")],
                               conf - conf.max(0), atol=1e-7)
    np.testing.assert_allclose(f[..., _col("first decode's window probability")], conf * 0.5)
    np.testing.assert_allclose(f[..., _col("moved by the refinement")],
                               [[0, 0, 0], [0.4, 0.4, 0.4], [0, 0, 0]], atol=1e-5)
    # note 0: decodes 0 and 1 are 2 ms apart, decode 2 90 ms away
    np.testing.assert_allclose(f[:, 0, _col("other refinements within 10 ms")], [1, 1, 0])
    np.testing.assert_allclose(f[:, 2, _col("other refinements within 10 ms")], [1, 1, 0])
    np.testing.assert_allclose(f[:, 0, _col("first decodes within 10 ms")], [1, 1, 1])
    np.testing.assert_allclose(f[..., _col("from the input")],
                               np.abs(onsets - rough.onset) / 0.05, rtol=1e-5)
    np.testing.assert_allclose(f[..., _col("from the first stage")],
                               np.abs(onsets - start.onset) / 0.05, rtol=1e-5)
    np.testing.assert_allclose(f[..., _col("refinements' spread")][0],
                               np.ptp(onsets, axis=0) / 0.05, rtol=1e-5)
    assert np.all(f[..., _col("input in time")] == 1)
    np.testing.assert_allclose(f[..., _col("velocity")], 100 / 127, rtol=1e-6)
    # key 62's two notes are 120 ms apart; key 60 has one note (0.5 s: the cap)
    np.testing.assert_allclose(f[0, :, _col("key's nearest other note")], [1, 0.24, 0.24],
                               rtol=1e-5)
    np.testing.assert_allclose(f[:, 0, [_col("start 0"), _col("start 1"), _col("start 2")]],
                               np.eye(3))
    # the neighbours' shift: the running median (over 9 notes; with fewer, each note's own)
    # of the picked decodes' shifts from the input
    far = f[..., _col("from the neighbours' shift")]
    assert far[1, 0] == pytest.approx(0.0, abs=1e-4)  # note 0's own pick
    assert far[2, 0] == pytest.approx(abs(1.10 - 1.0 - 0.012) / 0.05, rel=1e-4)
    assert far[0, 1] == pytest.approx(0.0, abs=1e-4)


def test_cross_features_closed_form():
    """Each refinement's roll judges every refinement's onsets: the mean and lowest logit
    over the rolls (and against the note's best), and how many rolls rank it first;
    without ``cross`` every roll reads each decode's own logit."""
    rough = _notes([1.0, 2.0], [60, 64])
    onsets = np.array([[1.0, 2.0], [1.05, 2.01], [1.1, 2.02]])
    conf = np.full((3, 2), 0.5)
    logit = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0]])
    cross = np.zeros((3, 3, 2))
    cross[:, :, 0] = [[1.0, 0.0, -1.0], [3.0, 2.0, 0.0], [2.0, 1.0, 0.0]]  # rolls r x decodes s
    cross[:, :, 1] = [[0.0, 1.0, 2.0], [0.0, 0.0, 0.0], [1.0, 1.0, 3.0]]
    f = decode_features(onsets, conf, logit, onsets, conf, rough, rough, True,
                        np.zeros(2, int), cross)
    mean = cross.mean(axis=0)  # note 0: 2, 1, -1/3
    np.testing.assert_allclose(f[..., _col("mean logit over the refinements' rolls")], mean,
                               rtol=1e-6)
    np.testing.assert_allclose(f[:, 0, _col("mean logit over the rolls - best")],
                               [0.0, -1.0, -7 / 3], rtol=1e-6)
    np.testing.assert_allclose(f[:, 0, _col("lowest logit over the rolls - best")],
                               [0.0, -1.0, -2.0])
    np.testing.assert_allclose(f[:, 0, _col("rolls ranking it first")], [3, 0, 0])
    # note 1: roll 1 ties all three, rolls 0 and 2 rank decode 2 first
    np.testing.assert_allclose(f[:, 1, _col("rolls ranking it first")], [1, 1, 3])
    plain = decode_features(onsets, conf, logit, onsets, conf, rough, rough, True,
                            np.zeros(2, int))
    np.testing.assert_allclose(plain[..., _col("mean logit over the refinements' rolls")],
                               logit)
    with pytest.raises(PianoSSMError, match="cross logits"):
        decode_features(onsets, conf, logit, onsets, conf, rough, rough, True,
                        np.zeros(2, int), cross[:2])


def test_features_refuse_inconsistent_shapes():
    rough = _notes([1.0, 2.0], [60, 61])
    a = np.zeros((3, 2))
    with pytest.raises(PianoSSMError, match="inconsistent shapes"):
        decode_features(a, a, a[:2], a, a, rough, rough, True, np.zeros(2, int))


def _rule_data(rng, n=1500):
    """Notes of three decodes where the one with the lowest 'from the input' is right."""
    x = rng.normal(size=(3 * n, len(FEATURES))).astype(np.float32)
    group = np.repeat(np.arange(n), 3)
    d = x[:, _col("from the input")].reshape(n, 3)
    y = (d == d.min(axis=1, keepdims=True)).reshape(-1).astype(float)
    return x, y, group


def test_fit_learns_a_closed_form_rule_and_round_trips(tmp_path):
    rng = np.random.default_rng(0)
    x, y, g = _rule_data(rng)
    sel = fit_selector(x, y, g, epochs=300, seed=1, info={"what": "test"})
    xt, yt, _ = _rule_data(np.random.default_rng(1), 500)
    z = sel.logits(xt).reshape(500, 3)
    right = yt.reshape(500, 3)[np.arange(500), np.argmax(z, axis=1)]
    assert right.mean() > 0.85  # chance: 1/3 (17 other features are noise here)
    s = sel.scores(xt.reshape(500, 3, -1).transpose(1, 0, 2))  # (S, N): a softmax per note
    np.testing.assert_allclose(np.exp(s).sum(axis=0), 1.0, rtol=1e-9)
    path = tmp_path / "sel.npz"
    sel.save(path)
    back = load_selector(path)
    np.testing.assert_allclose(back.logits(xt), sel.logits(xt))
    assert back.info == {"what": "test"}
    assert not list(tmp_path.glob("*.tmp*"))


def test_load_refuses_what_is_not_a_selector(tmp_path):
    with pytest.raises(PianoSSMError, match="not found"):
        load_selector(tmp_path / "missing.npz")
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"not a zip file")
    with pytest.raises(PianoSSMError, match="not a decode selector"):
        load_selector(bad)
    other = tmp_path / "other.npz"
    np.savez(other, meta=np.array('{"format": "something else"}'))
    with pytest.raises(PianoSSMError, match="format"):
        load_selector(other)


def test_selector_needs_its_features():
    with pytest.raises(PianoSSMError, match="features"):
        DecodeSelector(np.zeros(3), np.ones(3), [(np.zeros((3, 1)), np.zeros(1))])


def test_pick_takes_the_selectors_choice():
    """``_pick`` with a selector: per note the decode its scores rank first (here a
    selector that prefers the decode nearest the input), the notes of one key kept apart."""
    from pianossm.align import api

    rough = _notes([1.0, 2.0, 2.1], [60, 61, 61])
    onsets = np.array([[1.05, 2.0, 2.2], [1.001, 2.06, 2.1], [1.2, 2.0, 2.105]])
    conf = np.full((3, 3), 0.5)
    logit = np.array([[3.0, 0.0, 0.0], [0.0, 3.0, 3.0], [0.0, 0.0, 0.0]])
    w = np.zeros((len(FEATURES), 1))
    w[_col("from the input"), 0] = -1.0
    sel = DecodeSelector(np.zeros(len(FEATURES)), np.ones(len(FEATURES)),
                         [(w, np.zeros(1))])
    by_logit = api._pick(onsets, conf, logit, onsets, conf, rough, rough, True, None)
    np.testing.assert_array_equal(by_logit, [0, 1, 1])
    by_sel = api._pick(onsets, conf, logit, onsets, conf, rough, rough, True, sel)
    np.testing.assert_array_equal(by_sel, [1, 0, 1])
    # trained on three starts: with two (``crnn`` alone) the onset logits pick
    two = api._pick(onsets[:2], conf[:2], logit[:2], onsets[:2], conf[:2], rough, rough,
                    True, sel)
    np.testing.assert_array_equal(two, api.pick_decodes(onsets[:2], logit[:2], rough.pitch))
    assert np.any(two != api._pick(onsets[:2], conf[:2], -logit[:2], onsets[:2], conf[:2],
                                   rough, rough, True, sel))
