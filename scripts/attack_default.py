"""How fast a model's isolated notes rise, against FluidR3: one table.

For each key and velocity, one 1 s note at MIDI time 0.1 s is synthesised by each model and
rendered by FluidSynth (FluidR3, dry); the 2 ms RMS envelope (1 ms hop) gives the time from
the MIDI onset until the level first reaches half (-6 dB) of its peak within the first
0.5 s.  Printed: the median over keys per velocity, per candidate.  A second table re-strikes each
key under the sustain pedal (same velocity, 0.5 s apart) and prints the median rise in dB
of the 2 ms RMS from just before the second strike to its highest point in the 60 ms after
it, less the same measure on the note held without the re-strike (a model on the ``roll``
layout sees no change in its input there: about 0 dB).

    python scripts/attack_default.py --model default --model training/default/best.pt
"""

from __future__ import annotations

import argparse
import os
import tempfile

import numpy as np
import pretty_midi

import pianossm
from pianossm.fluid import render_fluidsynth

ONSET = 0.1


def rise_ms(audio: np.ndarray, rate: int) -> float:
    """Milliseconds from :data:`ONSET` until the 2 ms RMS first reaches half its peak."""
    frame, hop = max(2, round(0.002 * rate)), max(1, round(0.001 * rate))
    start = round(ONSET * rate)
    seg = np.asarray(audio[start:start + rate // 2], np.float64)
    n = (len(seg) - frame) // hop + 1
    env = np.sqrt(np.array([np.mean(seg[i * hop:i * hop + frame] ** 2) for i in range(n)]))
    first = int(np.argmax(env >= 0.5 * env.max()))
    return (first * hop + frame / 2) / rate * 1000.0


def note_midi(path: str, pitch: int, velocity: int) -> None:
    """Write a one-note MIDI file: ``pitch`` at ``velocity`` from 0.1 s to 1.1 s."""
    pm = pretty_midi.PrettyMIDI()
    inst = pretty_midi.Instrument(0)
    inst.notes.append(pretty_midi.Note(velocity, pitch, ONSET, ONSET + 1.0))
    pm.instruments.append(inst)
    pm.write(path)


def restrike_midi(path: str, pitch: int, velocity: int, again: bool = True) -> None:
    """Write ``pitch`` struck at 0.1 s and (``again``) at 0.6 s, the pedal down from 0 s."""
    pm = pretty_midi.PrettyMIDI()
    inst = pretty_midi.Instrument(0)
    inst.control_changes.append(pretty_midi.ControlChange(64, 127, 0.0))
    inst.notes.append(pretty_midi.Note(velocity, pitch, ONSET, ONSET + 0.4))
    if again:
        inst.notes.append(pretty_midi.Note(velocity, pitch, ONSET + 0.5, ONSET + 0.9))
    inst.control_changes.append(pretty_midi.ControlChange(64, 0, 1.5))
    pm.instruments.append(inst)
    pm.write(path)


def restrike_db(audio: np.ndarray, rate: int) -> float:
    """dB from the 2 ms RMS 10-2 ms before the second strike to its maximum 0-60 ms after."""
    at = round((ONSET + 0.5) * rate)
    ms = rate // 1000

    def rms(a: int, b: int) -> float:
        return float(np.sqrt(np.mean(np.asarray(audio[a:b], np.float64) ** 2)) + 1e-12)

    before = rms(at - 10 * ms, at - 2 * ms)
    after = max(rms(at + k * ms, at + k * ms + 2 * ms) for k in range(0, 60, 1))
    return 20 * np.log10(after / before)


def main() -> None:
    """Print the table."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", action="append", default=[], help="checkpoint or 'default'")
    ap.add_argument("--rate", type=int, default=16000)
    ap.add_argument("--keys", default="33,45,57,69,81,93", help="MIDI pitches")
    ap.add_argument("--velocities", default="30,60,90,120")
    args = ap.parse_args()
    keys = [int(k) for k in args.keys.split(",")]
    vels = [int(v) for v in args.velocities.split(",")]
    models = {name: pianossm.load_model(name) for name in (args.model or ["default"])}
    rows: dict[str, dict[int, list[float]]] = {n: {v: [] for v in vels}
                                               for n in ["FluidR3", *models]}
    again: dict[str, dict[int, list[float]]] = {n: {v: [] for v in vels} for n in rows}
    with tempfile.TemporaryDirectory() as tmp:
        for key in keys:
            for vel in vels:
                path = os.path.join(tmp, f"r{key}_{vel}.mid")
                held = os.path.join(tmp, f"h{key}_{vel}.mid")
                restrike_midi(path, key, vel)
                restrike_midi(held, key, vel, again=False)
                again["FluidR3"][vel].append(
                    restrike_db(render_fluidsynth(path, args.rate), args.rate)
                    - restrike_db(render_fluidsynth(held, args.rate), args.rate))
                for name, model in models.items():
                    audio, rate = pianossm.synthesize(path, model, args.rate)
                    base, _ = pianossm.synthesize(held, model, args.rate)
                    again[name][vel].append(restrike_db(audio, rate) - restrike_db(base, rate))
        for key in keys:
            for vel in vels:
                path = os.path.join(tmp, f"n{key}_{vel}.mid")
                note_midi(path, key, vel)
                rows["FluidR3"][vel].append(rise_ms(render_fluidsynth(path, args.rate), args.rate))
                for name, model in models.items():
                    audio, rate = pianossm.synthesize(path, model, args.rate)
                    rows[name][vel].append(rise_ms(audio, rate))
    print(f"median ms from MIDI onset to half peak (2 ms RMS), keys {args.keys}")
    print("| candidate | " + " | ".join(f"vel {v}" for v in vels) + " |")
    print("|---|" + "---|" * len(vels))
    for name, per in rows.items():
        print(f"| {name} | " + " | ".join(f"{np.median(per[v]):.1f}" for v in vels) + " |")
    print("\nmedian dB rise of the 2 ms RMS at a re-strike under the pedal, less the same "
          "measure on the note held without it")
    print("| candidate | " + " | ".join(f"vel {v}" for v in vels) + " |")
    print("|---|" + "---|" * len(vels))
    for name, per in again.items():
        print(f"| {name} | " + " | ".join(f"{np.median(per[v]):+.1f}" for v in vels) + " |")


if __name__ == "__main__":
    main()
