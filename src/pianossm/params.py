"""Parameter counts: the model's actual count and the paper's own formula.

The paper counts a complex number as two reals and reports 268.4k / 142.4k / 79.4k for
XL / L / S.  Its numbers are reproduced exactly (to the 0.1k shown) by counting, per
layer, ``2H`` (eigenvalues) + ``2 H d_in`` (B) + ``2H`` (b) + ``2 d_out H`` (C) +
``d_out`` (real output bias) + ``d_out d_in`` (skip) for **all four** layers, plus one
head ``20 + 1``.  The published code has no skip in the first layer (its output is
``tanh(y)/sqrt(2)``), so the real model has ``88 * 88 = 7744`` fewer weights than the
formula; and the multi-head models add 21 per extra head.
"""

from __future__ import annotations

from pianossm.config import PianoSSMConfig

__all__ = ["layer_counts", "model_count", "paper_count"]


def layer_counts(config: PianoSSMConfig, skip_first: bool = False) -> list[dict[str, int]]:
    """Per-layer parameter counts (complex = 2 reals).

    Parameters
    ----------
    config : PianoSSMConfig
        The model shape.
    skip_first : bool
        Count a skip in the first layer too (the paper's formula does).

    Returns
    -------
    list of dict
        One dict per layer with ``eig``, ``B``, ``b``, ``C``, ``c``, ``skip``, ``total``.
    """
    h, w, rows = config.d_state, config.widths, []
    for i in range(len(w) - 1):
        d_in, d_out = w[i], w[i + 1]
        row = {"eig": 2 * h, "B": 2 * h * d_in, "b": 2 * h, "C": 2 * d_out * h, "c": d_out,
               "skip": d_out * d_in if (i > 0 or skip_first) else 0}
        row["total"] = sum(row.values())
        rows.append(row)
    return rows


def paper_count(config: PianoSSMConfig) -> int:
    """The paper's formula: skips in all layers, one head."""
    return sum(r["total"] for r in layer_counts(config, skip_first=True)) + config.widths[-1] + 1


def model_count(config: PianoSSMConfig) -> int:
    """Trainable parameters of :class:`PianoSSM` with this config (complex = 2 reals)."""
    heads = len(config.heads) * (config.widths[-1] + 1)
    return sum(r["total"] for r in layer_counts(config)) + heads
