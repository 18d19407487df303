"""The piano roll against pretty_midi's (the published models' input), framewise access."""

from __future__ import annotations

import itertools

import numpy as np
import pretty_midi
import pytest

from pianossm.errors import PianoSSMError
from pianossm.features import PianoRoll, frame_hop, load_midi


def random_midi(rng: np.random.Generator, n_notes: int = 60, two_tracks: bool = True,
                ) -> pretty_midi.PrettyMIDI:
    midi = pretty_midi.PrettyMIDI()
    for k in range(2 if two_tracks else 1):
        inst = pretty_midi.Instrument(program=0)
        for _ in range(n_notes):
            start = float(rng.uniform(0, 6))
            inst.notes.append(pretty_midi.Note(int(rng.integers(1, 128)),
                                               int(rng.integers(15, 115)), start,
                                               start + float(rng.uniform(0.01, 1.5))))
        t = 0.0
        while t < 7:
            t += float(rng.uniform(0.1, 1.0))
            inst.control_changes.append(pretty_midi.ControlChange(64, int(rng.integers(0, 128)), t))
        midi.instruments.append(inst)
    drums = pretty_midi.Instrument(program=0, is_drum=True)
    drums.notes.append(pretty_midi.Note(100, 40, 0.5, 9.0))
    midi.instruments.append(drums)
    return midi


@pytest.mark.parametrize("sr", [16000, 24000, 44100])
def test_roll_equals_pretty_midi(rng: np.random.Generator, sr: int) -> None:
    midi = random_midi(rng, two_tracks=False)
    fs = sr / frame_hop(sr)
    assert fs == {16000: 1000, 24000: 1200, 44100: 1764}[sr]
    roll = PianoRoll(midi, fs)
    want = np.minimum(midi.get_piano_roll(fs=fs)[21:109].T, 127) / 127
    got = roll.frames(0, roll.n_frames)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-6)


def test_roll_two_tracks_and_drums(rng: np.random.Generator) -> None:
    midi = random_midi(rng)
    roll = PianoRoll(midi, 100.0)
    want = np.minimum(midi.get_piano_roll(fs=100)[21:109].T, 127) / 127
    np.testing.assert_allclose(roll.frames(0, roll.n_frames), want[:roll.n_frames], atol=1e-6)


def test_frame_ranges_concatenate_to_whole(rng: np.random.Generator) -> None:
    midi = random_midi(rng)
    roll = PianoRoll(midi, 1000.0)
    whole = roll.frames(0, roll.n_frames + 50)
    cuts = [0, 1, 333, 1024, 2048, 4500, roll.n_frames + 50]
    parts = [roll.frames(a, b) for a, b in itertools.pairwise(cuts)]
    np.testing.assert_array_equal(np.concatenate(parts), whole)
    assert not whole[roll.n_frames:].any()


def test_frame_hop_rejects_unreachable_rates() -> None:
    for bad in (0, -16000, 4000, 400000, 16000.5, True):
        with pytest.raises(PianoSSMError, match="sample rate"):
            frame_hop(bad)  # type: ignore[arg-type]
    assert frame_hop(22050) == 21 and frame_hop(12000) == 12


def test_load_midi_errors(tmp_path) -> None:
    with pytest.raises(PianoSSMError, match="not found"):
        load_midi(tmp_path / "missing.mid")
    junk = tmp_path / "junk.mid"
    junk.write_bytes(b"RIFF not a midi file at all")
    with pytest.raises(PianoSSMError, match="not a readable MIDI"):
        load_midi(junk)
    empty = tmp_path / "empty.mid"
    pretty_midi.PrettyMIDI().write(str(empty))
    with pytest.raises(PianoSSMError, match="no notes"):
        load_midi(empty)
