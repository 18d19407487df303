"""Onset-error metrics of an alignment and the comparison table of ``align-eval``."""

from __future__ import annotations

import numpy as np

from pianossm.align.notes import Notes
from pianossm.errors import PianoSSMError

__all__ = ["THRESHOLDS_MS", "format_table", "onset_errors", "summarize"]

#: Tolerances of the "share of onsets within" columns, in milliseconds.
THRESHOLDS_MS = (10, 25, 50, 100)


def onset_errors(aligned: Notes, reference: Notes) -> np.ndarray:
    """Absolute onset errors of corresponding notes (same order), ``(N,)`` seconds."""
    if len(aligned) != len(reference):
        raise PianoSSMError(f"aligned ({len(aligned)}) and reference ({len(reference)}) "
                            f"note counts differ")
    return np.abs(aligned.onset - reference.onset)


def summarize(errors: np.ndarray) -> dict[str, float]:
    """Mean/median absolute error (ms) and share within each tolerance of ``(N,)`` errors.

    Returns
    -------
    dict
        ``n``, ``mean_ms``, ``median_ms``, ``within_10ms`` ... ``within_100ms`` (0..1).
    """
    errors = np.asarray(errors, np.float64)
    if errors.size == 0:
        raise PianoSSMError("no onset errors to summarise (no notes)")
    out = {"n": float(errors.size), "mean_ms": 1000 * float(errors.mean()),
           "median_ms": 1000 * float(np.median(errors))}
    for t in THRESHOLDS_MS:
        out[f"within_{t}ms"] = float(np.mean(errors <= t / 1000 + 1e-9))
    return out


def format_table(rows: dict[str, dict[str, float]]) -> str:
    """A fixed-width table of :func:`summarize` results, one row per method."""
    head = f"{'method':<14}{'notes':>7}{'mean ms':>9}{'median ms':>11}" + "".join(
        f"{f'<={t}ms':>9}" for t in THRESHOLDS_MS)
    lines = [head, "-" * len(head)]
    for name, r in rows.items():
        lines.append(f"{name:<14}{int(r['n']):>7}{r['mean_ms']:>9.1f}{r['median_ms']:>11.1f}"
                     + "".join(f"{100 * r[f'within_{t}ms']:>8.1f}%" for t in THRESHOLDS_MS))
    return "\n".join(lines)
