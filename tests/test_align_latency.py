"""Labels at the sound: FluidSynth's delay from note-on to sound, modelled and measured."""

import io
import json
import shutil

import numpy as np
import pretty_midi
import pytest

from pianossm.align.latency import (
    BLOCK,
    RESOLUTION,
    block_wait,
    exact_midi,
    first_sound,
    measure_delays,
    sound_onsets,
)

SR = 16000
needs_fluidsynth = pytest.mark.skipif(shutil.which("fluidsynth") is None,
                                      reason="needs the fluidsynth program")


def test_block_wait_is_the_distance_to_the_next_block_start():
    onset = np.array([0, BLOCK, BLOCK + 1, 2 * BLOCK - 1, 5 * BLOCK + 0.5]) / SR
    want = np.array([0, 0, BLOCK - 1, 1, BLOCK - 0.5]) / SR
    np.testing.assert_allclose(block_wait(onset, SR), want, atol=1e-12)
    # a note-on a hair off a block start (float seconds) is on it
    assert block_wait(np.array([0.5 + 1e-12]), SR)[0] == 0.0


def test_first_sound_finds_a_known_attack():
    """Silence, a sine starting at sample 300 at -40 dB whose level rises 40 dB over
    20 ms: the -30 dB point is 5 ms in, the -60 dB point (below where it starts) at its
    start."""
    rng = np.random.default_rng(0)
    t = np.arange(4000) / SR
    env = np.where(t >= 300 / SR, 10 ** (np.minimum(t - 300 / SR, 0.02) * 2000 / 20 - 2), 0.0)
    audio = env * np.sin(2 * np.pi * 1000 * t + rng.uniform(0, 2 * np.pi))
    got = first_sound(audio, 0, SR)
    assert abs(got - (300 / SR + 0.005)) < 0.0006  # within a 1 kHz period
    assert first_sound(audio, 0, SR, below_db=60.0) == pytest.approx(300 / SR, abs=2 / SR)
    assert first_sound(np.zeros(100), 0, SR) == 0.1  # nothing sounds


def test_exact_midi_keeps_the_seconds_that_220_ticks_round():
    midi = pretty_midi.PrettyMIDI()
    inst = pretty_midi.Instrument(1)
    starts = 0.5 + np.arange(20) * 0.0137
    inst.notes = [pretty_midi.Note(velocity=60, pitch=60, start=s, end=s + 0.1) for s in starts]
    inst.control_changes = [pretty_midi.ControlChange(64, 127, 0.2513)]
    midi.instruments.append(inst)
    ours, theirs = exact_midi(midi), midi

    def reread(m):
        buf = io.BytesIO()
        m.write(buf)
        buf.seek(0)
        return pretty_midi.PrettyMIDI(buf)

    back = reread(ours)
    assert back.resolution == RESOLUTION and back.instruments[0].program == 1
    np.testing.assert_allclose([n.start for n in back.instruments[0].notes], starts, atol=3e-5)
    assert back.instruments[0].control_changes[0].time == pytest.approx(0.2513, abs=3e-5)
    # pretty_midi's default resolution rounds the same note-ons by up to 1.1 ms
    rounded = np.array([n.start for n in reread(theirs).instruments[0].notes])
    assert np.abs(rounded - starts).max() > 5e-4


@needs_fluidsynth
@pytest.mark.parametrize("soundfont", ["fluidr3", "musescore"])
def test_modelled_sound_onsets_match_measured_delays(soundfont):
    """The model (block wait + tabled attack) against the delays measured on isolated
    notes at random phases: the median within a sample, the mean within 0.5 ms."""
    from pianossm.align.data import PIANOS

    notes, delays = measure_delays(PIANOS[soundfont], 0, count=60, seed=3)
    err = sound_onsets(notes, PIANOS[soundfont]) - notes.onset - delays
    assert np.median(np.abs(err)) < 1.5 / SR
    assert abs(err.mean()) < 5e-4
    assert 0.004 < delays.mean() < 0.012  # FluidSynth renders sound 4-12 ms late


@needs_fluidsynth
def test_rendered_items_are_labelled_at_the_sound_and_old_ones_refused(tmp_path):
    from pianossm.align.data import PIANOS, build_rendered, check_labels, list_items, load_item
    from pianossm.align.notes import midi_to_notes
    from pianossm.align.pieces import generate_piece
    from pianossm.errors import PianoSSMError

    build_rendered(str(tmp_path), range(5, 6), ("fluidr3",), seconds=6.0, quiet=True,
                   rooms=("dry",))
    (stem,) = list_items(str(tmp_path))
    _, notes = load_item(stem)
    with np.load(stem + ".npz") as z:
        meta = json.loads(str(z["meta"]))
    piece = midi_to_notes(generate_piece(5, 6.0))
    want = sound_onsets(piece, PIANOS["fluidr3"], meta["program"])
    np.testing.assert_allclose(notes.onset, want, atol=1e-9)
    assert meta["sound_delay_ms"] == pytest.approx(1000 * np.mean(want - piece.onset), abs=1e-3)
    # the written MIDI says the same, to a tick
    np.testing.assert_allclose(np.sort(midi_to_notes(stem + ".mid").onset), np.sort(want),
                               atol=3e-5)
    check_labels([stem])
    with np.load(stem + ".npz") as z:
        arrays = {k: z[k] for k in z.files}
    del meta["labels"]
    np.savez(stem + ".npz", **{**arrays, "meta": json.dumps(meta)})
    with pytest.raises(PianoSSMError, match="older pianossm"):
        check_labels([stem])
    # ... and align-eval would score the aligner against a truth 6-10 ms before the sound
    from pianossm.align.evaluate import evaluate_folder
    from pianossm.align.perturb import PerturbConfig

    with pytest.raises(PianoSSMError, match="older pianossm"):
        evaluate_folder(str(tmp_path), ["dtw"], PerturbConfig())


@needs_fluidsynth
def test_shipped_network_carries_its_training_renders_latency():
    """The recipe (scripts/train_align.sh, stage 34, kept by its fine-tunings as stages 36,
    38 and 40): the shipped network's label latency is the measured mean delay of renders
    like its training data's."""
    from pianossm.align.data import PIANOS, TRAIN_PIANOS
    from pianossm.align.latency import mean_render_latency
    from pianossm.align.model import load_crnn

    _, payload = load_crnn()
    want = mean_render_latency(tuple(PIANOS[p] for p in TRAIN_PIANOS))
    assert payload["label_latency"] == pytest.approx(want, abs=1e-9)
