"""Training recipe of the alignment CRNN (``pianossm align-train``): resumable, CPU-frugal.

Loss: for every note, cross-entropy of its aligned onset frame among the onset logits of
its key within +-150 ms of its input onset (what the decoder searches), plus the
frame-channel BCE.  Adam, linear warm-up then cosine decay over
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
from typing import Any

import numpy as np
import torch
from torch import nn

from pianossm.align.data import SegmentDataset, check_labels, list_items
from pianossm.align.model import (
    AlignCRNN,
    CRNNConfig,
    load_crnn,
    save_crnn,
    with_key_context,
    with_local_head,
    with_plain_cqt,
    with_velocity,
)
from pianossm.align.notes import N_KEYS
from pianossm.align.perturb import PerturbConfig
from pianossm.checkpoint import check_soup_weights
from pianossm.errors import PianoSSMError, check_interrupted

__all__ = ["TrainConfig", "alignment_loss", "average", "export", "train"]


@dataclass(frozen=True)
class TrainConfig:
    """The recipe (stored inside every checkpoint)."""

    steps: int = 220
    batch: int = 8
    frames: int = 1000
    lr: float = 2e-3
    warmup: int = 10
    radius: int = 15
    seed: int = 0
    save_every: int = 25
    threads: int = 1
    minutes: float = 0.0  # stop (resumably) after this wall time; 0: no limit
    soft_onsets: bool = False  # sub-frame onset targets over two frames (decoded by centroid)
    focal: float = 0.0  # each note's onset loss weighted by (1 - p) ** focal (0: plain mean)
    #: learning-rate multiplier for the per-key temporal path (``key_*`` weights): a path
    #: added to a trained network starts at zero and would barely move at a fine-tuning rate
    key_lr_scale: float = 1.0
    #: multiplier of each optimiser step's change of the plain-CQT channel's weights (the
    #: input slices of the first convolution, the projection, the head's skip and the
    #: per-key path's input): they start at zero in a trained network and share their
    #: tensors with trained weights, so a parameter group cannot give them their own rate
    plain_lr_scale: float = 1.0


def window_onset_loss(onset_logits: torch.Tensor, pairs: torch.Tensor,
                      radius: int = 15, soft: bool = False, focal: float = 0.0) -> torch.Tensor:
    """Cross-entropy of each note's aligned onset among the frames the decoder searches.

    Parameters
    ----------
    onset_logits : torch.Tensor
        ``(B, T, 88)``.
    pairs : torch.Tensor
        ``(P, 4)`` int64 rows ``(batch, key, input onset frame, aligned onset frame)``, or
        ``(P, 5)`` with the aligned onset's sub-frame part in thousandths of a frame
        (:meth:`pianossm.align.data.SegmentDataset.sample`).
    radius : int
        Window half-width in frames (``2 * radius + 1`` classes per note).
    soft : bool
        Sub-frame targets (needs the fifth column): an onset at frame ``f + a``
        (``|a| <= 0.5``) is the class distribution ``1 - |a|`` on ``f`` and ``|a|`` on
        ``f + sign(a)``, so the model's window softmax can say where inside a 10 ms frame
        the onset lies (``roll_to_notes(subframe="centroid")`` reads it back).  With whole
        frames the targets round to 10 ms, and the decoded onsets keep about 2.5 ms of
        rounding error (half the median of a uniform +-5 ms).
    focal : float
        Focal weighting (Lin et al. 2017): each note's cross-entropy times
        ``(1 - p) ** focal``, ``p`` the probability the model gives its target frame(s)
        (the weight not part of the gradient), so that notes it already places well weigh
        less than the hard ones (soft, re-struck, masked by reverberation); 0: the plain
        mean.

    Returns
    -------
    torch.Tensor
        Mean over notes whose aligned onset lies in their window (0 when none).

    Notes
    -----
    A plain BCE over every cell first teaches the model to predict no onset at all
    (onsets are ~0.1 % of cells; seen in training, step 50 still flat); this softmax over
    each note's window is the decoder's own question and gives every note a gradient.
    """
    if soft and pairs.shape[1] < 5:
        raise PianoSSMError("soft onset targets need the sub-frame column of the pairs")
    off = torch.arange(-radius, radius + 1)
    b, k, c, t = pairs[:, :4].unbind(1)
    target = t - c + radius
    ok = (target >= 0) & (target <= 2 * radius)
    if not bool(ok.any()):
        return onset_logits.sum() * 0.0
    b, k, c, target = b[ok], k[ok], c[ok], target[ok]
    idx = c[:, None] + off  # (P, W)
    inside = (idx >= 0) & (idx < onset_logits.shape[1])
    logits = onset_logits[b[:, None], idx.clamp(0, onset_logits.shape[1] - 1), k[:, None]]
    logits = logits.masked_fill(~inside, -1e4)  # (P, W)
    if not soft:
        ce = nn.functional.cross_entropy(logits, target, reduction="none")
        return _focal_mean(ce, logits, nn.functional.one_hot(target, 2 * radius + 1), focal)
    frac = pairs[ok, 4].to(logits.dtype) / 1000.0
    other = target + torch.where(frac >= 0, 1, -1)
    rows = torch.arange(len(target))
    # the neighbour must be a class the decoder can pick: else all weight stays on target
    usable = (other >= 0) & (other <= 2 * radius)
    usable &= inside[rows, other.clamp(0, 2 * radius)]
    share = torch.where(usable, frac.abs(), torch.zeros_like(frac))
    probs = torch.zeros_like(logits)
    probs[rows, target] = 1.0 - share
    probs[rows, other.clamp(0, 2 * radius)] += share
    ce = nn.functional.cross_entropy(logits, probs, reduction="none")
    return _focal_mean(ce, logits, probs, focal)


def _focal_mean(ce: torch.Tensor, logits: torch.Tensor, target: torch.Tensor,
                focal: float) -> torch.Tensor:
    """Mean of the per-note losses ``ce`` ``(P,)``, each weighted by ``(1 - p) ** focal``
    where ``p`` is the softmax of ``logits`` ``(P, W)`` summed over the frames where
    ``target`` ``(P, W)`` is positive (see :func:`window_onset_loss`)."""
    if focal == 0:
        return ce.mean()
    with torch.no_grad():
        p = (torch.softmax(logits, dim=1) * (target > 0)).sum(1)
        weight = (1.0 - p).clamp_min(0.0) ** focal
    return (weight * ce).mean()


def alignment_loss(logits: torch.Tensor, target: torch.Tensor, pairs: torch.Tensor,
                   radius: int = 15, soft: bool = False,
                   focal: float = 0.0) -> dict[str, torch.Tensor]:
    """Note-window onset cross-entropy plus frame BCE on ``(B, 2, T, 88)`` logits
    (``radius``, ``soft``, ``focal``: see :func:`window_onset_loss`).

    Returns
    -------
    dict
        ``onset``, ``frame`` and ``total = onset + frame`` (scalars).
    """
    onset = window_onset_loss(logits[:, 0], pairs, radius, soft, focal)
    frame = nn.functional.binary_cross_entropy_with_logits(logits[:, 1], target[:, 1])
    return {"onset": onset, "frame": frame, "total": onset + frame}


def _batch(ds: SegmentDataset, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    xs, ys, ps = zip(*(ds.sample() for _ in range(n)))
    pairs = np.concatenate([np.concatenate([np.full((len(p), 1), i), p], axis=1)
                            for i, p in enumerate(ps)]).astype(np.int64)
    return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys)), \
        torch.from_numpy(pairs)


def _lr(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    frac = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, frac))))


def _validate(model: AlignCRNN, val: tuple[torch.Tensor, ...], cfg: TrainConfig,
              ) -> float:
    model.eval()
    with torch.no_grad():
        loss = alignment_loss(model(val[0]), val[1], val[2], cfg.radius,
                              cfg.soft_onsets)["total"]
    model.train()
    return float(loss)


def train(data: str, run_dir: str, cfg: TrainConfig, val_data: str | None = None,
          perturb: PerturbConfig | None = None, model_cfg: CRNNConfig | None = None,
          log: Callable[[str], None] = print, init: str | None = None) -> str:
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
        Sizes (ignored when resuming; default: :class:`CRNNConfig()`); with ``init``,
        only its ``local_head``, ``local_harmonics``, ``key_context``, ``key_channels``
        ``velocity`` and ``plain_cqt`` count (the checkpoint's network gets the per-key
        paths or the velocity or plain-CQT channel).
    log : callable
        Receives one progress line per ``save_every`` steps.
    init : str, optional
        Checkpoint whose weights start a new run (ignored when resuming).  Its label
        latency (``label_latency``: the shipped network's labels sat 6.17 ms before the
        sound) is kept: the run's targets are the data's labels (at the sound) that much
        earlier, so the network is not taught a shift of its outputs, and its checkpoints
        carry the same latency.

    Returns
    -------
    str
        Path of ``last.pt``; ``best.pt`` holds the checkpoint of the lowest validation
        loss so far (with ``val_data``).
    """
    perturb, model_cfg = perturb or PerturbConfig(), model_cfg or CRNNConfig()
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    os.makedirs(run_dir, exist_ok=True)
    last = os.path.join(run_dir, "last.pt")
    model, step, best, payload = AlignCRNN(model_cfg), 0, math.inf, None
    latency = 0.0
    if os.path.isfile(last):
        model, payload = load_crnn(last)
        latency = float(payload.get("label_latency", 0.0))
    elif init:
        model, start = load_crnn(init)
        latency = float(start.get("label_latency", 0.0))
        if model_cfg.local_head:  # widened: the new path starts at zero
            model = with_local_head(model, model_cfg.local_harmonics)
        if model_cfg.key_context:  # widened: the per-key temporal path's output is zero
            model = with_key_context(model, model_cfg.key_context, model_cfg.key_channels)
        if model_cfg.velocity:  # widened: the velocity channel's weights start at zero
            model = with_velocity(model)
        if model_cfg.plain_cqt:  # widened: the plain CQT's weights start at zero
            model = with_plain_cqt(model)
        log(f"initialised from {init}"
            + (f" (label latency {1000 * latency:.2f} ms)" if latency else ""))
    velocity, plain = model.config.velocity, model.config.plain_cqt
    stems, val_stems = list_items(data), list_items(val_data) if val_data else []
    check_labels(stems + val_stems)  # one label convention: at the sound
    ds = SegmentDataset(stems, cfg.frames, perturb, cfg.seed, velocity, plain, latency)
    val = _batch(SegmentDataset(val_stems, cfg.frames, perturb, 12345, velocity, plain,
                                latency), 16) if val_data else None
    groups = _param_groups(model, cfg)
    opt = torch.optim.Adam(groups, lr=cfg.lr)
    if payload is not None:
        opt.load_state_dict(payload["optimizer"])
        for group, fresh in zip(opt.param_groups, groups, strict=True):
            # this run's recipe sets the rates, as it does the schedule (the saved groups
            # hold the scale of the run that wrote them)
            group["scale"] = fresh.get("scale", 1.0)
        step, ds.rng = payload["step"], payload["rng"]
        ds.vel_rng = payload.get("vel_rng", ds.vel_rng)
        best = payload.get("best_val", math.inf)
        log(f"resumed from {last} at step {step}")
    model.train()
    t_start, running = time.time(), []
    while step < cfg.steps:
        check_interrupted()  # a signal whose exception a finaliser swallowed
        for group in opt.param_groups:
            group["lr"] = _lr(step, cfg) * group.get("scale", 1.0)
        x, y, pairs = _batch(ds, cfg.batch)
        loss = alignment_loss(model(x), y, pairs, cfg.radius, cfg.soft_onsets, cfg.focal)
        opt.zero_grad()
        loss["total"].backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        plain = _plain_slices(model) if cfg.plain_lr_scale != 1.0 else []
        before = [w.detach()[i].clone() for w, i in plain]
        opt.step()
        with torch.no_grad():
            for (w, i), b in zip(plain, before):
                w[i] += (cfg.plain_lr_scale - 1.0) * (w[i] - b)
        step += 1
        running.append(float(loss["total"].detach()))
        timeout = cfg.minutes > 0 and time.time() - t_start > 60 * cfg.minutes
        if step % cfg.save_every == 0 or step == cfg.steps or timeout:
            rec = {"step": step, "loss": float(np.mean(running)), "lr": _lr(step, cfg),
                   "val": _validate(model, val, cfg) if val else None,
                   "elapsed_s": round(time.time() - t_start, 1)}
            running = []
            improved = rec["val"] is not None and rec["val"] < best
            best = rec["val"] if improved else best
            state = dict(optimizer=opt.state_dict(), step=step, rng=ds.rng,
                         vel_rng=ds.vel_rng, best_val=best,
                         train_config=asdict(cfg), perturb=asdict(perturb),
                         label_latency=latency)  # the init's (0: targets at the sound)
            save_crnn(last, model, **state)
            if improved:
                save_crnn(os.path.join(run_dir, "best.pt"), model, **state)
            with open(os.path.join(run_dir, "log.jsonl"), "a") as f:
                f.write(json.dumps(rec) + "\n")
            log(json.dumps(rec))
        if timeout:
            break
    return last


def _plain_slices(model: AlignCRNN) -> list[tuple[torch.Tensor, tuple[slice | int, ...]]]:
    """The plain-CQT channel's weights: ``(tensor, index)`` of its slice in every tensor
    that reads the input channels (it is the last channel; none without it)."""
    if not model.config.plain_cqt:
        return []
    every, keys = slice(None), slice(-N_KEYS, None)
    out = [(model.block1[0].weight, (every, -1)), (model.proj[0].weight, (every, keys)),
           (model.head.weight, (every, keys))]
    if model.config.key_context:
        out.append((model.key_in.weight, (every, -1)))
    return out


def _param_groups(model: AlignCRNN, cfg: TrainConfig) -> list[dict[str, Any]]:
    """Adam's parameter groups: the per-key temporal path's weights (``key_*``) on their
    own, at ``cfg.key_lr_scale`` times the rate, when the network has that path."""
    key = [p for n, p in model.named_parameters() if n.startswith("key_")]
    rest = [p for n, p in model.named_parameters() if not n.startswith("key_")]
    if not key:
        return [{"params": rest}]
    return [{"params": rest, "scale": 1.0}, {"params": key, "scale": cfg.key_lr_scale}]


def export(train_ckpt: str, out: str, command: str = "") -> None:
    """Write the shipped form (float16 weights, config, recipe) of a training checkpoint."""
    model, payload = load_crnn(train_ckpt)
    if "train_config" not in payload:
        raise PianoSSMError(f"{train_ckpt!r} holds no training recipe")
    save_crnn(out, model, step=payload["step"], train_config=payload["train_config"],
              perturb=payload.get("perturb"), command=command,
              label_latency=float(payload.get("label_latency", 0.0)))


def average(ckpts: list[str], weights: list[float], out: str, command: str = "",
            label_latency: float | None = None) -> None:
    """Write the weighted average of CRNN checkpoints (a "model soup") in the shipped form.

    Parameters
    ----------
    ckpts : list of str
        Checkpoints of one architecture (training or shipped form); a network without the
        plain-CQT channel may join ones with it (:func:`with_plain_cqt`: its channel's
        weights count as zero, which is what it computes).
    weights : list of float
        One non-negative weight per checkpoint, summing to 1.
    out : str
        Destination (float16 weights; the config, widened when any checkpoint reads the
        plain CQT, and the training recipe of the last checkpoint).
    command : str
        The recipe to store.
    label_latency : float, optional
        Seconds from the ingredients' training labels to the sound they label (see
        :func:`pianossm.align.latency.mean_render_latency`; default: the last
        checkpoint's own, 0 when it has none).
    """
    w = check_soup_weights(weights, len(ckpts))
    models = [load_crnn(c) for c in ckpts]
    if any(m.config.plain_cqt for m, _ in models):
        models = [(with_plain_cqt(m), p) for m, p in models]
    if any(m.config != models[0][0].config for m, _ in models):
        raise PianoSSMError("cannot average checkpoints of different architectures")
    states = [m.state_dict() for m, _ in models]
    model, payload = models[-1]
    model.load_state_dict({k: sum(float(wi) * s[k] for wi, s in zip(w, states))
                           if v.is_floating_point() else v for k, v in states[-1].items()})
    if label_latency is None:
        label_latency = float(payload.get("label_latency", 0.0))
    if not (np.isfinite(label_latency) and 0.0 <= label_latency < 0.05):
        raise PianoSSMError(f"label_latency must be 0-0.05 s, got {label_latency!r}")
    save_crnn(out, model, step=payload.get("step"),
              train_config=payload.get("train_config"), perturb=payload.get("perturb"),
              command=command, label_latency=float(label_latency))
