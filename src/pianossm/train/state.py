"""Training state on disk: :class:`CheckpointMixin` gives the trainer ``save`` and
``resume`` (model, optimizer, scheduler, numpy and torch RNG states, step, best loss), so a
resumed run draws the same crops and takes the same updates as an uninterrupted one."""

from __future__ import annotations

import copy
import json
import os
from typing import Any

import torch

from pianossm.errors import PianoSSMError
from pianossm.train.logs import trim_metrics

__all__ = ["RESUME_MAY_CHANGE", "RESUME_OBJECTIVE", "RESUME_SCHEDULE", "RESUME_VALIDATION",
           "CheckpointMixin", "check_resume_config"]


#: Learning-rate schedule fields a resumed run may change: from the resumed step on, the
#: rate follows the schedule of the new values at the same step count (a lower rate for a
#: run that has become unstable, a longer cosine for a run that keeps improving).  The
#: per-step ``lr`` in ``metrics.jsonl`` records what each step used.
RESUME_SCHEDULE = frozenset({"lr", "warmup_steps", "restart_steps", "restart_mult",
                             "min_lr_ratio", "finetune_lr"})

#: Fields a resumed run may change: how long it runs, how often it logs, validates and
#: saves, where its files live, how it computes (same numbers), and its learning-rate
#: schedule (:data:`RESUME_SCHEDULE`).  Any other difference (batch, losses, model size,
#: seed, ...) would silently mix two runs.
#: Validation fields a resumed run may change: the kept best checkpoint (``best.pt``) is
#: then scored again with the new validation, so later checkpoints are compared with it on
#: the same windows.
RESUME_VALIDATION = frozenset({"val_seconds", "val_max_windows"})

#: Objective fields a resumed run may change from the resumed step on: an extra term of the
#: training loss, the bound on the modes' decay times, or the model's input delay (its
#: weights then learn the new one; validation, and so ``best.pt``'s ranking, stays the MSSL).
RESUME_OBJECTIVE = frozenset({"env_weight", "flux_weight", "attack_weight", "pitch_weight",
                              "max_decay", "input_delay_ms"})

#: ``init`` (``--init``) sets only the weights of step 0, so a resumed run may leave it
#: out (or name a file that has since moved).  ``features`` (the input layout) may not.
RESUME_MAY_CHANGE = frozenset({"steps", "finetune_steps", "val_every", "ckpt_every",
                               "log_every", "threads", "device", "scan", "out", "data",
                               "init"}) | RESUME_SCHEDULE | RESUME_VALIDATION | RESUME_OBJECTIVE


def check_resume_config(path: str, saved: dict[str, Any] | None, now: dict[str, Any]) -> None:
    """Refuse a resume whose config differs from the checkpoint's outside
    :data:`RESUME_MAY_CHANGE`, naming each differing field with both values.

    Parameters
    ----------
    path : str
        The checkpoint (for the message).
    saved : dict or None
        Its ``train_config`` (``None``: an old checkpoint without one, not checked).
    now : dict
        The config of this run.
    """
    if not isinstance(saved, dict):
        return
    diffs = [f"{k} {saved.get(k)!r} -> {now.get(k)!r}" for k in sorted(set(saved) | set(now))
             if k not in RESUME_MAY_CHANGE and k in saved and saved.get(k) != now.get(k)]
    if diffs:
        raise PianoSSMError(f"cannot resume from {path!r} with a changed config: "
                            f"{'; '.join(diffs)} (only {', '.join(sorted(RESUME_MAY_CHANGE))} "
                            "may change; use --force to start over)")


class CheckpointMixin:
    """``save``/``resume`` for :class:`pianossm.train.trainer.Trainer` (uses its ``model``,
    ``optimizer``, ``scheduler``, ``ema``, ``rng``, ``step``, ``best``, ``rank`` and ``cfg``, and
    calls its ``_phase_setup`` and ``_phase_schedule`` to rebuild the optimizer and schedule
    of the resumed phase)."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    rng: Any
    ema: Any
    step: int
    best: float
    rank: int
    cfg: Any

    def _rng_state(self) -> dict[str, Any]:
        state = self.rng.bit_generator.state
        return {"numpy": json.dumps(state), "torch": torch.get_rng_state()}

    def save(self, path: str) -> None:
        """Write the full training state (rank 0 only)."""
        from pianossm.checkpoint import save_checkpoint

        if self.rank == 0:
            extra = {} if self.ema is None else {"ema": self.ema.state_dict()}
            save_checkpoint(path, self.model, optimizer=self.optimizer.state_dict(),
                            scheduler=self.scheduler.state_dict(), step=self.step,
                            rng=self._rng_state(), best=self.best,
                            train_config=self.cfg.to_dict(), **extra)

    def resume(self, path: str) -> None:
        """Continue from a checkpoint written by :meth:`save`."""
        from pianossm.checkpoint import load_checkpoint

        payload = load_checkpoint(path)
        if not all(k in payload for k in ("optimizer", "scheduler", "step", "rng")):
            raise PianoSSMError(f"checkpoint {path!r} holds no training state to resume")
        check_resume_config(path, payload.get("train_config"), self.cfg.to_dict())
        try:
            self.model.load_state_dict(payload["model"])
            self.step = int(payload["step"])
            self.best = float(payload.get("best", float("inf")))
            self._phase_setup()
            self.optimizer.load_state_dict(payload["optimizer"])
            self.scheduler.load_state_dict(payload["scheduler"])
            self._apply_schedule()
            if self.ema is not None and "ema" in payload:  # else it starts from these weights
                self.ema.load_state_dict(payload["ema"])
            self.rng.bit_generator.state = json.loads(payload["rng"]["numpy"])
            torch.set_rng_state(payload["rng"]["torch"])
        except (RuntimeError, KeyError, TypeError, ValueError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise PianoSSMError(f"cannot resume from {path!r}: its training state does not "
                                f"fit this run ({first})") from None
        saved = payload.get("train_config") or {}
        if any(k in saved and saved[k] != getattr(self.cfg, k) for k in RESUME_VALIDATION):
            self._rescore_best()
        self._trim_metrics()

    def _rescore_best(self) -> None:
        """Score ``best.pt`` with this run's (changed) validation, keep that as the best
        loss and rewrite ``best.pt``'s ``val_mssl`` with it; without a ``best.pt`` the best
        loss starts over."""
        from pianossm.checkpoint import load_checkpoint, save_checkpoint

        path = os.path.join(self.cfg.out, "best.pt")
        if not os.path.isfile(path):
            self.best = float("inf")
            return
        kept_model = copy.deepcopy(self.model)  # the trained model stays as resumed
        try:
            kept = load_checkpoint(path)
            kept_model.load_state_dict(kept["model"])
        except (RuntimeError, KeyError) as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
            raise PianoSSMError(f"cannot re-score {path!r} with the changed validation: "
                                f"its model does not fit this run ({first})") from None
        self.best = self.validate(kept_model)
        if self.rank == 0:
            save_checkpoint(path, kept_model, step=kept.get("step"), val_mssl=self.best)
        if self.rank == 0:
            print(f"validation changed: {path} re-scored, validation MSSL {self.best:.4f}",
                  flush=True)

    def _apply_schedule(self) -> None:
        """Re-derive the rates of the resumed step from this run's schedule fields (the
        loaded scheduler state carries the saved run's; they may differ, see
        :data:`RESUME_SCHEDULE`)."""
        sched = self.scheduler
        base, params = self._phase_schedule()
        sched.warmup, sched.period, sched.mult, sched.min_ratio = params
        sched.base_lrs = [base] * len(self.optimizer.param_groups)
        for group, lr in zip(self.optimizer.param_groups, sched.get_lr()):
            group["initial_lr"], group["lr"] = base, lr
        sched._last_lr = [g["lr"] for g in self.optimizer.param_groups]

    def _trim_metrics(self) -> None:
        """Drop metric lines written after the resumed step (they will be redone)."""
        if self.rank == 0:
            trim_metrics(self.cfg.out, self.step)
