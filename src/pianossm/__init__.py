"""pianossm: neural piano audio from MIDI (Piano-SSM) and MIDI-to-audio alignment.

The public API (see the README's "Python API")::

    import pianossm
    audio, rate = pianossm.synthesize("in.mid")          # (n,) float32 samples, Hz
    pianossm.render("in.mid", "out.wav")                 # streaming, atomic write
    model = pianossm.load_model("default")               # or a .pt / published .pth
    synth = pianossm.Synth(model, 16000)                 # real-time streaming
    pianossm.align_files(...)                            # MIDI-to-audio alignment

Names are imported on first use, so ``import pianossm`` (and ``pianossm --help``) does
not pay for torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from pianossm.errors import PianoSSMError

__version__ = "0.1.0"
__all__ = ["DEMO_MIDI", "PRESETS", "PianoSSMConfig", "PianoSSMError", "RenderResult", "Synth", "__version__",
           "align", "align_files", "align_notes", "load_model", "preset", "render",
           "synthesize"]

#: Lazily imported names: attribute -> (module, name or None for the module itself).
_LAZY = {
    "PRESETS": ("pianossm.config", "PRESETS"),
    "PianoSSMConfig": ("pianossm.config", "PianoSSMConfig"),
    "preset": ("pianossm.config", "preset"),
    "DEMO_MIDI": ("pianossm.api", "DEMO_MIDI"),
    "load_model": ("pianossm.api", "load_model"),
    "synthesize": ("pianossm.api", "synthesize"),
    "render": ("pianossm.render", None),  # the module, callable as pianossm.api.render
    "RenderResult": ("pianossm.api", "RenderResult"),
    "Synth": ("pianossm.engine.synth", "Synth"),
    "align": ("pianossm.align", None),
    "align_files": ("pianossm.align.api", "align_files"),
    "align_notes": ("pianossm.align.api", "align_notes"),
}


def __getattr__(name: str) -> Any:
    """Import a public name on first access (PEP 562)."""
    if name not in _LAZY:
        raise AttributeError(f"module 'pianossm' has no attribute {name!r}")
    module, attr = _LAZY[name]
    value = importlib.import_module(module)
    if attr is not None:
        value = getattr(value, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
