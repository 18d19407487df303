"""``linear`` on numpy's BLAS for the training forward's long, thin matrix products.

PyTorch's CPU build multiplies float32 matrices with MKL, which on the AMD EPYC cores we
train on ran the training step's shapes (``(B*T, 20..176) x (20..176, 20..512)``) at about
45 GFLOP/s, where numpy's OpenBLAS ran the same products at 65-87 GFLOP/s (measured in one
run, 1 thread).  :func:`linear` is ``torch.nn.functional.linear`` with its forward and both
backward products done by ``numpy.matmul``; it is used only on the compiled (CPU) training
path and only where nothing else (autocast, a GPU, an exotic dtype) is involved, else it
falls back to PyTorch.  numpy's BLAS threads follow ``torch.get_num_threads()``.

:func:`tanh_skip` is here for the same reason: this CPU build of PyTorch computes ``tanh``
element by element (29 ms for 64000 x 88 float32 values, measured), numpy's SIMD ``tanh``
the same in 2.1 ms.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["linear", "tanh_skip"]


def _blas_threads() -> None:
    from pianossm.engine.core import set_blas_threads

    set_blas_threads(max(1, torch.get_num_threads()))


def _column_sums(g: np.ndarray, rows: int = 1024) -> np.ndarray:
    """``g.sum(0)`` of a ``(M, N)`` array, in ``g``'s dtype: float32 sums of blocks of
    ``rows`` rows added in float64 (relative error ~1e-7 where one float64 pass over a
    float32 array costs about 3x as much; float64 arrays are summed directly)."""
    m = g.shape[0]
    if g.dtype == np.float64 or m <= rows:
        return g.sum(0, dtype=np.float64).astype(g.dtype)
    full = m - m % rows
    total = g[:full].reshape(-1, rows, g.shape[1]).sum(1).sum(0, dtype=np.float64)
    total += g[full:].sum(0, dtype=np.float64)
    return total.astype(g.dtype)


class _Linear(torch.autograd.Function):
    """``y = x w^T + b`` with numpy products (module docstring)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None) -> torch.Tensor:
        _blas_threads()
        x2 = x.detach().reshape(-1, x.shape[-1])  # (M, K)
        xn = x2.numpy() if x2.is_contiguous() else np.ascontiguousarray(x2.numpy())
        with np.errstate(all="ignore"):  # overflow is the trainer's to report (divergence)
            out = np.matmul(xn, w.detach().numpy().T)  # (M, N)
            if b is not None:
                out += b.detach().numpy()
        ctx.save_for_backward(x, w)
        return torch.from_numpy(out).reshape(*x.shape[:-1], w.shape[0])

    @staticmethod
    def backward(ctx, g: torch.Tensor):  # type: ignore[override]
        x, w = ctx.saved_tensors
        _blas_threads()
        gn = g.reshape(-1, g.shape[-1]).contiguous().numpy()  # (M, N)
        gx = gw = gb = None
        with np.errstate(all="ignore"):  # as in the forward: divergence is the trainer's
            if ctx.needs_input_grad[0]:
                gx = torch.from_numpy(np.matmul(gn, w.detach().numpy())).reshape(x.shape)
            if ctx.needs_input_grad[1]:
                xn = x.detach().reshape(-1, x.shape[-1]).contiguous().numpy()
                gw = torch.from_numpy(np.matmul(gn.T, xn))  # (N, K)
            if ctx.needs_input_grad[2]:
                gb = torch.from_numpy(_column_sums(gn))
        return gx, gw, gb


def linear(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None = None) -> torch.Tensor:
    """``torch.nn.functional.linear(x, w, b)``, on numpy's BLAS where that serves.

    Parameters
    ----------
    x : torch.Tensor
        ``(..., K)`` input.
    w : torch.Tensor
        ``(N, K)`` weight.
    b : torch.Tensor, optional
        ``(N,)`` bias (none when omitted).

    Returns
    -------
    torch.Tensor
        ``(..., N)``.
    """
    plain = (x.device.type == "cpu" and x.dtype in (torch.float32, torch.float64)
             and w.dtype == x.dtype and (b is None or b.dtype == x.dtype)
             and not torch.is_autocast_enabled("cpu"))
    if not plain:
        return torch.nn.functional.linear(x, w, b)
    return _Linear.apply(x, w, b)


class _TanhSkip(torch.autograd.Function):
    """``(tanh(y) + s) * scale`` with numpy's SIMD ``tanh``; backward
    ``g scale (1 - tanh(y)^2)`` for ``y`` and ``g scale`` for ``s``."""

    @staticmethod
    def forward(ctx, y: torch.Tensor, s: torch.Tensor | None, scale: float) -> torch.Tensor:
        yn = y.detach().contiguous().numpy()
        t = np.tanh(yn)  # kept for the backward
        out = np.add(t, s.detach().numpy()) if s is not None else t.copy()
        out *= scale
        ctx.save_for_backward(torch.from_numpy(t))
        ctx.scale = scale
        return torch.from_numpy(out)

    @staticmethod
    def backward(ctx, g: torch.Tensor):  # type: ignore[override]
        (t,) = ctx.saved_tensors
        gs = g * ctx.scale
        gy = gs * (1 - t * t) if ctx.needs_input_grad[0] else None
        return gy, (gs if ctx.needs_input_grad[1] else None), None


def tanh_skip(y: torch.Tensor, s: torch.Tensor | None = None, scale: float = 1.0) -> torch.Tensor:
    """``(torch.tanh(y) + s) * scale`` (``s`` optional), on numpy's SIMD ``tanh`` for plain
    float32/64 CPU tensors of one shape, else in PyTorch.

    Parameters
    ----------
    y : torch.Tensor
        ``(...)`` pre-activation.
    s : torch.Tensor, optional
        ``(...)`` the same shape, added after the ``tanh``.
    scale : float
        Factor applied last.

    Returns
    -------
    torch.Tensor
        ``(...)``.
    """
    plain = (y.device.type == "cpu" and y.dtype in (torch.float32, torch.float64)
             and not torch.is_autocast_enabled("cpu")
             and (s is None or (s.dtype == y.dtype and s.shape == y.shape
                                and s.device == y.device and s.is_contiguous())))
    if not plain:
        z = torch.tanh(y)
        return (z if s is None else z + s) * scale
    return _TanhSkip.apply(y, s, scale)
