"""Real recordings of the shared test data (skipped where the folder is absent)."""

import os

import numpy as np
import pytest

from pianossm.align.api import align_notes
from pianossm.align.features import check_audio
from pianossm.align.notes import Notes, midi_to_notes
from pianossm.align.perturb import PerturbConfig, perturb_notes
from pianossm.audio import read_audio

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
REAL = os.path.join(os.environ.get("PIANO_SSM_SHARED", os.path.join(REPO, "..", "shared")),
                    "testdata", "real")
pytestmark = pytest.mark.skipif(not os.path.isdir(REAL), reason="shared test data absent")


@pytest.fixture(scope="module")
def madmom():
    audio, sr = read_audio(os.path.join(REAL, "madmom_stereo_sample.flac"))
    ann = np.loadtxt(os.path.join(REAL, "madmom_stereo_sample.notes"), ndmin=2)
    notes = Notes(ann[:, 0], ann[:, 0] + ann[:, 2], ann[:, 1].astype(np.int64),
                  ann[:, 3].astype(np.int64))
    return check_audio(audio, sr), notes


def test_madmom_perturbed_notes_come_back(madmom):
    audio, ref = madmom
    rng = np.random.default_rng(3)
    err_in, err_out = [], []
    for _ in range(3):
        bad = perturb_notes(ref, PerturbConfig(), rng)
        out = align_notes(audio, bad, "crnn")
        assert len(out) == len(ref)
        np.testing.assert_array_equal(out.pitch, ref.pitch)
        err_in.append(np.abs(bad.onset - ref.onset))
        err_out.append(np.abs(out.onset - ref.onset))
    assert np.mean(err_out) < np.mean(err_in)


def test_chopin_both_performances_align_in_order():
    score = midi_to_notes(os.path.join(REAL, "chopin_op10no3_m1-8_MIDI.mid"))
    for who, seconds in (("Igoshina", 36.5), ("Varsi", 22.4)):
        audio, sr = read_audio(os.path.join(REAL, f"chopin_op10no3_m1-8_{who}.wav"))
        out = align_notes(check_audio(audio, sr), score, "dtw+crnn")
        assert len(out) == len(score)
        assert 0 <= out.onset.min() and out.onset.max() < seconds
        order = np.argsort(score.onset, kind="stable")
        # notes the score puts later never come out more than 150 ms earlier
        assert np.all(np.diff(np.maximum.accumulate(out.onset[order])) >= 0)
        late = np.maximum.accumulate(out.onset[order]) - out.onset[order]
        assert late.max() < 0.15, who
