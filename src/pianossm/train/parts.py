"""Pieces of a training step: the cache, Adam groups, the (mixed-precision) forward pass
and the aliasing statistics that :class:`pianossm.train.trainer.Trainer` logs."""

from __future__ import annotations

import math
import os
from typing import Any

import torch

from pianossm.data.cache import AudioCache

__all__ = ["AMP_DTYPES", "EIGENVALUE_SUFFIXES", "TrainForward", "alias_stats", "bound_decay",
           "keyboard_init", "mixed_forward", "open_cache", "param_groups", "piano_eigenvalues"]

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


@torch.no_grad()
def keyboard_init(model: torch.nn.Module, sample_rate: int, generator: torch.Generator,
                  tau: tuple[float, float] = (2.0, 0.15), key_gain: float = 1.0,
                  branch: float = 0.01, head_gain: float = 10.0) -> None:
    """Start a fresh model as a keyboard of resonators: every key sounds its own pitch.

    Trained from the paper's start (or :func:`piano_eigenvalues`) on the MSSL, a model at
    this project's CPU budget answers every key with one resonance: a spectral loss gives
    a mode's frequency almost no gradient unless it already sits near a partial, and the
    routing from 88 keys to 64-256 modes then settles on the average piano sound.  Here
    the routing is set instead of learnt, as a modal synthesiser would set it:

    - every layer's modes from :func:`piano_eigenvalues`, input gains ``B`` and ``b``
      scaled by ``|lambda|`` (a unit step then moves a state by about one, whatever its
      frequency, where ``B`` alone lets the lowest modes swing a hundred times more);
    - in the first layer mode ``k`` (``k < 88``) at key ``k``'s equal-tempered frequency
      (A4 = 440 Hz), decaying in ``tau[0]`` s at A0 to ``tau[1]`` s at C8, driven only by the
      roll channel of key ``k`` with ``B = i lambda`` (its step response is a sine starting
      at zero: no click, no DC step) and read only by output channel ``k`` (gain
      ``key_gain``, no biases); every other first-layer weight at 2 % of its draw;
    - layers 2-4 pass the keys on through orthogonal skips of gain sqrt(2) (which undoes
      the block's ``1/sqrt(2)``), their SSM branches start at ``branch`` of their draw and
      without output bias (ReZero-like: training grows them), and the head is
      ``head_gain`` times its draw so the output starts near the data's level.

    At step 0 such an L model puts the loudest CQT key of all 57 isolated notes on the
    note's key (``scripts/pitch_default.py``); the paper's start, 0.

    Parameters
    ----------
    model : PianoSSM
        A fresh model whose first input channels are the 88-key roll; the first layer
        needs ``d_state >= 88`` and 88 output channels.
    sample_rate : int
        Training rate, Hz.
    generator : torch.Generator
        Source of the draws (seeded: deterministic).
    tau : tuple of float
        Decay times (s) of A0 and C8, log-interpolated between.
    key_gain, branch, head_gain : float
        Gains described above.
    """
    from pianossm.errors import PianoSSMError

    first = model.blocks[0].ssm
    if first.d_state < 88 or first.d_out != 88:
        raise PianoSSMError(f"the keyboard start needs a first layer with >= 88 modes and 88 "
                            f"outputs, got {first.d_state} modes and {first.d_out} outputs "
                            f"(preset S has 64 modes: use L or XL, or --d-state 88 or more)")
    k = torch.arange(88, dtype=torch.float64)
    freq = 440.0 * 2.0 ** ((k - 48) / 12)
    decay = tau[0] * (tau[1] / tau[0]) ** (k / 87)
    keys = torch.complex(-1.0 / (decay * sample_rate), 2 * math.pi * freq / sample_rate)
    for block in model.blocks:
        ssm = block.ssm
        lam = piano_eigenvalues(ssm.d_state, sample_rate, generator)
        if ssm is first:
            lam[:88] = keys
        ssm.set_eigenvalues(lam)
        mag = lam.abs().to(ssm.B.dtype)
        ssm.B.mul_(mag[:, None, None])
        ssm.B_bias.mul_(mag[:, None])
    first.B.mul_(0.02)
    first.C.mul_(0.02)
    idx = torch.arange(88)
    first.B[idx, idx] = torch.view_as_real((1j * keys).to(torch.complex64)).to(first.B.dtype)
    first.C[idx, idx, 0] = key_gain
    first.C[idx, idx, 1] = 0.0
    first.B_bias[:88] = 0.0
    first.C_bias.zero_()
    for block in model.blocks[1:]:
        block.ssm.C.mul_(branch)
        block.ssm.C_bias.zero_()
        torch.nn.init.orthogonal_(block.skip.weight, gain=math.sqrt(2.0), generator=generator)
    model.heads.weight.mul_(head_gain)


@torch.no_grad()
def bound_decay(model: torch.nn.Module, max_seconds: float, sample_rate: int) -> int:
    """Set every mode that decays slower than ``max_seconds`` to that decay time.

    A projection after the optimiser's step (the parameterisation, and so every renderer,
    is unchanged).  Trained on 2 s crops, a keyboard-start L model grew first-layer modes
    at 44-100 Hz decaying in 2-220 s by step 4300 while its validation over 10 s windows
    rose from 13.0 to 14.1: a hum that a 2 s crop barely sees and a long piece piles up.

    Parameters
    ----------
    model : PianoSSM
        Model whose layers' eigenvalues are bounded in place.
    max_seconds : float
        Longest decay time ``-1 / (Re(lambda) fs)``, s.
    sample_rate : int
        Training rate, Hz (the eigenvalues are per training sample).

    Returns
    -------
    int
        Modes that were moved.
    """
    limit = -1.0 / (max_seconds * sample_rate)
    moved = 0
    for block in model.blocks:
        lam = block.ssm.eigenvalues(torch.float64).detach()
        slow = lam.real > limit * (1 - 1e-3)  # float32 parameters: a moved mode lands within
        if bool(slow.any()):
            moved += int(slow.sum())
            lam = torch.where(slow, torch.complex(torch.full_like(lam.real, limit), lam.imag),
                              lam)
            block.ssm.set_eigenvalues(lam)
    return moved


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
