"""Training throughput: audio-seconds trained per wall-second, S/L/XL, three scans, one run.

One training step = forward, MSSL, backward, Adam update on random features and audio.
Columns, each measured in the same run on the same device:

* ``compiled``: the default on the CPU, :mod:`pianossm.scan_compiled` (numba recurrence
  with its own adjoint backward, real ``[Re | Im]`` layout, held first-layer input); with
  ``--threads N`` the batch's slices train on N threads, as the trainer does
  (:mod:`pianossm.train.shards`);
* ``chunked``: :func:`pianossm.scan.lti_scan` through autograd (the CUDA path);
* ``published``: the published method's training forward, re-implemented: features
  repeated to the audio rate, complex matrix products at the audio rate and the
  whole-sequence odd/even associative scan (:func:`pianossm.engine.reference.associative_scan`)
  differentiated by autograd;
* ``limit``: the GEMM-peak limit, this machine's best float32 matrix-product rate divided by
  3x the forward's matrix-product work per audio-second (forward + two backward products),
  and ``% limit`` the share of it the compiled scan reaches.

A second table times the recurrences alone (``--scan-table``, on by default): for every
layer of the preset, the states of ``x[t] = lambda x[t-1] + v[t]`` over the batch's crops
and their gradient with respect to the inputs and ``lambda`` (a fixed random cotangent),
the compiled scan (first layer's input held per MIDI frame, as it trains) against the
published odd/even associative scan through autograd (inputs at the audio rate, as it
trains).  The matrix products that both methods share are not in it.

    python scripts/bench_train.py                      # CPU, 1 thread
    python scripts/bench_train.py --threads 2
    python scripts/bench_train.py --device cuda --seconds 4 --batch 8
"""

from __future__ import annotations

import argparse
import math
import time

from pianossm.cli import quiet_thread_waits

quiet_thread_waits()  # before numpy and torch load (see its docstring)

import torch

from pianossm.config import preset
from pianossm.engine.bench import matmul_peak, set_clock
from pianossm.engine.reference import associative_scan
from pianossm.engine.weights import pack_model
from pianossm.features import frame_hop
from pianossm.losses import MSSL
from pianossm.train.shards import batch_slices, keep_freed_memory, sharded_backward
from pianossm.model import PianoSSM


def published_forward(model: PianoSSM, feats: torch.Tensor, hop: int) -> torch.Tensor:
    """``(B, F, C)`` features to ``(B, F * hop)`` audio the published way, differentiable."""
    z = feats.repeat_interleave(hop, dim=1)  # (B, T, C) at the audio rate
    bsz, t_len, _ = z.shape
    for block in model.blocks:
        d = block.ssm.discretise(1.0)
        bu = z.to(torch.complex64) @ d.bd.T + d.bias  # (B, T, H)
        h = bu.shape[-1]
        elems = bu.permute(1, 0, 2).reshape(t_len, bsz * h)  # (T, B*H), time first
        a = torch.exp(d.log_a).repeat(bsz).expand(t_len, bsz * h)
        _, x = associative_scan((a, elems))
        x = x.reshape(t_len, bsz, h).permute(1, 0, 2)  # (B, T, H)
        y = (x @ d.c.T).real + d.c_bias  # (B, T, d_out)
        act = torch.tanh(y)
        if block.skip is not None:
            act = act + block.skip(z)
        z = act / math.sqrt(2.0)
    out = z @ model.heads.weight[0] + model.heads.bias[0]
    return out * model.config.audio_std + model.config.audio_mean


def throughput(name: str, rate: int, batch: int, seconds: float, device: str, repeats: int,
               scan: str, clock) -> float:
    """Audio-seconds per second of ``clock`` of full training steps (after one warm-up)."""
    torch.manual_seed(0)
    model = PianoSSM(preset(name, train_sample_rate=rate)).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    loss_fn = MSSL(rate)
    hop = frame_hop(rate)
    frames = int(seconds * rate / hop)
    feats = torch.rand(batch, frames, model.config.widths[0], device=device)
    target = 0.05 * torch.randn(batch, frames * hop, device=device)
    if scan != "published":
        model.set_scan(scan)

    # The trainer's --threads on the compiled CPU path: the batch's slices on threads.
    slices = (batch_slices(batch, torch.get_num_threads())
              if scan == "compiled" and device == "cpu" else [slice(0, batch)])

    def loss_of(part: slice) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        f = feats[part]
        pred = published_forward(model, f, hop) if scan == "published" else model(f, hop)
        parts = loss_fn(pred, target[part])
        return parts["loss"], parts

    def step() -> None:
        opt.zero_grad()
        if len(slices) > 1:
            sharded_backward(loss_of, slices, batch, list(model.parameters()))
        else:
            loss_of(slices[0])[0].backward()
        opt.step()

    step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = clock()
    for _ in range(repeats):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return repeats * batch * seconds / (clock() - start)


def scan_throughput(name: str, rate: int, batch: int, seconds: float, repeats: int,
                    scan: str, clock) -> float:
    """Audio-seconds per second of ``clock`` of the recurrences alone, forward + backward,
    every layer of preset ``name`` (after one warm-up)."""
    from pianossm.scan_compiled import compiled_scan

    torch.manual_seed(0)
    model = PianoSSM(preset(name, train_sample_rate=rate))
    hop = frame_hop(rate)
    frames = int(seconds * rate / hop)
    t_len = frames * hop
    cases = []
    for i, block in enumerate(model.blocks):
        h = block.ssm.d_state
        lam = torch.exp(block.ssm.discretise(1.0).log_a).detach()
        hold = hop if i == 0 else 1
        rows = frames if i == 0 else t_len
        if scan == "compiled":
            v = torch.randn(batch, rows, 2 * h)
            g = torch.randn(batch, t_len, 2 * h)
        else:  # the published layout: complex, time first, the batch's states side by side
            v = torch.randn(rows, batch * h, dtype=torch.complex64)
            g = torch.randn(t_len, batch * h, dtype=torch.complex64)
        cases.append((lam, v, g, hold))

    def step() -> None:
        for lam, v, g, hold in cases:
            a = lam.clone().requires_grad_(True)
            x_in = v.clone().requires_grad_(True)
            if scan == "compiled":
                x = compiled_scan(a, x_in, hold=hold)
                (x * g).sum().backward()
            else:
                b = x_in.repeat_interleave(hold, dim=0) if hold > 1 else x_in
                _, x = associative_scan((a.repeat(batch).expand(t_len, -1), b))
                (x * g.conj()).real.sum().backward()

    step()
    start = clock()
    for _ in range(repeats):
        step()
    return repeats * batch * seconds / (clock() - start)


def gemm_limit(name: str, rate: int, peak: float) -> float:
    """Audio-seconds per second at ``peak`` GFLOP/s for 3x the forward's matrix products."""
    weights = pack_model(PianoSSM(preset(name, train_sample_rate=rate)), rate)
    return peak / (3 * weights.flops_per_sample() * rate / 1e9)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rate", type=int, default=16000)
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--seconds", type=float, default=2.0, help="crop length, our scans")
    p.add_argument("--published-seconds", type=float, default=None,
                   help="crop length for the published method (default: --seconds)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--presets", default="S,L,XL")
    p.add_argument("--scans", default="compiled,chunked,published")
    p.add_argument("--scan-table", action=argparse.BooleanOptionalAction, default=True,
                   help="also time the recurrences alone (default on)")
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="wall clock, or this process's CPU time (for a busy machine, 1 thread)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.device == "cpu":
        keep_freed_memory()  # as the trainer does
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    set_clock(args.clock)
    scans = args.scans.split(",")
    peak = matmul_peak() if args.device == "cpu" else float("nan")
    print(f"device {args.device}, {args.threads} thread(s), {args.rate} Hz, batch {args.batch}, "
          f"{args.clock} clock, float32 GEMM peak {peak:.1f} GFLOP/s; audio-seconds trained "
          f"per second (forward + MSSL + backward + Adam)")
    head = f"{'model':<6}" + "".join(f"{s:>11}" for s in scans)
    head += f"{'x chunked':>10}{'x publ.':>9}{'limit':>8}{'% limit':>8}"
    print(head)
    for name in args.presets.split(","):
        got = {}
        for scan in scans:
            secs = args.seconds
            if scan == "published" and args.published_seconds is not None:
                secs = args.published_seconds
            got[scan] = throughput(name, args.rate, args.batch, secs, args.device,
                                   args.repeats if scan != "published" else 1, scan, clock)
        limit = gemm_limit(name, args.rate, peak)
        fast = got.get("compiled", float("nan"))
        row = f"{name:<6}" + "".join(f"{got[s]:>11.3f}" for s in scans)
        row += f"{fast / got.get('chunked', float('nan')):>9.1f}x"
        row += f"{fast / got.get('published', float('nan')):>8.1f}x"
        row += f"{limit:>8.1f}{100 * fast / limit:>7.0f}%"
        print(row, flush=True)
    if not args.scan_table or args.device != "cpu":
        return
    print("recurrences alone (every layer, forward + backward, no matrix products): "
          "audio-seconds per second")
    print(f"{'model':<6}{'compiled':>11}{'published':>11}{'x publ.':>9}")
    for name in args.presets.split(","):
        ours = scan_throughput(name, args.rate, args.batch, args.seconds, args.repeats,
                               "compiled", clock)
        secs = args.published_seconds or args.seconds
        theirs = scan_throughput(name, args.rate, args.batch, secs, 1, "published", clock)
        print(f"{name:<6}{ours:>11.3f}{theirs:>11.3f}{ours / theirs:>8.1f}x", flush=True)


if __name__ == "__main__":
    main()
