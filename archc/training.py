"""The optional `train { ... }` section: a paper's or course's training recipe.

    train {
        optimizer: sgd(momentum=0.9)
        lr: 0.01
        schedule: plateau(factor=0.1, patience=5)
        epochs: 90
        batch_size: 128
        loss: sparse_categorical_crossentropy
        weight_decay: 0.0005
    }

Parsed and validated here (closed vocabularies, ranges); used by the runners.
"""


from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from archc import syntax as S
from archc.diagnostics import Diagnostics, did_you_mean
from archc.values import Evaluator, FuncVal, Sym, show


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)


class Optimizer(_Frozen):
    name: Literal["sgd", "adam", "adamw", "rmsprop"] = "adam"
    momentum: float = Field(0.0, ge=0.0, lt=1.0)
    nesterov: bool = False
    beta_1: float = Field(0.9, gt=0.0, lt=1.0)
    beta_2: float = Field(0.999, gt=0.0, lt=1.0)
    epsilon: float = Field(1e-7, gt=0.0)


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
                self.boundaries and self.boundaries[0] <= 0):
            raise ValueError("boundaries must be positive and strictly increasing")
        if any(v <= 0 for v in self.values):
            raise ValueError("learning rates must be positive")
        return self


class Plateau(_Frozen):
    """Multiply lr by `factor` after `patience` epochs without improvement."""

    kind: Literal["plateau"] = "plateau"
    factor: float = Field(0.1, gt=0.0, lt=1.0)
    patience: int = Field(10, ge=0)
    min_lr: float = Field(0.0, ge=0.0)
    monitor: Literal["val_loss", "val_accuracy"] = "val_loss"


class StepDecay(_Frozen):
    """lr = lr0 * rate ** floor((epoch + offset) / every) (GoogLeNet: 0.96 every 8)."""

    kind: Literal["step"] = "step"
    rate: float = Field(gt=0.0, le=1.0)
    every: int = Field(gt=0)
    offset: int = Field(0, ge=0)


class Cosine(_Frozen):
    kind: Literal["cosine"] = "cosine"
    min_lr: float = Field(0.0, ge=0.0)


class OneCycle(_Frozen):
    kind: Literal["onecycle"] = "onecycle"
    max_lr: float | None = Field(None, gt=0.0)
    pct_start: float = Field(0.3, gt=0.0, lt=1.0)


Schedule = Annotated[Union[Constant, Piecewise, Plateau, StepDecay, Cosine, OneCycle],
                     Field(discriminator="kind")]

LOSSES = ("sparse_categorical_crossentropy", "categorical_crossentropy")


class TrainingConfig(_Frozen):
    optimizer: Optimizer = Optimizer()
    lr: float | None = Field(None, gt=0.0)
    schedule: Schedule = Constant()
    epochs: int | None = Field(None, gt=0, le=100_000)
    batch_size: int | None = Field(None, gt=0, le=1 << 20)
    loss: Literal["sparse_categorical_crossentropy", "categorical_crossentropy"] = (
        "sparse_categorical_crossentropy")
    from_logits: bool = False
    weight_decay: float = Field(0.0, ge=0.0)
    label_smoothing: float = Field(0.0, ge=0.0, lt=1.0)
    augment: bool = False


KEYS = {
    "optimizer": "optimizer", "lr": "lr", "learning_rate": "lr", "schedule": "schedule",
    "epochs": "epochs", "batch_size": "batch_size", "batch": "batch_size", "loss": "loss",
    "from_logits": "from_logits", "weight_decay": "weight_decay", "l2": "weight_decay",
    "label_smoothing": "label_smoothing", "augment": "augment",
}


def _plain(v: Any) -> Any:
    """Evaluated values -> what pydantic validates."""
    if isinstance(v, Sym):
        if v.name in ("true", "True", "yes", "Yes"):
            return True
        if v.name in ("false", "False", "no", "No"):
            return False
        return v.name
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    return v


def _callable(v: Any, field: str) -> dict:
    """`sgd(momentum=0.9)` -> {"name": "sgd", "momentum": 0.9}; `adam` -> {"name": "adam"}."""
    key = "name" if field == "optimizer" else "kind"
    if isinstance(v, Sym):
        return {key: v.name}
    if isinstance(v, FuncVal):
        if v.args:
            raise ValueError(f"write the settings of `{v.name}` as labels, "
                             f"e.g. `{v.name}(momentum=0.9)`")
        return {key: v.name, **{k: _plain(x) for k, x in v.kwargs}}
    raise ValueError(f"expected a name such as `sgd` or `sgd(momentum=0.9)`, got {show(v)}")


def build_training(defs: list[S.TrainDef], diags: Diagnostics) -> TrainingConfig | None:
    if not defs:
        return None
    if len(defs) > 1:
        diags.error("E601", "a spec has at most one `train { ... }` section", defs[1].span)
    ev = Evaluator({}, diags)
    values: dict[str, Any] = {}
    spans: dict[str, S.Span] = {}
    for s in defs[0].settings:
        key = KEYS.get(s.key)
        if key is None:
            suggestion = did_you_mean(s.key, KEYS)
            diags.error("E602", f"unknown training setting `{s.key}`", s.span,
                        expected=", ".join(sorted(set(KEYS.values()))),
                        hint=f"did you mean `{suggestion}`?" if suggestion else None)
            continue
        if key in values:
            diags.error("E306", f"training setting `{s.key}` is given twice", s.span)
            continue
        v = ev.eval(s.value)
        try:
            values[key] = _callable(v, key) if key in ("optimizer", "schedule") else _plain(v)
        except ValueError as e:
            diags.error("E603", str(e), s.value.span)
            continue
        spans[key] = s.value.span
    try:
        return TrainingConfig.model_validate(values)
    except ValidationError as e:
        for err in e.errors():
            loc = err["loc"]
            key = str(loc[0]) if loc else ""
            where = ".".join(str(x) for x in loc if not isinstance(x, int))
            msg = err["msg"]
            if err["type"] == "literal_error" or err["type"] == "union_tag_invalid":
                msg = f"unknown value for `{where}`: {err['msg']}"
            diags.error("E603", f"training setting `{where}`: {msg}", spans.get(key, defs[0].span),
                        received=repr(err.get("input")) if "input" in err else None)
        return None


def parse_settings(settings: dict[str, str], origin: str = "<command line>") -> dict[str, Any]:
    """Training settings written on the command line in the spec's own syntax
    (`--optimizer "sgd(momentum=0.9)"`, `--schedule "step(rate=0.96, every=8)"`),
    parsed and validated exactly as a `train { }` section is. Returns the given
    fields of a TrainingConfig; raises SpecError, pointing into the settings."""
    from archc.diagnostics import Sources
    from archc.parser import parse

    if not settings:
        return {}
    text = "train {\n" + "".join(f"  {k}: {v}\n" for k, v in settings.items()) + "}\n"
    diags = Diagnostics(Sources())
    spec = parse(text, origin, diags)
    config = build_training(spec.trains, diags)
    diags.check()
    return {k: getattr(config, KEYS[k]) for k in settings}
