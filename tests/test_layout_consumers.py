"""Every renderer builds the input in the model's layout: the packed weights carry it
(torch-free path and cache key included), offline, streaming, the pipeline, evaluation
and the benchmark take it, and an unknown or mismatched layout is one clear error."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import torch

import pianossm
from pianossm.checkpoint import load_model, save_checkpoint
from pianossm.config import preset
from pianossm.engine import Engine, EngineWeights, pack_model
from pianossm.engine.events import events_from_roll
from pianossm.engine.offline import render_frames, render_roll
from pianossm.engine.synth import Synth
from pianossm.errors import PianoSSMError
from pianossm.features import PianoRoll, frame_hop, load_midi
from pianossm.model import PianoSSM
from pianossm.packed import PackedModel

LAYOUT = "roll+onset+pedal"
DEMO = str(resources.files("pianossm") / "assets" / "demo.mid")


def _model(features: str = LAYOUT, seed: int = 0, d_state: int = 8) -> PianoSSM:
    torch.manual_seed(seed)
    return PianoSSM(preset("S", d_state=d_state, audio_std=0.05).with_features(features)).eval()


@pytest.fixture
def ckpt(tmp_path: Path) -> Path:
    path = tmp_path / "onset.pt"
    save_checkpoint(path, _model())
    return path


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "packed"
    monkeypatch.setenv("PIANOSSM_CACHE_DIR", str(path))
    return path


@torch.no_grad()
def _forward(model: PianoSSM, frames: np.ndarray, rate: int) -> np.ndarray:
    m64 = PianoSSM(model.config).double()
    m64.load_state_dict(model.state_dict())
    x = torch.from_numpy(frames).double()[None]
    return m64(x, frame_hop(rate), m64.ts_for(rate), 0)[0].numpy()


def test_packed_weights_carry_the_layout(ckpt: Path, cache: Path) -> None:
    model = load_model(ckpt)
    w = pack_model(model, 16000)
    assert (w.features, w.channels, w.pedal_threshold) == (LAYOUT, 177, 64)
    again = EngineWeights.from_arrays(w.to_arrays())
    assert again.features == LAYOUT and again.channels == 177
    handle = PackedModel(ckpt)
    assert handle.pack(16000).features == LAYOUT
    fresh = PackedModel(ckpt)  # from the disk entry, no torch model built
    assert fresh.pack(16000).features == LAYOUT and fresh._torch is None
    arrays = dict(w.to_arrays())
    del arrays["features"]
    with pytest.raises(PianoSSMError, match="without features"):
        EngineWeights.from_arrays(arrays)
    with pytest.raises(PianoSSMError, match="read 177 input channels, but their layout 'roll'"):
        EngineWeights.from_arrays(dict(w.to_arrays(), features=np.array("roll")))
    with pytest.raises(PianoSSMError, match="unknown feature layout 'roll\\+velocity'"):
        EngineWeights.from_arrays(dict(w.to_arrays(), features=np.array("roll+velocity")))


def test_layout_changes_the_cache_key(tmp_path: Path, cache: Path) -> None:
    """Two checkpoints that differ only in the layout (same weights on the roll columns)
    get different entries, and each renders its own."""
    roll = _model("roll")
    wide = _model(LAYOUT)
    with torch.no_grad():
        wide.blocks[0].ssm.B.zero_()
        wide.blocks[0].ssm.B[:, :88] = roll.blocks[0].ssm.B
        for (k, a), (_, b) in zip(wide.state_dict().items(), roll.state_dict().items()):
            if k != "blocks.0.ssm.B":
                a.copy_(b)
    save_checkpoint(tmp_path / "a.pt", roll)
    save_checkpoint(tmp_path / "b.pt", wide)
    a, b = PackedModel(tmp_path / "a.pt"), PackedModel(tmp_path / "b.pt")
    assert a.digest != b.digest
    assert a.pack(16000).features == "roll" and b.pack(16000).features == LAYOUT
    entries = sorted(p.name for p in (cache / "packed").glob("*.npz"))
    assert len(entries) == 2


def test_offline_and_streaming_equal_the_forward_in_the_layout(ckpt: Path) -> None:
    from test_engine import _stream

    model = load_model(ckpt)
    rate, n = 16000, 12000
    roll = PianoRoll(load_midi(DEMO), 1000.0, features=LAYOUT)
    frames = roll.frames(0, n // 16)
    ref = _forward(model, frames, rate)
    w = pack_model(model, rate, 0, np.float64)
    offline = render_frames(Engine(w), frames)
    assert np.abs(offline - ref).max() <= 1e-9 * np.abs(ref).max()
    # the onset and pedal channels matter to this model
    plain = frames.copy()
    plain[:, 88:] = 0
    assert np.abs(render_frames(Engine(w), plain) - offline).max() > 1e-3 * np.abs(ref).max()
    synth = Synth(w)  # packed weights alone: the layout comes with them
    assert synth.roll.features == LAYOUT
    streamed = _stream(synth, events_from_roll(roll, 16), 64, n)
    assert np.abs(streamed - ref).max() <= 1e-6 * np.abs(ref).max()
    blocks = list(render_roll(w, roll, block_frames=100))
    np.testing.assert_allclose(np.concatenate(blocks)[:n], offline.astype(np.float32),
                               rtol=0, atol=1e-6 * np.abs(ref).max())


def test_mismatched_input_is_one_clear_error(ckpt: Path) -> None:
    w = pack_model(load_model(ckpt), 16000)
    roll = PianoRoll(load_midi(DEMO), 1000.0)  # the roll layout
    with pytest.raises(PianoSSMError, match="layout 'roll' given to a model that takes "
                       "'roll\\+onset\\+pedal'"):
        next(render_roll(w, roll))
    with pytest.raises(PianoSSMError, match="do not fit the model's input layout"):
        render_frames(Engine(w), roll.frames(0, 10))


def test_pipeline_renders_the_layout_packed_and_torch_alike(ckpt: Path, cache: Path) -> None:
    """synthesize/render through a checkpoint path (packed, cached) and the torch model:
    the same audio, and it is the forward pass over the layout's frames."""
    packed, rate = pianossm.synthesize(DEMO, str(ckpt))
    model = load_model(ckpt)
    direct, _ = pianossm.synthesize(DEMO, model)
    assert rate == 16000 and np.array_equal(packed, direct)
    roll = PianoRoll(load_midi(DEMO), 1000.0, features=LAYOUT)
    ref = _forward(model, roll.frames(0, roll.n_frames), rate)
    assert np.abs(packed[:len(ref)] - ref).max() <= 1e-5 * np.abs(ref).max()
    reference, _ = pianossm.synthesize(DEMO, model, numerics="reference")
    assert np.abs(reference[:len(ref)] - ref).max() <= 1e-4 * np.abs(ref).max()


def test_torch_free_render_of_a_cached_layout_model(ckpt: Path, cache: Path,
                                                    tmp_path: Path) -> None:
    code = ("import sys; from pianossm.cli import main; "
            "rc = main(['render', sys.argv[1], '-o', sys.argv[2], '--model', sys.argv[3], "
            "'-q', '--force', '--bits', 'float']); print(rc, 'torch' in sys.modules)")
    env = dict(os.environ, PIANOSSM_CACHE_DIR=str(cache))
    runs = [subprocess.run([sys.executable, "-c", code, DEMO, str(tmp_path / f"{i}.wav"),
                            str(ckpt)], env=env, capture_output=True, text=True, check=True,
                           timeout=300).stdout for i in range(2)]
    assert runs == ["0 True\n", "0 False\n"]
    import soundfile as sf

    want, _ = pianossm.synthesize(DEMO, load_model(ckpt))
    assert np.array_equal(sf.read(tmp_path / "1.wav", dtype="float32")[0], want)


def test_checkpoint_with_an_unknown_layout_is_refused(ckpt: Path, tmp_path: Path) -> None:
    payload = torch.load(ckpt, weights_only=True)
    payload["config"]["features"] = "roll+velocity"
    bad = tmp_path / "bad.pt"
    torch.save(payload, bad)
    with pytest.raises(PianoSSMError, match="bad.pt.*unknown feature layout 'roll\\+velocity'"):
        load_model(bad)
    with pytest.raises(PianoSSMError, match="unknown feature layout"):
        pianossm.synthesize(DEMO, str(bad))


def test_bench_row_and_frames_in_the_layout() -> None:
    from pianossm.engine import bench

    frames, events = bench._frames(16000, 0.2, LAYOUT)
    assert frames.shape == (200, 177) and frames[:, 88:176].any()
    tiny = bench.Durations(offline=0.05, block64=0.02, block1=0.0, reference=0.0, training=0.0)
    row = bench.bench_row("S", 16000, tiny, features=LAYOUT)
    assert row["rtf_offline"] > 0 and np.isfinite(row["rtf_block64"])


def test_evaluate_model_source_takes_the_layout(tmp_path: Path) -> None:
    """At the cache rate a layout model reads the cache's frames where it holds them and
    computes them from the MIDI where not: the same audio either way."""
    from test_train import _tone_cache

    from pianossm.data.cache import AudioCache, add_features
    from pianossm.evaluate import model_source

    path = _tone_cache(tmp_path)
    model = _model()
    item, first, n = AudioCache(path).windows("validation", 1.0)[0]
    from_midi = model_source(model, AudioCache(path))(item, first, n)
    add_features(path, LAYOUT, progress=False)
    cache = AudioCache(path)
    from_cache = model_source(model, cache)(item, first, n)
    feats, _ = cache.segment(item, first, n, LAYOUT)
    with torch.no_grad():  # the same float32 forward over the layout's frames
        ref = model(torch.from_numpy(feats)[None], 16, 1.0, 0)[0].numpy()
    np.testing.assert_array_equal(from_cache, ref)
    np.testing.assert_array_equal(from_midi, from_cache)
    at_24k = model_source(model, cache, synth_rate=24000)(item, first, n)
    assert at_24k.shape == from_cache.shape and np.isfinite(at_24k).all()
