"""Streaming details: the event roll, one block of latency, user errors, the CLI."""

from __future__ import annotations

from importlib import resources

import mido
import numpy as np
import pytest
import torch

from pianossm.config import preset
from pianossm.engine.events import EventRoll, events_from_roll, parse_message
from pianossm.engine.reference import associative_scan
from pianossm.engine.synth import Synth
from pianossm.errors import PianoSSMError
from pianossm.features import PianoRoll, load_midi
from pianossm.model import PianoSSM


def _synth(block_rate: int = 16000) -> Synth:
    torch.manual_seed(0)
    return Synth(PianoSSM(preset("S", d_state=8)).eval(), block_rate, dtype=np.float64)


def _roll_rows(roll: EventRoll, n: int) -> np.ndarray:
    values, lens = roll.advance(n)
    return np.repeat(np.stack(values), np.asarray(lens) // roll.hop, axis=0)


@pytest.mark.parametrize("name", ["demo.mid"])
def test_event_roll_rebuilds_piano_roll(name: str) -> None:
    path = resources.files("pianossm") / "assets" / name
    roll = PianoRoll(load_midi(str(path)), 1000.0)
    er = EventRoll(16)
    for t, msg in events_from_roll(roll, 16):
        er.add(t, msg)
    np.testing.assert_array_equal(_roll_rows(er, roll.n_frames * 16),
                                  roll.frames(0, roll.n_frames))


def test_event_roll_rules() -> None:
    er = EventRoll(10)
    on = mido.Message("note_on", note=60, velocity=100, channel=0)
    er.add(0, on)
    er.add(3, mido.Message("note_on", note=60, velocity=27, channel=0))  # frame 1, adds
    er.add(5, mido.Message("note_on", note=62, velocity=50, channel=9))  # drums: ignored
    er.add(20, mido.Message("control_change", control=64, value=100, channel=0))
    er.add(30, mido.Message("note_on", note=60, velocity=0, channel=0))  # off: both notes
    er.add(40, ("note_on", 60, 10, 0))
    er.add(50, ("cc", 64, 0, 0))
    er.add(60, ("note_on", 60, 5, 0))
    er.add(60, ("note_off", 60, 0))  # closes the note of sample 40, not the one of 60
    rows = _roll_rows(er, 80)[:, 60 - 21]
    expect = np.array([100, 127, 127, 127, 127, 10, 5, 5]) / 127.0
    np.testing.assert_allclose(rows, expect.astype(np.float32))
    assert parse_message(mido.Message("program_change", program=3)) is None


def test_latency_is_exactly_one_block() -> None:
    a, b = _synth(), _synth()
    outs_a, outs_b = [], []
    for call in range(6):
        ev = [(16, ("note_on", 64, 120, 0))] if call == 3 else []
        outs_a.append(a.process(ev, 32))
        outs_b.append(b.process([], 32))
    assert not np.any(outs_a[0])  # the first block is the latency
    for call in range(4):  # nothing changes before the call after the event
        np.testing.assert_array_equal(outs_a[call], outs_b[call])
    np.testing.assert_array_equal(outs_a[4][:16], outs_b[4][:16])
    assert np.all(outs_a[4][16:] != outs_b[4][16:])  # from the event's offset on


def test_off_grid_event_takes_effect_at_next_frame() -> None:
    a, b = _synth(), _synth()
    out_a = np.concatenate([a.process([(5, ("note_on", 64, 120, 0))] if i == 0 else [], 8)
                            for i in range(6)])
    out_b = np.concatenate([b.process([], 8) for _ in range(6)])
    np.testing.assert_array_equal(out_a[:8 + 16], out_b[:8 + 16])  # frame 1 starts at 16
    assert out_a[8 + 16] != out_b[8 + 16]


def test_bad_blocks_and_events() -> None:
    s = _synth()
    for n in (0, 4097, 2.5, True):
        with pytest.raises(PianoSSMError):
            s.process([], n)
    with pytest.raises(PianoSSMError):
        s.process([(8, ("note_on", 60, 100, 0))], 8)
    with pytest.raises(PianoSSMError):
        s.process([(0, ("pitch_bend", 3))], 8)
    with pytest.raises(PianoSSMError):
        s.process([(0, ("note_on", 60))], 8)


def test_associative_scan_equals_loop(rng_seed: int = 0) -> None:
    g = torch.Generator().manual_seed(rng_seed)
    for t in (1, 2, 7, 16, 33):
        a = torch.rand(t, 3, generator=g, dtype=torch.float64)
        b = torch.randn(t, 3, generator=g, dtype=torch.float64)
        _, x = associative_scan((a, b))
        ref, s = [], torch.zeros(3, dtype=torch.float64)
        for k in range(t):
            s = a[k] * s + b[k]
            ref.append(s)
        torch.testing.assert_close(x, torch.stack(ref), rtol=1e-12, atol=1e-12)


def test_bench_cli_quick(capsys: pytest.CaptureFixture[str]) -> None:
    from pianossm.cli import main

    assert main(["bench", "--quick", "--presets", "S", "--rates", "16000"]) == 0
    out = capsys.readouterr().out
    assert "GEMM peak" in out
    assert [ln.split()[:2] for ln in out.splitlines() if ln.strip().startswith("S ")] == [
        ["S", "16k"]]
    assert main(["bench", "--threads", "0"]) == 1


def test_play_without_sounddevice_is_a_user_error() -> None:
    from pianossm.cli import main

    pytest.importorskip("pretty_midi")
    try:
        import sounddevice  # noqa: F401
    except (ImportError, OSError):
        path = resources.files("pianossm") / "assets" / "demo.mid"
        assert main(["play", str(path)]) == 1
    else:  # pragma: no cover - a sound card is not for CI
        pytest.skip("sounddevice installed")


def test_engine_rejects_short_input() -> None:
    from pianossm.engine import Engine

    s = _synth()
    v = s.engine.project_frames(np.zeros((1, 88), dtype=np.float32))
    with pytest.raises(PianoSSMError):
        s.engine.render(v, np.array([16]), np.empty(17), skip=0)
    with pytest.raises(PianoSSMError):
        Engine(s.weights).render(v, np.array([16]), np.empty(8), skip=9)
