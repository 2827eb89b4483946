"""Code generators: one folder per target framework (keras/, pytorch/), each a
subclass of backends/common.py's `Generator`. `get(name)` is a backend's generator."""

from __future__ import annotations

import importlib

NAMES = ("keras", "torch")
_MODULES = {"keras": "backends.keras.generator", "torch": "backends.pytorch.generator"}


def get(name: str):
    """A backend's generator (imported on demand: no framework needed)."""
    return importlib.import_module(_MODULES[name]).GENERATOR
