"""Baseline for the benchmark: the *method* of the published Python reference, re-implemented.

This is not the published code; it follows its algorithm so that its speed can be
measured in the same run as ours: float32 PyTorch, the MIDI features repeated to the audio
rate before layer 0, every input and output projection a complex matrix product over the
whole sequence at the audio rate, and the diagonal recurrence solved by a whole-sequence
parallel associative scan with the recursive odd/even scheme of ``jax.lax.associative_scan``
(``(a_i, b_i) o (a_j, b_j) = (a_j a_i, a_j b_i + b_j)``).  Memory grows with the sequence
(several ``(T, H)`` complex tensors), so the benchmark runs it on short excerpts.
"""

from __future__ import annotations

import math

import torch

from pianossm.model import PianoSSM

__all__ = ["associative_scan", "reference_forward"]

Pair = tuple[torch.Tensor, torch.Tensor]


def _combine(left: Pair, right: Pair) -> Pair:
    a_i, b_i = left
    a_j, b_j = right
    return a_j * a_i, a_j * b_i + b_j


def associative_scan(elems: Pair) -> Pair:
    """Inclusive scan of ``(a, b)`` pairs along dim 0, jax's recursive odd/even algorithm.

    Parameters
    ----------
    elems : (torch.Tensor, torch.Tensor)
        ``(T, H)`` multipliers ``a`` and inputs ``b``.

    Returns
    -------
    (torch.Tensor, torch.Tensor)
        Cumulative products and states, ``(T, H)`` each.
    """
    n = elems[0].shape[0]
    if n < 2:
        return elems
    reduced = _combine((elems[0][0:-1:2], elems[1][0:-1:2]), (elems[0][1::2], elems[1][1::2]))
    odd = associative_scan(reduced)
    if n % 2 == 0:
        even = _combine((odd[0][:-1], odd[1][:-1]), (elems[0][2::2], elems[1][2::2]))
    else:
        even = _combine(odd, (elems[0][2::2], elems[1][2::2]))
    even = (torch.cat([elems[0][:1], even[0]]), torch.cat([elems[1][:1], even[1]]))
    out = []
    for e, o in zip(even, odd):
        merged = torch.empty((n,) + e.shape[1:], dtype=e.dtype)
        merged[0::2], merged[1::2] = e, o
        out.append(merged)
    return out[0], out[1]


@torch.no_grad()
def reference_forward(model: PianoSSM, features: torch.Tensor, hop: int, ts: float,
                      head: int = 0) -> torch.Tensor:
    """Audio from ``(F, C)`` MIDI-rate features, the published reference's way.

    Returns
    -------
    torch.Tensor
        ``(F * hop,)`` float32 audio.
    """
    z = features.float().repeat_interleave(hop, dim=0)  # (T, C) at the audio rate
    for i, block in enumerate(model.blocks):
        d = block.ssm.discretise(ts)
        bu = z.to(torch.complex64) @ d.bd.T.to(torch.complex64) + d.bias  # (T, H)
        a = torch.exp(d.log_a).expand_as(bu)  # (T, H)
        _, x = associative_scan((a, bu))
        y = (x @ d.c.T.to(torch.complex64)).real + d.c_bias  # (T, d_out)
        act = torch.tanh(y)
        if block.skip is not None:
            act = act + block.skip(z)
        z = act / math.sqrt(2.0)
    w, b = model.heads.weight[head], model.heads.bias[head]
    return (z @ w + b) * model.config.audio_std + model.config.audio_mean
