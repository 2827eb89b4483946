"""The training recipe as generated source: Keras's `compile_<model>(model)`,
PyTorch's `make_optimizer(model)` and the `learning_rate(epoch)` functions. All
of it is written from the one resolved recipe (archc/train/recipe.py), from which
`archc train` makes its live optimizers and learning rates too; the recipe's
docstring states each translation from Keras's semantics to PyTorch's.
"""

from __future__ import annotations

from typing import Any

from archc.ir import Model
from archc.train.recipe import (
    KERAS_DEFAULTS,
    KERAS_KERNELS,
    TORCH_DEFAULTS,
    Call,
    Recipe,
    RecipeError,
    keras_kernel_l2,
    keras_optimizer,
    recipe_of,
    torch_optimizer,
    torch_own_decay,
)
from backends.common import LINE, BackendError, Raw, call, lit

KERAS_LOSSES = {
    "sparse_categorical_crossentropy": "SparseCategoricalCrossentropy",
    "categorical_crossentropy": "CategoricalCrossentropy",
}


def recipe(model: Model) -> Recipe:
    """The recipe of the spec alone (no command line)."""
    try:
        return recipe_of(model)
    except RecipeError as e:
        raise BackendError(str(e)) from None


def _args(c: Call, defaults: dict[str, Any], first: list[str] | None = None) -> list[str]:
    return (first or []) + [f"{k}={lit(v)}" for k, v in c.omitting(defaults[c.cls])]


def _summary(r: Recipe) -> str:
    return (
        f"{r.optimizer.name}, lr {r.lr!r}, {r.schedule.kind} schedule, "
        f"{r.epochs} epochs, batch {r.batch_size}"
    )


def keras_kernel_regularizer(node) -> Raw | None:
    """A layer's own `l2` (the spec-wide weight decay is the compile helper's)."""
    if getattr(node, "l2", None) is None:
        return None
    return Raw(f"keras.regularizers.L2({node.l2!r})")


def keras_compile(model: Model) -> str:
    """`compile_<model>(model)`, preceded by `learning_rate_<model>` where the
    schedule is a formula of the epoch."""
    r = recipe(model)
    s = r.schedule
    lines = [
        f"def compile_{model.name}(model):",
        f'    """Compile with the spec\'s recipe ({_summary(r)}).',
        "",
        "    Returns the callbacks to pass to model.fit.",
        '    """',
    ]
    # a separable convolution's kernels have names of their own
    if any(n.kind == "separable" for n in model.nodes):
        is_kernel, not_kernel = f"in {lit(KERAS_KERNELS)}", f"not in {lit(KERAS_KERNELS)}"
    else:
        is_kernel, not_kernel = '== "kernel"', '!= "kernel"'
    c = keras_kernel_l2(r)
    if c:
        wd = r.weight_decay
        lines += [
            f"    # weight decay {wd!r}: the L2 penalty {c!r} * sum(w ** 2) on every " + "conv and",
            f"    # dense kernel without an `l2` of its own (its gradient: {wd!r} * w)",
            "    for v in model.trainable_variables:",
            f"        if v.name {is_kernel} and v.regularizer is None:",
            f"            v.regularizer = keras.regularizers.L2({c!r})",
        ]
    optimizer = call(
        f"keras.optimizers.{keras_optimizer(r).cls}", _args(keras_optimizer(r), KERAS_DEFAULTS), 0
    )
    if r.decoupled:
        lines += [
            f"    optimizer = {optimizer}",
            "    # decoupled weight decay on the conv and dense kernels only",
            f"    others = [v for v in model.trainable_variables if v.name {not_kernel}]",
            "    optimizer.exclude_from_weight_decay(var_list=others)",
        ]
        optimizer = "optimizer"
    loss_args = ["from_logits=True"] if r.from_logits else []
    if r.label_smoothing and r.loss == "categorical_crossentropy":
        loss_args.append(f"label_smoothing={r.label_smoothing!r}")
    loss = f"keras.losses.{KERAS_LOSSES[r.loss]}({', '.join(loss_args)})"
    lines.append(
        call("model.compile", [f"optimizer={optimizer}", f"loss={loss}", 'metrics=["accuracy"]'], 4)
    )
    schedule_fn = None
    if s.kind == "plateau":
        args = [f"monitor={lit(s.monitor)}", f"factor={s.factor!r}", f"patience={s.patience}"]
        if s.monitor == "val_accuracy":  # Keras cannot tell whether more is better
            args.append('mode="max"')
        if s.min_lr:
            args.append(f"min_lr={s.min_lr!r}")
        lines.append(call("keras.callbacks.ReduceLROnPlateau", args, 4, prefix="schedule = "))
    elif s.kind != "constant":
        schedule_fn = schedule_source(r, f"learning_rate_{model.name}", "float(keras.ops.cos({}))")
        lines.append(
            call(
                "keras.callbacks.LearningRateScheduler",
                [f"learning_rate_{model.name}"],
                4,
                prefix="schedule = ",
            )
        )
    lines.append("    return []" if s.kind == "constant" else "    return [schedule]")
    text = "\n".join(lines)
    return schedule_fn + "\n\n\n" + text if schedule_fn else text


def torch_training(model: Model) -> str:
    """`make_optimizer(model)`, preceded by `learning_rate` where the schedule is a
    formula of the epoch."""
    r = recipe(model)
    s = r.schedule
    opt = torch_optimizer(r)
    own = torch_own_decay(r)
    doc = [f'    """The spec\'s recipe: {_summary(r)}.', ""]
    body = []
    if r.weight_decay or own:
        kind = (
            "Decoupled weight decay (AdamW's)"
            if r.decoupled
            else "Weight decay (the gradient of Keras's L2 penalty)"
        )
        doc += [
            f"    {kind} on the conv and linear kernels only:",
            "    biases, batch norm and PReLU parameters are not decayed.",
            "",
        ]
        if own:
            entries = [f"{lit(k)}: {v!r}" for k, v in own.items()]
            one = "    own = {" + ", ".join(entries) + "}"
            body += [
                "    # the kernels of layers with an `l2` of their own: weight_decay 2 * l2",
                one
                if len(one) <= LINE
                else "    own = {\n" + "".join(f"        {e},\n" for e in entries) + "    }",
            ]
        rule = (
            f'{r.weight_decay!r} if name.endswith("weight") and p.ndim >= 2 else 0.0'
            if r.weight_decay
            else "0.0"
        )
        body += [
            "    decay = {}",
            "    for name, p in model.named_parameters():",
            f"        rate = own.get(name, {rule})" if own else f"        rate = {rule}",
            "        decay.setdefault(rate, []).append(p)",
            "    groups = [{"
            + '"params": ps, "weight_decay": rate} for rate, ps in '
            + "decay.items()]",
        ]
        params = "groups"
    else:
        params = "model.parameters()"
    doc += [
        "    Returns (optimizer, scheduler); step the scheduler once per epoch"
        + (" with the validation metric." if s.kind == "plateau" else "."),
        '    """',
    ]
    if params == "groups":  # every parameter has its group's weight_decay
        opt = Call(opt.cls, tuple((k, v) for k, v in opt.kwargs if k != "weight_decay"))
    body.append(
        call(
            f"torch.optim.{opt.cls}", _args(opt, TORCH_DEFAULTS, [params]), 4, prefix="optimizer = "
        )
    )
    chunks = []
    if s.kind == "constant":
        body.append("    return optimizer, None")
    elif s.kind == "plateau":
        mode = "min" if s.monitor == "val_loss" else "max"
        # Keras reduces on the `patience`-th epoch without improvement, PyTorch on
        # the one after: Keras's patience p is PyTorch's p - 1 (0 and 1 act alike)
        sargs = [
            "optimizer",
            f"mode={lit(mode)}",
            f"factor={s.factor!r}",
            f"patience={max(s.patience - 1, 0)}",
            "threshold=0.0001",
            'threshold_mode="abs"',
        ]
        if s.min_lr:
            sargs.append(f"min_lr={s.min_lr!r}")
        body.append(
            call("torch.optim.lr_scheduler.ReduceLROnPlateau", sargs, 4, prefix="scheduler = ")
        )
        body.append("    return optimizer, scheduler")
    else:
        chunks.append(schedule_source(r, "learning_rate", "torch.cos(torch.tensor({})).item()"))
        body.append(
            call(
                "torch.optim.lr_scheduler.LambdaLR",
                ["optimizer", f"lambda epoch: learning_rate(epoch) / {r.lr!r}"],
                4,
                prefix="scheduler = ",
            )
        )
        body.append("    return optimizer, scheduler")
    chunks.append("\n".join(["def make_optimizer(model):", *doc, *body]))
    return "\n\n\n".join(chunks)


def schedule_source(r: Recipe, func: str, cos: str) -> str:
    """A function `func(epoch)` giving the recipe's learning rate for an epoch (from
    0), for the schedules that are a formula of the epoch; archc.train.schedule
    computes the same. `cos` is the framework's cosine of a Python float, as a
    template with `{}`."""
    s, lr0, epochs = r.schedule, r.lr, r.epochs
    head = [
        f"def {func}(epoch, lr=None):",
        f'    """The learning rate of epoch `epoch` (from 0): {s.kind} schedule."""',
    ]
    if s.kind == "piecewise":
        body = []
        for b, v in zip(s.boundaries, s.values):
            body.append(f"    if epoch < {b}:\n        return {v!r}")
        body.append(f"    return {s.values[-1]!r}")
    elif s.kind == "step":
        epoch = f"(epoch + {s.offset})" if s.offset else "epoch"
        body = [f"    return {lr0!r} * {s.rate!r} ** ({epoch} // {s.every})"]
    elif s.kind == "cosine":
        body = [
            f"    progress = min(epoch / {epochs}, 1.0)",
            f"    cosine = {cos.format('3.141592653589793 * progress')}",
            f"    return {s.min_lr!r} + ({lr0!r} - {s.min_lr!r}) * 0.5 * (1 + cosine)",
        ]
    elif s.kind == "onecycle":  # by epoch: warm up for pct_start, then anneal
        peak = s.max_lr
        warm = max(1, round(s.pct_start * epochs))
        body = [
            f"    if epoch < {warm}:",
            f"        return {lr0!r} + ({peak!r} - {lr0!r}) * epoch / {warm}",
            f"    progress = min((epoch - {warm}) / max({epochs} - {warm}, 1), 1.0)",
            f"    return {peak!r} * (1 - progress) + {lr0 / 1e4!r} * progress",
        ]
    else:
        raise AssertionError(f"{s.kind} is not a formula of the epoch")
    return "\n".join(head + body)
