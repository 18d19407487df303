"""Where a note's sound starts against its label: SoundFont renders and real recordings.

Two tables (README, "Real onsets come out about 6 ms early"):

* **Renders**: isolated notes (pitches 36-84, velocities 40/70/100, 1 s apart) rendered
  with each piano of :data:`pianossm.align.data.PIANOS`; per piano the delay from the MIDI
  note-on to the first point of the signal within 30 dB of the note's peak (0.5 ms steps),
  and to where the 2 kHz high-passed envelope rises 12 dB above what precedes it.
* **Real recordings** (the shared test data, when present): the same envelope rise after
  each annotated onset, and the aligner's median signed onset error per note over
  ``--seeds`` perturbations (negative: placed early).

Usage: PIANO_SSM_SHARED=../shared python scripts/onset_latency.py [--seeds 20]
       [--method dtw+crnn] [--model CKPT]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

import numpy as np

from pianossm.align.features import SAMPLE_RATE

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # align_real, beside it
PITCHES = (36, 48, 60, 72, 84)
VELOCITIES = (40, 70, 100)
GAP = 1.0  # s between isolated notes
STEP = 0.0005  # s, envelope resolution


def highpass(audio: np.ndarray) -> np.ndarray:
    """``(n,)`` the signal high-passed at 2 kHz (4th-order Butterworth): the attacks'
    transients, above most of the ringing partials."""
    from scipy.signal import butter, sosfilt

    return sosfilt(butter(4, 2000, "hp", fs=SAMPLE_RATE, output="sos"), audio)


def hf_rise(hp: np.ndarray, t0: float, rise_db: float = 12.0) -> float:
    """Delay (ms) from ``t0`` to where the high-passed RMS envelope (1 ms windows) first
    exceeds its level 15-40 ms before ``t0`` by ``rise_db`` (floored at -60 dB of its
    peak near ``t0``, for notes out of silence); NaN when it never does in +-40 ms.

    Parameters
    ----------
    hp : np.ndarray
        ``(n,)`` :func:`highpass` of the samples at :data:`SAMPLE_RATE`.
    t0 : float
        The label, seconds.
    rise_db : float
        The rise that counts as the sound's start.

    Returns
    -------
    float
        Milliseconds (negative: before the label).
    """
    ts = np.arange(-0.04, 0.04, STEP)
    win = SAMPLE_RATE // 1000
    idx = np.clip(((t0 + ts) * SAMPLE_RATE).astype(np.int64), 0, max(0, len(hp) - win))
    env = np.array([np.sqrt(np.mean(hp[i:i + win] ** 2)) for i in idx]) + 1e-12
    base = max(float(np.median(env[ts < -0.015])), float(env.max()) * 1e-3)
    ok = (ts >= -0.015) & (env > 10 ** (rise_db / 20) * base)
    return 1000 * float(ts[np.argmax(ok)]) if ok.any() else float("nan")


def first_sound(audio: np.ndarray, t0: float, below_db: float = 30.0) -> float:
    """Delay (ms) from ``t0`` to the first sample envelope point (0.5 ms steps) within
    ``below_db`` of the peak of the next 100 ms (the note out of silence).

    Parameters
    ----------
    audio : np.ndarray
        ``(n,)`` samples at :data:`SAMPLE_RATE`.
    t0 : float
        The MIDI note-on, seconds (silence for 50 ms before it).
    below_db : float
        How far below the peak the sound counts as started.

    Returns
    -------
    float
        Milliseconds.
    """
    seg = np.abs(audio[int((t0 - 0.05) * SAMPLE_RATE):int((t0 + 0.1) * SAMPLE_RATE)])
    hop, win = int(STEP * SAMPLE_RATE), 2 * int(STEP * SAMPLE_RATE)
    env = np.array([seg[i:i + win].max() for i in range(0, len(seg) - win, hop)])
    i = int(np.argmax(env > env.max() * 10 ** (-below_db / 20)))
    return 1000 * (i * hop / SAMPLE_RATE - 0.05)


def render_table() -> None:
    """Print each piano's delays from note-on to sound (median, min, max over the notes)."""
    import pretty_midi

    from pianossm.align.data import PIANOS
    from pianossm.fluid import render_fluidsynth

    pm = pretty_midi.PrettyMIDI()
    inst = pretty_midi.Instrument(0)
    onsets = []
    for j, (p, v) in enumerate((p, v) for p in PITCHES for v in VELOCITIES):
        onsets.append(0.5 + GAP * j)
        inst.notes.append(pretty_midi.Note(velocity=v, pitch=p, start=onsets[-1],
                                           end=onsets[-1] + 0.4))
    pm.instruments.append(inst)
    print(f"\nrenders: {len(onsets)} isolated notes, delay from MIDI note-on (ms), "
          f"median (min / max)")
    print(f"{'piano':<12}{'first sound (-30 dB)':>24}{'2 kHz envelope +12 dB':>26}")
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "isolated.mid")
        pm.write(path)
        for name, sf in PIANOS.items():
            audio = render_fluidsynth(path, SAMPLE_RATE, sf)
            a = np.array([first_sound(audio, t) for t in onsets])
            hp = highpass(audio)
            b = np.array([hf_rise(hp, t) for t in onsets])
            print(f"{name:<12}{np.median(a):>+9.1f} ({a.min():+.1f} / {a.max():+.1f}){'':>3}"
                  f"{np.nanmedian(b):>+9.1f} ({np.nanmin(b):+.1f} / {np.nanmax(b):+.1f})")


def real_table(real: str, seeds: int, method: str, model: str | None) -> None:
    """Print, per annotated note, the envelope rise after its label and the aligner's
    median signed error over ``seeds`` perturbations."""
    from align_real import load_real

    from pianossm.align.api import align_notes
    from pianossm.align.perturb import PerturbConfig, perturb_notes

    print(f"\nreal recordings: per note, ms (negative: before the annotation); "
          f"`{method}` over {seeds} perturbations")
    print(f"{'recording':<15}{'note':>5}{'pitch':>6}{'vel':>5}{'envelope +12 dB':>17}"
          f"{'median signed error':>21}")
    for name, (audio, ref) in load_real(real).items():
        hp = highpass(audio)
        err = []
        for s in range(seeds):
            bad = perturb_notes(ref, PerturbConfig(), np.random.default_rng([s, 99]))
            err.append(align_notes(audio, bad, method, model).onset - ref.onset)
        med = 1000 * np.median(np.array(err), axis=0)
        for k in range(len(ref)):
            print(f"{name:<15}{k:>5}{ref.pitch[k]:>6}{ref.velocity[k]:>5}"
                  f"{hf_rise(hp, float(ref.onset[k])):>+17.1f}{med[k]:>+21.1f}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--method", default="dtw+crnn")
    parser.add_argument("--model", default=None, help="CRNN checkpoint (default: shipped)")
    args = parser.parse_args()
    render_table()
    from align_real import shared_dir

    real = os.path.join(shared_dir(), "testdata", "real")
    if os.path.isdir(real):
        real_table(real, args.seeds, args.method, args.model)
    else:
        print(f"\n(no real recordings at {real}: set PIANO_SSM_SHARED)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
