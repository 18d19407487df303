"""Recording conditions for alignment training data: rooms, microphones, noise, level.

A dry SoundFont render sounds nothing like a piano recorded in a room.  This module turns
one into a plausible recording, deterministically from a seed:

* **room**: convolution with a generated impulse response: a direct sound, a few early
  reflections (delays from a shoebox-like geometry) and a diffuse tail of noise decaying
  exponentially with a frequency-dependent reverberation time (high frequencies die
  sooner); the microphone distance sets the direct-to-reverberant ratio (``close`` ~ 0.3-1
  m as MAPS' close-mic, ``ambient`` 2-5 m); two long-reverberation training families
  bracket the held-out ``hall`` (RT60 1.5-2.2 s) without overlapping it: ``chamber``
  (RT60 0.9-1.4 s heard from 4-10 m: little direct sound) and ``church`` (2.4-3.8 s);
* **microphone**: a random smooth EQ (low/high shelves and one peak, biquads);
* **noise**: white, pink or brown background noise at 20-50 dB SNR;
* **level**: a gain change and a feed-forward compressor (threshold, ratio, attack /
  release) as in broadcast or phone recordings.

Room families are named so that training and validation can use disjoint sets:
:data:`TRAIN_ROOMS` for training, :data:`HELDOUT_ROOMS` (other reverberation times, other
geometry seeds) for "unseen rooms".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal

from pianossm.errors import PianoSSMError

__all__ = ["HELDOUT_ROOMS", "ROOMS", "TRAIN_ROOMS", "Room", "make_ir", "record"]


@dataclass(frozen=True)
class Room:
    """A family of rooms: reverberation time and microphone distance ranges (s, m)."""

    rt60: tuple[float, float]
    distance: tuple[float, float]
    seed: int  # separates the geometries of families with overlapping ranges


#: ``dry`` is no room (the render as is, still with microphone, noise and level).
ROOMS: dict[str, Room | None] = {
    "dry": None,
    "close": Room((0.3, 0.8), (0.3, 1.0), 1),
    "ambient": Room((0.6, 1.4), (2.0, 5.0), 2),
    "studio": Room((0.15, 0.35), (0.5, 1.5), 3),  # held out
    "hall": Room((1.5, 2.2), (3.0, 8.0), 4),  # held out
    "chamber": Room((0.9, 1.4), (4.0, 10.0), 5),  # far microphone, medium reverberation
    "church": Room((2.4, 3.8), (2.0, 9.0), 6),  # longer reverberation than any hall
}
TRAIN_ROOMS = ("dry", "close", "ambient", "chamber", "church")
HELDOUT_ROOMS = ("studio", "hall")


def make_ir(room: Room, rng: np.random.Generator, sr: int) -> np.ndarray:
    """A generated room impulse response.

    Parameters
    ----------
    room : Room
        Ranges the parameters are drawn from.
    rng : np.random.Generator
        Source of every random choice.
    sr : int
        Sample rate.

    Returns
    -------
    np.ndarray
        ``(L,)`` float32, direct sound at sample 0 with amplitude 1.
    """
    rt60 = rng.uniform(*room.rt60)
    dist = rng.uniform(*room.distance)
    n = int(sr * min(5.0, 1.2 * rt60 + 0.05))
    t = np.arange(n) / sr
    ir = np.zeros(n)
    ir[0] = 1.0
    geo = np.random.default_rng([room.seed, int(rng.integers(1 << 30))])
    for _ in range(6):  # early reflections: image sources 1-15 m further than the direct
        extra = geo.uniform(1.0, 15.0)
        k = int(sr * extra / 343.0)
        if k < n:
            ir[k] += geo.choice([-1, 1]) * geo.uniform(0.3, 0.8) * dist / (dist + extra)
    # diffuse tail: noise split into 3 bands with their own decay (highs die sooner)
    onset = int(sr * geo.uniform(0.005, 0.02))
    noise = rng.normal(size=n)
    low = signal.sosfilt(signal.butter(2, 500, "low", fs=sr, output="sos"), noise)
    high = signal.sosfilt(signal.butter(2, 3000, "high", fs=sr, output="sos"), noise)
    mid = noise - low - high
    tail = np.zeros(n)
    for band, factor in ((low, 1.2), (mid, 1.0), (high, 0.6)):
        tail += band * np.exp(-6.91 * t / (rt60 * factor))
    tail[:onset] = 0.0
    # direct-to-reverberant ratio falls with distance (critical distance ~1.5 m)
    drr_db = 20 * np.log10(1.5 / dist) + rng.uniform(-2, 2)
    e_tail = float(np.sum(tail ** 2)) + 1e-12
    tail *= np.sqrt(1.0 / e_tail / 10 ** (drr_db / 10))
    return (ir + tail).astype(np.float32)


def _mic_eq(audio: np.ndarray, rng: np.random.Generator, sr: int) -> np.ndarray:
    """Low shelf, high roll-off or lift, and one peak: a microphone's colouration."""
    out = audio.astype(np.float64)
    hp = rng.uniform(30, 120)
    out = signal.sosfilt(signal.butter(1, hp, "high", fs=sr, output="sos"), out)
    lp = rng.uniform(4000, 7900)
    if rng.random() < 0.5:
        out = signal.sosfilt(signal.butter(2, lp, "low", fs=sr, output="sos"), out)
    f0, gain_db, q = rng.uniform(200, 5000), rng.uniform(-6, 6), rng.uniform(0.5, 2.0)
    a = 10 ** (gain_db / 40)
    w = 2 * np.pi * f0 / sr
    alpha = np.sin(w) / (2 * q)
    b = [1 + alpha * a, -2 * np.cos(w), 1 - alpha * a]
    den = [1 + alpha / a, -2 * np.cos(w), 1 - alpha / a]
    return signal.lfilter(b, den, out)


def _noise(n: int, rng: np.random.Generator) -> np.ndarray:
    """White, pink (1/f) or brown (1/f^2) noise of unit power."""
    kind = int(rng.integers(3))
    spec = np.fft.rfft(rng.normal(size=n))
    f = np.maximum(np.arange(len(spec)), 1.0)
    spec /= f ** (0.5 * kind)
    x = np.fft.irfft(spec, n)
    return x / (np.sqrt(np.mean(x ** 2)) + 1e-12)


def _compress(audio: np.ndarray, rng: np.random.Generator, sr: int) -> np.ndarray:
    """Feed-forward compressor on a smoothed envelope (threshold relative to the peak)."""
    thr = rng.uniform(-30, -12) + 20 * np.log10(np.max(np.abs(audio)) + 1e-9)
    ratio = rng.uniform(2, 6)
    release = rng.uniform(0.05, 0.3)
    env = np.abs(audio)
    # one-pole smoothing via lfilter (attack ~ release here; cheap and deterministic)
    a = np.exp(-1.0 / (release * sr))
    env = signal.lfilter([1 - a], [1, -a], env)
    level = 20 * np.log10(env + 1e-9)
    over = np.maximum(level - thr, 0.0)
    return audio * 10 ** (-over * (1 - 1 / ratio) / 20)


def record(audio: np.ndarray, sr: int, room: str, rng: np.random.Generator,
           snr_db: tuple[float, float] = (20.0, 50.0), compress_p: float = 0.3,
           ) -> tuple[np.ndarray, dict]:
    """A dry render as recorded in ``room`` (see :data:`ROOMS`).

    Parameters
    ----------
    audio : np.ndarray
        ``(n,)`` mono audio.
    sr : int
        Sample rate.
    room : str
        A key of :data:`ROOMS`.
    rng : np.random.Generator
        Source of every random choice (the same state gives the same output).
    snr_db : tuple of float
        Range of the background-noise SNR.
    compress_p : float
        Probability of dynamic-range compression.

    Returns
    -------
    audio : np.ndarray
        ``(n,)`` float32, peak at most 0.99; same length and timing as the input (the
        direct sound is not delayed).
    meta : dict
        The condition (room, SNR, compression) for the data item.
    """
    if room not in ROOMS:
        raise PianoSSMError(f"unknown room {room!r}; allowed: {sorted(ROOMS)}")
    if audio.ndim != 1 or len(audio) == 0:
        raise PianoSSMError(f"expected non-empty mono audio, got shape {audio.shape}")
    x = audio.astype(np.float64)
    spec = ROOMS[room]
    if spec is not None:
        x = signal.fftconvolve(x, make_ir(spec, rng, sr))[:len(audio)]
    x = _mic_eq(x, rng, sr)
    compressed = bool(rng.random() < compress_p)
    if compressed:
        x = _compress(x, rng, sr)
    snr = float(rng.uniform(*snr_db))
    power = float(np.mean(x ** 2)) + 1e-12
    x = x + _noise(len(x), rng) * np.sqrt(power / 10 ** (snr / 10))
    x *= rng.uniform(0.1, 0.9) / (np.max(np.abs(x)) + 1e-9)
    return x.astype(np.float32), {"room": room, "snr_db": round(snr, 1),
                                  "compressed": compressed}
