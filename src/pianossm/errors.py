"""The one exception type for user errors."""

from __future__ import annotations


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


def raise_on_termination() -> None:
    """Make SIGTERM and SIGHUP raise :class:`Terminated` in the main thread."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return

    def handler(signum: int, frame: object) -> None:
        raise Terminated(signum)

    for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is not None:
            signal.signal(sig, handler)
