"""Model configuration: a frozen dataclass with named presets, stored in every checkpoint."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from pianossm.errors import PianoSSMError

__all__ = ["FEATURE_KINDS", "MAESTRO_YEARS", "MAX_INPUT_DELAY_MS", "PRESETS", "PianoSSMConfig",
           "head_index", "preset", "resolve_head"]

#: Recording years of MAESTRO v3, the heads of the published multi-head models, in order.
MAESTRO_YEARS: tuple[str, ...] = (
    "2004", "2006", "2008", "2009", "2011", "2013", "2014", "2015", "2017", "2018")

#: Input feature layouts: ``roll`` is the paper's (88 keys, velocity/127, pedal as
#: note elongation); ``roll+onset+pedal`` adds an onset channel per key and a pedal channel.
FEATURE_KINDS: dict[str, int] = {"roll": 88, "roll+onset+pedal": 88 + 88 + 1}
#: Longest input delay a model may carry, ms.
MAX_INPUT_DELAY_MS = 100.0


@dataclass(frozen=True)
class PianoSSMConfig:
    """Everything needed to rebuild a Piano-SSM model.

    Attributes
    ----------
    preset : str
        Name of the size (``XL``, ``L``, ``S`` or ``custom``).
    d_state : int
        Complex states ``H`` per layer.
    widths : tuple of int
        Channels ``88 -> 88 -> 60 -> 40 -> 20``; the first is set by ``features``.
    train_sample_rate : int
        Sample rate the model was trained at (defines ``Ts = f_train / f_synth``).
    heads : tuple of str
        Names of the output heads (one per recording condition).
    audio_mean, audio_std : float
        De-normalisation of the output: ``audio = y * std + mean``.
    features : str
        Input feature layout, a key of :data:`FEATURE_KINDS`.
    pedal_threshold : int
        CC64 value at and above which the sustain pedal is down.
    max_mode_hz : float or None
        Aliasing-aware parameterisation: when set, every mode's oscillation frequency is
        squashed smoothly below it, ``|Im(lambda)| = c tanh(|Im| / c)`` with
        ``c = 2 pi max_mode_hz / f_train``, so no mode aliases at any rate above
        ``2 max_mode_hz``.  ``None`` (the paper's, and the published checkpoints') leaves
        the eigenvalues free.
    input_delay_ms : float
        The input reaches the model this long after its MIDI time (a piano's hammer
        travel; the published checkpoints: 0).  Applied as whole MIDI frames,
        :meth:`delay_frames`, by every path that turns MIDI into model input (offline
        rendering, streaming synthesis, training crops, evaluation), so the audio is the
        undelayed model's, that many frames later.
    """

    preset: str = "S"
    d_state: int = 64
    widths: tuple[int, ...] = (88, 88, 60, 40, 20)
    train_sample_rate: int = 16000
    heads: tuple[str, ...] = ("default",)
    audio_mean: float = 0.0
    audio_std: float = 1.0
    features: str = "roll"
    pedal_threshold: int = 64
    max_mode_hz: float | None = None
    input_delay_ms: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.input_delay_ms <= MAX_INPUT_DELAY_MS:
            raise PianoSSMError(f"input delay must lie in 0..{MAX_INPUT_DELAY_MS:g} ms, "
                                f"got {self.input_delay_ms!r}")
        if self.max_mode_hz is not None and not 0 < self.max_mode_hz < self.train_sample_rate / 2:
            raise PianoSSMError(f"max_mode_hz must lie in (0, {self.train_sample_rate / 2:g}) Hz "
                                f"(below the training Nyquist frequency), got {self.max_mode_hz}")
        if self.features not in FEATURE_KINDS:
            raise PianoSSMError(
                f"unknown feature layout {self.features!r}; allowed: {sorted(FEATURE_KINDS)}")
        if self.widths[0] != FEATURE_KINDS[self.features]:
            raise PianoSSMError(
                f"first width {self.widths[0]} does not match features {self.features!r} "
                f"({FEATURE_KINDS[self.features]} channels)")
        if len(self.widths) < 2 or self.d_state < 1 or not self.heads:
            raise PianoSSMError(f"invalid model shape: widths={self.widths}, "
                                f"d_state={self.d_state}, heads={self.heads}")

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form for a checkpoint."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PianoSSMConfig:
        """Rebuild from :meth:`to_dict` output; unknown keys are an error."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise PianoSSMError(f"unknown config keys {unknown}; allowed: {sorted(names)}")
        data = dict(data)
        for key in ("widths", "heads"):
            if key in data:
                data[key] = tuple(data[key])
        return cls(**data)

    def delay_frames(self, fps: float) -> int:
        """The input delay in whole MIDI frames at ``fps`` frames per second.

        Parameters
        ----------
        fps : float
            MIDI frame rate.

        Returns
        -------
        int
            ``round(input_delay_ms * fps / 1000)`` (7 frames for 7 ms at 1000 frames/s).
        """
        return round(self.input_delay_ms * fps / 1000.0)

    def replace(self, **changes: Any) -> PianoSSMConfig:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)

    def with_features(self, features: str) -> PianoSSMConfig:
        """A copy taking the input layout ``features`` (first width set to match).

        Parameters
        ----------
        features : str
            A key of :data:`FEATURE_KINDS`.

        Returns
        -------
        PianoSSMConfig
        """
        if features not in FEATURE_KINDS:
            raise PianoSSMError(
                f"unknown feature layout {features!r}; allowed: {sorted(FEATURE_KINDS)}")
        return self.replace(features=features,
                            widths=(FEATURE_KINDS[features],) + tuple(self.widths[1:]))


PRESETS: dict[str, PianoSSMConfig] = {
    "XL": PianoSSMConfig(preset="XL", d_state=256),
    "L": PianoSSMConfig(preset="L", d_state=128),
    "S": PianoSSMConfig(preset="S", d_state=64),
}


def preset(name: str, **changes: Any) -> PianoSSMConfig:
    """The named preset (``XL``, ``L``, ``S``), optionally with changes.

    Parameters
    ----------
    name : str
        Preset name, case-insensitive.
    **changes
        Fields to override.

    Returns
    -------
    PianoSSMConfig
    """
    key = name.upper()
    if key not in PRESETS:
        raise PianoSSMError(f"unknown preset {name!r}; allowed: {sorted(PRESETS)}")
    return PRESETS[key].replace(**changes) if changes else PRESETS[key]


def head_index(config: PianoSSMConfig, head: str | int) -> int:
    """Index of one of ``config``'s heads given by name or index, with a clear error.

    Torch-free, so that a render from cached packed weights needs no model
    (:mod:`pianossm.packed`); :meth:`pianossm.model.PianoSSM.head_index` calls it.

    Returns
    -------
    int
    """
    names = config.heads
    if isinstance(head, int) and not isinstance(head, bool):
        if 0 <= head < len(names):
            return head
    elif str(head) in names:
        return names.index(str(head))
    raise PianoSSMError(f"unknown head {head!r}; allowed: {list(names)}")


def resolve_head(config: PianoSSMConfig, arg: str | int | None) -> int:
    """Head index from a command-line value.

    Parameters
    ----------
    config : PianoSSMConfig
        The model's config.
    arg : str, int or None
        A head name, an index (an int, or a numeric string that is not itself a head
        name); ``None`` picks ``2009`` where the model has it (the published models'
        reference head), else the first head.

    Returns
    -------
    int
    """
    names = config.heads
    if arg is None:
        return head_index(config, "2009" if "2009" in names else names[0])
    if isinstance(arg, int):
        return head_index(config, arg)
    return head_index(config, int(arg) if arg.isdigit() and arg not in names else arg)
