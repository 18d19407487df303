"""Eigenvalue analysis: oscillation frequencies, decay times, aliasing at lower rates.

For a continuous eigenvalue ``lambda`` per training sample: frequency
``f = |Im(lambda)| f_train / (2 pi)`` Hz and decay time constant
``tau = 1 / (|Re(lambda)| f_train)`` s.  A mode is aliased at ``f_synth`` when
``f > f_synth / 2`` (equivalently ``|Im(lambda)| Ts > pi``).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
import torch

from pianossm.model import PianoSSM

__all__ = ["STANDARD_RATES", "LayerSpectrum", "alias_table", "layer_spectra", "plot_spectra"]

STANDARD_RATES = (48000, 44100, 32000, 24000, 22050, 16000, 8000)


@dataclass(frozen=True)
class LayerSpectrum:
    """Eigenvalue facts of one layer.

    Attributes
    ----------
    freq_hz : np.ndarray
        ``(H,)`` oscillation frequencies.
    tau_s : np.ndarray
        ``(H,)`` decay time constants (``inf`` for an undamped mode).
    """

    freq_hz: np.ndarray
    tau_s: np.ndarray

    def aliased(self, sample_rate: float) -> int:
        """Number of modes above ``sample_rate / 2``."""
        return int(np.sum(self.freq_hz > sample_rate / 2))


@torch.no_grad()
def layer_spectra(model: PianoSSM) -> list[LayerSpectrum]:
    """Frequencies and decay times of every layer's eigenvalues.

    Parameters
    ----------
    model : PianoSSM
        Any model; its ``train_sample_rate`` sets the time scale.

    Returns
    -------
    list of LayerSpectrum
        One per layer.
    """
    f_train = model.config.train_sample_rate
    out = []
    for block in model.blocks:
        with torch.no_grad():  # float64, as the weights are stored
            lam = block.ssm.eigenvalues(torch.float64).cpu().numpy()
        freq = np.abs(lam.imag) * f_train / (2 * math.pi)
        with np.errstate(divide="ignore"):
            tau = 1.0 / (np.abs(lam.real) * f_train)
        out.append(LayerSpectrum(freq, tau))
    return out


def alias_table(model: PianoSSM, rates: tuple[int, ...] = STANDARD_RATES,
                ) -> list[dict[str, object]]:
    """Aliased-eigenvalue counts per layer and in total for each rate below training.

    Parameters
    ----------
    model : PianoSSM
        The model.
    rates : tuple of int
        Candidate synthesis rates; rates at or above the training rate are skipped.

    Returns
    -------
    list of dict
        Per rate: ``rate``, ``per_layer`` (list of int), ``total``, ``share`` (of all modes).
    """
    spectra = layer_spectra(model)
    n_modes = sum(len(s.freq_hz) for s in spectra)
    rows = []
    for rate in sorted({r for r in rates if r < model.config.train_sample_rate}, reverse=True):
        per_layer = [s.aliased(rate) for s in spectra]
        rows.append({"rate": rate, "per_layer": per_layer, "total": sum(per_layer),
                     "share": sum(per_layer) / n_modes})
    return rows


def plot_spectra(model: PianoSSM, path: str | os.PathLike[str],
                 rates: tuple[int, ...] = (24000, 16000), title: str | None = None) -> None:
    """The paper's Figure 3: frequency over decay time per layer, with Nyquist lines.

    Parameters
    ----------
    model : PianoSSM
        The model.
    path : str or PathLike
        Output ``.png`` (written atomically).
    rates : tuple of int
        Synthesis rates whose Nyquist frequencies are drawn.
    title : str, optional
        Figure title.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pianossm.checkpoint import atomic_write

    spectra = layer_spectra(model)
    fig, axes = plt.subplots(1, len(spectra), figsize=(4 * len(spectra), 3.6), sharey=True)
    f_train = model.config.train_sample_rate
    for i, (ax, s) in enumerate(zip(np.atleast_1d(axes), spectra)):
        ax.scatter(s.tau_s, s.freq_hz, s=8, alpha=0.7)
        for rate, style in zip((f_train, *rates), ("-", "--", ":", "-.")):
            ax.axhline(rate / 2, color="k", ls=style, lw=0.8, label=f"Nyquist {rate / 1000:g} kHz")
        ax.set_xscale("log")
        ax.set_xlabel("decay time constant tau [s]")
        ax.set_title(f"layer {i + 1}")
    np.atleast_1d(axes)[0].set_ylabel("frequency f [Hz]")
    np.atleast_1d(axes)[-1].legend(fontsize=7, loc="upper right")
    fig.suptitle(title or f"Piano-SSM {model.config.preset}, trained at {f_train} Hz")
    fig.tight_layout()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)
