"""The spec's `train { ... }` section in the IR: what the spec wrote, validated
(closed vocabularies, ranges), and nothing more.

A setting the spec leaves out is None here: its value is the recipe's
(archc/train/recipe.py), which resolves the spec, the command line and one table
of documented defaults into the settings both backends use. Parsing lives in
archc/language/train_section.py.

(This module becomes archc/ir/training.py once archc/ir.py is a package.)
"""

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")


class Optimizer(_Frozen):
    name: Literal["sgd", "adam", "adamw", "rmsprop"]
    momentum: float | None = Field(None, ge=0.0, lt=1.0)
    nesterov: bool | None = None
    beta_1: float | None = Field(None, gt=0.0, lt=1.0)
    beta_2: float | None = Field(None, gt=0.0, lt=1.0)
    epsilon: float | None = Field(None, gt=0.0)


class Constant(_Frozen):
    kind: Literal["constant"] = "constant"


class Piecewise(_Frozen):
    """lr = values[i] for the first i with epoch < boundaries[i] (epochs from 0)."""

    kind: Literal["piecewise"] = "piecewise"
    boundaries: tuple[int, ...]
    values: tuple[float, ...]

    @model_validator(mode="after")
    def _check(self) -> "Piecewise":
        if len(self.values) != len(self.boundaries) + 1:
            raise ValueError("piecewise needs one more value than boundaries")
        if list(self.boundaries) != sorted(set(self.boundaries)) or (
            self.boundaries and self.boundaries[0] <= 0
        ):
            raise ValueError("boundaries must be positive and strictly increasing")
        if any(v <= 0 for v in self.values):
            raise ValueError("learning rates must be positive")
        return self


class Plateau(_Frozen):
    """Multiply lr by `factor` after `patience` epochs without improvement."""

    kind: Literal["plateau"] = "plateau"
    factor: float | None = Field(None, gt=0.0, lt=1.0)
    patience: int | None = Field(None, ge=0)
    min_lr: float | None = Field(None, ge=0.0)
    monitor: Literal["val_loss", "val_accuracy"] | None = None


class StepDecay(_Frozen):
    """lr = lr0 * rate ** floor((epoch + offset) / every) (GoogLeNet: 0.96 every 8)."""

    kind: Literal["step"] = "step"
    rate: float = Field(gt=0.0, le=1.0)
    every: int = Field(gt=0)
    offset: int | None = Field(None, ge=0)


class Cosine(_Frozen):
    kind: Literal["cosine"] = "cosine"
    min_lr: float | None = Field(None, ge=0.0)


class OneCycle(_Frozen):
    kind: Literal["onecycle"] = "onecycle"
    max_lr: float | None = Field(None, gt=0.0)  # None: 10 x the initial rate
    pct_start: float | None = Field(None, gt=0.0, lt=1.0)


SCHEDULES = (Constant, Piecewise, Plateau, StepDecay, Cosine, OneCycle)
Schedule = Annotated[
    Constant | Piecewise | Plateau | StepDecay | Cosine | OneCycle, Field(discriminator="kind")
]

LOSSES = ("sparse_categorical_crossentropy", "categorical_crossentropy")


class TrainingConfig(_Frozen):
    optimizer: Optimizer | None = None
    lr: float | None = Field(None, gt=0.0)
    schedule: Schedule | None = None
    epochs: int | None = Field(None, gt=0, le=100_000)
    batch_size: int | None = Field(None, gt=0, le=1 << 20)
    loss: Literal["sparse_categorical_crossentropy", "categorical_crossentropy"] | None = None
    from_logits: bool | None = None
    weight_decay: float | None = Field(None, ge=0.0)
    label_smoothing: float | None = Field(None, ge=0.0, lt=1.0)
    augment: bool | None = None
