"""Compiled inner loops of the engine (numba), with a pure-PyTorch fallback.

Three kernels:

* :func:`scan_held` -- layer 0's recurrence ``x[k] = a x[k-1] + v_f`` with an input that
  is constant over each run of samples (a MIDI frame), read from ``(S, 2H)`` values and
  ``(S,)`` run lengths, so the input projection is never repeated to the audio rate.
* :func:`scan_bias` -- ``x[k] = a x[k-1] + v[k] + b`` in place on the first ``2H``
  columns of a C-contiguous ``(T, W)`` buffer (the GEMM output ``[Re | Im | skip]``).
* :func:`run_samples` -- the whole model, sample by sample (sample-major), for tiny
  blocks where per-call overhead of matrix products would dominate: every weight is read
  from one flat buffer so that a call costs one dispatch.

States are stored as ``[Re x | Im x]`` (``(2H,)``) and, with ``lambda_d``, kept in
float64 whatever the engine's dtype: a slow mode amplifies the rounding of ``lambda_d``
by ``1 / (1 - |lambda_d|)`` (thousands at 44.1 kHz), which would otherwise be the largest
float32 error; the recurrence is a small share of the work, so this costs little.  Without numba, ``HAVE_NUMBA`` is
false, :func:`run_samples` is unavailable and the two scans run on
:func:`pianossm.scan.lti_scan` (exact, slower).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

__all__ = ["HAVE_NUMBA", "META_COLS", "run_samples", "scan_bias", "scan_held"]

#: Columns of a ``meta`` row: offsets into the flat weight buffer and sizes per layer.
META_COLS = ("a_re", "a_im", "bias", "w_in", "d_in", "width", "c_out", "d_out", "c_bias",
             "h", "state", "c_rows")

try:  # optional fast path
    from numba import njit

    HAVE_NUMBA = True
except ImportError:  # pragma: no cover - exercised only without numba
    HAVE_NUMBA = False


def _scan_held_py(out: np.ndarray, v: np.ndarray, lens: np.ndarray, skip: int,
                  a_re: np.ndarray, a_im: np.ndarray, state: np.ndarray) -> None:
    h = a_re.shape[0]
    t = out.shape[0]
    counts = lens.astype(np.int64).copy()
    counts[0] -= skip
    idx = np.repeat(np.arange(len(counts)), counts)[:t]
    import torch  # the fallback only: the compiled path needs no torch

    vc = torch.complex(torch.from_numpy(v[idx, :h]), torch.from_numpy(v[idx, h:2 * h]))
    _scan_torch(out, vc, a_re, a_im, state)


def _scan_bias_py(x: np.ndarray, a_re: np.ndarray, a_im: np.ndarray, bias: np.ndarray,
                  state: np.ndarray) -> None:
    import torch

    h = a_re.shape[0]
    vc = torch.complex(torch.from_numpy(x[:, :h] + bias[:h]),
                       torch.from_numpy(x[:, h:2 * h] + bias[h:]))
    _scan_torch(x, vc, a_re, a_im, state)


def _scan_torch(out: np.ndarray, vc: torch.Tensor, a_re: np.ndarray, a_im: np.ndarray,
                state: np.ndarray) -> None:
    import torch

    from pianossm.scan import lti_scan

    h = a_re.shape[0]
    log_a = torch.log(torch.complex(torch.from_numpy(a_re), torch.from_numpy(a_im)))
    x0 = torch.complex(torch.from_numpy(state[:h]), torch.from_numpy(state[h:]))[None]
    xs = lti_scan(log_a, vc.to(torch.complex128)[None], x0)[0]  # (T, H)
    out[:, :h] = xs.real.numpy()
    out[:, h:2 * h] = xs.imag.numpy()
    state[:h], state[h:] = xs[-1].real.numpy(), xs[-1].imag.numpy()


if HAVE_NUMBA:

    @njit(cache=True, nogil=True, fastmath={"contract"})
    def scan_held(out, v, lens, skip, a_re, a_im, state):  # pragma: no cover - compiled
        """Layer 0: ``out[k] = a out[k-1] + v[segment(k)]``; ``skip`` samples of run 0 are done.

        ``out`` ``(T, >=2H)`` C-contiguous, ``v`` ``(S, 2H)``, ``lens`` ``(S,)``,
        ``state`` ``(2H,)`` float64, updated in place.
        """
        h = a_re.shape[0]
        sr = state[:h].copy()
        si = state[h:2 * h].copy()
        seg, used = 0, skip
        for t in range(out.shape[0]):
            while used >= lens[seg]:
                seg += 1
                used = 0
            used += 1
            vr, vi = v[seg, :h], v[seg, h:2 * h]
            orow_r, orow_i = out[t, :h], out[t, h:2 * h]
            for n in range(h):
                r, i = sr[n], si[n]
                xr = a_re[n] * r - a_im[n] * i + vr[n]
                xi = a_re[n] * i + a_im[n] * r + vi[n]
                sr[n] = xr
                si[n] = xi
                orow_r[n] = xr
                orow_i[n] = xi
        for n in range(h):  # a loop, not ``state[:h] = sr``: array setitem triples compile time
            state[n] = sr[n]
            state[h + n] = si[n]

    @njit(cache=True, nogil=True, fastmath={"contract"})
    def scan_bias(x, a_re, a_im, bias, state):  # pragma: no cover - compiled
        """``x[k] <- a x[k-1] + x[k] + b`` on columns ``0..2H-1`` of C-contiguous ``x``."""
        h = a_re.shape[0]
        sr = state[:h].copy()
        si = state[h:2 * h].copy()
        br = bias[:h].astype(np.float64)
        bi = bias[h:2 * h].astype(np.float64)
        for t in range(x.shape[0]):
            row_r, row_i = x[t, :h], x[t, h:2 * h]
            for n in range(h):
                r, i = sr[n], si[n]
                xr = a_re[n] * r - a_im[n] * i + (row_r[n] + br[n])
                xi = a_re[n] * i + a_im[n] * r + (row_i[n] + bi[n])
                sr[n] = xr
                si[n] = xi
                row_r[n] = xr
                row_i[n] = xi
        for n in range(h):  # a loop, not ``state[:h] = sr``: array setitem triples compile time
            state[n] = sr[n]
            state[h + n] = si[n]

    @njit(cache=True, nogil=True, fastmath=True)
    def run_samples(v, lens, skip, n, wf, a64, meta, head, state, scratch, out):  # pragma: no cover
        """The whole model for ``n`` samples, sample-major.

        ``v`` ``(S, 2H0)`` layer-0 inputs per run, ``lens``/``skip`` as in :func:`scan_held`;
        ``wf`` flat weights, ``a64`` flat float64 ``lambda_d`` parts (``meta`` columns 0-1
        index it), ``meta`` ``(L, 12)`` int64 rows (see ``META_COLS``), ``head``
        ``(3,)`` = (offset of head weight, its length, offset of head bias); ``state``
        flat float64 states; ``scratch`` at least ``3 * max width``; ``out`` ``(n,)`` audio.
        Input projections run as ``axpy`` over the long ``2H + d_out`` rows, output
        projections as length-``2H`` dot products (``C`` stored row-major for this path).
        """
        n_layers = meta.shape[0]
        wmax = scratch.shape[0] // 3
        z = scratch[:wmax]
        acc = scratch[wmax:2 * wmax]
        y = scratch[2 * wmax:]
        seg, used = 0, skip
        one, two, lim = wf.dtype.type(1.0), wf.dtype.type(2.0), wf.dtype.type(20.0)
        for t in range(n):
            while used >= lens[seg]:
                seg += 1
                used = 0
            used += 1
            for li in range(n_layers):
                m = meta[li]
                h, d_in, width, d_out = m[9], m[4], m[5], m[7]
                h2 = 2 * h
                ar = a64[m[0]:m[0] + h]
                ai = a64[m[1]:m[1] + h]
                st = state[m[10]:m[10] + h2]
                if li == 0:
                    vs = v[seg]
                    for j in range(h2):
                        acc[j] = vs[j]
                else:
                    w = wf[m[3]:m[3] + d_in * width].reshape((d_in, width))
                    b = wf[m[2]:m[2] + h2]
                    a = acc[:width]
                    for j in range(h2):
                        a[j] = b[j]
                    for j in range(h2, width):
                        a[j] = 0.0
                    i = 0
                    while i + 4 <= d_in:  # four rows per pass: a quarter of the stores
                        u0, u1, u2, u3 = z[i], z[i + 1], z[i + 2], z[i + 3]
                        r0, r1, r2, r3 = w[i], w[i + 1], w[i + 2], w[i + 3]
                        for j in range(width):
                            a[j] += (u0 * r0[j] + u1 * r1[j]) + (u2 * r2[j] + u3 * r3[j])
                        i += 4
                    while i < d_in:
                        ui = z[i]
                        row = w[i]
                        for j in range(width):
                            a[j] += ui * row[j]
                        i += 1
                for k in range(h):
                    xr = ar[k] * st[k] - ai[k] * st[h + k] + acc[k]
                    xi = ar[k] * st[h + k] + ai[k] * st[k] + acc[h + k]
                    st[k] = xr
                    st[h + k] = xi
                for k in range(h2):
                    acc[k] = st[k]
                c = wf[m[11]:m[11] + d_out * h2].reshape((d_out, h2))
                cb = wf[m[8]:m[8] + d_out]
                xa = acc[:h2]
                j = 0
                while j < d_out:  # four dot products per pass share the loads of x
                    if j + 4 <= d_out:
                        c0, c1, c2, c3 = c[j], c[j + 1], c[j + 2], c[j + 3]
                        s0 = s1 = s2 = s3 = wf.dtype.type(0.0)
                        for k in range(h2):
                            xk = xa[k]
                            s0 += c0[k] * xk
                            s1 += c1[k] * xk
                            s2 += c2[k] * xk
                            s3 += c3[k] * xk
                        y[j], y[j + 1] = s0 + cb[j], s1 + cb[j + 1]
                        y[j + 2], y[j + 3] = s2 + cb[j + 2], s3 + cb[j + 3]
                        j += 4
                    else:
                        row = c[j]
                        s0 = cb[j]
                        for k in range(h2):
                            s0 += row[k] * xa[k]
                        y[j] = s0
                        j += 1
                for j in range(d_out):
                    e = np.exp(two * min(max(y[j], -lim), lim))
                    z[j] = one - two / (e + one)
                if width > h2:
                    for j in range(d_out):
                        z[j] += acc[h2 + j]
            hw = wf[head[0]:head[0] + head[1]]
            s = wf[head[2]]
            for j in range(head[1]):
                s += z[j] * hw[j]
            out[t] = s

else:  # pragma: no cover
    scan_held = _scan_held_py
    scan_bias = _scan_bias_py
    run_samples = None
