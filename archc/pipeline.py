"""The pass pipeline, on one screen:

    text --parse--> syntax tree --load includes--> program
         --expand--> IR graph --infer--> inferred IR --> report / backends

Every pass reports the user's mistakes as diagnostics (archc/diagnostics.py)
and raises `SpecError` at its end if there were any.
"""

from __future__ import annotations

import gc
from contextlib import contextmanager

from archc.diagnostics import Diagnostics, Sources, SpecError
from archc.ir import Model
from archc.passes.expand import build_ir, check_library, is_library, load
from archc.passes.infer import infer


@contextmanager
def no_gc():
    """Compiling allocates many small objects and no reference cycles worth
    collecting; the cyclic collector would only re-scan them (about 30% of
    the time of a 10,000-layer spec). Reference counting still frees memory."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def compile_spec(
    path: str,
    text: str | None = None,
    default_name: str | None = None,
    input_shape: tuple[int, ...] | None = None,
) -> Model:
    """Compile one .cnn file (or `text` under that name) to an inferred IR Model.
    A spec without a `model` line is named `default_name`, or else after its file.
    `input_shape` (H, W, C) or (N,) compiles it at another input size than its
    `input` line's."""
    with no_gc():
        diags = Diagnostics(Sources())
        program = load(path, diags, text)  # text -> syntax trees, includes resolved
        model = build_ir(program, diags, path, default_name, input_shape)  # blocks expanded
        return infer(model, diags)  # shapes, parameters, MACs, receptive fields


def check_spec(path: str) -> Model | list[str]:
    """Like compile_spec, but a file that only defines blocks (a library such as
    specs/stdlib.cnn) is checked for unknown names and gives its block names."""
    with no_gc():
        diags = Diagnostics(Sources())
        program = load(path, diags)
        if is_library(program):
            return check_library(program, diags)
        return infer(build_ir(program, diags, source=path), diags)


def compile_text(text: str, name: str = "spec", path: str = "<text>") -> Model:
    """Compile spec text. Without a `model` line the model is named `name`;
    diagnostics and `include`s refer to `path`."""
    return compile_spec(path, text, default_name=name)


__all__ = ["Model", "SpecError", "check_spec", "compile_spec", "compile_text"]
