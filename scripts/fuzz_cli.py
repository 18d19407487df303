"""Fuzz every file-reading command with seeded generated input and count the outcomes.

    python scripts/fuzz_cli.py --cases 2000 [--seed 0] [--timeout 60] [--per-command N]

``--cases`` is the total over the commands (render gets half: MIDI is the input users
bring from anywhere); ``--per-command N`` runs N for each command instead.  Each case
runs ``pianossm.cli.main`` in a long-lived worker process (forked, so torch is imported
once); a case running past ``--timeout`` is a hang and its
worker is replaced.  Outcomes per command:

* ``ok``: exit 0 and a readable output;
* ``clean``: exit 1 with exactly one ``pianossm: error:`` line and no traceback;
* ``traceback``: any other exception or exit status;
* ``hang``: ran past the timeout;
* ``partial``: a temporary file of ours left, an output left after a failure, or an
  output that does not read back (audio, checkpoint, MIDI, CSV).

Exit status 1 when any traceback, hang or partial file was seen.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
import time
import traceback
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fuzz_inputs import (  # noqa: E402
    audio_case,
    checkpoint_case,
    make_fixtures,
    midi_case,
)

COLUMNS = ["cases", "ok", "clean", "traceback", "hang", "partial"]
#: Their headings in the table.
HEADINGS = ["cases", "output produced", "clean errors", "tracebacks", "hangs",
            "partial files left"]
#: Share of the cases per command.
WEIGHTS = {"render": 0.5, "render --model": 0.06, "import-checkpoint": 0.06,
           "info --model": 0.04, "evaluate": 0.08, "align": 0.08, "align-timing": 0.08,
           "train --resume": 0.1}


def _worker(conn: mp.connection.Connection) -> None:
    import torch

    from pianossm.cli import main

    torch.set_num_threads(1)
    while True:
        argv = conn.recv()
        err = io.StringIO()
        tb = None
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                rc = main(argv)
            except SystemExit as exc:
                rc = exc.code if isinstance(exc.code, int) else 2
            except BaseException:  # noqa: BLE001  (that is what we count)
                rc, tb = -1, traceback.format_exc()
        conn.send((rc, err.getvalue(), tb))


class Runner:
    """One worker process; :meth:`run` gives ``(rc, stderr, traceback)`` or ``None`` on a
    timeout (the worker is then replaced)."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._start()

    def _start(self) -> None:
        ctx = mp.get_context("fork")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker, args=(child,), daemon=True)
        self.proc.start()

    def run(self, argv: list[str]) -> tuple[int, str, str | None] | None:
        self.conn.send(argv)
        if self.conn.poll(self.timeout):
            try:
                return self.conn.recv()
            except EOFError:  # the worker died (a crash of native code)
                self.proc.join()
                self._start()
                return -9, "worker died", "worker died"
        self.proc.kill()
        self.proc.join()
        self._start()
        return None

    def close(self) -> None:
        self.proc.kill()


def _readable(path: Path) -> bool:
    """Whether an output reads back whole."""
    try:
        if path.suffix in (".wav", ".flac"):
            import soundfile as sf

            return sf.info(str(path)).frames > 0 and len(sf.read(str(path))[0]) > 0
        if path.suffix == ".pt":
            from pianossm.checkpoint import load_checkpoint

            load_checkpoint(path)
            return True
        if path.suffix == ".mid":
            import mido

            mido.MidiFile(str(path))
            return True
        return path.stat().st_size > 0
    except Exception:  # noqa: BLE001
        return False


def _case(command: str, rng: np.random.Generator, case_dir: Path, fx: dict[str, Path],
          ) -> tuple[list[str], Path]:
    """The argv of one case and its output path."""
    out_dir = case_dir / "out"
    out_dir.mkdir()
    if command == "render":
        midi = midi_case(rng, case_dir / "in.mid")
        out = out_dir / ("o.flac" if rng.random() < 0.2 else "o.wav")
        argv = ["render", str(midi), "-o", str(out), "--model", str(fx["model"]), "-q"]
        if rng.random() < 0.1:
            argv = argv[:4] + ["-q"]  # the built-in model
        return argv, out
    if command in ("render --model", "info --model", "import-checkpoint"):
        ckpt = checkpoint_case(rng, case_dir / ("in.pth" if "import" in command else "in.pt"),
                               fx)
        out = out_dir / ("o.pt" if "import" in command else "o.wav")
        if command == "render --model":
            return ["render", str(fx["midi"]), "-o", str(out), "--model", str(ckpt), "-q"], out
        if command == "info --model":
            return ["info", "--model", str(ckpt)], out_dir / "none"
        return ["import-checkpoint", str(ckpt), "-o", str(out), "--train-sample-rate",
                "16000"], out
    if command == "evaluate":
        wavs = case_dir / "wavs"
        wavs.mkdir()
        audio_case(rng, wavs / f"{fx['eval_name']}.wav")
        out = out_dir / "scores.csv"
        return ["evaluate", "--data", str(fx["cache"]), "--wavs", str(wavs), "--split",
                "validation", "--seconds", "1", "--csv", str(out)], out
    if command in ("align", "align-timing"):
        audio = audio_case(rng, case_dir / "in.wav")
        midi = midi_case(rng, case_dir / "in.mid", short=True) if rng.random() < 0.3 \
            else fx["midi"]
        if command == "align-timing":
            return ["align-timing", str(audio), str(midi)], out_dir / "none"
        out = out_dir / "aligned.mid"
        return ["align", str(audio), str(midi), "-o", str(out), "--method",
                str(rng.choice(["dtw", "crnn", "dtw+crnn"]))], out
    # train --resume: a (possibly broken) last.pt, maybe with a changed config
    run = out_dir / "run"
    run.mkdir()
    checkpoint_case(rng, run / "last.pt", fx, training=True)
    changes = [[], [], ["--lr", "0.01"], ["--batch", "1"], ["--seed", "9"], ["--d-state", "6"],
               ["--steps", "6"], ["--log-every", "2"]]
    extra = changes[int(rng.integers(0, len(changes)))]
    return ["train", "--data", str(fx["cache"]), "--out", str(run), "--resume", "-q",
            *fx["train_args"], *extra], run / "last.pt"


def _outcome(res: tuple[int, str, str | None] | None, out: Path, case_dir: Path,
             before: bytes | None) -> str:
    leftovers = list(case_dir.rglob(".pianossm-*"))
    if res is None:
        return "hang"
    rc, err, tb = res
    if leftovers:
        return "partial"
    if tb is not None or rc not in (0, 1) or "Traceback" in err:
        return "traceback"
    if rc == 0:
        if out.name == "none" or (out.exists() and _readable(out)):
            return "ok"
        return "partial"
    lines = [ln for ln in err.splitlines() if ln.startswith("pianossm: error:")]
    if len(lines) != 1:
        return "traceback"
    if out.exists() and out.name != "last.pt":
        return "partial"  # a failed command must not leave its output
    if out.name == "last.pt" and out.exists() and before is not None \
            and out.is_file() and out.read_bytes() != before:
        return "partial"  # a refused resume must not touch the checkpoint
    return "clean"


def main() -> int:
    """Run the fuzzer and print the table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--cases", type=int, default=200, help="total cases (default 200)")
    ap.add_argument("--per-command", type=int, default=None,
                    help="instead: this many cases for every command")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds per case")
    ap.add_argument("--keep", action="store_true", help="keep failing cases' folders")
    ap.add_argument("--show", type=int, default=3, help="print this many failures")
    ap.add_argument("--errors", action="store_true",
                    help="also list the distinct clean error messages (paths shortened)")
    args = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="pianossm-fuzz-"))
    fx = make_fixtures(root / "fixtures")
    runner = Runner(args.timeout)
    counts = {c: Counter() for c in WEIGHTS}
    n_of = {c: args.per_command or max(1, round(w * args.cases)) for c, w in WEIGHTS.items()}
    shown, bad_dirs, start = 0, [], time.perf_counter()
    messages: Counter = Counter()
    try:
        for command, n in n_of.items():
            for i in range(n):
                rng = np.random.default_rng([args.seed, list(WEIGHTS).index(command), i])
                case_dir = root / "cases" / f"{command.split()[0]}-{i}"
                case_dir.mkdir(parents=True)
                argv, out = _case(command, rng, case_dir, fx)
                before = out.read_bytes() if out.name == "last.pt" and out.is_file() else None
                res = runner.run(argv)
                kind = _outcome(res, out, case_dir, before)
                if kind == "clean" and args.errors:
                    line = [ln for ln in res[1].splitlines() if ln.startswith("pianossm:")][0]
                    messages[f"{command}: " + line.replace(str(case_dir), "CASE").replace(
                        str(root), "ROOT")[:160]] += 1
                counts[command]["cases"] += 1
                counts[command][kind] += 1
                if kind in ("traceback", "hang", "partial"):
                    bad_dirs.append(case_dir)
                    if shown < args.show:
                        shown += 1
                        tail = (res[2] or res[1])[-1500:] if res else "(timeout)"
                        print(f"--- {kind}: pianossm {' '.join(argv)}\n{tail}",
                              file=sys.stderr)
                if not (args.keep and kind in ("traceback", "hang", "partial")):
                    shutil.rmtree(case_dir, ignore_errors=True)
    finally:
        runner.close()
    total = Counter()
    print(f"| command | {' | '.join(HEADINGS)} |")
    print("|---" * (len(COLUMNS) + 1) + "|")
    for command, c in counts.items():
        total.update(c)
        print(f"| {command} | {' | '.join(str(c[k]) for k in COLUMNS)} |")
    print(f"| **all** | {' | '.join(str(total[k]) for k in COLUMNS)} |")
    print(f"seed {args.seed}, {time.perf_counter() - start:.0f} s", file=sys.stderr)
    for msg, n in sorted(messages.items()):
        print(f"{n:5d}  {msg}", file=sys.stderr)
    if args.keep and bad_dirs:
        print(f"failing cases kept under {root / 'cases'}", file=sys.stderr)
    else:
        shutil.rmtree(root, ignore_errors=True)
    return int(any(total[k] for k in ("traceback", "hang", "partial")))


if __name__ == "__main__":
    sys.exit(main())
