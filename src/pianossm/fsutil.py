"""Atomic file output: write beside the destination, then rename into place."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable

from pianossm.errors import PianoSSMError

__all__ = ["atomic_write", "temp_beside"]


def temp_beside(path: str | os.PathLike[str]) -> str:
    """Create an empty temporary file in ``path``'s folder, with the usual permissions.

    ``mkstemp`` makes private (0600) files; the file gets ``0666 & ~umask`` instead so the
    renamed output has the permissions of any other file the user writes.

    Parameters
    ----------
    path : str or PathLike
        The final destination (its folder must exist).

    Returns
    -------
    str
        Path of the temporary file, same suffix as ``path``.
    """
    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    if not os.path.isdir(folder):
        raise PianoSSMError(f"output folder does not exist: {folder!r}")
    fd, tmp = tempfile.mkstemp(prefix=".pianossm-", suffix=os.path.splitext(path)[1], dir=folder)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    return tmp


def atomic_write(path: str | os.PathLike[str], write: Callable[[str], None]) -> None:
    """Call ``write(tmp_path)`` then rename onto ``path``, so no half-written file remains.

    Parameters
    ----------
    path : str or PathLike
        Final destination.
    write : callable
        Writes the whole file to the temporary path it is given.
    """
    tmp = temp_beside(path)
    try:
        write(tmp)
        os.replace(tmp, os.fspath(path))
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
