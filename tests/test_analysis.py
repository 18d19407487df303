"""Eigenvalue analysis and alias modes: counts from the raw weights, closed-form DC gains."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from pianossm.alias import (
    ALIAS_MODES,
    alias_penalty,
    aliased_mask,
    internal_rate,
    resample_blocks,
)
from pianossm.analysis import alias_table, layer_spectra
from pianossm.checkpoint import import_official, load_model
from pianossm.cli import main
from pianossm.config import preset
from pianossm.model import PianoSSM
from pianossm.ssm import DiagonalSSM

PREFIX = ["seq_midi.1.seq.0.seq.", "seq_midi.2.s5.seq.", "seq_midi.3.s5.seq.", "seq_midi.4.s5.seq."]


@pytest.mark.parametrize("cfg", ["S", "XL"])
def test_alias_counts_match_direct_computation(official_dir, cfg: str) -> None:
    path = official_dir / "checkpoints" / f"PianoSSM_{cfg}_MH_maestro_all_44100_model.pth"
    sd = torch.load(path, map_location="cpu", weights_only=True)
    model = import_official(path)
    rows = {r["rate"]: r for r in alias_table(model, (24000, 16000))}
    for rate in (24000, 16000):
        direct = []
        for p in PREFIX:  # |Im(exp(norm + i angle))| * f_train / (2 pi) > rate / 2
            lam = np.exp(sd[p + "norm"].double().numpy() + 1j * sd[p + "angle"].double().numpy())
            direct.append(int(np.sum(np.abs(lam.imag) * 44100 / (2 * np.pi) > rate / 2)))
        assert rows[rate]["per_layer"] == direct
    if cfg == "XL":  # the paper's Table 3: 324 of 1024 aliased at 16 kHz
        assert rows[16000]["total"] == 324


def test_spectra_closed_form() -> None:
    model = PianoSSM(preset("S", train_sample_rate=16000))
    with torch.no_grad():
        ssm = model.blocks[0].ssm
        ssm.log_mag.fill_(math.log(0.5))
        ssm.angle.fill_(2 * math.pi / 3)  # lambda = 0.5 (-1/2 + i sqrt(3)/2)
    s = layer_spectra(model)[0]
    np.testing.assert_allclose(s.freq_hz, 0.5 * math.sqrt(3) / 2 * 16000 / (2 * math.pi))
    np.testing.assert_allclose(s.tau_s, 1 / (0.25 * 16000))


def random_layer(seed: int) -> DiagonalSSM:
    g = torch.Generator().manual_seed(seed)
    layer = DiagonalSSM(3, 12, 2).double()
    with torch.no_grad():
        layer.log_mag.copy_(torch.rand(12, generator=g) * 3 - 2.0)  # |lambda| up to e
        layer.angle.copy_(torch.pi / 2 + torch.rand(12, generator=g) * 1.4)
        for p in (layer.B, layer.B_bias, layer.C):
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64))
    return layer


def dc_output(layer: DiagonalSSM, ts: float, u: torch.Tensor) -> torch.Tensor:
    d = layer.discretise(ts)
    x = (d.bd @ u.to(torch.complex128) + d.bias) / (1 - d.a)  # discrete steady state
    return (d.c @ x).real + d.c_bias


@pytest.mark.parametrize("mode", ["static", "clamp", "oversample"])
def test_alias_modes_keep_dc_gain(mode: str) -> None:
    layer = random_layer(1)
    ts = 2.75625
    assert aliased_mask(layer.eigenvalues(), ts).any()
    u = torch.tensor([0.3, -1.0, 0.5], dtype=torch.float64)
    want = dc_output(layer, ts, u)
    layer.alias_mode = mode
    torch.testing.assert_close(dc_output(layer, ts, u), want)


def test_mode_none_is_plain_zoh_and_drop_removes_aliased() -> None:
    layer = random_layer(2)
    ts = 2.75625
    plain = layer.discretise(ts)
    mask = aliased_mask(layer.eigenvalues(), ts)
    for mode in ALIAS_MODES:
        layer.alias_mode = mode
        d = layer.discretise(ts)
        keep = ~mask
        torch.testing.assert_close(d.bd[keep], plain.bd[keep])  # unaliased modes untouched
        if mode == "none":
            torch.testing.assert_close(d.bd, plain.bd)
        if mode == "drop":
            assert torch.all(d.bd[mask] == 0) and torch.all(d.bias[mask] == 0)


def test_analyze_cli(official_dir, tmp_path, capsys) -> None:
    path = official_dir / "checkpoints" / "PianoSSM_XL_MH_maestro_all_44100_model.pth"
    assert main(["analyze", str(path), "--synth-rate", "16000", "--plot",
                 str(tmp_path / "eig.png")]) == 0
    out = capsys.readouterr().out
    assert "   16000" in out and "  324" in out
    assert (tmp_path / "eig.png").read_bytes()[:4] == b"\x89PNG"


def test_analyze_cli_takes_default_like_render(capsys) -> None:
    from pianossm.pipeline import default_model_path

    assert main(["analyze", "default"]) == 0
    by_name = capsys.readouterr().out
    assert main(["analyze", default_model_path()]) == 0
    modes = sum(b.ssm.d_state for b in load_model(default_model_path()).blocks)
    assert capsys.readouterr().out == by_name and f"{modes} modes" in by_name


def test_internal_rate_of_oversample() -> None:
    assert internal_rate("oversample", 44100, 16000) == 24000
    assert internal_rate("oversample", 44100, 32000) == 44100  # never above the training rate
    assert internal_rate("oversample", 16000, 16000) == 16000
    for mode in ALIAS_MODES[:-1]:
        assert internal_rate(mode, 44100, 16000) == 16000


def test_resample_blocks_equals_one_shot(rng: np.random.Generator) -> None:
    import soxr

    x = rng.standard_normal(24000 * 2 + 123).astype(np.float32)
    sizes = rng.integers(1, 3000, size=100)
    edges = np.minimum(np.concatenate([[0], np.cumsum(sizes)]), len(x))
    blocks = [x[a:b] for a, b in itertools.pairwise(edges) if b > a] + [x[edges[-1]:]]
    got = np.concatenate(list(resample_blocks(blocks, 24000, 16000)))
    want = soxr.resample(x, 24000, 16000, quality="VHQ")
    assert len(got) == len(want) == round(len(x) * 2 / 3)
    np.testing.assert_allclose(got, want, atol=1e-6)
    assert next(iter(resample_blocks([x], 16000, 16000))) is x


def test_alias_penalty_closed_form() -> None:
    """Zero with every mode below the margin; the weighted hinge when one mode is above."""
    torch.manual_seed(0)
    model = PianoSSM(preset("S", train_sample_rate=44100))
    ts = 44100 / 16000
    with torch.no_grad():
        for block in model.blocks:  # all modes at 0.5 of the 16 kHz Nyquist frequency
            block.ssm.angle.copy_(torch.full_like(block.ssm.angle, 2.0))
            mag = 0.5 * math.pi / ts / math.sin(2.0)
            block.ssm.log_mag.copy_(torch.full_like(block.ssm.log_mag, math.log(mag)))
    assert float(alias_penalty(model, 44100, [16000, 24000]).detach()) == 0.0
    ssm = model.blocks[2].ssm
    with torch.no_grad():  # mode 5 of layer 3 at 1.5 x the 16 kHz Nyquist (24 kHz: 1.0 x)
        ssm.log_mag[5] = math.log(1.5 * math.pi / ts / math.sin(2.0))
    c = torch.view_as_complex(ssm.C.detach().contiguous()).abs().sum(0)
    b = torch.view_as_complex(ssm.B.detach().contiguous()).abs().sum(1)
    w = (c * b / (c * b).sum())[5]
    want = w * ((1.5 - 0.9) + (1.0 - 0.9)) / (4 * 2)  # mean over 4 layers, 2 rates below 44.1k
    got = alias_penalty(model, 44100, [16000, 24000, 48000])
    assert float(got.detach()) == pytest.approx(float(want), rel=1e-5)
    got.backward()
    assert ssm.log_mag.grad[5] > 0 and torch.count_nonzero(ssm.log_mag.grad) == 1


def test_render_oversample_cli(tmp_path) -> None:
    import soundfile as sf

    out = tmp_path / "os.wav"
    assert main(["render", "-o", str(out), "--sample-rate", "8000", "--alias-mode",
                 "oversample", "-q"]) == 0
    plain = tmp_path / "plain.wav"
    assert main(["render", "-o", str(plain), "--sample-rate", "8000", "-q"]) == 0
    a, ra = sf.read(out)
    b, rb = sf.read(plain)
    assert ra == rb == 8000 and len(a) == len(b)
    assert np.corrcoef(a, b)[0, 1] > 0.5  # the same music, not a different signal


def test_grid_edges_closed_form() -> None:
    from fractions import Fraction

    from pianossm.engine.offline import grid_edges

    np.testing.assert_array_equal(grid_edges(3, 7, Fraction(25)), 25 * np.arange(3, 8))
    frac = Fraction(16000 * 25, 44100)  # 9.0703 samples per training frame at 16 kHz
    want = [math.ceil(k * 16000 * 25 / 44100 - 1e-12) for k in range(2000)]
    np.testing.assert_array_equal(grid_edges(0, 1999, frac), want)


def _forward_on_grid(model: PianoSSM, frames: torch.Tensor, rate: int) -> np.ndarray:
    """Slow reference: every sample takes the training-grid frame in force at its time."""
    fps = model.config.train_sample_rate / 25
    n = math.ceil(frames.shape[0] * rate / fps - 1e-9)
    idx = np.minimum(np.floor(np.arange(n) * fps / rate + 1e-9).astype(np.int64),
                     frames.shape[0] - 1)
    ts = model.ts_for(rate)
    with torch.no_grad():
        out = model(frames[idx][None].double(), 1, ts, 0)  # hop 1: one frame per sample
    return out[0].numpy()


def test_training_frame_grid_render() -> None:
    import pretty_midi

    from pianossm.features import PianoRoll, frame_hop
    from pianossm.render import render_blocks, training_frame_rate

    torch.manual_seed(3)
    model = PianoSSM(preset("S", train_sample_rate=44100)).double()
    midi = pretty_midi.PrettyMIDI()
    inst = pretty_midi.Instrument(0)
    for i, pitch in enumerate([60, 64, 67, 72, 48]):
        inst.notes.append(pretty_midi.Note(60 + 10 * i, pitch, 0.0123 * i + 0.05 * i, 0.4 + 0.1 * i))
    midi.instruments.append(inst)
    roll = PianoRoll(midi, training_frame_rate(model))
    own = np.concatenate(list(render_blocks(model, roll, 44100, 0, dtype=torch.float64)))
    same = np.concatenate(list(render_blocks(model, roll, 44100, 0, dtype=torch.float64,
                                             frame_grid="train")))
    np.testing.assert_array_equal(own, same)  # at the training rate the grids coincide
    frames = torch.from_numpy(roll.frames(0, roll.n_frames))
    for rate in (16000, 24000):
        got = np.concatenate(list(render_blocks(model, roll, rate, 0, block_frames=100,
                                                dtype=torch.float64, frame_grid="train")))
        ref = _forward_on_grid(model, frames, rate)
        assert len(got) == len(ref)
        assert np.linalg.norm(got - ref) < 1e-5 * np.linalg.norm(ref)
        with pytest.raises(Exception, match="frame grid"):
            next(render_blocks(model, roll, rate, 0, frame_grid="midi"))
        with pytest.raises(Exception, match="does not fit"):  # the synth grid needs its own roll
            next(render_blocks(model, roll, rate, 0))
        assert frame_hop(rate) * PianoRoll(midi, rate / frame_hop(rate)).fs == rate


def test_max_mode_hz_bounds_every_mode(tmp_path) -> None:
    """The aliasing-aware parameterisation: no mode above max_mode_hz, whatever the weights."""
    from pianossm.checkpoint import load_model, save_checkpoint

    with pytest.raises(Exception, match="max_mode_hz"):
        preset("S", train_sample_rate=44100, max_mode_hz=30000.0)
    torch.manual_seed(1)
    free = PianoSSM(preset("S", train_sample_rate=44100))
    bound = PianoSSM(preset("S", train_sample_rate=44100, max_mode_hz=7200.0))
    bound.load_state_dict(free.state_dict())
    with torch.no_grad():
        for block in bound.blocks:  # push some modes far above any Nyquist frequency
            block.ssm.log_mag[:8] += 3.0
    assert sum(r["total"] for r in alias_table(free, (16000,))) > 0
    assert [r["total"] for r in alias_table(bound, (16000, 22050, 24000))] == [0, 0, 0]
    c = 2 * math.pi * 7200.0 / 44100
    for fb, bb in zip(free.blocks, bound.blocks):
        lam_f, lam_b = fb.ssm.eigenvalues(), bb.ssm.eigenvalues()
        assert torch.all(lam_b.imag.abs() <= c * (1 + 1e-6))
        torch.testing.assert_close(lam_b.imag[8:], c * torch.tanh(lam_f.imag[8:] / c))
        torch.testing.assert_close(lam_b.real[8:], lam_f.real[8:])  # decay untouched
    lam = bound.blocks[0].ssm.eigenvalues()
    lam.imag.abs().sum().backward()
    assert torch.isfinite(bound.blocks[0].ssm.angle.grad).all()
    path = tmp_path / "bound.pt"
    save_checkpoint(path, bound)
    again = load_model(path)
    assert again.config.max_mode_hz == 7200.0
    torch.testing.assert_close(again.blocks[0].ssm.eigenvalues(), lam.detach())


def test_render_frame_grid_cli(tmp_path) -> None:
    """The CLI's --frame-grid train is render_blocks on the training grid, written to 16 bits."""
    from importlib import resources

    import soundfile as sf

    from pianossm.checkpoint import load_model
    from pianossm.features import PianoRoll, load_midi
    from pianossm.render import default_model_path, render_blocks, training_frame_rate

    out = tmp_path / "train.wav"
    assert main(["render", "-o", str(out), "--sample-rate", "11025", "--frame-grid", "train",
                 "-q"]) == 0
    got, rate = sf.read(out)
    model = load_model(default_model_path())
    midi = load_midi(str(resources.files("pianossm") / "assets" / "demo.mid"))
    roll = PianoRoll.for_model(midi, training_frame_rate(model), model.config)
    want = np.concatenate(list(render_blocks(model, roll, 11025, model.resolve_head(None),
                                             frame_grid="train")))
    assert rate == 11025 and len(got) == len(want)
    np.testing.assert_allclose(got, want, atol=1.0 / 32767)
    synth = tmp_path / "synth.wav"  # 1002.3 frames/s (hop 11) instead of the model's 1000
    assert main(["render", "-o", str(synth), "--sample-rate", "11025", "-q"]) == 0
    assert not np.allclose(sf.read(synth)[0][: len(got)], got, atol=1e-3)
    bad = tmp_path / "bad.wav"
    assert main(["render", "-o", str(bad), "--frame-grid", "train", "--numerics",
                 "reference", "-q"]) == 1
    assert not bad.exists()
