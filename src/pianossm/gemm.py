"""``linear`` on numpy's BLAS for the training forward's long, thin matrix products.

PyTorch's CPU build multiplies float32 matrices with MKL, which on the AMD EPYC cores we
train on ran the training step's shapes (``(B*T, 20..176) x (20..176, 20..512)``) at about
45 GFLOP/s, where numpy's OpenBLAS ran the same products at 65-87 GFLOP/s (measured in one
run, 1 thread).  :func:`linear` is ``torch.nn.functional.linear`` with its forward and both
backward products done by ``numpy.matmul``; it is used only on the compiled (CPU) training
path and only where nothing else (autocast, a GPU, an exotic dtype) is involved, else it
falls back to PyTorch.  numpy's BLAS threads follow ``torch.get_num_threads()``.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["linear"]


def _blas_threads() -> None:
    from pianossm.engine.core import set_blas_threads

    set_blas_threads(max(1, torch.get_num_threads()))


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
        if ctx.needs_input_grad[0]:
            gx = torch.from_numpy(np.matmul(gn, w.detach().numpy())).reshape(x.shape)
        if ctx.needs_input_grad[1]:
            xn = x.detach().reshape(-1, x.shape[-1]).contiguous().numpy()
            gw = torch.from_numpy(np.matmul(gn.T, xn))  # (N, K)
        if ctx.needs_input_grad[2]:
            gb = torch.from_numpy(gn.sum(0, dtype=np.float64).astype(gn.dtype))
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
