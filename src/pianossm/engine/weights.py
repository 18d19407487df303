"""Inference weights: one model, discretised at one rate, packed for the engine.

Everything is folded once, at load time, so the hot loops do only matrix products, the
diagonal recurrence and ``tanh``:

* The ``1/sqrt(2)`` of every block is folded into the weights that read the block's
  output (the next layer's ``B_d`` and skip, and the head), so a block yields the
  *unscaled* ``z' = tanh(y) + W u'`` (``sqrt(2)`` times the training code's ``z``).
* Each layer's input projection and skip read the same input, so they are one matrix
  ``[Re B_d^T | Im B_d^T | W^T]`` of shape ``(d_in, 2H + d_out)`` (one GEMM, not two).
* The complex output projection ``Re(C x)`` is the real ``(2H, d_out)`` matrix
  ``[Re C^T ; -Im C^T]`` acting on the state stored as ``[Re x | Im x]``.
* The head's de-normalisation is folded into its weight and bias.

The ZOH discretisation is done in float64 and then cast, so float32 and float64 engines
share their rounding only at the cast.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

import numpy as np

from pianossm.errors import PianoSSMError

if TYPE_CHECKING:
    import torch

    from pianossm.model import PianoSSM

__all__ = ["EngineWeights", "LayerWeights", "pack_model"]


@dataclass(frozen=True)
class LayerWeights:
    """One block, ready for the engine (arrays of the engine's dtype).

    Attributes
    ----------
    a_re, a_im : ``(H,)`` float64 real and imaginary part of ``lambda_d`` (always float64).
    bias : ``(2H,)`` ``[Re b_d | Im b_d]`` (layer 0: already inside its frame projection).
    w_in : ``(d_in, 2H + d_skip)`` input projection and skip (``d_skip`` = 0 for layer 0).
    c_out : ``(2H, d_out)`` real form of ``C``.
    c_bias : ``(d_out,)`` output bias ``c``.
    """

    a_re: np.ndarray
    a_im: np.ndarray
    bias: np.ndarray
    w_in: np.ndarray
    c_out: np.ndarray
    c_bias: np.ndarray

    @property
    def d_state(self) -> int:
        """Complex states ``H``."""
        return self.a_re.shape[0]

    @property
    def d_out(self) -> int:
        """Output channels."""
        return self.c_out.shape[1]

    @property
    def has_skip(self) -> bool:
        """Whether the block adds a linear skip of its input."""
        return self.w_in.shape[1] > 2 * self.d_state


@dataclass(frozen=True)
class EngineWeights:
    """A whole model at one sample rate and head.

    Attributes
    ----------
    layers : list of LayerWeights
    head_w : ``(d_last,)`` head weight, de-normalisation and ``1/sqrt(2)`` folded in.
    head_b : float, head bias with de-normalisation folded in.
    sample_rate, hop : int
        Synthesis rate and audio samples per MIDI frame.
    dtype : numpy dtype (float32 or float64).
    features : str
        Input layout of the model (``roll`` or ``roll+onset+pedal``, see
        :mod:`pianossm.features`); layer 0's ``w_in`` has its channel count of rows.
    pedal_threshold : int
        The model's CC64 threshold.
    delay_frames : int
        The model's input delay in MIDI frames at this rate
        (:meth:`pianossm.config.PianoSSMConfig.delay_frames`); streaming synthesis applies it.
    """

    layers: list[LayerWeights]
    head_w: np.ndarray
    head_b: float
    sample_rate: int
    hop: int
    dtype: np.dtype
    features: str = "roll"
    pedal_threshold: int = 64
    delay_frames: int = 0

    def __post_init__(self) -> None:
        from pianossm.features import feature_channels

        channels = feature_channels(self.features)
        if self.layers and self.layers[0].w_in.shape[0] != channels:
            raise PianoSSMError(f"packed weights read {self.layers[0].w_in.shape[0]} input "
                                f"channels, but their layout {self.features!r} has {channels}")

    @property
    def channels(self) -> int:
        """Input channels per MIDI frame (88 or 177)."""
        return self.layers[0].w_in.shape[0]

    def flops_per_sample(self) -> float:
        """Floating-point operations per audio sample (a multiply-add counts 2).

        Matrix products (at the audio rate, plus layer 0's input projection at the MIDI
        rate), the complex recurrence (8 per state), bias, ``tanh`` and skip adds counted 1.
        """
        total = 0.0
        for i, lw in enumerate(self.layers):
            d_in, width = lw.w_in.shape
            h = lw.d_state
            total += 2.0 * d_in * width / (self.hop if i == 0 else 1)
            total += 2.0 * 2 * h * lw.d_out + 8.0 * h + 3.0 * lw.d_out
        return total + 2.0 * self.head_w.shape[0]

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Every field as named numpy arrays (for ``np.savez``; :meth:`from_arrays` inverts)."""
        out = {"head_w": self.head_w, "head_b": np.float64(self.head_b),
               "sample_rate": np.int64(self.sample_rate), "hop": np.int64(self.hop),
               "n_layers": np.int64(len(self.layers)), "features": np.array(self.features),
               "pedal_threshold": np.int64(self.pedal_threshold),
               "delay_frames": np.int64(self.delay_frames)}
        for i, lw in enumerate(self.layers):
            out |= {f"layer{i}.{f}": getattr(lw, f) for f in _LAYER_FIELDS}
        return out

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> EngineWeights:
        """The weights :meth:`to_arrays` gave, bit for bit.

        Parameters
        ----------
        arrays : mapping of str to np.ndarray
            As :meth:`to_arrays` returns (an opened ``.npz`` will do); the layout and
            pedal threshold are required (a :class:`PianoSSMError` names a missing one); a
            missing input delay is 0 (packed before models had one).

        Returns
        -------
        EngineWeights
        """
        missing = [k for k in ("features", "pedal_threshold") if k not in arrays]
        if missing:
            raise PianoSSMError(f"packed weights without {', '.join(missing)} (packed by an "
                                "older pianossm? pack the model again)")
        layers = [LayerWeights(**{f: np.ascontiguousarray(arrays[f"layer{i}.{f}"])
                                  for f in _LAYER_FIELDS})
                  for i in range(int(arrays["n_layers"]))]
        head_w = np.ascontiguousarray(arrays["head_w"])
        if head_w.dtype not in (np.dtype(np.float32), np.dtype(np.float64)) or any(
                lw.w_in.dtype != head_w.dtype for lw in layers):
            raise PianoSSMError("packed weights of mixed or unknown dtype")
        return cls(layers, head_w, float(arrays["head_b"]), int(arrays["sample_rate"]),
                   int(arrays["hop"]), head_w.dtype, str(arrays["features"]),
                   int(arrays["pedal_threshold"]),
                   int(arrays["delay_frames"]) if "delay_frames" in arrays else 0)


_LAYER_FIELDS = tuple(f.name for f in fields(LayerWeights))


def _np(t: torch.Tensor, dtype: np.dtype) -> np.ndarray:
    return np.ascontiguousarray(t.detach().cpu().numpy().astype(dtype))


def pack_model(model: PianoSSM, sample_rate: int, head: int = 0,
               dtype: type | np.dtype = np.float32) -> EngineWeights:
    """Discretise ``model`` at ``sample_rate`` and fold it for the engine.

    Parameters
    ----------
    model : PianoSSM
        Any trained or fresh model.
    sample_rate : int
        Synthesis rate in Hz (``Ts = f_train / sample_rate``).
    head : int
        Output head index.
    dtype : numpy dtype
        ``np.float32`` (default) or ``np.float64``.

    Returns
    -------
    EngineWeights
    """
    import torch  # packing needs the model; rendering packed weights does not

    with torch.no_grad():
        return _pack(model, sample_rate, head, np.dtype(dtype))


def _pack(model: PianoSSM, sample_rate: int, head: int, dtype: np.dtype) -> EngineWeights:
    import torch

    from pianossm.features import frame_hop

    if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise PianoSSMError(f"engine dtype must be float32 or float64, got {dtype}")
    hop = frame_hop(sample_rate)
    head = model.head_index(head)
    m64 = copy.deepcopy(model).double()
    ts = m64.ts_for(sample_rate)
    s = 1.0 / math.sqrt(2.0)
    layers = []
    for i, block in enumerate(m64.blocks):
        d = block.ssm.discretise(ts)
        a = torch.exp(d.log_a)
        scale = 1.0 if i == 0 else s  # the previous block's 1/sqrt(2)
        w_in = torch.cat([d.bd.real.T, d.bd.imag.T], dim=1) * scale  # (d_in, 2H)
        if block.skip is not None:
            w_in = torch.cat([w_in, block.skip.weight.T * scale], dim=1)  # (d_in, 2H+d_out)
        layers.append(LayerWeights(
            a_re=_np(a.real, np.dtype(np.float64)), a_im=_np(a.imag, np.dtype(np.float64)),
            bias=_np(torch.cat([d.bias.real, d.bias.imag]), dtype),
            w_in=_np(w_in, dtype),
            c_out=_np(torch.cat([d.c.real.T, -d.c.imag.T], dim=0), dtype),
            c_bias=_np(d.c_bias, dtype)))
    std, mean = m64.config.audio_std, m64.config.audio_mean
    head_w = _np(m64.heads.weight[head] * (std * s), dtype)
    head_b = float(m64.heads.bias[head]) * std + mean
    return EngineWeights(layers, head_w, head_b, int(sample_rate), hop, dtype,
                         m64.config.features, m64.config.pedal_threshold,
                         m64.config.delay_frames(sample_rate / hop))
