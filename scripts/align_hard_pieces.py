"""Write the generated pieces hardest for the aligner (for a training folder of them).

On the hall test sets the CRNN misses most where many notes are soft and keys are struck
again while they still ring (README, "A larger hall set").  This scores every generated
piece of a seed range by ``density * soft + 20 * restruck`` (notes per second, the share of
notes softer than velocity 50, the share of notes whose key was struck less than 0.3 s
before) and writes the ``count`` highest-scoring pieces as MIDI files, for
``pianossm align-data FOLDER --midi OUT``.

Usage: python scripts/align_hard_pieces.py OUT --seeds 9000:10500 --count 150 [--seconds 30]
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np


def difficulty(onset: np.ndarray, pitch: np.ndarray, velocity: np.ndarray,
               seconds: float) -> float:
    """``density * soft + 20 * restruck`` of one piece's ``(N,)`` notes (module docstring).

    Parameters
    ----------
    onset, pitch, velocity : np.ndarray
        ``(N,)`` onsets (s), MIDI pitches and velocities.
    seconds : float
        The piece's length.

    Returns
    -------
    float
        The score (0 for no notes).
    """
    if len(onset) == 0:
        return 0.0
    restruck = sum(int(np.sum(np.diff(np.sort(onset[pitch == k])) < 0.3))
                   for k in np.unique(pitch))
    return float(len(onset) / seconds * np.mean(velocity < 50) + 20 * restruck / len(onset))


def main() -> int:
    from pianossm.align.notes import midi_to_notes
    from pianossm.align.pieces import generate_piece

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="folder for the MIDI files")
    parser.add_argument("--seeds", default="9000:10500", help="START:STOP piece seeds")
    parser.add_argument("--count", type=int, default=150)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    start, stop = (int(x) for x in args.seeds.split(":"))
    scores = []
    for seed in range(start, stop):
        n = midi_to_notes(generate_piece(seed, args.seconds))
        scores.append((difficulty(n.onset, n.pitch, n.velocity, args.seconds), seed))
    os.makedirs(args.out, exist_ok=True)
    chosen = sorted(seed for _, seed in sorted(scores, reverse=True)[:args.count])
    for seed in chosen:
        generate_piece(seed, args.seconds).write(os.path.join(args.out, f"hard{seed:05d}.mid"))
    print(f"wrote {len(chosen)} pieces to {args.out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
