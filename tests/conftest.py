"""Shared fixtures: a seeded rng, the optional shared reference folder, and a packed-weights
cache of the session's own."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    """``$PIANO_SSM_SHARED`` or ``../shared`` next to the repository."""
    return Path(os.environ.get("PIANO_SSM_SHARED", REPO.parent / "shared"))


@pytest.fixture(scope="session", autouse=True)
def packed_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One packed-weights cache per test session (not the user's), subprocesses included."""
    path = tmp_path_factory.mktemp("packed-cache")
    before = os.environ.get("PIANOSSM_CACHE_DIR")
    os.environ["PIANOSSM_CACHE_DIR"] = str(path)
    yield path
    if before is None:
        os.environ.pop("PIANOSSM_CACHE_DIR", None)
    else:
        os.environ["PIANOSSM_CACHE_DIR"] = before


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
