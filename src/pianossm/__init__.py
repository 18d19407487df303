"""pianossm: neural piano audio from MIDI (Piano-SSM) and MIDI-to-audio alignment."""

from pianossm.config import PRESETS, PianoSSMConfig, preset
from pianossm.errors import PianoSSMError

__version__ = "0.1.0"
__all__ = ["PRESETS", "PianoSSMConfig", "PianoSSMError", "__version__", "preset"]
