"""Train the decode selector (``pianossm.align.select``) on renders the CRNNs never heard.

``collect`` cuts and perturbs excerpts exactly as ``scripts/align_segments.py`` does,
aligns them with ``dtw+crnn`` (the shipped networks, onset-logit pick) and keeps, for every
note, the features of each refined decode (:func:`pianossm.align.select.decode_features`)
and whether that decode is within 25 ms of the note's attack.  ``fit`` trains a selector
on one or more collected files and reports, on a held-out tenth of their excerpts, how
often the logit pick, the selector's pick and the best decode (an oracle) are within 25
ms.  The pipeline's later passes (half-frame, consensus) are not in these shares.

    OMP_NUM_THREADS=1 python scripts/align_select.py collect runs/align_s/sel_train \\
        --human --seed 0:1 --out runs/align_s/sel_human.npz
    python scripts/align_select.py fit runs/align_s/sel_*.npz --out SELECTOR.npz
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from align_segments import _seeds, excerpts

from pianossm.align.features import SAMPLE_RATE, audio_to_cqt
from pianossm.commands.align import add_perturb_args, perturb_from_args
from pianossm.errors import PianoSSMError

WITHIN = 0.025


#: Arrays kept per excerpt by ``collect`` (notes along the last axis), from which ``fit``
#: computes the features (so that the features can change without aligning again).
_RAW = ("onsets", "conf", "logit", "first_onsets", "first_conf", "cross", "rough_onset",
        "rough_offset", "pitch", "velocity", "start_onset", "truth", "picked")


def collect(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from pianossm.align import api

    got: list[dict] = []
    real_pick = api._pick

    def pick(onsets, conf, logit, first_onsets, first_conf, rough, start, in_time, sel,
             cross=None):
        out = real_pick(onsets, conf, logit, first_onsets, first_conf, rough, start,
                        in_time, sel, cross)
        got.append({"onsets": onsets, "conf": conf, "logit": logit,
                    "first_onsets": first_onsets, "first_conf": first_conf, "cross": cross,
                    "rough_onset": rough.onset, "rough_offset": rough.offset,
                    "pitch": rough.pitch, "velocity": rough.velocity,
                    "start_onset": start.onset, "picked": out, "in_time": in_time})
        return out

    api._pick = pick
    lat = api.label_latency()
    keep: dict[str, list] = {k: [] for k in _RAW}
    sizes, in_time = [], []
    items = [e for f in args.folders for e in excerpts(f, args.length, args.cuts, args.human,
                                                       args.seed, perturb=perturb_from_args(args))]
    for _, _, _, _, seg, ref, bad in tqdm(items, desc="excerpts"):
        got.clear()
        api.align_notes(seg, bad, "dtw+crnn", cqt=audio_to_cqt(seg, SAMPLE_RATE))
        if len(got) != 1 or got[0]["onsets"].shape != (3, len(ref)):
            continue
        g = got[0]
        g["truth"] = ref.onset - lat  # in the network's times, as the decodes
        for k in _RAW:
            keep[k].append(np.asarray(g[k]))
        sizes.append(len(ref))
        in_time.append(g["in_time"])
    tmp = args.out + ".tmp.npz"
    np.savez(tmp, sizes=np.array(sizes), in_time=np.array(in_time),
             **{k: np.concatenate(v, axis=-1) for k, v in keep.items()})
    os.replace(tmp, args.out)
    print(f"{len(sizes)} excerpts, {sum(sizes)} notes -> {args.out}")
    return 0


def load(paths: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray,
                                    np.ndarray]:
    """Features ``(M, F)``, labels, note index, excerpt index and logit pick of every
    collected decode (``M = 3 x`` notes)."""
    from pianossm.align.notes import Notes
    from pianossm.align.select import decode_features

    xs, ys, gs, es, ps = [], [], [], [], []
    note0 = excerpt = 0
    for path in paths:
        z = np.load(path)
        a = 0
        for n, it in zip(z["sizes"], z["in_time"]):
            c = {k: z[k][..., a:a + n] for k in _RAW}
            a += n
            rough = Notes(c["rough_onset"], c["rough_offset"], c["pitch"], c["velocity"])
            start = rough.with_times(c["start_onset"], c["rough_offset"])
            f = decode_features(c["onsets"], c["conf"], c["logit"], c["first_onsets"],
                                c["first_conf"], rough, start, bool(it), c["picked"],
                                c["cross"])
            s = f.shape[0]
            xs.append(f.reshape(s * n, -1))
            ys.append((np.abs(c["onsets"] - c["truth"][None]) <= WITHIN).reshape(-1))
            gs.append(np.broadcast_to(note0 + np.arange(n), (s, n)).reshape(-1))
            es.append(np.full(s * n, excerpt))
            ps.append((c["picked"][None] == np.arange(s)[:, None]).reshape(-1))
            note0 += n
            excerpt += 1
    return (np.concatenate(xs), np.concatenate(ys), np.concatenate(gs), np.concatenate(es),
            np.concatenate(ps))


def shares(x: np.ndarray, y: np.ndarray, group: np.ndarray, picked: np.ndarray,
           selector) -> tuple[float, float, float, int]:
    """Within-25-ms shares of the logit pick, the selector's pick and the oracle."""
    _, g = np.unique(group, return_inverse=True)
    n = int(g.max()) + 1
    z = selector.logits(x)
    best = np.full(n, -np.inf)
    np.maximum.at(best, g, z)
    top = z >= best[g]
    first_top = np.zeros(len(z), bool)
    seen = np.zeros(n, bool)
    for i in np.nonzero(top)[0]:  # the first of ties, as np.argmax
        if not seen[g[i]]:
            seen[g[i]], first_top[i] = True, True
    sel = np.bincount(g, weights=(y & first_top)) > 0
    base = np.bincount(g, weights=(y & picked)) > 0
    oracle = np.bincount(g, weights=y) > 0
    return 100 * base.mean(), 100 * sel.mean(), 100 * oracle.mean(), n


def fit(args: argparse.Namespace) -> int:
    from pianossm.align.select import fit_selector

    x, y, g, e, pk = load(args.data)
    y, pk = y.astype(bool), pk.astype(bool)
    held = (e % 10) == 9
    info = {"trained on": " ".join(args.data), "by": "scripts/align_select.py fit",
            "epochs": args.epochs, "seed": args.seed}
    sel = fit_selector(x[~held], y[~held].astype(np.float64), g[~held], epochs=args.epochs,
                       seed=args.seed, info=info)
    for name, m in (("training part", ~held), ("held-out tenth", held)):
        if not m.any():
            continue
        b, s, o, n = shares(x[m], y[m], g[m], pk[m], sel)
        print(f"{name}: {n} notes, within 25 ms: logit pick {b:.2f} %, selector {s:.2f} %, "
              f"best decode {o:.2f} %")
    if args.out:
        if not args.all:
            sel.save(args.out)
        else:  # the final selector: trained on everything
            fit_selector(x, y.astype(np.float64), g, epochs=args.epochs, seed=args.seed,
                         info=info).save(args.out)
        print(f"-> {args.out}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("collect")
    c.add_argument("folders", nargs="+")
    c.add_argument("--out", required=True)
    c.add_argument("--length", type=float, default=20.0)
    c.add_argument("--cuts", type=int, default=3)
    c.add_argument("--human", action="store_true")
    c.add_argument("--seed", type=_seeds, default=[0])
    add_perturb_args(c)
    f = sub.add_parser("fit")
    f.add_argument("data", nargs="+")
    f.add_argument("--out")
    f.add_argument("--epochs", type=int, default=60)
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--all", action="store_true",
                   help="save a selector trained on all the data (the held-out tenth too)")
    args = parser.parse_args()
    try:
        return collect(args) if args.cmd == "collect" else fit(args)
    except PianoSSMError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
