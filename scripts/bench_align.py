"""Benchmark: align a 5-minute recording (acceptance 4: < 30 s on this CPU, < 4 GiB).

Renders a generated 5-minute piece with the MuseScore SoundFont, perturbs its notes
(default model), then times ``align_files`` (read audio + MIDI, features, method,
decoding, write) for each method in a fresh process and reports wall time, peak resident
memory (``ru_maxrss``) and the onset errors.  CPU seconds (user + system) are printed beside
the wall time: on a machine shared with other jobs they are what one free core would take.

``--early S`` moves the perturbed MIDI S seconds earlier, its first notes clipped to time 0:
the far-out-of-time path (the CRNN's trials of those notes, ``place_stacked``, included).

Usage: python scripts/bench_align.py [--minutes 5] [--methods dtw+crnn,dtw,crnn] [--model A[,B]]
           [--early S]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

from pianossm.commands.align import add_model_args, models_from_args


def _prepare(folder: str, minutes: float, early: float = 0.0) -> None:
    import soundfile as sf

    from pianossm.align.latency import exact_midi, sound_onsets
    from pianossm.align.notes import midi_to_notes, retime_midi
    from pianossm.align.perturb import MIN_DURATION, PerturbConfig, perturb_notes
    from pianossm.align.pieces import generate_piece
    from pianossm.fluid import render_fluidsynth

    midi = exact_midi(generate_piece(seed=9090, seconds=60 * minutes))
    midi.write(os.path.join(folder, "exact.mid"))
    audio = render_fluidsynth(os.path.join(folder, "exact.mid"), 44100, "musescore")
    sf.write(os.path.join(folder, "audio.flac"), audio, 44100)
    written = midi_to_notes(midi)
    # the truth is where each note starts to sound (README, "Labels at the sound")
    at = sound_onsets(written, "musescore", 0, 44100)
    notes = written.with_times(at, written.offset + (at - written.onset))
    bad = perturb_notes(notes, PerturbConfig(), np.random.default_rng(0))
    if early > 0:  # a MIDI file cannot hold negative times: the first notes clip to 0
        on = np.maximum(bad.onset - early, 0.0)
        bad = bad.with_times(on, np.maximum(bad.offset - early, on + MIN_DURATION))
    retime_midi(midi, written, bad).write(os.path.join(folder, "perturbed.mid"))
    # a MIDI file re-sorts its notes: find each read-back note's true onset by pitch and
    # perturbed time, in the order the aligner will see them
    back = midi_to_notes(os.path.join(folder, "perturbed.mid"))
    ref = np.empty(len(back))
    for i, (p, t) in enumerate(zip(back.pitch, back.onset)):
        cand = np.nonzero(bad.pitch == p)[0]
        ref[i] = notes.onset[cand[np.argmin(np.abs(bad.onset[cand] - t))]]
    np.save(os.path.join(folder, "reference_onsets.npy"), ref)


def _child(folder: str, method: str, threads: int, model: list[str] | None) -> None:
    import torch

    torch.set_num_threads(threads)
    from pianossm.align.api import align_files
    from pianossm.align.metrics import summarize
    out = os.path.join(folder, f"out-{method.replace('+', '_')}.mid")
    report = out[:-4] + ".csv"
    def cpu() -> float:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    t, c = time.perf_counter(), cpu()
    info = align_files(os.path.join(folder, "audio.flac"), os.path.join(folder,
                       "perturbed.mid"), out, method, report=report, model=model)
    wall, cpu_s = time.perf_counter() - t, cpu() - c
    # the report lists the notes in input order (the written MIDI re-sorts them by time)
    aligned = np.loadtxt(report, delimiter=",", skiprows=1, usecols=4)
    ref = np.load(os.path.join(folder, "reference_onsets.npy"))
    err = summarize(np.abs(aligned - ref))
    print(json.dumps({"method": method, "wall_s": wall, "cpu_s": cpu_s, "notes": info["notes"],
                      "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      **err}))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--minutes", type=float, default=5.0)
    p.add_argument("--methods", default="dtw+crnn,dtw,crnn,mrmsdtw")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--early", type=float, default=0.0,
                   help="move the perturbed MIDI this many seconds earlier (clipped at 0)")
    add_model_args(p, several=True, passes=False)  # given, it makes every pass
    p.add_argument("--child", nargs=2, metavar=("FOLDER", "METHOD"), help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        _child(args.child[0], args.child[1], args.threads, models_from_args(args))
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-align-") as folder:
        _prepare(folder, args.minutes, args.early)
        print(f"{args.minutes:.1f} min piece, MuseScore SoundFont, torch threads "
              f"{args.threads}, CPUs {os.cpu_count()}"
              + (f", MIDI {args.early:g} s early" if args.early else ""))
        extra = ["--model", args.model] if args.model else []
        for method in args.methods.split(","):
            # run twice: the first run also compiles the numba kernels (cached after)
            for _ in range(2):
                res = subprocess.run([sys.executable, __file__, "--threads", str(args.threads),
                                      *extra, "--child", folder, method], capture_output=True,
                                     text=True, check=False)
            if res.returncode:
                print(method, "failed:", res.stderr.strip()[-300:])
                continue
            r = json.loads(res.stdout.strip().splitlines()[-1])
            print(f"{method:<14} {r['wall_s']:6.1f} s wall  {r['cpu_s']:6.1f} s CPU  "
                  f"load {os.getloadavg()[0]:.1f}  peak {r['peak_rss_mib']:6.0f} MiB  "
                  f"{r['notes']} notes  mean {r['mean_ms']:.1f} ms  <=25ms "
                  f"{100 * r['within_25ms']:.1f}%  <=50ms {100 * r['within_50ms']:.1f}%")
    return 0


if __name__ == "__main__":
    sys.exit(main())
