"""Measurements behind ``pianossm bench``: the paper's Table 5 for this machine.

For each preset and rate: real-time factor (RTF, seconds of compute per second of audio)
offline, streaming at block 64 and at block 1, the per-sample delay at block 1, the work
per second of audio and the share of this machine's float32 matrix-product rate that the
offline path achieves; plus two baselines measured in the same run: a re-implementation
of the published Python reference's method (:mod:`pianossm.engine.reference`) and this
project's training forward (``PianoSSM.forward``, chunked Toeplitz scan).  Weights are
random (speed does not depend on them); input is the built-in demo phrase, looped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from importlib import resources

import numpy as np
import torch

from pianossm.config import preset
from pianossm.engine.core import Engine, set_blas_threads
from pianossm.engine.events import events_from_roll
from pianossm.engine.offline import render_frames
from pianossm.engine.reference import reference_forward
from pianossm.engine.synth import Synth
from pianossm.engine.weights import pack_model
from pianossm.features import PianoRoll, frame_hop, load_midi
from pianossm.model import PianoSSM

__all__ = ["FULL", "QUICK", "Durations", "bench_row", "format_table", "matmul_peak",
           "set_clock"]

_CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
_clock = time.perf_counter


def set_clock(name: str) -> None:
    """Time with the wall clock (``wall``, default) or this process's CPU time (``cpu``).

    On a shared machine, CPU time leaves out the time other processes held the core (but
    not their effect on caches); real-time factors proper are wall-clock ones.
    """
    global _clock
    _clock = _CLOCKS[name]




@dataclass(frozen=True)
class Durations:
    """Seconds of audio per measurement (``0`` skips it)."""

    offline: float
    block64: float
    block1: float
    reference: float
    training: float


FULL = Durations(offline=10.0, block64=3.0, block1=0.5, reference=1.0, training=2.0)
QUICK = Durations(offline=0.5, block64=0.2, block1=0.02, reference=0.1, training=0.1)


def matmul_peak(repeats: int = 5) -> float:
    """Best single-call float32 GEMM rate of numpy's BLAS here, in GFLOP/s."""
    rng = np.random.default_rng(0)
    best = 0.0
    for m, k, n in ((1024, 1024, 1024), (512, 512, 2200), (512, 88, 512)):
        a = rng.standard_normal((m, k)).astype(np.float32)
        b = rng.standard_normal((k, n)).astype(np.float32)
        c = np.empty((m, n), dtype=np.float32)
        np.matmul(a, b, out=c)
        for _ in range(repeats):
            t = _clock()
            np.matmul(a, b, out=c)
            best = max(best, 2.0 * m * k * n / (_clock() - t) / 1e9)
    return best


def _frames(rate: int, seconds: float, features: str = "roll") -> tuple[np.ndarray, list]:
    """The demo phrase's input (``(F, C)`` in layout ``features``) at ``rate``, looped to
    ``seconds``, and its events."""
    hop = frame_hop(rate)
    path = resources.files("pianossm") / "assets" / "demo.mid"
    roll = PianoRoll(load_midi(str(path)), rate / hop, features=features)
    base = roll.frames(0, roll.n_frames + 1)
    n = max(1, int(np.ceil(seconds * rate / hop)))
    reps = -(-n // base.shape[0])
    events = []
    base_events = events_from_roll(roll, hop)
    for r in range(reps):
        events += [(t + r * base.shape[0] * hop, m) for t, m in base_events]
    return np.tile(base, (reps, 1))[:n], events


def _time_stream(synth: Synth, events: list, block: int, n_samples: int) -> float:
    """Wall time of streaming ``n_samples`` in blocks of ``block``."""
    i, pos = 0, 0
    start = _clock()
    while pos < n_samples:
        batch = []
        while i < len(events) and events[i][0] < pos + block:
            batch.append((events[i][0] - pos, events[i][1]))
            i += 1
        synth.process(batch, block)
        pos += block
    return _clock() - start


def bench_row(name: str, rate: int, dur: Durations, seed: int = 0,
              features: str = "roll") -> dict[str, float]:
    """All measurements of one preset at one rate (NaN where skipped).

    Parameters
    ----------
    name : str
        Preset.
    rate : int
        Rate, Hz (the model's training rate too).
    dur : Durations
        Seconds of audio per measurement.
    seed : int
        Seed of the random weights.
    features : str
        Input layout of the model (``roll`` or ``roll+onset+pedal``).

    Returns
    -------
    dict of str to float
        The measurements (see :data:`_COLS`).
    """
    torch.manual_seed(seed)
    model = PianoSSM(preset(name, train_sample_rate=rate).with_features(features)).eval()
    weights = pack_model(model, rate, 0, np.float32)
    hop = weights.hop
    longest = max(dur.offline, dur.block64, dur.block1, dur.reference, dur.training)
    frames, events = _frames(rate, longest, features)
    row = {"gflop_per_s_audio": weights.flops_per_sample() * rate / 1e9}
    nan = float("nan")

    def frames_for(seconds: float) -> np.ndarray:
        return frames[:max(1, round(seconds * rate / hop))]

    engine = Engine(weights)
    render_frames(engine, frames_for(0.05))  # compile / warm caches
    engine.reset()
    f = frames_for(dur.offline)
    start = _clock()
    render_frames(engine, f)
    row["rtf_offline"] = (_clock() - start) / (f.shape[0] * hop / rate)
    for block, seconds, key in ((64, dur.block64, "rtf_block64"), (1, dur.block1, "rtf_block1")):
        if seconds <= 0:
            row[key] = nan
            continue
        synth = Synth(weights)
        _time_stream(synth, [], block, 4 * block)  # warm-up
        synth = Synth(weights)
        n = max(block, round(seconds * rate / block) * block)
        row[key] = _time_stream(synth, events, block, n) / (n / rate)
    row["us_per_sample"] = row["rtf_block1"] / rate * 1e6
    feats = torch.from_numpy(frames_for(dur.reference))
    row["rtf_reference"] = nan
    if dur.reference > 0:
        reference_forward(model, feats[:4], hop, 1.0)
        start = _clock()
        reference_forward(model, feats, hop, 1.0)
        row["rtf_reference"] = (_clock() - start) / (feats.shape[0] * hop / rate)
    row["rtf_training"] = nan
    if dur.training > 0:
        feats = torch.from_numpy(frames_for(dur.training))[None]
        with torch.no_grad():
            model(feats[:, :4], hop)
            start = _clock()
            model(feats, hop)
        row["rtf_training"] = (_clock() - start) / (feats.shape[1] * hop / rate)
    return row


_COLS = [("preset", "{:>6}"), ("rate", "{:>6}"), ("GFLOP/s-audio", "{:>13.2f}"),
         ("RTF off", "{:>8.4f}"), ("GFLOP/s", "{:>8.1f}"), ("% peak", "{:>6.0f}"),
         ("RTF b64", "{:>8.4f}"), ("RTF b1", "{:>7.3f}"), ("us/smp", "{:>7.2f}"),
         ("RTF ref", "{:>8.3f}"), ("x ref", "{:>6.1f}"), ("RTF train", "{:>9.3f}")]


def format_table(rows: list[tuple[str, int, dict[str, float]]], peak: float) -> str:
    """Plain-text table, one line per preset and rate."""
    head = " ".join(f"{c:>{len(fmt.format(0) if 'f' in fmt else fmt.format('x'))}}"
                    for c, fmt in _COLS)
    lines = [head]
    for name, rate, r in rows:
        achieved = r["gflop_per_s_audio"] / r["rtf_offline"]
        vals = [name, f"{rate / 1000:g}k", r["gflop_per_s_audio"], r["rtf_offline"], achieved,
                100 * achieved / peak, r["rtf_block64"], r["rtf_block1"], r["us_per_sample"],
                r["rtf_reference"], r["rtf_reference"] / r["rtf_offline"], r["rtf_training"]]
        lines.append(" ".join(fmt.format(v) for (_, fmt), v in zip(_COLS, vals)))
    return "\n".join(lines)


def configure_threads(threads: int) -> None:
    """Use ``threads`` threads in numpy's BLAS and in PyTorch."""
    set_blas_threads(threads)
    torch.set_num_threads(threads)
