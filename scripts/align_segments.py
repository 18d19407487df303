"""Alignment of segments cut out of longer rendered performances (as a test set of real
recordings cut into 20-30 s excerpts would be).

For each item of each folder, ``--cuts`` segments of ``--length`` seconds start at random
points (seeded); the segment's audio is cut from the recording (so it begins with the
ringing of earlier notes), its notes are those whose onsets fall inside, shifted to the
segment's start.  Each segment's notes are perturbed (coarse by default: human-like plus
a 3-10 % tempo change and a 0.2-1 s offset; ``--human``), aligned back with every method,
and the onset errors pooled per condition: share within 10/25/50/100/150 ms, mean, median,
the signed median (bias), p95, and the mean error of the first and last 10 % of the notes.

Usage::

    OMP_NUM_THREADS=1 python scripts/align_segments.py runs/align/long_* \\
        [--methods dtw,mrmsdtw] [--length 20] [--cuts 3] [--human] [--model CKPT[,CKPT]] \\
        [--seed N | A:B] [--no-wpe] [--jitter S ...: the perturbation flags of `pianossm align-eval`]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
from collections.abc import Iterator

import numpy as np

from pianossm.align.data import check_labels, list_items, load_item
from pianossm.align.features import SAMPLE_RATE, audio_to_cqt
from pianossm.align.notes import Notes
from pianossm.align.perturb import PerturbConfig, coarse_perturb, perturb_notes
from pianossm.commands.align import (
    add_model_args,
    add_perturb_args,
    add_wpe_arg,
    models_from_args,
    perturb_from_args,
)
from pianossm.errors import PianoSSMError


def cut(audio: np.ndarray, notes: Notes, start: float, length: float,
        ) -> tuple[np.ndarray, Notes]:
    """Audio ``[start, start + length)`` and its notes (onsets inside), times from 0."""
    a = audio[int(start * SAMPLE_RATE):int((start + length) * SAMPLE_RATE)]
    keep = (notes.onset >= start) & (notes.onset < start + length - 0.05)
    on = notes.onset[keep] - start
    off = np.minimum(notes.offset[keep] - start, length)
    return a, Notes(on, np.maximum(off, on + 0.02), notes.pitch[keep], notes.velocity[keep])


def condition(stem: str, folder: str) -> str:
    with np.load(stem + ".npz") as z:
        meta = json.loads(str(z["meta"]))
    if "room" in meta:
        return f"{meta.get('soundfont') or meta.get('synth')} x {meta['room']}"
    return os.path.basename(folder.rstrip("/"))


def stats(signed: np.ndarray, pos: np.ndarray) -> dict[str, float]:
    """Shares within 10/25/50/100/150 ms, the count beyond 100 ms, mean, median and p95
    (ms) of the ``(N,)`` errors' sizes, the signed errors' median (``bias``, positive:
    late), mean of the first/last 10 %."""
    e = np.abs(signed)
    out = {f"w{t}": 100 * float(np.mean(e <= t / 1000 + 1e-9))
           for t in (10, 25, 50, 100, 150)}
    out["beyond100"] = int(np.sum(e > 0.1 + 1e-9))
    out["mean"] = 1000 * float(e.mean())
    out["median"] = 1000 * float(np.median(e))
    out["bias"] = 1000 * float(np.median(signed))
    out["p95"] = 1000 * float(np.percentile(e, 95))
    out["head"] = 1000 * float(e[pos < 0.1].mean()) if (pos < 0.1).any() else np.nan
    out["tail"] = 1000 * float(e[pos > 0.9].mean()) if (pos > 0.9).any() else np.nan
    return out


def excerpts(folder: str, length: float, cuts: int, human: bool, seed: int | list[int],
             limit: int = 0, perturb: PerturbConfig | None = None,
             ) -> Iterator[tuple[int, str, int, int, np.ndarray, Notes, Notes]]:
    """The excerpts of one folder's items, with their notes and the notes perturbed.

    Yields ``(item index, stem, seed, cut, audio (n,), true notes, perturbed notes)`` for
    ``cuts`` excerpts of ``length`` s per item and seed (those with fewer than 10 notes
    skipped); each seed, item and cut draws its own start and perturbation, so another
    script given the same arguments measures the same excerpts.
    """
    import soundfile as sf

    cfg = perturb or PerturbConfig()
    stems = list_items(folder)[:limit or None]
    check_labels(stems)  # old-convention labels would score against another truth
    for i, stem in enumerate(stems):
        audio, _ = sf.read(stem + ".flac", dtype="float32")
        _, notes = load_item(stem)
        dur = len(audio) / SAMPLE_RATE
        for sd, c in ((sd, c) for sd in np.atleast_1d(seed) for c in range(cuts)):
            rng = np.random.default_rng([int(sd), i, c, int(human)])
            start = float(rng.uniform(1.0, max(1.0, dur - length - 1.0)))
            seg, ref = cut(audio, notes, start, length)
            if len(ref) < 10:
                continue
            bad = perturb_notes(ref, cfg, rng) if human else coarse_perturb(ref, rng, cfg=cfg)
            yield i, stem, int(sd), c, seg, ref, bad


def run(folders: list[str], methods: list[str], length: float, cuts: int, human: bool,
        model: list[str] | None, seed: int | list[int], limit: int,
        wpe: bool = True, perturb: PerturbConfig | None = None, tail: float | None = None,
        refine_model: str | None = None, half_model: str | None = None,
        selector: str | bool | None = None, sure: dict | None = None,
        ) -> list[tuple[str, str, int, dict]]:
    """Rows ``(condition, method, notes, stats)`` per folder and pooled (``all``); with a
    ``sure`` dict, each method's ``(errors, confidences)`` of all notes go into it."""
    from pianossm.align.api import align_notes

    rows, pooled = [], {}
    for folder in folders:
        errs: dict[str, list] = {}
        name = None
        for _, stem, _, _, seg, ref, bad in excerpts(folder, length, cuts, human, seed, limit,
                                                     perturb):
            name = condition(stem, folder)
            cqt = audio_to_cqt(seg, SAMPLE_RATE)
            pos = (ref.onset - ref.onset.min()) / max(np.ptp(ref.onset), 1e-6)
            for m in ["input", *methods]:
                out, c = (bad, None) if m == "input" else align_notes(
                    seg, bad, m, model, cqt=cqt, wpe=wpe, tail=tail,
                    refine_model=refine_model, half_model=half_model, selector=selector,
                    with_confidence=True)
                e = out.onset - ref.onset
                if sure is not None and c is not None:
                    sure.setdefault(m, []).append((e, c))
                for d in (errs, pooled):
                    d.setdefault(m, []).append((e, pos))
        for m, lst in errs.items():
            e, p = (np.concatenate(x) for x in zip(*lst))
            rows.append((name, m, len(e), stats(e, p)))
    for m, lst in pooled.items():
        e, p = (np.concatenate(x) for x in zip(*lst))
        rows.append(("all", m, len(e), stats(e, p)))
    return rows


def _seeds(text: str) -> list[int]:
    """``"3"`` -> ``[3]``; ``"0:3"`` -> ``[0, 1, 2]``."""
    a, sep, b = text.partition(":")
    seeds = list(range(int(a), int(b))) if sep else [int(text)]
    if not seeds:
        raise argparse.ArgumentTypeError(f"no seeds in {text!r}")
    return seeds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+")
    parser.add_argument("--methods", default="dtw,mrmsdtw")
    parser.add_argument("--length", type=float, default=20.0)
    parser.add_argument("--cuts", type=int, default=3)
    parser.add_argument("--human", action="store_true")
    add_model_args(parser, several=True)
    parser.add_argument("--seed", type=_seeds, default=[0],
                        help="seed of the cuts and perturbations, or A:B for seeds A..B-1 "
                             "pooled (the figures move by about +-1.5 points with the cuts "
                             "of 12 one-minute recordings: README)")
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--tail", type=float, default=None,
                        help="seconds of silence the CRNN hears after each segment "
                             "(default: align_notes's)")
    parser.add_argument("--calibration", action="store_true",
                        help="also print, per CRNN method, the share of notes within 25 and "
                             "50 ms by their confidence (align_notes's with_confidence)")
    add_wpe_arg(parser)
    add_perturb_args(parser)
    args = parser.parse_args()
    sure: dict | None = {} if args.calibration else None
    try:
        rows = run(args.folders, args.methods.split(","), args.length, args.cuts, args.human,
                   models_from_args(args), args.seed, args.limit,
                   args.wpe, perturb_from_args(args), args.tail, args.refine_model,
                   args.half_model, args.selector, sure)
    except PianoSSMError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"\n{'human' if args.human else 'coarse'} perturbation, {args.length:g} s segments, "
          f"{args.cuts} per piece and seed, seeds {args.seed}\n")
    print("| condition | method | notes | <=10 | <=25 | <=50 | <=100 | <=150 ms | >100 ms | "
          "mean | median | bias | p95 | first 10 % | last 10 % |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, m, n, s in rows:
        print(f"| {name} | {m} | {n} | {s['w10']:.2f} | {s['w25']:.2f} | {s['w50']:.2f} | "
              f"{s['w100']:.2f} | {s['w150']:.2f} | {s['beyond100']} | {s['mean']:.0f} | "
              f"{s['median']:.1f} | "
              f"{s['bias']:+.1f} | {s['p95']:.0f} | {s['head']:.0f} | {s['tail']:.0f} |")
    for m, lst in (sure or {}).items():
        e, c = (np.concatenate(x) for x in zip(*lst))
        if np.isnan(c).all():
            continue
        print(f"\n{m}, all folders: notes by confidence\n\n| confidence | notes | share | "
              "<=25 | <=50 ms | misses beyond 25 ms |\n|---|---|---|---|---|---|")
        for name, sel in calibration_bins(c):
            a = np.abs(e[sel])
            print(f"| {name} | {sel.sum()} | {100 * sel.mean():.1f} | "
                  f"{100 * np.mean(a <= 0.025 + 1e-9) if sel.any() else np.nan:.1f} | "
                  f"{100 * np.mean(a <= 0.05 + 1e-9) if sel.any() else np.nan:.1f} | "
                  f"{int(np.sum(a > 0.025 + 1e-9))} |")
    return 0


def calibration_bins(conf: np.ndarray) -> list[tuple[str, np.ndarray]]:
    """``(name, mask)`` of the ``(N,)`` confidences' bins: 0 (overruled), then 0-0.2,
    0.2-0.4, ..., 0.8-1."""
    out = [("0 (overruled)", conf == 0)]
    edges = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0 + 1e-9]
    for lo, hi in itertools.pairwise(edges):
        out.append((f"{lo:.1f}-{min(hi, 1.0):.1f}", (conf > lo) & (conf < hi)
                    if lo == 0 else (conf >= lo) & (conf < hi)))
    return out


if __name__ == "__main__":
    sys.exit(main())
