"""evaluate --alias-mode: passed to the model; oversample runs faster and resamples down."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soxr
import torch

from pianossm.checkpoint import save_checkpoint
from pianossm.cli import main
from pianossm.config import preset
from pianossm.data.cache import AudioCache, load_performance
from pianossm.evaluate import model_source
from pianossm.features import PianoRoll, frame_hop
from pianossm.model import PianoSSM
from test_train import _tone_cache


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> AudioCache:
    return AudioCache(_tone_cache(tmp_path_factory.mktemp("aliastones")))


@pytest.fixture(scope="module")
def model() -> PianoSSM:
    torch.manual_seed(0)
    return PianoSSM(preset("S", d_state=4, audio_std=0.05)).eval()


def test_none_is_the_default_behaviour(cache: AudioCache, model: PianoSSM) -> None:
    for rate in (None, 8000):
        plain = model_source(model, cache, rate)(3, 0, 1000)
        none = model_source(model, cache, rate, alias_mode="none")(3, 0, 1000)
        np.testing.assert_array_equal(plain, none)


def test_oversample_runs_at_the_internal_rate(cache: AudioCache, model: PianoSSM) -> None:
    got = model_source(model, cache, 8000, alias_mode="oversample")(3, 0, 1000)
    assert got.shape == (16000,) and np.all(np.isfinite(got))
    # by hand: 12 kHz (1.5 x 8 kHz) with aliased modes static, VHQ to 8 kHz, HQ to 16 kHz
    model.set_alias_mode("oversample")
    try:
        hop = frame_hop(12000)
        roll = PianoRoll(load_performance(cache.items[3]["midi"]), 12000 / hop,
                         model.config.pedal_threshold)
        with torch.no_grad():
            y = model(torch.from_numpy(roll.frames(0, 12000 // hop))[None], hop,
                      model.ts_for(12000), 0)[0].numpy()
    finally:
        model.set_alias_mode("none")
    y = soxr.resample(soxr.resample(y, 12000, 8000, quality="VHQ"), 8000, 16000, quality="HQ")
    np.testing.assert_allclose(got, y[:16000], atol=1e-6)
    plain = model_source(model, cache, 8000, alias_mode="none")(3, 0, 1000)
    assert not np.allclose(got, plain)


def test_cli_alias_mode(cache: AudioCache, model: PianoSSM, tmp_path: Path,
                        capsys: pytest.CaptureFixture) -> None:
    save_checkpoint(tmp_path / "m.pt", model)
    base = ["evaluate", "--data", cache.path, "--model", str(tmp_path / "m.pt"),
            "--split", "validation", "--synth-rate", "8000"]
    assert main(base) == 0
    plain = capsys.readouterr().out
    assert main([*base, "--alias-mode", "none"]) == 0
    assert capsys.readouterr().out == plain
    assert main([*base, "--alias-mode", "oversample"]) == 0
    over = capsys.readouterr().out
    assert over.splitlines()[0] == plain.splitlines()[0] and over != plain
    assert main([*base, "--alias-mode", "wobble"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "'wobble'" in err[0] and "oversample" in err[0], err
