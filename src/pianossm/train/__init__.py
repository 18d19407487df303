"""Training: configuration, learning-rate schedule and the training loop.

:class:`Trainer` is imported on first use, so reading a :class:`TrainConfig` (the
command-line parser does) does not import torch.
"""

from __future__ import annotations

from typing import Any

from pianossm.train.config import TrainConfig

__all__ = ["TrainConfig", "Trainer"]


def __getattr__(name: str) -> Any:
    """``Trainer`` on first access (PEP 562)."""
    if name == "Trainer":
        from pianossm.train.trainer import Trainer

        return Trainer
    raise AttributeError(f"module 'pianossm.train' has no attribute {name!r}")
