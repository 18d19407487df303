"""MAESTRO v3 loader: recordings, splits and year labels from ``maestro-v3.0.0.csv``.

The CSV has the columns ``canonical_composer, canonical_title, split, year,
midi_filename, audio_filename, duration``; file names are relative to the dataset root.
The year is the head label of the multi-head model (:data:`pianossm.config.MAESTRO_YEARS`).
Audio is read as mono and resampled to the training rate (soxr) when the cache is built.
"""

from __future__ import annotations

import csv
import os

from pianossm.data.cache import Item
from pianossm.errors import PianoSSMError

__all__ = ["CSV_NAME", "maestro_items"]

CSV_NAME = "maestro-v3.0.0.csv"
_COLUMNS = ("split", "year", "midi_filename", "audio_filename")
_SPLITS = ("train", "validation", "test")


def maestro_items(root: str | os.PathLike[str], splits: tuple[str, ...] = _SPLITS,
                  years: tuple[str, ...] | None = None) -> list[Item]:
    """The recordings of a MAESTRO v3 folder.

    Parameters
    ----------
    root : str or PathLike
        Folder holding ``maestro-v3.0.0.csv`` and the year folders.
    splits : tuple of str
        Splits to keep.
    years : tuple of str, optional
        Years to keep (all when omitted).

    Returns
    -------
    list of Item
        Name = audio file stem, head = year.
    """
    root = os.fspath(root)
    path = os.path.join(root, CSV_NAME)
    if not os.path.isfile(path):
        raise PianoSSMError(f"not a MAESTRO v3 folder (no {CSV_NAME}): {root!r}")
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = [c for c in _COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise PianoSSMError(f"{path!r} lacks the columns {missing}")
        rows = list(reader)
    items = []
    for line, row in enumerate(rows, start=2):
        if row["split"] not in _SPLITS:
            raise PianoSSMError(f"{path!r} line {line}: unknown split {row['split']!r}; "
                                f"allowed: {list(_SPLITS)}")
        if row["split"] not in splits or (years and row["year"] not in years):
            continue
        midi = os.path.join(root, row["midi_filename"])
        audio = os.path.join(root, row["audio_filename"])
        for p in (midi, audio):
            if not os.path.isfile(p):
                raise PianoSSMError(f"{path!r} line {line}: file not found: {p!r}")
        name = os.path.splitext(os.path.basename(row["audio_filename"]))[0]
        items.append(Item(name, midi, audio, row["split"], str(row["year"])))
    if not items:
        raise PianoSSMError(f"no recordings selected from {path!r} (splits {list(splits)}, "
                            f"years {list(years) if years else 'all'})")
    return items
