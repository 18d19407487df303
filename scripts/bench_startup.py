"""Start-up wall times of ``pianossm`` from a fresh clone (the README's "Start-up" table).

The committed tree (``git archive HEAD``, or ``--rev``) is unpacked into a temporary folder, with no
``__pycache__``, an empty numba cache (``NUMBA_CACHE_DIR``) and an empty packed-weights
cache (``PIANOSSM_CACHE_DIR``), and run with this interpreter (``PYTHONPATH`` = the
clone's ``src``).  Printed: the 1-minute load average before and after, and the wall
(user+system CPU) seconds of ``--help``, a bad-MIDI error, the first ``render -o
demo.wav`` (numba compiles, torch packs the model once), warm renders (nothing compiled,
no torch), and ``import torch`` alone.

Usage: ``python scripts/bench_startup.py [--warm 3] [--rev HEAD]``
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def timed(cmd: list[str], env: dict[str, str], cwd: str, ok: bool = True) -> tuple[float, float]:
    """Wall and CPU (user + system, children) seconds of one command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=600)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if (proc.returncode == 0) != ok:
        sys.exit(f"unexpected exit {proc.returncode} of {cmd}: {proc.stderr[-500:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warm", type=int, default=3, help="warm renders")
    parser.add_argument("--rev", default="HEAD", help="git revision to clone (default HEAD)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pianossm-startup-") as tmp:
        clone = Path(tmp) / "clone"
        clone.mkdir()
        archive = subprocess.run(["git", "archive", args.rev], cwd=ROOT, check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(clone)], input=archive, check=True)
        env = dict(os.environ, PYTHONPATH=str(clone / "src"),
                   NUMBA_CACHE_DIR=str(Path(tmp) / "numba"),
                   PIANOSSM_CACHE_DIR=str(Path(tmp) / "packed"))
        run = str(Path(tmp))
        where = subprocess.run([sys.executable, "-c", "import pianossm; print(pianossm.__file__)"],
                               env=env, cwd=run, capture_output=True, text=True, check=True)
        assert where.stdout.startswith(str(clone)), where.stdout
        (Path(tmp) / "bad.mid").write_bytes(b"MThd garbage")
        cli = [sys.executable, "-m", "pianossm"]
        print(f"load average (1 min) before: {os.getloadavg()[0]:.2f}")
        rows = [("--help", timed(cli + ["--help"], env, run))]
        rows.append(("bad MIDI error", timed(cli + ["render", "bad.mid", "-o", "x.wav"], env,
                                             run, ok=False)))
        render = cli + ["render", "-o", "demo.wav", "-q", "--force"]
        rows.append(("first render", timed(render, env, run)))
        rows += [(f"warm render {i + 1}", timed(render, env, run)) for i in range(args.warm)]
        rows.append(("import torch alone", timed([sys.executable, "-c", "import torch"], env,
                                                 run)))
        for name, (wall, cpu) in rows:
            print(f"{name:<20} {wall:6.2f} s wall ({cpu:.2f} s CPU)")
        print(f"load average (1 min) after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
