"""A run's settings: the resolved training recipe (archc/train/recipe.py: command
line > the spec's train section > defaults) and where and on what it runs."""

from __future__ import annotations

from typing import Any

from archc.ir import Model
from archc.train import recipe as R


class Settings(R.Recipe):
    spec: str
    model: str
    backend: str
    data: str
    data_dir: str | None = None
    resize: bool = False
    limit: int | None = None
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    compile: bool = False

    def describe(self) -> str:
        rows = [
            ("spec", f"{self.spec} ({self.model})"),
            ("backend", self.backend),
            ("data", self.data + (f" from {self.data_dir}" if self.data_dir else "")),
            ("epochs", self.epochs),
            ("batch_size", self.batch_size),
            ("lr", self.lr),
            ("optimizer", self.describe_optimizer()),
            ("schedule", self.describe_schedule()),
            ("weight_decay", self.weight_decay),
            ("label_smoothing", self.label_smoothing),
            ("augment", self.augment),
            ("seed", self.seed),
            ("device", self.device),
            ("precision", self.precision),
        ]
        out = []
        for key, value in rows:
            src = self.sources.get(key)
            out.append(f"  {key:<16}{value}" + (f"   [{src}]" if src else ""))
        return "\n".join(out)


def resolve(ir: Model, backend: str, data: str, overrides: dict[str, Any], **run: Any) -> Settings:
    """The effective settings. `overrides` holds the command line's training
    settings already validated (a partial TrainingConfig's fields); `run` the rest."""
    recipe = R.recipe_of(ir, overrides)
    return Settings(
        spec=ir.source, model=ir.name, backend=backend, data=data, **dict(recipe), **run
    )
