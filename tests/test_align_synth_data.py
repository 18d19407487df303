"""``align-data --synth``: alignment items played by a Piano-SSM model instead of a SoundFont."""

import json

import numpy as np
import pytest
import soundfile as sf

from pianossm.align.data import SYNTH_LABELS, build_rendered, check_labels, list_items, load_item
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
    the model's, peak scaled to the recorded gain), its notes the piece's exact MIDI notes;
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
        ref, _ = synthesize(piece, "default", SAMPLE_RATE, meta["head"], tail=1.0)
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
