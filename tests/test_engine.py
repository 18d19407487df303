"""Engine equality: offline, streaming and the training forward give the same audio."""

from __future__ import annotations

import os
from importlib import resources

import numpy as np
import pytest
import torch

from pianossm.config import preset
from pianossm.engine import Engine, kernels, pack_model
from pianossm.engine.events import events_from_roll
from pianossm.engine.offline import render_frames, render_roll
from pianossm.engine.synth import Synth
from pianossm.features import PianoRoll, frame_hop, load_midi
from pianossm.model import PianoSSM

SHARED = os.environ.get("PIANO_SSM_SHARED", "/work/shared")
OFFICIAL = os.path.join(SHARED, "reference", "official-piano-ssm")


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


def _model(name: str = "S", train: int = 16000, seed: int = 0, d_state: int | None = None,
           ) -> PianoSSM:
    torch.manual_seed(seed)
    cfg = preset(name, train_sample_rate=train)
    if d_state is not None:
        cfg = cfg.replace(d_state=d_state)
    return PianoSSM(cfg).eval()


def _demo_roll(rate: int) -> PianoRoll:
    path = resources.files("pianossm") / "assets" / "demo.mid"
    return PianoRoll(load_midi(str(path)), rate / frame_hop(rate))


@torch.no_grad()
def _forward64(model: PianoSSM, frames: np.ndarray, rate: int, head: int = 0) -> np.ndarray:
    m64 = PianoSSM(model.config).double()
    m64.load_state_dict(model.state_dict())
    feats = torch.from_numpy(frames).double()[None]
    return m64(feats, frame_hop(rate), m64.ts_for(rate), head)[0].numpy()


def _stream(synth: Synth, events: list, block: int, n: int) -> np.ndarray:
    out, i = [], 0
    for pos in range(0, n + block, block):
        batch = []
        while i < len(events) and events[i][0] < pos + block:
            batch.append((events[i][0] - pos, events[i][1]))
            i += 1
        out.append(synth.process(batch, block))
    return np.concatenate(out)[block:block + n]  # drop the one block of latency


def _rel(a: np.ndarray, ref: np.ndarray) -> float:
    return float(np.abs(a - ref).max() / np.abs(ref).max())


@pytest.mark.parametrize("rate", [16000, 44100])
def test_float64_offline_equals_training_forward(rate: int) -> None:
    model = _model(train=16000, d_state=16)
    roll = _demo_roll(rate)
    frames = roll.frames(0, 300)
    out = render_frames(Engine(pack_model(model, rate, 0, np.float64)), frames)
    assert _rel(out, _forward64(model, frames, rate)) < 1e-10


def test_blocks_and_sample_path_equal_one_pass(rng: np.random.Generator) -> None:
    model = _model(d_state=16)
    weights = pack_model(model, 16000, 0, np.float64)
    frames = _demo_roll(16000).frames(0, 200)
    whole = render_frames(Engine(weights), frames)
    engine, v = Engine(weights, chunk=96), None
    v = engine.project_frames(frames)
    lens = np.full(len(frames), 16, dtype=np.int64)
    out, pos = np.empty_like(whole), 0
    while pos < len(out):  # ragged blocks, across frame and chunk boundaries
        n = min(int(rng.integers(1, 300)), len(out) - pos)
        f0 = pos // 16
        engine.render(v[f0:], lens[f0:], out[pos:pos + n], skip=pos - 16 * f0)
        pos += n
    assert _rel(out, whole) < 1e-12


@pytest.mark.parametrize("block", [1, 7, 64, 1000])
def test_streaming_equals_offline_float64(block: int) -> None:
    model = _model(d_state=16)
    roll = _demo_roll(16000)
    n = 16000 if block > 1 else 6000
    offline = render_frames(Engine(pack_model(model, 16000, 0, np.float64)),
                            roll.frames(0, n // 16))
    synth = Synth(model, 16000, dtype=np.float64)
    streamed = _stream(synth, events_from_roll(roll, 16), block, n)
    assert synth.latency == block
    assert _rel(streamed, offline) < 1e-6  # the output is float32


@pytest.mark.parametrize("block", [1, 64, 4096])
def test_float32_streaming_and_offline_match_float64_forward(block: int) -> None:
    rate = 44100  # the slowest modes (per sample) and the largest float32 error
    model = _model("S", train=44100)
    roll = _demo_roll(rate)
    n = 8192 if block > 1 else 4000
    frames = roll.frames(0, -(-n // 25))
    ref = _forward64(model, frames, rate)[:n]
    offline = render_frames(Engine(pack_model(model, rate)), frames)[:n]
    assert _rel(offline, ref) < 1e-5
    streamed = _stream(Synth(model, rate), events_from_roll(roll, 25), block, n)
    assert _rel(streamed, ref) < 1e-5


def test_render_blocks_equals_forward() -> None:
    import pretty_midi

    from pianossm.render import render_blocks

    pm = pretty_midi.PrettyMIDI()
    inst = pretty_midi.Instrument(0)
    inst.notes += [pretty_midi.Note(90, 60, 0.01, 0.3), pretty_midi.Note(60, 64, 0.2, 0.5)]
    inst.control_changes += [pretty_midi.ControlChange(64, 127, 0.25),
                             pretty_midi.ControlChange(64, 0, 0.45)]
    pm.instruments.append(inst)
    model = _model(d_state=16)
    roll = PianoRoll(pm, 1000.0)
    audio = np.concatenate(list(render_blocks(model, roll, 16000, 0, 0.1, 100, torch.float64)))
    frames = roll.frames(0, roll.n_frames + 100)
    assert audio.shape == (frames.shape[0] * 16,)
    assert _rel(audio, _forward64(model, frames, 16000)) < 1e-6


def test_render_roll_rejects_bad_input() -> None:
    from pianossm.errors import PianoSSMError

    weights = pack_model(_model(d_state=8), 16000)
    with pytest.raises(PianoSSMError):
        next(render_roll(weights, _demo_roll(24000)))
    with pytest.raises(PianoSSMError):
        next(render_roll(weights, _demo_roll(16000), tail_seconds=-1))
    with pytest.raises(PianoSSMError):
        pack_model(_model(d_state=8), 16000, 0, np.float16)


@pytest.mark.skipif(not kernels.HAVE_NUMBA, reason="compares numba with the fallback")
def test_fallback_scans_equal_compiled(rng: np.random.Generator) -> None:
    h, t = 8, 50
    a = np.exp(-rng.random(h) * 0.1 + 1j * rng.random(h))
    v = rng.standard_normal((t, 2 * h + 3))
    bias = rng.standard_normal(2 * h)
    s0 = rng.standard_normal(2 * h)
    outs = []
    for fn in (kernels.scan_bias, kernels._scan_bias_py):
        x, st = v.copy(), s0.copy()
        fn(x, a.real.copy(), a.imag.copy(), bias, st)
        outs.append((x[:, :2 * h], st))
    np.testing.assert_allclose(outs[0][0], outs[1][0], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(outs[0][1], outs[1][1], rtol=1e-9, atol=1e-9)
    lens = np.array([7, 20, 30], dtype=np.int64)
    vals = rng.standard_normal((3, 2 * h))
    held = []
    for fn in (kernels.scan_held, kernels._scan_held_py):
        out, st = np.zeros((t, 2 * h)), s0.copy()
        fn(out, vals, lens, 3, a.real.copy(), a.imag.copy(), st)
        held.append(out)
    np.testing.assert_allclose(held[0], held[1], rtol=1e-9, atol=1e-9)
    # closed form of a constant input: x[k] = a^(k+1) x0 + v (1 - a^(k+1)) / (1 - a)
    out, st = np.zeros((4, 2 * h)), s0.copy()
    kernels.scan_held(out, vals[:1], np.array([10]), 0, a.real.copy(), a.imag.copy(), st)
    x0, vc = s0[:h] + 1j * s0[h:], vals[0, :h] + 1j * vals[0, h:]
    k = np.arange(1, 5)[:, None]
    expect = a ** k * x0 + vc * (1 - a ** k) / (1 - a)
    np.testing.assert_allclose(out[:, :h] + 1j * out[:, h:], expect, rtol=1e-12, atol=1e-12)


@pytest.mark.skipif(not os.path.isdir(os.path.join(OFFICIAL, "checkpoints")),
                    reason="shared published checkpoints absent")
@pytest.mark.parametrize("cfg, rate", [("S", 16000), ("XL", 44100)])
def test_published_weights(cfg: str, rate: int) -> None:
    from pianossm.checkpoint import import_official

    path = os.path.join(OFFICIAL, "checkpoints", f"PianoSSM_{cfg}_MH_maestro_all_{rate}_model.pth")
    if not os.path.isfile(path):
        pytest.skip(f"{path} absent")
    model = import_official(path)
    hop = frame_hop(rate)
    roll = PianoRoll(load_midi(os.path.join(OFFICIAL, "golden", "golden_phrase.mid")), rate / hop)
    n = rate // 8 // hop * hop
    frames = roll.frames(0, n // hop)
    ref = _forward64(model, frames, rate, head=3)
    assert _rel(render_frames(Engine(pack_model(model, rate, 3, np.float64)), frames), ref) < 1e-10
    assert _rel(render_frames(Engine(pack_model(model, rate, 3)), frames), ref) < 1e-5
    streamed = _stream(Synth(model, rate, head=3), events_from_roll(roll, hop), 64, n)
    assert _rel(streamed, ref) < 1e-5


def test_streaming_with_changing_block_sizes(rng: np.random.Generator) -> None:
    model = _model(d_state=16)
    roll = _demo_roll(16000)
    n = 12000
    offline = render_frames(Engine(pack_model(model, 16000, 0, np.float64)),
                            roll.frames(0, n // 16))
    synth = Synth(model, 16000, dtype=np.float64)
    events, i, pos, out = events_from_roll(roll, 16), 0, 0, []
    while pos < n + 4096:
        block = int(rng.choice([1, 5, 64, 333, 4096])) if pos else 100
        batch = []
        while i < len(events) and events[i][0] < pos + block:
            batch.append((events[i][0] - pos, events[i][1]))
            i += 1
        out.append(synth.process(batch, block))
        pos += block
    audio = np.concatenate(out)
    assert synth.latency == 100 and not np.any(audio[:100])
    assert _rel(audio[100:100 + n], offline) < 1e-6


@pytest.mark.parametrize("mode", ["drop", "clamp"])
def test_engine_honours_alias_mode(mode: str) -> None:
    import copy

    model = _model(train=44100, d_state=16)
    model.set_alias_mode(mode)  # 16 kHz from a 44.1 kHz model: some modes alias
    m64 = copy.deepcopy(model).double()
    frames = _demo_roll(16000).frames(0, 200)
    with torch.no_grad():
        ref = m64(torch.from_numpy(frames).double()[None], 16, m64.ts_for(16000), 0)[0].numpy()
    out = render_frames(Engine(pack_model(model, 16000, 0, np.float64)), frames)
    assert _rel(out, ref) < 1e-10
