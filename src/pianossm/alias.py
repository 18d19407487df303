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
"""

from __future__ import annotations

import math

import torch

__all__ = ["ALIAS_MODES", "aliased_mask", "apply_alias_mode"]

ALIAS_MODES = ("none", "drop", "static", "clamp")
CLAMP_FRACTION = 0.95


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
    from pianossm.errors import PianoSSMError
    from pianossm.ssm import zoh_gain

    if mode not in ALIAS_MODES:
        raise PianoSSMError(f"unknown alias mode {mode!r}; allowed: {list(ALIAS_MODES)}")
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
