"""Reading performances: ``.mid`` files and MAPS ``.txt`` note lists, as ``PrettyMIDI``.

The lowest data module (it imports no other one): the cache and the MAPS loader both
use it, so neither needs the other.
"""

from __future__ import annotations

import os

from pianossm.errors import PianoSSMError
from pianossm.features import load_midi

__all__ = ["load_performance", "read_maps_txt"]


def read_maps_txt(path: str | os.PathLike[str], velocity: int = 64,
                  ) -> pretty_midi.PrettyMIDI:  # noqa: F821
    """A MAPS ``.txt`` note list as a one-piano ``PrettyMIDI``.

    Parameters
    ----------
    path : str or PathLike
        ``OnsetTime<TAB>OffsetTime<TAB>MidiPitch`` lines after a header line.
    velocity : int
        Velocity of every note (the lists have none).

    Returns
    -------
    pretty_midi.PrettyMIDI
    """
    import pretty_midi

    name = os.fspath(path)
    if not os.path.isfile(name):
        raise PianoSSMError(f"MAPS note list not found: {name!r}")
    inst = pretty_midi.Instrument(program=0)
    with open(name, encoding="utf-8", errors="replace") as f:
        for line_no, line in enumerate(f, start=1):
            parts = line.split()
            if not parts or (line_no == 1 and parts[0].lower().startswith("onset")):
                continue
            try:
                on, off, pitch = float(parts[0]), float(parts[1]), int(float(parts[2]))
            except (ValueError, IndexError):
                raise PianoSSMError(f"{name!r} line {line_no}: expected 'onset offset pitch', "
                                    f"got {line.strip()!r}") from None
            inst.notes.append(pretty_midi.Note(velocity, pitch, on, max(off, on + 1e-3)))
    if not inst.notes:
        raise PianoSSMError(f"MAPS note list has no notes: {name!r}")
    pm = pretty_midi.PrettyMIDI()
    pm.instruments.append(inst)
    return pm


def load_performance(path: str) -> pretty_midi.PrettyMIDI:  # noqa: F821
    """A ``.mid`` file, or a MAPS ``.txt`` note list, as ``PrettyMIDI``."""
    if path.lower().endswith(".txt"):
        return read_maps_txt(path)
    return load_midi(path)
