"""The training loop: random crops from the cache, SMML then MSSL fine-tuning, exact resume.

A run lives in one folder (``TrainConfig.out``)::

    last.pt        everything needed to continue: model, optimizer, scheduler, numpy and
                   torch RNG states, step (written atomically every ``ckpt_every`` steps)
    best.pt        the model with the lowest validation MSSL so far
    metrics.jsonl  one line per logged step and per validation
    tb/            TensorBoard scalars, audio examples and spectrogram images

``--features`` picks the input layout (:mod:`pianossm.features`; the cache must hold it)
and ``--init CKPT`` starts a new run (step 0, fresh optimizer) from a checkpoint's
weights, widening a ``roll`` model's input to ``roll+onset+pedal`` with zero weights for
the new channels (:mod:`pianossm.train.warmstart`).

Resuming reloads ``last.pt`` and continues with the same crops and the same updates, so
the loss curve is the one an uninterrupted run draws.  Under ``torchrun`` every rank
keeps the same crop RNG, draws ``batch * world`` crops and trains on its own slice
(DistributedDataParallel averages the gradients, so with the MSSL loss ``N`` ranks of
``--batch B`` take the same steps as one process with ``--batch N*B``); the logged losses
are averaged over ranks, validation windows are shared out between them, and only rank 0
writes.

``--amp bf16`` runs the real matmuls (input and output projections, skips, heads) under
autocast while the discretisation and the complex scan stay float32/complex64
(:func:`mixed_forward`).  ``--alias-reg W`` adds ``W *`` :func:`pianossm.alias.alias_penalty`
to the loss; the penalty and the count of eigenvalues aliased at the lowest
``--alias-rates`` rate are logged either way.
"""


from __future__ import annotations

import os
import sys
import time
from typing import Any

import numpy as np
import torch

from pianossm.errors import PianoSSMError, check_interrupted
from pianossm.train.config import TrainConfig
from pianossm.train.logs import append_metrics, spectrogram_figure, tensorboard_writer
from pianossm.train.parts import (AMP_DTYPES, EIGENVALUE_SUFFIXES, TrainForward, alias_stats,
                                  bound_decay, keyboard_init, mixed_forward, open_cache,
                                  param_groups, piano_eigenvalues)
from pianossm.train.schedule import WarmupCosineRestarts
from pianossm.train.state import CheckpointMixin

__all__ = ["AMP_DTYPES", "EIGENVALUE_SUFFIXES", "TrainForward", "Trainer", "alias_stats",
           "mixed_forward", "open_cache", "param_groups"]


def note_onsets(feats: torch.Tensor, features: str) -> torch.Tensor:
    """Where notes start, per MIDI frame, from model input features.

    Parameters
    ----------
    feats : torch.Tensor
        ``(B, F, C)`` input in layout ``features`` (see :mod:`pianossm.features`).
    features : str
        ``roll+onset+pedal``: the onset channels (88-175) summed over keys; ``roll``: the
        roll's rises summed over keys (a re-strike under the pedal does not show there).

    Returns
    -------
    torch.Tensor
        ``(B, F)``, nonzero on frames where a note starts (or its onset box lasts).
    """
    from pianossm.features import N_KEYS

    if features == "roll":
        roll = feats[..., :N_KEYS]
        rise = torch.relu(torch.diff(roll, dim=1, prepend=torch.zeros_like(roll[:, :1])))
        return rise.sum(-1)
    return feats[..., N_KEYS:2 * N_KEYS].sum(-1)


class Trainer(CheckpointMixin):
    """One training run described by a :class:`TrainConfig`.

    Parameters
    ----------
    cfg : TrainConfig
        The run's settings.
    progress : bool
        Show a tqdm bar (rank 0 only).
    load_init : bool
        Load ``cfg.init``'s weights (``False`` when the run is about to be resumed).
    """

    def __init__(self, cfg: TrainConfig, progress: bool = True, load_init: bool = True) -> None:
        from pianossm.config import preset
        from pianossm.features import frame_hop
        from pianossm.model import PianoSSM

        cfg.check()
        self.cfg = cfg
        if cfg.device == "cpu":
            from pianossm.train.shards import keep_freed_memory

            keep_freed_memory()  # see its docstring: faster CPU steps; before threads start
        torch.set_num_threads(cfg.threads)
        self.rank, self.world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
        self.device = torch.device(cfg.device)
        if self.world > 1:
            self._init_distributed()
        self.cache = open_cache(cfg.data)
        if self.cache.sample_rate != cfg.sample_rate:
            raise PianoSSMError(f"data cache {self.cache.path!r} is at {self.cache.sample_rate} Hz, "
                                f"not --sample-rate {cfg.sample_rate}; build it at that rate")
        self.cache.require(cfg.features)  # the model's input layout, or a clear error
        self.hop = frame_hop(cfg.sample_rate)
        changes: dict[str, Any] = {"train_sample_rate": cfg.sample_rate,
                                   "heads": tuple(self.cache.heads),
                                   "audio_mean": self.cache.index["audio_mean"],
                                   "audio_std": self.cache.index["audio_std"],
                                   "input_delay_ms": cfg.input_delay_ms}
        if cfg.d_state:
            changes.update(d_state=cfg.d_state, preset="custom")
        if cfg.alias_bound:  # the aliasing-aware parameterisation (PianoSSMConfig.max_mode_hz)
            changes["max_mode_hz"] = cfg.alias_margin * min(cfg.alias_rate_list()) / 2
        torch.manual_seed(cfg.seed)
        config = preset(cfg.preset, **changes).with_features(cfg.features)
        self.model = PianoSSM(config).to(self.device)
        #: The model's input delay in frames of the cache, applied to every crop.
        self.delay = config.delay_frames(cfg.sample_rate / self.hop)
        if cfg.eig_init == "piano":
            gen = torch.Generator().manual_seed(cfg.seed)
            for block in self.model.blocks:
                block.ssm.set_eigenvalues(piano_eigenvalues(block.ssm.d_state, cfg.sample_rate,
                                                            gen))
        elif cfg.eig_init == "keys":
            keyboard_init(self.model, cfg.sample_rate, torch.Generator().manual_seed(cfg.seed))
        if cfg.init and load_init:
            from pianossm.train.warmstart import warm_start

            warm_start(self.model, cfg.init)
        self.model.set_scan(cfg.scan)
        from pianossm.ssm import scan_backend

        #: The recurrence the training forward runs (``compiled`` or ``chunked``), logged.
        self.scan_path = scan_backend(self.model, self.device)
        #: Batch slices trained on their own threads (``--threads`` on the compiled CPU
        #: path, one process; :mod:`pianossm.train.shards`), else 1.
        self.slices = (min(cfg.threads, cfg.batch) if cfg.threads > 1 and self.world == 1
                       and self.scan_path == "compiled" else 1)
        if self.rank == 0:
            split = f", batch split over {self.slices} threads" if self.slices > 1 else ""
            print(f"training scan: {self.scan_path} ({cfg.threads} thread(s), "
                  f"device {self.device}{split})", file=sys.stderr)
        self.net: torch.nn.Module = TrainForward(self.model, cfg.amp)
        if self.world > 1:
            self.net = torch.nn.parallel.DistributedDataParallel(self.net)
        self.alias_rates = cfg.alias_rate_list()
        from pianossm.train.ema import WeightEMA

        #: The weight average that is validated and saved as ``best.pt`` (``--ema``).
        self.ema = WeightEMA(self.model, cfg.ema) if cfg.ema > 0 else None
        self.rng = np.random.default_rng(cfg.seed)
        self.step = 0
        self.best = float("inf")
        self.progress = progress and self.rank == 0
        self._phase_setup()
        self.writer = None

    # -- setup ---------------------------------------------------------------------
    def _init_distributed(self) -> None:
        import torch.distributed as dist

        backend = "nccl" if self.cfg.device.startswith("cuda") else "gloo"
        dist.init_process_group(backend)
        if self.cfg.device.startswith("cuda"):
            self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
            torch.cuda.set_device(self.device)

    def _phase(self) -> str:
        return "main" if self.step < self.cfg.steps else "finetune"

    def _phase_schedule(self) -> tuple[float, tuple[int, int, float, float]]:
        """Base rate and ``(warmup, period, mult, min_ratio)`` of the current phase's
        :class:`WarmupCosineRestarts` (fine-tuning: a constant rate)."""
        cfg = self.cfg
        if self._phase() == "main":
            return cfg.lr, (cfg.warmup_steps, cfg.restart_steps, cfg.restart_mult,
                            cfg.min_lr_ratio)
        return cfg.finetune_lr, (0, 1, 1.0, 1.0)

    def _phase_setup(self) -> None:
        """Optimizer, schedule and loss of the current phase."""
        from pianossm.losses import MSSL, SMML, AttackLoss, EnvelopeLoss, FluxLoss, PitchLoss

        cfg = self.cfg
        self.phase = self._phase()
        main = self.phase == "main"
        groups = param_groups(self.model, cfg.weight_decay, cfg.decay_eigenvalues)
        base, schedule = self._phase_schedule()
        groups[1]["lr"] = base * cfg.eig_lr_mult  # the eigenvalues (the schedule scales it)
        self.optimizer = torch.optim.Adam(groups, lr=base)
        self.scheduler = WarmupCosineRestarts(self.optimizer, *schedule)
        name = cfg.loss if main else "mssl"
        rate = cfg.sample_rate
        self.loss_fn = (SMML(rate) if name == "smml" else MSSL(rate)).to(self.device)
        #: The terms added to the loss, in order: (record key, weight, module).
        self.terms = [(name, weight, make().to(self.device)) for name, weight, make in (
            ("envelope", cfg.env_weight, lambda: EnvelopeLoss(rate)),
            ("flux", cfg.flux_weight, lambda: FluxLoss(rate)),
            ("attack", cfg.attack_weight, lambda: AttackLoss(rate, self.hop)),
            ("pitch", cfg.pitch_weight, lambda: PitchLoss(rate))) if weight > 0]
        self.val_loss = MSSL(rate)

    # -- one step ------------------------------------------------------------------
    def train_step(self) -> dict[str, float]:
        """Draw a batch, update once.

        Returns
        -------
        dict
            The loss parts (averaged over ranks), ``alias_penalty`` and ``aliased`` (the
            model before this update), and the learning rate used, as floats.
        """
        cfg = self.cfg
        feats, audio, heads = self.cache.sample_crops(self.rng, cfg.batch * self.world,
                                                      cfg.crop_seconds, features=cfg.features,
                                                      delay=self.delay)
        part = slice(self.rank * cfg.batch, (self.rank + 1) * cfg.batch)
        dtype = self.model.heads.weight.dtype  # float32 (float64 where a test asks for it)
        feats = torch.from_numpy(feats[part]).to(self.device, dtype)
        audio = torch.from_numpy(audio[part]).to(self.device, dtype)
        heads = torch.from_numpy(heads[part]).to(self.device)
        self.net.train()
        with torch.set_grad_enabled(cfg.alias_reg > 0):
            penalty, aliased = alias_stats(self.model, cfg.sample_rate, self.alias_rates,
                                           cfg.alias_margin)
        self.optimizer.zero_grad(set_to_none=True)
        if self.slices > 1:  # the batch's slices on threads (train/shards.py)
            from pianossm.train.shards import batch_slices, sharded_backward

            params = [p for p in self.model.parameters() if p.requires_grad]
            parts = sharded_backward(lambda sl: self._loss(feats[sl], audio[sl], heads[sl]),
                                     batch_slices(feats.shape[0], self.slices),
                                     feats.shape[0], params)
            if cfg.alias_reg > 0:
                (cfg.alias_reg * penalty).backward()
        else:
            objective, parts = self._loss(feats, audio, heads)
            if cfg.alias_reg > 0:
                objective = objective + cfg.alias_reg * penalty
            objective.backward()
        if cfg.grad_clip > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        lr = self.optimizer.param_groups[0]["lr"]
        self.optimizer.step()
        if cfg.max_decay > 0:
            bound_decay(self.model, cfg.max_decay, cfg.sample_rate)
        if self.ema is not None:
            self.ema.update(self.model)
        self.scheduler.step()
        self.step += 1
        if self.step == cfg.steps and cfg.finetune_steps:
            self._phase_setup()
        values = self._mean_over_ranks({k: v.detach() for k, v in parts.items()})
        return values | {"alias_penalty": penalty.item(), "aliased": float(aliased), "lr": lr}

    def _loss(self, feats: torch.Tensor, audio: torch.Tensor, heads: torch.Tensor,
              ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Forward and training loss of ``(B, F, C)`` features against ``(B, T)`` audio.

        Returns
        -------
        objective : torch.Tensor
            Scalar: the loss (with ``--env-weight``'s envelope, ``--flux-weight``'s flux,
            ``--attack-weight``'s attack and ``--pitch-weight``'s pitch terms), without the
            alias penalty.
        parts : dict
            Its named parts (scalars).
        """
        pred = self.net(feats, self.hop, heads)
        parts = self.loss_fn(pred, audio)
        for name, weight, term in self.terms:
            onsets = (note_onsets(feats, self.cfg.features),) if name == "attack" else ()
            value = term(pred, audio, *onsets)["loss"]
            parts = parts | {name: value, "loss": parts["loss"] + weight * value}
        return parts["loss"], parts

    def _mean_over_ranks(self, parts: dict[str, torch.Tensor]) -> dict[str, float]:
        """Scalar tensors averaged over the ranks (one all-reduce), as floats."""
        if self.world == 1:
            return {k: v.item() for k, v in parts.items()}
        import torch.distributed as dist

        stacked = torch.stack([v.double() for v in parts.values()])  # (P,)
        dist.all_reduce(stacked)
        return dict(zip(parts, (stacked / self.world).tolist()))

    def eval_model(self) -> torch.nn.Module:
        """The model that is validated and saved as ``best.pt``: the weight average with
        ``--ema``, else the trained model."""
        return self.ema.model if self.ema is not None else self.model

    @torch.no_grad()
    def validate(self, model: torch.nn.Module | None = None) -> float:
        """Mean MSSL over the validation windows (model in eval mode).

        The first ``val_max_windows`` windows of ``val_seconds`` (every window when 0) of
        the validation split (the test split when there is none); under ``torchrun`` each
        rank scores every ``world``-th window and the sums are all-reduced.

        Parameters
        ----------
        model : torch.nn.Module, optional
            The model to score (default :meth:`eval_model`).

        Returns
        -------
        float
            Mean MSSL per window.
        """
        split = "validation" if self.cache.split("validation") else "test"
        windows = self.cache.windows(split, self.cfg.val_seconds)
        if not windows:
            raise PianoSSMError(f"cache {self.cache.path!r} has no {split!r} windows to "
                                f"validate on; lower --val-seconds")
        windows = windows[:self.cfg.val_max_windows or None]
        total = torch.zeros((), dtype=torch.float64, device=self.device)  # NCCL: on the GPU
        model = self.eval_model() if model is None else model
        for item, first, n in windows[self.rank::self.world]:
            pred, ref = self._window(item, first, n, model)
            total += self.val_loss(pred, ref)["loss"].item()
        if self.world > 1:
            import torch.distributed as dist

            dist.all_reduce(total)
        return float(total) / len(windows)

    @torch.no_grad()
    def _window(self, item: int, first: int, n: int, model: torch.nn.Module | None = None,
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """The model's audio for one window from zero state, and the reference.

        Parameters
        ----------
        item, first, n : int
            Cache item, first frame, frames.
        model : torch.nn.Module, optional
            Default :meth:`eval_model`.

        Returns
        -------
        pred, ref : torch.Tensor
            ``(n * hop,)`` each, on the CPU, in the model's dtype.
        """
        feats, ref = self.cache.segment(item, first, n, self.cfg.features, self.delay)
        model = self.eval_model() if model is None else model
        dtype = model.heads.weight.dtype
        head = self.cache.heads.index(self.cache.items[item]["head"])
        model.eval()
        pred = model(torch.from_numpy(feats)[None].to(self.device, dtype), self.hop, 1.0,
                     head)[0]
        return pred.cpu(), torch.from_numpy(ref).to(dtype)

    # -- the loop ------------------------------------------------------------------
    def run(self, until: int | None = None) -> list[dict[str, float]]:
        """Train to ``cfg.total_steps()`` (or stop after step ``until``, saving ``last.pt``
        as an interruption would leave it); returns the per-step records of this call."""
        from tqdm import tqdm

        cfg = self.cfg
        total = cfg.total_steps()
        stop = min(total, until) if until is not None else total
        if self.rank == 0:
            os.makedirs(cfg.out, exist_ok=True)
            self.writer = tensorboard_writer(os.path.join(cfg.out, "tb"))
        history: list[dict[str, float]] = []
        bar = tqdm(total=total, initial=self.step, desc="train", disable=not self.progress)
        seconds_per_step = cfg.batch * self.world * cfg.crop_seconds
        t0, s0 = time.perf_counter(), self.step
        while self.step < stop:
            check_interrupted()  # a signal whose exception a finaliser swallowed
            rec = self.train_step() | {"step": self.step}
            self._check_finite("training loss", rec["loss"])
            history.append(rec)
            speed = (self.step - s0) * seconds_per_step / (time.perf_counter() - t0)
            bar.update(1)
            bar.set_postfix(loss=f"{rec['loss']:.3f}", audio_s_per_s=f"{speed:.2f}")
            if self.step % cfg.log_every == 0:
                self._log(rec | {"audio_s_per_s": speed}, "train")
            if self.step % cfg.val_every == 0 or self.step == total:
                val = self.validate()
                self._check_finite("validation MSSL", val)
                rec["val_mssl"] = val
                self._log({"step": self.step, "val_mssl": val}, "val")
                if val < self.best:
                    self.best = val
                    if self.rank == 0:
                        from pianossm.checkpoint import save_checkpoint

                        save_checkpoint(os.path.join(cfg.out, "best.pt"), self.eval_model(),
                                        step=self.step, val_mssl=val)
                self._examples()
                if self.rank == 0:
                    bar.write(f"step {self.step}: validation MSSL {val:.4f} "
                              f"(best {self.best:.4f})")
            if self.step % cfg.ckpt_every == 0 or self.step in (total, stop):
                self.save(os.path.join(cfg.out, "last.pt"))
        bar.close()
        if self.writer is not None:
            self.writer.close()
        if self.world > 1 and self.step >= total:
            import torch.distributed as dist

            dist.barrier()  # rank 0 has written last.pt when every rank returns
            dist.destroy_process_group()
        return history

    def _check_finite(self, what: str, value: float) -> None:
        """Stop a diverged run with one clear error (last.pt keeps the last finite state)."""
        if not np.isfinite(value):
            raise PianoSSMError(f"training diverged at step {self.step}: the {what} is "
                                f"{value} (learning rate too high, or a damaged checkpoint?)")

    def _log(self, rec: dict[str, float], kind: str) -> None:
        if self.rank == 0:
            append_metrics(self.cfg.out, rec, kind, self.writer, self.step)

    def _examples(self) -> None:
        """TensorBoard audio and spectrogram images of the first validation window."""
        if self.writer is None:
            return
        split = "validation" if self.cache.split("validation") else "test"
        pred_t, ref_t = self._window(*self.cache.windows(split, self.cfg.val_seconds)[0])
        pred, ref = pred_t.float().numpy(), ref_t.float().numpy()
        rate = self.cfg.sample_rate
        self.writer.add_audio("val/prediction", torch.from_numpy(np.clip(pred, -1, 1))[None],
                              self.step, rate)
        self.writer.add_audio("val/reference", torch.from_numpy(ref)[None], self.step, rate)
        self.writer.add_figure("val/spectrograms", spectrogram_figure(pred, ref, rate),
                               self.step)
