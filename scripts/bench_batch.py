"""Batch-rendering throughput: N generated MIDI files (one corrupt) with 1 and 2 jobs.

Usage: ``python scripts/bench_batch.py [--files 50] [--bars 12] [--jobs 1 2]``

Runs ``pianossm render DIR -o OUT/ --jobs J -q`` for each J, then once more with
``--skip-existing``, and prints one table row per run: exit status, outputs, error lines,
wall time, files/min and audio-hours/hour (from the command's own summary line), and the
load average before the run.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np


def make_corpus(folder: str, n: int, bars: int, seed: int = 0) -> None:
    """``n`` generated pieces, the middle one overwritten with garbage."""
    from pianossm.data.generate import piece

    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    for i in range(n):
        piece(rng, bars).write(os.path.join(folder, f"piece{i:03d}.mid"))
    with open(os.path.join(folder, f"piece{n // 2:03d}.mid"), "wb") as f:
        f.write(b"MThd this is not a MIDI file")


def run(midi_dir: str, out: str, jobs: int, extra: list[str]) -> dict[str, object]:
    """One batch command; its status, outputs, error lines, wall time and summary."""
    load = os.getloadavg()[0]
    cmd = [sys.executable, "-m", "pianossm", "render", midi_dir, "-o", out + "/", "--jobs",
           str(jobs), "-q", *extra]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    lines = proc.stderr.strip().splitlines()
    summary = lines[-1] if lines else ""
    rate = re.search(r"\(([\d.]+) files/min, ([\d.]+) audio-hours/hour\)", summary)
    return {"jobs": jobs, "extra": " ".join(extra) or "-", "rc": proc.returncode,
            "outputs": len(os.listdir(out)) if os.path.isdir(out) else 0,
            "errors": sum(ln.startswith("pianossm: error:") for ln in lines), "wall": wall,
            "fpm": rate.group(1) if rate else "-", "ahh": rate.group(2) if rate else "-",
            "load": load, "summary": summary}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=50)
    ap.add_argument("--bars", type=int, default=12)
    ap.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    args = ap.parse_args()
    root = tempfile.mkdtemp(prefix="bench_batch_")
    try:
        midi_dir = os.path.join(root, "midi")
        make_corpus(midi_dir, args.files, args.bars)
        rows = []
        for jobs in args.jobs:
            out = os.path.join(root, f"out{jobs}")
            rows.append(run(midi_dir, out, jobs, []))
            rows.append(run(midi_dir, out, jobs, ["--skip-existing"]))
        print(f"{args.files} files of {args.bars} bars, one corrupt; "
              f"{os.cpu_count()} cores")
        print("| jobs | flags | exit | outputs | error lines | wall s | files/min | "
              "audio-hours/hour | load before |")
        print("|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['jobs']} | {r['extra']} | {r['rc']} | {r['outputs']} | {r['errors']} "
                  f"| {r['wall']:.1f} | {r['fpm']} | {r['ahh']} | {r['load']:.2f} |")
        for r in rows:
            print(f"jobs {r['jobs']} {r['extra']}: {r['summary']}")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
