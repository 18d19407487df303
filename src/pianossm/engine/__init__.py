"""Fast inference: offline rendering and streaming synthesis of a trained Piano-SSM.

:func:`pack_model` folds a model at one sample rate into :class:`EngineWeights`;
:class:`Engine` renders with carried state (compiled recurrences, GEMMs over blocks);
:func:`render_roll` renders a whole piano roll offline; :class:`Synth` streams MIDI
events block by block with one block of latency.
"""

from pianossm.engine.core import Engine
from pianossm.engine.weights import EngineWeights, pack_model

__all__ = ["Engine", "EngineWeights", "pack_model"]
