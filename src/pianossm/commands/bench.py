"""Engine commands: ``bench`` (the paper's Table 5 for this machine) and ``play``."""

from __future__ import annotations

import argparse
import sys
import time

__all__ = ["register"]

_RATES = (44100, 24000, 16000)


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``bench`` and ``play`` to ``sub``."""
    p = sub.add_parser("bench", help="real-time factors of the synthesis engine (Table 5)")
    p.add_argument("--quick", action="store_true", help="short measurements (about a minute)")
    p.add_argument("--threads", type=int, default=1, help="threads for BLAS and PyTorch")
    p.add_argument("--presets", default="XL,L,S", help="comma-separated presets")
    p.add_argument("--rates", default=",".join(map(str, _RATES)), help="comma-separated Hz")
    p.add_argument("--seconds", type=float, default=None,
                   help="seconds of audio for the offline measurement (default 10, quick 0.5)")
    p.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                   help="wall time (default) or process CPU time, for a shared machine")
    p.add_argument("--no-baselines", action="store_true",
                   help="skip the published-method and training-forward baselines")
    p.add_argument("--features", default="roll", metavar="LAYOUT",
                   help="input layout of the benchmarked models: roll (default, the "
                   "paper's) or roll+onset+pedal")
    p.set_defaults(func=_bench)

    p = sub.add_parser("play", help="stream a MIDI file to the sound card (needs sounddevice)")
    p.add_argument("midi", help="input .mid")
    p.add_argument("--model", default=None, help="pianossm checkpoint (default: built-in model)")
    p.add_argument("--sample-rate", type=int, default=None, help="default: the model's rate")
    p.add_argument("--head", default=None, help="output head by name or index")
    p.add_argument("--block", type=int, default=256, help="block size in samples (1..4096)")
    p.set_defaults(func=_play)


def _bench(args: argparse.Namespace) -> None:
    import dataclasses
    import os
    import platform

    from pianossm.engine import bench
    from pianossm.errors import PianoSSMError

    if args.threads < 1:
        raise PianoSSMError(f"--threads must be >= 1, got {args.threads}")
    try:
        rates = [int(r) for r in args.rates.split(",") if r]
    except ValueError:
        raise PianoSSMError(f"--rates must be comma-separated integers, got {args.rates!r}") \
            from None
    presets = [p.strip().upper() for p in args.presets.split(",") if p.strip()]
    from pianossm.features import feature_channels

    feature_channels(args.features)  # a clear error for an unknown layout
    bench.configure_threads(args.threads)
    bench.set_clock(args.clock)
    dur = bench.QUICK if args.quick else bench.FULL
    if args.seconds is not None:
        dur = dataclasses.replace(dur, offline=args.seconds)
    if args.no_baselines:
        dur = dataclasses.replace(dur, reference=0.0, training=0.0)
    start = time.perf_counter()
    peak = bench.matmul_peak()
    rows = []
    for name in presets:
        for rate in rates:
            rows.append((name, rate, bench.bench_row(name, rate, dur, features=args.features)))
            print(f"  measured {name} at {rate} Hz", file=sys.stderr, flush=True)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"pianossm bench: {args.threads} thread(s), {platform.processor() or platform.machine()}"
          f", {args.clock} clock, float32 GEMM peak {peak:.1f} GFLOP/s, load average {load:.2f}, "
          f"offline {dur.offline:g} s of audio per row, input {args.features}")
    print(bench.format_table(rows, peak))
    print("RTF = compute time / audio time (lower is faster). off: offline engine; b64/b1: "
          "streaming Synth at block 64/1; us/smp: per-sample delay at block 1; GFLOP/s and "
          "% peak: offline work rate vs the GEMM peak; ref: the published Python reference's "
          "method re-implemented (float32, audio-rate complex projections, associative scan);"
          " x ref: its RTF / ours; train: PianoSSM.forward (chunked scan). "
          f"Total {time.perf_counter() - start:.0f} s.")


def _play(args: argparse.Namespace) -> None:
    from pianossm.checkpoint import load_model
    from pianossm.engine.events import events_from_roll
    from pianossm.engine.synth import MAX_BLOCK, Synth
    from pianossm.errors import PianoSSMError
    from pianossm.features import PianoRoll, frame_hop, load_midi
    from pianossm.render import default_model_path

    try:
        import sounddevice as sd
    except (ImportError, OSError) as exc:
        raise PianoSSMError(f"playing needs sounddevice ({exc}); install pianossm[play] or "
                            "use 'pianossm render'") from None
    if not 1 <= args.block <= MAX_BLOCK:
        raise PianoSSMError(f"--block must be 1..{MAX_BLOCK}, got {args.block}")
    midi = load_midi(args.midi)
    model = load_model(args.model or default_model_path())
    rate = args.sample_rate or model.config.train_sample_rate
    hop = frame_hop(rate)
    head = model.resolve_head(args.head)
    roll = PianoRoll(midi, rate / hop, model.config.pedal_threshold, model.config.features)
    events = events_from_roll(roll, hop)
    synth = Synth(model, rate, head)
    total = roll.n_frames * hop + rate  # one second of release
    state = {"pos": 0, "i": 0}

    def callback(outdata, frames, _time, _status) -> None:
        pos, i, batch = state["pos"], state["i"], []
        while i < len(events) and events[i][0] < pos + frames:
            batch.append((events[i][0] - pos, events[i][1]))
            i += 1
        outdata[:, 0] = synth.process(batch, frames)
        state["pos"], state["i"] = pos + frames, i
        if state["pos"] >= total + frames:
            raise sd.CallbackStop

    print(f"playing {args.midi} at {rate} Hz, block {args.block} "
          f"({1000 * args.block / rate:.1f} ms latency)", file=sys.stderr)
    with sd.OutputStream(samplerate=rate, blocksize=args.block, channels=1, dtype="float32",
                         callback=callback) as stream:
        while stream.active:
            time.sleep(0.1)
