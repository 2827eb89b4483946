"""Parsing the optional `train { ... }` section: a paper's or course's training recipe.

    train {
        optimizer: sgd(momentum=0.9)
        lr: 0.01
        schedule: plateau(factor=0.1, patience=5)
        epochs: 90
        batch_size: 128
        loss: sparse_categorical_crossentropy
        weight_decay: 0.0005
    }

Each setting is evaluated, validated into the IR's TrainingConfig
(archc/ir/training.py) and reported in archc's words where it is wrong. The
command line's training options go through the same parser (`parse_settings`).
What a setting left out means is the recipe's business (archc/train/recipe.py).
"""

from typing import Any

from pydantic import ValidationError

from archc.diagnostics import Diagnostics, did_you_mean
from archc.ir.training import SCHEDULES, Optimizer, TrainingConfig
from archc.language import syntax as S
from archc.language.values import Evaluator, FuncVal, Sym, show

KEYS = {
    "optimizer": "optimizer",
    "lr": "lr",
    "learning_rate": "lr",
    "schedule": "schedule",
    "epochs": "epochs",
    "batch_size": "batch_size",
    "batch": "batch_size",
    "loss": "loss",
    "from_logits": "from_logits",
    "weight_decay": "weight_decay",
    "l2": "weight_decay",
    "label_smoothing": "label_smoothing",
    "augment": "augment",
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
            raise ValueError(
                f"write the settings of `{v.name}` as labels, e.g. `{v.name}(momentum=0.9)`"
            )
        return {key: v.name, **{k: _plain(x) for k, x in v.kwargs}}
    raise ValueError(f"expected a name such as `sgd` or `sgd(momentum=0.9)`, got {show(v)}")


def _name_span(expr: S.Expr) -> S.Span:
    """The span of the name in `sgd(momentum=0.9)` (or of the whole bare name)."""
    sp = expr.span
    if isinstance(expr, S.FCall) and sp.end_line == sp.line:
        return S.Span(sp.file, sp.line, sp.col, sp.line, sp.col + len(expr.name))
    return sp


def _spans(key: str, expr: S.Expr) -> dict[tuple, S.Span]:
    """Where each part of a setting's value is written, by pydantic location
    (without the schedule's tag): the value, its name, each keyword and its value."""
    spans = {(key,): expr.span, (key, "name"): _name_span(expr), (key, "kind"): _name_span(expr)}
    if isinstance(expr, S.FCall):
        for a in expr.args:
            if isinstance(a, S.KwArg):
                spans[(key, a.key, "=")] = a.span
                spans[(key, a.key)] = a.value.span
    return spans


_SCHEDULES = {m.model_fields["kind"].default: m for m in SCHEDULES}
_TYPES = {
    "int": "a whole number",
    "float": "a number",
    "bool": "true or false",
    "tuple": "a list such as [3, 6]",
    "list": "a list such as [3, 6]",
    "string": "a name",
    "model": "a name such as `adam` or `sgd(momentum=0.9)`",
}


def _explain(err: dict, values: dict) -> tuple[tuple, str, dict]:
    """One pydantic error in archc's words: (location, message, extra fields)."""
    loc = tuple(err["loc"])
    key = str(loc[0]) if loc else ""
    owner = None  # the model the error is inside: Optimizer or a schedule class
    if key == "schedule" and len(loc) > 1 and loc[1] in _SCHEDULES:
        owner, loc = _SCHEDULES[loc[1]], (key, *loc[2:])
    elif key == "optimizer":
        owner = Optimizer
    field = next((str(x) for x in reversed(loc) if not isinstance(x, int)), key)
    value = values.get(key)
    called = (
        (value or {}).get("name" if key == "optimizer" else "kind")
        if isinstance(value, dict)
        else None
    )
    what = (
        f"`{field}` of `{called}`"
        if owner is not None and len(loc) > 1 and called
        else (f"training setting `{field}`")
    )
    kind, ctx, extra = err["type"], err.get("ctx") or {}, {}
    if kind == "literal_error" or kind == "union_tag_invalid":
        if kind == "union_tag_invalid":
            choices, given = sorted(_SCHEDULES), str(ctx.get("tag"))
        else:
            choices = [
                c.strip().strip("'")
                for c in str(ctx.get("expected", "")).replace(" or ", ", ").split(",")
            ]
            given = str(err.get("input"))
        noun = {"name": "optimizer", "kind": "schedule"}.get(field, field)
        suggestion = did_you_mean(given, choices)
        extra = {
            "expected": ", ".join(choices),
            "hint": f"did you mean `{suggestion}`?" if suggestion else None,
        }
        return (
            (loc if kind == "literal_error" else (key, "kind")),
            (f"unknown {noun} `{given}`"),
            extra,
        )
    if kind == "extra_forbidden" and owner is not None:
        allowed = [f for f in owner.model_fields if f not in ("name", "kind")]
        suggestion = did_you_mean(field, allowed)
        extra = {
            "expected": ", ".join(allowed) if allowed else "no settings",
            "hint": f"did you mean `{suggestion}`?" if suggestion else None,
        }
        return (*loc, "="), f"`{called}` has no setting `{field}`", extra
    if kind == "missing":
        return (key,), f"`{called or key}` needs the setting `{field}`", extra
    if kind == "value_error":
        return loc, f"{what}: {ctx.get('error', err['msg'])}", extra
    for prefix, words in _TYPES.items():
        if kind.startswith(prefix + "_"):
            extra = {"received": show_input(err.get("input"))}
            return loc, f"{what} must be {words}", extra
    msg = err["msg"].replace("Input should be ", "must be ")
    return loc, f"{what} {msg}", {"received": show_input(err.get("input"))}


def show_input(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(show_input(x) for x in v) + "]"
    return str(v)


def build_training(defs: list[S.TrainDef], diags: Diagnostics) -> TrainingConfig | None:
    if not defs:
        return None
    if len(defs) > 1:
        diags.error("E601", "a spec has at most one `train { ... }` section", defs[1].span)
    ev = Evaluator({}, diags)
    values: dict[str, Any] = {}
    spans: dict[tuple, S.Span] = {}
    for s in defs[0].settings:
        key = KEYS.get(s.key)
        if key is None:
            suggestion = did_you_mean(s.key, KEYS)
            diags.error(
                "E602",
                f"unknown training setting `{s.key}`",
                s.span,
                expected=", ".join(sorted(set(KEYS.values()))),
                hint=f"did you mean `{suggestion}`?" if suggestion else None,
            )
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
        spans.update(_spans(key, s.value))
    try:
        return TrainingConfig.model_validate(values)
    except ValidationError as e:
        for err in e.errors():
            loc, message, extra = _explain(err, values)
            span = next(
                (spans[loc[:n]] for n in range(len(loc), 0, -1) if loc[:n] in spans), defs[0].span
            )
            diags.error("E603", message, span, **extra)
        return None


def option_name(key: str) -> str:
    """The command-line option of a training setting: batch_size -> --batch-size."""
    return "--" + key.replace("_", "-")


def parse_settings(settings: dict[str, str], origin: str = "the command line") -> dict[str, Any]:
    """Training settings written on the command line in the spec's own syntax
    (`--optimizer "sgd(momentum=0.9)"`, `--schedule "step(rate=0.96, every=8)"`),
    parsed and validated exactly as a `train { }` section is. Returns the given
    fields of a TrainingConfig; raises SpecError whose diagnostics quote the option
    and its value, with a caret under the bad part."""
    from archc.diagnostics import Sources, SpecError
    from archc.language.parser import parse

    if not settings:
        return {}
    keys = list(settings)
    text = "train {\n" + "".join(f"  {k}: {v}\n" for k, v in settings.items()) + "}\n"
    diags = Diagnostics(Sources())
    try:
        spec = parse(text, "<settings>", diags)
        config = build_training(spec.trains, diags)
        diags.check()
    except SpecError as e:
        raise SpecError([_on_command_line(d, keys, settings, origin) for d in e.diagnostics])
    return {k: getattr(config, KEYS[k]) for k in settings}


def _on_command_line(d, keys: list[str], settings: dict[str, str], origin: str):
    """A diagnostic about the synthetic `train { }` text, moved onto the option it came from."""
    from dataclasses import replace

    index = d.span.line - 2 if d.span is not None else -1
    if not 0 <= index < len(keys):  # not inside one setting: no line to quote
        return replace(d, span=None, source_line=None, origin=None)
    key = keys[index]
    option, value = option_name(key), settings[key]
    shift = len(option) + 1 - len(f"  {key}: ")
    start = max(d.span.col + shift, len(option) + 2)
    end = d.span.end_col + shift if d.span.end_line == d.span.line else start + len(value)
    end = min(max(end, start + 1), len(option) + 2 + len(value))
    span = S.Span(origin, 1, start, 1, end)
    return replace(d, span=span, source_line=f"{option} {value}", origin=f"{origin}, {option}")
