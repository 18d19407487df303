"""Evaluation reports: text tables and CSV files of window scores and onset timing."""

from __future__ import annotations

import csv
import io
import os

import numpy as np

from pianossm.evaluate.timing import PieceTiming, timing_rows
from pianossm.evaluate.windows import WindowScore

__all__ = ["format_table", "format_timing_table", "summarise", "write_csv", "write_timing_csv"]


def summarise(scores: list[WindowScore]) -> tuple[list[tuple[str, int, float]], float]:
    """Per-piece means ``(piece, windows, mssl)`` in order of appearance, and the mean
    over all windows."""
    pieces: dict[str, list[float]] = {}
    for s in scores:
        pieces.setdefault(s.piece, []).append(s.mssl)
    rows = [(p, len(v), float(np.mean(v))) for p, v in pieces.items()]
    return rows, float(np.mean([s.mssl for s in scores]))


def format_table(columns: dict[str, list[WindowScore]]) -> str:
    """A text table: one row per piece, one column per candidate, and the mean row."""
    names = list(columns)
    per = {n: summarise(columns[n]) for n in names}
    pieces = [r[0] for r in per[names[0]][0]]
    width = max([len(p) for p in pieces] + [6])
    lines = [f"{'piece':<{width}} {'win':>4} " + " ".join(f"{n:>12}" for n in names)]
    for i, piece in enumerate(pieces):
        cells = " ".join(f"{per[n][0][i][2]:>12.4f}" for n in names)
        lines.append(f"{piece:<{width}} {per[names[0]][0][i][1]:>4} {cells}")
    total = sum(r[1] for r in per[names[0]][0])
    lines.append(f"{'mean':<{width}} {total:>4} " +
                 " ".join(f"{per[n][1]:>12.4f}" for n in names))
    return "\n".join(lines)


def write_csv(path: str | os.PathLike[str], columns: dict[str, list[WindowScore]]) -> None:
    """Per-window scores, one row per window and candidate, written atomically."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["candidate", "piece", "start_s", "seconds", "mssl"])
    for name, scores in columns.items():
        for s in scores:
            w.writerow([name, s.piece, f"{s.start_s:.3f}", f"{s.seconds:.3f}", f"{s.mssl:.6f}"])
    _write_text(path, buf.getvalue())


_TIMING_KEYS = ("n", "mean_ms", "median_ms", "bias_ms", "std_ms", "within_10ms",
                "within_25ms", "within_50ms", "within_100ms")


def format_timing_table(columns: dict[str, list[PieceTiming]]) -> str:
    """A text table: per candidate, one row per piece and an ``all`` row.

    Columns: notes, mean and median absolute onset error (ms), mean signed error
    (``bias``, positive = late, ms) and the share of notes within 10/25/50/100 ms.
    """
    from pianossm.align.metrics import THRESHOLDS_MS

    rows = {name: timing_rows(t) for name, t in columns.items()}
    cw = max([len(n) for n in rows] + [9])
    pw = max([len(p) for r in rows.values() for p, _ in r] + [5])
    head = (f"{'candidate':<{cw}} {'piece':<{pw}} {'notes':>6} {'mean ms':>8} "
            f"{'median ms':>9} {'bias ms':>8}" + "".join(f"{f'<={t}ms':>9}"
                                                      for t in THRESHOLDS_MS))
    lines = [head, "-" * len(head)]
    for name, rs in rows.items():
        for piece, r in rs:
            lines.append(f"{name:<{cw}} {piece:<{pw}} {int(r['n']):>6} {r['mean_ms']:>8.1f} "
                         f"{r['median_ms']:>9.1f} {r['bias_ms']:>+8.1f}"
                         + "".join(f"{100 * r[f'within_{t}ms']:>8.1f}%" for t in THRESHOLDS_MS))
    return "\n".join(lines)


def write_timing_csv(path: str | os.PathLike[str], columns: dict[str, list[PieceTiming]],
                     ) -> None:
    """Per-piece and pooled (``all``) timing statistics, one row per candidate and piece,
    written atomically.  Columns: ``candidate, piece, n, mean_ms, median_ms, bias_ms,
    std_ms, within_10ms .. within_100ms`` (shares 0..1)."""
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["candidate", "piece", *_TIMING_KEYS])
    for name, timings in columns.items():
        for piece, r in timing_rows(timings):
            w.writerow([name, piece, int(r["n"]), *(f"{r[k]:.6f}" for k in _TIMING_KEYS[1:])])
    _write_text(path, buf.getvalue())


def _write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    from pianossm.checkpoint import atomic_write

    def write(tmp: str) -> None:
        with open(tmp, "w", newline="") as f:
            f.write(text)

    atomic_write(path, write)
