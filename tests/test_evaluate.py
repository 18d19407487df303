"""evaluate: windows, model / folder / silence candidates, --synth-rate, table and CSV."""

from __future__ import annotations

import csv
import os
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
    evaluate_windows,
    folder_source,
    format_table,
    model_source,
    silence_source,
    summarise,
)
from pianossm.model import PianoSSM
from test_train import _tone_cache


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> AudioCache:
    return AudioCache(_tone_cache(tmp_path_factory.mktemp("evaltones")))


def _refs(cache: AudioCache, folder: Path, gain: float = 1.0) -> None:
    folder.mkdir(exist_ok=True)
    for i, rec in enumerate(cache.items):
        _, audio = cache.segment(i, 0, rec["n_frames"])
        sf.write(str(folder / f"{rec['name']}.wav"), gain * audio, cache.sample_rate,
                 subtype="FLOAT")


def test_references_score_zero_and_silence_does_not(cache: AudioCache, tmp_path: Path) -> None:
    _refs(cache, tmp_path / "same")
    same = evaluate_windows(cache, folder_source(tmp_path / "same", cache), "train", 1.0)
    assert len(same) == 9 and all(s.mssl == pytest.approx(0, abs=1e-6) for s in same)
    assert [s.start_s for s in same[:3]] == [0.0, 1.0, 2.0]
    quiet = evaluate_windows(cache, silence_source(cache), "train", 1.0)
    _refs(cache, tmp_path / "half", gain=0.5)
    half = evaluate_windows(cache, folder_source(tmp_path / "half", cache), "train", 1.0)
    assert all(0 < h.mssl < q.mssl for h, q in zip(half, quiet))
    rows, mean = summarise(quiet)
    assert [r[0] for r in rows] == ["t0", "t1", "t2"] and [r[1] for r in rows] == [3, 3, 3]
    assert mean == pytest.approx(np.mean([s.mssl for s in quiet]))
    table = format_table({"same": same, "silence": quiet})
    assert table.splitlines()[0].split() == ["piece", "win", "same", "silence"]
    assert table.splitlines()[-1].split()[:3] == ["mean", "9", "0.0000"]


def test_missing_candidate_names_the_file(cache: AudioCache, tmp_path: Path) -> None:
    with pytest.raises(PianoSSMError, match="t3"):
        evaluate_windows(cache, folder_source(tmp_path, cache), "validation", 1.0)


def test_model_at_another_rate_is_resampled(cache: AudioCache) -> None:
    torch.manual_seed(0)
    model = PianoSSM(preset("S", d_state=4, audio_std=0.05)).eval()
    native = model_source(model, cache)(3, 0, 1000)
    assert native.shape == (16000,)
    up = model_source(model, cache, synth_rate=32000)(3, 0, 1000)
    assert up.shape == (16000,)
    # The same continuous-time system sampled twice as fast, brought back to 16 kHz:
    # close to the native rendering (the model is rate-independent by construction).
    err = np.sqrt(np.mean((up - native) ** 2)) / np.sqrt(np.mean(native ** 2))
    assert err < 0.3


def test_cli_evaluate_table_and_csv(cache: AudioCache, tmp_path: Path,
                                    capsys: pytest.CaptureFixture) -> None:
    torch.manual_seed(0)
    model = PianoSSM(preset("S", d_state=4))
    save_checkpoint(tmp_path / "m.pt", model)
    _refs(cache, tmp_path / "refs")
    out = tmp_path / "scores.csv"
    assert main(["evaluate", "--data", os.path.dirname(cache.path + "/"), "--model",
                 str(tmp_path / "m.pt"), "--wavs", str(tmp_path / "refs"), "--silence",
                 "--split", "validation", "--csv", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.splitlines()[0].split() == ["piece", "win", "m.pt", "refs", "silence"]
    rows = list(csv.DictReader(open(out)))  # noqa: SIM115
    assert {r["candidate"] for r in rows} == {"m.pt", "refs", "silence"}
    assert all(float(r["mssl"]) < 1e-5 for r in rows if r["candidate"] == "refs")
    assert main(["evaluate", "--data", cache.path]) == 1
    assert "nothing to evaluate" in capsys.readouterr().err


def test_column_names_tell_same_named_checkpoints_apart() -> None:
    from pianossm.commands.train import _column_names

    assert _column_names(["runs/a/last.pt", "runs/b/last.pt", "x.pt", "runs/wavs/"]) == [
        "a/last.pt", "b/last.pt", "x.pt", "wavs"]
    assert _column_names(["a/m.pt", "b/a/m.pt"]) == ["a/m.pt", "b/a/m.pt"]


def test_model_source_on_the_training_grid(cache: AudioCache) -> None:
    """--frame-grid train: a 44.1 kHz model scored at the cache's 16 kHz equals the engine's
    training-grid rendering of the same MIDI (first window, from a zero state)."""
    from pianossm.data.cache import load_performance
    from pianossm.evaluate import item_midi
    from pianossm.features import PianoRoll
    from pianossm.render import render_blocks, training_frame_rate

    torch.manual_seed(2)
    model = PianoSSM(preset("S", train_sample_rate=44100)).double()  # 1764 frames/s
    n = 250  # cache frames: 0.25 s at hop 16, the first note at 0.1 s
    got = model_source(model, cache, frame_grid="train")(0, 0, n)
    roll = PianoRoll(load_performance(item_midi(cache, 0)), training_frame_rate(model))
    want = np.concatenate(list(render_blocks(model, roll, 16000, 0, dtype=torch.float64,
                                             frame_grid="train")))[: n * cache.hop]
    assert np.linalg.norm(got - want) < 1e-6 * np.linalg.norm(want)
    plain = model_source(model, cache)(0, 0, n)  # the 16 kHz grid: a different input timing
    assert np.linalg.norm(plain - want) > 1e-3 * np.linalg.norm(want)
    with pytest.raises(PianoSSMError, match="frame grid"):
        model_source(model, cache, frame_grid="midi")
