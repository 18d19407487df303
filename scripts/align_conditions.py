"""Alignment accuracy per recording condition (piano x room) on rendered data folders.

Each folder (made by ``pianossm align-data ... --soundfont S --room R``) is one condition.
Every piece is perturbed twice: human-like (the default perturbation model, at most 100 ms)
and coarse (plus a 3-10 % tempo change and a 0.2-1 s offset); each method aligns it back.
Prints one Markdown table per perturbation: share within 10/25/50/100 ms and median error.

Usage::

    OMP_NUM_THREADS=1 python scripts/align_conditions.py runs/align/test_* \\
        [--methods dtw,mrmsdtw,crnn,dtw+crnn] [--model CKPT[,CKPT]] [--csv out.csv] [--no-wpe] \\
        [--jitter S ...: the perturbation flags of `pianossm align-eval`]
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np

from pianossm.align.data import check_labels, list_items
from pianossm.align.evaluate import evaluate_item
from pianossm.align.metrics import summarize
from pianossm.align.perturb import PerturbConfig
from pianossm.commands.align import (
    add_model_args,
    add_perturb_args,
    add_wpe_arg,
    models_from_args,
    perturb_from_args,
)
from pianossm.errors import PianoSSMError

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # align_segments, beside it
from align_segments import condition  # one reading of an item's condition


def run(folders: list[str], methods: list[str], model: list[str] | None, seed: int,
        limit: int = 0, wpe: bool = True, perturb: PerturbConfig | None = None) -> list[dict]:
    """Rows ``{condition, perturbation, method, **summarize}`` (all pieces pooled)."""
    rows = []
    cfg = perturb or PerturbConfig()
    for folder in folders:  # old-convention labels would score against another truth
        check_labels(list_items(folder)[:limit or None])
    for coarse in (False, True):
        pooled: dict[str, list[np.ndarray]] = {}
        for folder in folders:
            errs: dict[str, list[np.ndarray]] = {}
            for i, stem in enumerate(list_items(folder)[:limit or None]):
                rng = np.random.default_rng([seed, i, int(coarse)])
                res = evaluate_item(stem, methods, cfg, rng, model, coarse, wpe)
                for m, e in res.items():
                    errs.setdefault(m, []).append(e)
                    pooled.setdefault(m, []).append(e)
            for m, e in errs.items():
                rows.append({"condition": condition(list_items(folder)[0], folder),
                             "perturbation": "coarse" if coarse else "human",
                             "method": m, **summarize(np.concatenate(e))})
        for m, e in pooled.items():
            rows.append({"condition": "all", "perturbation": "coarse" if coarse else "human",
                         "method": m, **summarize(np.concatenate(e))})
    return rows


def markdown(rows: list[dict]) -> str:
    """One Markdown table per perturbation."""
    out = []
    for pert in ("human", "coarse"):
        out.append(f"\n{pert} perturbation\n\n| condition | method | notes | <=10 | <=25 | "
                   f"<=50 | <=100 ms | median ms |\n|---|---|---|---|---|---|---|---|")
        for r in rows:
            if r["perturbation"] == pert:
                out.append(f"| {r['condition']} | {r['method']} | {int(r['n'])} | "
                           + " | ".join(f"{100 * r[f'within_{t}ms']:.1f}"
                                        for t in (10, 25, 50, 100))
                           + f" | {r['median_ms']:.1f} |")
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folders", nargs="+")
    parser.add_argument("--methods", default="dtw,mrmsdtw,crnn,dtw+crnn")
    add_model_args(parser, several=True, passes=False)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--csv", default=None)
    parser.add_argument("--limit", type=int, default=0, help="first N pieces per folder")
    add_wpe_arg(parser)
    add_perturb_args(parser)
    args = parser.parse_args()
    models = models_from_args(args)
    try:
        rows = run(args.folders, args.methods.split(","), models, args.seed, args.limit,
                   args.wpe, perturb_from_args(args))
    except PianoSSMError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(markdown(rows))
    if args.csv:
        from pianossm.checkpoint import atomic_write

        keys = list(rows[0])
        atomic_write(args.csv, lambda tmp: open(tmp, "w").write(
            ",".join(keys) + "\n" + "".join(",".join(str(r[k]) for k in keys) + "\n"
                                            for r in rows)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
