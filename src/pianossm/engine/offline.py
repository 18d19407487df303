"""Offline rendering of a whole piano roll through the engine, block by block.

The roll is read :data:`BLOCK_FRAMES` frames at a time (``PianoRoll.frames``), projected
at the MIDI rate, and rendered with carried state, so memory is bounded by the block and
independent of the file's length.  The result equals one forward pass over the whole file.
"""

from __future__ import annotations

from collections.abc import Iterator
from fractions import Fraction

import numpy as np

from pianossm.engine.core import Engine
from pianossm.engine.weights import EngineWeights
from pianossm.errors import PianoSSMError
from pianossm.features import PianoRoll

__all__ = ["BLOCK_FRAMES", "grid_edges", "render_frames", "render_roll"]

#: MIDI frames per block (about 0.3-1 s of audio).
BLOCK_FRAMES = 512


def render_frames(engine: Engine, frames: np.ndarray) -> np.ndarray:
    """Render MIDI-rate frames from the engine's current state.

    Parameters
    ----------
    engine : Engine
        Carries the state in and out.
    frames : np.ndarray
        ``(F, C)`` input frames in the weights' layout (``C = weights.channels``).

    Returns
    -------
    np.ndarray
        ``(F * hop,)`` audio in the engine's dtype.
    """
    hop = engine.weights.hop
    if frames.ndim != 2 or frames.shape[1] != engine.weights.channels:
        raise PianoSSMError(f"frames of shape {frames.shape} do not fit the model's input "
                            f"layout {engine.weights.features!r} ({engine.weights.channels} "
                            "channels)")
    out = np.empty(frames.shape[0] * hop, dtype=engine.weights.dtype)
    if frames.shape[0]:
        engine.render(engine.project_frames(frames),
                      np.full(frames.shape[0], hop, dtype=np.int64), out)
    return out


def grid_edges(first: int, last: int, frame_samples: Fraction) -> np.ndarray:
    """First sample of each frame on a fractional grid.

    Frame ``k`` covers ``[k, k + 1) * frame_samples`` samples, so sample ``n`` takes the
    frame in force at its time: ``edge[k] = ceil(k * frame_samples)``.

    Parameters
    ----------
    first, last : int
        Frame range.
    frame_samples : Fraction
        Synthesis samples per frame (``f_synth / frames_per_second``).

    Returns
    -------
    np.ndarray
        ``(last - first + 1,)`` int64 sample edges.
    """
    num, den = frame_samples.numerator, frame_samples.denominator
    k = np.arange(first, last + 1, dtype=np.int64)
    return -((-k * num) // den)


def render_roll(weights: EngineWeights, roll: PianoRoll, tail_seconds: float = 0.0,
                block_frames: int = BLOCK_FRAMES, frame_samples: Fraction | None = None,
                ) -> Iterator[np.ndarray]:
    """Synthesise ``roll`` block by block from a zero state.

    Parameters
    ----------
    weights : EngineWeights
        The packed model; its rate must match the roll's frame rate unless
        ``frame_samples`` is given.
    roll : PianoRoll
        Features of the MIDI file, in the weights' layout (``weights.features``) and, on
        the weights' own frame grid, with their input delay (``weights.delay_frames``).
    tail_seconds : float
        Silence of the input appended after the last frame.
    block_frames : int
        MIDI frames per yielded block.
    frame_samples : Fraction, optional
        Samples per frame when the roll has its own frame rate (for instance the training
        rate's grid, ``f_synth * hop_train / f_train``): frame boundaries fall on
        ``ceil(k * frame_samples)``.

    Yields
    ------
    np.ndarray
        ``(block_frames * hop,)`` float32 audio per block (the last one shorter).
    """
    hop, rate = weights.hop, weights.sample_rate
    if roll.features != weights.features:
        raise PianoSSMError(f"piano roll in layout {roll.features!r} given to a model that "
                            f"takes {weights.features!r}")
    if frame_samples is not None:
        if frame_samples < 1:
            raise PianoSSMError(f"a frame grid needs at least one sample per frame, got "
                                f"{float(frame_samples):.3f} at {rate} Hz")
        if abs(roll.fs * float(frame_samples) - rate) > 1e-6 * rate:
            raise PianoSSMError(f"piano roll at {roll.fs} frames/s does not fit {rate} Hz "
                                f"with {frame_samples} samples per frame")
    elif abs(roll.fs * hop - rate) > 1e-6 * rate:
        raise PianoSSMError(f"piano roll at {roll.fs} frames/s does not fit {rate} Hz")
    elif roll.delay != weights.delay_frames:
        raise PianoSSMError(f"piano roll delayed by {roll.delay} frames given to a model whose "
                            f"input delay is {weights.delay_frames} frames")
    if tail_seconds < 0:
        raise PianoSSMError(f"tail must be >= 0 seconds, got {tail_seconds}")
    if block_frames < 1:
        raise PianoSSMError(f"block must hold at least one frame, got {block_frames}")
    total = roll.n_frames + round(tail_seconds * roll.fs)
    engine = Engine(weights)
    for first in range(0, total, block_frames):
        last = min(first + block_frames, total)
        frames = roll.frames(first, last)
        if frame_samples is None:
            yield render_frames(engine, frames).astype(np.float32, copy=False)
            continue
        lens = np.diff(grid_edges(first, last, frame_samples))
        out = np.empty(int(lens.sum()), dtype=weights.dtype)
        engine.render(engine.project_frames(frames), lens, out)
        yield out.astype(np.float32, copy=False)
