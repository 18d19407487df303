"""Where a note's sound starts against its label: SoundFont renders and real recordings.

Two tables (README, "Real onsets come out about 6 ms early"):

* **Renders**: isolated notes at random phases rendered with each piano of
  :data:`pianossm.align.data.PIANOS` and both presets; per piano the mean delay from the
  MIDI note-on to the first sample within 30 dB of the note's peak (files at 9600 ticks per
  quarter, as ``align-data`` writes them, and at pretty_midi's 220, as the shipped
  network's training data were), and the error of :func:`pianossm.align.latency.sound_onsets`
  (README, "Labels at the sound").
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

import numpy as np

from pianossm.align.features import SAMPLE_RATE

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # align_real, beside it
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


def render_table(count: int = 150) -> None:
    """Print, per piano and preset, the measured delays from note-on to sound
    (:func:`pianossm.align.latency.measure_delays`, files at 9600 and at 220 ticks per
    quarter) and how far the model of :func:`pianossm.align.latency.sound_onsets` is off."""
    from pianossm.align.data import PIANOS
    from pianossm.align.latency import measure_delays, sound_onsets

    print(f"\nrenders: {count} isolated notes per piano and preset (keys 21-108, velocities "
          f"20-127, random phases); delay from MIDI note-on to the first sample within "
          f"30 dB of the note's peak, ms")
    print(f"{'piano':<11}{'preset':>7}{'mean':>7}{'model: mean err':>17}{'median |err|':>14}"
          f"{'p95 |err|':>11}{'220 ticks: mean':>17}")
    for name, sf in PIANOS.items():
        for prog in (0, 1):
            notes, d = measure_delays(sf, prog, count=count)
            err = 1000 * (sound_onsets(notes, sf, prog) - notes.onset - d)
            coarse = measure_delays(sf, prog, resolution=220, count=count)[1]
            print(f"{name:<11}{prog:>7}{1000 * d.mean():>+7.2f}{err.mean():>+17.2f}"
                  f"{np.median(np.abs(err)):>14.2f}{np.percentile(np.abs(err), 95):>11.2f}"
                  f"{1000 * coarse.mean():>+17.2f}")


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
