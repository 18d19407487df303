"""Peak memory of rendering a long MIDI file: bounded by the block, not by the file length.

Writes a deterministic MIDI file of ``--minutes`` minutes (random notes over all keys, chords
and pedal, seeded), renders it with ``pianossm render`` in a child process for each model and
rate asked for, and prints the child's peak resident set size (``ru_maxrss``) beside the
wall time and real-time factor.  A 1-minute file is rendered too, so the table shows whether
memory grows with length.

Run: ``python scripts/bench_memory.py [--minutes 30] [--model PATH --sample-rate HZ ...]``.
Default: the built-in model at its own rate.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np
import pretty_midi


def long_midi(path: str, minutes: float, seed: int = 0) -> int:
    """Write a ``minutes``-long piano performance to ``path``; return its note count."""
    rng = np.random.default_rng(seed)
    midi = pretty_midi.PrettyMIDI(initial_tempo=120)
    piano = pretty_midi.Instrument(program=0, name="piano")
    t, end = 0.0, minutes * 60.0
    while t < end:
        if rng.random() < 0.3:  # a chord
            for pitch in rng.choice(np.arange(36, 97), size=3, replace=False):
                piano.notes.append(pretty_midi.Note(int(rng.integers(30, 120)), int(pitch),
                                                    t, t + float(rng.uniform(0.2, 1.5))))
        else:
            pitch = int(rng.integers(21, 109))
            piano.notes.append(pretty_midi.Note(int(rng.integers(20, 127)), pitch, t,
                                                t + float(rng.uniform(0.05, 0.8))))
        if rng.random() < 0.05:
            piano.control_changes.append(pretty_midi.ControlChange(64, 100, t))
            piano.control_changes.append(pretty_midi.ControlChange(64, 0, t + 1.5))
        t += float(rng.uniform(0.05, 0.3))
    midi.instruments.append(piano)
    midi.write(path)
    return len(piano.notes)


def render_peak(midi: str, out: str, model: str | None, rate: int | None) -> tuple[float, float]:
    """Render in a child process; return (wall seconds, child peak RSS in MiB)."""
    cmd = [sys.executable, "-m", "pianossm", "render", midi, "-o", out, "--force", "-q"]
    if model:
        cmd += ["--model", model]
    if rate:
        cmd += ["--sample-rate", str(rate)]
    # One child per measurement: RUSAGE_CHILDREN's ru_maxrss is the largest child so far,
    # so run the shorter file first and the longer one after.
    start = time.perf_counter()
    subprocess.run(cmd, check=True)
    wall = time.perf_counter() - start
    return wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0


def main() -> int:
    """Print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30.0)
    parser.add_argument("--model", default=None, help="checkpoint (default: built-in)")
    parser.add_argument("--sample-rate", type=int, default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print(f"{'minutes':>8}{'notes':>8}{'wall s':>9}{'RTF':>8}{'peak RSS MiB':>14}")
        for minutes in (1.0, args.minutes):
            midi = os.path.join(tmp, f"long_{minutes:g}.mid")
            notes = long_midi(midi, minutes)
            wall, peak = render_peak(midi, os.path.join(tmp, "out.wav"), args.model,
                                     args.sample_rate)
            print(f"{minutes:>8g}{notes:>8}{wall:>9.1f}{wall / (minutes * 60):>8.3f}"
                  f"{peak:>14.0f}", flush=True)
    print("peak RSS = the render process's ru_maxrss (includes Python, torch and numba)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
