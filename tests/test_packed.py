"""Packed-weights cache: bit-identical to packing with torch, torch-free when cached, never
stale, and harmless when damaged, disabled or unwritable."""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import pianossm
from pianossm.checkpoint import load_model, save_checkpoint
from pianossm.config import preset
from pianossm.engine import EngineWeights, pack_model
from pianossm.model import PianoSSM
from pianossm.packed import PackedModel, head_index
from pianossm.pipeline import default_model_path, engine_dtype

NOTES = [(60, 90, 0.0, 0.3), (72, 70, 0.1, 0.45)]


def _same(a: EngineWeights, b: EngineWeights) -> bool:
    """Every array bit for bit, same dtypes, same scalars."""
    x, y = a.to_arrays(), b.to_arrays()
    return x.keys() == y.keys() and all(
        x[k].dtype == y[k].dtype and x[k].shape == y[k].shape
        and x[k].tobytes() == y[k].tobytes() for k in x)


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    path = tmp_path / "cache"
    monkeypatch.setenv("PIANOSSM_CACHE_DIR", str(path))
    return path


@pytest.fixture
def tiny(tmp_path) -> Path:
    torch.manual_seed(0)
    path = tmp_path / "tiny.pt"
    save_checkpoint(path, PianoSSM(preset("S", heads=("a", "2009"), audio_std=0.05)))
    return path


@pytest.mark.parametrize(("rate", "mode", "dtype", "head"), [
    (16000, "none", np.float32, 0), (24000, "clamp", np.float64, 1),
    (8000, "static", np.float32, 1)])
def test_cached_weights_equal_pack_model_bit_for_bit(cache, tiny, rate, mode, dtype,
                                                     head) -> None:
    model = load_model(tiny)
    model.set_alias_mode(mode)
    want = pack_model(model, rate, head, dtype)
    first = PackedModel(tiny)
    first.set_alias_mode(mode)
    assert _same(first.pack(rate, head, dtype), want)  # a miss: packed with torch
    again = PackedModel(tiny)  # a new handle reads the entry written above
    again.set_alias_mode(mode)
    got = again.pack(rate, head, dtype)
    assert again._torch is None and _same(got, want)
    assert again.config == model.config


def test_synthesize_packed_equals_torch_model_for_every_option(cache, tiny) -> None:
    model = load_model(tiny)
    for kw in ({}, {"sample_rate": 24000, "alias_mode": "oversample", "head": "a"},
               {"float64": True, "tail": 0.2}, {"frame_grid": "train", "sample_rate": 8000},
               {"numerics": "reference", "sample_rate": 24000, "alias_mode": "drop"}):
        packed, rate = pianossm.synthesize(NOTES, str(tiny), **kw)
        ref, ref_rate = pianossm.synthesize(NOTES, model, **kw)
        assert rate == ref_rate and packed.dtype == ref.dtype and np.array_equal(packed, ref), kw


def test_default_render_imports_no_torch_once_cached(cache, tmp_path) -> None:
    code = ("import sys; from pianossm.cli import main; "
            "rc = main(['render', '-o', sys.argv[1], '-q', '--force', '--bits', 'float']); "
            "print(rc, 'torch' in sys.modules)")
    env = dict(os.environ, PIANOSSM_CACHE_DIR=str(cache))
    runs = [subprocess.run([sys.executable, "-c", code, str(tmp_path / f"{i}.wav")], env=env,
                           capture_output=True, text=True, check=True, timeout=300).stdout
            for i in range(2)]
    assert runs == ["0 True\n", "0 False\n"]  # packed with torch once, then never again
    import soundfile as sf

    ref, _ = pianossm.synthesize(pianossm.DEMO_MIDI, load_model(default_model_path()))
    for i in range(2):
        assert np.array_equal(sf.read(tmp_path / f"{i}.wav", dtype="float32")[0], ref)


def test_changed_checkpoint_is_never_served_stale(cache, tiny) -> None:
    before = PackedModel(tiny).pack(16000)
    torch.manual_seed(1)
    other = PianoSSM(preset("S", heads=("x",), audio_std=0.05))
    save_checkpoint(tiny, other)  # retrained in place: same path, new bytes
    handle = PackedModel(tiny)
    assert handle.config.heads == ("x",)
    got = handle.pack(16000)
    assert _same(got, pack_model(other.eval(), 16000)) and not _same(got, before)


def test_code_change_gives_another_entry(cache, tiny, monkeypatch) -> None:
    from pianossm import packed

    PackedModel(tiny).pack(16000)
    names = set(os.listdir(cache / "packed"))
    monkeypatch.setattr(packed, "_code_digest", ["an edited discretisation"])
    handle = PackedModel(tiny)
    handle.pack(16000)
    assert handle._torch is not None  # not served from the old entries
    assert len(set(os.listdir(cache / "packed")) - names) == 2  # its config and weights


def test_damaged_entry_is_packed_again(cache, tiny) -> None:
    want = PackedModel(tiny).pack(16000)
    for entry in (cache / "packed").iterdir():
        entry.write_bytes(entry.read_bytes()[: 40])  # truncated (not by us: writes are atomic)
    handle = PackedModel(tiny)
    assert _same(handle.pack(16000), want) and handle._torch is not None
    assert _same(PackedModel(tiny).pack(16000), want)  # and rewritten whole


def test_disabled_or_unwritable_cache_still_renders(tmp_path, tiny, monkeypatch) -> None:
    want, _ = pianossm.synthesize(NOTES, load_model(tiny))
    monkeypatch.setenv("PIANOSSM_CACHE_DIR", "")
    assert np.array_equal(pianossm.synthesize(NOTES, str(tiny))[0], want)
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    monkeypatch.setenv("PIANOSSM_CACHE_DIR", str(blocked))
    assert np.array_equal(pianossm.synthesize(NOTES, str(tiny))[0], want)
    assert blocked.read_text() == "not a folder"


def test_pickled_handle_carries_weights_not_torch(cache, tiny) -> None:
    handle = PackedModel(tiny)
    weights = handle.pack(16000)
    assert handle._torch is not None  # packed just now, with torch
    clone = pickle.loads(pickle.dumps(handle))
    assert clone._torch is None and _same(clone.pack(16000), weights)
    assert clone._torch is None  # served from the weights it carried


def test_heads_resolve_by_name_index_and_default(tiny) -> None:
    # One rule (pianossm.config) for PianoSSM and PackedModel: names, indices (ints, or
    # numeric strings that are not names), None -> "2009" where present, else the first.
    model = load_model(tiny)
    packed = PackedModel(tiny)
    bad = "unknown head"
    cases = {("a", "2009"): [(None, 1), ("0", 0), ("1", 1), ("2009", 1), ("a", 0), (1, 1),
                             (0, 0), ("7", bad), (2, bad), (-1, bad), (True, bad),
                             ("zz", bad)],
             ("default",): [(None, 0), ("0", 0), ("default", 0), (0, 0), ("1", bad)],
             tuple(str(y) for y in range(2004, 2012)): [(None, 5), ("5", 5), ("2009", 5),
                                                        ("2004", 0), (7, 7)]}
    for heads, want in cases.items():
        model.config = model.config.replace(heads=heads)
        packed._config = model.config
        for arg, expected in want:
            for net in (model, packed):
                if expected == bad:
                    with pytest.raises(pianossm.PianoSSMError, match=bad):
                        net.resolve_head(arg)
                else:
                    assert net.resolve_head(arg) == expected, (heads, arg)
            if expected != bad and (isinstance(arg, int) or arg in heads):
                assert head_index(model.config, arg) == expected  # names and int indices
        with pytest.raises(pianossm.PianoSSMError, match="unknown head"):
            head_index(model.config, True)


def test_errors_are_one_clear_line(tmp_path) -> None:
    with pytest.raises(pianossm.PianoSSMError, match="checkpoint not found"):
        PackedModel(tmp_path / "missing.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(pianossm.PianoSSMError, match="not a readable checkpoint"):
        pianossm.synthesize(NOTES, str(bad))
    with pytest.raises(pianossm.PianoSSMError, match="float32 or float64"):
        engine_dtype("int8")
    assert engine_dtype(torch.float64) == engine_dtype(np.float64) == np.dtype("float64")
    assert engine_dtype(None) == engine_dtype("float32") == np.dtype("float32")


def test_batch_worker_renders_from_the_pickled_handle_without_torch(tmp_path, tiny,
                                                                    monkeypatch) -> None:
    from pianossm.api import prepare

    monkeypatch.setenv("PIANOSSM_CACHE_DIR", "")  # nothing on disk: the weights travel
    handle = prepare(str(tiny), 24000, "a", alias_mode="clamp")
    (tmp_path / "h.pkl").write_bytes(pickle.dumps(handle))
    import pretty_midi

    pm = pretty_midi.PrettyMIDI()
    pm.instruments.append(pretty_midi.Instrument(0))
    pm.instruments[0].notes = [pretty_midi.Note(v, p, s, e) for p, v, s, e in NOTES]
    pm.write(str(tmp_path / "in.mid"))
    code = ("import pickle, sys; from pianossm import batch; "
            "h = pickle.load(open(sys.argv[1], 'rb')); "
            "batch._init_worker(h, dict(sample_rate=24000, head='a', alias_mode='clamp', "
            "bits='float')); r = batch._render_one(sys.argv[2], sys.argv[3]); "
            "print(r.error, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "h.pkl"),
                          str(tmp_path / "in.mid"), str(tmp_path / "out.wav")],
                         capture_output=True, text=True, check=True, timeout=300).stdout
    assert out == "None False\n"
    import soundfile as sf

    want, _ = pianossm.synthesize(tmp_path / "in.mid", load_model(tiny), 24000, "a",
                                  alias_mode="clamp")
    assert np.array_equal(sf.read(tmp_path / "out.wav", dtype="float32")[0], want)


def test_unreadable_packing_code_keeps_nothing_on_disk(cache, tiny, monkeypatch) -> None:
    from pianossm import packed

    monkeypatch.setattr(packed, "_code_digest", [])
    monkeypatch.setattr(packed, "PACKING_CODE", ("no_such_module.py",))
    handle = PackedModel(tiny)
    assert _same(handle.pack(16000), pack_model(load_model(tiny), 16000))
    assert not cache.exists()  # no entry that a later version of the code could misread


def test_streaming_synth_from_a_packed_model_equals_the_torch_one(cache, tiny) -> None:
    import mido

    events = [(3, mido.Message("note_on", note=60, velocity=90))]
    outs = []
    for model in (PackedModel(tiny), load_model(tiny)):
        synth = pianossm.Synth(model, 24000, head="2009")
        outs.append(np.concatenate([synth.process(events if i == 0 else [], 128)
                                    for i in range(6)]))
    assert np.abs(outs[0]).max() > 0 and np.array_equal(outs[0], outs[1])
