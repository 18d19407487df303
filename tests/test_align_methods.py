"""Every method recovers a known global shift and tempo change on rendered audio."""

import shutil

import numpy as np
import pytest

from pianossm.align.api import align_notes
from pianossm.align.features import SAMPLE_RATE, audio_to_cqt
from pianossm.align.notes import midi_to_notes

SECONDS = 8.0
pytestmark = pytest.mark.skipif(shutil.which("fluidsynth") is None,
                                reason="needs the fluidsynth program")


@pytest.fixture(scope="module")
def piece(tmp_path_factory):
    from pianossm.align.data import PIANOS
    from pianossm.align.latency import exact_midi, sound_onsets
    from pianossm.align.pieces import generate_piece
    from pianossm.fluid import render_fluidsynth

    midi = exact_midi(generate_piece(seed=424242, seconds=SECONDS))
    path = tmp_path_factory.mktemp("align") / "piece.mid"
    midi.write(str(path))
    audio = render_fluidsynth(path, SAMPLE_RATE, "fluidr3")
    notes = midi_to_notes(midi)  # labelled at the sound, as align-data does
    at = sound_onsets(notes, PIANOS["fluidr3"])
    notes = notes.with_times(at, notes.offset + (at - notes.onset))
    return audio, notes, audio_to_cqt(audio)


@pytest.fixture(scope="module")
def unshifted(tmp_path_factory):
    """The shipped checkpoint without its label latency: the tests of the pipeline's
    inner steps compare its decodes' inputs with the notes' own times."""
    return _with_latency(str(tmp_path_factory.mktemp("ckpt") / "unshifted.pt"), 0.0)


def _with_latency(path, seconds):
    import torch

    from pianossm.align.model import default_crnn_path

    payload = torch.load(default_crnn_path(), map_location="cpu", weights_only=False)
    torch.save({**payload, "label_latency": seconds}, path)
    return path


def _distort(notes):
    """Known timing error: +40 ms everywhere, and 2 % slower after 3 s."""
    warp = lambda t: t + 0.04 + 0.02 * np.maximum(t - 3.0, 0.0)
    return notes.with_times(warp(notes.onset), warp(notes.offset))


@pytest.mark.parametrize("method", ["dtw", "crnn", "dtw+crnn", "mrmsdtw", "mrmsdtw+crnn"])
def test_known_shift_and_tempo_change_recovered(piece, method):
    if method.startswith("mrmsdtw"):  # scripts/setup.sh installs it (--no-deps)
        pytest.importorskip("synctoolbox")
    audio, notes, cqt = piece
    bad = _distort(notes)
    assert np.abs(bad.onset - notes.onset).mean() > 0.05
    out = align_notes(audio, bad, method, cqt=cqt)
    err = np.abs(out.onset - notes.onset)
    assert len(out) == len(notes)
    np.testing.assert_array_equal(out.pitch, notes.pitch)
    assert err.mean() < 0.020, f"{method}: mean onset error {1000 * err.mean():.1f} ms"


def test_exact_midi_stays_put(piece):
    audio, notes, cqt = piece
    out = align_notes(audio, notes, "dtw+crnn", cqt=cqt)
    assert np.median(np.abs(out.onset - notes.onset)) < 0.015


def test_ringing_midi_features_keep_dtw_on_course_in_a_hall(piece):
    """In a reverberant hall the plain frame roll's chroma stops where the audio's rings
    on, and DTW drifts late; letting the MIDI side's notes decay after their onsets fixes
    it (measured on rendered halls, see the README)."""
    from pianossm.align.acoustics import record
    from pianossm.align.dtw import align_dtw

    audio, notes, _ = piece
    hall, _ = record(audio, SAMPLE_RATE, "hall", np.random.default_rng(1))
    cqt = audio_to_cqt(hall)
    bad = _distort(notes)
    err = {ring: np.abs(align_dtw(cqt, bad, ring=ring).onset - notes.onset)
           for ring in (0.0, 0.7)}
    assert err[0.7].mean() < 0.05, f"mean error {1000 * err[0.7].mean():.0f} ms"
    assert np.mean(err[0.7] <= 0.1) >= 0.95
    assert err[0.7].mean() < 0.6 * err[0.0].mean()


def test_ring_decays_from_each_onset():
    from pianossm.align.dtw import _ring

    onset, frame = np.zeros((300, 88), np.float32), np.zeros((300, 88), np.float32)
    onset[10, 40], frame[10:20, 40] = 1, 1
    onset[200, 40], frame[200:210, 40] = 1, 1
    out = _ring(onset, frame, 0.5)
    assert np.all(out[:10, 40] == 0) and np.all(out[10:20, 40] == 1)
    np.testing.assert_allclose(out[60, 40], np.exp(-1.0), rtol=1e-5)  # 50 frames = 0.5 s
    assert out[200, 40] == 1 and out[199, 40] < 0.03  # a new onset restarts the decay
    assert np.all(out[:, :40] == 0) and np.all(out[:, 41:] == 0)
    assert _ring(onset, frame, 0.0) is frame


def test_what_sounds_at_the_start_rings_on_the_midi_side():
    """Keys sounding in the recording's first frame (above -56 dB) ring on the DTW's MIDI
    side from frame 0 at their amplitude, decaying as the notes' ring; a recording that
    begins in silence changes nothing."""
    from pianossm.align.dtw import midi_features, sounding_at_start
    from pianossm.align.features import TOP_DB
    from pianossm.align.notes import Notes

    cqt = np.zeros((50, 88), np.float32)
    cqt[0, 27] = 1.0  # key 27 (MIDI 48, a C) at full scale
    cqt[0, 31] = 1.0 - 20 / TOP_DB  # key 31 (MIDI 52, an E) 20 dB down
    cqt[0, 50] = 0.29  # below the floor: silent
    lead = sounding_at_start(cqt)
    np.testing.assert_allclose(lead[[27, 31]], [1.0, 0.1], rtol=1e-6)
    assert np.count_nonzero(lead) == 2
    assert not sounding_at_start(np.zeros((5, 88), np.float32)).any()
    notes = Notes(np.array([1.0]), np.array([1.5]), np.array([67]), np.array([80]))  # a G
    plain_chroma, plain_onsets = midi_features(notes, 300, 0.7)
    chroma, onsets = midi_features(notes, 300, 0.7, lead)
    np.testing.assert_array_equal(onsets, plain_onsets)  # onsets are the MIDI's only
    np.testing.assert_allclose(plain_chroma[:100], 12 ** -0.5)  # silence: flat chroma
    # frame 0: C and E at 1 : 0.1 (chroma bins from C), unit norm
    np.testing.assert_allclose(chroma[0, [0, 4]], np.array([1.0, 0.1]) / np.hypot(1, 0.1),
                               rtol=1e-5)
    assert chroma[0, 7] == 0 and chroma[150, 7] > 0.9  # then the G
    # the lead decays as exp(-t / 0.7 s): the C-to-E ratio stays, G takes over at 1 s
    np.testing.assert_allclose(chroma[35, 4] / chroma[35, 0], 0.1, rtol=1e-4)
    same = midi_features(notes, 300, 0.7, np.zeros(88))
    np.testing.assert_array_equal(same[0], plain_chroma)


def test_refinement_pass_moves_notes_at_most_its_window(piece):
    from pianossm.align.api import REFINE_SEARCH
    from pianossm.errors import PianoSSMError

    audio, notes, cqt = piece
    bad = _distort(notes)
    once = align_notes(audio, bad, "dtw+crnn", cqt=cqt, refine=0)
    twice = align_notes(audio, bad, "dtw+crnn", cqt=cqt, refine=1)
    assert np.max(np.abs(twice.onset - once.onset)) <= REFINE_SEARCH + 0.006  # + sub-frame
    assert np.any(twice.onset != once.onset)
    err = lambda n: np.abs(n.onset - notes.onset).mean()
    assert err(twice) <= err(once) + 0.001
    with pytest.raises(PianoSSMError, match="refine"):
        align_notes(audio, bad, "dtw+crnn", cqt=cqt, refine=-1)


def test_earliest_reaches_the_first_decodes_only(piece, monkeypatch):
    """``earliest`` (default :data:`EARLIEST`) goes to the first decodes (from the DTW's
    output, from the input and from the neighbours' shift, +-``search``), 0 to the
    refinement and half-frame passes (+-60 ms); its effect on a decode is tested in
    test_align_decode; a negative one is refused."""
    from pianossm.align import decode
    from pianossm.align.api import EARLIEST, REFINE_SEARCH
    from pianossm.align.model import default_crnn_path
    from pianossm.errors import PianoSSMError

    audio, notes, cqt = piece
    bad = _distort(notes)
    seen = []
    real = decode.roll_to_notes

    def spy(*args, **kw):
        seen.append((kw.get("search"), kw.get("earliest", 0.0)))
        return real(*args, **kw)

    monkeypatch.setattr(decode, "roll_to_notes", spy)
    for given, want in ((None, EARLIEST), (0.0, 0.0), (2.5, 2.5)):
        seen.clear()
        align_notes(audio, bad, "dtw+crnn", default_crnn_path(), cqt=cqt, earliest=given)
        assert seen[:3] == [(0.15, want)] * 3  # from the DTW, the input, the neighbours
        assert seen[3:] == [(REFINE_SEARCH, 0.0)] * 4  # each refined, then the half frame
    with pytest.raises(PianoSSMError, match="earliest"):
        align_notes(audio, bad, "dtw+crnn", cqt=cqt, earliest=-1.0)


def _record_decodes(monkeypatch):
    """Every ``roll_to_notes`` call from now on, as ``(start notes, (notes, confidence),
    onset logits)``."""
    from pianossm.align import decode

    calls = []
    real = decode.roll_to_notes

    def spy(onset, frame, start, **kw):
        out = real(onset, frame, start, **kw)
        calls.append((start, out, onset))
        return out

    monkeypatch.setattr(decode, "roll_to_notes", spy)
    return calls


def test_each_start_is_refined_and_the_highest_logit_kept(piece, monkeypatch, unshifted):
    """Three starts (the DTW's output, the input, the DTW's output moved by the first
    decode's running-median shift), each refined once; per note the refinement with the
    highest onset logit is the result, a key's notes kept apart (``pick_decodes``), or the
    refinements' mean where none is sure (``blend_decodes``, by window probability; no
    half-frame pass, consensus off here)."""
    from pianossm.align import api
    from pianossm.align.dtw import align_dtw
    from pianossm.align.notes import local_shift

    audio, notes, cqt = piece
    bad = _distort(notes)
    calls = _record_decodes(monkeypatch)
    monkeypatch.setattr(api, "follow_consensus", lambda before, after: after)
    out = align_notes(audio, bad, "dtw+crnn", unshifted, cqt=cqt, half_frame=False)
    assert len(calls) == 6
    dtw = align_dtw(cqt, bad)
    np.testing.assert_allclose(calls[0][0].onset, dtw.onset)
    np.testing.assert_allclose(calls[1][0].onset, bad.onset)
    shift = local_shift(dtw.onset, calls[0][1][0].onset, dtw.onset, 9)
    np.testing.assert_allclose(calls[2][0].onset, dtw.onset + shift)
    for k in range(3):  # each refinement starts from its first decode
        np.testing.assert_allclose(calls[3 + k][0].onset, calls[k][1][0].onset)
    onsets = np.stack([c[1][0].onset for c in calls[3:]])
    conf = np.stack([c[1][1] for c in calls[3:]])
    logit = np.stack([api.onset_logits(c[2], c[1][0]) for c in calls[3:]])
    pick = api.pick_decodes(onsets, logit, bad.pitch)  # per note, a key's notes kept apart
    assert np.any(pick != api.pick_decodes(onsets, conf, bad.pitch))  # not the same here
    # ... or the decodes' confidence-weighted mean where they disagree and none is sure
    np.testing.assert_allclose(out.onset, api.blend_decodes(onsets, conf, pick, bad.pitch))
    assert len(np.unique(pick)) > 1  # the starts do differ here


def test_consensus_follows_the_dtw_when_the_input_is_far_off(piece, monkeypatch, unshifted):
    """With the MIDI 0.5 s late the outlier rule compares each note's final shift with its
    neighbours' shifts from the DTW's output, not from the input."""
    from pianossm.align import api
    from pianossm.align.dtw import align_dtw

    audio, notes, cqt = piece
    late = notes.with_times(notes.onset + 0.5, notes.offset + 0.5)
    seen = []
    real = api.follow_consensus
    monkeypatch.setattr(api, "follow_consensus",
                        lambda before, after: seen.append(before) or real(before, after))
    out = align_notes(audio, late, "dtw+crnn", unshifted, cqt=cqt)
    assert len(seen) == 1  # once per checkpoint (one ships)
    for before in seen:
        np.testing.assert_allclose(before.onset, align_dtw(cqt, late).onset)
    assert np.mean(np.abs(out.onset - notes.onset) <= 0.025) >= 0.9


def test_notes_clipped_to_zero_are_found_again(piece, monkeypatch):
    """MIDI 0.8 s early: its first notes clip to 0 and the DTW bunches them near the first
    note that was not clipped, beyond the CRNN's reach; ``place_stacked`` puts them back on
    their attacks (without it, half of them stay about 0.35 s off)."""
    from pianossm.align import api

    audio, notes, cqt = piece
    on = np.maximum(notes.onset - 0.8, 0.0)
    early = notes.with_times(on, np.maximum(notes.offset - 0.8, on + 0.05))
    clipped = early.onset == 0
    assert clipped.sum() >= 2 and np.ptp(notes.onset[clipped]) > 0.15
    out = align_notes(audio, early, "dtw+crnn", cqt=cqt)
    err = np.abs(out.onset - notes.onset)
    monkeypatch.setattr(api, "place_stacked", lambda cqt, rough, out, probe=None, **kw: out)
    without = np.abs(align_notes(audio, early, "dtw+crnn", cqt=cqt).onset - notes.onset)
    assert np.mean(err[clipped] <= 0.05) >= 0.7
    assert np.mean(without[clipped] <= 0.05) <= 0.5
    np.testing.assert_array_equal(err[~clipped], without[~clipped])  # the rest unchanged


def test_half_frame_pass_makes_onsets_follow_a_sub_frame_shift(piece):
    """Audio 5 ms later should give onsets 5 ms later.  One 10 ms grid cannot follow a
    half-frame shift exactly (the parabola's sub-frame estimate is biased between frames);
    the half-frame pass samples both grids, which a 5 ms shift only swaps."""
    from pianossm.align.features import HOP

    audio, notes, cqt = piece
    half = HOP // 2
    later = np.concatenate([np.zeros(half, audio.dtype), audio])
    dt = half / SAMPLE_RATE
    moved = notes.with_times(notes.onset + dt, notes.offset + dt)
    spread = {}
    for hf in (False, True):
        a = align_notes(audio, notes, "crnn", half_frame=hf)
        b = align_notes(later, moved, "crnn", half_frame=hf)
        spread[hf] = np.median(np.abs(b.onset - a.onset - dt))
    assert spread[True] < 0.6 * spread[False], spread
    out = align_notes(audio, _distort(notes), "dtw+crnn", cqt=cqt)
    one = align_notes(audio, _distort(notes), "dtw+crnn", cqt=cqt, half_frame=False)
    assert np.max(np.abs(out.onset - one.onset)) <= 0.5 * (0.06 + 0.006) + 1e-9


def test_far_out_input_starts_from_its_own_timing_moved_onto_the_recording(piece, monkeypatch,
                                                                           unshifted):
    """With the MIDI 0.5 s late and 3 % slow the input is no start; instead the input moved
    by the first decode's running-median shift over :data:`WARP_WIDTH` notes is, beside
    the DTW's output and the neighbours' start; each refined once."""
    from pianossm.align import api
    from pianossm.align.dtw import align_dtw
    from pianossm.align.notes import local_shift

    audio, notes, cqt = piece
    late = notes.with_times(0.5 + 1.03 * notes.onset, 0.5 + 1.03 * notes.offset)
    calls = _record_decodes(monkeypatch)
    out = align_notes(audio, late, "dtw+crnn", unshifted, cqt=cqt, half_frame=False)
    assert len(calls) == 6
    starts = [(start.onset, decoded[0].onset) for start, decoded, _ in calls]
    dtw = align_dtw(cqt, late).onset
    first = starts[0][1]
    np.testing.assert_allclose(starts[0][0], dtw)
    np.testing.assert_allclose(starts[1][0],
                               late.onset + local_shift(late.onset, first, late.onset,
                                                        api.WARP_WIDTH))
    np.testing.assert_allclose(starts[2][0], dtw + local_shift(dtw, first, dtw, 9))
    assert np.median(np.abs(starts[1][0] - notes.onset)) < 0.03  # on the recording now
    assert np.mean(np.abs(out.onset - notes.onset) <= 0.025) >= 0.9


def test_several_checkpoints_give_the_mean_of_their_alignments(piece, tmp_path):
    from pianossm.align.model import default_crnn_path
    from pianossm.errors import PianoSSMError

    audio, notes, cqt = piece
    bad = _distort(notes)
    first = default_crnn_path()
    second = _jiggled(tmp_path / "other.pt", 7)
    both = align_notes(audio, bad, "dtw+crnn", [first, second], cqt=cqt)
    one = align_notes(audio, bad, "dtw+crnn", first, cqt=cqt)
    two = align_notes(audio, bad, "dtw+crnn", second, cqt=cqt)
    np.testing.assert_allclose(both.onset, 0.5 * (one.onset + two.onset), rtol=0, atol=1e-12)
    np.testing.assert_allclose(both.offset, 0.5 * (one.offset + two.offset), rtol=0, atol=1e-12)
    assert np.any(one.onset != two.onset)  # two different networks
    with pytest.raises(PianoSSMError, match="empty"):
        align_notes(audio, bad, "dtw+crnn", [], cqt=cqt)


def _jiggled(path, seed):
    """A copy of the shipped checkpoint with its weights moved a little (seeded): another
    network of the same latency."""
    import torch

    from pianossm.align.model import default_crnn_path

    payload = torch.load(default_crnn_path(), map_location="cpu", weights_only=False)
    gen = torch.Generator().manual_seed(seed)
    payload["model"] = {k: v + 0.05 * v.std().nan_to_num() * torch.randn(v.shape, generator=gen)
                        if v.is_floating_point() and v.numel() > 1 else v
                        for k, v in payload["model"].items()}
    torch.save(payload, path)
    return str(path)


def test_the_refinements_and_the_half_frame_pass_have_their_own_networks(piece, monkeypatch,
                                                                          tmp_path):
    """``model`` makes the three first decodes, ``refine_model`` the three refinements and
    ``half_model`` the half-frame pass; left out, ``model`` makes them all (the
    single-network result exactly), and with no ``model`` the shipped three do; a network
    whose label latency is not the first's is refused."""
    from pianossm.align import api
    from pianossm.align.model import default_crnn_path, default_half_path, default_refine_path
    from pianossm.align.select import default_selector_path
    from pianossm.errors import PianoSSMError

    audio, notes, cqt = piece
    bad = _distort(notes)
    first = default_crnn_path()
    second, third = _jiggled(tmp_path / "b.pt", 1), _jiggled(tmp_path / "c.pt", 2)
    used = []
    real = api.predict_rolls
    monkeypatch.setattr(api, "predict_rolls",
                        lambda net, *a, **kw: used.append(net) or real(net, *a, **kw))
    out = align_notes(audio, bad, "dtw+crnn", first, cqt=cqt, refine_model=second,
                      half_model=third)
    a, b, c = (api._model(p) for p in (first, second, third))
    assert used == [a] * 3 + [b] * 3 + [c]  # three starts, their refinements, the half pass
    alone = align_notes(audio, bad, "dtw+crnn", first, cqt=cqt)
    same = align_notes(audio, bad, "dtw+crnn", first, cqt=cqt, refine_model=first,
                       half_model=first)
    np.testing.assert_array_equal(alone.onset, same.onset)
    assert np.any(out.onset != alone.onset)
    err = lambda n: np.mean(np.abs(n.onset - notes.onset) <= 0.025)
    assert err(out) >= 0.9
    used.clear()
    default = align_notes(audio, bad, "dtw+crnn", cqt=cqt)
    shipped = [api._model(p) for p in (first, default_refine_path(), default_half_path())]
    assert used == [shipped[0]] * 3 + [shipped[1]] * 3 + [shipped[2]]
    assert len({id(n) for n in shipped}) == 3  # three networks ship
    np.testing.assert_array_equal(default.onset, align_notes(
        audio, bad, "dtw+crnn", first, cqt=cqt, refine_model=default_refine_path(),
        half_model=default_half_path(), selector=default_selector_path()).onset)
    with pytest.raises(PianoSSMError, match="label latencies"):
        align_notes(audio, bad, "dtw+crnn", first, cqt=cqt,
                    half_model=_with_latency(str(tmp_path / "late.pt"), 0.0))


def test_the_shipped_selector_picks_by_default(piece, monkeypatch):
    """With the shipped networks the shipped decode selector picks between the refinements
    (its pick, :func:`pick_decodes` over its scores, is what the blend receives); with
    ``selector=False``, or a ``model`` given without one, the onset logits pick; a file that
    is not a selector is refused."""
    from pianossm.align import api
    from pianossm.align.select import DecodeSelector, decode_features, default_selector_path
    from pianossm.errors import PianoSSMError

    audio, notes, cqt = piece
    bad = _distort(notes)
    seen, blends = [], []
    real_pick, real_blend = api._pick, api.blend_decodes

    def pick(*a):
        seen.append(a)
        return real_pick(*a)

    monkeypatch.setattr(api, "_pick", pick)
    monkeypatch.setattr(api, "blend_decodes",
                        lambda o, c, p, *a: blends.append(p) or real_blend(o, c, p, *a))
    default = align_notes(audio, bad, "dtw+crnn", cqt=cqt)
    onsets, conf, logit, f_on, f_conf, rough, start, in_time, sel, cross = seen[0]
    assert isinstance(sel, DecodeSelector)
    feats = decode_features(onsets, conf, logit, f_on, f_conf, rough, start, in_time,
                            api.pick_decodes(onsets, logit, rough.pitch), cross)
    want = api.pick_decodes(onsets, sel.scores(feats), rough.pitch)
    np.testing.assert_array_equal(blends[0], want)
    seen.clear()
    blends.clear()
    off = align_notes(audio, bad, "dtw+crnn", cqt=cqt, selector=False)
    assert seen[0][8] is None
    np.testing.assert_array_equal(blends[0], api.pick_decodes(onsets, logit, rough.pitch))
    assert np.mean(np.abs(default.onset - notes.onset) <= 0.025) >= 0.9
    assert np.mean(np.abs(off.onset - notes.onset) <= 0.025) >= 0.9
    seen.clear()
    given = align_notes(audio, bad, "dtw+crnn", default_selector_path().replace(
        "align_select.npz", "align_crnn.pt"), cqt=cqt)
    assert seen[0][8] is None and len(given) == len(bad)
    seen.clear()
    align_notes(audio, bad, "dtw+crnn", default_selector_path().replace(
        "align_select.npz", "align_crnn.pt"), cqt=cqt, selector=True)
    assert isinstance(seen[0][8], DecodeSelector)
    with pytest.raises(PianoSSMError, match="not a decode selector"):
        align_notes(audio, bad, "dtw+crnn", cqt=cqt, selector=__file__)


def test_bad_checkpoint_is_refused_before_any_work(piece, tmp_path, monkeypatch):
    from pianossm.align import api
    from pianossm.errors import PianoSSMError

    audio, notes, _ = piece
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    monkeypatch.setattr(api, "audio_to_cqt", lambda *a, **k: pytest.fail("CQT computed"))
    with pytest.raises(PianoSSMError, match="junk.pt"):
        align_notes(audio, notes, "dtw+crnn", [tmp_path / "junk.pt"])
    with pytest.raises(PianoSSMError, match="not found"):
        align_notes(audio, notes, "crnn", tmp_path / "missing.pt")


def test_wpe_feeds_the_crnn_and_not_the_dtw(piece, monkeypatch):
    import pianossm.align.wpe as wpe_module

    audio, notes, cqt = piece
    bad = _distort(notes)
    calls, real = [], wpe_module.wpe_filter
    monkeypatch.setattr(wpe_module, "wpe_filter",
                        lambda a, *args, **kw: calls.append(len(a)) or real(a, *args, **kw))
    on, off = (align_notes(audio, bad, "dtw", cqt=cqt, wpe=w) for w in (True, False))
    assert not calls  # the DTW stage reads the recording as it is
    np.testing.assert_array_equal(on.onset, off.onset)
    on = align_notes(audio, bad, "dtw+crnn", cqt=cqt)
    assert calls == [len(audio)]
    off = align_notes(audio, bad, "dtw+crnn", cqt=cqt, wpe=False)
    assert len(calls) == 1 and np.any(on.onset != off.onset)


def test_the_crnn_hears_silence_after_the_recording(piece, monkeypatch):
    """The CRNN reads the WPE error of the recording as it is and the recording's own CQT,
    each followed by ``tail`` s of silence (50 frames for 0.5 s; ``tail=0``: none)."""
    from pianossm.align import api
    from pianossm.align.notes import Notes
    from pianossm.align.wpe import wpe_filter
    from pianossm.errors import PianoSSMError

    audio, notes, _ = piece
    audio = audio[:6 * SAMPLE_RATE]  # cut while notes still sound
    keep = notes.offset < 5.8
    notes = Notes(*(a[keep] for a in (notes.onset, notes.offset, notes.pitch, notes.velocity)))
    cqt = audio_to_cqt(audio)
    seen, real = [], api.predict_rolls
    monkeypatch.setattr(api, "predict_rolls", lambda net, c, n, **kw: seen.append(
        (c, kw["plain"])) or real(net, c, n, **kw))
    t = len(cqt)
    assert cqt[-1].any()
    filtered = audio_to_cqt(wpe_filter(audio))
    for tail, frames in ((0.5, t + 50), (0.0, t)):
        seen.clear()
        align_notes(audio, notes, "crnn", cqt=cqt, half_frame=False, refine=0, tail=tail)
        c, plain = seen[0]
        assert c.shape == plain.shape == (frames, 88)
        # the WPE error's frames as they are (up to the last 0.6 s, which the longest CQT
        # windows, 0.5 s at A0, read together with what follows), then its sound fades into
        # the silence within 0.3 s; the recording's own CQT as given, then silent frames
        np.testing.assert_allclose(c[:t - 60], filtered[:t - 60], atol=1e-4)
        np.testing.assert_array_equal(plain[:t], cqt)
        assert not plain[t:].any() and not c[t + 30:].any()
        assert c[t:t + 5].any() == (tail > 0)
    with pytest.raises(PianoSSMError, match="tail"):
        align_notes(audio, notes, "crnn", cqt=cqt, tail=-1.0)


def test_wpe_brings_hall_onsets_closer(tmp_path):
    """Four generated pieces, each in two generated halls (RT60 1.5-2.2 s), human-like
    perturbation, the CRNN alone: reading the WPE prediction error it lands closer on
    average (mean error over the eight 13.7 -> 10.6 ms with the shipped stage-25 CRNN and its
    several starts, 12.9 -> 10.3 ms with the stage-20/21 pair,
    13.2 -> 12.0 ms with stages 14/15, 15.3 -> 12.6 ms with stages 9/11; the rendered
    validation sets, README "WPE filtering", are the real measure)."""
    from pianossm.align.acoustics import record
    from pianossm.align.perturb import PerturbConfig, perturb_notes
    from pianossm.align.pieces import generate_piece
    from pianossm.fluid import render_fluidsynth

    err = {True: [], False: []}
    for seed in (424242, 7, 8, 9):
        midi = generate_piece(seed=seed, seconds=SECONDS)
        path = tmp_path / f"{seed}.mid"
        midi.write(str(path))
        audio = render_fluidsynth(path, SAMPLE_RATE, "fluidr3")
        notes = midi_to_notes(midi)
        for room_seed in (1, 2):
            hall, _ = record(audio, SAMPLE_RATE, "hall", np.random.default_rng(room_seed))
            bad = perturb_notes(notes, PerturbConfig(), np.random.default_rng(room_seed))
            for w in (True, False):
                err[w].append(np.abs(align_notes(hall, bad, "crnn", wpe=w).onset
                                     - notes.onset).mean())
    assert np.mean(err[True]) < 0.9 * np.mean(err[False]), err


def test_a_network_reading_the_plain_cqt_gets_the_recordings_own(piece, monkeypatch, tmp_path):
    """A CRNN with the plain-CQT channel reads, beside the CQT of the WPE prediction error,
    the CQT of the recording itself on the same grid (and half a frame later in the
    half-frame pass); a network without it gets none."""
    import torch

    from pianossm.align import api
    from pianossm.align.model import AlignCRNN, CRNNConfig, save_crnn, with_plain_cqt
    from pianossm.align.wpe import wpe_filter

    audio, notes, cqt = piece
    torch.manual_seed(0)
    net = AlignCRNN(CRNNConfig(channels=4, hidden=8, proj=16))
    save_crnn(tmp_path / "narrow.pt", net)
    save_crnn(tmp_path / "plain.pt", with_plain_cqt(net))
    seen = []
    real = api.predict_rolls
    monkeypatch.setattr(api, "predict_rolls", lambda model, c, n, **kw: seen.append(
        (c, kw.get("plain"))) or real(model, c, n, **kw))
    bad = _distort(notes)
    narrow = align_notes(audio, bad, "dtw+crnn", str(tmp_path / "narrow.pt"))
    assert seen and all(p is None for _, p in seen)
    seen.clear()
    wide = align_notes(audio, bad, "dtw+crnn", str(tmp_path / "plain.pt"))
    np.testing.assert_allclose(wide.onset, narrow.onset, atol=1e-6)  # zero weights
    wpe_cqt = audio_to_cqt(wpe_filter(audio))
    half = api._half_frame_cqt(audio, len(seen[0][0]))
    grids = {"whole": 0, "half": 0}
    for c, p in seen:
        assert p is not None and p.shape == c.shape
        t = min(len(cqt), len(c))
        if np.allclose(c[:t], wpe_cqt[:t], atol=1e-6):
            np.testing.assert_allclose(p[:t], cqt[:t], atol=1e-6)
            grids["whole"] += 1
        else:
            np.testing.assert_allclose(p, half, atol=1e-6)
            grids["half"] += 1
    assert grids["whole"] >= 3 and grids["half"] == 1


def test_a_networks_label_latency_moves_its_alignment(piece, tmp_path, unshifted):
    """A network whose labels sat ``L`` before the sound works in its labels' times: its
    alignment is that of the same weights without a latency given the notes ``L`` earlier,
    moved ``L`` later (exactly: the pipeline is deterministic); the shipped network carries
    the latency of its training renders (scripts/train_align.sh, stage 34, kept by 36, 38
    and 40)."""
    from pianossm.align.model import load_crnn

    audio, notes, cqt = piece
    bad = _distort(notes)
    assert 0.004 < load_crnn()[1]["label_latency"] < 0.008
    lat = 0.0123  # not a multiple of the 10 ms frame: a real shift of the search
    late = _with_latency(str(tmp_path / "late.pt"), lat)
    zero = align_notes(audio, bad.with_times(bad.onset - lat, bad.offset - lat), "crnn",
                       unshifted, cqt=cqt)
    got = align_notes(audio, bad, "crnn", late, cqt=cqt)
    np.testing.assert_allclose(got.onset, zero.onset + lat, atol=1e-9)
    np.testing.assert_allclose(got.offset, zero.offset + lat, atol=1e-9)
    # and the latency is not a no-op: the same input without it aligns elsewhere
    plain = align_notes(audio, bad, "crnn", unshifted, cqt=cqt)
    assert np.abs(plain.onset - got.onset).max() > 0.005


def test_confidence_is_the_kept_decodes_window_probability(piece, monkeypatch):
    """``with_confidence``: per note the window probability of the refinement kept (a
    blended note's largest), 0 where the consensus step moved the note, NaN for the DTW;
    the notes are those of the call without it."""
    from pianossm.align import api

    audio, notes, cqt = piece
    bad = _distort(notes)
    seen = []
    real_blend, real_follow = api.blend_decodes, api.follow_consensus

    def blend(onsets, conf, pick, *a):
        out = real_blend(onsets, conf, pick, *a)
        seen.append((onsets, conf, pick, out))
        return out

    def follow(before, after, *a, **k):  # the consensus step also moves the first note
        out = real_follow(before, after, *a, **k)
        seen.append(out.onset != after.onset)
        return out.with_times(out.onset + 0.01 * (np.arange(len(out)) == 0), out.offset)

    plain = align_notes(audio, bad, "dtw+crnn", cqt=cqt)
    monkeypatch.setattr(api, "blend_decodes", blend)
    monkeypatch.setattr(api, "follow_consensus", follow)
    got, sure = align_notes(audio, bad, "dtw+crnn", cqt=cqt, with_confidence=True)
    (onsets, conf, pick, kept), moved = seen
    n = np.arange(len(bad))
    want = np.where(kept == onsets[pick, n], conf[pick, n], conf.max(axis=0))
    want[moved | (n == 0)] = 0.0
    np.testing.assert_array_equal(got.onset[1:], plain.onset[1:])
    np.testing.assert_allclose(sure, want)
    assert sure.shape == (len(bad),) and np.all((sure >= 0) & (sure <= 1))
    assert sure[0] == 0 and np.mean(sure > 0.4) > 0.5
    out, none = align_notes(audio, bad, "dtw", cqt=cqt, with_confidence=True)
    assert len(out) == len(bad) and none.shape == (len(bad),) and np.isnan(none).all()
