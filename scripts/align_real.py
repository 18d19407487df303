"""Alignment on the real recordings of the shared test data (acceptance 2).

* MAESTRO clip and madmom sample: their notes are perturbed (``--seeds`` draws of the
  default perturbation model) and aligned back; onset errors against the annotations.
* Chopin op. 10/3, two performances aligned to the same score-timed MIDI: no ground
  truth, so we report consistency: the spread of onsets the score puts together (chord
  asynchrony after alignment), order violations of score events, and the agreement
  between methods.

Usage: PIANO_SSM_SHARED=/work/shared python scripts/align_real.py [--seeds 20]
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from pianossm.align.api import align_notes
from pianossm.align.features import check_audio
from pianossm.align.metrics import format_table, onset_errors, summarize
from pianossm.align.notes import Notes, midi_to_notes
from pianossm.align.perturb import PerturbConfig, perturb_notes
from pianossm.audio import read_audio
from pianossm.commands.align import add_model_args, models_from_args

METHODS = ["dtw", "mrmsdtw", "crnn", "dtw+crnn", "mrmsdtw+crnn"]
#: align_notes's CRNN options from the command line (--model, --tail, --refine-model,
#: --half-model; absent: its defaults)
CRNN: dict = {}


def _align(audio: np.ndarray, notes: Notes, method: str) -> Notes:
    """:func:`align_notes` with the command line's CRNN options."""
    return align_notes(audio, notes, method, **CRNN)


def shared_dir() -> str:
    """``$PIANO_SSM_SHARED`` or ``../shared`` next to the repository."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return os.environ.get("PIANO_SSM_SHARED", os.path.join(root, "..", "shared"))


def load_real(real: str) -> dict[str, tuple[np.ndarray, Notes]]:
    """16 kHz audio and reference notes of the annotated recordings."""
    out = {}
    audio, sr = read_audio(os.path.join(real, "maestro2018_chamber3_clip.wav"))
    n = midi_to_notes(os.path.join(real, "maestro2018_chamber3_clip.midi"))
    keep = n.onset < len(audio) / sr
    out["maestro_clip"] = (check_audio(audio, sr), Notes(
        n.onset[keep], np.minimum(n.offset[keep], len(audio) / sr), n.pitch[keep],
        n.velocity[keep]))
    audio, sr = read_audio(os.path.join(real, "madmom_stereo_sample.flac"))
    ann = np.loadtxt(os.path.join(real, "madmom_stereo_sample.notes"), ndmin=2)
    out["madmom_sample"] = (check_audio(audio, sr), Notes(
        ann[:, 0], ann[:, 0] + ann[:, 2], ann[:, 1].astype(np.int64),
        ann[:, 3].astype(np.int64)))
    return out


def perturbed_table(items: dict, seeds: int, methods: list[str]) -> None:
    for name, (audio, ref) in items.items():
        errs = {m: [] for m in ["input", *methods]}
        for s in range(seeds):
            bad = perturb_notes(ref, PerturbConfig(), np.random.default_rng([s, 99]))
            errs["input"].append(onset_errors(bad, ref))
            for m in methods:
                errs[m].append(onset_errors(_align(audio, bad, m), ref))
        print(f"\n{name}: {len(ref)} notes x {seeds} perturbations")
        print(format_table({m: summarize(np.concatenate(e)) for m, e in errs.items()}))


def chopin(real: str, methods: list[str]) -> None:
    score = midi_to_notes(os.path.join(real, "chopin_op10no3_m1-8_MIDI.mid"))
    event = np.round(score.onset, 2)
    groups = [np.nonzero(event == e)[0] for e in np.unique(event)]
    chords = [g for g in groups if len(g) > 1]
    times, audios = {}, {}
    print(f"\nchopin op10/3 m1-8: {len(score)} notes, {len(groups)} score events, "
          f"{len(chords)} chords")
    print(f"{'recording':<10}{'method':<14}{'chord spread med/p90 ms':>25}"
          f"{'event order violations':>24}")
    for who in ("Igoshina", "Varsi"):
        audio, sr = read_audio(os.path.join(real, f"chopin_op10no3_m1-8_{who}.wav"))
        audio = audios[who] = check_audio(audio, sr)
        for m in methods:
            if m == "crnn":
                continue  # score timing is seconds away from the performance
            a = _align(audio, score, m).onset
            times[who, m] = a
            spread = np.array([np.ptp(a[g]) for g in chords]) * 1000
            ev = np.array([np.median(a[g]) for g in groups])
            print(f"{who:<10}{m:<14}{np.median(spread):>14.1f} / {np.percentile(spread, 90):>6.1f}"
                  f"{int(np.sum(np.diff(ev) < 0)):>24}")
    print("\nagreement between methods (median / p90 |difference| of note onsets, ms)")
    for who in ("Igoshina", "Varsi"):
        ms = [m for m in methods if (who, m) in times]
        for i, a in enumerate(ms):
            for b in ms[i + 1:]:
                d = np.abs(times[who, a] - times[who, b]) * 1000
                print(f"{who:<10}{a:>13} vs {b:<14}{np.median(d):>7.1f} / "
                      f"{np.percentile(d, 90):>6.1f}")
    print("\nround trip: Varsi aligned to the score directly vs to the Igoshina-aligned MIDI"
          "\n(median / p90 |difference| of note onsets, ms; 0 = perfectly consistent)")
    for m in methods:
        if ("Igoshina", m) not in times:
            continue
        via = score.with_times(times["Igoshina", m], times["Igoshina", m] + (
            score.offset - score.onset))
        d = np.abs(_align(audios["Varsi"], via, m).onset - times["Varsi", m]) * 1000
        print(f"{m:<14}{np.median(d):>7.1f} / {np.percentile(d, 90):>6.1f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--methods", default=",".join(METHODS))
    add_model_args(parser, several=True)
    parser.add_argument("--tail", type=float, default=None,
                        help="seconds of silence the CRNN hears after each recording "
                             "(default: align_notes's)")
    args = parser.parse_args()
    CRNN.update(model=models_from_args(args), tail=args.tail, refine_model=args.refine_model,
                half_model=args.half_model, selector=args.selector)
    real = os.path.join(shared_dir(), "testdata", "real")
    if not os.path.isdir(real):
        print(f"shared test data not found at {real}; set PIANO_SSM_SHARED", file=sys.stderr)
        return 0
    methods = args.methods.split(",")
    perturbed_table(load_real(real), args.seeds, methods)
    chopin(real, methods)
    return 0


if __name__ == "__main__":
    sys.exit(main())
