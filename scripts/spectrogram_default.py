"""Spectrogram picture: a FluidR3 recording of a built-in test piece against a model's rendering.

    python scripts/spectrogram_default.py --data runs/builtin16k --piece piece_test_00 \
        --model default --seconds 10 -o docs/spectrogram_default.png

The recording is the dataset's own FluidSynth rendering (the audio the model imitates); the
model renders the same MIDI at the dataset's rate with ``pianossm.synthesize``.
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np
import soundfile as sf

import pianossm
from pianossm.fsutil import atomic_write


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="runs/builtin16k", help="built-in dataset folder")
    p.add_argument("--piece", default="piece_test_00")
    p.add_argument("--model", default="default")
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("-o", "--output", default="docs/spectrogram_default.png")
    args = p.parse_args()
    with open(os.path.join(args.data, "manifest.json")) as f:
        items = {i["name"]: i for i in json.load(f)["items"]}
    item = items[args.piece]
    ref, rate = sf.read(os.path.join(args.data, item["audio"]), dtype="float32")
    pred, _ = pianossm.synthesize(os.path.join(args.data, item["midi"]), model=args.model,
                                  sample_rate=rate, max_seconds=args.seconds)
    n = min(len(ref), len(pred), int(args.seconds * rate))
    from pianossm.train.logs import spectrogram_figure

    fig = spectrogram_figure(np.asarray(pred[:n]), np.asarray(ref[:n]), rate)
    fig.axes[0].set_title(f"Piano-SSM ({args.model}), {args.piece}")
    fig.axes[1].set_title(f"FluidR3 recording, {args.piece}")
    fig.tight_layout()
    atomic_write(args.output, lambda tmp: fig.savefig(tmp, dpi=90, format="png"))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
