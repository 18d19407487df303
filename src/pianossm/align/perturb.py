"""Simulated human timing errors: the unaligned MIDI of a training triplet.

Perturbation model (all amplitudes in seconds, every one a flag of ``align-data``/
``align-eval``)::

    shift(t)   = g + d(t)                      g ~ U(-offset, offset)   global offset
    d(t)       = drift * sum_k a_k sin(2 pi t / P_k + phi_k) / sum_k |a_k|
                                               smooth local tempo drift, periods
                                               P_k ~ U(period_min, period_max)
    onset'_i   = onset_i  + shift(onset_i)  + U(-jitter, jitter)
    offset'_i  = offset_i + shift(offset_i) + U(-offset_jitter, offset_jitter)

then each onset's and offset's total displacement is clipped to ``[-max_shift,
max_shift]`` (the issue's "at most 100 ms"), and every note keeps at least 20 ms of
duration.  ``d`` is a displacement, so its derivative is the tempo deviation: with
``drift = 0.05`` and periods of 4..20 s the local tempo varies by up to about 8 %.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from pianossm.align.notes import Notes
from pianossm.errors import PianoSSMError

__all__ = ["PerturbConfig", "coarse_perturb", "perturb_notes"]

MIN_DURATION = 0.02


@dataclass(frozen=True)
class PerturbConfig:
    """Amplitudes of the perturbation model (seconds); see the module docstring."""

    max_shift: float = 0.1
    offset: float = 0.05
    drift: float = 0.05
    jitter: float = 0.03
    offset_jitter: float = 0.05
    period_min: float = 4.0
    period_max: float = 20.0
    n_waves: int = 3

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not np.isfinite(value) or value < 0:
                raise PianoSSMError(f"perturbation {name} must be >= 0, got {value!r}")
        if not 0 < self.period_min <= self.period_max:
            raise PianoSSMError(f"drift periods must satisfy 0 < min <= max, got "
                                f"{self.period_min!r}..{self.period_max!r}")

    def scaled(self, factor: float) -> PerturbConfig:
        """All time amplitudes multiplied by ``factor`` (periods unchanged)."""
        return PerturbConfig(self.max_shift * factor, self.offset * factor,
                             self.drift * factor, self.jitter * factor,
                             self.offset_jitter * factor, self.period_min,
                             self.period_max, self.n_waves)


def _drift(times: np.ndarray, cfg: PerturbConfig, rng: np.random.Generator,
           ) -> np.ndarray:
    """``(M,)`` smooth displacement ``d(t)`` of the module docstring."""
    if cfg.drift == 0 or cfg.n_waves == 0:
        return np.zeros_like(times)
    amp = rng.normal(size=cfg.n_waves)
    period = rng.uniform(cfg.period_min, cfg.period_max, cfg.n_waves)
    phase = rng.uniform(0, 2 * np.pi, cfg.n_waves)
    waves = np.sin(2 * np.pi * times[:, None] / period + phase) @ amp
    return cfg.drift * waves / np.abs(amp).sum()


def perturb_notes(notes: Notes, cfg: PerturbConfig, rng: np.random.Generator) -> Notes:
    """The same notes with simulated timing errors.

    Parameters
    ----------
    notes : Notes
        ``N`` correctly timed notes.
    cfg : PerturbConfig
        Amplitudes.
    rng : np.random.Generator
        Source of randomness (seed it for reproducible data).

    Returns
    -------
    Notes
        ``N`` notes, same order, pitch and velocity; times perturbed, onsets >= 0.
    """
    n = len(notes)
    g = rng.uniform(-cfg.offset, cfg.offset)
    both = _drift(np.concatenate([notes.onset, notes.offset]), cfg, rng) + g
    d_on = both[:n] + rng.uniform(-cfg.jitter, cfg.jitter, n)
    d_off = both[n:] + rng.uniform(-cfg.offset_jitter, cfg.offset_jitter, n)
    onset = np.maximum(notes.onset + np.clip(d_on, -cfg.max_shift, cfg.max_shift), 0.0)
    offset = notes.offset + np.clip(d_off, -cfg.max_shift, cfg.max_shift)
    return notes.with_times(onset, np.maximum(offset, onset + MIN_DURATION))


def coarse_perturb(notes: Notes, rng: np.random.Generator,
                   tempo: tuple[float, float] = (0.03, 0.10),
                   offset: tuple[float, float] = (0.2, 1.0),
                   cfg: PerturbConfig | None = None) -> Notes:
    """Human-like errors (``cfg``, default :class:`PerturbConfig()`), then a global tempo
    change and offset: ``t' = sign_o * o + (1 + sign_s * s) * t`` with ``s ~ U(tempo)``,
    ``o ~ U(offset)`` and random signs (onsets clipped at 0).

    Returns
    -------
    Notes
        ``N`` notes, same order; what a score-timed MIDI of a performance looks like.
    """
    if not 0 <= tempo[0] <= tempo[1] < 1 or not 0 <= offset[0] <= offset[1]:
        raise PianoSSMError(f"bad coarse ranges tempo={tempo!r} offset={offset!r}")
    bad = perturb_notes(notes, cfg or PerturbConfig(), rng)
    s = rng.uniform(*tempo) * rng.choice([-1.0, 1.0])
    o = rng.uniform(*offset) * rng.choice([-1.0, 1.0])
    onset = np.maximum(o + (1 + s) * bad.onset, 0.0)
    off = np.maximum(o + (1 + s) * bad.offset, onset + MIN_DURATION)
    return bad.with_times(onset, off)
