"""Fuzzing: every generated MIDI kind ends in audio or one clear error, a small seeded run of
``scripts/fuzz_cli.py``, and one regression test per defect the fuzzer found."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from pianossm.checkpoint import load_checkpoint, save_checkpoint
from pianossm.cli import main
from pianossm.config import preset
from pianossm.errors import PianoSSMError
from pianossm.features import MAX_MIDI_SECONDS, load_midi
from pianossm.model import PianoSSM

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
sys.path.insert(0, str(SCRIPTS))
from fuzz_inputs import MIDI_KINDS, midi_bytes  # noqa: E402


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("m") / "tiny.pt"
    save_checkpoint(path, PianoSSM(preset("S", d_state=4, preset="custom")))
    return path


def _errors(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("pianossm:")]


def _write_kind(rng: np.random.Generator, kind: str, path: Path) -> Path:
    """``path`` made into a MIDI case of ``kind``."""
    if kind == "folder":
        path.mkdir()
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "not_midi":
        path.write_bytes(rng.bytes(int(rng.integers(1, 3000))))
    elif kind in ("mutated", "truncated"):
        data = bytearray(midi_bytes(rng, "valid"))
        if kind == "mutated":
            for _ in range(int(rng.integers(1, 20))):
                data[int(rng.integers(0, len(data)))] = int(rng.integers(0, 256))
        else:
            data = data[:int(rng.integers(1, len(data)))]
        path.write_bytes(bytes(data))
    elif kind != "missing":
        path.write_bytes(midi_bytes(rng, kind))
    return path


@pytest.mark.parametrize("kind", MIDI_KINDS)
def test_every_midi_kind_gives_audio_or_one_clear_error(kind: str, tiny_model: Path,
                                                        tmp_path: Path, capsys) -> None:
    for seed in range(3):
        rng = np.random.default_rng([seed, MIDI_KINDS.index(kind)])
        case = tmp_path / str(seed)
        case.mkdir()
        midi = _write_kind(rng, kind, case / "in.mid")
        out = case / "o.wav"
        start = time.perf_counter()
        rc = main(["render", str(midi), "-o", str(out), "--model", str(tiny_model), "-q"])
        assert time.perf_counter() - start < 60
        if rc == 0:
            assert sf.info(str(out)).frames > 0
        else:
            assert rc == 1
            lines = _errors(capsys)
            assert len(lines) == 1 and str(midi) in lines[0], lines
            assert not out.exists()
        assert [p.name for p in case.iterdir() if p.name.startswith(".pianossm-")] == []


def test_small_fuzz_run_is_clean() -> None:
    proc = subprocess.run([sys.executable, str(SCRIPTS / "fuzz_cli.py"), "--cases", "60",
                           "--seed", "3"], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr[-3000:]
    assert "| **all** | 6" in proc.stdout  # 60 cases (rounded per command)
    row = [ln for ln in proc.stdout.splitlines() if ln.startswith("| **all**")][0]
    assert row.split("|")[5:8] == [" 0 ", " 0 ", " 0 "], row  # traceback, hang, partial


# --- regression tests, one per defect found ---------------------------------------------


def test_smpte_division_is_read_in_seconds(tmp_path: Path) -> None:
    # 25 fps x 40 ticks per frame = 1000 ticks/s: a note of 96 ticks lasts 96 ms
    import struct

    trk = b"\x00\x90\x3c\x40\x60\x80\x3c\x00\x00\xff\x2f\x00"
    data = (b"MThd" + struct.pack(">IHHH", 6, 0, 1, 0xE728) + b"MTrk"
            + struct.pack(">I", len(trk)) + trk)
    (tmp_path / "s.mid").write_bytes(data)
    note = load_midi(tmp_path / "s.mid").instruments[0].notes[0]
    assert (note.start, round(note.end, 6)) == (0.0, 0.096)


def test_tempo_map_asking_for_1e9_seconds_is_refused_quickly(tmp_path: Path) -> None:
    (tmp_path / "long.mid").write_bytes(midi_bytes(np.random.default_rng(0), "tempo_1e9"))
    start = time.perf_counter()
    with pytest.raises(PianoSSMError, match=f"more than the {MAX_MIDI_SECONDS} s") as info:
        load_midi(tmp_path / "long.mid")
    assert "long.mid" in str(info.value) and time.perf_counter() - start < 10


def test_midi_lasting_microseconds_writes_no_empty_file(tmp_path: Path, tiny_model: Path,
                                                        capsys) -> None:
    (tmp_path / "t.mid").write_bytes(midi_bytes(np.random.default_rng(1), "tempo_1"))
    for out in (tmp_path / "o.flac", tmp_path / "o.wav"):
        assert main(["render", str(tmp_path / "t.mid"), "-o", str(out), "--model",
                     str(tiny_model), "-q"]) == 1
        assert "too short to render" in _errors(capsys)[0]
        assert not out.exists()


def test_output_that_is_a_folder_is_a_clean_error(tmp_path: Path, tiny_model: Path) -> None:
    # os.replace onto a folder raised IsADirectoryError (a traceback from the CLI)
    (tmp_path / "o.pt").mkdir()
    with pytest.raises(PianoSSMError, match="is a folder"):
        save_checkpoint(tmp_path / "o.pt", PianoSSM(preset("S", d_state=4, preset="custom")))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.pt"]


def test_checkpoint_with_nan_weights_is_refused(tmp_path: Path, tiny_model: Path) -> None:
    payload = torch.load(tiny_model, weights_only=True)
    key = sorted(payload["model"])[0]
    payload["model"][key] = torch.full_like(payload["model"][key], float("nan"))
    torch.save(payload, tmp_path / "nan.pt")
    with pytest.raises(PianoSSMError, match=f"NaN or infinite weights in {key}"):
        load_checkpoint(tmp_path / "nan.pt")


def test_broken_pipe_is_quiet() -> None:
    proc = subprocess.run(f"{sys.executable} -m pianossm info | head -c 10", shell=True,
                          capture_output=True, text=True, timeout=60)
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr


def test_tempo_map_under_pretty_midis_tick_limit_is_refused_too(tmp_path: Path) -> None:
    # 5.8e6 ticks at one tick per 16.8 s beat: pretty_midi reads it (under its 1e7-tick
    # limit), and render went on for 1e8 s of audio: a hang
    import struct

    trk = b"\x00\xff\x51\x03\xff\xff\xff\x00\x90\x3c\x40" + bytes([0x82, 0xE3, 0xDA, 0x40]) \
        + b"\x80\x3c\x00\x00\xff\x2f\x00"  # a delta of 5.8e6 ticks
    (tmp_path / "slow.mid").write_bytes(b"MThd" + struct.pack(">IHHH", 6, 0, 1, 1) + b"MTrk"
                                        + struct.pack(">I", len(trk)) + trk)
    with pytest.raises(PianoSSMError, match=r"lasts 9.778e\+07 s, more than"):
        load_midi(tmp_path / "slow.mid")


def test_thirty_minute_notes_are_accepted(tmp_path: Path) -> None:
    import pretty_midi

    pm, inst = pretty_midi.PrettyMIDI(), pretty_midi.Instrument(0)
    inst.notes += [pretty_midi.Note(90, 60, 0.0, 1800.0), pretty_midi.Note(0 + 1, 108, 5, 5)]
    pm.instruments.append(inst)
    pm.write(str(tmp_path / "long.mid"))
    from pianossm.features import PianoRoll

    roll = PianoRoll(load_midi(tmp_path / "long.mid"), 1000.0)
    assert roll.n_frames == 1_800_000 and roll.frames(1_799_999, 1_800_001)[:, 39].tolist() \
        == [pytest.approx(90 / 127), 0.0]
