"""MIDI-to-audio alignment, note by note (after Murgul et al. 2025).

Pipeline: ``audio_to_cqt`` (16 kHz, hop 160, 88 key bins) and ``midi_to_piano_roll``
(onsets + frames, 10 ms) -> a DTW baseline (:mod:`.dtw`) and/or the CRNN
(:mod:`.model`) -> ``roll_to_notes`` (:mod:`.decode`), which moves every input note and
never adds or drops one.  :func:`align_notes` / :func:`align_files` are the entry points;
``pianossm align`` is the command.
"""

from pianossm.align.api import METHODS, align_files, align_notes
from pianossm.align.notes import Notes, midi_to_notes, midi_to_piano_roll

__all__ = ["METHODS", "Notes", "align_files", "align_notes", "midi_to_notes",
           "midi_to_piano_roll"]
