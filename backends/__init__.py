"""Generators: one folder per target (keras/, pytorch/, onnx/). The source backends
(keras, torch) are subclasses of backends/common.py's `Generator`; onnx writes a
binary model. backends/registry.py declares them for `archc build`; `NAMES` are their
names, `SOURCES` those of the source backends, and `get(name)` a backend's generator."""

from __future__ import annotations

from backends.registry import BY_NAME, NAMES, SOURCES

__all__ = ["NAMES", "SOURCES", "get"]


def get(name: str):
    """A backend's generator (imported on demand: no framework needed)."""
    return BY_NAME[name].module().GENERATOR
