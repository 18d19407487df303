"""Checkpoint format: round trip, versioning, refusal of foreign or broken files."""

from __future__ import annotations

import pytest
import torch

from pianossm.checkpoint import (
    VERSION,
    atomic_write,
    average_models,
    import_official,
    load_checkpoint,
    load_model,
    save_checkpoint,
)
from pianossm.config import preset
from pianossm.errors import PianoSSMError
from pianossm.model import PianoSSM


def test_round_trip_keeps_config_and_weights(tmp_path) -> None:
    torch.manual_seed(0)
    model = PianoSSM(preset("S", train_sample_rate=24000, heads=("x", "y"), audio_std=0.1))
    save_checkpoint(tmp_path / "m.pt", model, step=12)
    payload = load_checkpoint(tmp_path / "m.pt")
    assert payload["step"] == 12 and payload["version"] == VERSION
    loaded = load_model(tmp_path / "m.pt")
    assert loaded.config == model.config
    for (k, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), k
    assert [p.name for p in tmp_path.iterdir()] == ["m.pt"]  # no temporary left


def test_average_models_is_the_weighted_mean(tmp_path) -> None:
    import dataclasses

    torch.manual_seed(0)
    cfg = preset("S", input_delay_ms=7.0)
    a, b, c = PianoSSM(cfg), PianoSSM(cfg), PianoSSM(cfg)
    for i, m in enumerate((a, b, c)):
        save_checkpoint(tmp_path / f"{i}.pt", m, step=100 * i)
    paths = [tmp_path / f"{i}.pt" for i in range(3)]
    soup = average_models(paths, [0.5, 0.3, 0.2], tmp_path / "soup.pt", source="test")
    loaded = load_checkpoint(tmp_path / "soup.pt")
    assert loaded["config"] == cfg and loaded["source"] == "test"
    assert [s["step"] for s in loaded["soup"]] == [0, 100, 200]
    for k, v in soup.state_dict().items():
        want = (0.5 * a.state_dict()[k].double() + 0.3 * b.state_dict()[k].double()
                + 0.2 * c.state_dict()[k].double())
        assert torch.allclose(v.double(), want, rtol=0, atol=1e-6), k
        assert torch.equal(loaded["model"][k], v), k
    # weight 1 on one model gives that model back exactly
    same = average_models(paths[:2], [1.0, 0.0], tmp_path / "one.pt")
    for k, v in a.state_dict().items():
        assert torch.equal(same.state_dict()[k], v), k
    with pytest.raises(PianoSSMError, match="summing to 1"):
        average_models(paths[:2], [0.5, 0.4], tmp_path / "x.pt")
    with pytest.raises(PianoSSMError, match="summing to 1"):
        average_models(paths[:2], [1.0], tmp_path / "x.pt")
    save_checkpoint(tmp_path / "d.pt", PianoSSM(dataclasses.replace(cfg, input_delay_ms=5.0)))
    with pytest.raises(PianoSSMError, match="differ in input_delay_ms"):
        average_models([paths[0], tmp_path / "d.pt"], [0.5, 0.5], tmp_path / "x.pt")
    assert not (tmp_path / "x.pt").exists()


def test_refuses_unknown_version_and_foreign_files(tmp_path) -> None:
    model = PianoSSM(preset("S"))
    save_checkpoint(tmp_path / "m.pt", model)
    payload = torch.load(tmp_path / "m.pt", weights_only=True)
    payload["version"] = VERSION + 1
    torch.save(payload, tmp_path / "future.pt")
    with pytest.raises(PianoSSMError, match="format version"):
        load_checkpoint(tmp_path / "future.pt")
    torch.save({"seq_midi.1.seq.0.seq.angle": torch.zeros(3)}, tmp_path / "sd.pt")
    with pytest.raises(PianoSSMError, match="import-checkpoint"):
        load_checkpoint(tmp_path / "sd.pt")
    (tmp_path / "junk.pt").write_bytes(b"\x00garbage")
    with pytest.raises(PianoSSMError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
    with pytest.raises(PianoSSMError, match="not found"):
        load_checkpoint(tmp_path / "nope.pt")


def test_weights_that_do_not_fit_the_config(tmp_path) -> None:
    save_checkpoint(tmp_path / "m.pt", PianoSSM(preset("S")))
    payload = torch.load(tmp_path / "m.pt", weights_only=True)
    payload["config"]["d_state"] = 128
    torch.save(payload, tmp_path / "bad.pt")
    with pytest.raises(PianoSSMError, match="does not match its config"):
        load_model(tmp_path / "bad.pt")


def test_atomic_write_leaves_nothing_on_failure(tmp_path) -> None:
    def fail(tmp: str) -> None:
        with open(tmp, "wb") as fh:
            fh.write(b"partial")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError):
        atomic_write(tmp_path / "out.bin", fail)
    assert list(tmp_path.iterdir()) == []


def test_import_rejects_non_official(tmp_path) -> None:
    save_checkpoint(tmp_path / "ours.pt", PianoSSM(preset("S")))
    with pytest.raises(PianoSSMError, match="not a published Piano-SSM"):
        import_official(tmp_path / "ours.pt", 16000)


def test_import_official_layout(official_dir) -> None:
    model = import_official(official_dir / "checkpoints" / "PianoSSM_L_MH_maestro_all_24000_model.pth")
    cfg = model.config
    assert (cfg.preset, cfg.d_state, cfg.train_sample_rate) == ("L", 128, 24000)
    assert cfg.heads[3] == "2009" and len(cfg.heads) == 10
    assert all(torch.all(b.ssm.eigenvalues().real <= 0) for b in model.blocks)
