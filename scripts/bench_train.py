"""Training throughput: audio-seconds trained per wall-second, S/L/XL, chunked vs sequential scan.

One training step = forward, MSSL, backward, Adam update on random features and audio.
The baseline swaps the chunked parallel scan (``pianossm.scan.lti_scan``) for a plain
``for t`` loop (``x = a * x + v[t]``), the straightforward implementation, in the same
run and on the same device, so the ratio is the speed-up of the scan.

    python scripts/bench_train.py                      # CPU, 1 thread
    python scripts/bench_train.py --device cuda --seconds 4 --batch 8
"""

from __future__ import annotations

import argparse
import time

import torch

import pianossm.ssm as ssm_module
from pianossm.config import preset
from pianossm.features import frame_hop
from pianossm.losses import MSSL
from pianossm.model import PianoSSM
from pianossm.scan import lti_scan, sequential_scan


def _sequential(log_a: torch.Tensor, v: torch.Tensor, x0: torch.Tensor | None = None,
                chunk: int = 0) -> torch.Tensor:
    """:func:`pianossm.scan.sequential_scan` with ``lti_scan``'s signature (``chunk`` unused)."""
    return sequential_scan(log_a, v, x0)


def throughput(name: str, rate: int, batch: int, seconds: float, device: str,
               repeats: int) -> float:
    """Audio-seconds per wall-second of full training steps (after one warm-up step)."""
    torch.manual_seed(0)
    model = PianoSSM(preset(name, train_sample_rate=rate)).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    loss_fn = MSSL(rate)
    hop = frame_hop(rate)
    frames = int(seconds * rate / hop)
    feats = torch.rand(batch, frames, model.config.widths[0], device=device)
    target = 0.05 * torch.randn(batch, frames * hop, device=device)

    def step() -> None:
        loss = loss_fn(model(feats, hop), target)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()

    step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return repeats * batch * seconds / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rate", type=int, default=16000)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--seconds", type=float, default=1.0, help="crop length, chunked scan")
    p.add_argument("--seq-seconds", type=float, default=0.25,
                   help="crop length for the (slow) sequential baseline")
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--presets", default="S,L,XL")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(f"device {args.device}, {args.threads} thread(s), {args.rate} Hz, batch {args.batch}; "
          f"audio-seconds trained per wall-second (forward + MSSL + backward + Adam)")
    print(f"{'model':<6}{'chunked scan':>14}{'sequential':>12}{'speed-up':>10}")
    for name in args.presets.split(","):
        fast = throughput(name, args.rate, args.batch, args.seconds, args.device, args.repeats)
        # Swap the scan the layer calls (a benchmark-only patch, restored below).
        ssm_module.lti_scan = _sequential
        try:
            slow = throughput(name, args.rate, args.batch, args.seq_seconds, args.device, 1)
        finally:
            ssm_module.lti_scan = lti_scan
        print(f"{name:<6}{fast:>14.3f}{slow:>12.4f}{fast / slow:>9.1f}x", flush=True)


if __name__ == "__main__":
    main()
