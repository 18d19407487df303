"""Fault injection: signals during render, batch render and training (checkpoint writes
included), a full disk, and concurrent renders.  Afterwards every output is absent or
complete, no temporary file of ours is left, and training resumes from the last complete
checkpoint."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pretty_midi
import pytest
import soundfile as sf

from pianossm.checkpoint import load_checkpoint, save_checkpoint
from pianossm.errors import PianoSSMError, Terminated
from pianossm.fsutil import TEMP_PREFIX, atomic_open, atomic_write, remove_stale

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def _sigint_default() -> None:
    """In the child: SIGINT as a terminal's Ctrl-C delivers it, even where this test runs
    under a shell that started it in the background (such a shell ignores SIGINT, the child
    would inherit that, and Python then installs no KeyboardInterrupt handler)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "pianossm", *args]


def _temps(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(TEMP_PREFIX + "*"))


def _song(path: Path, seconds: float, rng: np.random.Generator) -> Path:
    pm, inst = pretty_midi.PrettyMIDI(), pretty_midi.Instrument(0)
    for t in np.arange(0.0, seconds - 0.5, 0.25):
        inst.notes.append(pretty_midi.Note(int(rng.integers(30, 110)),
                                           int(rng.integers(30, 100)), float(t), float(t + 0.4)))
    pm.instruments.append(inst)
    pm.write(str(path))
    return path


@pytest.fixture(scope="module")
def song(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """A 25 s MIDI file and the length in samples of its complete rendering."""
    root = tmp_path_factory.mktemp("song")
    midi = _song(root / "song.mid", 25.0, np.random.default_rng(7))
    subprocess.run(_cli("render", str(midi), "-o", str(root / "ref.wav"), "-q"), env=ENV,
                   check=True)
    return midi, sf.info(str(root / "ref.wav")).frames


def test_atomic_open_names_nothing_until_done(tmp_path: Path, rng: np.random.Generator) -> None:
    data = rng.bytes(5000)
    with atomic_open(tmp_path / "a.bin") as fd:
        os.write(fd, data)
        if hasattr(os, "O_TMPFILE"):  # unnamed on Linux: a SIGKILL now leaves nothing
            assert list(tmp_path.iterdir()) == []
    assert (tmp_path / "a.bin").read_bytes() == data
    with pytest.raises(RuntimeError), atomic_open(tmp_path / "a.bin") as fd:
        os.write(fd, b"half")
        raise RuntimeError("boom")
    assert (tmp_path / "a.bin").read_bytes() == data  # the previous file is kept
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin"]


def test_stale_temp_files_of_dead_processes_are_removed(tmp_path: Path) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f"{TEMP_PREFIX}{dead.pid}-deadbeef.wav"
    mine = tmp_path / f"{TEMP_PREFIX}{os.getpid()}-cafef00d.wav"
    other = tmp_path / ".pianossm-notes.txt"  # not our pattern: untouched
    for p in (stale, mine, other):
        p.write_bytes(b"x")
    assert remove_stale(tmp_path) == [str(stale)]
    atomic_write(tmp_path / "o.txt", lambda tmp: Path(tmp).write_text("ok"))
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [mine.name, other.name, "o.txt"])


def test_output_folder_and_output_that_is_a_folder_are_clean_errors(tmp_path: Path) -> None:
    with pytest.raises(PianoSSMError, match="does not exist"):
        atomic_write(tmp_path / "no" / "x.txt", lambda tmp: None)
    (tmp_path / "d.wav").mkdir()
    with pytest.raises(PianoSSMError, match="is a folder"), atomic_open(tmp_path / "d.wav"):
        pass


def test_sigterm_is_an_exception_that_cleans_up(tmp_path: Path) -> None:
    code = ("import os, signal, sys; from pianossm.errors import raise_on_termination, "
            "Terminated; from pianossm.fsutil import atomic_open\nraise_on_termination()\n"
            f"try:\n  with atomic_open({str(tmp_path / 'x.bin')!r}) as fd:\n"
            "    os.write(fd, b'part'); os.kill(os.getpid(), signal.SIGTERM)\n"
            "except Terminated as e:\n  sys.exit(128 + e.signum)\n")
    proc = subprocess.run([sys.executable, "-c", code], env=ENV)
    assert proc.returncode == 128 + signal.SIGTERM
    assert list(tmp_path.iterdir()) == []
    assert issubclass(Terminated, KeyboardInterrupt)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_signal_during_render_leaves_nothing_or_everything(song: tuple[Path, int],
                                                           tmp_path: Path, sig: int) -> None:
    midi, frames = song
    rng = np.random.default_rng(int(sig))
    for k, delay in enumerate(np.r_[0.15, rng.uniform(1.0, 5.0, size=1)]):
        out = tmp_path / f"o{k}.wav"
        proc = subprocess.Popen(_cli("render", str(midi), "-o", str(out), "-q"), env=ENV,
                                stderr=subprocess.PIPE, text=True, preexec_fn=_sigint_default)
        time.sleep(delay)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
        assert "Traceback" not in err, err
        if out.exists():  # finished before the signal: it must be whole
            assert sf.info(str(out)).frames == frames
        elif sig != signal.SIGKILL:
            # 130/143 from the handler, or the signal itself before Python took it over
            assert proc.returncode in (130, 143, -sig), (proc.returncode, err)
            assert len(err.strip().splitlines()) <= 1, err
        assert _temps(tmp_path) == []


def test_sigterm_during_batch_render(song: tuple[Path, int], tmp_path: Path) -> None:
    midi, frames = song
    src = tmp_path / "in"
    src.mkdir()
    for k in range(3):
        shutil.copy(midi, src / f"s{k}.mid")
    out = tmp_path / "out"
    proc = subprocess.Popen(_cli("render", str(src), "-o", str(out) + os.sep, "--jobs", "2",
                                 "-q"), env=ENV, stderr=subprocess.PIPE, text=True)
    time.sleep(7.0)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert "Traceback" not in err, err
    time.sleep(0.5)  # workers exit after the parent
    for wav in out.glob("*.wav") if out.exists() else []:
        assert sf.info(str(wav)).frames == frames
    assert _temps(tmp_path) == []


def test_two_renders_with_force_leave_one_complete_file(song: tuple[Path, int],
                                                        tmp_path: Path) -> None:
    midi, frames = song
    out = tmp_path / "same.wav"
    procs = [subprocess.Popen(_cli("render", str(midi), "-o", str(out), "--force", "-q"),
                              env=ENV) for _ in range(2)]
    assert [p.wait(timeout=300) for p in procs] == [0, 0]
    assert sf.info(str(out)).frames == frames
    assert sorted(p.name for p in tmp_path.iterdir()) == ["same.wav"]


def test_full_disk_gives_one_line_and_no_partial_file(song: tuple[Path, int],
                                                      tmp_path: Path) -> None:
    mnt = tmp_path / "small"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        midi, _ = song
        proc = subprocess.run(_cli("render", str(midi), "-o", str(mnt / "o.wav"), "-q"),
                              env=ENV, capture_output=True, text=True)
        assert proc.returncode == 1, proc.stderr
        assert proc.stderr.strip().splitlines() == [
            f"pianossm: error: cannot write {str(mnt / 'o.wav')!r}: the disk is full"]
        assert list(mnt.iterdir()) == []
        from pianossm.model import PianoSSM
        from pianossm.config import preset
        with pytest.raises(PianoSSMError, match="disk is full"):
            save_checkpoint(mnt / "big.pt", PianoSSM(preset("XL")))
        assert list(mnt.iterdir()) == []
    finally:
        subprocess.run(["umount", str(mnt)], check=False)


def _tone_cache(root: Path) -> str:
    from pianossm.data.cache import Item, build_cache

    rng = np.random.default_rng(0)
    items = []
    for k, split in enumerate(["train", "train", "validation"]):
        midi = _song(root / f"t{k}.mid", 3.0, rng)
        sf.write(str(root / f"t{k}.wav"), rng.normal(0, 0.05, 3 * 16000), 16000)
        items.append(Item(f"t{k}", str(midi), str(root / f"t{k}.wav"), split))
    build_cache(items, root / "cache", 16000, progress=False)
    return str(root / "cache")


TRAIN = ["--d-state", "4", "--batch", "2", "--crop-seconds", "0.2", "--warmup-steps", "2",
         "--restart-steps", "50", "--val-every", "7", "--ckpt-every", "1", "--log-every", "1",
         "--val-seconds", "1.0", "--val-max-windows", "1", "--seed", "3", "-q"]


def _wait_for(path: Path, proc: subprocess.Popen, after: float, timeout: float = 180) -> None:
    """Until ``path`` was modified after ``after`` (training is under way) or ``proc`` ends."""
    end = time.time() + timeout
    while time.time() < end and proc.poll() is None:
        if path.exists() and path.stat().st_mtime > after:
            return
        time.sleep(0.05)


def test_kill_during_training_resumes_from_last_complete_checkpoint(tmp_path: Path) -> None:
    cache = _tone_cache(tmp_path)
    out = tmp_path / "run"
    rng = np.random.default_rng(11)
    steps = 0
    for k, sig in enumerate([signal.SIGKILL, signal.SIGTERM, signal.SIGINT]):
        flag = ["--resume"] if (out / "last.pt").exists() else ["--force"]
        started = time.time()
        proc = subprocess.Popen(_cli("train", "--data", cache, "--out", str(out), "--steps",
                                     "100000", *TRAIN, *flag), env=ENV,
                                stderr=subprocess.PIPE, text=True, preexec_fn=_sigint_default)
        _wait_for(out / "last.pt", proc, started)  # checkpoints are now written every step
        time.sleep(float(rng.uniform(0.0, 1.5)))
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=120)
        assert "Traceback" not in err, err
        assert _temps(tmp_path) == [], k
        payload = load_checkpoint(out / "last.pt")  # never half-written
        assert payload["step"] > steps  # the resumed run went on from the previous one
        steps = payload["step"]
    done = subprocess.run(_cli("train", "--data", cache, "--out", str(out), "--steps",
                               str(steps + 2), *TRAIN, "--resume"), env=ENV,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert load_checkpoint(out / "last.pt")["step"] == steps + 2
    assert _temps(tmp_path) == []


def test_signal_swallowed_by_a_finaliser_still_stops_the_loop() -> None:
    # Python drops an exception raised in a __del__ or a ctypes callback (numba's compiler
    # has one): a SIGTERM or SIGINT that lands there must still stop the next step of a
    # training loop, and print no "Exception ignored" traceback; other exceptions dropped
    # so are still printed
    code = ("import gc, os, signal, sys\n"
            "from pianossm.errors import raise_on_termination, check_interrupted, Terminated\n"
            "raise_on_termination(); raise_on_termination()  # the hook is set once\n"
            "class Broken:\n"
            "    def __del__(self): raise ValueError('other')\n"
            "Broken(); gc.collect()\n"
            "class Finaliser:\n"
            "    def __del__(self):\n"
            "        os.kill(os.getpid(), {sig})\n"
            "        for _ in range(1000): pass  # the handler runs (and raises) in here\n"
            "Finaliser(); gc.collect()\n"
            "print('survived', flush=True)\n"
            "try:\n    check_interrupted()\n"
            "except Terminated as e:\n    sys.exit(128 + e.signum)\n"
            "except KeyboardInterrupt:\n    sys.exit(130)\n"
            "check_interrupted()  # once raised, the signal is spent\n"
            "sys.exit(0)\n")
    for sig, status in ((signal.SIGTERM, 143), (signal.SIGINT, 130)):
        proc = subprocess.run([sys.executable, "-c", code.format(sig=int(sig))], env=ENV,
                              capture_output=True, text=True, preexec_fn=_sigint_default)
        assert "survived" in proc.stdout, proc.stderr  # the finaliser did swallow it
        assert proc.stderr.count("Exception ignored") == 1, proc.stderr  # Broken's only
        assert "ValueError: other" in proc.stderr
        assert "KeyboardInterrupt" not in proc.stderr and "Terminated" not in proc.stderr
        assert proc.returncode == status, (sig, proc.returncode, proc.stderr)


def test_signal_inside_torch_save_is_reported_as_the_signal(tmp_path: Path) -> None:
    # torch's zip writer turns the exception of a handler that runs inside its write
    # callback into RuntimeError("unexpected pos ..."): the CLI reported "cannot write"
    # with status 1 after Ctrl-C; it must be the signal, and no file may stay
    code = ("import os, signal, sys\n"
            "import pianossm.checkpoint as ck\n"
            "from pianossm.errors import raise_on_termination, Terminated\n"
            "from pianossm.model import PianoSSM\nfrom pianossm.config import preset\n"
            "raise_on_termination()\n"
            "class Killing:\n"
            "    def __init__(self, f): self.f, self.n = f, 0\n"
            "    def write(self, b):\n"
            "        self.n += 1\n"
            "        if self.n == 3: os.kill(os.getpid(), {sig})\n"
            "        return self.f.write(b)\n"
            "    def flush(self): self.f.flush()\n"
            "    def __enter__(self): return self\n"
            "    def __exit__(self, *a): self.f.close()\n"
            "fdopen = os.fdopen\n"
            "ck.os.fdopen = lambda *a, **k: Killing(fdopen(*a, **k))\n"
            "try:\n    ck.save_checkpoint(sys.argv[1], PianoSSM(preset('S')))\n"
            "except Terminated as e:\n    sys.exit(128 + e.signum)\n"
            "except KeyboardInterrupt:\n    sys.exit(130)\n")
    for sig, status in ((signal.SIGTERM, 143), (signal.SIGINT, 130)):
        proc = subprocess.run([sys.executable, "-c", code.format(sig=int(sig)),
                               str(tmp_path / "m.pt")], env=ENV, capture_output=True,
                              text=True, preexec_fn=_sigint_default)
        assert proc.returncode == status, (sig, proc.returncode, proc.stderr)
        assert list(tmp_path.iterdir()) == []
