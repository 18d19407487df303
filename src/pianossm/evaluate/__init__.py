"""Evaluation: MSSL over non-overlapping 10 s windows, per piece and mean; onset timing.

Three kinds of candidates are scored against the references of a cache split:

* a model, synthesised at the reference rate or at ``synth_rate`` (then resampled to
  the reference rate with soxr for scoring, as the paper does), optionally with an
  alias mode (``oversample`` runs the model at :func:`pianossm.alias.internal_rate`
  and resamples down to ``synth_rate`` first);
* a folder of audio files named ``<item name>.wav`` / ``.flac`` (DDSP-Piano, FluidSynth
  with another SoundFont, ...), resampled to the reference rate;
* silence, the trivial yardstick.

:func:`evaluate_timing` instead synthesises (or reads) each whole piece of a split,
aligns it to the piece's own MIDI file (:mod:`pianossm.align.timing`) and keeps every
note's signed onset error: a synthesiser's timing, comparable across synthesisers.

Split by responsibility: :mod:`.windows` (window sources and MSSL scoring),
:mod:`.timing` (whole-piece onset timing), :mod:`.report` (tables and CSV files).
"""

from pianossm.evaluate.report import (
    format_table,
    format_timing_table,
    summarise,
    write_csv,
    write_timing_csv,
)
from pianossm.evaluate.timing import (
    PieceSource,
    PieceTiming,
    evaluate_timing,
    folder_piece_source,
    model_piece_source,
    timing_rows,
)
from pianossm.evaluate.windows import (
    Source,
    WindowScore,
    evaluate_windows,
    folder_source,
    item_midi,
    model_source,
    silence_source,
)

__all__ = [
    "PieceSource",
    "PieceTiming",
    "Source",
    "WindowScore",
    "evaluate_timing",
    "evaluate_windows",
    "folder_piece_source",
    "folder_source",
    "format_table",
    "format_timing_table",
    "item_midi",
    "model_piece_source",
    "model_source",
    "silence_source",
    "summarise",
    "timing_rows",
    "write_csv",
    "write_timing_csv",
]
