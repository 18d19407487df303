"""Does a synthesiser play the key it is given?  Isolated notes, loudest key in the CQT.

Each note (keys 24..96 every 4 semitones, velocities 40 / 80 / 110, 1 s long, alone in a
2 s file) is rendered by every model given and by FluidSynth (FluidR3); the CQT of the
alignment features (one bin per key) is averaged over 50-400 ms after the onset, and the
loudest bin is compared with the note's key: the share of notes whose loudest bin is the
key itself, and the share whose loudest bin has the key's pitch class (an octave error, a
strong second or fourth partial, still counts there).  The MSSL barely tells a piano
played a semitone off from the right one (about 9 either way on training crops), so this
is the check that a trained model learnt pitch at all.

Usage::

    python scripts/pitch_default.py --model default --model runs/x/best.pt \\
        [--model ../shared/reference/official-piano-ssm/checkpoints/PianoSSM_S_MH_maestro_all_16000_model.pth]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

import numpy as np

KEYS = tuple(range(24, 97, 4))
VELOCITIES = (40, 80, 110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", default=None,
                        help="model to check (repeatable; default: the built-in one)")
    parser.add_argument("--sample-rate", type=int, default=16000)
    args = parser.parse_args()
    import pretty_midi

    from pianossm.api import synthesize
    from pianossm.evaluate.pitch import loudest_key
    from pianossm.fluid import render_fluidsynth

    models = args.model or ["default"]
    rows: dict[str, list[tuple[int, int]]] = {m: [] for m in [*models, "FluidR3 (FluidSynth)"]}
    with tempfile.TemporaryDirectory() as tmp:
        for key in KEYS:
            for vel in VELOCITIES:
                pm = pretty_midi.PrettyMIDI()
                inst = pretty_midi.Instrument(0)
                inst.notes.append(pretty_midi.Note(vel, key, 0.5, 1.5))
                pm.instruments.append(inst)
                path = os.path.join(tmp, "note.mid")
                pm.write(path)
                for m in models:
                    audio, sr = synthesize(path, model=m, sample_rate=args.sample_rate)
                    rows[m].append((key, loudest_key(audio, sr)))
                ref = render_fluidsynth(path, args.sample_rate, "fluidr3")
                rows["FluidR3 (FluidSynth)"].append((key, loudest_key(ref, args.sample_rate)))
    print(f"{len(KEYS) * len(VELOCITIES)} isolated notes (keys {KEYS[0]}-{KEYS[-1]}, "
          f"velocities {VELOCITIES}), loudest CQT key 50-400 ms after the onset")
    print(f"{'model':60s} {'same key':>9s} {'same class':>11s}  most common loudest keys")
    for name, pairs in rows.items():
        got = np.array(pairs)
        same = np.mean(got[:, 0] == got[:, 1])
        cls = np.mean((got[:, 0] - got[:, 1]) % 12 == 0)
        vals, counts = np.unique(got[:, 1], return_counts=True)
        common = ", ".join(f"{v} x{c}" for v, c in sorted(zip(vals, counts), key=lambda t: -t[1])[:3])
        print(f"{os.path.basename(name)[-60:]:60s} {100 * same:8.1f}% {100 * cls:10.1f}%  {common}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
