"""The backends `archc build` generates for: one descriptor per backend (its name, its
generator module, its output folder, the generated file's suffix and what a user calls in
it), which the command line iterates. Adding a backend (ONNX comes next) is a generator
module beside the others and one row in `BACKENDS`: nothing outside backends/ names it.

Generator modules are imported on demand, so listing the backends needs no framework."""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from archc.ir import Model


@dataclass(frozen=True)
class Backend:
    """What `archc build` knows about one backend."""

    name: str  # as `--backend` spells it
    generator: str  # the module whose generate(model) returns the module's source text
    folder: str  # where `archc build` writes by default: generated/<folder>/
    suffix: str  # the generated file's suffix
    entry: Callable[[ModuleType, Model], str]  # (generator, model) -> what a user calls

    def module(self) -> ModuleType:
        return importlib.import_module(self.generator)

    def generate(self, model: Model) -> str:
        return self.module().generate(model)

    def out_dir(self, output: str | None, several: bool) -> str:
        """The folder this backend writes to: `-o DIR` (DIR/<folder>/ when several
        backends are built at once), else generated/<folder>/."""
        if output:
            return os.path.join(output, self.folder) if several else output
        return os.path.join("generated", self.folder)

    def target(self, out_dir: str, model: Model) -> str:
        """The file the model's generated source goes to."""
        return os.path.join(out_dir, model.name + self.suffix)

    def write(self, out_dir: str, model: Model, source: str) -> str:
        """Write the source to target(out_dir, model), atomically and safely."""
        from backends.common import write_module  # a text module, <name>.py

        return write_module(out_dir, model.name, source)

    def entry_point(self, model: Model) -> str:
        """What the generated file offers to call, e.g. `build_vgg16()`."""
        return self.entry(self.module(), model)


BACKENDS = (
    Backend(
        "keras",
        "backends.keras.generator",
        "keras",
        ".py",
        lambda generator, model: f"build_{model.name}()",
    ),
    Backend(
        "torch",
        "backends.pytorch.generator",
        "torch",
        ".py",
        lambda generator, model: f"{generator.model_class_name(model)}()",
    ),
)
BY_NAME = {backend.name: backend for backend in BACKENDS}
NAMES = tuple(BY_NAME)
