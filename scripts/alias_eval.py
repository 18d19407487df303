"""MSSL of rate-switched synthesis per alias mode, against the model's own-rate output.

For each published checkpoint trained at 44.1 kHz (XL and L by default): render a MIDI
phrase at 44.1 kHz (the reference), then at 24 and 16 kHz with every alias mode, resample
to 44.1 kHz (soxr) and score with the DDSP MSSL at 44.1 kHz, as the paper does.

Run: ``python scripts/alias_eval.py [--midi golden_phrase.mid] [--configs XL L]``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np
import soxr
import torch

from pianossm.alias import ALIAS_MODES
from pianossm.checkpoint import import_official
from pianossm.features import PianoRoll, frame_hop, load_midi
from pianossm.losses import MSSL
from pianossm.render import render_blocks


def synth(model: torch.nn.Module, midi_path: str, rate: int, mode: str) -> np.ndarray:
    """Render ``midi_path`` at ``rate`` with alias ``mode`` (head 2009)."""
    model.set_alias_mode(mode)
    roll = PianoRoll(load_midi(midi_path), rate / frame_hop(rate))
    return np.concatenate(list(render_blocks(model, roll, rate, model.head_index("2009"))))


def main() -> int:
    """Print the table."""
    shared = Path(os.environ.get("PIANO_SSM_SHARED",
                                 Path(__file__).resolve().parents[2] / "shared"))
    ref = shared / "reference" / "official-piano-ssm"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--midi", default=str(ref / "golden" / "golden_phrase.mid"))
    parser.add_argument("--configs", nargs="+", default=["XL", "L"])
    parser.add_argument("--rates", nargs="+", type=int, default=[24000, 16000])
    args = parser.parse_args()
    torch.set_num_threads(1)
    mssl = MSSL(44100)
    print(f"MSSL at 44.1 kHz against the model's own 44.1 kHz output ({Path(args.midi).name})")
    print(f"{'model':<6}{'rate':>7}" + "".join(f"{m:>10}" for m in ALIAS_MODES))
    for cfg in args.configs:
        model = import_official(ref / "checkpoints" / f"PianoSSM_{cfg}_MH_maestro_all_44100_model.pth")
        own = synth(model, args.midi, 44100, "none")
        target = torch.from_numpy(own)[None]
        for rate in args.rates:
            cells = []
            for mode in ALIAS_MODES:
                low = synth(model, args.midi, rate, mode)
                up = soxr.resample(low, rate, 44100, quality="VHQ")[: len(own)]
                up = np.pad(up, (0, len(own) - len(up)))
                cells.append(float(mssl(torch.from_numpy(up)[None], target)["loss"]))
            print(f"{cfg:<6}{rate:>7}" + "".join(f"{c:>10.3f}" for c in cells), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
