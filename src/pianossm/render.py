"""Rendering a MIDI file of any length in one streaming pass with carried state."""

from __future__ import annotations

import os
from collections.abc import Iterator
from fractions import Fraction
from importlib import resources

import numpy as np
import torch

from pianossm.errors import PianoSSMError
from pianossm.features import PianoRoll, frame_hop
from pianossm.model import PianoSSM

__all__ = ["BLOCK_FRAMES", "FRAME_GRIDS", "default_model_path", "render_blocks",
           "render_midi", "training_frame_rate"]

#: Where a rate-switched model's input frames fall (see :func:`render_blocks`).
FRAME_GRIDS = ("synth", "train")

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
                  dtype: torch.dtype = torch.float32, frame_grid: str = "synth",
                  ) -> Iterator[np.ndarray]:
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
    frame_grid : str
        ``synth``: ``roll`` is at ``sample_rate / frame_hop(sample_rate)`` frames/s (the
        paper's rule).  ``train``: ``roll`` is at the training rate's frame rate
        (:func:`training_frame_rate`), and each sample takes the frame in force at its time,
        so note boundaries fall within one synthesis sample of where the model's own-rate
        rendering puts them.

    Yields
    ------
    np.ndarray
        ``(block_frames * hop,)`` float32 audio per block (the last one shorter).
    """
    if frame_grid not in FRAME_GRIDS:
        raise PianoSSMError(f"unknown frame grid {frame_grid!r}; allowed: {list(FRAME_GRIDS)}")
    frame_samples = None  # render_roll checks that the roll fits the rate and the grid
    if frame_grid == "train":
        f_train = model.config.train_sample_rate
        frame_samples = Fraction(sample_rate * frame_hop(f_train), f_train)
    from pianossm.engine import pack_model
    from pianossm.engine.offline import render_roll

    np_dtype = np.float64 if dtype == torch.float64 else np.float32
    weights = pack_model(model, sample_rate, head, np_dtype)
    yield from render_roll(weights, roll, tail_seconds, block_frames, frame_samples)


def render_midi(model: PianoSSM, midi: object, sample_rate: int, head: int = 0,
                frame_grid: str = "synth", max_seconds: float | None = None,
                dtype: torch.dtype = torch.float32) -> np.ndarray:
    """A whole MIDI file through :func:`render_blocks`, as the model's alias mode asks.

    Under ``oversample`` the model runs at :func:`pianossm.alias.internal_rate` and the
    audio is resampled (soxr, streaming) to ``sample_rate``.

    Parameters
    ----------
    model : PianoSSM
        The model, with its alias mode set.
    midi : pretty_midi.PrettyMIDI
        The performance.
    sample_rate : int
        Rate of the returned audio, Hz.
    head : int
        Output head index.
    frame_grid : str
        See :func:`render_blocks`.
    max_seconds : float, optional
        Render at most this much of the file.
    dtype : torch.dtype
        ``torch.float32`` or ``torch.float64``.

    Returns
    -------
    np.ndarray
        ``(n,)`` float32 audio from MIDI time 0.
    """
    from pianossm.alias import internal_rate, resample_blocks

    f_train = model.config.train_sample_rate
    rate = internal_rate(model.blocks[0].ssm.alias_mode, f_train, sample_rate)
    fps = training_frame_rate(model) if frame_grid == "train" else rate / frame_hop(rate)
    roll = PianoRoll(midi, fps, model.config.pedal_threshold)
    if max_seconds is not None:
        roll.n_frames = min(roll.n_frames, round(max_seconds * roll.fs))
    blocks = render_blocks(model, roll, rate, head, dtype=dtype, frame_grid=frame_grid)
    parts = list(resample_blocks(blocks, rate, sample_rate))
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def training_frame_rate(model: PianoSSM) -> float:
    """Frames per second of the model's training rate (``f_train / frame_hop(f_train)``)."""
    f_train = model.config.train_sample_rate
    return f_train / frame_hop(f_train)
