"""The synthesis pipeline: a MIDI file of any length in one streaming pass with carried
state (:func:`render_blocks`), and :func:`synthesis_stream`, the one path from MIDI to
audio blocks that every renderer takes.  :mod:`pianossm.render` re-exports it all."""

from __future__ import annotations

import os
from collections.abc import Iterator
from fractions import Fraction
from importlib import resources
from typing import TYPE_CHECKING, Any

import numpy as np

from pianossm.errors import PianoSSMError
from pianossm.features import PianoRoll, frame_hop
from pianossm.options import FRAME_GRIDS, NUMERICS

if TYPE_CHECKING:  # torch is imported only where a torch model is packed or run
    from pianossm.model import PianoSSM
    from pianossm.packed import PackedModel

    Model = PianoSSM | PackedModel

__all__ = ["BLOCK_FRAMES", "FRAME_GRIDS", "alias_mode_of", "default_model_path",
           "engine_dtype", "pack_weights", "render_blocks", "render_midi", "synthesis_stream",
           "training_frame_rate"]

#: MIDI frames per block: about one second of audio, so memory does not grow with length.
BLOCK_FRAMES = 1024


def default_model_path() -> str:
    """Path of the built-in default model shipped inside the package."""
    path = resources.files("pianossm") / "assets" / "default_model.pt"
    if not path.is_file():
        raise PianoSSMError("no built-in default model is installed; pass --model PATH")
    return os.fspath(path)  # type: ignore[call-overload]


def engine_dtype(dtype: Any) -> np.dtype:
    """``float32`` or ``float64`` as a numpy dtype, from a torch or numpy dtype or a name."""
    if dtype is None:
        return np.dtype(np.float32)
    name = str(dtype).removeprefix("torch.") if type(dtype).__module__ == "torch" else dtype
    try:
        out = np.dtype(name)
    except TypeError:
        out = None
    if out not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise PianoSSMError(f"engine dtype must be float32 or float64, got {dtype!r}")
    return out


def alias_mode_of(model: Model) -> str:
    """The alias mode a model (or :class:`~pianossm.packed.PackedModel`) is set to."""
    mode = getattr(model, "alias_mode", None)
    return mode if isinstance(mode, str) else model.blocks[0].ssm.alias_mode


def pack_weights(model: Model, sample_rate: int, head: int, dtype: Any) -> Any:
    """:class:`~pianossm.engine.EngineWeights` of a model at ``sample_rate``: from the cache
    of a :class:`~pianossm.packed.PackedModel`, else :func:`pianossm.engine.pack_model`."""
    from pianossm.packed import PackedModel

    if isinstance(model, PackedModel):
        return model.pack(sample_rate, head, engine_dtype(dtype))
    from pianossm.engine import pack_model

    return pack_model(model, sample_rate, head, engine_dtype(dtype))


def render_blocks(model: Model, roll: PianoRoll, sample_rate: int, head: int = 0,
                  tail_seconds: float = 0.0, block_frames: int = BLOCK_FRAMES,
                  dtype: Any = "float32", frame_grid: str = "synth",
                  ) -> Iterator[np.ndarray]:
    """Synthesise ``roll`` block by block, carrying the SSM states between blocks.

    The result equals one forward pass over the whole file from a zero state.

    Parameters
    ----------
    model : PianoSSM or PackedModel
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
    dtype : torch.dtype, numpy dtype or str
        float32 or float64 (see :func:`engine_dtype`).
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
    from pianossm.engine.offline import render_roll

    weights = pack_weights(model, sample_rate, head, dtype)
    yield from render_roll(weights, roll, tail_seconds, block_frames, frame_samples)


def synthesis_stream(model: Model, midi: object, sample_rate: int, head: int = 0,
                     tail_seconds: float = 0.0, frame_grid: str = "synth",
                     numerics: str = "exact", dtype: Any = "float32",
                     max_seconds: float | None = None) -> tuple[Iterator[np.ndarray], float]:
    """The one synthesis pipeline: roll, internal rate, alias mode, frame grid, resampling.

    Every renderer (``pianossm render``, :func:`pianossm.synthesize`, batch rendering,
    :func:`render_midi`) goes through here.  Under the model's ``oversample`` alias mode
    the model runs at :func:`pianossm.alias.internal_rate` and the blocks are resampled
    (soxr, streaming) to ``sample_rate``.

    Parameters
    ----------
    model : PianoSSM or PackedModel
        The model, with its alias mode set.
    midi : pretty_midi.PrettyMIDI
        The performance.
    sample_rate : int
        Rate of the yielded audio, Hz.
    head : int
        Output head index.
    tail_seconds : float
        Seconds rendered after the last MIDI event.
    frame_grid : str
        See :func:`render_blocks`.
    numerics : str
        ``exact`` (streaming engine) or ``reference`` (the published float32 whole-file
        scan, :func:`pianossm.compat.reference_forward`, one block).
    dtype : torch.dtype, numpy dtype or str
        float32 or float64 (``exact`` only; see :func:`engine_dtype`).
    max_seconds : float, optional
        Render at most this much of the file (before the tail).

    Returns
    -------
    blocks : iterator of np.ndarray
        ``(n_i,)`` float32 audio blocks at ``sample_rate``, from MIDI time 0.
    seconds : float
        Audio length the blocks add up to (for a progress bar), seconds.
    """
    from pianossm.alias import internal_rate, resample_blocks

    if frame_grid not in FRAME_GRIDS:
        raise PianoSSMError(f"unknown frame grid {frame_grid!r}; allowed: {list(FRAME_GRIDS)}")
    if numerics not in NUMERICS:
        raise PianoSSMError(f"unknown numerics {numerics!r}; allowed: {list(NUMERICS)}")
    if frame_grid == "train" and numerics == "reference":
        raise PianoSSMError("--frame-grid train works with --numerics exact only")
    if tail_seconds < 0:
        raise PianoSSMError(f"tail must be >= 0 seconds, got {tail_seconds}")
    f_train = model.config.train_sample_rate
    rate = internal_rate(alias_mode_of(model), f_train, sample_rate)
    fps = training_frame_rate(model) if frame_grid == "train" else rate / frame_hop(rate)
    roll = PianoRoll.for_model(midi, fps, model.config)
    if max_seconds is not None:
        roll.n_frames = min(roll.n_frames, round(max_seconds * roll.fs))
    total = roll.n_frames + round(tail_seconds * roll.fs)
    if numerics == "reference":
        blocks = _reference_blocks(model, roll, rate, head, total)
    else:
        blocks = render_blocks(model, roll, rate, head, tail_seconds, BLOCK_FRAMES, dtype,
                               frame_grid)
    return resample_blocks(blocks, rate, sample_rate), total / roll.fs


def _reference_blocks(model: Model, roll: PianoRoll, rate: int, head: int,
                      total: int) -> Iterator[np.ndarray]:
    """The whole file through :func:`pianossm.compat.reference_forward`, as one block."""
    import torch

    from pianossm.compat import reference_forward
    from pianossm.packed import PackedModel

    if isinstance(model, PackedModel):
        model = model.torch_model()
    feats = torch.from_numpy(roll.frames(0, total))[None]
    yield reference_forward(model, feats, frame_hop(rate), model.ts_for(rate), head)[0].numpy()


def render_midi(model: Model, midi: object, sample_rate: int, head: int = 0,
                frame_grid: str = "synth", max_seconds: float | None = None,
                dtype: Any = "float32") -> np.ndarray:
    """A whole MIDI file through :func:`synthesis_stream` (no tail), as one array.

    Parameters
    ----------
    model : PianoSSM or PackedModel
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
    dtype : torch.dtype, numpy dtype or str
        float32 or float64.

    Returns
    -------
    np.ndarray
        ``(n,)`` float32 audio from MIDI time 0.
    """
    blocks, _ = synthesis_stream(model, midi, sample_rate, head, frame_grid=frame_grid,
                                 dtype=dtype, max_seconds=max_seconds)
    parts = list(blocks)
    return np.concatenate(parts) if parts else np.zeros(0, np.float32)


def training_frame_rate(model: Model) -> float:
    """Frames per second of the model's training rate (``f_train / frame_hop(f_train)``)."""
    f_train = model.config.train_sample_rate
    return f_train / frame_hop(f_train)
