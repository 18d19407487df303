"""Exponential moving average of the weights (Polyak averaging) for validation and shipping.

At batch 2 x 2 s the weights of neighbouring checkpoints differ by more than a point of
validation MSSL; the average over the last ``~1 / (1 - decay)`` steps is a steadier and
usually better model than any single step.  It is PyTorch's own
:class:`torch.optim.swa_utils.AveragedModel` with its EMA update
(``ema = decay * ema + (1 - decay) * weights`` after every optimizer step, the first update
copying the weights); the trainer validates it, saves it as ``best.pt`` and keeps its state
in ``last.pt`` so a resumed run continues the same average.
"""

from __future__ import annotations

from typing import Any

import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

__all__ = ["WeightEMA"]


class WeightEMA:
    """The EMA of ``model``'s parameters and buffers.

    Parameters
    ----------
    model : torch.nn.Module
        The trained model (copied once; the copy holds the average).
    decay : float
        Weight of the old average per update, in ``(0, 1)``.
    """

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        self.decay = decay
        self.averaged = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(decay),
                                      use_buffers=True)
        self.averaged.requires_grad_(False)

    @property
    def model(self) -> torch.nn.Module:
        """The averaged model (the same class as the trained one)."""
        return self.averaged.module

    @property
    def updates(self) -> int:
        """Updates so far (the first one copied the weights)."""
        return int(self.averaged.n_averaged.item())

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        """Fold ``model``'s current weights into the average."""
        self.averaged.update_parameters(model)

    def state_dict(self) -> dict[str, Any]:
        """The average and its update count (for ``last.pt``)."""
        return {"decay": self.decay, "state": self.averaged.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue an average saved by :meth:`state_dict`."""
        self.averaged.load_state_dict(state["state"])
