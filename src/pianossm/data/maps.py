"""MAPS loader: ISOL/RAND/UCHO for training, MUS for testing, on the Disklavier pianos.

MAPS folders look like ``ENSTDkCl/ISOL/NO/MAPS_ISOL_NO_F_S0_M23_ENSTDkCl.wav``,
``ENSTDkCl/RAND/P1/MAPS_RAND_P1_M_I60-68_S0_n1_ENSTDkCl.wav``, ``.../UCHO/...`` and
``ENSTDkAm/MUS/MAPS_MUS-alb_se3_ENSTDkAm.wav``, each WAV beside a ``.mid`` and a ``.txt``
note list (``OnsetTime OffsetTime MidiPitch``, one note a line, no velocities).  The two
real-piano conditions are the heads: ``ENSTDkCl`` (close) and ``ENSTDkAm`` (ambient).
The ``.mid`` is used when present, else the ``.txt`` (at a fixed velocity).
"""

from __future__ import annotations

import os

from pianossm.data.cache import Item
from pianossm.data.notes import read_maps_txt
from pianossm.errors import PianoSSMError

__all__ = ["CONDITIONS", "TEST_SUBSETS", "TRAIN_SUBSETS", "maps_items", "read_maps_txt"]

#: Recording condition folder -> head name.
CONDITIONS = {"ENSTDkCl": "close", "ENSTDkAm": "ambient"}
TRAIN_SUBSETS = ("ISOL", "RAND", "UCHO")
TEST_SUBSETS = ("MUS",)


def maps_items(root: str | os.PathLike[str], conditions: tuple[str, ...] = tuple(CONDITIONS),
               ) -> list[Item]:
    """The recordings of a MAPS folder: ISOL/RAND/UCHO as ``train``, MUS as ``test``.

    Parameters
    ----------
    root : str or PathLike
        Folder holding the condition folders (``ENSTDkCl``, ``ENSTDkAm``).
    conditions : tuple of str
        Condition folders to use.

    Returns
    -------
    list of Item
        Name = WAV stem; MIDI = the ``.mid`` beside it, else the ``.txt``.
    """
    root = os.fspath(root)
    items = []
    for cond in conditions:
        if cond not in CONDITIONS:
            raise PianoSSMError(f"unknown MAPS condition {cond!r}; allowed: {list(CONDITIONS)}")
        folder = os.path.join(root, cond)
        if not os.path.isdir(folder):
            continue
        for subset in TRAIN_SUBSETS + TEST_SUBSETS:
            base = os.path.join(folder, subset)
            for dirpath, _, files in sorted(os.walk(base)):
                for wav in sorted(f for f in files if f.lower().endswith(".wav")):
                    stem = os.path.join(dirpath, wav[:-4])
                    notes = next((stem + e for e in (".mid", ".txt") if os.path.isfile(stem + e)),
                                 None)
                    if notes is None:
                        raise PianoSSMError(f"MAPS recording {stem + '.wav'!r} has no .mid or "
                                            f".txt beside it")
                    split = "test" if subset in TEST_SUBSETS else "train"
                    items.append(Item(wav[:-4], notes, stem + ".wav", split, CONDITIONS[cond]))
    if not items:
        raise PianoSSMError(f"no MAPS recordings found under {root!r} "
                            f"(expected {'/'.join(conditions)} folders with ISOL/RAND/UCHO/MUS)")
    return items
