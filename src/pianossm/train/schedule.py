"""Learning-rate schedule: linear warm-up, then cosine annealing with warm restarts."""

from __future__ import annotations

import math

import torch

__all__ = ["WarmupCosineRestarts", "lr_factor"]


def lr_factor(step: int, warmup: int, period: int, mult: float, min_ratio: float) -> float:
    """Multiplier of the base learning rate at ``step``.

    Parameters
    ----------
    step : int
        Optimiser steps taken so far.
    warmup : int
        Linear warm-up steps (from ``1/warmup`` to 1).
    period : int
        Length of the first cosine cycle after warm-up.
    mult : float
        Growth of each later cycle (``>= 1``).
    min_ratio : float
        Floor of the cosine as a fraction of the base rate.

    Returns
    -------
    float
    """
    if step < warmup:
        return (step + 1) / warmup
    t, length = step - warmup, float(period)
    while t >= length:  # find the current cycle
        t -= length
        length *= max(mult, 1.0)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * t / length))


class WarmupCosineRestarts(torch.optim.lr_scheduler.LRScheduler):
    """``lr = base_lr * lr_factor(step, ...)``; its state is only ``last_epoch``, so it
    resumes exactly from ``state_dict``.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, warmup: int, period: int,
                 mult: float = 2.0, min_ratio: float = 0.01) -> None:
        self.warmup, self.period, self.mult, self.min_ratio = warmup, period, mult, min_ratio
        super().__init__(optimizer)

    def get_lr(self) -> list[float]:
        """Rates of every parameter group at the current step."""
        f = lr_factor(self.last_epoch, self.warmup, self.period, self.mult, self.min_ratio)
        return [base * f for base in self.base_lrs]
