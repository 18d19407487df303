"""Training state on disk: :class:`CheckpointMixin` gives the trainer ``save`` and
``resume`` (model, optimizer, scheduler, numpy and torch RNG states, step, best loss), so a
resumed run draws the same crops and takes the same updates as an uninterrupted one."""

from __future__ import annotations

import json
from typing import Any

import torch

from pianossm.errors import PianoSSMError
from pianossm.train.logs import trim_metrics

__all__ = ["CheckpointMixin"]


class CheckpointMixin:
    """``save``/``resume`` for :class:`pianossm.train.trainer.Trainer` (uses its ``model``,
    ``optimizer``, ``scheduler``, ``rng``, ``step``, ``best``, ``rank`` and ``cfg``, and
    calls its ``_phase_setup`` to rebuild the optimizer of the resumed phase)."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    rng: Any
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
            save_checkpoint(path, self.model, optimizer=self.optimizer.state_dict(),
                            scheduler=self.scheduler.state_dict(), step=self.step,
                            rng=self._rng_state(), best=self.best,
                            train_config=self.cfg.to_dict())

    def resume(self, path: str) -> None:
        """Continue from a checkpoint written by :meth:`save`."""
        from pianossm.checkpoint import load_checkpoint

        payload = load_checkpoint(path)
        if "optimizer" not in payload or "step" not in payload:
            raise PianoSSMError(f"checkpoint {path!r} holds no training state to resume")
        self.model.load_state_dict(payload["model"])
        self.step = int(payload["step"])
        self.best = float(payload.get("best", float("inf")))
        self._phase_setup()
        self.optimizer.load_state_dict(payload["optimizer"])
        self.scheduler.load_state_dict(payload["scheduler"])
        self.rng.bit_generator.state = json.loads(payload["rng"]["numpy"])
        torch.set_rng_state(payload["rng"]["torch"])
        self._trim_metrics()

    def _trim_metrics(self) -> None:
        """Drop metric lines written after the resumed step (they will be redone)."""
        if self.rank == 0:
            trim_metrics(self.cfg.out, self.step)
