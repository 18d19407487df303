"""A model's input delay (``PianoSSMConfig.input_delay_ms``): every path that turns MIDI into
model input (the offline roll, streaming synthesis, training crops and evaluation) shows the
model its input that many whole frames late, so its audio is the undelayed model's, later."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import torch

import pianossm
from pianossm.checkpoint import load_model, save_checkpoint
from pianossm.config import PianoSSMConfig, preset
from pianossm.engine import EngineWeights, pack_model
from pianossm.engine.events import events_from_roll
from pianossm.engine.synth import Synth
from pianossm.errors import PianoSSMError
from pianossm.features import PianoRoll, load_midi
from pianossm.model import PianoSSM

LAYOUT = "roll+onset+pedal"
DEMO = str(resources.files("pianossm") / "assets" / "demo.mid")


def _silent_at_rest(delay_ms: float = 0.0, seed: int = 3) -> PianoSSM:
    """A random model whose output is exactly zero while its input is: no biases, no mean."""
    torch.manual_seed(seed)
    cfg = preset("S", d_state=8, audio_std=0.05, input_delay_ms=delay_ms).with_features(LAYOUT)
    model = PianoSSM(cfg).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith(("B_bias", "C_bias", "heads.bias")):
                p.zero_()
    return model


def _with_delay(model: PianoSSM, delay_ms: float) -> PianoSSM:
    other = PianoSSM(model.config.replace(input_delay_ms=delay_ms)).eval()
    other.load_state_dict(model.state_dict())
    return other


def test_delay_frames_and_bad_delays() -> None:
    cfg = PianoSSMConfig(input_delay_ms=7.0)
    assert [cfg.delay_frames(f) for f in (1000.0, 1200.0, 1764.0)] == [7, 8, 12]
    assert PianoSSMConfig().delay_frames(1000.0) == 0
    for bad in (-1.0, 150.0, float("nan")):
        with pytest.raises(PianoSSMError, match=f"input delay must lie in 0..100 ms, got {bad}"):
            PianoSSMConfig(input_delay_ms=bad)


def test_checkpoint_keeps_the_delay(tmp_path: Path) -> None:
    save_checkpoint(tmp_path / "d.pt", _silent_at_rest(7.0))
    assert load_model(tmp_path / "d.pt").config.input_delay_ms == 7.0


def test_roll_delay_shifts_every_channel() -> None:
    midi = load_midi(DEMO)
    plain = PianoRoll(midi, 1000.0, features=LAYOUT)
    late = PianoRoll(midi, 1000.0, features=LAYOUT, delay=7)
    assert late.n_frames == plain.n_frames  # the length is the file's, delay or not
    whole = plain.frames(0, plain.n_frames)
    assert whole[:, 88:176].any() and whole[:, 176].any()  # onsets and pedal are exercised
    got = late.frames(0, late.n_frames + 7)
    np.testing.assert_array_equal(got[7:], whole)
    assert not got[:7].any()
    end = late.n_frames + 7
    for first, last in [(0, 3), (3, 11), (7, 7), (500, 640), (end - 5, end + 9)]:
        want = np.zeros((last - first, 177), np.float32)
        for k in range(first, last):
            if 7 <= k < end:
                want[k - first] = whole[k - 7]
            elif k >= end:  # past the end: the pedal keeps its last level
                want[k - first] = plain.frames(k - 7, k - 6)[0]
        np.testing.assert_array_equal(late.frames(first, last), want)
    for bad in (-1, 2.5, True):
        with pytest.raises(PianoSSMError, match="input delay must be a whole number"):
            PianoRoll(midi, 1000.0, delay=bad)  # type: ignore[arg-type]


def test_delayed_model_sounds_the_undelayed_audio_later(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIANOSSM_CACHE_DIR", str(tmp_path / "cache"))
    plain = _silent_at_rest()
    late = _with_delay(plain, 7.0)
    ref, rate = pianossm.synthesize(DEMO, plain)
    got, _ = pianossm.synthesize(DEMO, late)
    shift = 7 * 16
    assert rate == 16000 and len(got) == len(ref)  # the length is the file's (and tail's)
    assert not got[:shift].any()
    np.testing.assert_allclose(got[shift:], ref[:-shift], rtol=0, atol=1e-6 * np.abs(ref).max())
    tail, _ = pianossm.synthesize(DEMO, late, tail=0.5)  # a tail holds the last 7 ms too
    ref_tail, _ = pianossm.synthesize(DEMO, plain, tail=0.5)
    np.testing.assert_allclose(tail[shift:], ref_tail[:-shift], rtol=0,
                               atol=1e-6 * np.abs(ref).max())
    assert np.abs(tail[len(ref):len(ref) + shift]).max() > 0
    # through a checkpoint (packed weights, cached on disk) and at 24 kHz (8 frames of 1200/s)
    save_checkpoint(tmp_path / "late.pt", late)
    packed, _ = pianossm.synthesize(DEMO, str(tmp_path / "late.pt"))
    np.testing.assert_allclose(packed, got, rtol=0, atol=1e-6 * np.abs(ref).max())
    ref24, _ = pianossm.synthesize(DEMO, plain, sample_rate=24000)
    got24, _ = pianossm.synthesize(DEMO, late, sample_rate=24000)
    np.testing.assert_allclose(got24[8 * 20:], ref24[:-8 * 20], rtol=0,
                               atol=1e-6 * np.abs(ref24).max())


def test_streaming_synth_applies_the_packed_delay() -> None:
    late = _silent_at_rest(7.0)
    w = pack_model(late, 16000, 0, np.float64)
    assert w.delay_frames == 7
    assert EngineWeights.from_arrays(w.to_arrays()).delay_frames == 7
    old = {k: v for k, v in w.to_arrays().items() if k != "delay_frames"}  # packed before
    assert EngineWeights.from_arrays(old).delay_frames == 0
    roll = PianoRoll(load_midi(DEMO), 1000.0, features=LAYOUT)
    offline, _ = pianossm.synthesize(DEMO, late)
    from test_engine import _stream

    n = 12000
    streamed = _stream(Synth(w), events_from_roll(roll, 16), 64, n)
    np.testing.assert_allclose(streamed, offline[:n], rtol=0, atol=1e-5 * np.abs(offline).max())
    from pianossm.engine.offline import render_roll

    with pytest.raises(PianoSSMError, match="delayed by 0 frames given to a model whose input "
                       "delay is 7 frames"):
        next(render_roll(w, roll))  # an undelayed roll
    late_roll = PianoRoll(load_midi(DEMO), 1000.0, features=LAYOUT, delay=7)
    blocks = np.concatenate(list(render_roll(w, late_roll)))
    np.testing.assert_allclose(blocks[:n], offline[:n], rtol=0, atol=1e-5 * np.abs(offline).max())


def test_cache_segment_delays_the_features_not_the_audio(tmp_path: Path) -> None:
    from test_train import _tone_cache

    from pianossm.data.cache import AudioCache

    cache = AudioCache(_tone_cache(tmp_path))
    item = cache.split("train")[0]
    n = cache.items[item]["n_frames"]
    f0, a0 = cache.segment(item, 0, n)
    for first, count in [(0, 40), (3, 40), (n - 20, 40)]:
        f, a = cache.segment(item, first, count, delay=5)
        fz, az = cache.segment(item, first, count)
        np.testing.assert_array_equal(a, az)
        want = np.zeros_like(f)
        for k in range(count):
            if 0 <= first + k - 5 < n:
                want[k] = f0[first + k - 5]
        np.testing.assert_array_equal(f, want)
    assert f0.any()
    # training crops: the same draws, every crop's features five frames later
    plain, audio, _ = cache.sample_crops(np.random.default_rng(1), 3, 0.1, "train")
    late, audio5, _ = cache.sample_crops(np.random.default_rng(1), 3, 0.1, "train", delay=5)
    np.testing.assert_array_equal(audio5, audio)
    np.testing.assert_array_equal(late[:, 5:], plain[:, :-5])
    with pytest.raises(PianoSSMError, match="input delay must be a whole number"):
        cache.segment(item, 0, 4, delay=-2)


def test_training_crops_and_resume_take_the_delay(tmp_path: Path) -> None:
    from test_train import _cfg, _tone_cache

    from pianossm.data.cache import AudioCache
    from pianossm.train import Trainer

    data = _tone_cache(tmp_path)
    run = Trainer(_cfg(data, tmp_path / "a", steps=2, finetune_steps=0), progress=False)
    run.run()
    assert run.delay == 0 and run.model.config.input_delay_ms == 0.0
    # resumed with a delay: the model's config takes it, and so do its crops and checkpoints
    cfg = _cfg(data, tmp_path / "a", steps=3, finetune_steps=0, input_delay_ms=4.0)
    again = Trainer(cfg, progress=False)
    again.resume(str(tmp_path / "a" / "last.pt"))
    assert again.delay == 4 * 16 // again.hop and again.model.config.input_delay_ms == 4.0
    cache = AudioCache(data)
    item, first, n = cache.windows("validation", 1.0)[0]
    pred, _ = again._window(item, first, n, again.model)
    feats, _ = cache.segment(item, first, n, cfg.features, again.delay)
    with torch.no_grad():
        want = again.model(torch.from_numpy(feats)[None], again.hop, 1.0,
                           cache.heads.index(cache.items[item]["head"]))[0]
    torch.testing.assert_close(pred, want)
    again.run()
    assert load_model(tmp_path / "a" / "last.pt").config.input_delay_ms == 4.0
    with pytest.raises(PianoSSMError, match="--input-delay-ms must lie in 0..100"):
        _cfg(data, tmp_path / "b", input_delay_ms=-3.0).check()
