"""The synthesis engine: carried state, layer-major block path and sample-major path.

One :class:`Engine` renders any number of samples from layer-0 inputs given per MIDI
frame (``v = B_d u_f + b_d`` at the MIDI rate, :meth:`Engine.project_frames`) and run
lengths, carrying every layer's state, so offline rendering and streaming are the same
code.  Where the work goes, per chunk of ``T`` samples (layer-major, exact because each
layer is causal):

* layer 0: compiled held-input scan, then one GEMM ``(T, 2H) @ (2H, d1)``;
* layers 1-3: one GEMM ``(T, d_in) @ (d_in, 2H + d_out)`` (input projection and skip
  together), compiled scan in place, one GEMM ``(T, 2H) @ (2H, d_out)``, then ``tanh`` and
  the skip add (numpy, vectorised);
* head: one matrix-vector product.

Chunks of a few hundred samples (:data:`CHUNK_BYTES`) keep the activations in cache;
blocks shorter than :data:`SAMPLE_PATH_MAX` run the whole model per sample in one
compiled call instead.
"""

from __future__ import annotations

import numpy as np

from pianossm.engine import kernels
from pianossm.engine.weights import EngineWeights
from pianossm.errors import PianoSSMError

__all__ = ["CHUNK_BYTES", "SAMPLE_PATH_MAX", "Engine", "set_blas_threads"]

#: Bytes of the widest per-chunk activation buffer the automatic chunk aims at: it and the
#: weights it meets stay in the 1 MiB L2 (measured: XL best at 256 samples, S at 512).
CHUNK_BYTES = 600 * 1024
#: Blocks shorter than this run sample-major (one compiled call) when numba is present.
SAMPLE_PATH_MAX = 16


_BLAS_THREADS: list[int] = []


def set_blas_threads(n: int) -> None:
    """Limit numpy's BLAS (OpenBLAS/MKL) to ``n`` threads, process-wide, once per value."""
    if _BLAS_THREADS and _BLAS_THREADS[-1] == n:
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl comes with scikit-learn/scipy
        return
    threadpool_limits(limits=int(n), user_api="blas")
    _BLAS_THREADS.append(n)


class Engine:
    """Stateful renderer of one :class:`EngineWeights`.

    Parameters
    ----------
    weights : EngineWeights
        The packed model.
    chunk : int, optional
        Samples per layer-major chunk; default from :data:`CHUNK_BYTES` (a power of two,
        128..1024).
    blas_threads : int, optional
        Threads of numpy's BLAS, set process-wide when given (default 1: the products are
        small, and on a busy machine extra BLAS threads spin and stall each block).
    """

    def __init__(self, weights: EngineWeights, chunk: int | None = None,
                 blas_threads: int | None = 1) -> None:
        if blas_threads is not None:
            set_blas_threads(blas_threads)
        self.weights = weights
        dt = weights.dtype
        widths = [lw.w_in.shape[1] for lw in weights.layers]
        if chunk is None:
            fit = CHUNK_BYTES // (max(widths) * dt.itemsize)
            chunk = min(1024, max(128, 1 << (max(fit, 1).bit_length() - 1)))
        self.chunk = int(chunk)
        self._flatten()
        self.state = np.zeros(self._state_size, dtype=np.float64)  # see kernels
        self._states = [self.state[m[10]:m[10] + 2 * m[9]] for m in self.meta]
        self._buf = [np.empty((self.chunk, w), dtype=dt) for w in widths]
        self._y = [np.empty((self.chunk, lw.d_out), dtype=dt) for lw in weights.layers]
        self._scratch = np.zeros(3 * max(widths + [lw.d_out for lw in weights.layers]), dt)
        self._audio = np.empty(self.chunk, dtype=dt)

    def _flatten(self) -> None:
        """One flat weight buffer and ``meta`` offsets for :func:`kernels.run_samples`."""
        parts: list[np.ndarray] = []
        pos = 0

        def put(a: np.ndarray) -> int:
            nonlocal pos
            parts.append(np.ascontiguousarray(a).ravel())
            pos += a.size
            return pos - a.size

        meta, spos, apos = [], 0, 0
        for lw in self.weights.layers:
            h = lw.d_state
            row = [apos, apos + h, put(lw.bias), put(lw.w_in), lw.w_in.shape[0],
                   lw.w_in.shape[1], put(lw.c_out), lw.d_out, put(lw.c_bias), h, spos,
                   put(lw.c_out.T)]
            spos += 2 * h
            apos += 2 * h
            meta.append(row)
        hw = put(self.weights.head_w)
        hb = put(np.array([self.weights.head_b], dtype=self.weights.dtype))
        self.flat = np.concatenate(parts).astype(self.weights.dtype)
        self.a64 = np.concatenate([np.concatenate([lw.a_re, lw.a_im])
                                   for lw in self.weights.layers]).astype(np.float64)
        self.meta = np.array(meta, dtype=np.int64)
        self.head = np.array([hw, self.weights.head_w.shape[0], hb], dtype=np.int64)
        self._state_size = spos

    def reset(self) -> None:
        """Zero every layer's state."""
        self.state[:] = 0

    def project_frames(self, frames: np.ndarray) -> np.ndarray:
        """Layer-0 input ``B_d u_f + b_d`` at the MIDI rate.

        Parameters
        ----------
        frames : np.ndarray
            ``(F, d0)`` piano-roll frames.

        Returns
        -------
        np.ndarray
            ``(F, 2H)`` in the engine's dtype.
        """
        lw = self.weights.layers[0]
        v = np.asarray(frames, dtype=self.weights.dtype) @ lw.w_in
        v += lw.bias
        return v

    def render(self, v: np.ndarray, lens: np.ndarray, out: np.ndarray, skip: int = 0) -> None:
        """Advance ``len(out)`` samples and write their audio.

        Parameters
        ----------
        v : np.ndarray
            ``(S, 2H)`` layer-0 inputs (:meth:`project_frames`), one per run of samples.
        lens : np.ndarray
            ``(S,)`` int64 run lengths; they must cover ``skip + len(out)`` samples.
        out : np.ndarray
            ``(n,)`` audio written in place (engine dtype).
        skip : int
            Samples of run 0 already rendered by an earlier call.
        """
        n = out.shape[0]
        if n == 0:
            return
        if len(lens) != len(v) or int(lens.sum()) - skip < n or skip < 0:
            raise PianoSSMError(f"{len(v)} input runs of {int(lens.sum())} samples (skip "
                                f"{skip}) do not cover {n} samples")
        if n < SAMPLE_PATH_MAX and kernels.run_samples is not None:
            kernels.run_samples(v, lens, skip, n, self.flat, self.a64, self.meta, self.head, self.state,
                                self._scratch, out)
            return
        ends = np.cumsum(lens) - skip  # samples done at the end of each run
        seg, done = 0, 0
        while done < n:
            t = min(self.chunk, n - done)
            self._chunk(v[seg:], lens[seg:], skip, out[done:done + t])
            done += t
            seg = int(np.searchsorted(ends, done, side="right"))
            skip = int(lens[seg] - (ends[seg] - done)) if seg < len(lens) else 0

    def _chunk(self, v: np.ndarray, lens: np.ndarray, skip: int, out: np.ndarray) -> None:
        """Layer-major pass over ``t <= chunk`` samples."""
        t = out.shape[0]
        w = self.weights
        z = None
        for i, lw in enumerate(w.layers):
            h2 = 2 * lw.d_state
            buf = self._buf[i][:t]
            if i == 0:
                kernels.scan_held(self._buf[0][:t], v, lens, skip, lw.a_re, lw.a_im,
                                  self._states[0])
            else:
                np.matmul(z, lw.w_in, out=buf)
                kernels.scan_bias(buf, lw.a_re, lw.a_im, lw.bias, self._states[i])
            y = self._y[i][:t]
            np.matmul(buf[:, :h2], lw.c_out, out=y)
            y += lw.c_bias
            np.tanh(y, out=y)
            if lw.has_skip:
                y += buf[:, h2:]
            z = y
        audio = self._audio[:t]
        np.matmul(z, w.head_w, out=audio)
        audio += w.head_b
        out[:] = audio
