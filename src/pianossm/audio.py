"""Audio files: reading with clear errors, streamed atomic writing of WAV/FLAC."""

from __future__ import annotations

import contextlib
import os
from types import TracebackType
from typing import Self

import numpy as np

from pianossm.errors import PianoSSMError
from pianossm.fsutil import atomic_open, write_error

__all__ = ["SUBTYPES", "AudioWriter", "read_audio"]

#: ``--bits`` choices to libsndfile subtypes.
SUBTYPES = {"16": "PCM_16", "24": "PCM_24", "float": "FLOAT"}
_FORMATS = {".wav": "WAV", ".flac": "FLAC"}


class AudioWriter:
    """Write mono audio block by block to a temporary file, renamed into place on success.

    Parameters
    ----------
    path : str or PathLike
        ``.wav`` or ``.flac`` destination.
    sample_rate : int
        Rate in Hz.
    bits : str
        ``16``, ``24`` or ``float`` (float only for WAV).
    force : bool
        Overwrite an existing file.
    """

    def __init__(self, path: str | os.PathLike[str], sample_rate: int, bits: str = "16",
                 force: bool = False) -> None:
        import soundfile as sf

        self.path = os.fspath(path)
        ext = os.path.splitext(self.path)[1].lower()
        if ext not in _FORMATS:
            raise PianoSSMError(f"unknown output type {ext or self.path!r}; allowed: .wav, .flac")
        if bits not in SUBTYPES:
            raise PianoSSMError(f"unknown sample format {bits!r}; allowed: {sorted(SUBTYPES)}")
        if ext == ".flac" and bits == "float":
            raise PianoSSMError("FLAC cannot hold float samples; use --bits 16 or 24, or a .wav")
        if os.path.exists(self.path) and not force:
            raise PianoSSMError(f"output exists: {self.path!r} (use --force to overwrite)")
        self._target = atomic_open(self.path)  # unnamed until complete (O_TMPFILE)
        fd = self._target.__enter__()
        try:
            self._file = sf.SoundFile(fd, "w", samplerate=sample_rate, channels=1,
                                      format=_FORMATS[ext], subtype=SUBTYPES[bits],
                                      closefd=False)
        except BaseException as exc:
            self._target.__exit__(type(exc), exc, exc.__traceback__)
            raise
        self._integer = bits != "float"
        self.clipped = 0
        self.frames = 0

    def write(self, block: np.ndarray) -> None:
        """Append ``(n,)`` float samples; integer formats clip to [-1, 1] (counted)."""
        block = np.asarray(block, dtype=np.float32)
        if not np.all(np.isfinite(block)):
            raise PianoSSMError("synthesised audio holds NaN or infinite samples "
                                "(a broken checkpoint?)")
        if self._integer:
            over = np.abs(block) > 1.0
            self.clipped += int(over.sum())
            block = np.clip(block, -1.0, 1.0)
        try:
            self._file.write(block)
        except RuntimeError as exc:  # libsndfile says only "System error" for a full disk
            raise self._write_error(exc) from None
        self.frames += len(block)

    def _write_error(self, exc: BaseException) -> PianoSSMError:
        return write_error(exc, self.path)

    def close(self, keep: bool = True) -> None:
        """Close; move into place when ``keep``, else discard what was written."""
        try:
            self._file.close()
        except BaseException as exc:
            self._target.__exit__(type(exc), exc, exc.__traceback__)
            if isinstance(exc, RuntimeError):
                raise self._write_error(exc) from None
            raise
        if keep and self.frames == 0:  # libsndfile writes an unreadable empty FLAC
            empty = PianoSSMError(f"nothing to write to {self.path!r}: the audio is 0 "
                                  "samples long")
            with contextlib.suppress(PianoSSMError):
                self._target.__exit__(PianoSSMError, empty, None)
            raise empty
        if keep:
            self._target.__exit__(None, None, None)
        else:
            failed = RuntimeError("render did not finish")
            with contextlib.suppress(RuntimeError):
                self._target.__exit__(RuntimeError, failed, None)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close(keep=exc_type is None)


def read_audio(path: str | os.PathLike[str], sample_rate: int | None = None,
               ) -> tuple[np.ndarray, int]:
    """Read an audio file as mono float32, optionally resampled with soxr.

    Parameters
    ----------
    path : str or PathLike
        Any format libsndfile reads.
    sample_rate : int, optional
        Resample to this rate (soxr, high quality).

    Returns
    -------
    audio : np.ndarray
        ``(n,)`` float32.
    sample_rate : int
        Its rate.
    """
    import soundfile as sf

    name = os.fspath(path)
    if not os.path.isfile(name):
        raise PianoSSMError(f"audio file not found: {name!r}")
    try:
        audio, sr = sf.read(name, dtype="float32", always_2d=True)
    except Exception as exc:  # noqa: BLE001  (libsndfile errors come as several types)
        raise PianoSSMError(f"not a readable audio file: {name!r} ({exc})") from None
    audio = audio.mean(axis=1)
    if audio.size == 0:
        raise PianoSSMError(f"audio file is empty: {name!r}")
    if not np.all(np.isfinite(audio)):
        raise PianoSSMError(f"audio file holds NaN or infinite samples: {name!r}")
    if sample_rate is not None and sample_rate != sr:
        import soxr

        audio = soxr.resample(audio, sr, sample_rate, quality="HQ").astype(np.float32)
        sr = sample_rate
    return audio, int(sr)
