"""The project's checkpoint format, atomic writes, and import of the published weights.

A checkpoint is a ``torch.save``d dict::

    {"format": "pianossm", "version": 1, "config": {...}, "model": state_dict,
     # training checkpoints also hold:
     "optimizer": ..., "scheduler": ..., "step": int, "rng": ..., "train_config": {...}}

Loading refuses other formats and unknown versions, and rebuilds the model from the
stored config, so a checkpoint is all one needs.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any

import torch

from pianossm.config import MAESTRO_YEARS, PianoSSMConfig
from pianossm.errors import PianoSSMError
from pianossm.fsutil import atomic_open, atomic_write, write_error
from pianossm.model import PianoSSM

__all__ = [
    "FORMAT",
    "OFFICIAL_AUDIO_MEAN",
    "OFFICIAL_AUDIO_STD",
    "VERSION",
    "atomic_write",
    "average_models",
    "check_soup_weights",
    "import_official",
    "load_checkpoint",
    "load_model",
    "save_checkpoint",
]

FORMAT = "pianossm"
VERSION = 1
#: Output de-normalisation of the published models (MAESTRO statistics).
OFFICIAL_AUDIO_MEAN = -2.1367119188653305e-05
OFFICIAL_AUDIO_STD = 0.060498714447021484


def save_checkpoint(path: str | os.PathLike[str], model: PianoSSM, **extra: Any) -> None:
    """Write ``model`` (and training state in ``extra``) atomically.

    Parameters
    ----------
    path : str or PathLike
        Destination ``.pt`` file.
    model : PianoSSM
        The model; its config goes inside.
    **extra
        More entries (``optimizer``, ``scheduler``, ``step``, ``rng``, ``train_config``).
    """
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    payload = {"format": FORMAT, "version": VERSION, "config": model.config.to_dict(),
               "model": state, **extra}
    with atomic_open(path) as fd, os.fdopen(fd, "wb", closefd=False) as f:
        try:
            torch.save(payload, f)
        except RuntimeError as exc:  # torch's zip writer hides a full disk's errno
            raise write_error(exc, path) from None


def load_checkpoint(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and validate a checkpoint dict.

    Parameters
    ----------
    path : str or PathLike
        A file written by :func:`save_checkpoint`.

    Returns
    -------
    dict
        The payload, ``config`` already a :class:`PianoSSMConfig`.
    """
    name = os.fspath(path)
    if not os.path.isfile(name):
        raise PianoSSMError(f"checkpoint not found: {name!r}")
    try:
        payload = torch.load(name, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001  (torch raises many types for a damaged file)
        raise PianoSSMError(f"not a readable checkpoint: {name!r} ({type(exc).__name__})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        hint = (" (a published Piano-SSM state_dict? convert it with "
                "'pianossm import-checkpoint')" if isinstance(payload, dict) else "")
        raise PianoSSMError(f"not a pianossm checkpoint: {name!r}{hint}")
    if payload.get("version") != VERSION:
        raise PianoSSMError(f"checkpoint {name!r} has format version "
                            f"{payload.get('version')!r}; this pianossm reads version {VERSION}")
    try:
        payload["config"] = PianoSSMConfig.from_dict(payload["config"])
    except (KeyError, TypeError, ValueError, AttributeError, PianoSSMError) as exc:
        raise PianoSSMError(f"checkpoint {name!r} has a broken config ({exc})") from None
    state = payload.get("model")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor)
                                              for v in state.values()):
        raise PianoSSMError(f"checkpoint {name!r} holds no model weights")
    bad = [k for k, v in state.items()
           if (v.is_floating_point() or v.is_complex()) and not bool(torch.isfinite(v).all())]
    if bad:
        raise PianoSSMError(f"checkpoint {name!r} holds NaN or infinite weights in "
                            f"{', '.join(bad[:3])}{' ...' if len(bad) > 3 else ''}")
    return payload


def load_model(path: str | os.PathLike[str]) -> PianoSSM:
    """Rebuild a model from a checkpoint, in eval mode.

    Parameters
    ----------
    path : str or PathLike
        A pianossm checkpoint.

    Returns
    -------
    PianoSSM
    """
    payload = load_checkpoint(path)
    model = PianoSSM(payload["config"])
    try:
        model.load_state_dict(payload["model"])
    except (RuntimeError, KeyError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0][:200]
        raise PianoSSMError(f"checkpoint {os.fspath(path)!r} does not match its config: {first}") from None
    return model.eval()


def check_soup_weights(weights: Sequence[float], n: int) -> list[float]:
    """The weights of a model average, or one clear error.

    Parameters
    ----------
    weights : sequence of float
        One weight per checkpoint.
    n : int
        Number of checkpoints (>= 1).

    Returns
    -------
    list of float
        ``n`` non-negative weights summing to 1 (to 1e-6).
    """
    w = [float(x) for x in weights]
    if len(w) != n or not n or min(w) < 0 or abs(sum(w) - 1) > 1e-6:
        raise PianoSSMError(f"need one non-negative weight per checkpoint summing to 1, got "
                            f"{w!r} for {n} checkpoint(s)")
    return w


def average_models(paths: list[str | os.PathLike[str]], weights: list[float],
                   out: str | os.PathLike[str], source: str = "") -> PianoSSM:
    """Write the weighted average of models of one configuration (a "model soup").

    Checkpoints of one training run lie in one basin, so their weighted mean is a model
    too; the default is such a mean (README, "the shipped default").  The averaging runs
    in float64 over the stored parameters (polar eigenvalue parameters included).

    Parameters
    ----------
    paths : list of str or PathLike
        ``K`` checkpoints (training state or model files) with equal configs.
    weights : list of float
        ``K`` non-negative weights summing to 1.
    out : str or PathLike
        Destination model file (written atomically).
    source : str
        Provenance to store (``source`` entry).

    Returns
    -------
    PianoSSM
        The averaged model, in eval mode.
    """
    w = check_soup_weights(weights, len(paths))
    payloads = [load_checkpoint(p) for p in paths]
    for p, c in zip(paths[1:], payloads[1:]):
        if c["config"] != payloads[0]["config"]:
            diff = [k for k, v in c["config"].to_dict().items()
                    if payloads[0]["config"].to_dict().get(k) != v]
            raise PianoSSMError(f"cannot average {os.fspath(p)!r} with {os.fspath(paths[0])!r}: "
                                f"their configs differ in {', '.join(diff)}")
    first = payloads[0]["model"]
    for p, c in zip(paths[1:], payloads[1:]):
        if set(c["model"]) != set(first) or any(c["model"][k].shape != v.shape
                                                for k, v in first.items()):
            raise PianoSSMError(f"cannot average {os.fspath(p)!r}: its weights do not match "
                                f"{os.fspath(paths[0])!r}'s")
    wide = {True: torch.complex128, False: torch.float64}
    state = {k: sum(wi * c["model"][k].to(wide[v.is_complex()]) for wi, c in zip(w, payloads)
                    ).to(v.dtype)
             if v.is_floating_point() or v.is_complex() else v for k, v in first.items()}
    model = PianoSSM(payloads[0]["config"])
    model.load_state_dict(state)
    save_checkpoint(out, model, source=source,
                    soup=[{"path": os.fspath(p), "weight": wi, "step": c.get("step")}
                          for p, wi, c in zip(paths, w, payloads)])
    return model.eval()


_OFFICIAL_NAME = re.compile(r"PianoSSM_(XL|L|S)_(MH_)?\w*?_(\d+)_model")
_LAYER_PREFIX = ["seq_midi.1.seq.0.seq.", "seq_midi.2.s5.seq.", "seq_midi.3.s5.seq.",
                 "seq_midi.4.s5.seq."]


def _official_rate(path: str, state: dict[str, torch.Tensor], given: int | None) -> int:
    if given is not None:
        return given
    match = _OFFICIAL_NAME.search(os.path.basename(path))
    if match is None:
        raise PianoSSMError(f"cannot tell the training sample rate of {path!r} from its name; "
                            f"pass --train-sample-rate")
    return int(match.group(3))


def import_official(path: str | os.PathLike[str], train_sample_rate: int | None = None,
                    ) -> PianoSSM:
    """Convert a published Piano-SSM ``state_dict`` into a :class:`PianoSSM`.

    Parameters
    ----------
    path : str or PathLike
        ``PianoSSM_{S,L,XL}_MH_maestro_all_{rate}_model.pth``.
    train_sample_rate : int, optional
        Training rate; read from the file name when omitted.

    Returns
    -------
    PianoSSM
        With the MAESTRO year heads and the published de-normalisation.
    """
    name = os.fspath(path)
    if not os.path.isfile(name):
        raise PianoSSMError(f"checkpoint not found: {name!r}")
    try:
        sd = torch.load(name, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001  (as above)
        raise PianoSSMError(f"not a readable checkpoint: {name!r} ({type(exc).__name__})") from None
    if not isinstance(sd, dict) or _LAYER_PREFIX[0] + "angle" not in sd:
        raise PianoSSMError(f"not a published Piano-SSM state_dict: {name!r} "
                            f"(no key {_LAYER_PREFIX[0] + 'angle'!r})")
    h = int(sd[_LAYER_PREFIX[0] + "angle"].shape[0])
    widths = (int(sd[_LAYER_PREFIX[0] + "B2"].shape[1]),) + tuple(
        int(sd[p + "C"].shape[0]) for p in _LAYER_PREFIX)
    n_heads = len([k for k in sd if k.startswith("year_linear.") and k.endswith(".weight")])
    heads = MAESTRO_YEARS if n_heads == len(MAESTRO_YEARS) else (
        tuple(str(i) for i in range(n_heads)) if n_heads else ("default",))
    preset = {256: "XL", 128: "L", 64: "S"}.get(h, "custom")
    config = PianoSSMConfig(preset=preset, d_state=h, widths=widths,
                            train_sample_rate=_official_rate(name, sd, train_sample_rate),
                            heads=heads, audio_mean=OFFICIAL_AUDIO_MEAN,
                            audio_std=OFFICIAL_AUDIO_STD)
    model = PianoSSM(config)
    new: dict[str, torch.Tensor] = {}
    for i, prefix in enumerate(_LAYER_PREFIX):
        ours = f"blocks.{i}."
        new[ours + "ssm.log_mag"] = sd[prefix + "norm"]
        new[ours + "ssm.angle"] = sd[prefix + "angle"]
        new[ours + "ssm.B"] = torch.view_as_real(sd[prefix + "B2"]).float()
        new[ours + "ssm.B_bias"] = torch.view_as_real(sd[prefix + "B2_bias"]).float()
        new[ours + "ssm.C"] = sd[prefix + "C"]
        new[ours + "ssm.C_bias"] = sd[prefix + "C_bias"][:, 0]
        if i > 0:
            new[ours + "skip.weight"] = sd[f"seq_midi.{i + 1}.skipLayer.weight"]
    if n_heads:
        new["heads.weight"] = torch.cat([sd[f"year_linear.{j}.weight"] for j in range(n_heads)])
        new["heads.bias"] = torch.cat([sd[f"year_linear.{j}.bias"] for j in range(n_heads)])
    else:
        new["heads.weight"] = sd["seq_midi.5.weight"]
        new["heads.bias"] = sd["seq_midi.5.bias"]
    model.load_state_dict(new)
    return model.eval()
