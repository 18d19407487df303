"""Datasets: the built-in FluidSynth dataset, MAESTRO and MAPS loaders, and the training cache."""

from pianossm.data.cache import AudioCache, Item, build_cache

__all__ = ["AudioCache", "Item", "build_cache"]
