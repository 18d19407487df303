"""``train --resume`` against changed configs and broken checkpoints: one clear error naming
the problem, the checkpoint left untouched; run-length changes stay allowed."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from pianossm.checkpoint import load_checkpoint
from pianossm.cli import main
from pianossm.train.state import RESUME_MAY_CHANGE, check_resume_config

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))
from fuzz_inputs import checkpoint_case, make_fixtures  # noqa: E402


@pytest.fixture(scope="module")
def fx(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return make_fixtures(tmp_path_factory.mktemp("fx") / "f")


def _resume(fx: dict, run: Path, *extra: str) -> int:
    return main(["train", "--data", str(fx["cache"]), "--out", str(run), "--resume", "-q",
                 *fx["train_args"], *extra])


def _run_with(fx: dict, tmp_path: Path, source: Path | None = None) -> Path:
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(source or fx["train_ckpt"], run / "last.pt")
    return run


@pytest.mark.parametrize(("flag", "value", "named"), [
    ("--crop-seconds", "0.3", "crop_seconds 0.2 -> 0.3"), ("--batch", "1", "batch 2 -> 1"),
    ("--seed", "9", "seed 3 -> 9"), ("--d-state", "6", "d_state 4 -> 6")])
def test_resume_with_changed_config_names_the_fields(fx: dict, tmp_path: Path, capsys,
                                                     flag: str, value: str, named: str) -> None:
    run = _run_with(fx, tmp_path)
    before = (run / "last.pt").read_bytes()
    assert _resume(fx, run, flag, value) == 1
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("pianossm")]
    assert len(err) == 1 and "changed config" in err[0] and named in err[0], err
    assert (run / "last.pt").read_bytes() == before


def test_resume_may_run_longer(fx: dict, tmp_path: Path) -> None:
    run = _run_with(fx, tmp_path)
    assert load_checkpoint(run / "last.pt")["step"] == 2
    assert _resume(fx, run, "--steps", "4", "--log-every", "2") == 0
    assert load_checkpoint(run / "last.pt")["step"] == 4
    assert {"steps", "log_every", "ckpt_every", "out"} <= RESUME_MAY_CHANGE


def test_check_resume_config_ignores_fields_unknown_to_an_old_checkpoint() -> None:
    check_resume_config("x.pt", {"lr": 1e-4}, {"lr": 1e-4, "new_field": 3})
    check_resume_config("x.pt", None, {"lr": 1.0})  # no train_config stored: not checked


@pytest.mark.parametrize("seed", range(12))
def test_broken_checkpoints_give_one_line_and_stay_untouched(fx: dict, tmp_path: Path,
                                                             capsys, seed: int) -> None:
    run = tmp_path / "run"
    run.mkdir()
    checkpoint_case(np.random.default_rng([seed, 7]), run / "last.pt", fx, training=True)
    before = (run / "last.pt").read_bytes() if (run / "last.pt").is_file() else None
    rc = _resume(fx, run)
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("pianossm")]
    assert rc in (0, 1) and "Traceback" not in "\n".join(err)
    if rc == 1:
        assert len(err) == 1 and err[0].startswith("pianossm: error:"), err
        if before is not None:
            assert (run / "last.pt").read_bytes() == before
    else:
        assert load_checkpoint(run / "last.pt")["step"] == 3
    assert list(run.rglob(".pianossm-*")) == []


def test_training_state_of_another_model_is_a_clean_error(fx: dict, tmp_path: Path,
                                                          capsys) -> None:
    # same stored train config, but the weights and optimizer are of a bigger model
    payload = torch.load(fx["train_ckpt_other"], weights_only=False)
    payload["train_config"] = torch.load(fx["train_ckpt"], weights_only=False)["train_config"]
    run = tmp_path / "run"
    run.mkdir()
    torch.save(payload, run / "last.pt")
    assert _resume(fx, run) == 1
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("pianossm")]
    assert len(err) == 1 and "does not fit this run" in err[0], err


def test_diverging_training_stops_with_one_line(fx: dict, tmp_path: Path, capsys) -> None:
    # found by the fuzzer: a flipped byte made one weight 6e36 (finite, so loadable); the
    # loss became inf and the run died in librosa's spectrogram with a traceback
    payload = torch.load(fx["train_ckpt"], weights_only=False)
    payload["model"]["blocks.1.skip.weight"][0, 0] = 6e36
    run = tmp_path / "run"
    run.mkdir()
    torch.save(payload, run / "last.pt")
    before = (run / "last.pt").read_bytes()
    assert _resume(fx, run) == 1
    err = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("pianossm")]
    assert len(err) == 1 and "training diverged at step 3" in err[0], err
    assert (run / "last.pt").read_bytes() == before  # the last finite state is kept
