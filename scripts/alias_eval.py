"""MSSL of rate-switched synthesis per alias mode, against the model's own-rate output.

For each published checkpoint trained at 44.1 kHz (XL and L by default): render MIDI
files at 44.1 kHz (the reference), then at 24 and 16 kHz with every alias mode, resample
to 44.1 kHz (soxr) and score with the DDSP MSSL at 44.1 kHz, as the paper does.  The
cell is the mean over the files (each scored whole, at most ``--seconds`` long).

Run: ``python scripts/alias_eval.py [--midi A.mid B.mid ...] [--configs XL L]``
(default: the golden phrase and the test pieces of the built-in dataset when
``runs/builtin44k`` or ``--data`` has them).
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
from pathlib import Path

import numpy as np
import soxr
import torch

from pianossm.alias import ALIAS_MODES
from pianossm.checkpoint import import_official, load_model
from pianossm.features import load_midi
from pianossm.losses import MSSL
from pianossm.render import render_midi


def synth(model: torch.nn.Module, midi_path: str, rate: int, mode: str,
          seconds: float = 1e9, grid: str = "synth") -> np.ndarray:
    """Render ``midi_path`` (at most ``seconds``) at ``rate`` with alias ``mode`` (head 2009 if the model has it)."""
    model.set_alias_mode(mode)
    return render_midi(model, load_midi(midi_path), rate, model.resolve_head(None), grid, seconds)


def main() -> int:
    """Print the table."""
    shared = Path(os.environ.get("PIANO_SSM_SHARED",
                                 Path(__file__).resolve().parents[2] / "shared"))
    ref = shared / "reference" / "official-piano-ssm"
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--midi", nargs="+", default=None, help="MIDI files")
    parser.add_argument("--data", default="runs/builtin44k", help="built-in dataset folder")
    parser.add_argument("--seconds", type=float, default=20.0, help="seconds per file")
    parser.add_argument("--frame-grid", nargs="+", default=["synth", "train"],
                        choices=["synth", "train"], help="input frame grid(s) to compare")
    parser.add_argument("--configs", nargs="*", default=["XL", "L"],
                        help="published 44.1 kHz checkpoints to score")
    parser.add_argument("--model", nargs="*", default=[], help="pianossm checkpoints to score")
    parser.add_argument("--rates", nargs="+", type=int, default=[24000, 16000])
    args = parser.parse_args()
    torch.set_num_threads(1)
    mssl = MSSL(44100)
    midis = args.midi or [str(ref / "golden" / "golden_phrase.mid")] + sorted(
        str(p) for p in Path(args.data, "midi").glob("*.mid")
        if p.stem in _test_names(Path(args.data)))
    print(f"MSSL at 44.1 kHz against the model's own 44.1 kHz output, mean over {len(midis)} "
          f"file(s) of at most {args.seconds:g} s: {', '.join(Path(m).stem for m in midis)}")
    print(f"{'model':<12}{'rate':>7}{'grid':>7}" + "".join(f"{m:>11}" for m in ALIAS_MODES))
    named = [(c, lambda c=c: import_official(
        ref / "checkpoints" / f"PianoSSM_{c}_MH_maestro_all_44100_model.pth")) for c in args.configs]
    named += [(Path(m).parent.name or Path(m).stem, lambda m=m: load_model(m)) for m in args.model]
    for cfg, load in named:
        model = load()
        if model.config.train_sample_rate != 44100:
            raise SystemExit(f"{cfg}: trained at {model.config.train_sample_rate} Hz, not 44100")
        owns = [synth(model, m, 44100, "none", args.seconds) for m in midis]
        for rate, grid in itertools.product(args.rates, args.frame_grid):
            cells = []
            for mode in ALIAS_MODES:
                scores = []
                for m, own in zip(midis, owns):
                    low = synth(model, m, rate, mode, args.seconds, grid)
                    up = soxr.resample(low, rate, 44100, quality="VHQ")[: len(own)]
                    up = np.pad(up, (0, len(own) - len(up)))
                    scores.append(float(mssl(torch.from_numpy(up)[None],
                                             torch.from_numpy(own)[None])["loss"]))
                cells.append(float(np.mean(scores)))
            print(f"{cfg:<12}{rate:>7}{grid:>7}" + "".join(f"{c:>11.3f}" for c in cells), flush=True)
    print("grid: input frames on the synthesis rate's grid (synth, the paper's) or on the "
          "training rate's (train); oversample runs at 1.5x the rate, static for what still "
          "aliases, soxr VHQ down")
    return 0


def _test_names(folder: Path) -> set[str]:
    """Names of the test items of a built-in dataset folder (empty when it is missing)."""
    import json

    manifest = folder / "manifest.json"
    if not manifest.is_file():
        return set()
    items = json.loads(manifest.read_text())["items"]
    return {it["name"] for it in items if it["split"] == "test"}


if __name__ == "__main__":
    sys.exit(main())
