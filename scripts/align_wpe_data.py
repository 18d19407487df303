"""A copy of an alignment data folder whose CQTs are of the WPE-filtered audio.

The CRNN reads the CQT of the recording's WPE prediction error (README, "WPE filtering");
a network fine-tuned on that input is trained on such a copy.  Each item's ``.npz`` is
written again with ``cqt`` = ``audio_to_cqt(wpe_filter(audio))`` (float16, as
``align-data`` stores it), ``cqt_plain`` = the item's own CQT (of the recording; for a
network that reads both, ``align-train --plain-cqt``) and every other field as it was; the
``.flac`` and ``.mid`` are linked, not copied.  Items already converted are skipped (those
written before ``cqt_plain`` existed only get it), so an interrupted run resumes.
``--taps``/``--max-hz`` set the filter (default: :func:`wpe_filter`'s; the folders of
stages 12-30 in ``scripts/train_align.sh`` were made with 10 taps over the whole band,
its defaults until the change README "Longer WPE filters").

Usage::

    OMP_NUM_THREADS=1 python scripts/align_wpe_data.py runs/align/train_rev runs/align/train_rev_wpe \
        [--taps N] [--max-hz HZ]
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
import soundfile as sf
from tqdm import tqdm

from pianossm.align.data import list_items
from pianossm.align.features import SAMPLE_RATE, audio_to_cqt
from pianossm.align.wpe import MAX_HZ, TAPS, wpe_filter
from pianossm.checkpoint import atomic_write


def convert(stem: str, out_dir: str, taps: int = TAPS, max_hz: float = MAX_HZ) -> bool:
    """Write ``out_dir/<name>.npz`` (and links to the audio and MIDI), or add ``cqt_plain``
    to one written without it; False if it is complete."""
    name = os.path.basename(stem)
    dst = os.path.join(out_dir, name + ".npz")
    with np.load(stem + ".npz") as z:
        fields = {k: z[k] for k in z.files}
    if os.path.exists(dst):
        with np.load(dst) as z:
            if "cqt_plain" in z.files:
                return False
            fields = {**{k: z[k] for k in z.files}, "cqt_plain": fields["cqt"]}
    else:
        audio, sr = sf.read(stem + ".flac", dtype="float32")
        if sr != SAMPLE_RATE:
            raise SystemExit(f"{stem}.flac: {sr} Hz, expected {SAMPLE_RATE}")
        fields["cqt_plain"] = fields["cqt"]
        fields["cqt"] = audio_to_cqt(wpe_filter(audio, taps=taps, max_hz=max_hz),
                                     SAMPLE_RATE).astype(np.float16)
    for ext in (".flac", ".mid"):
        link = os.path.join(out_dir, name + ext)
        if os.path.exists(stem + ext) and not os.path.lexists(link):
            os.symlink(os.path.abspath(stem + ext), link)

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:  # a file object: savez would append ".npz" to a name
            np.savez(f, **fields)

    atomic_write(dst, write)
    return True


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("--taps", type=int, default=TAPS, help=f"WPE taps (default {TAPS})")
    p.add_argument("--max-hz", type=float, default=MAX_HZ,
                   help=f"highest frequency filtered (default {MAX_HZ:g}; 8000: all)")
    args = p.parse_args()
    os.makedirs(args.dst, exist_ok=True)
    stems = list_items(args.src)
    done = sum(convert(s, args.dst, args.taps, args.max_hz)
               for s in tqdm(stems, desc=os.path.basename(args.src)))
    print(f"{args.dst}: {done} items written, {len(stems) - done} already there", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
