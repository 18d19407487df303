"""Packed models: a checkpoint's engine weights cached on disk, so rendering needs no torch.

Rendering runs on the numpy/numba engine (:mod:`pianossm.engine`); only *packing* a model
(discretising it at one rate and folding it, :func:`pianossm.engine.pack_model`) needs
torch and the checkpoint.  :class:`PackedModel` is a handle on a pianossm checkpoint that
packs on first use and keeps the result under :func:`cache_dir` as ``.npz`` files named
by a SHA-256 of everything the arrays depend on: the checkpoint's bytes, the source of
the packing code (:data:`PACKING_CODE`), the installed torch's version file, and the rate,
head, alias mode and dtype.  A retrained checkpoint, an edited discretisation or another
torch gives another name, so a stale entry is never read; entries are written atomically
and checked when read (a damaged one is packed again).  The arrays are those
:func:`~pianossm.engine.pack_model` returns, so the audio is bit for bit the torch path's.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import numpy as np

from pianossm.config import PianoSSMConfig, head_index, resolve_head
from pianossm.engine.weights import EngineWeights
from pianossm.errors import PianoSSMError

__all__ = ["CACHE_ENV", "PACKING_CODE", "PackedModel", "cache_dir", "head_index",
           "resolve_head"]

#: Environment variable naming the cache folder; set it empty to keep no cache on disk.
CACHE_ENV = "PIANOSSM_CACHE_DIR"
#: Modules (relative to the package) whose source the packed arrays depend on.
PACKING_CODE = ("packed.py", "engine/weights.py", "model.py", "ssm.py", "zoh.py",
                "alias.py", "config.py", "checkpoint.py", "features.py")
#: Bumped when the layout of a cache entry changes.
_FORMAT = "pianossm-packed-2"  # 2: the weights carry their input layout
_PACKAGE = os.path.dirname(os.path.abspath(__file__))
_code_digest: list[str | None] = []


def cache_dir() -> str | None:
    """Folder of packed weights: ``$PIANOSSM_CACHE_DIR``, else ``$XDG_CACHE_HOME/pianossm``
    or ``~/.cache/pianossm``; ``None`` when ``$PIANOSSM_CACHE_DIR`` is set empty."""
    env = os.environ.get(CACHE_ENV)
    if env is not None:
        return env or None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "pianossm")


def _sha(*parts: bytes | str) -> str:
    h = hashlib.sha256()
    for part in parts:
        data = part.encode() if isinstance(part, str) else part
        h.update(len(data).to_bytes(8, "little") + data)
    return h.hexdigest()


def code_digest() -> str | None:
    """SHA-256 of the packing code and the installed torch (computed once per process);
    ``None`` where the package's source cannot be read (then nothing is cached on disk)."""
    if not _code_digest:
        import importlib.util

        parts: list[bytes | str] = [_FORMAT]
        try:
            for rel in PACKING_CODE:
                with open(os.path.join(_PACKAGE, rel), "rb") as f:
                    parts.append(f.read())
        except OSError:  # a source-less or zipped install: no way to tell code versions apart
            _code_digest.append(None)
            return None
        spec = importlib.util.find_spec("torch")
        version = os.path.join(os.path.dirname(spec.origin), "version.py") if (
            spec is not None and spec.origin) else ""
        if os.path.isfile(version):
            with open(version, "rb") as f:
                parts.append(f.read())
        else:
            parts.append("no torch")
        _code_digest.append(_sha(*parts))
    return _code_digest[0]


class PackedModel:
    """A pianossm checkpoint rendered through cached packed weights (torch only on a miss).

    It stands in for a :class:`~pianossm.model.PianoSSM` wherever the library renders
    (``config``, ``head_index``, ``resolve_head``, ``set_alias_mode``, ``ts_for``).

    Parameters
    ----------
    path : str or PathLike
        A pianossm checkpoint (``.pt``).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        name = os.fspath(path)
        if not os.path.isfile(name):
            raise PianoSSMError(f"checkpoint not found: {name!r}")
        code = code_digest()
        with open(name, "rb") as f:
            self.digest = _sha(code or "", hashlib.file_digest(f, "sha256").hexdigest())
        self.path = name
        self._disk = code is not None
        self.alias_mode = "none"
        self._config: PianoSSMConfig | None = None
        self._torch: Any = None
        self._packed: dict[str, EngineWeights] = {}

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (for worker processes) without the torch model: they render packed."""
        return self.__dict__ | {"_torch": None}

    # -- the parts of PianoSSM that rendering reads -------------------------------------
    @property
    def config(self) -> PianoSSMConfig:
        """The checkpoint's config (from the cache, else from the checkpoint)."""
        if self._config is None:
            path = self._entry(f"config-{self.digest}.json")
            self._config = _read_config(path, self.digest) if path is not None else None
            if self._config is None:
                self._config = self.torch_model().config
                if path is not None:
                    text = json.dumps(self._config.to_dict() | {"digest": self.digest})
                    self._store(path, lambda tmp: _write_text(tmp, text))
        return self._config

    def head_index(self, head: str | int) -> int:
        """See :func:`head_index`."""
        return head_index(self.config, head)

    def resolve_head(self, arg: str | int | None) -> int:
        """See :func:`resolve_head`."""
        return resolve_head(self.config, arg)

    def set_alias_mode(self, mode: str) -> None:
        """Alias mode of the next :meth:`pack` (see :mod:`pianossm.alias`)."""
        from pianossm.options import ALIAS_MODE_NAMES

        if mode not in ALIAS_MODE_NAMES:
            raise PianoSSMError(f"unknown alias mode {mode!r}; allowed: {list(ALIAS_MODE_NAMES)}")
        self.alias_mode = mode

    def ts_for(self, sample_rate: int) -> float:
        """``Ts = f_train / f_synth``."""
        return self.config.train_sample_rate / float(sample_rate)

    # -- packing ---------------------------------------------------------------------------
    def pack(self, sample_rate: int, head: int = 0,
             dtype: type | np.dtype = np.float32) -> EngineWeights:
        """The engine weights at ``sample_rate`` under the current alias mode.

        Parameters
        ----------
        sample_rate : int
            Synthesis rate, Hz.
        head : int
            Output head index.
        dtype : numpy dtype
            ``np.float32`` or ``np.float64``.

        Returns
        -------
        EngineWeights
            Equal, array for array, to :func:`pianossm.engine.pack_model` of the checkpoint.
        """
        dtype = np.dtype(dtype)
        head = self.head_index(head)
        key = _sha(self.digest, str(int(sample_rate)), str(head), self.alias_mode, dtype.str)
        if key in self._packed:
            return self._packed[key]
        path = self._entry(f"{key}.npz")
        weights = _read_npz(path, key) if path is not None else None
        if weights is None:
            from pianossm.engine.weights import pack_model

            weights = pack_model(self.torch_model(), sample_rate, head, dtype)
            if path is not None:
                arrays = weights.to_arrays() | {"key": np.array(key)}
                self._store(path, lambda tmp: np.savez(tmp, **arrays))
        self._packed[key] = weights
        return weights

    def torch_model(self) -> Any:
        """The checkpoint as a :class:`~pianossm.model.PianoSSM` (imports torch), with this
        handle's alias mode."""
        if self._torch is None:
            from pianossm.checkpoint import load_model

            self._torch = load_model(self.path)
        self._torch.set_alias_mode(self.alias_mode)
        return self._torch

    # -- the cache folder ------------------------------------------------------------------
    def _entry(self, name: str) -> str | None:
        folder = cache_dir() if self._disk else None
        return None if folder is None else os.path.join(folder, "packed", name)

    @staticmethod
    def _store(path: str, write: Any) -> None:
        """Write a cache entry atomically; a cache that cannot be written is left out."""
        from pianossm.fsutil import atomic_write

        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            atomic_write(path, write)
        except (OSError, PianoSSMError):
            pass


def _write_text(path: str, text: str) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def _read_config(path: str, digest: str) -> PianoSSMConfig | None:
    """The config of a cache entry, or ``None`` when it is missing, damaged or another's."""
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
        if data.pop("digest") != digest:
            return None
        return PianoSSMConfig.from_dict(data)
    except (OSError, ValueError, KeyError, TypeError, AttributeError, PianoSSMError):
        return None


def _read_npz(path: str, key: str) -> EngineWeights | None:
    """The weights of a cache entry, or ``None`` when it is missing, damaged or another's."""
    import zipfile

    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["key"]) != key:
                return None
            return EngineWeights.from_arrays(data)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, PianoSSMError):
        return None
