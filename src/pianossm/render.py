"""Rendering a MIDI file of any length in one streaming pass with carried state."""

from __future__ import annotations

import os
from collections.abc import Iterator
from importlib import resources

import numpy as np
import torch

from pianossm.errors import PianoSSMError
from pianossm.features import PianoRoll, frame_hop
from pianossm.model import PianoSSM

__all__ = ["BLOCK_FRAMES", "default_model_path", "render_blocks"]

#: MIDI frames per block: about one second of audio, so memory does not grow with length.
BLOCK_FRAMES = 1024


def default_model_path() -> str:
    """Path of the built-in default model shipped inside the package."""
    path = resources.files("pianossm") / "assets" / "default_model.pt"
    if not path.is_file():
        raise PianoSSMError("no built-in default model is installed; pass --model PATH")
    return os.fspath(path)  # type: ignore[call-overload]


@torch.no_grad()
def render_blocks(model: PianoSSM, roll: PianoRoll, sample_rate: int, head: int = 0,
                  tail_seconds: float = 0.0, block_frames: int = BLOCK_FRAMES,
                  dtype: torch.dtype = torch.float32) -> Iterator[np.ndarray]:
    """Synthesise ``roll`` block by block, carrying the SSM states between blocks.

    The result equals one forward pass over the whole file from a zero state.

    Parameters
    ----------
    model : PianoSSM
        The model (any training rate).
    roll : PianoRoll
        Features of the MIDI file; its frame rate must be ``sample_rate / frame_hop``.
    sample_rate : int
        Synthesis rate in Hz.
    head : int
        Output head index.
    tail_seconds : float
        Silence of the input appended after the last frame, so the release rings out.
    block_frames : int
        MIDI frames per block.
    dtype : torch.dtype
        ``torch.float32`` or ``torch.float64``.

    Yields
    ------
    np.ndarray
        ``(block_frames * hop,)`` float32 audio per block (the last one shorter).
    """
    hop = frame_hop(sample_rate)
    if abs(roll.fs * hop - sample_rate) > 1e-6 * sample_rate:
        raise PianoSSMError(f"piano roll at {roll.fs} frames/s does not fit {sample_rate} Hz")
    if tail_seconds < 0:
        raise PianoSSMError(f"tail must be >= 0 seconds, got {tail_seconds}")
    from pianossm.engine import pack_model
    from pianossm.engine.offline import render_roll

    np_dtype = np.float64 if dtype == torch.float64 else np.float32
    weights = pack_model(model, sample_rate, head, np_dtype)
    yield from render_roll(weights, roll, tail_seconds, block_frames)
