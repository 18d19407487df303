"""Batch rendering: many files into a folder, failures skipped, resuming, inputs."""

from __future__ import annotations

import numpy as np
import pretty_midi
import pytest
import soundfile as sf

import pianossm
from pianossm.batch import collect_midi, output_paths
from pianossm.cli import main


def make_midis(folder, n: int, seed: int = 0, seconds: float = 0.6) -> list[str]:
    """``n`` short random piano MIDI files (seeded)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        pm = pretty_midi.PrettyMIDI()
        piano = pretty_midi.Instrument(0)
        for _ in range(3):
            start = float(rng.uniform(0, seconds / 2))
            piano.notes.append(pretty_midi.Note(int(rng.integers(40, 100)),
                                                int(rng.integers(36, 96)), start,
                                                start + float(rng.uniform(0.1, seconds / 2))))
        pm.instruments.append(piano)
        path = folder / f"piece{i:02d}.mid"
        pm.write(str(path))
        paths.append(str(path))
    return paths


def test_batch_with_a_corrupt_file_then_resume(tmp_path, capsys) -> None:
    midis = make_midis(tmp_path / "in", 4)
    (tmp_path / "in" / "piece02.mid").write_bytes(b"MThd garbage")
    out = tmp_path / "out"
    assert main(["render", str(tmp_path / "in"), "-o", f"{out}/", "--jobs", "2", "-q"]) == 1
    err = capsys.readouterr().err.splitlines()
    errors = [ln for ln in err if ln.startswith("pianossm: error:")]
    assert len(errors) == 1 and "piece02.mid" in errors[0] and "not a readable MIDI" in errors[0]
    assert err[-1].startswith("rendered 3 of 4 files (1 failed, 0 skipped)")
    assert sorted(p.name for p in out.iterdir()) == ["piece00.wav", "piece01.wav", "piece03.wav"]
    # each output is what a single render writes
    one = tmp_path / "one.wav"
    assert main(["render", midis[3], "-o", str(one), "-q"]) == 0
    assert (out / "piece03.wav").read_bytes() == one.read_bytes()
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert main(["render", str(tmp_path / "in" / "*.mid"), "-o", str(out), "--skip-existing",
                 "-q", "--jobs", "1"]) == 1  # the corrupt file fails again
    err = capsys.readouterr().err.splitlines()
    assert err[-1].startswith("rendered 0 of 4 files (1 failed, 3 skipped)")
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before


def test_batch_all_good_exit_0_and_summary(tmp_path, capsys) -> None:
    midis = make_midis(tmp_path, 2, seed=1)
    out = tmp_path / "o"
    assert main(["render", *midis, "-o", str(out), "--jobs", "1", "--bits", "float"]) == 0
    last = capsys.readouterr().err.splitlines()[-1]
    assert last.startswith("rendered 2 of 2 files (0 failed, 0 skipped)") and "files/min" in last
    audio, rate = sf.read(out / "piece01.wav", dtype="float32")
    ref, ref_rate = pianossm.synthesize(midis[1])
    assert rate == ref_rate and np.array_equal(audio, ref)


def test_existing_outputs_stop_the_batch_before_it_starts(tmp_path, capsys) -> None:
    midis = make_midis(tmp_path, 2, seed=2)
    out = tmp_path / "o"
    out.mkdir()
    (out / "piece00.wav").write_bytes(b"keep")
    assert main(["render", *midis, "-o", str(out), "-q"]) == 1
    assert "--skip-existing" in capsys.readouterr().err
    assert (out / "piece00.wav").read_bytes() == b"keep" and len(list(out.iterdir())) == 1


def test_collect_folders_globs_and_same_name_refused(tmp_path) -> None:
    a = make_midis(tmp_path / "a", 2)
    b = make_midis(tmp_path / "b", 1)
    (tmp_path / "a" / "notes.txt").write_text("x")
    assert collect_midi([str(tmp_path / "a")]) == a
    assert collect_midi([str(tmp_path / "*" / "piece00.mid"), a[0]]) == [a[0], b[0]]
    with pytest.raises(pianossm.PianoSSMError, match="no files match"):
        collect_midi([str(tmp_path / "*.midi")])
    with pytest.raises(pianossm.PianoSSMError, match="both be written"):
        output_paths([a[0], b[0]], str(tmp_path / "o"))


@pytest.mark.parametrize(("argv", "message"), [
    (["-", "x.mid"], "takes one file"), (["--jobs", "0"], "--jobs must be at least 1"),
    (["x.mid", "y.mid", "-o", "out.wav"], "need an output folder")])
def test_batch_argument_errors(tmp_path, capsys, argv: list[str], message: str) -> None:
    (tmp_path / "x.mid").write_bytes(b"")
    if "-o" not in argv:
        argv = [*argv, "-o", f"{tmp_path}/o/"]
    assert main(["render", *argv]) == 1
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
