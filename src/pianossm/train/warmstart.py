"""Warm start (``pianossm train --init CKPT``): a new run from a checkpoint's weights.

Every weight is copied.  The one shape change allowed is a wider input layout: from a
``roll`` model to a ``roll+onset+pedal`` one the first layer's input weights
(``blocks.0.ssm.B``, ``(H, d_in, 2)``) keep their 88 roll columns and get zeros for the
89 new channels, so the new model renders exactly what the old one did until training
moves them.  The run keeps its own output de-normalisation (the cache's audio mean and
standard deviation); where the checkpoint's differs, the heads are rescaled so that the
audio stays the same (``w' = w std/std'``, ``b' = (b std + mean - mean') / std'``).
Anything else that differs (another shape, training rate, heads, pedal threshold or mode
bound) is refused with an error naming it.
"""

from __future__ import annotations

import os

import torch

from pianossm.errors import PianoSSMError

__all__ = ["INPUT_WEIGHTS", "WIDENINGS", "warm_start"]

#: Parameters that read the model input, and the axis of their input channels.
INPUT_WEIGHTS = {"blocks.0.ssm.B": 1}
#: ``(from, to)`` layouts a warm start may widen; the old channels are the new ones'
#: first (see :mod:`pianossm.features`).
WIDENINGS = frozenset({("roll", "roll+onset+pedal")})
#: Config fields that must agree (they change what the copied weights mean).
_SAME = ("train_sample_rate", "heads", "pedal_threshold", "max_mode_hz")


def warm_start(model: torch.nn.Module, path: str | os.PathLike[str]) -> None:
    """Load a checkpoint's weights into ``model`` (in place), widening its input layout.

    Parameters
    ----------
    model : PianoSSM
        The new run's freshly built model; its config (layout, sizes, audio statistics)
        is kept.
    path : str or PathLike
        A pianossm checkpoint (``best.pt``, ``last.pt`` or an exported model).
    """
    from pianossm.checkpoint import load_checkpoint

    name = os.fspath(path)
    payload = load_checkpoint(name)
    old, new = payload["config"], model.config
    for field in _SAME:
        if getattr(old, field) != getattr(new, field):
            raise PianoSSMError(f"--init {name!r}: its {field} {getattr(old, field)!r} differs "
                                f"from this run's {getattr(new, field)!r}")
    widen = old.features != new.features
    if widen and (old.features, new.features) not in WIDENINGS:
        raise PianoSSMError(f"--init {name!r}: a {old.features!r} model cannot start a "
                            f"{new.features!r} run; allowed: "
                            f"{', '.join(f'{a} -> {b}' for a, b in sorted(WIDENINGS))}")
    source = payload["model"]
    target = model.state_dict()
    missing, extra = sorted(set(target) - set(source)), sorted(set(source) - set(target))
    if missing or extra:
        raise PianoSSMError(f"--init {name!r} does not fit this model: parameters missing "
                            f"{missing or 'none'}, unexpected {extra or 'none'}")
    state = {}
    for key, want in target.items():
        have = source[key]
        if have.shape == want.shape:
            state[key] = have
            continue
        axis = INPUT_WEIGHTS.get(key)
        fits = (widen and axis is not None and have.dim() == want.dim()
                and all(a == b for i, (a, b) in enumerate(zip(have.shape, want.shape))
                        if i != axis) and have.shape[axis] < want.shape[axis])
        if not fits:
            raise PianoSSMError(f"--init {name!r}: parameter {key} has shape "
                                f"{tuple(have.shape)} there and {tuple(want.shape)} here")
        wide = torch.zeros(want.shape, dtype=have.dtype)
        wide.narrow(axis, 0, have.shape[axis]).copy_(have)
        state[key] = wide
    if (old.audio_std, old.audio_mean) != (new.audio_std, new.audio_mean):
        w, b = state["heads.weight"].double(), state["heads.bias"].double()
        ratio = old.audio_std / new.audio_std
        state["heads.weight"] = (w * ratio).to(state["heads.weight"].dtype)
        state["heads.bias"] = ((b * old.audio_std + old.audio_mean - new.audio_mean)
                               / new.audio_std).to(state["heads.bias"].dtype)
    model.load_state_dict(state)
