"""The published reference's numerics, for exact compatibility with its audio.

The published code runs in complex64 and solves each layer's recurrence over the whole
file with the recursive odd/even associative scan (the algorithm of
``jax.lax.associative_scan``), which computes powers ``a**(2**k)`` by repeated squaring.
In float32 that drifts with the file length: on the 9.5 s golden phrase at 44.1 kHz the
published S model's output differs from an exact (float64) computation by 3.3e-3 relative
L2.  This module repeats that computation step for step, so ``pianossm render --numerics
reference`` reproduces the published audio closely.  It holds the whole file in memory
and is only for compatibility checks; the default, exact path is :mod:`pianossm.model`.
"""

from __future__ import annotations

import math

import torch

from pianossm.errors import PianoSSMError
from pianossm.model import PianoSSM
from pianossm.ssm import DiagonalSSM

__all__ = ["odd_even_scan", "reference_forward"]


def _combine(earlier: tuple[torch.Tensor, torch.Tensor], later: tuple[torch.Tensor, torch.Tensor],
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """Compose two affine steps ``x -> a x + b``: first ``earlier``, then ``later``."""
    (a_i, b_i), (a_j, b_j) = earlier, later
    return a_j * a_i, torch.addcmul(b_j, a_j, b_i)


def _interleave(even: torch.Tensor, odd: torch.Tensor) -> torch.Tensor:
    """``even[0], odd[0], even[1], ...`` along dim 0 (``even`` may be one longer)."""
    out = torch.empty((even.shape[0] + odd.shape[0], *even.shape[1:]), dtype=even.dtype)
    out[0::2], out[1::2] = even, odd
    return out


def odd_even_scan(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Inclusive scan of ``x[t] = a[t] x[t-1] + b[t]`` (``x[-1] = 0``) along dim 0.

    Written here (not taken from a library) because it must repeat the published
    computation's rounding: pairs are combined, the half-length problem is solved
    recursively, and the remaining (even) positions are filled in.

    Parameters
    ----------
    a, b : torch.Tensor
        ``(T, ...)`` complex multipliers and inputs.

    Returns
    -------
    torch.Tensor
        ``(T, ...)`` states.
    """
    return odd_even_scan_pair(a, b)[1]


def odd_even_scan_pair(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Like :func:`odd_even_scan` but returns both scanned multipliers and states."""
    n = b.shape[0]
    if n < 2:
        return a, b
    ra, rb = _combine((a[0:-1:2], b[0:-1:2]), (a[1::2], b[1::2]))
    oa, ob = odd_even_scan_pair(ra, rb)
    if n % 2 == 0:
        ea, eb = _combine((oa[:-1], ob[:-1]), (a[2::2], b[2::2]))
    else:
        ea, eb = _combine((oa, ob), (a[2::2], b[2::2]))
    return _interleave(torch.cat([a[:1], ea]), oa), _interleave(torch.cat([b[:1], eb]), ob)


def _reference_layer(ssm: DiagonalSSM, u: torch.Tensor, ts: float) -> torch.Tensor:
    """One layer as published: ``(B, T, d_in)`` float32 to ``(B, T, d_out)``."""
    if ssm.max_im is not None:
        raise PianoSSMError("--numerics reference reproduces the published models, which have "
                            "no frequency bound (max_mode_hz); use --numerics exact")
    na = torch.complex(ssm.log_mag.float(), ssm.angle.float())
    lam = torch.exp(na)
    lam = torch.complex(-lam.real.abs(), lam.imag)
    na = torch.complex(ssm.log_mag.float(), torch.angle(lam))  # re-derived angle, as published
    lam_bar = torch.exp(torch.exp(na) * ts)
    gain = (lam_bar - 1) * torch.exp(-na)
    bd = gain[:, None] * torch.view_as_complex(ssm.B.float().contiguous())  # (H, d_in)
    bias = gain * torch.view_as_complex(ssm.B_bias.float().contiguous())  # (H,)
    c = torch.view_as_complex(ssm.C.float().contiguous())  # (d_out, H)
    bu = u.to(torch.complex64) @ bd.T + bias  # (B, T, H)
    a = lam_bar[None, None].expand(bu.shape[1], bu.shape[0], -1)  # (T, B, H)
    xs = odd_even_scan(a, bu.permute(1, 0, 2)).permute(1, 0, 2)  # (B, T, H)
    return (xs @ c.T + ssm.C_bias.float().to(torch.complex64)).real


@torch.no_grad()
def reference_forward(model: PianoSSM, features: torch.Tensor, hop: int, ts: float,
                      head: int) -> torch.Tensor:
    """Whole-file synthesis with the published numerics (float32, odd/even scan).

    Parameters
    ----------
    model : PianoSSM
        Any model (weights are read in float32).
    features : torch.Tensor
        ``(1, F, C)`` MIDI-rate features.
    hop : int
        Samples per frame.
    ts : float
        Step ``f_train / f_synth``.
    head : int
        Head index.

    Returns
    -------
    torch.Tensor
        ``(1, F * hop)`` float32 audio.
    """
    z = features.float().repeat_interleave(hop, dim=1)  # held at the audio rate first
    for block in model.blocks:
        y = torch.tanh(_reference_layer(block.ssm, z, ts))
        if block.skip is not None:
            y = y + z @ block.skip.weight.float().T
        z = y / math.sqrt(2)
    w, b = model.heads.weight[head].float(), model.heads.bias[head].float()
    return (z @ w + b) * model.config.audio_std + model.config.audio_mean
