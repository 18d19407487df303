"""Write the MIDI files of one split of the built-in large dataset, without rendering it.

`pianossm dataset build --size large` renders about 9 hours of audio (about 15 minutes on
this project's CPUs) to write, among its files, the MIDI performances of each split; the
alignment's corpus test sets only need the MIDI (README, "A second unseen piano, and music
the generator does not write": `runs/align/corpus_test_midi`).  This writes the same MIDI
files (the dataset's own recipe and seed) in about 30 s.

Usage: python scripts/corpus_midi.py OUT [--split test] [--seed 0]
"""

from __future__ import annotations

import argparse
import os
import sys

from pianossm.errors import PianoSSMError


def write_split(out: str, split: str = "test", seed: int = 0) -> list[str]:
    """Write the ``split`` MIDI files of the large dataset of ``seed`` into ``out``.

    Parameters
    ----------
    out : str
        Folder (made if missing); each file is ``NAME.mid`` as in the dataset's ``midi/``.
    split : str
        ``train``, ``validation`` or ``test``.
    seed : int
        The dataset's seed (`pianossm dataset build --seed`).

    Returns
    -------
    list of str
        The item names written, in the dataset's order.
    """
    from pianossm.checkpoint import atomic_write
    from pianossm.data.large import build_large_programs, make_midi

    if split not in ("train", "validation", "test"):
        raise PianoSSMError(f"split must be train, validation or test, got {split!r}")
    programs, _ = build_large_programs(seed, None, 1, False)
    os.makedirs(out, exist_ok=True)
    names = []
    for name, part, program in programs:
        if part != split:
            continue
        midi = program if hasattr(program, "write") else make_midi(program)
        atomic_write(os.path.join(out, f"{name}.mid"), lambda tmp, m=midi: m.write(tmp))
        names.append(name)
    return names


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out")
    parser.add_argument("--split", default="test")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    try:
        names = write_split(args.out, args.split, args.seed)
    except PianoSSMError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {len(names)} MIDI files to {args.out}: {', '.join(names)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
