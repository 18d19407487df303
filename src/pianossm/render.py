"""Rendering a MIDI file of any length in one streaming pass with carried state.

The functions live in :mod:`pianossm.pipeline` and are re-exported here.  The module is
callable: ``pianossm.render(midi, out)`` is :func:`pianossm.api.render` (the submodule and
the function share the name, so the module forwards the call).
"""

from __future__ import annotations

import sys
import types

from pianossm.pipeline import (
    BLOCK_FRAMES,
    FRAME_GRIDS,
    default_model_path,
    render_blocks,
    render_midi,
    synthesis_stream,
    training_frame_rate,
)

__all__ = ["BLOCK_FRAMES", "FRAME_GRIDS", "default_model_path", "render_blocks",
           "render_midi", "synthesis_stream", "training_frame_rate"]


class _CallableModule(types.ModuleType):
    """This module, callable as :func:`pianossm.api.render`."""

    def __call__(self, *args: object, **kwargs: object) -> object:
        from pianossm.api import render

        return render(*args, **kwargs)  # type: ignore[arg-type]


sys.modules[__name__].__class__ = _CallableModule
