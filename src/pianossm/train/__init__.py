"""Training: configuration, learning-rate schedule and the training loop."""

from pianossm.train.config import TrainConfig
from pianossm.train.trainer import Trainer

__all__ = ["TrainConfig", "Trainer"]
