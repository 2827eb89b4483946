"""Helpers shared by the tests."""

from __future__ import annotations

import importlib.util
import pathlib

from archc.diagnostics import SpecError
from archc.pipeline import compile_spec

SPECS = pathlib.Path(__file__).resolve().parent.parent / "specs"
HAS_KERAS = importlib.util.find_spec("keras") is not None
HAS_TORCH = importlib.util.find_spec("torch") is not None


def compile_str(text: str, name: str = "inline.cnn"):
    """Compile spec text as if it were a file in specs/ (so `include "stdlib.cnn"` works)."""
    return compile_spec(str(SPECS / name), text)


def errors(text: str, name: str = "inline.cnn") -> list:
    """The diagnostics a spec text produces (fails the test if it compiles)."""
    try:
        compile_str(text, name)
    except SpecError as e:
        return e.diagnostics
    raise AssertionError("the spec compiled, but errors were expected")


def error(text: str, name: str = "inline.cnn"):
    """The first diagnostic a spec text produces."""
    return errors(text, name)[0]


def same_ir(a, b) -> bool:
    """Equal graphs: the same nodes with the same fields, whatever their source lines."""

    def strip(m):
        return [n.model_dump(exclude={"loc"}) for n in m.nodes]

    return strip(a) == strip(b)


def node_table(model) -> list[tuple]:
    return [(n.name, n.kind, n.out_shape, n.trainable, n.nontrainable, n.macs) for n in model.nodes]
