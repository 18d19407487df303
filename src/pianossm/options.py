"""Choices the command line lists, importable without torch (so ``--help`` stays fast).

:data:`ALIAS_MODE_NAMES` mirrors :data:`pianossm.alias.ALIAS_MODES` (a test holds them
equal); :data:`FRAME_GRIDS` is the one definition, re-exported by :mod:`pianossm.render`.
"""

from __future__ import annotations

__all__ = ["ALIAS_MODE_NAMES", "BITS", "FRAME_GRIDS", "NUMERICS"]

#: Where a rate-switched model's input frames fall (see :func:`pianossm.pipeline.render_blocks`).
FRAME_GRIDS = ("synth", "train")
#: Alias modes, as :data:`pianossm.alias.ALIAS_MODES` (kept here so the parser needs no torch).
ALIAS_MODE_NAMES = ("none", "drop", "static", "clamp", "oversample")
#: ``exact``: streaming engine; ``reference``: the published float32 whole-file scan.
NUMERICS = ("exact", "reference")
#: Output sample formats (:data:`pianossm.audio.SUBTYPES`).
BITS = ("16", "24", "float")
