"""MAESTRO v3 and MAPS loaders on tiny fixture trees with the real folder and file names."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import numpy as np
import pretty_midi
import pytest
import soundfile as sf

from pianossm.data.cache import build_cache
from pianossm.data.maestro import CSV_NAME, maestro_items
from pianossm.data.maps import maps_items, read_maps_txt
from pianossm.errors import PianoSSMError


def _midi(path: Path, pitch: int = 60, end: float = 0.8) -> None:
    pm = pretty_midi.PrettyMIDI()
    inst = pretty_midi.Instrument(0)
    inst.notes.append(pretty_midi.Note(80, pitch, 0.1, end))
    pm.instruments.append(inst)
    path.parent.mkdir(parents=True, exist_ok=True)
    pm.write(str(path))


def _wav(path: Path, seconds: float = 1.0, rate: int = 44100, channels: int = 2) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * rate)) / rate
    tone = 0.2 * np.sin(2 * np.pi * 261.6 * t)
    sf.write(str(path), np.stack([tone] * channels, axis=1), rate)


def _maestro(root: Path) -> None:
    rows = [("train", 2004, "2004/MIDI-Unprocessed_SMF_02_R1_2004_01-05_ORIG_MID--AUDIO_02_R1_2004_05_Track05_wav"),
            ("validation", 2006, "2006/MIDI-Unprocessed_07_R1_2006_01-04_ORIG_MID--AUDIO_07_R1_2006_04_Track04_wav"),
            ("test", 2018, "2018/MIDI-Unprocessed_Recital1-3_MID--AUDIO_01_R1_2018_wav--1")]
    with open(root / CSV_NAME, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["canonical_composer", "canonical_title", "split", "year", "midi_filename",
                    "audio_filename", "duration"])
        for split, year, stem in rows:
            _midi(root / f"{stem}.midi")
            _wav(root / f"{stem}.wav")
            w.writerow(["Chopin", "Etude", split, year, f"{stem}.midi", f"{stem}.wav", 1.0])


def test_maestro_items_and_cache(tmp_path: Path) -> None:
    _maestro(tmp_path)
    items = maestro_items(tmp_path)
    assert [(i.split, i.head) for i in items] == [("train", "2004"), ("validation", "2006"),
                                                  ("test", "2018")]
    assert items[0].name.endswith("Track05_wav") and items[0].audio.endswith(".wav")
    assert [i.head for i in maestro_items(tmp_path, splits=("train",))] == ["2004"]
    assert [i.head for i in maestro_items(tmp_path, years=("2018",))] == ["2018"]
    cache = build_cache(items, tmp_path / "cache", 16000, progress=False)
    assert cache.heads == ["2004", "2006", "2018"]
    # stereo 44.1 kHz became mono 16 kHz (soxr): 1 s of audio is 16000 samples
    assert cache.items[0]["n_frames"] == 1000
    _, audio = cache.segment(0, 0, 1000)
    assert np.abs(audio).max() == pytest.approx(0.2, abs=0.01)


def test_maestro_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(PianoSSMError, match=CSV_NAME):
        maestro_items(tmp_path)
    _maestro(tmp_path)
    victim = next(tmp_path.glob("2006/*.wav"))
    victim.write_bytes(b"RIFF\x00\x00garbage")
    items = maestro_items(tmp_path)
    with pytest.raises(PianoSSMError, match=victim.name):
        build_cache(items, tmp_path / "cache", 16000, progress=False)
    victim.unlink()
    with pytest.raises(PianoSSMError, match=f"line 3.*{victim.name}"):
        maestro_items(tmp_path)


def _maps(root: Path) -> None:
    for cond in ("ENSTDkCl", "ENSTDkAm", "AkPnBcht"):
        for rel in (f"ISOL/NO/MAPS_ISOL_NO_F_S0_M23_{cond}",
                    f"RAND/P1/MAPS_RAND_P1_M_I60-68_S0_n1_{cond}",
                    f"UCHO/C0-5-9/MAPS_UCHO_C0-5-9_I32-96_S0_n1_{cond}",
                    f"MUS/MAPS_MUS-alb_se3_{cond}"):
            stem = root / cond / rel
            _wav(stem.with_suffix(".wav"))
            if "UCHO" in rel:  # only the note list: the loader must fall back to it
                (stem.parent / (stem.name + ".txt")).write_text(
                    "OnsetTime\tOffsetTime\tMidiPitch\n0.1\t0.7\t60\n0.1\t0.7\t64\n")
            else:
                _midi(stem.parent / (stem.name + ".mid"))


def test_maps_items_splits_conditions_and_txt(tmp_path: Path) -> None:
    _maps(tmp_path)
    items = maps_items(tmp_path)
    assert len(items) == 8  # the synthetic-piano folder is not used
    assert {i.head for i in items} == {"close", "ambient"}
    assert {i.name.split("_")[1]: i.split for i in items} == {
        "ISOL": "train", "RAND": "train", "UCHO": "train", "MUS-alb": "test"}
    ucho = [i for i in items if "UCHO" in i.name]
    assert all(i.midi.endswith(".txt") for i in ucho)
    pm = read_maps_txt(ucho[0].midi)
    assert sorted(n.pitch for n in pm.instruments[0].notes) == [60, 64]
    cache = build_cache(items, tmp_path / "cache", 16000, progress=False)
    i = next(k for k, it in enumerate(cache.items) if "UCHO" in it["name"])
    feats, _ = cache.segment(i, 0, 1000)
    assert feats[300, 60 - 21] == pytest.approx(64 / 127) and feats[300, 64 - 21] > 0
    assert maps_items(tmp_path, conditions=("ENSTDkAm",))[0].head == "ambient"


def test_maps_errors(tmp_path: Path) -> None:
    with pytest.raises(PianoSSMError, match="no MAPS recordings"):
        maps_items(tmp_path)
    with pytest.raises(PianoSSMError, match="unknown MAPS condition 'Foo'"):
        maps_items(tmp_path, conditions=("Foo",))
    _maps(tmp_path)
    bad = next(tmp_path.glob("ENSTDkCl/UCHO/*/*.txt"))
    bad.write_text("OnsetTime\tOffsetTime\tMidiPitch\n0.1\tnope\t60\n")
    with pytest.raises(PianoSSMError, match=f"{bad.name}.*line 2"):
        read_maps_txt(bad)
    mid = next(tmp_path.glob("ENSTDkCl/RAND/*/*.mid"))
    mid.write_bytes(b"not midi")
    items = maps_items(tmp_path, conditions=("ENSTDkCl",))
    with pytest.raises(PianoSSMError, match=mid.name):
        build_cache([i for i in items if "RAND" in i.name], tmp_path / "c", 16000,
                    progress=False)
    os.unlink(mid)
    orphan = mid.with_suffix(".wav")
    with pytest.raises(PianoSSMError, match=orphan.name):
        maps_items(tmp_path, conditions=("ENSTDkCl",))
