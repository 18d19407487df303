"""Rerun the engine benchmark and keep its table with the machine's state.

Usage::

    python scripts/bench_engine.py [--out bench.txt] [pianossm bench options...]

Prints (and with ``--out`` also writes) the git revision, the command, the load average
before and after, and the full ``pianossm bench`` table.  On a shared machine add
``--clock cpu`` for a second table that leaves out time spent waiting for the core.
"""

from __future__ import annotations

import os
import subprocess
import sys


def main(argv: list[str]) -> int:
    """Run ``pianossm bench`` with ``argv`` and report it."""
    out_path = None
    if "--out" in argv:
        k = argv.index("--out")
        out_path, argv = argv[k + 1], argv[:k] + argv[k + 2:]
    cmd = [sys.executable, "-m", "pianossm", "bench", *argv]
    rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], check=False,
                         capture_output=True, text=True).stdout.strip()
    before = os.getloadavg()
    res = subprocess.run(cmd, check=False, capture_output=True, text=True)
    after = os.getloadavg()
    text = (f"revision {rev}\ncommand: pianossm bench {' '.join(argv)}\n"
            f"load average before {before[0]:.2f}, after {after[0]:.2f} "
            f"({os.cpu_count()} CPUs)\n{res.stdout}")
    print(text, end="")
    if res.returncode:
        print(res.stderr, file=sys.stderr)
    if out_path:
        with open(out_path, "w") as fh:
            fh.write(text)
    return res.returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
