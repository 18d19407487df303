"""MSSL of models against FluidR3 renders, as rendered and after matching RMS, one table.

A third column, "key bands", is :class:`pianossm.losses.PitchLoss` over the same windows
(as rendered): the MSSL barely tells a wrong note from the right one, this does.  The row
"FluidR3, a semitone up" (every note transposed, rendered by FluidSynth) calibrates both:
a real piano playing wrong notes.

Material: the published golden phrase (if ``../shared`` is present) and the built-in test
pieces of a dataset folder; every file cut into non-overlapping 10 s windows (the last,
shorter one kept when at least 1 s long), MSSL per window, mean per material.  "RMS-matched"
scales the model's whole file to the reference's RMS before scoring (it separates timbre
from level).  Silence is scored on the same windows.

    python scripts/eval_default.py --data runs/builtin16k --model default \
        --model training/default/best.pt
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

import pianossm
from pianossm.losses import MSSL, PitchLoss


def windows(n: int, rate: int, seconds: float = 10.0) -> list[slice]:
    """Non-overlapping windows of ``seconds`` over ``n`` samples (a last one >= 1 s)."""
    step = int(seconds * rate)
    return [slice(s, min(n, s + step)) for s in range(0, n, step) if min(n, s + step) - s >= rate]


def score(pred: np.ndarray, ref: np.ndarray, rate: int, loss: torch.nn.Module | None = None,
          ) -> float:
    """Mean loss (default MSSL) over the windows of the common length."""
    n = min(len(pred), len(ref))
    loss = loss if loss is not None else MSSL(rate)
    vals = [loss(torch.from_numpy(pred[w].copy()), torch.from_numpy(ref[w].copy()))["loss"].item()
            for w in windows(n, rate)]
    return float(np.mean(vals))


def material(data: str, shared: Path) -> dict[str, list[tuple[str, np.ndarray, int]]]:
    """``{name: [(midi path, reference audio, rate)]}``."""
    from pianossm.fluid import render_fluidsynth

    out: dict[str, list] = {}
    golden = shared / "reference" / "official-piano-ssm" / "golden" / "golden_phrase.mid"
    if golden.is_file():
        out["golden phrase"] = [(str(golden), render_fluidsynth(golden, 16000, "fluidr3"), 16000)]
    with open(os.path.join(data, "manifest.json")) as f:
        items = [i for i in json.load(f)["items"] if i["split"] == "test"]
    pieces = []
    for item in items:
        ref, rate = sf.read(os.path.join(data, item["audio"]), dtype="float32")
        pieces.append((os.path.join(data, item["midi"]), ref, rate))
    out[f"built-in test pieces ({len(items)})"] = pieces
    return out


def semitone_up(midi: str, rate: int) -> np.ndarray:
    """FluidR3's rendering of ``midi`` with every note a semitone higher."""
    import tempfile

    from pianossm.features import load_midi
    from pianossm.fluid import render_fluidsynth

    pm = load_midi(midi)
    for inst in pm.instruments:
        for note in inst.notes:
            note.pitch = min(note.pitch + 1, 108)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "up.mid")
        pm.write(path)
        return render_fluidsynth(path, rate, "fluidr3")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", default="runs/builtin16k")
    p.add_argument("--model", action="append", default=[])
    p.add_argument("--shared", default=os.environ.get("PIANO_SSM_SHARED", "../shared"))
    args = p.parse_args()
    torch.set_num_threads(1)
    models = args.model or ["default"]
    mats = material(args.data, Path(args.shared))
    print(f"{'material':<28}{'model':<34}{'as rendered':>12}{'RMS-matched':>12}"
          f"{'key bands':>10}{'silence':>9}")
    for name, files in mats.items():
        silence = np.mean([score(np.zeros_like(ref), ref, rate) for _, ref, rate in files])
        for m in [*models, "FluidR3, a semitone up"]:
            model = None if m.startswith("FluidR3") else pianossm.load_model(m)
            raw, matched, keys = [], [], []
            for midi, ref, rate in files:
                pred = (semitone_up(midi, rate) if model is None
                        else pianossm.synthesize(midi, model=model, sample_rate=rate)[0])
                raw.append(score(pred, ref, rate))
                keys.append(score(pred, ref, rate, PitchLoss(rate)))
                n = min(len(pred), len(ref))
                gain = np.sqrt(np.mean(ref[:n] ** 2) / max(np.mean(pred[:n] ** 2), 1e-20))
                matched.append(score((pred * gain).astype(np.float32), ref, rate))
            print(f"{name:<28}{m[-33:]:<34}{np.mean(raw):>12.2f}{np.mean(matched):>12.2f}"
                  f"{np.mean(keys):>10.3f}{silence:>9.2f}", flush=True)


if __name__ == "__main__":
    main()
