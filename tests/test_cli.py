"""The CLI: render, info, import, and one clear line with exit 1 for every bad input."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pretty_midi
import pytest
import soundfile as sf
import torch

from pianossm.checkpoint import save_checkpoint
from pianossm.cli import main
from pianossm.config import preset
from pianossm.model import PianoSSM


@pytest.fixture
def tiny(tmp_path: Path) -> dict[str, Path]:
    torch.manual_seed(0)
    model = PianoSSM(preset("S", heads=("a", "b"), audio_std=0.05))
    save_checkpoint(tmp_path / "model.pt", model)
    midi = pretty_midi.PrettyMIDI()
    inst = pretty_midi.Instrument(0)
    inst.notes += [pretty_midi.Note(90, 60, 0.0, 0.3), pretty_midi.Note(60, 64, 0.2, 0.6)]
    midi.instruments.append(inst)
    midi.write(str(tmp_path / "in.mid"))
    return {"model": tmp_path / "model.pt", "midi": tmp_path / "in.mid", "dir": tmp_path}


def run_error(capsys: pytest.CaptureFixture[str], argv: list[str], pattern: str) -> None:
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("pianossm: error:"), err
    assert pattern in err[0], err[0]


def test_render_writes_audio(tiny, capsys) -> None:
    out = tiny["dir"] / "out.wav"
    assert main(["render", str(tiny["midi"]), "-o", str(out), "--model", str(tiny["model"]),
                 "--head", "b", "--bits", "float", "-q", "--tail", "0.1"]) == 0
    audio, sr = sf.read(out)
    assert sr == 16000 and len(audio) == (600 + 100) * 16
    assert np.all(np.isfinite(audio)) and np.abs(audio).max() > 0


def test_render_alias_mode_changes_only_aliased_synthesis(tiny) -> None:
    outs = {}
    for mode in ("none", "static"):
        out = tiny["dir"] / f"{mode}.wav"
        assert main(["render", str(tiny["midi"]), "-o", str(out), "--model", str(tiny["model"]),
                     "--sample-rate", "8000", "--bits", "float", "-q", "--alias-mode", mode]) == 0
        outs[mode] = sf.read(out)[0]
    # The fresh S model's S4D-Lin eigenvalues reach pi*63*Delta: some alias at 8 kHz.
    assert outs["none"].shape == outs["static"].shape
    assert not np.allclose(outs["none"], outs["static"])


def test_render_flac_24k(tiny) -> None:
    out = tiny["dir"] / "out.flac"
    assert main(["render", str(tiny["midi"]), "-o", str(out), "--model", str(tiny["model"]),
                 "--sample-rate", "24000", "-q"]) == 0
    info = sf.info(out)
    assert info.samplerate == 24000 and info.frames == 720 * 20  # 0.6 s at 1200 frames/s and info.subtype == "PCM_16"


@pytest.mark.parametrize("case", ["missing", "not_midi", "empty", "rate", "bad_ckpt",
                                  "official_ckpt", "exists", "head", "flac_float", "ext"])
def test_render_bad_input(tiny, capsys, case: str) -> None:
    d = tiny["dir"]
    out = d / "out.wav"
    base = ["render", str(tiny["midi"]), "-o", str(out), "--model", str(tiny["model"]), "-q"]
    if case == "missing":
        run_error(capsys, ["render", str(d / "nope.mid"), "-o", str(out), "--model",
                           str(tiny["model"])], "MIDI file not found")
    elif case == "not_midi":
        (d / "x.mid").write_text("hello")
        run_error(capsys, ["render", str(d / "x.mid"), "-o", str(out), "--model",
                           str(tiny["model"])], "not a readable MIDI")
    elif case == "empty":
        pretty_midi.PrettyMIDI().write(str(d / "e.mid"))
        run_error(capsys, ["render", str(d / "e.mid"), "-o", str(out), "--model",
                           str(tiny["model"])], "no notes")
    elif case == "rate":
        run_error(capsys, base + ["--sample-rate", "1000"], "sample rate 1000 Hz")
    elif case == "bad_ckpt":
        (d / "bad.pt").write_bytes(b"garbage")
        run_error(capsys, ["render", str(tiny["midi"]), "-o", str(out), "--model",
                           str(d / "bad.pt")], "not a readable checkpoint")
    elif case == "official_ckpt":
        torch.save({"seq_midi.1.seq.0.seq.angle": torch.zeros(2)}, d / "sd.pth")
        run_error(capsys, ["render", str(tiny["midi"]), "-o", str(out), "--model",
                           str(d / "sd.pth")], "not a complete published Piano-SSM")
    elif case == "exists":
        out.write_bytes(b"keep me")
        run_error(capsys, base, "--force")
        assert out.read_bytes() == b"keep me"
        return
    elif case == "head":
        run_error(capsys, base + ["--head", "2009"], "unknown head")
    elif case == "flac_float":
        run_error(capsys, ["render", str(tiny["midi"]), "-o", str(d / "o.flac"), "--model",
                           str(tiny["model"]), "--bits", "float"], "FLAC")
    elif case == "ext":
        run_error(capsys, ["render", str(tiny["midi"]), "-o", str(d / "o.mp3"), "--model",
                           str(tiny["model"])], ".mp3")
    leftovers = sorted(p.name for p in d.iterdir() if p.suffix in {".wav", ".flac", ".mp3"}
                       or p.name.startswith(".pianossm-"))
    assert leftovers == [], leftovers


def test_info_prints_table(capsys) -> None:
    assert main(["info", "--preset", "XL"]) == 0
    out = capsys.readouterr().out
    assert "paper formula: 268357 = 268.4k (paper: 268.4k)" in out
    assert "model total: 260613" in out


def test_import_checkpoint_cli(official_dir, tmp_path, capsys) -> None:
    src = official_dir / "checkpoints" / "PianoSSM_S_MH_maestro_all_16000_model.pth"
    assert main(["import-checkpoint", str(src), "-o", str(tmp_path / "s.pt")]) == 0
    assert "heads 2004, 2006" in capsys.readouterr().err
    run_error(capsys, ["import-checkpoint", str(src), "-o", str(tmp_path / "s.pt")], "--force")
    run_error(capsys, ["import-checkpoint", str(tmp_path / "none.pth"), "-o",
                       str(tmp_path / "t.pt")], "not found")


def test_train_sets_quiet_thread_waits_unless_the_user_did(monkeypatch) -> None:
    import os

    from pianossm.cli import quiet_thread_waits

    monkeypatch.delenv("OPENBLAS_THREAD_TIMEOUT", raising=False)
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    quiet_thread_waits()
    assert os.environ["OPENBLAS_THREAD_TIMEOUT"] == "4"
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
