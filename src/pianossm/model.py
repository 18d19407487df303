"""The Piano-SSM model: four diagonal SSM layers and one linear head per recording condition."""

from __future__ import annotations

import math

import torch
from torch import nn

from pianossm import ssm as ssm_module
from pianossm.config import PianoSSMConfig, head_index, resolve_head
from pianossm.errors import PianoSSMError
from pianossm.gemm import linear as numpy_linear
from pianossm.gemm import tanh_skip
from pianossm.scan import DEFAULT_CHUNK
from pianossm.ssm import SCAN_BACKENDS, DiagonalSSM, Discretised

__all__ = ["ModelState", "PianoSSM", "SSMBlock"]

#: Per-layer complex SSM states, ``[(B, H)] * n_layers``.
ModelState = list[torch.Tensor]

_INV_SQRT2 = 1.0 / math.sqrt(2.0)


class SSMBlock(nn.Module):
    """``(tanh(SSM(u)) + W u) / sqrt(2)``, or ``tanh(SSM(u)) / sqrt(2)`` without skip.

    Parameters
    ----------
    d_in, d_state, d_out : int
        Channels in, complex states, channels out.
    skip : bool
        Whether the block has the trainable linear skip ``W`` (``d_out x d_in``).
    """

    def __init__(self, d_in: int, d_state: int, d_out: int, skip: bool) -> None:
        super().__init__()
        self.ssm = DiagonalSSM(d_in, d_state, d_out)
        self.skip = nn.Linear(d_in, d_out, bias=False) if skip else None

    def finish(self, u: torch.Tensor | None, y: torch.Tensor) -> torch.Tensor:
        """Activation and skip: ``(..., d_in)`` input and ``(..., d_out)`` SSM output.

        ``u`` may be ``None`` for a block without skip.
        """
        skip = None
        if self.skip is not None:
            assert u is not None, "a block with skip needs its input"
            skip = self._skip(u)
        if ssm_module.NUMPY_GEMM:
            return tanh_skip(y, skip, _INV_SQRT2)
        y = torch.tanh(y)
        return (y if skip is None else y + skip) * _INV_SQRT2

    def _skip(self, u: torch.Tensor) -> torch.Tensor:
        """``W u``: on numpy's BLAS where the layer's scan is the compiled one (as its own
        products are; see :mod:`pianossm.gemm`), else ``nn.Linear``."""
        assert self.skip is not None
        w = self.skip.weight
        if ssm_module.NUMPY_GEMM and u.dtype == w.dtype and self.ssm.resolve_scan(u) == "compiled":
            return numpy_linear(u, w)
        return self.skip(u)


class PianoSSM(nn.Module):
    """MIDI features at the MIDI rate in, raw audio out, at any sample rate.

    Parameters
    ----------
    config : PianoSSMConfig
        Sizes, training rate, heads and output de-normalisation.
    """

    def __init__(self, config: PianoSSMConfig) -> None:
        super().__init__()
        self.config = config
        w = config.widths
        self.blocks = nn.ModuleList(
            SSMBlock(w[i], config.d_state, w[i + 1], skip=i > 0) for i in range(len(w) - 1))
        self.heads = nn.Linear(w[-1], len(config.heads))  # one row per head
        if config.max_mode_hz is not None:
            max_im = 2 * math.pi * config.max_mode_hz / config.train_sample_rate
            for block in self.blocks:
                block.ssm.max_im = max_im

    # -- helpers ---------------------------------------------------------------------
    def ts_for(self, sample_rate: int) -> float:
        """``Ts = f_train / f_synth``."""
        return self.config.train_sample_rate / float(sample_rate)

    def head_index(self, head: str | int) -> int:
        """Index of a head given by name or index, with a clear error
        (:func:`pianossm.config.head_index`)."""
        return head_index(self.config, head)

    def resolve_head(self, arg: str | int | None) -> int:
        """Head index from a command-line value (:func:`pianossm.config.resolve_head`:
        ``None`` picks ``2009`` where the model has it, else the first head).

        Returns
        -------
        int
        """
        return resolve_head(self.config, arg)

    def set_alias_mode(self, mode: str) -> None:
        """How every layer discretises modes above the synthesis Nyquist frequency.

        Parameters
        ----------
        mode : str
            One of :data:`pianossm.alias.ALIAS_MODES` (``none`` is the paper's).
        """
        from pianossm.alias import ALIAS_MODES

        if mode not in ALIAS_MODES:
            raise PianoSSMError(f"unknown alias mode {mode!r}; allowed: {list(ALIAS_MODES)}")
        for block in self.blocks:
            block.ssm.alias_mode = mode

    def default_state(self, batch: int, dtype: torch.dtype = torch.complex64) -> ModelState:
        """Zero state of every layer."""
        return [b.ssm.default_state(batch, dtype) for b in self.blocks]

    def set_scan(self, name: str) -> None:
        """Which recurrence the parallel pass runs in every layer.

        Parameters
        ----------
        name : str
            One of :data:`pianossm.ssm.SCAN_BACKENDS`: ``auto`` (compiled where it serves
            the tensors, else chunked), ``compiled`` or ``chunked``.
        """
        if name not in SCAN_BACKENDS:
            raise PianoSSMError(f"unknown scan {name!r}; allowed: {list(SCAN_BACKENDS)}")
        for block in self.blocks:
            block.ssm.scan = name

    def discretise(self, ts: float) -> list[Discretised]:
        """Discrete matrices of every layer at step ``ts``."""
        return [b.ssm.discretise(ts) for b in self.blocks]

    def _head(self, z: torch.Tensor, head: torch.Tensor) -> torch.Tensor:
        """``(B, T, d)`` to ``(B, T)`` audio through each item's head, de-normalised."""
        w = self.heads.weight[head]  # (B, d)
        b = self.heads.bias[head]  # (B,)
        y = torch.einsum("btd,bd->bt", z, w) + b[:, None]
        return y * self.config.audio_std + self.config.audio_mean

    # -- parallel mode ---------------------------------------------------------------
    def forward(self, features: torch.Tensor, hop: int, ts: float = 1.0,
                head: torch.Tensor | int = 0, state: ModelState | None = None,
                chunk: int = DEFAULT_CHUNK, return_state: bool = False,
                ) -> torch.Tensor | tuple[torch.Tensor, ModelState]:
        """Synthesise audio from MIDI-rate features.

        Parameters
        ----------
        features : torch.Tensor
            ``(B, F, C)`` features at the MIDI rate (``C`` = ``config.widths[0]``).
        hop : int
            Audio samples per MIDI frame (zero-order-hold upsampling factor).
        ts : float
            Step in training sample periods, ``f_train / f_synth``.
        head : torch.Tensor or int
            ``(B,)`` head indices, or one index for the whole batch.
        state : list of torch.Tensor, optional
            Per-layer ``(B, H)`` complex states to start from; zero when omitted.
        chunk : int
            Chunk length of the scan.
        return_state : bool
            Also return the states after the last sample.

        Returns
        -------
        torch.Tensor
            ``(B, F * hop)`` audio; with ``return_state``, also the new states.
        """
        bsz = features.shape[0]
        if isinstance(head, int):
            head = torch.full((bsz,), head, dtype=torch.long, device=features.device)
        state = state if state is not None else [None] * len(self.blocks)
        new_state: ModelState = []
        first = self.blocks[0]
        # The input is constant over each frame: project at the MIDI rate, then hold.
        y, s = first.ssm(features, ts, state[0], chunk=chunk, hold=hop)
        z = first.finish(None, y)  # (B, T, d1); the first block has no skip
        new_state.append(s)
        for block, s0 in zip(self.blocks[1:], state[1:]):
            y, s = block.ssm(z, ts, s0, chunk=chunk)
            z = block.finish(z, y)
            new_state.append(s)
        audio = self._head(z, head)  # (B, T)
        return (audio, new_state) if return_state else audio

    # -- step mode -------------------------------------------------------------------
    def step(self, frame: torch.Tensor, state: ModelState, mats: list[Discretised],
             head: torch.Tensor) -> tuple[torch.Tensor, ModelState]:
        """Advance one audio sample.

        Parameters
        ----------
        frame : torch.Tensor
            ``(B, C)`` features in force at this sample.
        state : list of torch.Tensor
            Per-layer ``(B, H)`` complex states.
        mats : list of Discretised
            :meth:`discretise` output for the step in use.
        head : torch.Tensor
            ``(B,)`` head indices.

        Returns
        -------
        audio : torch.Tensor
            ``(B,)`` one sample per item.
        state : list of torch.Tensor
            The advanced states.
        """
        z, new_state = frame, []
        for block, s, d in zip(self.blocks, state, mats):
            y, s = block.ssm.step(z, s, d)
            z = block.finish(z, y)
            new_state.append(s)
        return self._head(z[:, None], head)[:, 0], new_state
