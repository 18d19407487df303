"""evaluate --timing: whole pieces aligned to their own MIDI, known delays recovered."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from pianossm.checkpoint import save_checkpoint
from pianossm.cli import main
from pianossm.config import preset
from pianossm.data.cache import AudioCache
from pianossm.errors import PianoSSMError
from pianossm.evaluate import (
    PieceTiming,
    evaluate_timing,
    folder_piece_source,
    format_timing_table,
    item_midi,
    model_piece_source,
    timing_rows,
)
from pianossm.model import PianoSSM

needs_fluidsynth = pytest.mark.skipif(shutil.which("fluidsynth") is None,
                                      reason="needs the fluidsynth program")
DELAY = 0.04


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A one-piece test split rendered by FluidSynth, plus candidate folders: the exact
    rendering (``exact``) and the same audio 40 ms late (``late``)."""
    from pianossm.align.pieces import generate_piece
    from pianossm.data.builtin import build_from_midi

    if shutil.which("fluidsynth") is None:
        pytest.skip("needs the fluidsynth program")
    root = tmp_path_factory.mktemp("timing")
    generate_piece(seed=2024, seconds=8.0).write(str(root / "p0.mid"))
    build_from_midi([str(root / "p0.mid")], root / "data", "fluidr3", 16000, "test")
    audio, sr = sf.read(root / "data" / "audio" / "p0.flac", dtype="float32")
    for name, lead in (("exact", 0), ("late", int(DELAY * sr))):
        (root / name).mkdir()
        sf.write(root / name / "p0.wav", np.concatenate([np.zeros(lead, np.float32), audio]),
                 sr, subtype="FLOAT")
    return root


@needs_fluidsynth
def test_rendered_audio_has_small_errors_and_a_delay_shows(dataset: Path) -> None:
    cache = AudioCache(dataset / "data" / "cache")
    exact = evaluate_timing(cache, folder_piece_source(dataset / "exact", cache))
    assert [t.piece for t in exact] == ["p0"] and len(exact[0].signed) > 10
    piece, stats = timing_rows(exact)[0]
    assert piece == "p0" and stats["median_ms"] < 10 and stats["within_50ms"] > 0.95
    assert abs(stats["bias_ms"]) < 5
    late = dict(timing_rows(evaluate_timing(cache, folder_piece_source(dataset / "late",
                                                                       cache)))[1:])
    assert abs(late["all"]["bias_ms"] - 1000 * DELAY) < 8, late
    assert abs(late["all"]["mean_ms"] - 1000 * DELAY) < 8, late


@needs_fluidsynth
def test_cli_timing_table_and_csv(dataset: Path, capsys: pytest.CaptureFixture) -> None:
    out = dataset / "timing.csv"
    assert main(["evaluate", "--data", str(dataset / "data"), "--timing",
                 "--wavs", str(dataset / "exact"), "--wavs", str(dataset / "late"),
                 "--csv", str(out)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["candidate", "piece", "notes", "mean"]
    assert [ln.split()[:2] for ln in lines[2:]] == [["exact", "p0"], ["exact", "all"],
                                                    ["late", "p0"], ["late", "all"]]
    rows = list(csv.DictReader(open(out)))  # noqa: SIM115
    assert [(r["candidate"], r["piece"]) for r in rows] == [
        ("exact", "p0"), ("exact", "all"), ("late", "p0"), ("late", "all")]
    assert abs(float(rows[3]["bias_ms"]) - 1000 * DELAY) < 8
    assert 0 <= float(rows[1]["within_25ms"]) <= 1


def _one_line_error(capsys: pytest.CaptureFixture, argv: list[str], match: str) -> None:
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and match in err[0], err


def test_cli_timing_errors(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    _one_line_error(capsys, ["evaluate", "--data", str(tmp_path), "--timing", "--silence"],
                    "--silence")
    _one_line_error(capsys, ["evaluate", "--data", str(tmp_path), "--timing", "--wavs",
                             str(tmp_path), "--timing-method", "nope"], "'nope'")


def test_missing_midi_is_named(tmp_path: Path) -> None:
    from test_train import _tone_cache

    cache = AudioCache(_tone_cache(tmp_path))
    assert item_midi(cache, 0) == cache.items[0]["midi"]
    cache.items[0] = {**cache.items[0], "midi": str(tmp_path / "gone" / "x.mid")}
    with pytest.raises(PianoSSMError, match="'t0'.*x.mid"):
        item_midi(cache, 0)


def test_model_pieces_and_oversample(tmp_path: Path) -> None:
    from test_train import _tone_cache

    cache = AudioCache(_tone_cache(tmp_path))
    torch.manual_seed(0)
    model = PianoSSM(preset("S", d_state=4, audio_std=0.05)).eval()
    audio, rate = model_piece_source(model, cache)(0)
    assert rate == 16000 and audio.dtype == np.float32
    n16 = len(audio)
    assert abs(n16 - 2.5 * 16000) < 0.2 * 16000  # the MIDI's last note ends at 2.5 s
    low, rate = model_piece_source(model, cache, 8000, alias_mode="oversample")(0)
    assert rate == 8000 and abs(len(low) - n16 / 2) <= 8 and np.all(np.isfinite(low))
    with pytest.raises(PianoSSMError, match="'bogus'"):
        model_piece_source(model, cache, 8000, alias_mode="bogus")


def test_timing_table_pools_notes() -> None:
    a = PieceTiming("a", np.array([0.001, -0.003]))
    b = PieceTiming("b", np.array([0.2]))
    rows = dict(timing_rows([a, b]))
    assert rows["all"]["n"] == 3 and rows["all"]["median_ms"] == pytest.approx(3.0)
    assert rows["all"]["within_10ms"] == pytest.approx(2 / 3)
    text = format_timing_table({"x": [a, b]})
    assert text.splitlines()[-1].split()[:3] == ["x", "all", "3"]
    with pytest.raises(PianoSSMError, match="no pieces"):
        timing_rows([])


def test_cli_timing_of_a_model(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from test_train import _tone_cache

    cache = _tone_cache(tmp_path)
    torch.manual_seed(0)
    save_checkpoint(tmp_path / "m.pt", PianoSSM(preset("S", d_state=4, audio_std=0.05)))
    assert main(["evaluate", "--data", cache, "--timing", "--model", str(tmp_path / "m.pt"),
                 "--split", "validation", "--synth-rate", "8000",
                 "--alias-mode", "oversample"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split()[:3] for ln in lines[2:]] == [["m.pt", "t3", "5"], ["m.pt", "all", "5"]]
