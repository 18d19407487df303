"""Built-in dataset (determinism, splits), the memory-mapped cache, crops and windows."""

from __future__ import annotations

import itertools
import logging
import os
import shutil

import numpy as np
import pretty_midi
import pytest
import soundfile as sf

from pianossm.data.builtin import build_builtin, builtin_items
from pianossm.data.cache import AudioCache, Item, build_cache
from pianossm.errors import PianoSSMError

pytestmark = pytest.mark.skipif(shutil.which("fluidsynth") is None, reason="no fluidsynth")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("data") / "tiny"
    build_builtin(root, "fluidr3", 16000, seed=3, size="tiny", progress=False)
    return str(root)


def test_builtin_has_every_kind_and_split(tiny: str) -> None:
    items = builtin_items(tiny)
    kinds = {i.name.split("_")[0] for i in items}
    assert kinds == {"isol", "rand", "ucho", "piece"}
    assert {i.split for i in items} == {"train", "validation", "test"}
    assert all(i.split == "train" for i in items if not i.name.startswith("piece"))
    cache = AudioCache(os.path.join(tiny, "cache"))
    assert cache.seconds("train") > 10 and cache.seconds("test") > 2
    # pieces carry sustain pedal and expressive (non-grid) timing
    pm = pretty_midi.PrettyMIDI(os.path.join(tiny, "midi", "piece_test_00.mid"))
    assert any(cc.number == 64 for cc in pm.instruments[0].control_changes)
    onsets = np.array([n.start for n in pm.instruments[0].notes])
    assert len(np.unique(np.round(np.diff(np.unique(onsets)), 3))) > 3


def test_builtin_is_deterministic(tiny: str, tmp_path: os.PathLike) -> None:
    again = tmp_path / "again"
    build_builtin(again, "fluidr3", 16000, seed=3, size="tiny", progress=False)
    for name in os.listdir(os.path.join(tiny, "midi")):
        with open(os.path.join(tiny, "midi", name), "rb") as a, \
                open(os.path.join(again, "midi", name), "rb") as b:
            assert a.read() == b.read(), name
    a = np.fromfile(os.path.join(tiny, "cache", "audio.i16"), np.int16)
    b = np.fromfile(os.path.join(again, "cache", "audio.i16"), np.int16)
    assert np.array_equal(a, b)
    other = tmp_path / "other"
    build_builtin(other, "fluidr3", 16000, seed=4, size="tiny", progress=False)
    with open(os.path.join(tiny, "midi", "piece_test_00.mid"), "rb") as f1, \
            open(os.path.join(other, "midi", "piece_test_00.mid"), "rb") as f2:
        assert f1.read() != f2.read()


def test_existing_folder_needs_force(tiny: str) -> None:
    with pytest.raises(PianoSSMError, match="exists"):
        build_builtin(tiny, size="tiny", progress=False)


def test_cache_matches_sources(tiny: str) -> None:
    from pianossm.audio import read_audio
    from pianossm.features import PianoRoll

    cache = AudioCache(os.path.join(tiny, "cache"))
    assert isinstance(cache.audio, np.memmap) and cache.audio.dtype == np.int16
    i = cache.split("test")[0]
    rec = cache.items[i]
    feats, audio = cache.segment(i, 100, 500)
    roll = PianoRoll(pretty_midi.PrettyMIDI(rec["midi"]), 1000.0).frames(100, 600)
    np.testing.assert_allclose(feats, roll, atol=1e-7)
    ref, _ = read_audio(rec["audio"])
    np.testing.assert_allclose(audio, ref[1600:9600], atol=1 / 32767 + 1e-7)
    # past the end of an item: zeros, never the next item's data
    f, a = cache.segment(i, rec["n_frames"] - 10, 100)
    assert not f[10:].any() and not a[160:].any()


def test_crops_are_seeded_and_weighted_by_length(tiny: str) -> None:
    cache = AudioCache(os.path.join(tiny, "cache"))
    f1, a1, h1 = cache.sample_crops(np.random.default_rng(7), 3, 0.5)
    f2, a2, _ = cache.sample_crops(np.random.default_rng(7), 3, 0.5)
    assert f1.shape == (3, 500, 88) and a1.shape == (3, 8000) and h1.shape == (3,)
    assert np.array_equal(a1, a2) and np.array_equal(f1, f2)
    ids = cache.split("train")
    lengths = np.array([cache.items[i]["n_frames"] for i in ids], dtype=float)
    rng = np.random.default_rng(0)
    counts = np.zeros(len(ids))
    for _ in range(4000):  # same draw as sample_crops's item choice
        counts[rng.choice(len(ids), p=lengths / lengths.sum())] += 1
    np.testing.assert_allclose(counts / counts.sum(), lengths / lengths.sum(), atol=0.03)


def test_windows_are_non_overlapping(tiny: str) -> None:
    cache = AudioCache(os.path.join(tiny, "cache"))
    wins = cache.windows("train", seconds=4.0)
    for item in cache.split("train"):
        mine = [(f, n) for i, f, n in wins if i == item]
        assert mine[0][0] == 0
        for (f0, n0), (f1, _) in itertools.pairwise(mine):
            assert f1 == f0 + n0 == f0 + 4000
        assert mine[-1][0] + mine[-1][1] <= cache.items[item]["n_frames"]


def _pair(tmp: str, name: str, audio_s: float, note_end: float) -> Item:
    pm = pretty_midi.PrettyMIDI()
    inst = pretty_midi.Instrument(0)
    inst.notes.append(pretty_midi.Note(90, 60, 0.1, note_end))
    pm.instruments.append(inst)
    pm.write(os.path.join(tmp, name + ".mid"))
    sf.write(os.path.join(tmp, name + ".wav"), np.full(int(audio_s * 16000), 0.1), 16000)
    return Item(name, os.path.join(tmp, name + ".mid"), os.path.join(tmp, name + ".wav"),
                "train")


def test_unequal_lengths_are_trimmed_with_a_warning(tmp_path: os.PathLike,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    tmp = str(tmp_path)
    items = [_pair(tmp, "ok", 2.5, 2.0), _pair(tmp, "midi_long", 1.0, 2.0),
             _pair(tmp, "audio_long", 9.0, 1.0)]
    with caplog.at_level(logging.WARNING):
        cache = build_cache(items, os.path.join(tmp, "c"), 16000, tail_seconds=3.0,
                            progress=False)
    n = {it["name"]: it["n_frames"] for it in cache.items}
    assert n == {"ok": 2500, "midi_long": 1000, "audio_long": 4000}
    text = caplog.text
    assert "midi_long.wav" in text and "audio_long.wav" in text and "ok.wav" not in text
    assert cache.index["audio_mean"] == pytest.approx(0.1, abs=1e-4)


def test_corrupt_files_name_the_file(tmp_path: os.PathLike) -> None:
    tmp = str(tmp_path)
    item = _pair(tmp, "bad", 1.0, 0.5)
    with open(item.audio, "wb") as f:
        f.write(b"RIFF not really a wave file")
    with pytest.raises(PianoSSMError, match="bad.wav"):
        build_cache([item], os.path.join(tmp, "c"), 16000, progress=False)
    item = _pair(tmp, "badmid", 1.0, 0.5)
    with open(item.midi, "wb") as f:
        f.write(b"MThd garbage")
    with pytest.raises(PianoSSMError, match="badmid.mid"):
        build_cache([item], os.path.join(tmp, "c"), 16000, progress=False)
    assert not os.path.exists(os.path.join(tmp, "c"))


def test_cli_from_midi_and_render_yardstick(tmp_path: os.PathLike) -> None:
    from pianossm.cli import main
    from pianossm.data import generate

    midi = os.path.join(tmp_path, "phrase.mid")
    generate.piece(np.random.default_rng(0), bars=1).write(midi)
    out = os.path.join(tmp_path, "ds")
    assert main(["dataset", "from-midi", midi, "-o", out]) == 0
    cache = AudioCache(os.path.join(out, "cache"))
    assert [it["name"] for it in cache.items] == ["phrase"] and cache.split("test") == [0]
    wavs = os.path.join(tmp_path, "muse")
    assert main(["dataset", "render", "--data", out, "--soundfont", "musescore",
                 "-o", wavs]) == 0
    audio, rate = sf.read(os.path.join(wavs, "phrase.wav"))
    assert rate == 16000 and np.abs(audio).max() > 0.001
    assert main(["dataset", "build", "-o", out, "--size", "tiny"]) == 1  # exists, no --force
