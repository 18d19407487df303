"""Check all fifteen published golden files: import each checkpoint, render, compare.

For every ``official_{CFG}_train{SR}_synth{SR2}.wav`` under the shared reference folder:
``pianossm import-checkpoint`` then ``pianossm render golden_phrase.mid --head 2009
--sample-rate SR2 --bits float`` with the default exact numerics and with
``--numerics reference`` (the published float32 scan), and the relative L2 error of each
over the whole signal.

Run: ``python scripts/check_golden.py [--shared ../shared]``; exits 1 if any
reference-numerics error is >= 2e-3.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

from pianossm.cli import main as cli

BAR = 2e-3


def relative_l2(path_ours: Path, path_ref: Path) -> float:
    """``||ours - ref|| / ||ref||`` over the whole signal (lengths must agree)."""
    ours, sr1 = sf.read(path_ours, dtype="float64")
    ref, sr2 = sf.read(path_ref, dtype="float64")
    if sr1 != sr2 or len(ours) != len(ref):
        return float("inf")
    return float(np.linalg.norm(ours - ref) / np.linalg.norm(ref))


def main() -> int:
    """Render and compare every golden file; print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", default=os.environ.get(
        "PIANO_SSM_SHARED", str(Path(__file__).resolve().parents[2] / "shared")))
    args = parser.parse_args()
    ref = Path(args.shared) / "reference" / "official-piano-ssm"
    golden = sorted((ref / "golden").glob("official_*_train*_synth*.wav"))
    if not golden:
        print(f"no golden files under {ref}", file=sys.stderr)
        return 1
    worst = 0.0
    print(f"{'file':<42}{'exact':>10}{'reference':>11}")
    with tempfile.TemporaryDirectory() as tmp:
        for wav in golden:
            cfg, train, synth = re.match(r"official_(\w+)_train(\d+)_synth(\d+)", wav.stem).groups()
            pt = Path(tmp) / f"{cfg}_{train}.pt"
            if not pt.exists():
                cli(["import-checkpoint", str(ref / "checkpoints" /
                     f"PianoSSM_{cfg}_MH_maestro_all_{train}_model.pth"), "-o", str(pt)])
            errs = []
            for numerics in ("exact", "reference"):
                out = Path(tmp) / f"{numerics}_{wav.name}"
                cli(["render", str(ref / "golden" / "golden_phrase.mid"), "-o", str(out),
                     "--model", str(pt), "--head", "2009", "--sample-rate", synth, "--bits",
                     "float", "-q", "--numerics", numerics])
                errs.append(relative_l2(out, wav))
            worst = max(worst, errs[1])
            print(f"{wav.name:<42}{errs[0]:>10.2e}{errs[1]:>11.2e}", flush=True)
    print(f"worst reference-numerics error {worst:.2e} (bar {BAR:.0e}): "
          f"{'PASS' if worst < BAR else 'FAIL'}")
    return 0 if worst < BAR else 1


if __name__ == "__main__":
    sys.exit(main())
