"""Aliasing of eigenvalues when a model synthesises below its training rate, and remedies.

A mode with continuous eigenvalue ``lambda`` (per training sample) oscillates at
``f = |Im(lambda)| f_train / (2 pi)``.  At a synthesis rate ``f_synth`` with
``Ts = f_train / f_synth``, ZOH gives ``exp(lambda Ts)``, whose angle wraps when
``|Im(lambda)| Ts > pi``: the mode then rings at a folded, wrong frequency (the paper's
Table 3 links the count of such modes to the error).  Modes (``--alias-mode``):

``none``
    The paper's behaviour: discretise every mode as it is.
``drop``
    Remove aliased modes (their input gain set to zero).
``static``
    Drop the aliased modes' dynamics but keep their DC gain: the mode becomes a
    memoryless path, ``lambda_d = 0`` and ``[B_d b_d] = -[B b] / lambda``, so
    ``x[k] = -(B u[k] + b) / lambda`` is exactly the mode's steady state.  A mode above
    the new Nyquist frequency cannot be represented, but its low-frequency response
    (which is flat there, as its resonance lies above everything the output can hold)
    is kept, so the layer's gain at DC and low frequencies is unchanged.
``clamp``
    Keep the mode's decay and move its frequency just below the new Nyquist frequency,
    ``|Im(lambda)| Ts = 0.95 pi``, scaling ``B, b`` by ``lambda' / lambda`` so the DC
    gain ``-C B / lambda`` is unchanged.
``oversample``
    Synthesise at an internal rate ``OVERSAMPLE`` times the requested one (at most the
    training rate), treat the modes still aliased there as ``static``, and resample to
    the requested rate with soxr (very high quality, streaming).  This is how audio DSP
    runs nonlinear stages: the tanh between layers creates harmonics that alias at a low
    rate just as fast modes do, and oversampling handles both; the price is
    ``OVERSAMPLE`` times the compute of the requested rate (still less than the training
    rate's when ``OVERSAMPLE * f_synth < f_train``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch is imported where a function needs it: rate logic stays light
    import torch

__all__ = ["ALIAS_MODES", "OVERSAMPLE", "alias_penalty", "aliased_mask", "apply_alias_mode",
           "internal_rate", "resample_blocks"]

ALIAS_MODES = ("none", "drop", "static", "clamp", "oversample")
CLAMP_FRACTION = 0.95
#: Internal rate of ``oversample`` as a multiple of the requested rate.
OVERSAMPLE = 1.5


def internal_rate(mode: str, train_rate: int, synth_rate: int) -> int:
    """The rate a model actually runs at to deliver ``synth_rate`` under ``mode``.

    Parameters
    ----------
    mode : str
        Alias mode.
    train_rate, synth_rate : int
        Hz.

    Returns
    -------
    int
        ``synth_rate`` except for ``oversample`` below the training rate, where it is
        ``min(train_rate, round(OVERSAMPLE * synth_rate))``.
    """
    if mode != "oversample" or synth_rate >= train_rate:
        return synth_rate
    return min(train_rate, round(OVERSAMPLE * synth_rate))


def resample_blocks(blocks: Iterable[np.ndarray], rate_in: int, rate_out: int
                    ) -> Iterator[np.ndarray]:
    """Resample a stream of float32 audio blocks with soxr, memory bounded by the block.

    Parameters
    ----------
    blocks : iterable of np.ndarray
        ``(n_i,)`` float32 blocks at ``rate_in``.
    rate_in, rate_out : int
        Hz.

    Yields
    ------
    np.ndarray
        ``(m_i,)`` float32 blocks at ``rate_out``; their total length is
        ``round(sum(n_i) * rate_out / rate_in)`` (soxr's delay is compensated).
    """
    if rate_in == rate_out:
        yield from blocks
        return
    import soxr

    stream = soxr.ResampleStream(rate_in, rate_out, 1, dtype="float32", quality="VHQ")
    for block in blocks:
        out = stream.resample_chunk(np.ascontiguousarray(block, dtype=np.float32))
        if len(out):
            yield out
    tail = stream.resample_chunk(np.zeros(0, dtype=np.float32), last=True)
    if len(tail):
        yield tail


def aliased_mask(lam: torch.Tensor, ts: float) -> torch.Tensor:
    """Which modes oscillate above the Nyquist frequency at step ``ts``.

    Parameters
    ----------
    lam : torch.Tensor
        ``(H,)`` complex continuous eigenvalues per training sample.
    ts : float
        ``f_train / f_synth``.

    Returns
    -------
    torch.Tensor
        ``(H,)`` bool, ``|Im(lambda)| * ts > pi``.
    """
    return lam.imag.abs() * ts > math.pi


def apply_alias_mode(lam: torch.Tensor, b: torch.Tensor, bias: torch.Tensor, ts: float,
                     mode: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Discretise with one of :data:`ALIAS_MODES`.

    Parameters
    ----------
    lam : torch.Tensor
        ``(H,)`` complex continuous eigenvalues.
    b : torch.Tensor
        ``(H, d_in)`` complex continuous ``B``.
    bias : torch.Tensor
        ``(H,)`` complex continuous ``b``.
    ts : float
        Step in training sample periods.
    mode : str
        Alias mode.

    Returns
    -------
    log_a : torch.Tensor
        ``(H,)`` complex ``log(lambda_d)`` (``-inf`` real part for a memoryless mode).
    bd : torch.Tensor
        ``(H, d_in)`` complex ``B_d``.
    bias_d : torch.Tensor
        ``(H,)`` complex ``b_d``.
    """
    import torch

    from pianossm.errors import PianoSSMError
    from pianossm.zoh import zoh_gain

    if mode not in ALIAS_MODES:
        raise PianoSSMError(f"unknown alias mode {mode!r}; allowed: {list(ALIAS_MODES)}")
    if mode == "oversample":  # the rate change happens outside; what still aliases is static
        mode = "static"
    mask = aliased_mask(lam, ts) if mode != "none" else torch.zeros_like(lam.real, dtype=torch.bool)
    if mode == "clamp":
        im = torch.sign(lam.imag) * CLAMP_FRACTION * math.pi / ts
        new = torch.complex(lam.real, im)
        scale = torch.where(mask, new / lam, torch.ones_like(lam))
        lam = torch.where(mask, new, lam)
        b, bias = b * scale[:, None], bias * scale
    gain = zoh_gain(lam, ts)  # (H,)
    log_a = lam * ts
    bd, bias_d = gain[:, None] * b, gain * bias
    if mode == "drop":
        bd = torch.where(mask[:, None], torch.zeros_like(bd), bd)
        bias_d = torch.where(mask, torch.zeros_like(bias_d), bias_d)
    elif mode == "static":
        static = -1.0 / lam
        log_a = torch.where(mask, torch.full_like(log_a, complex(-80.0, 0.0)), log_a)
        bd = torch.where(mask[:, None], static[:, None] * b, bd)
        bias_d = torch.where(mask, static * bias, bias_d)
    return log_a, bd, bias_d


def alias_penalty(model: torch.nn.Module, train_rate: int, target_rates: list[int] | tuple[int, ...],
                  margin: float = 0.9) -> torch.Tensor:
    """Aliasing-aware training regulariser: how far eigenvalues oscillate past a target Nyquist.

    For every SSM layer of ``model`` and every target rate ``f_t`` (``Ts = f_train / f_t``),
    each mode's overshoot ``relu(|Im(lambda)| Ts / pi - margin)`` (a hinge, so the pull is
    bounded however far a mode sits past Nyquist) is weighted by the
    mode's share of the layer's output energy proxy ``|C_n| |B_n|`` (a mode that the layer
    does not use costs nothing), and the sum is averaged over layers and rates.  Zero when
    every mode stays below ``margin`` times the Nyquist frequency of every target rate, so
    it only pulls on the modes that would alias; its gradient moves their frequency down
    (through the ``angle``/``log_mag`` parameters) or shrinks their weight.

    Parameters
    ----------
    model : torch.nn.Module
        A :class:`pianossm.model.PianoSSM` (anything with ``DiagonalSSM`` submodules).
    train_rate : int
        The rate the model trains at, Hz.
    target_rates : sequence of int
        Synthesis rates the model should also serve, Hz (rates >= ``train_rate`` are ignored).
    margin : float
        Fraction of the target Nyquist frequency that counts as safe.

    Returns
    -------
    torch.Tensor
        Scalar ``()`` penalty, differentiable.
    """
    import torch

    # Duck-typed (a module with eigenvalues and B/C weights) so alias.py needs no ssm import.
    layers = [m for m in model.modules()
              if callable(getattr(m, "eigenvalues", None)) and hasattr(m, "B") and hasattr(m, "C")]
    rates = [r for r in target_rates if r < train_rate]
    device = layers[0].log_mag.device if layers else None
    total = torch.zeros((), device=device)
    if not layers or not rates:
        return total
    for ssm in layers:
        lam = ssm.eigenvalues()  # (H,)
        c = torch.view_as_complex(ssm.C.contiguous()).abs().sum(0)  # (H,)
        b = torch.view_as_complex(ssm.B.contiguous()).abs().sum(1)  # (H,)
        weight = c * b
        weight = (weight / weight.sum().clamp_min(1e-12)).detach()  # (H,)
        for rate in rates:
            over = torch.relu(lam.imag.abs() * (train_rate / rate) / math.pi - margin)
            total = total + (weight * over).sum()
    return total / (len(layers) * len(rates))
