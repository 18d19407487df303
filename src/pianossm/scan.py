"""Parallel scan of a diagonal, time-invariant linear recurrence.

``x[t] = a * x[t-1] + v[t]`` with a constant complex ``a`` per state (the SSM is LTI).

We write our own because neither PyTorch nor a well-kept library has a diagonal linear
scan for complex inputs on the CPU.  Because ``a`` does not depend on time, a chunk of
``K`` steps is a lower-triangular Toeplitz matrix product (``K`` complex MACs per sample
and state, fully batched), and the chunk-to-chunk carries form the same recurrence with
``a**K`` on a sequence ``K`` times shorter, solved recursively.  Every power is computed
as ``exp(k * log a)``, never by repeated multiplication, so nothing grows or underflows
early, and no step divides by ``a``.
"""

from __future__ import annotations

import torch

__all__ = ["DEFAULT_CHUNK", "lti_scan"]

DEFAULT_CHUNK = 32


def _toeplitz(log_a: torch.Tensor, k: int) -> torch.Tensor:
    """Lower-triangular powers ``W[h, i, j] = a_h ** (i - j)`` for ``i >= j``, else 0.

    Parameters
    ----------
    log_a : torch.Tensor
        ``(H,)`` complex, ``log a``.
    k : int
        Chunk length.

    Returns
    -------
    torch.Tensor
        ``(H, k, k)`` complex.
    """
    idx = torch.arange(k, device=log_a.device)
    lag = (idx[:, None] - idx[None, :]).to(log_a.real.dtype)  # (k, k)
    powers = torch.exp(log_a[:, None, None] * lag.clamp(min=0))  # (H, k, k)
    return torch.where(lag >= 0, powers, torch.zeros_like(powers))


def lti_scan(
    log_a: torch.Tensor,
    v: torch.Tensor,
    x0: torch.Tensor | None = None,
    chunk: int = DEFAULT_CHUNK,
) -> torch.Tensor:
    """All states of ``x[t] = a * x[t-1] + v[t]``, ``x[-1] = x0``.

    Parameters
    ----------
    log_a : torch.Tensor
        ``(H,)`` complex, the logarithm of the per-state multiplier ``a``
        (for a ZOH-discretised SSM, ``lambda * Ts``).
    v : torch.Tensor
        ``(B, T, H)`` complex inputs.
    x0 : torch.Tensor, optional
        ``(B, H)`` complex initial state; zero when omitted.
    chunk : int
        Chunk length ``K`` of the Toeplitz products.

    Returns
    -------
    torch.Tensor
        ``(B, T, H)`` complex states ``x[0..T-1]``.
    """
    bsz, t_len, h = v.shape
    if t_len == 0:
        return v
    k = min(chunk, t_len)
    n_chunks = -(-t_len // k)
    pad = n_chunks * k - t_len
    if pad:
        v = torch.nn.functional.pad(v, (0, 0, 0, pad))
    vc = v.reshape(bsz, n_chunks, k, h)  # (B, C, K, H)
    w = _toeplitz(log_a, k)  # (H, K, K)
    # Chunk-local states from a zero start: one batched matrix product per state.
    rhs = vc.permute(3, 2, 0, 1).reshape(h, k, bsz * n_chunks)  # (H, K, B*C)
    local = torch.bmm(w, rhs).reshape(h, k, bsz, n_chunks).permute(2, 3, 1, 0)  # (B, C, K, H)
    if n_chunks == 1 and x0 is None:
        return local.reshape(bsz, k, h)[:, :t_len]
    # States at the chunk ends obey the same recurrence with a**K.
    ends = local[:, :, -1, :]  # (B, C, H)
    if n_chunks > 1:
        carried = lti_scan(log_a * k, ends[:, :-1], x0, chunk)  # (B, C-1, H)
        if x0 is None:
            x0 = torch.zeros_like(ends[:, 0])
        prev = torch.cat([x0[:, None], carried], dim=1)  # (B, C, H)
    else:
        prev = x0[:, None]  # (B, 1, H)
    decay = torch.exp(log_a[None, :] * torch.arange(1, k + 1, device=v.device)[:, None])  # (K, H)
    x = local + decay[None, None] * prev[:, :, None, :]  # (B, C, K, H)
    return x.reshape(bsz, n_chunks * k, h)[:, :t_len]


def sequential_scan(log_a: torch.Tensor, v: torch.Tensor, x0: torch.Tensor | None = None,
                    ) -> torch.Tensor:
    """The same recurrence one step at a time: the slow reference for tests and benchmarks.

    Parameters
    ----------
    log_a : torch.Tensor
        ``(H,)`` complex ``log a``.
    v : torch.Tensor
        ``(B, T, H)`` complex inputs.
    x0 : torch.Tensor, optional
        ``(B, H)`` complex initial state; zero when omitted.

    Returns
    -------
    torch.Tensor
        ``(B, T, H)`` complex states.
    """
    a = torch.exp(log_a)
    x = torch.zeros_like(v[:, 0]) if x0 is None else x0
    out = []
    for t in range(v.shape[1]):
        x = a * x + v[:, t]
        out.append(x)
    return torch.stack(out, dim=1)
