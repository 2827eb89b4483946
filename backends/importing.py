"""Bringing an existing model in (`archc import`): what an importer returns and how
it fails. Each framework's importer lives in its backend folder
(`backends/keras/importer.py`, `backends/pytorch/importer.py`) and returns an
`Imported`; the spec text is printed from its IR (`archc/language/decompile.py`).

An importer never guesses: everything in the source model archc cannot express is
a `Problem`, and all of them are raised at once as one `ImportFailure`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from archc.ir import Model


@dataclass(frozen=True)
class Problem:
    """One thing in the source model archc cannot express."""

    layer: str  # the layer's (or graph node's) name in the source model
    cls: str  # its class: a Keras layer class, a torch module class or function
    where: str  # where it sits in the graph: its inputs and its consumers
    why: str  # what archc cannot express here, and what would make it expressible


class ImportFailure(Exception):
    """The source cannot be imported: its problems, all of them, or one sentence
    saying why the source could not be read at all (`problems` empty)."""

    def __init__(self, source: str, problems: list[Problem], message: str = "") -> None:
        self.source = source
        self.problems = list(problems)
        self.message = message
        super().__init__(self.render())

    def render(self) -> str:
        if not self.problems:
            return f"error: cannot import {self.source}: {self.message}"
        plural = "s" if len(self.problems) != 1 else ""
        lines = [
            f"error: {self.source} has {len(self.problems)} layer{plural} archc cannot express:"
        ]
        for p in self.problems:
            lines.append(f"  - `{p.layer}` ({p.cls}), {p.where}: {p.why}")
        return "\n".join(lines)


@dataclass(frozen=True)
class Imported:
    """A model brought in: its inferred IR, whose node names are the source layers'
    names where they are valid identifiers, and its weights keyed by those names
    ("<node>/<role>" -> array in the neutral layout of backends/transfer.py)."""

    model: Model
    weights: dict[str, Any]
    source: str  # what it was imported from, for the spec's header comment
    framework: str  # "keras" or "torch"
