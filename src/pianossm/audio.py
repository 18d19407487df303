"""Audio files: reading with clear errors, streamed atomic writing of WAV/FLAC."""

from __future__ import annotations

import os
from types import TracebackType
from typing import Self

import numpy as np

from pianossm.errors import PianoSSMError
from pianossm.fsutil import temp_beside

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
        self._tmp = temp_beside(self.path)
        self._file = sf.SoundFile(self._tmp, "w", samplerate=sample_rate, channels=1,
                                  format=_FORMATS[ext], subtype=SUBTYPES[bits])
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
        self._file.write(block)
        self.frames += len(block)

    def close(self, keep: bool = True) -> None:
        """Close; rename into place when ``keep``, else delete the temporary file."""
        self._file.close()
        if keep:
            os.replace(self._tmp, self.path)
        elif os.path.exists(self._tmp):
            os.unlink(self._tmp)

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
