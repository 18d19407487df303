"""Training logs: ``metrics.jsonl`` lines, TensorBoard scalars, audio and spectrograms."""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np

__all__ = ["append_metrics", "spectrogram_figure", "tensorboard_writer", "trim_metrics"]


def append_metrics(folder: str, rec: dict[str, float], kind: str, writer: Any, step: int,
                   ) -> None:
    """Append one record to ``folder/metrics.jsonl`` and its scalars to TensorBoard.

    Parameters
    ----------
    folder : str
        The run folder.
    rec : dict
        Scalar values (a ``step`` key is written to the file, not as a scalar).
    kind : str
        ``train`` or ``val`` (the line's ``kind`` and the TensorBoard tag prefix).
    writer : SummaryWriter or None
        TensorBoard writer, or ``None`` for the file only.
    step : int
        Global step of the scalars.
    """
    with open(os.path.join(folder, "metrics.jsonl"), "a") as f:
        f.write(json.dumps({"kind": kind, **rec}) + "\n")
    if writer is not None:
        for k, v in rec.items():
            if k != "step":
                writer.add_scalar(f"{kind}/{k}", v, step)


def trim_metrics(folder: str, step: int) -> None:
    """Drop ``metrics.jsonl`` lines written after ``step`` (a resumed run redoes them)."""
    path = os.path.join(folder, "metrics.jsonl")
    if not os.path.isfile(path):
        return
    with open(path) as f:
        keep = [ln for ln in f if ln.strip() and json.loads(ln)["step"] <= step]
    with open(path, "w") as f:
        f.writelines(keep)


def tensorboard_writer(folder: str) -> Any:
    """A SummaryWriter, or ``None`` (with a warning) when tensorboard is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        import logging

        logging.getLogger(__name__).warning("tensorboard is not installed; no TensorBoard logs")
        return None
    return SummaryWriter(folder)


def spectrogram_figure(pred: np.ndarray, ref: np.ndarray, rate: int) -> Any:
    """Log-magnitude spectrograms of prediction and reference, one above the other."""
    import librosa
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, 1, figsize=(8, 5), sharex=True)
    for ax, audio, title in ((axes[0], pred, "prediction"), (axes[1], ref, "reference")):
        spec = np.abs(librosa.stft(audio, n_fft=1024, hop_length=256))
        ax.imshow(20 * np.log10(spec + 1e-5), origin="lower", aspect="auto", vmin=-100,
                  extent=(0, len(audio) / rate, 0, rate / 2000))
        ax.set_title(title)
        ax.set_ylabel("kHz")
    axes[1].set_xlabel("s")
    fig.tight_layout()
    return fig
