"""The top-level Python API: README examples, bit-identity with the CLI, inputs, errors."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

import pianossm
from pianossm.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"


def _readme_python_api() -> str:
    """The python code blocks of the README's "Python API" section."""
    text = README.read_text()
    section = text.split("## Python API", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert blocks, "no python example in the README's Python API section"
    return "\n".join(blocks)


def test_readme_python_api_examples_run(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    scope: dict[str, object] = {}
    exec(compile(_readme_python_api(), "README.md:Python API", "exec"), scope)  # noqa: S102
    assert (tmp_path / "demo.wav").is_file()
    assert scope["block"].shape == (256,)  # type: ignore[union-attr]


def test_all_names_resolve() -> None:
    for name in pianossm.__all__:
        assert getattr(pianossm, name) is not None, name
    with pytest.raises(AttributeError):
        pianossm.no_such_name  # noqa: B018


def test_synthesize_equals_cli_render_bit_for_bit(tmp_path) -> None:
    audio, rate = pianossm.synthesize(pianossm.DEMO_MIDI)
    out = tmp_path / "cli.wav"
    assert main(["render", "-o", str(out), "--bits", "float", "-q"]) == 0
    written, file_rate = sf.read(out, dtype="float32")
    assert file_rate == rate == 16000
    assert written.dtype == audio.dtype and np.array_equal(written, audio)
    # 16-bit: the CLI's file equals the same samples through the same writer
    from pianossm.audio import AudioWriter

    cli16, ours = tmp_path / "cli16.wav", tmp_path / "ours16.wav"
    assert main(["render", pianossm.DEMO_MIDI, "-o", str(cli16), "-q"]) == 0
    with AudioWriter(ours, rate, "16") as w:
        w.write(audio)
    assert cli16.read_bytes() == ours.read_bytes()


def test_stdin_stdout_pipe_matches_file(tmp_path) -> None:
    out = tmp_path / "f.wav"
    assert main(["render", pianossm.DEMO_MIDI, "-o", str(out), "-q"]) == 0
    midi = Path(pianossm.DEMO_MIDI).read_bytes()
    proc = subprocess.run([sys.executable, "-m", "pianossm", "render", "-", "-o", "-", "-q"],
                          input=midi, capture_output=True, check=True, timeout=300)
    assert proc.stdout == out.read_bytes()


def test_inputs_path_bytes_prettymidi_notes_agree(tmp_path) -> None:
    import pretty_midi

    notes = [(60, 80, 0.0, 0.4), (67, 100, 0.2, 0.9)]
    pm = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(0)
    piano.notes = [pretty_midi.Note(v, p, s, e) for p, v, s, e in notes]
    pm.instruments.append(piano)
    buf = io.BytesIO()
    pm.write(buf)
    a, _ = pianossm.synthesize(notes, max_seconds=0.5)
    b, _ = pianossm.synthesize(pm, max_seconds=0.5)
    c, _ = pianossm.synthesize(buf.getvalue(), max_seconds=0.5)
    (tmp_path / "n.mid").write_bytes(buf.getvalue())
    d, _ = pianossm.synthesize(tmp_path / "n.mid", max_seconds=0.5)
    assert np.array_equal(a, b) and np.array_equal(c, d)  # a file's ticks round the times
    assert len(a) == 8000 and np.abs(a).max() > 0


def test_options_rate_tail_head_and_alias_mode_restored() -> None:
    model = pianossm.load_model()
    notes = [(60, 90, 0.0, 0.5)]
    audio, rate = pianossm.synthesize(notes, model, sample_rate=24000, head=0, tail=0.25,
                                      alias_mode="clamp")
    assert rate == 24000 and len(audio) == round(0.75 * 24000)
    assert model.blocks[0].ssm.alias_mode == "none"  # the caller's model is left as it was
    seen: list[tuple[float, float]] = []
    pianossm.synthesize(notes, model, progress=lambda d, t: seen.append((d, t)))
    assert seen and seen[-1][0] == pytest.approx(seen[-1][1]) == pytest.approx(0.5)


@pytest.mark.parametrize(("midi", "message"), [
    ([], "no notes"), ([(60, 80, 1.0, 0.5)], "bad note"), ([(200, 80, 0.0, 1.0)], "bad note"),
    ([(60, 80)], "must be (pitch"), (b"not midi", "not readable MIDI"), (3.5, "cannot read"),
    ("missing.mid", "MIDI file not found")])
def test_bad_input_is_one_clear_error(midi: object, message: str) -> None:
    with pytest.raises(pianossm.PianoSSMError, match=re.escape(message)):
        pianossm.synthesize(midi)


def test_render_refuses_to_overwrite_and_leaves_no_partial_file(tmp_path) -> None:
    out = tmp_path / "x.wav"
    out.write_bytes(b"keep")
    with pytest.raises(pianossm.PianoSSMError, match="--force"):
        pianossm.render([(60, 80, 0.0, 0.2)], out)
    assert out.read_bytes() == b"keep"
    with pytest.raises(pianossm.PianoSSMError, match="head"):
        pianossm.render([(60, 80, 0.0, 0.2)], tmp_path / "y.wav", head="nope")
    assert os.listdir(tmp_path) == ["x.wav"]


def test_cli_choices_need_no_torch_and_match_the_library() -> None:
    from pianossm.alias import ALIAS_MODES
    from pianossm.options import ALIAS_MODE_NAMES, FRAME_GRIDS
    from pianossm.render import FRAME_GRIDS as RENDER_GRIDS

    assert ALIAS_MODE_NAMES == ALIAS_MODES and FRAME_GRIDS is RENDER_GRIDS
    code = ("import sys, pianossm.cli; pianossm.cli.build_parser(); import pianossm; "
            "print(sorted(m for m in ('torch', 'numba', 'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=60).stdout
    assert out.strip() == "[]"


def test_module_render_is_callable_as_the_function(tmp_path) -> None:
    import pianossm.render as module

    res = module([(60, 80, 0.0, 0.2)], tmp_path / "m.wav")
    assert res.seconds == pytest.approx(0.2) and (tmp_path / "m.wav").is_file()
