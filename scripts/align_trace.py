"""Where the aligner's misses come from: each pass's placement of the notes it misses.

Cuts excerpts and perturbs their notes exactly as ``scripts/align_segments.py`` does (the
same ``--seed``, ``--cuts`` and ``--length`` give the same excerpts), aligns them with
``dtw+crnn`` while recording what each stage made of every note: the first stage's output
(the DTW's), the three first CRNN decodes and their refinements, the pick between them
(and blend), the half-frame pass and the consensus step.  Prints, for every note that ends
more than ``--beyond`` ms from its attack, its error after each stage and the window
probability of each decode, then the share of notes within 25 ms and the count beyond
``--beyond`` ms by where the notes are (the excerpt's first 0.7 s and last second,
chords, a key struck again within 200 ms, soft notes) and how many misses kept the sign
of the input's error.

The stages are recorded by wrapping the pipeline's inner functions
(``pianossm.align.decode.roll_to_notes``, ``pianossm.align.api._half_frame_pass`` and
``follow_consensus``) for the run of this script only: a diagnostic, not an API.

    OMP_NUM_THREADS=1 python scripts/align_trace.py runs/align_s/dev2 --human --seed 0:3 \\
        --cuts 1
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from align_segments import _seeds, condition, excerpts

from pianossm.align.features import SAMPLE_RATE, audio_to_cqt
from pianossm.align.notes import Notes, key_gaps
from pianossm.commands.align import add_perturb_args, perturb_from_args
from pianossm.errors import PianoSSMError

#: Names of the recorded decodes, in the order the pipeline makes them.
DECODES = ("from the DTW", "from the input", "from the shift", "refined 1", "refined 2",
           "refined 3")  # (far out of time, the second starts from the input moved by the
#                        first decode's smooth shift instead)


class Recorder:
    """Wraps the pipeline's inner functions and keeps each stage's onsets ``(N,)``."""

    def __init__(self) -> None:
        self.stages: list[tuple[str, np.ndarray, np.ndarray | None]] = []

    def install(self) -> None:
        """Wrap the functions (for this process)."""
        from pianossm.align import api, decode

        real_decode, real_half = decode.roll_to_notes, api._half_frame_pass
        real_consensus = api.follow_consensus

        def roll_to_notes(onset, frame, start, **kw):
            out = real_decode(onset, frame, start, **kw)
            if isinstance(out, tuple) and len(self.stages) < 1 + len(DECODES):
                if not self.stages:
                    self.stages.append(("DTW", start.onset.copy(), None))
                self.stages.append((DECODES[len(self.stages) - 1], out[0].onset.copy(),
                                    np.asarray(out[1]).copy()))
            return out

        def half_frame_pass(net, cqt_half, notes, *a, **kw):
            self.stages.append(("picked", notes.onset.copy(), None))
            out = real_half(net, cqt_half, notes, *a, **kw)
            self.stages.append(("half-frame", out.onset.copy(), None))
            return out

        def follow_consensus(before, after, *a, **kw):
            out = real_consensus(before, after, *a, **kw)
            self.stages.append(("consensus", out.onset.copy(), None))
            return out

        decode.roll_to_notes = roll_to_notes
        api._half_frame_pass = half_frame_pass
        api.follow_consensus = follow_consensus


def features(ref: Notes, length: float) -> dict[str, np.ndarray]:
    """Per-note ``(N,)`` masks of where a note is (see the module docstring)."""
    gap = key_gaps(ref)
    chord = (np.abs(ref.onset[:, None] - ref.onset[None]) < 0.03).sum(1) > 1
    start, end = ref.onset < 0.7, ref.onset > length - 1.0
    return {"first 0.7 s": start, "last 1 s": end, "elsewhere": ~start & ~end,
            "in a chord": chord, "alone": ~chord, "key again within 200 ms": gap < 0.2,
            "velocity < 40": ref.velocity < 40, "velocity >= 40": ref.velocity >= 40}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+")
    parser.add_argument("--length", type=float, default=20.0)
    parser.add_argument("--cuts", type=int, default=3)
    parser.add_argument("--human", action="store_true")
    parser.add_argument("--seed", type=_seeds, default=[0])
    parser.add_argument("--beyond", type=float, default=100.0,
                        help="ms: trace the notes that end further than this from the truth")
    parser.add_argument("--show", type=int, default=30, help="traced notes printed at most")
    add_perturb_args(parser)
    args = parser.parse_args()
    from pianossm.align.api import align_notes, label_latency

    rec = Recorder()
    rec.install()
    errs, signs, masks, shown = [], [], [], 0
    beyond = args.beyond / 1000
    lat = label_latency()  # the recorded stages are in the network's times
    perturb = perturb_from_args(args)
    try:
        for folder in args.folders:
            for i, stem, sd, c, seg, ref, bad in excerpts(
                    folder, args.length, args.cuts, args.human, args.seed,
                    perturb=perturb):
                rec.stages.clear()
                out = align_notes(seg, bad, "dtw+crnn", cqt=audio_to_cqt(seg, SAMPLE_RATE))
                e, ein = out.onset - ref.onset, bad.onset - ref.onset
                errs.append(e)
                signs.append(np.sign(e) == np.sign(ein))
                masks.append(features(ref, args.length))
                for n in np.nonzero(np.abs(e) > beyond)[0]:
                    if shown >= args.show:
                        break
                    shown += 1
                    print(f"\n{condition(stem, folder)}, item {i}, seed {sd}, cut {c}: "
                          f"note {n} (key {ref.pitch[n]}, velocity {ref.velocity[n]}, "
                          f"{ref.onset[n]:.2f} s in), input {1000 * ein[n]:+.0f} ms, "
                          f"aligned {1000 * e[n]:+.0f} ms")
                    for name, on, prob in rec.stages:
                        p = "" if prob is None else f"  (window probability {prob[n]:.2f})"
                        print(f"    {name:16s} {1000 * (on[n] + lat - ref.onset[n]):+6.0f}"
                              f" ms{p}")
    except PianoSSMError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    if not errs:
        print("error: no excerpt with 10 notes or more", file=sys.stderr)
        return 1
    e, same = np.abs(np.concatenate(errs)), np.concatenate(signs)
    print(f"\n{'human-like' if args.human else 'coarse'} input, {len(e)} notes\n")
    print(f"| notes | count | within 25 ms | beyond {args.beyond:g} ms |\n|---|---|---|---|")
    for name in masks[0]:
        m = np.concatenate([mk[name] for mk in masks])
        print(f"| {name} | {m.sum()} | {100 * np.mean(e[m] <= 0.025):.1f} % | "
              f"{int(np.sum(e[m] > beyond))} |")
    miss = e > beyond
    print(f"\n{int(same[miss].sum())} of the {int(miss.sum())} notes beyond {args.beyond:g} ms "
          f"kept the sign of the input's error")
    return 0


if __name__ == "__main__":
    sys.exit(main())
