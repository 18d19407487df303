"""The ``pianossm`` command line: thin argparse front end over the library.

Each command module exposes ``register(subparsers)``; handlers import heavy modules
lazily so ``pianossm --help`` stays fast.  User errors (:class:`PianoSSMError`) print one
line on stderr and exit 1; an interrupt exits 130 without leaving a partial output.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import pkgutil
import sys
from collections.abc import Sequence

from pianossm.errors import PianoSSMError, Terminated, raise_on_termination

__all__ = ["COMMAND_MODULES", "build_parser", "main"]


def _command_modules() -> list[str]:
    """Every module of :mod:`pianossm.commands` (``core`` first), each with ``register``."""
    import pianossm.commands as pkg

    names = sorted(m.name for m in pkgutil.iter_modules(pkg.__path__))
    names.sort(key=lambda n: n != "core")
    return [f"pianossm.commands.{n}" for n in names]


#: Modules that add subcommands, in ``--help`` order.
COMMAND_MODULES = _command_modules()


def build_parser() -> argparse.ArgumentParser:
    """The full parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="pianossm", description="Neural piano audio from MIDI (Piano-SSM) and "
        "MIDI-to-audio alignment.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def quiet_thread_waits() -> None:
    """Make idle BLAS and OpenMP threads sleep instead of spinning (unless the user set it).

    A training step alternates OpenBLAS products, OpenMP (PyTorch) element-wise work and
    numba kernels; with ``--threads 2`` on two cores each pool's idle threads spun for up
    to ~0.1 s after their work and took the cores from the next pool (S at 16 kHz, two
    threads: 5.0 audio-s/s, with these settings 8.3-9.3; measured in one session).  Read
    by the libraries when they load, so set before numpy and torch are imported.
    """
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    raise_on_termination()  # SIGTERM cleans up like Ctrl-C: no partial output stays
    words = list(sys.argv[1:] if argv is None else argv)
    if words[:1] == ["train"]:
        quiet_thread_waits()
    try:
        args = build_parser().parse_args(argv)  # Ctrl-C while importing: no traceback
        status = args.func(args)  # a handler may return an exit status (batch failures)
    except PianoSSMError as exc:
        print(f"pianossm: error: {exc}", file=sys.stderr)
        return 1
    except Terminated as exc:
        print(f"pianossm: terminated (signal {exc.signum})", file=sys.stderr)
        return 128 + exc.signum
    except KeyboardInterrupt:
        print("pianossm: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `pianossm info | head`: the reader left, nothing to report
        with contextlib.suppress(OSError):
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115  (no flush error at exit)
        return 1
    return status if isinstance(status, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
