"""A compiled diagonal complex scan with its own backward pass, for training on the CPU.

``x[t] = a x[t-1] + v[t // hold]`` per complex state, with ``x`` and ``v`` stored as real
``[Re | Im]`` halves of a ``(B, T, 2H)`` buffer (the layout the input and output matrix
products read and write without copies).  ``hold > 1`` reads an input that is constant
over runs of ``hold`` samples (the first layer's MIDI-rate projection), so it is never
repeated to the audio rate.

The backward pass is the adjoint recurrence run in reverse::

    g[t] = dL/dx[t] + conj(a) g[t+1]
    dL/dv[f] = sum of g[t] over the samples t that read v[f]
    dL/da    = sum_t conj(x[t-1]) g[t]          (x[-1] = x0)
    dL/dx0   = conj(a) g[0]

so autograd keeps only ``x`` (which the output projection needs anyway) and no Toeplitz
or chunk intermediates.  States and sums are carried in float64 whatever the storage
dtype.  Both loops are numba kernels (we write them because PyTorch has no complex
diagonal scan on the CPU); with more than one torch thread the batch items and blocks of
states are spread over numba's threads.  Without numba, :data:`HAVE_NUMBA` is false and
:mod:`pianossm.ssm` uses the chunked scan of :mod:`pianossm.scan`.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["HAVE_NUMBA", "compiled_scan", "compiled_scan_available"]

try:  # optional fast path
    import numba
    from numba import njit, prange

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - exercised only without numba
    HAVE_NUMBA = False


def _forward_body(v, hold, out, a_re, a_im, x0, n_blk):  # pragma: no cover - compiled
    """``out[t] = a out[t-1] + v[t // hold]``, ``out[-1] = x0``, in ``[Re | Im]`` layout."""
    bsz, t_len, w = out.shape
    h = w // 2
    size = -(-h // n_blk)
    for task in prange(bsz * n_blk):
        b = task // n_blk
        lo = (task % n_blk) * size
        hi = min(h, lo + size)
        n = hi - lo
        xr = x0[b, lo:hi].astype(np.float64)
        xi = x0[b, h + lo:h + hi].astype(np.float64)
        ar = a_re[lo:hi].copy()
        ai = a_im[lo:hi].copy()
        for t in range(t_len):
            f = t // hold
            vr = v[b, f, lo:hi]
            vi = v[b, f, h + lo:h + hi]
            for j in range(n):  # sliced rows, indexed from 0: the loop vectorises
                r = ar[j] * xr[j] - ai[j] * xi[j] + vr[j]
                i = ai[j] * xr[j] + ar[j] * xi[j] + vi[j]
                xr[j] = r
                xi[j] = i
            orr = out[b, t, lo:hi]
            ori = out[b, t, h + lo:h + hi]
            for j in range(n):
                orr[j] = xr[j]
                ori[j] = xi[j]


def _adjoint_row(g_re, g_im, p_re, p_im, v_re, v_im, ar, ai, gr, gi, sr, si,
                 add):  # pragma: no cover
    """One step of the adjoint recurrence over one block of states (in place); the step's
    adjoint is written to ``v_re``/``v_im`` (``dL/dv`` of the input row it read), or
    added to them with ``add`` (later samples of a held input row).

    Every array is a slice starting at the block's first state, indexed from 0: an offset
    index (``row[lo + j]``) makes numba check for negative indices and the loop then runs
    scalar (6x slower, measured)."""
    for j in range(ar.shape[0]):
        r = g_re[j] + ar[j] * gr[j] + ai[j] * gi[j]
        i = g_im[j] - ai[j] * gr[j] + ar[j] * gi[j]
        gr[j] = r
        gi[j] = i
        if add:
            v_re[j] += r
            v_im[j] += i
        else:
            v_re[j] = r
            v_im[j] = i
        sr[j] += r * p_re[j] + i * p_im[j]
        si[j] += i * p_re[j] - r * p_im[j]


def _backward_body(gx, x, x0, hold, a_re, a_im, gv, ga, gx0, n_blk):  # pragma: no cover
    """The adjoint recurrence (module docstring), with ``dL/dv``, ``dL/da``, ``dL/dx0``.

    Time runs backward in blocks of ``blk`` samples.  Before a block is recurred (in
    descending order) its rows of ``gx``, ``x`` and ``gv`` are touched once in ascending
    order, one read per 64-byte line: on the CPUs we train on a loop that walks memory
    downward ran about 3x slower than one that walks it upward (the hardware prefetcher
    follows ascending streams only), and the touch pass brings each block into cache with
    ascending reads, so the descending loop then hits the cache (measured: the backward of
    one S layer, 2 x 32000 samples, 46 ms -> 16 ms).
    """
    bsz, t_len, w = x.shape
    h = w // 2
    size = -(-h // n_blk)
    blk = 256
    line = 16  # float32 values per 64-byte cache line
    for task in prange(bsz * n_blk):
        b = task // n_blk
        lo = (task % n_blk) * size
        hi = min(h, lo + size)
        n = hi - lo
        gr = np.zeros(n, np.float64)  # g[t+1], then g[t]
        gi = np.zeros(n, np.float64)
        sr = np.zeros(n, np.float64)  # dL/da partial sums
        si = np.zeros(n, np.float64)
        ar = a_re[lo:hi].copy()
        ai = a_im[lo:hi].copy()
        warm = 0.0
        end = t_len
        while end > 0:
            start = max(0, end - blk)
            for t in range(max(0, start - 1), end):  # ascending touch of the block's rows
                for c in range(0, w, line):
                    warm += gx[b, t, c] + x[b, t, c]
                if hold == 1:
                    for c in range(0, w, line):
                        warm += gv[b, t, c]
            for t in range(end - 1, max(start, 1) - 1, -1):
                f = t // hold
                add = t % hold != hold - 1 and t != t_len - 1  # not a run's last sample
                _adjoint_row(gx[b, t, lo:hi], gx[b, t, h + lo:h + hi], x[b, t - 1, lo:hi],
                             x[b, t - 1, h + lo:h + hi], gv[b, f, lo:hi], gv[b, f, h + lo:h + hi],
                             ar, ai, gr, gi, sr, si, add)
            if start == 0:
                add = hold > 1 and t_len > 1
                _adjoint_row(gx[b, 0, lo:hi], gx[b, 0, h + lo:h + hi], x0[b, lo:hi],
                             x0[b, h + lo:h + hi], gv[b, 0, lo:hi], gv[b, 0, h + lo:h + hi],
                             ar, ai, gr, gi, sr, si, add)
            end = start
        for j in range(n):
            ga[task, 0, j] = sr[j]
            ga[task, 1, j] = si[j]
            gx0[b, lo + j] = ar[j] * gr[j] + ai[j] * gi[j]
            gx0[b, h + lo + j] = -ai[j] * gr[j] + ar[j] * gi[j]
        if warm != warm:  # pragma: no cover - keeps the touch reads from being optimised out
            ga[task, 0, 0] += 0.0


if HAVE_NUMBA:
    _adjoint_row = njit(inline="always")(_adjoint_row)
    # nogil: the trainer runs slices of a batch on threads (pianossm.train.shards)
    _fwd_serial = njit(cache=True, nogil=True)(_forward_body)
    _fwd_parallel = njit(cache=True, parallel=True)(_forward_body)
    _bwd_serial = njit(cache=True, nogil=True)(_backward_body)
    _bwd_parallel = njit(cache=True, parallel=True)(_backward_body)


def compiled_scan_available(t: torch.Tensor) -> bool:
    """Whether :func:`compiled_scan` serves this tensor (numba present, CPU, float32/64)."""
    return HAVE_NUMBA and t.device.type == "cpu" and t.dtype in (torch.float32, torch.float64)


def _plan(bsz: int, h: int) -> tuple[int, bool]:
    """Blocks of states per batch item and whether to run the parallel kernel."""
    threads = max(1, torch.get_num_threads())
    if threads == 1:
        return 1, False
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    n_blk = max(1, min(h, -(-threads // bsz)))
    return n_blk, True


class _Scan(torch.autograd.Function):
    """Autograd wrapper of the two kernels (see the module docstring)."""

    @staticmethod
    def forward(ctx, a_re: torch.Tensor, a_im: torch.Tensor, v: torch.Tensor,
                x0: torch.Tensor, hold: int, t_len: int) -> torch.Tensor:
        bsz, _, w = v.shape
        n_blk, par = _plan(bsz, w // 2)
        vn = v.detach().contiguous()
        x0n = x0.detach().contiguous()
        out = torch.empty(bsz, t_len, w, dtype=v.dtype)
        (_fwd_parallel if par else _fwd_serial)(
            vn.numpy(), hold, out.numpy(), a_re.detach().double().numpy(),
            a_im.detach().double().numpy(), x0n.numpy(), n_blk)
        ctx.save_for_backward(a_re, a_im, out, x0n)
        ctx.hold, ctx.n_frames = hold, v.shape[1]
        return out

    @staticmethod
    def backward(ctx, gx: torch.Tensor):  # type: ignore[override]
        a_re, a_im, x, x0 = ctx.saved_tensors
        bsz, _, w = x.shape
        h = w // 2
        n_blk, par = _plan(bsz, h)
        gv = torch.empty(bsz, ctx.n_frames, w, dtype=x.dtype)
        gv[:, -(-x.shape[1] // ctx.hold):] = 0  # rows no sample read (the kernel writes the rest)
        ga = np.zeros((bsz * n_blk, 2, -(-h // n_blk)), np.float64)
        gx0 = torch.empty_like(x0)
        (_bwd_parallel if par else _bwd_serial)(
            gx.contiguous().numpy(), x.numpy(), x0.numpy(), ctx.hold,
            a_re.detach().double().numpy(), a_im.detach().double().numpy(),
            gv.numpy(), ga, gx0.numpy(), n_blk)
        # Partial sums per task -> per state: task = b * n_blk + blk covers states of blk.
        size = ga.shape[2]
        sums = ga.reshape(bsz, n_blk, 2, size).sum(axis=0)  # (n_blk, 2, size)
        sums = sums.transpose(1, 0, 2).reshape(2, n_blk * size)[:, :h]  # (2, H)
        g = torch.from_numpy(np.ascontiguousarray(sums)).to(a_re.dtype)
        return g[0], g[1], gv, gx0, None, None


def compiled_scan(a: torch.Tensor, v: torch.Tensor, x0: torch.Tensor | None = None,
                  hold: int = 1, t_len: int | None = None) -> torch.Tensor:
    """All states of ``x[t] = a x[t-1] + v[t // hold]`` in ``[Re | Im]`` layout.

    Parameters
    ----------
    a : torch.Tensor
        ``(H,)`` complex per-state multipliers ``lambda_d`` (differentiable).
    v : torch.Tensor
        ``(B, F, 2H)`` real inputs ``[Re | Im]``, each held for ``hold`` samples.
    x0 : torch.Tensor, optional
        ``(B, 2H)`` real initial state ``[Re | Im]``; zero when omitted.
    hold : int
        Samples per input row.
    t_len : int, optional
        Output samples (default ``F * hold``; at most that).

    Returns
    -------
    torch.Tensor
        ``(B, T, 2H)`` real states ``[Re | Im]``.
    """
    bsz, n_frames, w = v.shape
    t_len = n_frames * hold if t_len is None else t_len
    if not 0 <= t_len <= n_frames * hold:
        raise ValueError(f"t_len {t_len} outside 0..{n_frames * hold}")
    if x0 is None:
        x0 = v.new_zeros(bsz, w)
    a = a.to(torch.complex128 if v.dtype == torch.float64 else torch.complex64)
    return _Scan.apply(a.real, a.imag, v, x0.to(v.dtype), hold, t_len)
