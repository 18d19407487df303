"""The one exception type for user errors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class PianoSSMError(Exception):
    """A problem with the user's input: a file, a value or a checkpoint.

    The message names the offending value and, where there is one, the allowed set.
    The CLI prints it as one line on stderr and exits with status 1.
    """


class Terminated(KeyboardInterrupt):
    """A termination signal (SIGTERM, SIGHUP) raised as an exception, so that ``with``
    blocks and ``finally`` clauses discard partial outputs as they do for Ctrl-C.

    Parameters
    ----------
    signum : int
        The signal received; the CLI exits with ``128 + signum``.
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


#: The signal number the handlers last received, until :func:`check_interrupted` raised it.
_pending: int | None = None


def raise_on_termination() -> None:
    """Make SIGTERM and SIGHUP raise :class:`Terminated` (and SIGINT ``KeyboardInterrupt``,
    unless it is ignored) in the main thread, and remember the signal.

    Python runs a signal handler between any two bytecodes, also inside a ``__del__`` or a
    garbage-collector callback, where an exception it raises is printed as "Exception
    ignored" and dropped: the process then went on training after SIGTERM (seen in CI).
    Long loops call :func:`check_interrupted` once per step so such a signal still stops them,
    and that dropped exception is not printed (a traceback on stderr after Ctrl-C while
    numba compiled, seen in CI): :func:`_quiet_unraisable`.
    """
    import signal
    import sys
    import threading

    global _pending
    if threading.current_thread() is not threading.main_thread():
        return
    _pending = None
    if not getattr(sys.unraisablehook, "_pianossm", False):
        sys.unraisablehook = _quiet_unraisable(sys.unraisablehook)

    def handler(signum: int, frame: object) -> None:
        global _pending
        _pending = signum
        raise _exception(signum)

    for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is not None:
            signal.signal(sig, handler)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # not ignored (nohup &)
        signal.signal(signal.SIGINT, handler)


def _quiet_unraisable(previous: Callable[[Any], object]) -> Callable[[Any], object]:
    """A ``sys.unraisablehook`` that drops the exceptions of our signal handlers (their
    signal is remembered and :func:`check_interrupted` raises it again) and passes every
    other unraisable exception to ``previous``."""

    def hook(unraisable: Any) -> None:
        if _pending is not None and isinstance(unraisable.exc_value, KeyboardInterrupt):
            return
        previous(unraisable)

    hook._pianossm = True  # type: ignore[attr-defined]
    return hook


def _exception(signum: int) -> BaseException:
    """``KeyboardInterrupt`` for SIGINT, :class:`Terminated` for the others."""
    import signal

    return KeyboardInterrupt() if signum == signal.SIGINT else Terminated(signum)


def check_interrupted() -> None:
    """Raise the exception of a signal whose handler's exception was dropped.

    Call it at a point where no cleanup is running (the top of a training step): a signal
    received since the last call raises again here, :class:`Terminated` for SIGTERM/SIGHUP,
    ``KeyboardInterrupt`` for SIGINT.

    Raises
    ------
    Terminated, KeyboardInterrupt
        When a handled signal arrived and its exception did not stop the program.
    """
    global _pending
    signum, _pending = _pending, None
    if signum is not None:
        raise _exception(signum)
