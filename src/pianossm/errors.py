"""The one exception type for user errors."""

from __future__ import annotations


class PianoSSMError(Exception):
    """A problem with the user's input: a file, a value or a checkpoint.

    The message names the offending value and, where there is one, the allowed set.
    The CLI prints it as one line on stderr and exits with status 1.
    """
