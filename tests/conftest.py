"""Shared fixtures: a seeded rng and the optional shared reference folder."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    """``$PIANO_SSM_SHARED`` or ``../shared`` next to the repository."""
    return Path(os.environ.get("PIANO_SSM_SHARED", REPO.parent / "shared"))


@pytest.fixture
def rng() -> np.random.Generator:
    torch.manual_seed(1234)
    return np.random.default_rng(1234)


@pytest.fixture
def official_dir() -> Path:
    path = shared_dir() / "reference" / "official-piano-ssm"
    if not (path / "checkpoints").is_dir():
        pytest.skip(f"published checkpoints not found under {path}")
    return path
