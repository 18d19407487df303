"""``align-data --synth``: alignment items played by a Piano-SSM model instead of a SoundFont."""

import json

import numpy as np
import pytest
import soundfile as sf

from pianossm.align.data import (
    SYNTH_LABELS,
    bake_pedal,
    build_rendered,
    check_labels,
    list_items,
    load_item,
)
from pianossm.align.features import SAMPLE_RATE
from pianossm.align.latency import exact_midi
from pianossm.align.notes import midi_to_notes
from pianossm.align.pieces import generate_piece
from pianossm.api import open_model, synthesize
from pianossm.cli import main


def _meta(stem):
    with np.load(stem + ".npz") as z:
        return json.loads(str(z["meta"]))


def test_synth_items_are_the_models_render_labelled_at_the_note_ons(tmp_path):
    """Each item is the built-in model's render of the generated piece (the head drawn from
    the model's, peak scaled to the recorded gain; its pedal baked into the notes), its notes
    the piece's exact MIDI notes;
    the same seeds give the same audio."""
    folders = [tmp_path / "a", tmp_path / "b"]
    for f in folders:
        build_rendered(str(f), range(3, 5), seconds=4.0, quiet=True, synths=("default",))
    stems = list_items(str(folders[0]))
    assert [s.rsplit("/", 1)[-1] for s in stems] == ["gen000003", "gen000004"]
    heads = open_model("default").config.heads
    for seed, stem in zip((3, 4), stems):
        meta = _meta(stem)
        assert meta["synth"] == "default" and meta["head"] in heads
        assert meta["labels"] == SYNTH_LABELS == "midi" and "soundfont" not in meta
        piece = exact_midi(generate_piece(seed, 4.0))
        want = midi_to_notes(piece)
        _, notes = load_item(stem)
        np.testing.assert_allclose(notes.onset, want.onset, atol=1e-9)
        np.testing.assert_array_equal(notes.pitch, want.pitch)
        ref, _ = synthesize(bake_pedal(piece), "default", SAMPLE_RATE, meta["head"], tail=1.0)
        ref = ref * (meta["gain"] / np.abs(ref).max())
        got, sr = sf.read(stem + ".flac", dtype="float64")
        assert sr == SAMPLE_RATE and len(got) == len(ref)
        np.testing.assert_allclose(got, ref, atol=1.0 / 32768 + 1e-4 * meta["gain"])
        assert np.abs(got).max() == pytest.approx(meta["gain"], abs=1e-3)
        again, _ = sf.read(str(folders[1] / (stem.rsplit("/", 1)[-1] + ".flac")))
        np.testing.assert_array_equal(sf.read(stem + ".flac")[0], again)
    check_labels(stems)  # MIDI labels are the right ones for a neural render


def test_synth_items_take_a_room_on_top(tmp_path):
    build_rendered(str(tmp_path), range(7, 8), seconds=3.0, quiet=True, synths=("default",),
                   rooms=("close",))
    (stem,) = list_items(str(tmp_path))
    meta = _meta(stem)
    assert meta["room"] == "close" and meta["synth"] == "default"
    audio, _ = sf.read(stem + ".flac")
    assert np.isfinite(audio).all() and np.abs(audio).max() > 0.01


def test_align_data_refuses_a_missing_synth(tmp_path, capsys):
    out = tmp_path / "data"
    assert main(["align-data", str(out), "--seeds", "0:1", "--synth",
                 str(tmp_path / "nope.pth")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "nope.pth" in err[0] and "Piano-SSM checkpoint" in err[0], err
    assert not out.exists()
    assert main(["align-data", str(out), "--synth", "default", "--soundfont", "fluidr3"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "exclude each other" in err[0], err
    assert not out.exists()


def _pedalled():
    import pretty_midi

    midi = pretty_midi.PrettyMIDI()
    inst = pretty_midi.Instrument(0)
    # key 60 struck three times under one pedal (0.5-2.0 s), key 64 released before it
    for start, end, pitch in ((0.6, 0.7, 60), (1.0, 1.1, 60), (1.4, 1.45, 60),
                              (0.2, 0.3, 64), (2.5, 2.6, 67)):
        inst.notes.append(pretty_midi.Note(80, pitch, start, end))
    inst.control_changes += [pretty_midi.ControlChange(64, 100, 0.5),
                             pretty_midi.ControlChange(64, 0, 2.0)]
    midi.instruments.append(inst)
    return midi


def test_bake_pedal_keeps_every_attack_in_the_roll():
    """Under the pedal a re-struck key leaves no onset in pretty_midi's roll (the Piano-SSM
    input); baked, each note is held to the pedal's release or 5 ms before its key's next
    onset, and every onset is a rise from zero."""
    midi = _pedalled()
    fs = 1000
    roll = midi.get_piano_roll(fs=fs)
    assert roll[60, 999] > 0 and roll[60, 1000] == roll[60, 999]  # the 1.0 s strike: no rise
    baked = bake_pedal(midi)
    assert not [c for c in baked.instruments[0].control_changes if c.number == 64]
    assert len(midi.instruments[0].control_changes) == 2  # the input is not modified
    got = sorted((n.pitch, n.start, n.end) for n in baked.instruments[0].notes)
    want = [(60, 0.6, 0.995), (60, 1.0, 1.395), (60, 1.4, 2.0), (64, 0.2, 0.3), (67, 2.5, 2.6)]
    np.testing.assert_allclose(np.array(got), np.array(want), atol=1e-9)
    broll = baked.get_piano_roll(fs=fs)
    for p, s, _ in want:
        f = round(s * fs)
        assert broll[p, f - 1] == 0 and broll[p, f] > 0
