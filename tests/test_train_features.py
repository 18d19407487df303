"""Training on the ``roll+onset+pedal`` layout: the cache stores and serves it (or is
given it afterwards), the trainer refuses a cache or resume that does not fit, and
``--init`` warm-starts a wider model that renders exactly what the old one did."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pretty_midi
import pytest
import torch
from test_train import _cfg, _tone_cache

import pianossm
from pianossm.checkpoint import load_checkpoint, load_model, save_checkpoint
from pianossm.cli import main
from pianossm.config import preset
from pianossm.data.cache import AudioCache, Item, add_features, build_cache
from pianossm.data.notes import load_performance
from pianossm.errors import PianoSSMError
from pianossm.features import PianoRoll
from pianossm.model import PianoSSM
from pianossm.train import Trainer
from pianossm.train.warmstart import warm_start

LAYOUT = "roll+onset+pedal"


def _pedal_items(root: Path) -> list[Item]:
    """Tone 'recordings' whose MIDI has re-strikes under the pedal (onsets the roll hides)."""
    import soundfile as sf

    items = []
    for k, split in enumerate(["train", "train", "validation"]):
        pm, inst = pretty_midi.PrettyMIDI(), pretty_midi.Instrument(0)
        for j in range(6):
            inst.notes.append(pretty_midi.Note(90 - 10 * j, 60 + k, 0.1 + 0.3 * j,
                                               0.35 + 0.3 * j))
        inst.control_changes += [pretty_midi.ControlChange(64, 100, 0.05),
                                 pretty_midi.ControlChange(64, 0, 1.9)]
        pm.instruments.append(inst)
        pm.write(str(root / f"p{k}.mid"))
        t = np.arange(2 * 16000) / 16000
        sf.write(str(root / f"p{k}.wav"), 0.1 * np.sin(2 * np.pi * 262 * t) * np.exp(-2 * t),
                 16000, subtype="FLOAT")
        items.append(Item(f"p{k}", str(root / f"p{k}.mid"), str(root / f"p{k}.wav"), split))
    return items


@pytest.fixture(scope="module")
def wide_cache(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The tone cache given the layout after the fact (serves both layouts)."""
    path = _tone_cache(tmp_path_factory.mktemp("tones_wide"))
    add_features(path, LAYOUT, progress=False)
    return path


def test_cache_stores_and_serves_the_layout(tmp_path: Path) -> None:
    items = _pedal_items(tmp_path)
    wide = build_cache(items, tmp_path / "wide", 16000, progress=False, features=LAYOUT)
    roll = build_cache(items, tmp_path / "roll", 16000, progress=False)
    assert (wide.layout, roll.layout) == (LAYOUT, "roll")
    assert json.loads((tmp_path / "wide" / "index.json").read_text())["features"] == LAYOUT
    assert wide.holds("roll") and wide.holds(LAYOUT) and not roll.holds(LAYOUT)
    for i, rec in enumerate(wide.items):
        want = PianoRoll(load_performance(items[i].midi), 1000.0, features=LAYOUT).frames(
            0, rec["n_frames"] + 5)
        feats, audio = wide.segment(i, 0, rec["n_frames"] + 5, LAYOUT)
        assert feats.shape == (rec["n_frames"] + 5, 177)
        np.testing.assert_array_equal(feats[:rec["n_frames"]], want[:rec["n_frames"]])
        assert not feats[rec["n_frames"]:].any()  # zero past the item's end
        np.testing.assert_array_equal(roll.segment(i, 0, 100)[0], feats[:100, :88])
        np.testing.assert_array_equal(wide.segment(i, 0, 100)[0], feats[:100, :88])
    # the onsets show the re-strikes the roll hides
    f, _ = wide.segment(0, 0, 2000, LAYOUT)
    assert len(np.unique(f[:, 60 - 21])) < 4 and np.count_nonzero(f[:, 88 + 60 - 21]) == 60
    a = wide.sample_crops(np.random.default_rng(3), 4, 0.3, features=LAYOUT)
    b = roll.sample_crops(np.random.default_rng(3), 4, 0.3)
    assert a[0].shape == (4, 300, 177)
    np.testing.assert_array_equal(a[0][..., :88], b[0])  # the same draws
    np.testing.assert_array_equal(a[1], b[1])
    with pytest.raises(PianoSSMError, match="holds the 'roll' input layout, not "
                       "'roll\\+onset\\+pedal'.*dataset features"):
        roll.sample_crops(np.random.default_rng(0), 1, 0.1, features=LAYOUT)
    with pytest.raises(PianoSSMError, match="unknown feature layout"):
        build_cache(items, tmp_path / "bad", 16000, progress=False, features="onsets")


def test_add_features_equals_building_with_the_layout(tmp_path: Path) -> None:
    items = _pedal_items(tmp_path)
    build_cache(items, tmp_path / "direct", 16000, progress=False, features=LAYOUT)
    build_cache(items, tmp_path / "later", 16000, progress=False)
    before = (tmp_path / "later" / "features.u8").read_bytes()
    cache = add_features(tmp_path / "later", LAYOUT, progress=False)
    assert cache.layout == LAYOUT
    for name in ("features.u8", "onset.u8", "pedal.u8", "audio.i16"):
        assert (tmp_path / "later" / name).read_bytes() == (tmp_path / "direct" / name).read_bytes()
    assert (tmp_path / "later" / "features.u8").read_bytes() == before
    assert not list((tmp_path / "later").glob("*.partial"))
    # a MIDI file changed since the cache was built: refused, the cache left as it was
    build_cache(items, tmp_path / "stale", 16000, progress=False)
    pm = pretty_midi.PrettyMIDI(items[1].midi)
    pm.instruments[0].notes[0].velocity = 127
    pm.write(items[1].midi)
    with pytest.raises(PianoSSMError, match="p1.mid' no longer gives the roll"):
        add_features(tmp_path / "stale", LAYOUT, progress=False)
    assert AudioCache(tmp_path / "stale").layout == "roll"
    assert not (tmp_path / "stale" / "onset.u8").exists()
    os.unlink(tmp_path / "later" / "pedal.u8")
    with pytest.raises(PianoSSMError, match="holds 'roll\\+onset\\+pedal' but has no pedal.u8"):
        AudioCache(tmp_path / "later")


def test_cli_dataset_features(tmp_path: Path) -> None:
    path = _tone_cache(tmp_path)
    assert main(["dataset", "features", "--data", path, "--features", LAYOUT, "-q"]) == 0
    assert AudioCache(path).layout == LAYOUT
    assert main(["dataset", "features", "--data", path, "--features", "roll+x", "-q"]) == 1


def test_trainer_refuses_a_cache_without_the_layout(tmp_path: Path) -> None:
    path = _tone_cache(tmp_path)
    with pytest.raises(PianoSSMError, match="holds the 'roll' input layout, not "
                       "'roll\\+onset\\+pedal'"):
        Trainer(_cfg(path, tmp_path / "run", features=LAYOUT), progress=False)
    with pytest.raises(PianoSSMError, match="unknown --features 'onset'"):
        Trainer(_cfg(path, tmp_path / "run", features="onset"), progress=False)


def _roll_checkpoint(cache: str, out: Path, steps: int = 3) -> Path:
    """A briefly trained ``roll`` model (nonzero, non-initial weights)."""
    tr = Trainer(_cfg(cache, out, steps=steps, finetune_steps=0), progress=False)
    tr.run()
    return out / "last.pt"


def test_init_widens_a_roll_model_and_renders_the_same(wide_cache: str, tmp_path: Path) -> None:
    ckpt = _roll_checkpoint(wide_cache, tmp_path / "roll")
    old = load_model(ckpt)
    tr = Trainer(_cfg(wide_cache, tmp_path / "wide", features=LAYOUT, init=str(ckpt)),
                 progress=False)
    new = tr.model
    assert new.config.features == LAYOUT and new.config.widths[0] == 177
    assert tr.step == 0 and not tr.optimizer.state  # a new run, fresh optimizer
    b_old, b_new = old.blocks[0].ssm.B, new.blocks[0].ssm.B
    assert b_new.shape == (b_old.shape[0], 177, 2)
    assert torch.equal(b_new[:, :88], b_old) and not b_new[:, 88:].any()
    for (k, a), (_, b) in zip(old.state_dict().items(), new.state_dict().items()):
        if k != "blocks.0.ssm.B":
            assert torch.equal(a, b), k
    # the same audio from the same cache windows (the new channels are not zero there)
    cache = AudioCache(wide_cache)
    item, first, n = cache.windows("validation", 1.0)[0]
    wide, _ = cache.segment(item, first, n, LAYOUT)
    assert wide[:, 88:].any()
    with torch.no_grad():
        a = old(torch.from_numpy(wide[:, :88])[None], 16, 1.0, 0)
        b = new.eval()(torch.from_numpy(wide)[None], 16, 1.0, 0)
    assert torch.abs(a - b).max() <= 1e-6 * torch.abs(a).max()
    # and through the renderer, from the MIDI file
    midi = cache.item_midi(item)
    save_checkpoint(tmp_path / "wide0.pt", new)
    x, _ = pianossm.synthesize(midi, str(ckpt))
    y, _ = pianossm.synthesize(midi, str(tmp_path / "wide0.pt"))
    assert x.shape == y.shape and np.abs(x - y).max() <= 1e-6 * np.abs(x).max()


def test_init_from_other_audio_statistics_rescales_the_heads(wide_cache: str,
                                                            tmp_path: Path) -> None:
    """A checkpoint trained on other data (another audio mean and std): the run keeps the
    cache's, and the heads are rescaled so the audio is the same."""
    old = load_model(_roll_checkpoint(wide_cache, tmp_path / "roll", steps=1))
    moved = PianoSSM(old.config.replace(audio_std=old.config.audio_std * 2.5,
                                        audio_mean=old.config.audio_mean + 0.003))
    moved.load_state_dict(old.state_dict())
    save_checkpoint(tmp_path / "moved.pt", moved)
    tr = Trainer(_cfg(wide_cache, tmp_path / "wide", features=LAYOUT,
                      init=str(tmp_path / "moved.pt")), progress=False)
    assert tr.model.config.audio_std == old.config.audio_std  # the cache's
    cache = AudioCache(wide_cache)
    feats, _ = cache.segment(*cache.windows("validation", 1.0)[0], LAYOUT)
    with torch.no_grad():
        a = moved.eval()(torch.from_numpy(feats[:, :88])[None], 16, 1.0, 0)
        b = tr.model.eval()(torch.from_numpy(feats)[None], 16, 1.0, 0)
    assert torch.abs(a - b).max() <= 1e-6 * torch.abs(a).max()
    assert not torch.equal(tr.model.heads.weight, moved.heads.weight)


def test_init_smoke_run_trains_the_new_channels(wide_cache: str, tmp_path: Path) -> None:
    """20 steps of a warm-started ``roll+onset+pedal`` run: finite losses, the onset and
    pedal weights leave zero, and the saved model renders in its layout."""
    ckpt = _roll_checkpoint(wide_cache, tmp_path / "roll")
    cfg = _cfg(wide_cache, tmp_path / "wide", features=LAYOUT, init=str(ckpt), steps=20,
               finetune_steps=0, val_every=10, ckpt_every=10, lr=3e-3)
    tr = Trainer(cfg, progress=False)
    history = tr.run()
    assert len(history) == 20 and all(np.isfinite(r["loss"]) for r in history)
    assert tr.model.blocks[0].ssm.B[:, 88:].abs().max() > 0
    payload = load_checkpoint(tmp_path / "wide" / "last.pt")
    assert payload["config"].features == LAYOUT and payload["step"] == 20
    assert payload["train_config"]["init"] == str(ckpt)
    audio, _ = pianossm.synthesize(AudioCache(wide_cache).item_midi(0),
                                   str(tmp_path / "wide" / "best.pt"))
    assert np.isfinite(audio).all() and np.abs(audio).max() > 0


def test_init_refuses_what_does_not_fit(wide_cache: str, tmp_path: Path) -> None:
    ckpt = _roll_checkpoint(wide_cache, tmp_path / "roll", steps=1)
    with pytest.raises(PianoSSMError, match="blocks.0.ssm.log_mag has shape \\(4,\\) there "
                       "and \\(6,\\) here"):
        Trainer(_cfg(wide_cache, tmp_path / "a", d_state=6, init=str(ckpt)), progress=False)
    wide = Trainer(_cfg(wide_cache, tmp_path / "b", features=LAYOUT), progress=False)
    save_checkpoint(tmp_path / "wide.pt", wide.model)
    with pytest.raises(PianoSSMError, match="a 'roll\\+onset\\+pedal' model cannot start a "
                       "'roll' run"):
        Trainer(_cfg(wide_cache, tmp_path / "c", init=str(tmp_path / "wide.pt")),
                progress=False)
    torch.manual_seed(0)
    other = PianoSSM(preset("S", d_state=4, heads=("x", "y")))
    save_checkpoint(tmp_path / "heads.pt", other)
    with pytest.raises(PianoSSMError, match="its heads \\('x', 'y'\\) differs from this "
                       "run's \\('default',\\)"):
        Trainer(_cfg(wide_cache, tmp_path / "d", init=str(tmp_path / "heads.pt")),
                progress=False)
    with pytest.raises(PianoSSMError, match="checkpoint not found: .*none.pt"):
        Trainer(_cfg(wide_cache, tmp_path / "e", init=str(tmp_path / "none.pt")),
                progress=False)
    # the widening touches only the input weights: a wider later layer is refused
    model = PianoSSM(Trainer(_cfg(wide_cache, tmp_path / "f"), progress=False).model.config
                     .replace(widths=(88, 90, 60, 40, 20)))
    with pytest.raises(PianoSSMError, match="blocks.0.ssm.C has shape"):
        warm_start(model, ckpt)


def test_resume_refuses_a_changed_layout_and_may_drop_init(
        wide_cache: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ckpt = _roll_checkpoint(wide_cache, tmp_path / "roll", steps=1)
    out = str(tmp_path / "run")
    base = ["train", "--data", wide_cache, "--out", out, "--d-state", "4", "--batch", "2",
            "--crop-seconds", "0.2", "--val-every", "100", "--ckpt-every", "100",
            "--val-seconds", "1", "--val-max-windows", "1", "--warmup-steps", "1",
            "--finetune-steps", "0", "-q"]
    assert main(base + ["--steps", "2", "--features", LAYOUT, "--init", str(ckpt)]) == 0
    assert load_checkpoint(os.path.join(out, "last.pt"))["step"] == 2
    assert main(base + ["--steps", "3", "--resume"]) == 1  # features: roll+onset+pedal -> roll
    assert "features 'roll+onset+pedal' -> 'roll'" in capsys.readouterr().err
    os.unlink(ckpt)  # init is needed only at step 0: a resume may leave it out or lose it
    assert main(base + ["--steps", "3", "--features", LAYOUT, "--init", str(ckpt),
                        "--resume"]) == 0
    assert main(base + ["--steps", "4", "--features", LAYOUT, "--resume"]) == 0
    assert load_checkpoint(os.path.join(out, "last.pt"))["step"] == 4


def test_resume_error_names_the_layout(wide_cache: str, tmp_path: Path) -> None:
    tr = Trainer(_cfg(wide_cache, tmp_path, steps=1, finetune_steps=0), progress=False)
    tr.run()
    again = Trainer(_cfg(wide_cache, tmp_path, steps=2, finetune_steps=0, features=LAYOUT),
                    progress=False)
    with pytest.raises(PianoSSMError, match="features 'roll' -> 'roll\\+onset\\+pedal'"):
        again.resume(str(tmp_path / "last.pt"))
    shutil.rmtree(tmp_path / "tb", ignore_errors=True)


def test_cli_dataset_build_with_the_layout(tmp_path: Path) -> None:
    out = str(tmp_path / "ds")
    assert main(["dataset", "build", "-o", out, "--size", "tiny", "--features", "roll+x",
                 "-q"]) == 1
    assert not os.path.exists(out)  # refused before rendering anything
    assert main(["dataset", "build", "-o", out, "--size", "tiny", "--features", LAYOUT,
                 "-q"]) == 0
    cache = AudioCache(os.path.join(out, "cache"))
    assert cache.layout == LAYOUT
    feats, _ = cache.segment(0, 0, cache.items[0]["n_frames"], LAYOUT)
    want = PianoRoll(load_performance(cache.item_midi(0)), 1000.0, features=LAYOUT).frames(
        0, cache.items[0]["n_frames"])
    np.testing.assert_array_equal(feats, want)
