"""The one training recipe: the spec's `train { }` section, the command line's
overrides and the defaults below, resolved once into a `Recipe`. Everything that
trains is made from it: the generated Keras compile helper, the generated
PyTorch `make_optimizer`, the generated `learning_rate(epoch)` functions
(backends/recipe_source.py writes them), and `archc train`'s live optimizers
(backends/*/train.py) and learning rates (archc/train/schedule.py). No value
is left to a framework's own default: each is stated in DEFAULTS.

Framework-free (no numpy either): `archc build` needs only lark, pydantic, jinja2.

Semantics are Keras's. Where PyTorch differs, the translation is:

- learning rate: Keras `learning_rate` = PyTorch `lr`.
- SGD: Keras keeps a velocity v = momentum * v - lr * g, PyTorch a buffer
  b = momentum * b + g and steps by lr * b: the same steps while the rate is
  constant; when the rate changes, Keras's velocity keeps the old rate's share,
  PyTorch rescales it. `nesterov` without momentum is plain SGD in Keras; PyTorch
  refuses it, so it gets nesterov=False there (the same algorithm).
- Adam/AdamW: `betas=(beta_1, beta_2)`. Keras adds `epsilon` to sqrt(v) before
  the bias correction (w -= lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps)),
  PyTorch after it (w -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)).
  Keras's epsilon is PyTorch's eps / sqrt(1 - b2^t): no constant makes them
  equal. archc passes eps = epsilon, which agrees as t grows (at step t the
  PyTorch denominator's epsilon term is sqrt(1 - b2^t) times Keras's); they
  differ only where sqrt(v) is comparable to epsilon.
- RMSprop: PyTorch `alpha` = Keras `rho`. Keras divides by sqrt(v + epsilon),
  PyTorch by sqrt(v) + eps: no eps makes them equal. archc passes eps = epsilon;
  the two agree to a relative epsilon / (2 v) once v >> epsilon (a gradient RMS
  well above sqrt(epsilon) = 3e-4 for 1e-7) and differ where v is near epsilon.
- weight decay (sgd, adam, rmsprop): an L2 penalty (weight_decay / 2) * sum(w**2)
  on every conv and dense kernel, added to the loss (Keras: the kernel's
  regularizer L2(weight_decay / 2), set by the compile helper; gradient
  weight_decay * w). PyTorch's `weight_decay` adds exactly that gradient
  (g + weight_decay * w) for these optimizers: it is given to the kernels only.
  Biases, batch norm and PReLU are not decayed. A layer's own `l2: c` replaces
  it on that layer (Keras L2(c) on the layer; PyTorch weight_decay 2c).
- weight decay (adamw): the decoupled decay w -= lr * weight_decay * w before
  each step, on the kernels only, in both (Keras AdamW with the other variables
  excluded, PyTorch AdamW with a parameter group). A layer's own `l2` is a loss
  term, which PyTorch's AdamW cannot add: that combination is refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict

from archc.ir.training import Constant, Optimizer, Schedule, TrainingConfig

# Every default of a training setting, in one place. A value that depends on the
# optimizer is a dict by optimizer name. Keras's own defaults, except epochs and
# batch size (archc's).
DEFAULTS: dict[str, Any] = {
    "epochs": 10,
    "batch_size": 32,
    "optimizer": "adam",
    "lr": {"sgd": 0.01, "adam": 0.001, "adamw": 0.001, "rmsprop": 0.001},
    "momentum": 0.0,  # sgd
    "nesterov": False,  # sgd
    "beta_1": 0.9,  # adam, adamw
    "beta_2": 0.999,  # adam, adamw
    "epsilon": 1e-7,  # adam, adamw, rmsprop
    "rho": 0.9,  # rmsprop's average of squared gradients (not a setting)
    "weight_decay": {"sgd": 0.0, "adam": 0.0, "adamw": 0.004, "rmsprop": 0.0},
    "schedule": "constant",
    "plateau.factor": 0.1,
    "plateau.patience": 10,
    "plateau.min_lr": 0.0,
    "plateau.monitor": "val_loss",
    "step.offset": 0,
    "cosine.min_lr": 0.0,
    "onecycle.max_lr": "10 x lr",
    "onecycle.pct_start": 0.3,
    "loss": "sparse_categorical_crossentropy",
    "from_logits": False,
    "label_smoothing": 0.0,
    "augment": False,
}

# the settings a spec or the command line gives, in resolution order: lr and
# weight_decay after the optimizer, whose name their defaults depend on
KEYS = (
    "epochs",
    "batch_size",
    "optimizer",
    "lr",
    "schedule",
    "weight_decay",
    "loss",
    "from_logits",
    "label_smoothing",
    "augment",
)
OPTIMIZER_FIELDS = {
    "sgd": ("momentum", "nesterov"),
    "adam": ("beta_1", "beta_2", "epsilon"),
    "adamw": ("beta_1", "beta_2", "epsilon"),
    "rmsprop": ("epsilon",),
}


class RecipeError(ValueError):
    """A combination of settings that the two backends cannot both carry out."""


class Recipe(BaseModel):
    """The resolved recipe: every value set. `layer_l2` holds the layers that carry
    an `l2` of their own (node name -> the L2 coefficient c of c * sum(w**2))."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    epochs: int
    batch_size: int
    optimizer: Optimizer
    lr: float
    schedule: Schedule
    weight_decay: float
    loss: str
    from_logits: bool
    label_smoothing: float
    augment: bool
    layer_l2: dict[str, float] = {}
    sources: dict[str, str] = {}  # setting -> "command line" | "spec" | "default"

    @property
    def decoupled(self) -> bool:
        """Whether weight decay is the optimizer's decoupled decay (adamw), not an L2 loss."""
        return self.optimizer.name == "adamw"

    def describe_optimizer(self) -> str:
        o = self.optimizer
        given = [
            f"{k}={getattr(o, k)}" for k in OPTIMIZER_FIELDS[o.name] if getattr(o, k) != DEFAULTS[k]
        ]
        return o.name + (f"({', '.join(given)})" if given else "")

    def describe_schedule(self) -> str:
        s = self.schedule
        return s.kind + "".join(f" {k}={v}" for k, v in s.model_dump().items() if k != "kind")


def _default(key: str, optimizer: str | None) -> Any:
    value = DEFAULTS[key]
    return value[optimizer] if isinstance(value, dict) else value


def _optimizer(o: Optimizer | None) -> Optimizer:
    """The optimizer with every hyper-parameter set (those of other optimizers too,
    at their defaults, so that the object has one shape)."""
    name = o.name if o is not None else DEFAULTS["optimizer"]
    given = o.model_dump(exclude_none=True) if o is not None else {}
    return Optimizer(
        **{
            k: given.get(k, DEFAULTS[k])
            for k in ("momentum", "nesterov", "beta_1", "beta_2", "epsilon")
        },
        name=name,
    )


def resolve_schedule(s: Any, lr: float) -> Any:
    """The schedule with every parameter set."""
    kind = s.kind if s is not None else DEFAULTS["schedule"]
    given = s.model_dump(exclude_none=True) if s is not None else {"kind": kind}
    for key, value in DEFAULTS.items():
        prefix, _, field = key.partition(".")
        if prefix == kind and field not in given:
            given[field] = lr * 10 if key == "onecycle.max_lr" else value
    return type(s).model_validate(given) if s is not None else Constant()


def resolve(
    training: TrainingConfig | None,
    overrides: dict[str, Any] | None = None,
    layer_l2: dict[str, float] | None = None,
) -> Recipe:
    """command line (`overrides`, already validated) > the spec's section > DEFAULTS."""
    spec = training or TrainingConfig()
    given = TrainingConfig.model_validate(
        {k: v for k, v in (overrides or {}).items() if v is not None}
    )
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for key in KEYS:
        if getattr(given, key) is not None:
            values[key], sources[key] = getattr(given, key), "command line"
        elif getattr(spec, key) is not None:
            values[key], sources[key] = getattr(spec, key), "spec"
        else:
            name = values["optimizer"].name if key in ("lr", "weight_decay") else None
            values[key] = None if key in ("optimizer", "schedule") else _default(key, name)
            sources[key] = "default"
        if key == "optimizer":
            values[key] = _optimizer(values[key])
    values["schedule"] = resolve_schedule(values["schedule"], values["lr"])
    layer_l2 = dict(layer_l2 or {})
    if layer_l2 and values["optimizer"].name == "adamw":
        raise RecipeError(
            f"`adamw` with a layer's own `l2` (`{next(iter(layer_l2))}`): Keras adds that L2 "
            f"to the loss, which PyTorch's AdamW cannot do (its weight_decay is decoupled); "
            f"use the spec-wide `weight_decay`, or another optimizer"
        )
    return Recipe(**values, layer_l2=layer_l2, sources=sources)


def layer_l2(ir) -> dict[str, float]:
    """The layers of IR model `ir` that carry an `l2` of their own."""
    return {n.name: n.l2 for n in ir.nodes if getattr(n, "l2", None) is not None}


def recipe_of(ir, overrides: dict[str, Any] | None = None) -> Recipe:
    """The recipe of IR model `ir` with the command line's `overrides`."""
    return resolve(ir.training, overrides, layer_l2(ir))


# ---------------------------------------------------------------------------
# the recipe in each framework's terms
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """An optimizer's class (in keras.optimizers or torch.optim) and its keyword
    arguments, every hyper-parameter stated."""

    cls: str
    kwargs: tuple[tuple[str, Any], ...]

    def omitting(self, defaults: dict[str, Any]) -> list[tuple[str, Any]]:
        """The arguments a reader needs: the learning rate, and every other one
        that differs from the framework's own default."""
        return [
            (k, v)
            for k, v in self.kwargs
            if k in ("learning_rate", "lr") or defaults.get(k, object()) != v
        ]


CLASSES = {"sgd": "SGD", "adam": "Adam", "adamw": "AdamW", "rmsprop": "RMSprop"}

# The frameworks' own defaults, only to leave equal arguments out of generated
# text (tests check them against the installed frameworks' signatures).
KERAS_DEFAULTS = {
    "SGD": {"learning_rate": 0.01, "momentum": 0.0, "nesterov": False},
    "Adam": {"learning_rate": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7},
    "AdamW": {
        "learning_rate": 0.001,
        "weight_decay": 0.004,
        "beta_1": 0.9,
        "beta_2": 0.999,
        "epsilon": 1e-7,
    },
    "RMSprop": {"learning_rate": 0.001, "rho": 0.9, "epsilon": 1e-7},
}
TORCH_DEFAULTS = {
    "SGD": {"lr": 0.001, "momentum": 0, "nesterov": False, "weight_decay": 0},
    "Adam": {"lr": 0.001, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0},
    "AdamW": {"lr": 0.001, "betas": (0.9, 0.999), "eps": 1e-8, "weight_decay": 0.01},
    "RMSprop": {"lr": 0.01, "alpha": 0.99, "eps": 1e-8, "weight_decay": 0},
}


def keras_optimizer(r: Recipe) -> Call:
    o = r.optimizer
    kw: list[tuple[str, Any]] = [("learning_rate", r.lr)]
    if o.name == "sgd":
        kw += [("momentum", o.momentum), ("nesterov", o.nesterov)]
    elif o.name in ("adam", "adamw"):
        if o.name == "adamw":
            kw.append(("weight_decay", r.weight_decay))
        kw += [("beta_1", o.beta_1), ("beta_2", o.beta_2), ("epsilon", o.epsilon)]
    else:
        kw += [("rho", DEFAULTS["rho"]), ("epsilon", o.epsilon)]
    return Call(CLASSES[o.name], tuple(kw))


def torch_optimizer(r: Recipe) -> Call:
    """PyTorch's optimizer, without its parameters. Its weight_decay (0) is that of
    parameters in no group of their own: `torch_weight_decay` gives each its own."""
    o = r.optimizer
    kw: list[tuple[str, Any]] = [("lr", r.lr), ("weight_decay", 0.0)]
    if o.name == "sgd":
        kw += [("momentum", o.momentum), ("nesterov", o.nesterov and o.momentum > 0)]
    elif o.name in ("adam", "adamw"):
        kw += [("betas", (o.beta_1, o.beta_2)), ("eps", o.epsilon)]
    else:
        kw += [("alpha", DEFAULTS["rho"]), ("eps", o.epsilon)]
    return Call(CLASSES[o.name], tuple(kw))


# The names Keras gives the kernels weight decay applies to: conv, dense, depthwise
# and transposed kernels are `kernel`; a separable convolution has two.
KERAS_KERNELS = ("kernel", "depthwise_kernel", "pointwise_kernel")


def keras_kernel_l2(r: Recipe) -> float:
    """The L2 coefficient the Keras compile helper gives every kernel without an
    `l2` of its own (0: none)."""
    return 0.0 if r.decoupled else r.weight_decay / 2


def torch_own_decay(r: Recipe) -> dict[str, float]:
    """PyTorch's weight_decay of the kernels of the layers with their own `l2`."""
    return {f"{name}.weight": 2 * c for name, c in r.layer_l2.items()}


def torch_weight_decay(r: Recipe, name: str, ndim: int) -> float:
    """PyTorch's weight_decay for parameter `name` (of `ndim` dimensions): kernels
    (conv and linear weights) decay, the rest (biases, batch norm, PReLU) not."""
    own = torch_own_decay(r)
    if name in own:
        return own[name]
    return r.weight_decay if name.endswith("weight") and ndim >= 2 else 0.0
