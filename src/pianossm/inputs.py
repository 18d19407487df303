"""MIDI input of the Python API: a path, the bytes of a file, a PrettyMIDI or a list of notes."""

from __future__ import annotations

import io
import os
from collections.abc import Iterable
from typing import Any

from pianossm.errors import PianoSSMError

__all__ = ["read_midi"]


def read_midi(midi: Any) -> Any:
    """A ``pretty_midi.PrettyMIDI`` from a path, bytes, a PrettyMIDI or a list of notes.

    Parameters
    ----------
    midi : str, PathLike, bytes, pretty_midi.PrettyMIDI or list
        A ``.mid`` path, the bytes of one, a PrettyMIDI, or notes: ``pretty_midi.Note``
        objects or ``(pitch, velocity, start_s, end_s)`` tuples.

    Returns
    -------
    pretty_midi.PrettyMIDI
    """
    import pretty_midi

    from pianossm.features import load_midi

    if isinstance(midi, pretty_midi.PrettyMIDI):
        pm = midi
    elif isinstance(midi, (str, os.PathLike)):
        return load_midi(midi)
    elif isinstance(midi, (bytes, bytearray)):
        try:
            pm = pretty_midi.PrettyMIDI(io.BytesIO(bytes(midi)))
        except Exception as exc:  # noqa: BLE001  (mido/pretty_midi raise many types)
            raise PianoSSMError(f"not readable MIDI data ({exc})") from None
    elif isinstance(midi, Iterable):
        pm = pretty_midi.PrettyMIDI()
        piano = pretty_midi.Instrument(program=0)
        piano.notes = [_note(n) for n in midi]
        pm.instruments.append(piano)
    else:
        raise PianoSSMError(f"cannot read MIDI from a {type(midi).__name__}; give a path, "
                            f"bytes, a PrettyMIDI or a list of notes")
    if not any(inst.notes for inst in pm.instruments if not inst.is_drum):
        raise PianoSSMError("MIDI has no notes to play")
    return pm


def _note(n: Any) -> Any:
    """One ``pretty_midi.Note`` from a Note or a ``(pitch, velocity, start, end)`` tuple."""
    import pretty_midi

    if isinstance(n, pretty_midi.Note):
        pitch, velocity, start, end = n.pitch, n.velocity, n.start, n.end
    else:
        try:
            pitch, velocity, start, end = n
        except (TypeError, ValueError):
            raise PianoSSMError(f"a note must be (pitch, velocity, start, end), got {n!r}") from None
    if not (0 <= int(pitch) <= 127 and 1 <= int(velocity) <= 127 and 0 <= start < end):
        raise PianoSSMError(f"bad note {n!r}: need pitch 0-127, velocity 1-127, "
                            f"0 <= start < end")
    return pretty_midi.Note(int(velocity), int(pitch), float(start), float(end))
