"""Training recipe of the alignment CRNN (``pianossm align-train``): resumable, CPU-frugal.

Loss: binary cross-entropy on the aligned onset channel (positives weighted, they are
rare) plus half of it on the frame channel.  Adam, linear warm-up then cosine decay over
``steps``.  A training checkpoint (float32, optimizer, rng, step) is written atomically
every ``save_every`` steps to ``run_dir/last.pt`` and the run resumes from it; the shipped
file (float16 weights + config + recipe) is written with :func:`export`.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass

import numpy as np
import torch
from torch import nn

from pianossm.align.data import SegmentDataset, list_items
from pianossm.align.model import AlignCRNN, CRNNConfig, load_crnn, save_crnn
from pianossm.align.perturb import PerturbConfig
from pianossm.errors import PianoSSMError

__all__ = ["TrainConfig", "alignment_loss", "export", "train"]


@dataclass(frozen=True)
class TrainConfig:
    """The recipe (stored inside every checkpoint)."""

    steps: int = 600
    batch: int = 8
    frames: int = 1000
    lr: float = 2e-3
    warmup: int = 50
    onset_pos_weight: float = 4.0
    seed: int = 0
    save_every: int = 25
    threads: int = 1
    minutes: float = 0.0  # stop (resumably) after this wall time; 0: no limit


def alignment_loss(logits: torch.Tensor, target: torch.Tensor,
                   pos_weight: float = 4.0) -> dict[str, torch.Tensor]:
    """BCE of ``(B, 2, T, 88)`` logits against aligned onset/frame targets.

    Returns
    -------
    dict
        ``onset``, ``frame`` and ``total = onset + 0.5 * frame`` (scalars).
    """
    pw = torch.tensor(pos_weight)
    onset = nn.functional.binary_cross_entropy_with_logits(logits[:, 0], target[:, 0],
                                                           pos_weight=pw)
    frame = nn.functional.binary_cross_entropy_with_logits(logits[:, 1], target[:, 1])
    return {"onset": onset, "frame": frame, "total": onset + 0.5 * frame}


def _batch(ds: SegmentDataset, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    xs, ys = zip(*(ds.sample() for _ in range(n)))
    return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys))


def _lr(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    frac = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, frac))))


def _validate(model: AlignCRNN, val: tuple[torch.Tensor, torch.Tensor], cfg: TrainConfig,
              ) -> float:
    model.eval()
    with torch.no_grad():
        loss = alignment_loss(model(val[0]), val[1], cfg.onset_pos_weight)["total"]
    model.train()
    return float(loss)


def train(data: str, run_dir: str, cfg: TrainConfig, val_data: str | None = None,
          perturb: PerturbConfig | None = None, model_cfg: CRNNConfig | None = None,
          log: Callable[[str], None] = print) -> str:
    """Train (or resume) a CRNN on a data folder.

    Parameters
    ----------
    data : str
        Training data folder (see :mod:`pianossm.align.data`).
    run_dir : str
        Holds ``last.pt`` (resumed from when present) and ``log.jsonl``.
    cfg : TrainConfig
        Recipe.
    val_data : str, optional
        Validation folder (a fixed set of 16 perturbed segments).
    perturb : PerturbConfig, optional
        Timing-error model of the input rolls (default: :class:`PerturbConfig()`).
    model_cfg : CRNNConfig, optional
        Sizes (ignored when resuming; default: :class:`CRNNConfig()`).
    log : callable
        Receives one progress line per ``save_every`` steps.

    Returns
    -------
    str
        Path of ``last.pt``.
    """
    perturb, model_cfg = perturb or PerturbConfig(), model_cfg or CRNNConfig()
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    os.makedirs(run_dir, exist_ok=True)
    last = os.path.join(run_dir, "last.pt")
    ds = SegmentDataset(list_items(data), cfg.frames, perturb, cfg.seed)
    val = _batch(SegmentDataset(list_items(val_data), cfg.frames, perturb, 12345), 16) \
        if val_data else None
    model, step = AlignCRNN(model_cfg), 0
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    if os.path.isfile(last):
        model, payload = load_crnn(last)
        opt.load_state_dict(payload["optimizer"])
        step, ds.rng = payload["step"], payload["rng"]
        log(f"resumed from {last} at step {step}")
    model.train()
    t_start, running = time.time(), []
    while step < cfg.steps:
        for group in opt.param_groups:
            group["lr"] = _lr(step, cfg)
        x, y = _batch(ds, cfg.batch)
        loss = alignment_loss(model(x), y, cfg.onset_pos_weight)
        opt.zero_grad()
        loss["total"].backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        step += 1
        running.append(float(loss["total"].detach()))
        timeout = cfg.minutes > 0 and time.time() - t_start > 60 * cfg.minutes
        if step % cfg.save_every == 0 or step == cfg.steps or timeout:
            rec = {"step": step, "loss": float(np.mean(running)), "lr": _lr(step, cfg),
                   "val": _validate(model, val, cfg) if val else None,
                   "elapsed_s": round(time.time() - t_start, 1)}
            running = []
            save_crnn(last, model, optimizer=opt.state_dict(), step=step, rng=ds.rng,
                      train_config=asdict(cfg), perturb=asdict(perturb))
            with open(os.path.join(run_dir, "log.jsonl"), "a") as f:
                f.write(json.dumps(rec) + "\n")
            log(json.dumps(rec))
        if timeout:
            break
    return last


def export(train_ckpt: str, out: str, command: str = "") -> None:
    """Write the shipped form (float16 weights, config, recipe) of a training checkpoint."""
    model, payload = load_crnn(train_ckpt)
    if "train_config" not in payload:
        raise PianoSSMError(f"{train_ckpt!r} holds no training recipe")
    save_crnn(out, model, step=payload["step"], train_config=payload["train_config"],
              perturb=payload.get("perturb"), command=command)
