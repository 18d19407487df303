"""Atomic file output: a file is either absent or complete, never half-written.

Two ways in:

* :func:`atomic_open` (checkpoints, rendered audio) writes to an *unnamed* temporary file
  where the platform has one (Linux ``O_TMPFILE``): nothing has a name until the whole file
  is written and flushed, then it is linked beside the destination and renamed onto it.
  Even ``SIGKILL`` leaves nothing behind.
* :func:`atomic_write` (and :func:`atomic_open` where ``O_TMPFILE`` is missing) writes to
  a named temporary ``.pianossm-PID-XXXXXXXX.ext`` beside the destination, deleted on any
  exception.  A process killed outright cannot clean up, so every later write into that
  folder first removes our temporary files whose process is gone (:func:`remove_stale`).

The rename replaces the destination in one step, so the previous file (say the last
checkpoint) stays intact until the new one is complete.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import time
from collections.abc import Callable, Iterator

from pianossm.errors import PianoSSMError, check_interrupted

__all__ = ["TEMP_PREFIX", "atomic_open", "atomic_write", "remove_stale", "temp_beside",
           "write_error"]

#: Every temporary file of ours starts with this.
TEMP_PREFIX = ".pianossm-"
_OURS = re.compile(r"^\.pianossm-(?:(\d+)-)?[A-Za-z0-9_]{8,}(\.\w+)?$")
#: Temporary files of the old pattern (no PID) older than this are stale, seconds.
_OLD_AGE = 3600.0


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale(folder: str | os.PathLike[str]) -> list[str]:
    """Delete temporary files of ours in ``folder`` whose writing process no longer runs.

    Parameters
    ----------
    folder : str or PathLike
        A folder outputs are written into.

    Returns
    -------
    list of str
        The paths removed.
    """
    removed = []
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    now = time.time()
    for name in names:
        match = _OURS.match(name)
        if match is None:
            continue
        path = os.path.join(folder, name)
        try:
            if match.group(1) is not None:
                pid = int(match.group(1))
                if pid == os.getpid() or _alive(pid):
                    continue
            elif now - os.stat(path).st_mtime < _OLD_AGE:
                continue
            os.unlink(path)
            removed.append(path)
        except OSError:
            continue
    return removed


def _folder_of(path: str | os.PathLike[str]) -> str:
    folder = os.path.dirname(os.path.abspath(os.fspath(path)))
    if not os.path.isdir(folder):
        raise PianoSSMError(f"output folder does not exist: {folder!r}")
    if os.path.isdir(os.fspath(path)):
        raise PianoSSMError(f"output is a folder, not a file: {os.fspath(path)!r}")
    return folder


def _temp_name(path: str | os.PathLike[str], folder: str) -> str:
    suffix = os.path.splitext(os.fspath(path))[1]
    return os.path.join(folder, f"{TEMP_PREFIX}{os.getpid()}-{secrets.token_hex(4)}{suffix}")


def write_error(exc: BaseException, path: str | os.PathLike[str]) -> PianoSSMError:
    """One clear error for a failed write of ``path``: "the disk is full" when it is (by
    ``errno``, or by the free space left, since libsndfile and torch hide the errno).

    Parameters
    ----------
    exc : BaseException
        What the writer raised.
    path : str or PathLike
        The destination.

    Returns
    -------
    PianoSSMError

    Raises
    ------
    Terminated, KeyboardInterrupt
        When a signal arrived during the write: torch's zip writer turns the exception
        its handler raised into "unexpected pos" (seen as exit status 1 after Ctrl-C).
    """
    check_interrupted()
    full = getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT)
    if not full:
        try:
            st = os.statvfs(os.path.dirname(os.path.abspath(os.fspath(path))))
            full = st.f_bavail * st.f_frsize < (1 << 20)
        except OSError:
            pass
    first = (str(getattr(exc, "strerror", None) or exc).strip().splitlines() or [""])[0]
    why = "the disk is full" if full else f"write failed ({first[:160] or type(exc).__name__})"
    return PianoSSMError(f"cannot write {os.fspath(path)!r}: {why}")


_disk_error = write_error


def temp_beside(path: str | os.PathLike[str]) -> str:
    """Create an empty named temporary file in ``path``'s folder, usual permissions.

    Stale temporary files of ours in that folder are removed first.

    Parameters
    ----------
    path : str or PathLike
        The final destination (its folder must exist).

    Returns
    -------
    str
        Path of the temporary file, same suffix as ``path``.
    """
    folder = _folder_of(path)
    remove_stale(folder)
    tmp = _temp_name(path, folder)
    try:
        fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)  # 0666 & ~umask
    except OSError as exc:
        raise _disk_error(exc, path) from None
    os.close(fd)
    return tmp


def _link(fd: int, dst: str) -> None:
    """Give the unnamed file of ``fd`` the name ``dst``: ``linkat`` through ``/proc`` (any
    user), else ``AT_EMPTY_PATH`` (privileged), else copy its bytes to ``dst``."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    at_fdcwd, follow, empty = -100, 0x400, 0x1000
    if libc.linkat(at_fdcwd, f"/proc/self/fd/{fd}".encode(), at_fdcwd,
                   os.fsencode(dst), follow) == 0:
        return
    if libc.linkat(fd, b"", at_fdcwd, os.fsencode(dst), empty) == 0:
        return
    out = os.open(dst, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
    try:
        offset, size = 0, os.fstat(fd).st_size
        while offset < size:
            chunk = os.pread(fd, min(1 << 20, size - offset), offset)
            if not chunk:
                break
            os.write(out, chunk)
            offset += len(chunk)
        os.fsync(out)
    finally:
        os.close(out)


def _sync_folder(folder: str) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _unnamed(folder: str) -> int | None:
    """An ``O_TMPFILE`` descriptor in ``folder``, or ``None`` where unsupported."""
    flag = getattr(os, "O_TMPFILE", None)
    if flag is None or not os.path.isdir("/proc/self/fd"):
        return None
    try:
        return os.open(folder, flag | os.O_RDWR, 0o666)
    except OSError:  # EOPNOTSUPP / EISDIR / EINVAL: this file system has none
        return None


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str]) -> Iterator[int]:
    """Context manager giving a writable, seekable descriptor whose file becomes ``path``.

    On a normal exit the file is flushed to disk and renamed onto ``path``; on an
    exception (or a signal turned into one) it disappears.  The descriptor is closed by the
    manager (do not close it; wrap it with ``closefd=False``).

    Parameters
    ----------
    path : str or PathLike
        Final destination.

    Yields
    ------
    int
        File descriptor open for reading and writing.
    """
    folder = _folder_of(path)
    remove_stale(folder)
    fd = _unnamed(folder)
    tmp = None
    if fd is None:
        tmp = temp_beside(path)
        fd = os.open(tmp, os.O_RDWR)
    try:
        yield fd
        os.fsync(fd)
        if tmp is None:
            tmp = _temp_name(path, folder)
            _link(fd, tmp)
        os.replace(tmp, os.fspath(path))
        tmp = None
        _sync_folder(folder)  # the rename itself survives a power cut
    except OSError as exc:
        raise _disk_error(exc, path) from None
    finally:
        os.close(fd)
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def atomic_write(path: str | os.PathLike[str], write: Callable[[str], None]) -> None:
    """Call ``write(tmp_path)`` then rename onto ``path``, so no half-written file remains.

    Parameters
    ----------
    path : str or PathLike
        Final destination.
    write : callable
        Writes the whole file to the (named) temporary path it is given.
    """
    tmp = temp_beside(path)
    try:
        write(tmp)
        os.replace(tmp, os.fspath(path))
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise _disk_error(exc, path) from None
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
