"""``pianossm align`` / ``align-timing`` end to end, and clear errors for bad inputs."""

import json
import os
import shutil

import numpy as np
import pretty_midi
import pytest
import soundfile as sf

from pianossm.align.api import align_notes
from pianossm.align.features import SAMPLE_RATE, check_audio
from pianossm.align.notes import Notes, midi_to_notes
from pianossm.cli import main
from pianossm.errors import PianoSSMError

needs_fluidsynth = pytest.mark.skipif(shutil.which("fluidsynth") is None,
                                      reason="needs the fluidsynth program")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A rendered 6 s piece (audio + exact MIDI) and a copy 50 ms late."""
    from pianossm.align.pieces import generate_piece
    from pianossm.fluid import render_fluidsynth

    if shutil.which("fluidsynth") is None:
        pytest.skip("needs the fluidsynth program")
    d = tmp_path_factory.mktemp("cli")
    midi = generate_piece(seed=77, seconds=6.0)
    midi.write(str(d / "exact.mid"))
    audio = render_fluidsynth(d / "exact.mid", 22050, "fluidr3")
    sf.write(d / "audio.wav", audio, 22050)
    for inst in midi.instruments:
        for n in inst.notes:
            n.start, n.end = n.start + 0.05, n.end + 0.05
    midi.write(str(d / "late.mid"))
    return d


def _one_line_error(capsys, argv, match):
    assert main(argv) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and match in err[0], err


@needs_fluidsynth
def test_align_cli_writes_every_note(files, capsys):
    out, report = files / "out.mid", files / "report.csv"
    assert main(["align", str(files / "audio.wav"), str(files / "late.mid"), "-o", str(out),
                 "--report", str(report), "--method", "dtw+crnn"]) == 0
    exact, got = midi_to_notes(str(files / "exact.mid")), midi_to_notes(str(out))
    assert len(got) == len(exact)
    # a MIDI file keeps its notes in time order: compare key by key, in time
    a, b = np.lexsort((exact.onset, exact.pitch)), np.lexsort((got.onset, got.pitch))
    np.testing.assert_array_equal(got.pitch[b], exact.pitch[a])
    np.testing.assert_array_equal(got.velocity[b], exact.velocity[a])
    assert np.median(np.abs(got.onset[b] - exact.onset[a])) < 0.02
    pedal_in = [c for c in pretty_midi.PrettyMIDI(str(files / "late.mid")).instruments[0]
                .control_changes if c.number == 64]
    pedal_out = [c for c in pretty_midi.PrettyMIDI(str(out)).instruments[0].control_changes
                 if c.number == 64]
    assert [c.value for c in pedal_in] == [c.value for c in pedal_out]
    lines = report.read_text().splitlines()
    assert len(lines) == len(exact) + 1 and lines[0].endswith(",shift_ms,confidence")
    sure = np.array([float(line.split(",")[-1]) for line in lines[1:]])
    assert np.all((sure >= 0) & (sure <= 1))
    err = capsys.readouterr().err
    assert f"; {np.sum(sure < 0.4)} unsure (confidence below 0.4, see {report})" in err
    _one_line_error(capsys, ["align", str(files / "audio.wav"), str(files / "late.mid"),
                             "-o", str(out)], "output exists")


@needs_fluidsynth
def test_timing_report_measures_a_known_delay(files):
    from pianossm.align.timing import synthesis_timing_report

    audio, sr = sf.read(files / "audio.wav", dtype="float32")
    rep = synthesis_timing_report(audio, sr, files / "exact.mid")
    assert rep["median_ms"] < 15 and rep["n"] > 10
    late = np.concatenate([np.zeros(int(0.03 * sr), np.float32), audio])
    rep = synthesis_timing_report(late, sr, files / "exact.mid")
    assert abs(rep["bias_ms"] - 30) < 8, rep


def test_silent_audio_is_refused(tmp_path, capsys):
    sf.write(tmp_path / "silent.wav", np.zeros(SAMPLE_RATE * 2, np.float32), SAMPLE_RATE)
    midi = pretty_midi.PrettyMIDI()
    midi.instruments.append(pretty_midi.Instrument(0))
    midi.instruments[0].notes.append(pretty_midi.Note(80, 60, 0.1, 0.5))
    midi.write(str(tmp_path / "one.mid"))
    _one_line_error(capsys, ["align", str(tmp_path / "silent.wav"), str(tmp_path / "one.mid"),
                             "-o", str(tmp_path / "o.mid")], "silent")


def test_midi_without_notes_is_refused(tmp_path, capsys):
    rng = np.random.default_rng(0)
    sf.write(tmp_path / "a.wav", 0.1 * rng.normal(size=SAMPLE_RATE), SAMPLE_RATE)
    pretty_midi.PrettyMIDI().write(str(tmp_path / "empty.mid"))
    _one_line_error(capsys, ["align", str(tmp_path / "a.wav"), str(tmp_path / "empty.mid"),
                             "-o", str(tmp_path / "o.mid")], "no notes")


def test_audio_much_shorter_than_midi_is_refused():
    rng = np.random.default_rng(1)
    audio = (0.1 * rng.normal(size=SAMPLE_RATE * 2)).astype(np.float32)
    notes = Notes(np.arange(0.0, 60.0, 0.5), np.arange(0.0, 60.0, 0.5) + 0.4,
                  np.full(120, 60), np.full(120, 64))
    with pytest.raises(PianoSSMError, match="lasts 2.0 s"):
        align_notes(audio, notes, "dtw")


def test_bad_method_and_bad_audio():
    rng = np.random.default_rng(2)
    audio = (0.1 * rng.normal(size=SAMPLE_RATE)).astype(np.float32)
    notes = Notes(np.array([0.1]), np.array([0.5]), np.array([60]), np.array([64]))
    with pytest.raises(PianoSSMError, match="unknown alignment method 'hmm'"):
        align_notes(audio, notes, "hmm")
    with pytest.raises(PianoSSMError, match="NaN"):
        check_audio(np.array([0.0, np.nan] * 2000), SAMPLE_RATE)
    with pytest.raises(PianoSSMError, match="too short"):
        check_audio(np.ones(100), SAMPLE_RATE)


def test_missing_files_are_refused(tmp_path, capsys):
    _one_line_error(capsys, ["align", str(tmp_path / "no.wav"), str(tmp_path / "no.mid"),
                             "-o", str(tmp_path / "o.mid")], "not found")


@needs_fluidsynth
def test_align_data_renders_given_midi_files(files, tmp_path, capsys):
    """``align-data --midi``: items named after the files, their notes those of the files,
    the same seed giving the same audio, and one clear error for a missing path."""
    from pianossm.align.data import PIANOS, list_items, load_item
    from pianossm.align.latency import sound_onsets

    src = tmp_path / "midi"
    src.mkdir()
    shutil.copy(files / "exact.mid", src / "first.mid")
    shutil.copy(files / "late.mid", src / "second.mid")
    outs = []
    for name in ("a", "b"):
        out = tmp_path / name
        assert main(["align-data", str(out), "--midi", str(src), "--seeds", "40:40",
                     "--room", "dry"]) == 0
        outs.append(out)
    stems = [p.rsplit("/", 1)[-1] for p in list_items(str(outs[0]))]
    assert stems == ["first", "second"]
    for stem, source in (("first", "exact.mid"), ("second", "late.mid")):
        _, notes = load_item(str(outs[0] / stem))
        want = midi_to_notes(str(files / source))
        with np.load(outs[0] / f"{stem}.npz") as z:
            meta = json.loads(str(z["meta"]))
        assert meta["labels"] == "sound"
        # labelled where each note starts to sound in the render (its duration kept)
        at = sound_onsets(want, PIANOS["fluidr3"], meta["program"])
        np.testing.assert_allclose(notes.onset, at)
        np.testing.assert_allclose(notes.offset - notes.onset, want.offset - want.onset)
        assert np.all((at - want.onset > 0.003) & (at - want.onset < 0.015))
        np.testing.assert_array_equal(notes.pitch, want.pitch)
        a, _ = sf.read(outs[0] / f"{stem}.flac")
        b, _ = sf.read(outs[1] / f"{stem}.flac")
        np.testing.assert_array_equal(a, b)
    capsys.readouterr()
    _one_line_error(capsys, ["align-data", str(tmp_path / "c"), "--midi",
                             str(tmp_path / "nowhere")], "no such file or folder")


def _one_piece_data(files, tmp_path):
    """``align-data --midi``: a training folder of the fixture's piece (dry room)."""
    src = tmp_path / "midi"
    src.mkdir()
    shutil.copy(files / "exact.mid", src / "a.mid")
    data = tmp_path / "data"
    assert main(["align-data", str(data), "--midi", str(src), "--seeds", "41:41",
                 "--room", "dry"]) == 0
    return data


@needs_fluidsynth
def test_align_train_widens_an_init_checkpoint(files, tmp_path, capsys):
    """``align-train --init CKPT --local-harmonics 2``: the run starts from the checkpoint's
    weights with the per-key path added at zero, and training moves that path (its
    gradient is not cut off)."""
    import torch

    from pianossm.align.model import AlignCRNN, CRNNConfig, load_crnn, save_crnn

    data = _one_piece_data(files, tmp_path)
    torch.manual_seed(0)
    init = AlignCRNN(CRNNConfig(channels=4, hidden=8, proj=16))
    save_crnn(tmp_path / "init.pt", init, step=0)
    init, _ = load_crnn(tmp_path / "init.pt")  # as the run reads it (float16 weights)
    run = tmp_path / "run"
    assert main(["align-train", str(data), "--run", str(run), "--init",
                 str(tmp_path / "init.pt"), "--local-harmonics", "2", "--key-context", "2",
                 "--key-lr-scale", "5", "--steps", "2", "--save-every", "1", "--seconds", "4",
                 "--batch", "2", "--lr", "1e-3"]) == 0
    model, payload = load_crnn(run / "last.pt")
    assert model.config.local_head and model.config.local_harmonics == 2
    assert model.config.key_context == 2 and model.config.key_dilations == [2, 4]
    assert payload["step"] == 2 and model.config.channels == 4
    assert payload["label_latency"] == 0.0  # align-data labels at the sound
    assert float(model.local.weight.detach().abs().max()) > 0
    assert float(model.harm.weight.detach().abs().max()) > 0
    assert float(model.key_out.weight.detach().abs().max()) > 0
    # the per-key temporal path trains in its own group at 5 times the rate
    rest, key = payload["optimizer"]["param_groups"]
    assert key["scale"] == 5.0 and key["lr"] == pytest.approx(5 * rest["lr"])
    names = [n for n, _ in model.named_parameters()]
    assert [names[i] for i in key["params"]] == [n for n in names if n.startswith("key_")]
    # every other weight started from the checkpoint: two Adam steps of 1e-3 move each by
    # at most about 2e-3
    for name, w in init.state_dict().items():
        if w.is_floating_point() and "running" not in name:
            assert float((model.state_dict()[name] - w).abs().max()) < 3e-3, name
    # resumed with another multiple: this run's recipe sets the rate
    assert main(["align-train", str(data), "--run", str(run), "--key-lr-scale", "2",
                 "--steps", "3", "--save-every", "1", "--seconds", "4", "--batch", "2",
                 "--lr", "1e-3"]) == 0
    _, payload = load_crnn(run / "last.pt")
    rest, key = payload["optimizer"]["param_groups"]
    assert payload["step"] == 3 and key["scale"] == 2.0
    assert key["lr"] == pytest.approx(2 * rest["lr"])
    capsys.readouterr()


def test_augment_velocity_keeps_the_order_of_loudness_or_flattens():
    """One segment in five gets one constant velocity; the others keep the velocities'
    order (up to the noise: rank correlation high), all within 1..127."""
    from scipy.stats import spearmanr

    from pianossm.align.data import augment_velocity

    rng = np.random.default_rng(0)
    v = rng.integers(20, 120, 200)
    flat = 0
    for _ in range(200):
        out = augment_velocity(v, rng)
        assert out.dtype == np.int64 and out.min() >= 1 and out.max() <= 127
        if len(np.unique(out)) == 1:
            flat += 1
            assert 40 <= out[0] <= 100
        else:
            assert spearmanr(v, out).statistic > 0.9
    assert 20 <= flat <= 60


def _samples_with_one_more_channel(stems, seed, **extra):
    """Three segments drawn with and without one more input channel (``extra``: the
    :class:`SegmentDataset` flag): the other channels, targets and pairs are the same;
    returns ``(input without it, the extra channel)`` of each."""
    from pianossm.align.data import SegmentDataset
    from pianossm.align.perturb import PerturbConfig

    base = SegmentDataset(stems, 400, PerturbConfig(), seed=seed)
    wide = SegmentDataset(stems, 400, PerturbConfig(), seed=seed, **extra)
    out = []
    for _ in range(3):
        (x, y, p), (xw, yw, pw) = base.sample(), wide.sample()
        assert xw.shape == (4, 400, 88)
        np.testing.assert_array_equal(xw[:3], x)
        np.testing.assert_array_equal(yw, y)
        np.testing.assert_array_equal(pw, p)
        out.append((x, xw[3]))
    return out


@needs_fluidsynth
def test_align_train_velocity_channel(files, tmp_path, capsys):
    """``align-train --init CKPT --velocity`` (and ``--focal``, recorded in the
    recipe): the dataset adds the perturbed notes'
    (augmented) velocities as a fourth channel from its own random stream (the other three
    channels are those drawn without it), training moves the channel's weights, and a
    resumed run continues that stream where it stopped."""
    import torch

    from pianossm.align.data import list_items
    from pianossm.align.model import AlignCRNN, CRNNConfig, load_crnn, save_crnn

    data = _one_piece_data(files, tmp_path)
    for x, extra in _samples_with_one_more_channel(list_items(str(data)), 3, velocity=True):
        np.testing.assert_array_equal(extra > 0, x[2] > 0)
    torch.manual_seed(0)
    save_crnn(tmp_path / "init.pt", AlignCRNN(CRNNConfig(channels=4, hidden=8, proj=16)),
              step=0)
    args = ["--init", str(tmp_path / "init.pt"), "--velocity", "--save-every", "1",
            "--seconds", "4", "--batch", "2", "--lr", "1e-3", "--focal", "1.5"]
    assert main(["align-train", str(data), "--run", str(tmp_path / "a"), "--steps", "3",
                 *args]) == 0
    model, straight = load_crnn(tmp_path / "a" / "last.pt")
    assert model.config.velocity and straight["step"] == 3
    assert straight["train_config"]["focal"] == 1.5
    assert float(model.block1[0].weight[:, 3].detach().abs().max()) > 0
    assert float(model.proj[0].weight[:, -88:].detach().abs().max()) > 0
    run = tmp_path / "b"
    assert main(["align-train", str(data), "--run", str(run), "--steps", "2", *args]) == 0
    assert main(["align-train", str(data), "--run", str(run), "--steps", "3", *args]) == 0
    _, resumed = load_crnn(run / "last.pt")
    assert resumed["step"] == 3
    assert resumed["vel_rng"].bit_generator.state == straight["vel_rng"].bit_generator.state
    assert resumed["rng"].bit_generator.state == straight["rng"].bit_generator.state
    capsys.readouterr()


@needs_fluidsynth
def test_align_train_plain_cqt_channel(files, tmp_path):
    """``scripts/align_wpe_data.py`` stores the recording's own CQT beside the WPE one
    (and adds it to a folder written before it existed); ``SegmentDataset(plain_cqt=True)``
    appends it, level and EQ augmented as the first channel, the other channels those
    drawn without it; ``align-train --plain-cqt`` trains its weights; ``predict_rolls``
    refuses such a network without it."""
    import subprocess
    import sys

    import torch

    from pianossm.align.api import predict_rolls
    from pianossm.align.data import _augment_cqt, list_items, load_item
    from pianossm.align.model import AlignCRNN, CRNNConfig, load_crnn, save_crnn

    data = _one_piece_data(files, tmp_path)
    wpe = tmp_path / "wpe"
    script = os.path.join(os.path.dirname(__file__), "..", "scripts", "align_wpe_data.py")
    run = [sys.executable, script, str(data), str(wpe), "--taps", "3"]
    subprocess.run(run, check=True, capture_output=True)
    (stem,) = list_items(str(wpe))
    with np.load(stem + ".npz") as z:
        fields = {k: z[k] for k in z.files}
    np.testing.assert_array_equal(fields["cqt_plain"],
                                  load_item(list_items(str(data))[0])[0].astype(np.float16))
    assert not np.array_equal(fields["cqt"], fields["cqt_plain"])
    with open(stem + ".npz", "wb") as f:  # as written before cqt_plain existed
        np.savez(f, **{k: v for k, v in fields.items() if k != "cqt_plain"})
    subprocess.run(run, check=True, capture_output=True)
    with np.load(stem + ".npz") as z:
        np.testing.assert_array_equal(z["cqt_plain"], fields["cqt_plain"])
        np.testing.assert_array_equal(z["cqt"], fields["cqt"])

    (x, _), *_ = _samples_with_one_more_channel(list_items(str(wpe)), 5, plain_cqt=True)
    # the same augmentation on both: a CQT given twice comes back twice the same
    a, b = _augment_cqt(x[0], np.random.default_rng(1), x[0].copy())
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, _augment_cqt(x[0], np.random.default_rng(1)))

    torch.manual_seed(0)
    save_crnn(tmp_path / "init.pt", AlignCRNN(CRNNConfig(channels=4, hidden=8, proj=16)),
              step=0)
    assert main(["align-train", str(wpe), "--run", str(tmp_path / "a"), "--steps", "2",
                 "--init", str(tmp_path / "init.pt"), "--plain-cqt", "--save-every", "1",
                 "--seconds", "4", "--batch", "2", "--lr", "1e-3"]) == 0
    model, _ = load_crnn(tmp_path / "a" / "last.pt")
    assert model.config.plain_cqt
    assert float(model.block1[0].weight[:, 3].detach().abs().max()) > 0
    # --plain-lr-scale multiplies the step's change of the channel's slices, no other
    start = load_crnn(tmp_path / "init.pt")[0]
    steps = {}
    for scale in ("1", "10"):
        assert main(["align-train", str(wpe), "--run", str(tmp_path / scale), "--steps", "1",
                     "--init", str(tmp_path / "init.pt"), "--plain-cqt", "--seconds", "4",
                     "--batch", "2", "--lr", "1e-3", "--plain-lr-scale", scale]) == 0
        steps[scale] = load_crnn(tmp_path / scale / "last.pt")[0].state_dict()
    w0 = start.state_dict()["block1.0.weight"]
    d1 = steps["1"]["block1.0.weight"][:, 3] - 0.0  # the channel starts at zero
    torch.testing.assert_close(steps["10"]["block1.0.weight"][:, 3], 10 * d1)
    torch.testing.assert_close(steps["10"]["block1.0.weight"][:, :3],
                               steps["1"]["block1.0.weight"][:, :3])
    assert float((steps["1"]["block1.0.weight"][:, :3] - w0).abs().max()) > 0
    torch.testing.assert_close(steps["10"]["proj.0.weight"][:, -88:],
                               10 * steps["1"]["proj.0.weight"][:, -88:])
    for name in ("block2.0.weight", "rnn.weight_hh_l0", "head.bias"):
        torch.testing.assert_close(steps["10"][name], steps["1"][name])
    cqt = load_item(stem)[0]
    notes = load_item(stem)[1]
    with pytest.raises(PianoSSMError, match="own CQT"):
        predict_rolls(model.eval(), cqt, notes)
    assert predict_rolls(model.eval(), cqt, notes, plain=cqt).shape == (2, len(cqt), 88)


@needs_fluidsynth
def test_align_train_keeps_the_init_checkpoints_label_latency(files, tmp_path, capsys):
    """Fine-tuning a network whose labels sat ``L`` before the sound: the targets are the
    data's labels ``L`` earlier (the segments' notes), and the run's checkpoints carry ``L``
    (so ``align_notes`` moves its outputs as it did the init's)."""
    import torch

    from pianossm.align.data import SegmentDataset, list_items, load_item
    from pianossm.align.model import AlignCRNN, CRNNConfig, load_crnn, save_crnn
    from pianossm.align.perturb import PerturbConfig

    data = _one_piece_data(files, tmp_path)
    torch.manual_seed(0)
    save_crnn(tmp_path / "init.pt", AlignCRNN(CRNNConfig(channels=4, hidden=8, proj=16)),
              step=0, label_latency=0.0075)
    run = tmp_path / "run"
    assert main(["align-train", str(data), "--run", str(run), "--init",
                 str(tmp_path / "init.pt"), "--steps", "1", "--save-every", "1",
                 "--seconds", "4", "--batch", "2"]) == 0
    assert "label latency 7.50 ms" in capsys.readouterr().err
    assert load_crnn(run / "last.pt")[1]["label_latency"] == 0.0075
    stems = list_items(str(data))
    ds = SegmentDataset(stems, 100, PerturbConfig(), label_latency=0.0075)
    np.testing.assert_allclose(ds.items[0][1].onset, load_item(stems[0])[1].onset - 0.0075)


@needs_fluidsynth
def test_align_train_seed(files, tmp_path, capsys):
    """``align-train --seed``: recorded in the recipe; runs from one ``--init`` with the
    same seed are identical, with another seed they draw other segments and end elsewhere."""
    import torch

    from pianossm.align.model import AlignCRNN, CRNNConfig, load_crnn, save_crnn

    data = _one_piece_data(files, tmp_path)
    torch.manual_seed(0)
    save_crnn(tmp_path / "init.pt", AlignCRNN(CRNNConfig(channels=4, hidden=8, proj=16)),
              step=0)
    args = ["--init", str(tmp_path / "init.pt"), "--steps", "2", "--save-every", "1",
            "--seconds", "4", "--batch", "2", "--lr", "1e-3"]
    runs = {}
    for name, seed in (("a", "0"), ("b", "0"), ("c", "5")):
        assert main(["align-train", str(data), "--run", str(tmp_path / name), "--seed", seed,
                     *args]) == 0
        runs[name] = load_crnn(tmp_path / name / "last.pt")
    (a, pa), (b, pb), (c, pc) = runs["a"], runs["b"], runs["c"]
    assert pa["train_config"]["seed"] == 0 and pc["train_config"]["seed"] == 5
    assert pa["rng"].bit_generator.state == pb["rng"].bit_generator.state
    assert pa["rng"].bit_generator.state != pc["rng"].bit_generator.state
    wa, wb, wc = (m.block1[0].weight.detach() for m in (a, b, c))
    torch.testing.assert_close(wa, wb)
    assert float((wa - wc).abs().max()) > 1e-6
    capsys.readouterr()
