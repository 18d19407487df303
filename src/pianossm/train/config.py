"""Training configuration: a dataclass whose fields are the ``pianossm train`` flags.

A config file (TOML or JSON, keys = field names) gives defaults; flags given on the
command line override it.  The resolved config is stored in every checkpoint.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from typing import Any

from pianossm.config import MAX_INPUT_DELAY_MS
from pianossm.errors import PianoSSMError

__all__ = ["AMP_MODES", "EIG_INITS", "TrainConfig", "load_config_file"]

#: Values of ``--amp``: ``off`` (float32 throughout) or ``bf16`` autocast of the real matmuls.
AMP_MODES = ("off", "bf16")
#: Starts of a fresh run: the paper's S4D-Lin eigenvalues, modes log-uniform over the keyboard
#: (:func:`pianossm.train.parts.piano_eigenvalues`), or a keyboard of resonators
#: (:func:`pianossm.train.parts.keyboard_init`).
EIG_INITS = ("s4d", "piano", "keys")


@dataclass
class TrainConfig:
    """Everything a training run depends on (the paper's settings are the defaults)."""

    data: str = ""  # dataset folder (with cache/) or cache folder
    out: str = "runs/train"  # checkpoints and TensorBoard logs
    preset: str = "S"
    features: str = "roll"  # input layout: roll or roll+onset+pedal (the cache must hold it)
    init: str = ""  # checkpoint whose weights start this (new) run; see train.warmstart
    sample_rate: int = 16000
    d_state: int | None = None  # override the preset's state size (tiny test models)
    steps: int = 100000  # main phase (SMML)
    batch: int = 8
    crop_seconds: float = 4.0
    lr: float = 1e-4
    weight_decay: float = 1e-4
    decay_eigenvalues: bool = False  # weight decay on *.ssm.log_mag / *.ssm.angle
    eig_init: str = "s4d"  # fresh runs: one of EIG_INITS
    eig_lr_mult: float = 1.0  # learning rate of *.ssm.log_mag / *.ssm.angle over the others'
    max_decay: float = 0.0  # s; > 0: after each step, modes decaying slower are set to it
    input_delay_ms: float = 0.0  # ms the model hears its input late (PianoSSMConfig)
    warmup_steps: int = 1000
    restart_steps: int = 20000  # first cosine period; later ones grow by restart_mult
    restart_mult: float = 2.0
    min_lr_ratio: float = 0.01
    loss: str = "smml"  # main-phase loss: smml or mssl
    finetune_steps: int = 0  # MSSL fine-tuning after the main phase
    finetune_lr: float = 2e-5
    env_weight: float = 0.0  # weight of the 2 ms log-envelope L1 (losses.EnvelopeLoss) added to the loss
    flux_weight: float = 0.0  # weight of the per-band flux L1 (losses.FluxLoss) added to the loss
    attack_weight: float = 0.0  # weight of the MSSL around note attacks (losses.AttackLoss)
    pitch_weight: float = 0.0  # weight of the log per-key spectrum L1 (losses.PitchLoss)
    grad_clip: float = 1.0
    ema: float = 0.0  # decay of the weight average that is validated and saved (0: off)
    val_every: int = 500
    val_seconds: float = 10.0
    val_max_windows: int = 0  # 0: every validation window
    ckpt_every: int = 500
    log_every: int = 10
    seed: int = 0
    threads: int = 1
    device: str = "cpu"
    scan: str = "auto"  # recurrence of the training forward: auto, compiled (numba) or chunked
    amp: str = "off"  # off or bf16: autocast on the real matmuls, the scan stays complex64
    alias_reg: float = 0.0  # weight of pianossm.alias.alias_penalty in the training loss
    alias_rates: str = "16000,24000"  # comma-separated synthesis rates (Hz) to keep alias-free
    alias_margin: float = 0.9  # fraction of each target Nyquist frequency that counts as safe
    alias_bound: bool = False  # parameterise: every mode below margin x the lowest target Nyquist

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form for checkpoints and logs."""
        return dataclasses.asdict(self)

    def total_steps(self) -> int:
        """Main plus fine-tuning steps."""
        return self.steps + self.finetune_steps

    def alias_rate_list(self) -> list[int]:
        """``alias_rates`` parsed: the target synthesis rates in Hz, ascending.

        Returns
        -------
        list of int
            ``(R,)`` distinct positive rates.
        """
        rates = set()
        for part in str(self.alias_rates).split(","):
            part = part.strip()
            try:
                rate = int(part)
            except ValueError:
                rate = 0
            if rate <= 0:
                raise PianoSSMError(f"--alias-rates must be comma-separated positive rates in Hz "
                                    f"(like 16000,24000), got {self.alias_rates!r}")
            rates.add(rate)
        return sorted(rates)

    def check(self) -> None:
        """Raise :class:`PianoSSMError` naming the first invalid value."""
        positive = ("steps", "batch", "crop_seconds", "lr", "val_every", "ckpt_every",
                    "log_every", "threads", "val_seconds", "restart_steps")
        for name in positive:
            if getattr(self, name) <= 0:
                raise PianoSSMError(f"--{name.replace('_', '-')} must be > 0, "
                                    f"got {getattr(self, name)!r}")
        from pianossm.config import FEATURE_KINDS

        if self.features not in FEATURE_KINDS:
            raise PianoSSMError(f"unknown --features {self.features!r}; allowed: "
                                f"{', '.join(sorted(FEATURE_KINDS))}")
        if self.loss not in ("smml", "mssl"):
            raise PianoSSMError(f"unknown loss {self.loss!r}; allowed: mssl, smml")
        if self.finetune_steps < 0 or self.warmup_steps < 0:
            raise PianoSSMError("--finetune-steps and --warmup-steps must be >= 0")
        from pianossm.ssm import SCAN_BACKENDS

        if self.scan not in SCAN_BACKENDS:
            raise PianoSSMError(f"unknown --scan {self.scan!r}; allowed: {', '.join(SCAN_BACKENDS)}")
        if self.amp not in AMP_MODES:
            raise PianoSSMError(f"unknown --amp {self.amp!r}; allowed: {', '.join(AMP_MODES)} "
                                "(fp16 would need loss scaling, which this trainer does not do)")
        if not self.env_weight >= 0:  # also refuses NaN
            raise PianoSSMError(f"--env-weight must be >= 0, got {self.env_weight!r}")
        if not self.flux_weight >= 0:
            raise PianoSSMError(f"--flux-weight must be >= 0, got {self.flux_weight!r}")
        if not self.attack_weight >= 0:
            raise PianoSSMError(f"--attack-weight must be >= 0, got {self.attack_weight!r}")
        if self.eig_init not in EIG_INITS:
            raise PianoSSMError(f"--eig-init must be one of {', '.join(EIG_INITS)}, "
                                f"got {self.eig_init!r}")
        if self.eig_init != "s4d" and self.init:
            raise PianoSSMError("--eig-init starts a fresh run; --init takes its eigenvalues "
                                f"from {self.init!r}")
        if not self.eig_lr_mult > 0:
            raise PianoSSMError(f"--eig-lr-mult must be > 0, got {self.eig_lr_mult!r}")
        if not self.max_decay >= 0:
            raise PianoSSMError(f"--max-decay must be >= 0 (0: off), got {self.max_decay!r}")
        if not 0 <= self.input_delay_ms <= MAX_INPUT_DELAY_MS:
            raise PianoSSMError(f"--input-delay-ms must lie in 0..{MAX_INPUT_DELAY_MS:g}, "
                                f"got {self.input_delay_ms!r}")
        if not self.pitch_weight >= 0:
            raise PianoSSMError(f"--pitch-weight must be >= 0, got {self.pitch_weight!r}")
        if not 0 <= self.ema < 1:
            raise PianoSSMError(f"--ema must be in [0, 1), got {self.ema!r}")
        if self.alias_reg < 0:
            raise PianoSSMError(f"--alias-reg must be >= 0, got {self.alias_reg!r}")
        if not 0 < self.alias_margin <= 1:
            raise PianoSSMError(f"--alias-margin must be in (0, 1], got {self.alias_margin!r}")
        rates = self.alias_rate_list()
        if self.alias_bound and min(rates) >= self.sample_rate:
            raise PianoSSMError(f"--alias-bound has nothing to do: no rate in --alias-rates "
                                f"{self.alias_rates!r} is below --sample-rate {self.sample_rate}")
        if self.alias_reg > 0 and min(rates) >= self.sample_rate:
            raise PianoSSMError(f"--alias-reg {self.alias_reg} has nothing to do: no rate in "
                                f"--alias-rates {self.alias_rates!r} is below --sample-rate "
                                f"{self.sample_rate}")
        if not self.data:
            raise PianoSSMError("no training data given; pass --data FOLDER")


def load_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a TOML or JSON training config; unknown keys are an error.

    Parameters
    ----------
    path : str or PathLike
        ``.toml`` or ``.json`` file.

    Returns
    -------
    dict
        Field values.
    """
    import tomllib

    name = os.fspath(path)
    if not os.path.isfile(name):
        raise PianoSSMError(f"config file not found: {name!r}")
    try:
        with open(name, "rb") as f:
            data = tomllib.load(f) if name.endswith(".toml") else json.load(f)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise PianoSSMError(f"not a readable config file: {name!r} ({exc})") from None
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    unknown = sorted(set(data) - fields)
    if unknown:
        raise PianoSSMError(f"unknown keys {unknown} in config file {name!r}")
    return data
