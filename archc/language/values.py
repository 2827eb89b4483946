"""Evaluating spec expressions, and reading a call's arguments.

Nothing here calls `eval`: expressions are syntax trees (archc/language/syntax.py) walked
by a small interpreter over integers, floats, symbols and tagged literals.
Integers are bounded by LIMITS.max_int, so no spec can make archc compute with
huge numbers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from archc.diagnostics import Diagnostics, SpecError, did_you_mean
from archc.language import syntax as S
from archc.language.parser import product_factors
from archc.limits import LIMITS


@dataclass(frozen=True)
class Sym:
    """A bare word that is not a parameter: `same`, `relu`, `Yes`, `None`."""

    name: str

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True)
class Tagged:
    """`s2` / `s(2,1)` (tag "stride") and `p1` / `p(1,2)` (tag "pad")."""

    tag: str
    value: tuple[int, ...]


@dataclass(frozen=True)
class FuncVal:
    """`sgd(momentum=0.9)`, `leaky_relu(0.2)`: a name with evaluated arguments."""

    name: str
    args: tuple[Any, ...]
    kwargs: tuple[tuple[str, Any], ...]


def show(value: Any) -> str:
    if isinstance(value, Sym):
        return value.name
    if isinstance(value, Tagged):
        v = value.value
        inner = str(v[0]) if len(v) == 1 else "(" + ",".join(map(str, v)) + ")"
        return ("s" if value.tag == "stride" else "p") + inner
    if isinstance(value, tuple):
        return "[" + ", ".join(show(v) for v in value) + "]"
    if isinstance(value, FuncVal):
        parts = [show(a) for a in value.args] + [f"{k}={show(v)}" for k, v in value.kwargs]
        return f"{value.name}({', '.join(parts)})"
    if isinstance(value, float):
        return repr(value)
    return str(value)


class Evaluator:
    """Evaluates expressions in an environment of block parameters."""

    def __init__(self, env: dict[str, Any], diags: Diagnostics):
        self.env = env
        self.diags = diags

    def fail(self, code: str, message: str, span: S.Span, **kw) -> SpecError:
        return self.diags.fatal(code, message, span, **kw)

    def _check_int(self, v: Any, span: S.Span) -> Any:
        if isinstance(v, int) and not isinstance(v, bool) and abs(v) > LIMITS.max_int:
            raise self.fail(
                "E305",
                f"the number {v:,} is too large",
                span,
                expected=f"integers up to {LIMITS.max_int:,}",
            )
        if isinstance(v, float) and not math.isfinite(v):  # 1e308*10, and inf-inf (NaN)
            raise self.fail(
                "E305",
                "this computes a number too large for a float",
                span,
                received=show(v),
                expected="finite numbers",
            )
        return v

    def eval(self, e: S.Expr) -> Any:
        if isinstance(e, S.Num):
            return self._check_int(e.value, e.span)
        if isinstance(e, S.Ref):
            if e.name in self.env:
                return self.env[e.name]
            return Sym(e.name)
        if isinstance(e, S.Lit):
            return Tagged(e.kind, (self._check_int(e.value, e.span),))
        if isinstance(e, S.Paren):
            return self.eval(e.inner)
        if isinstance(e, S.Neg):
            v = self.eval(e.operand)
            if not _is_num(v):
                raise self.fail("E304", f"cannot negate `{show(v)}`", e.span, expected="a number")
            return -v
        if isinstance(e, S.BinOp):
            return self._binop(e)
        if isinstance(e, S.ListExpr):
            return tuple(self.eval(i) for i in e.items)
        if isinstance(e, S.FCall):
            args, kwargs = [], []
            for a in e.args:
                if isinstance(a, S.PosArg):
                    args.append(self.eval(a.value))
                elif isinstance(a, S.KwArg):
                    kwargs.append((a.key, self.eval(a.value)))
            if e.name in ("s", "p") and not kwargs and args:
                ints = []
                for a, arg in zip(args, e.args):
                    if not isinstance(a, int) or a < 0:
                        raise self.fail(
                            "E304",
                            f"`{e.name}(...)` takes non-negative integers",
                            arg.span,
                            received=show(a),
                        )
                    ints.append(a)
                if len(ints) > 2:
                    raise self.fail(
                        "E303",
                        f"`{e.name}(...)` takes one or two integers (height, width)",
                        e.span,
                        received=f"{len(ints)} values",
                    )
                return Tagged("stride" if e.name == "s" else "pad", tuple(ints))
            return FuncVal(e.name, tuple(args), tuple(kwargs))
        raise AssertionError(f"unknown expression {e!r}")  # grammar and syntax.py agree

    def _binop(self, e: S.BinOp) -> Any:
        a, b = self.eval(e.left), self.eval(e.right)
        if not (_is_num(a) and _is_num(b)):
            bad = a if not _is_num(a) else b
            raise self.fail(
                "E304",
                f"`{e.op}` needs numbers, but `{show(bad)}` is not one",
                e.span,
                hint="is a parameter name misspelled?",
            )
        op = e.op
        if op == "+":
            r = a + b
        elif op == "-":
            r = a - b
        elif op == "*":
            r = a * b
        elif op in ("//", "%"):
            if not (isinstance(a, int) and isinstance(b, int)):
                raise self.fail("E304", f"`{op}` needs integers", e.span)
            if b == 0:
                raise self.fail("E304", "division by zero", e.span)
            r = a // b if op == "//" else a % b
        elif op == "/":
            if b == 0:
                raise self.fail("E304", "division by zero", e.span)
            r = a // b if isinstance(a, int) and isinstance(b, int) and a % b == 0 else a / b
        else:
            r = int(
                {"==": a == b, "!=": a != b, "<": a < b, ">": a > b, "<=": a <= b, ">=": a >= b}[op]
            )
        return self._check_int(r, e.span)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


# Written labels -> canonical option names. One table for every layer kind, so
# the slides' Chinese labels and the English ones mean the same everywhere.
LABELS: dict[str, str] = {
    "kernel": "kernel",
    "核": "kernel",
    "kernel_size": "kernel",
    "k": "kernel",
    "size": "kernel",
    "pool_size": "kernel",
    "interpolation": "interpolation",
    "height": "height",
    "width": "width",
    "filters": "filters",
    "卷积核个数": "filters",
    "stride": "stride",
    "strides": "stride",
    "步长": "stride",
    "s": "stride",
    "padding": "padding",
    "填充": "padding",
    "pad": "padding",
    "ceil": "ceil",
    "ceil_mode": "ceil",
    "units": "units",
    "神经元": "units",
    "activation": "activation",
    "激活": "activation",
    "act": "activation",
    "dropout": "dropout",
    "Dropout": "dropout",
    "舍弃": "dropout",
    "rate": "rate",
    "dilation": "dilation",
    "dilation_rate": "dilation",
    "groups": "groups",
    "parts": "parts",
    "take": "take",
    "bias": "bias",
    "use_bias": "bias",
    "alpha": "alpha",
    "beta": "beta",
    "bias_k": "bias_k",
    "eps": "epsilon",
    "epsilon": "epsilon",
    "momentum": "momentum",
    "depth": "depth",
    "n": "depth",
    "init": "init",
    "kernel_initializer": "init",
    "bias_init": "bias_init",
    "bias_initializer": "bias_init",
    "l2": "l2",
    "weight_decay": "l2",
    "keepdims": "keepdims",
    "scale": "scale",
    "offset": "offset",
    "mean": "mean",
    "variance": "variance",
    "multiplier": "multiplier",
    "depth_multiplier": "multiplier",
    "output_padding": "output_padding",
}


class ArgReader:
    """A call's arguments, taken one by one by a layer kind's `bind`.

    Whatever the kind does not take is reported by `finish()` as an error
    naming what the kind accepts.
    """

    def __init__(self, call: S.Call, ev: Evaluator, kind_title: str, accepts: Iterable[str]):
        self.call = call
        self.ev = ev
        self.diags = ev.diags
        self.title = kind_title
        self.accepts = tuple(accepts)
        self.pos: list[S.PosArg] = []
        self.kw: dict[str, S.KwArg] = {}
        self.footnotes: list[S.Footnote] = []
        for a in call.args:
            if isinstance(a, S.PosArg):
                self.pos.append(a)
            elif isinstance(a, S.Footnote):
                self.footnotes.append(a)
            else:
                key = LABELS.get(a.key, a.key)
                if key not in self.accepts:
                    suggestion = did_you_mean(
                        a.key, [k for k, v in LABELS.items() if v in self.accepts]
                    )
                    self.diags.error(
                        "E302",
                        f"{self.title} has no option `{a.key}`",
                        a.span,
                        expected=", ".join(f"`{k}:`" for k in self.accepts) or "no options",
                        hint=f"did you mean `{suggestion}:`?" if suggestion else None,
                    )
                    continue
                if key in self.kw:
                    self.diags.error("E306", f"option `{a.key}` is given twice", a.span)
                    continue
                self.kw[key] = a

    @property
    def span(self) -> S.Span:
        return self.call.span

    def fail(self, message: str, span: S.Span | None = None, code: str = "E304", **kw):
        return self.diags.fatal(code, message, span or self.call.span, **kw)

    def next_pos(self) -> S.PosArg | None:
        return self.pos.pop(0) if self.pos else None

    def take(self, key: str) -> S.KwArg | None:
        return self.kw.pop(key, None)

    def value(self, expr: S.Expr) -> Any:
        return self.ev.eval(expr)

    def dims(self, expr: S.Expr, counts: tuple[int, ...], what: str) -> list[int]:
        """Split `a*b*c` into its factors and evaluate each to a positive integer."""
        factors = product_factors(expr)
        if len(factors) not in counts:
            want = " or ".join(str(c) for c in counts)
            raise self.fail(
                f"{self.title} expects {what} ({want} numbers joined by `*`)",
                expr.span,
                code="E303",
                received=f"{len(factors)} factor(s)",
                hint="group arithmetic in parentheses, e.g. `(2*ch)*3*3`",
            )
        return [self.positive_int(f, what) for f in factors]

    def positive_int(self, expr: S.Expr, what: str, allow_zero: bool = False) -> int:
        v = self.ev.eval(expr)
        if not isinstance(v, int) or isinstance(v, bool) or v < (0 if allow_zero else 1):
            raise self.fail(
                f"{what} must be a {'non-negative' if allow_zero else 'positive'} integer",
                expr.span,
                received=show(v),
            )
        return v

    def number(
        self,
        expr: S.Expr,
        what: str,
        lo: float | None = None,
        hi: float | None = None,
        hi_open: bool = False,
    ) -> float:
        v = self.ev.eval(expr)
        if not _is_num(v):
            raise self.fail(f"{what} must be a number", expr.span, received=show(v))
        v = float(v)
        if (lo is not None and v < lo) or (hi is not None and (v >= hi if hi_open else v > hi)):
            rng = f"[{lo}, {hi}{')' if hi_open else ']'}"
            raise self.fail(
                f"{what} is out of range",
                expr.span,
                received=show(v),
                expected=f"a number in {rng}",
            )
        return v

    def symbol(self, expr: S.Expr, what: str, choices: Iterable[str]) -> str:
        v = self.ev.eval(expr)
        choices = tuple(choices)
        if isinstance(v, Sym) and v.name in choices:
            return v.name
        name = v.name if isinstance(v, Sym) else show(v)
        suggestion = did_you_mean(name, choices)
        raise self.fail(
            f"unknown {what} `{name}`",
            expr.span,
            code="E307",
            expected=", ".join(choices),
            hint=f"did you mean `{suggestion}`?" if suggestion else None,
        )

    def finish(self) -> None:
        for a in self.pos:
            self.diags.error(
                "E301",
                f"{self.title} does not take this argument",
                a.span,
                received=show(self.ev.eval(a.value)),
                expected=", ".join(f"`{k}:`" for k in self.accepts) or None,
            )
        for a in self.kw.values():
            self.diags.error("E301", f"{self.title} does not take option `{a.key}` here", a.span)
