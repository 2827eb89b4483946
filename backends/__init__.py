"""Code generators: one folder per target framework (keras/, pytorch/), each a
subclass of backends/common.py's `Generator`. backends/registry.py declares them for
`archc build`; `NAMES` are their names and `get(name)` a backend's generator."""

from __future__ import annotations

from backends.registry import BY_NAME, NAMES

__all__ = ["NAMES", "get"]


def get(name: str):
    """A backend's generator (imported on demand: no framework needed)."""
    return BY_NAME[name].module().GENERATOR
