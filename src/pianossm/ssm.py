"""A diagonal complex state-space layer (continuous time, MIMO), readable top to bottom.

Continuous time, per state ``n``::

    x_n'(t) = lambda_n x_n(t) + B_n u(t) + b_n
    y(t)    = Re(C x(t)) + c

with ``lambda_n = exp(r_n + i phi_n)`` kept in polar form.  Stability is a
parameterisation: the real part is folded, ``Re(lambda) -> -|Re(lambda)|``, so every
parameter value gives a stable layer and already-stable values are left as they are
(the published checkpoints' own rule).  ``lambda`` is measured in units of the training
sample period, so with ``Ts = f_train / f_synth`` zero-order hold gives::

    lambda_d = exp(lambda Ts),   [B_d  b_d] = (lambda_d - 1) / lambda * [B  b]
    x[k] = lambda_d x[k-1] + B_d u[k] + b_d,   y[k] = Re(C x[k]) + c

Two modes share one set of weights: :meth:`DiagonalSSM.forward` (parallel over a whole
sequence, for training) and :meth:`DiagonalSSM.step` (one sample, for streaming).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from pianossm.alias import apply_alias_mode
from pianossm.errors import PianoSSMError
from pianossm.gemm import linear as numpy_linear
from pianossm.scan import DEFAULT_CHUNK, lti_scan
from pianossm.scan_compiled import compiled_scan, compiled_scan_available
from pianossm.zoh import Discretised, zoh_gain

__all__ = ["SCAN_BACKENDS", "DiagonalSSM", "Discretised", "scan_backend", "zoh_gain"]

#: Recurrence implementations of the parallel pass: ``auto`` picks ``compiled`` (numba,
#: own backward) where it serves the tensors (CPU, float32/64), else ``chunked``.
SCAN_BACKENDS = ("auto", "compiled", "chunked")

#: Whether the compiled path's input and output products run on numpy's BLAS
#: (:mod:`pianossm.gemm`); a switch for benchmarks.
NUMPY_GEMM = True


class DiagonalSSM(nn.Module):
    """Diagonal complex SSM layer ``d_in -> d_out`` with ``H`` complex states.

    Parameters
    ----------
    d_in, d_state, d_out : int
        Input channels, complex states ``H``, output channels.
    dt_min, dt_max : float
        Range of the log-uniform ``Delta`` of the initialisation.
    """

    def __init__(self, d_in: int, d_state: int, d_out: int,
                 dt_min: float = 1e-3, dt_max: float = 1e-1) -> None:
        super().__init__()
        self.d_in, self.d_state, self.d_out = d_in, d_state, d_out
        self.log_mag = nn.Parameter(torch.zeros(d_state))  # (H,) r = log|lambda|
        self.angle = nn.Parameter(torch.zeros(d_state))  # (H,) phi = arg(lambda)
        self.B = nn.Parameter(torch.zeros(d_state, d_in, 2))  # (H, d_in, re/im)
        self.B_bias = nn.Parameter(torch.zeros(d_state, 2))  # (H, re/im)
        self.C = nn.Parameter(torch.zeros(d_out, d_state, 2))  # (d_out, H, re/im)
        self.C_bias = nn.Parameter(torch.zeros(d_out))  # (d_out,) real: Re() drops the rest
        #: How modes above the synthesis Nyquist frequency are discretised (a run-time
        #: property like ``Ts``, not saved): see :mod:`pianossm.alias`.
        self.alias_mode = "none"
        #: Bound on ``|Im(lambda)|`` per training sample (``None``: free), set by
        #: :class:`pianossm.model.PianoSSM` from ``config.max_mode_hz``.
        self.max_im: float | None = None
        #: Which recurrence :meth:`forward` runs, one of :data:`SCAN_BACKENDS`.
        self.scan = "auto"
        self.reset_parameters(dt_min, dt_max)

    @torch.no_grad()
    def reset_parameters(self, dt_min: float = 1e-3, dt_max: float = 1e-1) -> None:
        """The paper's initialisation.

        S4D-Lin eigenvalues ``-1/2 + i pi n`` scaled by a log-uniform ``Delta`` in
        ``[dt_min, dt_max]`` (so ``lambda`` is per training sample), orthogonal ``B`` and
        ``C`` with gain ``sqrt(1/3)`` per real and imaginary part, uniform [0, 1) biases.
        """
        h = self.d_state
        n = torch.arange(h, dtype=torch.float64)
        delta = torch.exp(torch.empty(h, dtype=torch.float64).uniform_(
            math.log(dt_min), math.log(dt_max)))
        self.set_eigenvalues(torch.complex(-0.5 * torch.ones_like(n), math.pi * n) * delta)
        gain = math.sqrt(1.0 / 3.0)
        for part in range(2):
            nn.init.orthogonal_(self.B.data[..., part], gain=gain)
            nn.init.orthogonal_(self.C.data[..., part], gain=gain)
        self.B_bias.uniform_(0.0, 1.0)
        self.C_bias.uniform_(0.0, 1.0)

    @torch.no_grad()
    def set_eigenvalues(self, lam: torch.Tensor) -> None:
        """Set the continuous-time eigenvalues per training sample.

        Parameters
        ----------
        lam : torch.Tensor
            ``(H,)`` complex, ``Re < 0``.
        """
        lam = lam.to(torch.complex128)
        if lam.shape != (self.d_state,) or not bool((lam.real < 0).all()):
            raise PianoSSMError(f"need {self.d_state} eigenvalues with negative real parts")
        self.log_mag.copy_(torch.log(lam.abs()))
        self.angle.copy_(torch.angle(lam))

    def eigenvalues(self, dtype: torch.dtype | None = None) -> torch.Tensor:
        """Stable continuous-time eigenvalues per training sample.

        Parameters
        ----------
        dtype : torch.dtype, optional
            Real dtype to compute in (default: the parameters').

        Returns
        -------
        torch.Tensor
            ``(H,)`` complex ``lambda`` with ``Re(lambda) <= 0``.
        """
        log_mag, angle = (self.log_mag, self.angle) if dtype is None else (
            self.log_mag.to(dtype), self.angle.to(dtype))
        mag = torch.exp(log_mag)
        im = mag * torch.sin(angle)
        if self.max_im is not None:  # smooth bound: |Im| < max_im, identity for small |Im|
            im = self.max_im * torch.tanh(im / self.max_im)
        return torch.complex(-(mag * torch.cos(angle)).abs(), im)

    def discretise(self, ts: float = 1.0) -> Discretised:
        """Zero-order-hold matrices for step ``Ts = f_train / f_synth``.

        Parameters
        ----------
        ts : float
            Step in training sample periods.

        Returns
        -------
        Discretised
            ``log_a (H,)``, ``bd (H, d_in)``, ``bias (H,)``, ``c (d_out, H)``, ``c_bias (d_out,)``.
            Computed with autocast off: the eigenvalues and gains keep float32 even inside a
            mixed-precision region.
        """
        with torch.autocast(self.log_mag.device.type, enabled=False):
            return self._discretise(ts)

    def _discretise(self, ts: float) -> Discretised:
        """:meth:`discretise` without the autocast guard."""
        lam = self.eigenvalues()  # (H,)
        b = torch.view_as_complex(self.B.contiguous())  # (H, d_in)
        bias = torch.view_as_complex(self.B_bias.contiguous())  # (H,)
        c = torch.view_as_complex(self.C.contiguous())  # (d_out, H)
        if self.alias_mode != "none":
            log_a, bd, bias_d = apply_alias_mode(lam, b, bias, ts, self.alias_mode)
            return Discretised(log_a, bd, bias_d, c, self.C_bias)
        gain = zoh_gain(lam, ts)  # (H,)
        return Discretised(lam * ts, gain[:, None] * b, gain * bias, c, self.C_bias)

    def default_state(self, batch: int, dtype: torch.dtype = torch.complex64) -> torch.Tensor:
        """Zero state, ``(batch, H)`` complex."""
        return torch.zeros(batch, self.d_state, dtype=dtype, device=self.log_mag.device)

    def forward(self, u: torch.Tensor | None, ts: float = 1.0, state: torch.Tensor | None = None,
                bu: torch.Tensor | None = None, chunk: int = DEFAULT_CHUNK, hold: int = 1,
                t_len: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Parallel pass over a whole sequence.

        Parameters
        ----------
        u : torch.Tensor
            ``(B, F, d_in)`` real input, each row held for ``hold`` samples (ignored when
            ``bu`` is given).
        ts : float
            Step in training sample periods.
        state : torch.Tensor, optional
            ``(B, H)`` complex state before the first sample; zero when omitted.
        bu : torch.Tensor, optional
            ``(B, T, H)`` complex ``B_d u + b_d`` computed by the caller (chunked scan only).
        chunk : int
            Chunk length of the chunked scan.
        hold : int
            Samples per input row (the first layer's MIDI frames: the input projection
            runs at the MIDI rate and is held).
        t_len : int, optional
            Output samples, at most ``F * hold`` (default ``F * hold``).

        Returns
        -------
        y : torch.Tensor
            ``(B, T, d_out)`` real output.
        state : torch.Tensor
            ``(B, H)`` complex state after the last sample.
        """
        d = self.discretise(ts)
        if bu is None:
            if self.resolve_scan(u) == "compiled":
                return self._forward_compiled(u, d, state, hold, t_len)
            bu = self.input_projection(u, d)  # (B, F, H); a matmul autocast may lower
            if hold > 1:
                bu = bu.repeat_interleave(hold, dim=1)
            if t_len is not None:
                bu = bu[:, :t_len]
        with torch.autocast(bu.device.type, enabled=False):  # the state stays complex64
            x = lti_scan(d.log_a, bu, state, chunk)  # (B, T, H)
        return self.output_projection(x, d), x[:, -1]

    def resolve_scan(self, t: torch.Tensor) -> str:
        """The scan :meth:`forward` uses for inputs like ``t``: ``compiled`` or ``chunked``."""
        if self.scan == "chunked":
            return "chunked"
        ok = compiled_scan_available(t)
        if self.scan == "compiled" and not ok:
            raise PianoSSMError(f"the compiled scan needs numba and a float32/float64 CPU "
                                f"tensor; got {t.dtype} on {t.device}")
        return "compiled" if ok else "chunked"

    def _forward_compiled(self, u: torch.Tensor, d: Discretised, state: torch.Tensor | None,
                          hold: int, t_len: int | None) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`forward` on :func:`pianossm.scan_compiled.compiled_scan`: real ``[Re | Im]``
        buffers, one product in and one out, no complex intermediates."""
        h = self.d_state
        w_in = torch.cat([d.bd.real, d.bd.imag], 0)  # (2H, d_in)
        b_in = torch.cat([d.bias.real, d.bias.imag])  # (2H,)
        # Under autocast the bias is added outside the product (in float32, as the chunked
        # path does); otherwise it is fused into the product.
        mixed = torch.is_autocast_enabled(u.device.type)
        lin = torch.nn.functional.linear
        fused = numpy_linear if NUMPY_GEMM else lin
        v = (lin(u, w_in) + b_in) if mixed else fused(u, w_in.to(u.dtype), b_in.to(u.dtype))  # (B, F, 2H)
        x0 = None if state is None else torch.cat([state.real, state.imag], -1)  # (B, 2H)
        with torch.autocast(u.device.type, enabled=False):
            x = compiled_scan(torch.exp(d.log_a), v.float() if v.dtype == torch.bfloat16 else v,
                              x0, hold, t_len)  # (B, T, 2H)
        w_out = torch.cat([d.c.real, -d.c.imag], 1)  # (d_out, 2H)
        y = (lin(x, w_out) + d.c_bias) if mixed else fused(x, w_out.to(x.dtype), d.c_bias.to(x.dtype))
        return y, torch.complex(x[:, -1, :h], x[:, -1, h:])

    @staticmethod
    def input_projection(u: torch.Tensor, d: Discretised) -> torch.Tensor:
        """``B_d u + b_d``: ``(B, T, d_in)`` real to ``(B, T, H)`` complex."""
        re = u @ d.bd.real.T + d.bias.real  # (B, T, H)
        im = u @ d.bd.imag.T + d.bias.imag  # (B, T, H)
        return torch.complex(re, im)

    @staticmethod
    def output_projection(x: torch.Tensor, d: Discretised) -> torch.Tensor:
        """``Re(C x) + c``: ``(..., H)`` complex to ``(..., d_out)`` real."""
        return x.real @ d.c.real.T - x.imag @ d.c.imag.T + d.c_bias

    def step(self, u: torch.Tensor, state: torch.Tensor, d: Discretised | None = None,
             ts: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
        """Advance one sample.

        Parameters
        ----------
        u : torch.Tensor
            ``(B, d_in)`` real input at this sample.
        state : torch.Tensor
            ``(B, H)`` complex state before it.
        d : Discretised, optional
            Precomputed matrices (pass them when stepping many times).
        ts : float
            Step, used when ``d`` is not given.

        Returns
        -------
        y : torch.Tensor
            ``(B, d_out)`` real output.
        state : torch.Tensor
            ``(B, H)`` complex state after it.
        """
        d = self.discretise(ts) if d is None else d
        x = d.a * state + self.input_projection(u, d)  # (B, H)
        return self.output_projection(x, d), x


def scan_backend(model: nn.Module, device: torch.device | str = "cpu",
                 dtype: torch.dtype = torch.float32) -> str:
    """The scan every layer of ``model`` runs for inputs on ``device``/``dtype``.

    Returns
    -------
    str
        ``compiled`` or ``chunked`` (``mixed`` if layers differ).
    """
    probe = torch.empty(0, device=device, dtype=dtype)
    names = {m.resolve_scan(probe) for m in model.modules() if isinstance(m, DiagonalSSM)}
    return names.pop() if len(names) == 1 else "mixed"
