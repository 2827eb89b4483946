"""Code generators: one folder per target framework (keras/, pytorch/), sharing
backends/common.py. `BACKENDS` maps a backend's name to its module."""

from __future__ import annotations

import importlib

NAMES = ("keras", "torch")
_MODULES = {"keras": "backends.keras.generator", "torch": "backends.pytorch.generator"}


def get(name: str):
    """The generator module of a backend (imported on demand: no framework needed)."""
    return importlib.import_module(_MODULES[name])
