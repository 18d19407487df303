"""Pieces of a training step: the cache, Adam groups, the (mixed-precision) forward pass
and the aliasing statistics that :class:`pianossm.train.trainer.Trainer` logs."""

from __future__ import annotations

import math

import os
from typing import Any

import torch

from pianossm.data.cache import AudioCache

__all__ = ["AMP_DTYPES", "EIGENVALUE_SUFFIXES", "TrainForward", "alias_stats", "mixed_forward",
           "open_cache", "param_groups"]

#: Parameters that hold the SSM eigenvalues (no weight decay unless asked).
EIGENVALUE_SUFFIXES = (".ssm.log_mag", ".ssm.angle")
#: Autocast dtype of each ``--amp`` value (``None``: no autocast).
AMP_DTYPES: dict[str, torch.dtype | None] = {"off": None, "bf16": torch.bfloat16}


def open_cache(path: str | os.PathLike[str]) -> AudioCache:
    """A cache folder, or a dataset folder holding ``cache/``."""
    path = os.fspath(path)
    inner = os.path.join(path, "cache")
    return AudioCache(inner if os.path.isfile(os.path.join(inner, "index.json")) else path)


def piano_eigenvalues(d_state: int, sample_rate: int, generator: torch.Generator,
                     f_lo: float = 27.5, tau: tuple[float, float] = (0.005, 1.0),
                     ) -> torch.Tensor:
    """Eigenvalues per training sample for a piano: resonances across the keyboard.

    The paper's S4D-Lin start spreads the modes' frequencies up to about 50 kHz (H = 64,
    16 kHz), a third of them above the Nyquist frequency, and the default trained from it
    kept them there (quantiles 10-90 %: 280 Hz-15 kHz after 70 audio-hours; the published
    S: 80-2300 Hz) and answered every key with one resonance.  Here the frequencies are
    log-uniform from ``f_lo`` (A0) to 0.45 of the sample rate (median about 450 Hz at
    16 kHz) and the decay times log-uniform in ``tau`` (s).

    Parameters
    ----------
    d_state : int
        ``H``, modes per layer.
    sample_rate : int
        Training rate in Hz.
    generator : torch.Generator
        Source of the draws (seeded: deterministic).
    f_lo : float
        Lowest frequency, Hz.
    tau : tuple of float
        Range of the decay times, s.

    Returns
    -------
    torch.Tensor
        ``(H,)`` complex128 ``-1 / (tau fs) + i 2 pi f / fs``.
    """
    u = torch.rand(2, d_state, generator=generator, dtype=torch.float64)
    f = f_lo * (0.45 * sample_rate / f_lo) ** u[0]
    t = tau[0] * (tau[1] / tau[0]) ** u[1]
    return torch.complex(-1.0 / (t * sample_rate), 2 * math.pi * f / sample_rate)


def param_groups(model: torch.nn.Module, weight_decay: float, decay_eigenvalues: bool,
                 ) -> list[dict[str, Any]]:
    """Adam groups: weight decay on everything but (by default) the eigenvalues."""
    eig, rest = [], []
    for name, p in model.named_parameters():
        (eig if name.endswith(EIGENVALUE_SUFFIXES) else rest).append(p)
    return [{"params": rest, "weight_decay": weight_decay},
            {"params": eig, "weight_decay": weight_decay if decay_eigenvalues else 0.0}]


def mixed_forward(model: torch.nn.Module, features: torch.Tensor, hop: int,
                  head: torch.Tensor | int = 0, dtype: torch.dtype | None = torch.bfloat16,
                  ) -> torch.Tensor:
    """:meth:`PianoSSM.forward` at ``Ts = 1`` under ``torch.autocast(dtype=dtype)``.

    Autocast lowers the real matmuls (input and output projections, skips, heads); the
    model itself keeps the discretisation (``exp`` of the eigenvalues, ZOH gains) and the
    complex scan out of autocast, in float32/complex64 (:meth:`DiagonalSSM.discretise`,
    :meth:`DiagonalSSM.forward`), and ``tanh`` and every sum with a float32 bias come out
    float32 (autocast's type promotion), so the state never holds fewer bits than without
    autocast.  With ``dtype=None`` this is bit for bit ``model(features, hop, 1.0, head)``.

    Parameters
    ----------
    model : PianoSSM
        The model.
    features : torch.Tensor
        ``(B, F, C)`` features at the MIDI rate.
    hop : int
        Audio samples per MIDI frame.
    head : torch.Tensor or int
        ``(B,)`` head indices, or one index for the whole batch.
    dtype : torch.dtype or None
        Autocast dtype (``torch.bfloat16``), or ``None`` for no autocast.

    Returns
    -------
    torch.Tensor
        ``(B, F * hop)`` float32 audio.
    """
    with torch.autocast(features.device.type, dtype=dtype or torch.bfloat16,
                        enabled=dtype is not None):
        return model(features, hop, 1.0, head).float()


class TrainForward(torch.nn.Module):
    """The training forward pass as a module (what DistributedDataParallel wraps).

    Parameters
    ----------
    model : PianoSSM
        The model; its parameters are this module's.
    amp : str
        ``off`` (the model's own forward) or ``bf16`` (:func:`mixed_forward`).
    """

    def __init__(self, model: torch.nn.Module, amp: str = "off") -> None:
        super().__init__()
        self.model = model
        self.amp = amp

    def forward(self, features: torch.Tensor, hop: int, head: torch.Tensor) -> torch.Tensor:
        """``(B, F, C)`` features, ``(B,)`` heads to ``(B, F * hop)`` float32 audio at ``Ts = 1``."""
        if self.amp == "off":
            return self.model(features, hop, 1.0, head)
        return mixed_forward(self.model, features, hop, head, AMP_DTYPES[self.amp])


def alias_stats(model: torch.nn.Module, train_rate: int, rates: list[int], margin: float,
                ) -> tuple[torch.Tensor, int]:
    """The aliasing penalty and the count of modes aliased at the lowest target rate.

    Parameters
    ----------
    model : PianoSSM
        The model.
    train_rate : int
        Its training rate, Hz.
    rates : list of int
        ``(R,)`` target synthesis rates, Hz.
    margin : float
        Safe fraction of each target Nyquist frequency.

    Returns
    -------
    penalty : torch.Tensor
        Scalar ``()`` :func:`pianossm.alias.alias_penalty` (differentiable).
    aliased : int
        Eigenvalues over all layers with ``|Im(lambda)| f_train / min(rates) > pi``, as
        :func:`pianossm.analysis.alias_table` counts them (0 when no target rate is below
        the training rate).
    """
    from pianossm.alias import alias_penalty
    from pianossm.analysis import alias_table

    penalty = alias_penalty(model, train_rate, rates, margin)
    rows = alias_table(model, (min(rates),))  # empty when that rate is not below training
    return penalty, int(rows[0]["total"]) if rows else 0
