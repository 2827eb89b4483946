"""Code generators: one folder per target framework (keras/, pytorch/), sharing
backends/common.py. backends/registry.py declares them; `NAMES` and `get` are its
names and generator modules."""

from __future__ import annotations

from backends.registry import BY_NAME, NAMES

__all__ = ["NAMES", "get"]


def get(name: str):
    """The generator module of a backend (imported on demand: no framework needed)."""
    return BY_NAME[name].module()
