"""Write the built-in demo phrase ``src/pianossm/assets/demo.mid`` (deterministic).

About 8 s: a C-major scale, a few chords at different loudness, a pedalled arpeggio and
the two extreme keys A0 and C8.  Run: ``python scripts/make_demo_midi.py``.
"""

from __future__ import annotations

import os

import pretty_midi


def main() -> None:
    """Build and save the demo phrase."""
    midi = pretty_midi.PrettyMIDI(initial_tempo=100)
    piano = pretty_midi.Instrument(program=0, name="piano")
    t = 0.0
    for i, pitch in enumerate([60, 62, 64, 65, 67, 69, 71, 72]):
        piano.notes.append(pretty_midi.Note(70 + 3 * i, pitch, t, t + 0.28))
        t += 0.25
    t += 0.25
    for vel, chord in [(50, (48, 55, 64)), (80, (53, 60, 69)), (110, (55, 62, 71, 79))]:
        for pitch in chord:
            piano.notes.append(pretty_midi.Note(vel, pitch, t, t + 0.6))
        t += 0.75
    piano.control_changes.append(pretty_midi.ControlChange(64, 100, t))
    for pitch in [36, 43, 48, 52, 55, 60, 64, 67, 72, 76]:
        piano.notes.append(pretty_midi.Note(75, pitch, t, t + 0.15))
        t += 0.15
    t += 1.0
    piano.control_changes.append(pretty_midi.ControlChange(64, 0, t))
    piano.notes.append(pretty_midi.Note(90, 21, t, t + 0.8))
    piano.notes.append(pretty_midi.Note(90, 108, t + 0.4, t + 1.2))
    midi.instruments.append(piano)
    out = os.path.join(os.path.dirname(__file__), "..", "src", "pianossm", "assets", "demo.mid")
    midi.write(os.path.normpath(out))
    print(f"wrote {os.path.normpath(out)}: {midi.get_end_time():.2f} s")


if __name__ == "__main__":
    main()
