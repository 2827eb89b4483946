"""The syntax tree of a .cnn file: what the user wrote, with source spans.

These are named tuples (immutable, and the fastest Python objects to create:
a 10,000-layer spec makes hundreds of thousands) produced by the parser.
They carry no meaning yet: names are not resolved, expressions not evaluated.
The expansion pass (archc/passes/expand.py) gives them meaning and builds the IR.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple


class Span(NamedTuple):
    """A region of one source file, 1-based lines and columns (end exclusive)."""

    file: str
    line: int
    col: int
    end_line: int
    end_col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


# ---- expressions -----------------------------------------------------------


class Num(NamedTuple):
    value: int | float
    span: Span


class Ref(NamedTuple):
    """A bare name: a block parameter, or a symbol such as `same` or `relu`."""

    name: str
    span: Span


class Lit(NamedTuple):
    """A literal written in the slides' shorthand: `s2` (stride) or `p1` (padding)."""

    kind: str  # "stride" | "pad"
    value: int
    span: Span


class BinOp(NamedTuple):
    op: str
    left: Expr
    right: Expr
    span: Span
    depth: int = 1


class Neg(NamedTuple):
    operand: Expr
    span: Span
    depth: int = 1


class Paren(NamedTuple):
    inner: Expr
    span: Span


class FCall(NamedTuple):
    """`s(2,1)`, `p(1)`, `sgd(momentum=0.9)`: a name applied to arguments."""

    name: str
    args: tuple[Arg, ...]
    span: Span


class ListExpr(NamedTuple):
    items: tuple[Expr, ...]
    span: Span


Expr = Num | Ref | Lit | BinOp | Neg | Paren | FCall | ListExpr


# ---- arguments -------------------------------------------------------------


class PosArg(NamedTuple):
    value: Expr
    span: Span


class KwArg(NamedTuple):
    key: str
    value: Expr
    span: Span


class Footnote(NamedTuple):
    """A starred marker such as `LRN*` in `B (Yes, LRN*)`: informative only."""

    text: str
    span: Span


Arg = PosArg | KwArg | Footnote


# ---- layers and structure --------------------------------------------------


class Call(NamedTuple):
    """A layer (`C(...)`, `B`) or a block invocation (`ConvBNRelu(64)`)."""

    name: str
    args: tuple[Arg, ...]
    span: Span
    name_span: Span


class Group(NamedTuple):
    body: Seq
    span: Span


class Branch(NamedTuple):
    merge: str  # "concat" | "add" | "mul"
    branches: tuple[Seq, ...]
    span: Span


class Cond(NamedTuple):
    test: Expr
    then: Seq
    orelse: Seq | None
    span: Span


class TensorRef(NamedTuple):
    """`@enc1`: the chain continues from the earlier tensor named `enc1`."""

    name: str
    span: Span


class Element(NamedTuple):
    unit: Call | Group | Branch | Cond | TensorRef
    repeat: Expr | None
    alias: str | None
    alias_span: Span | None
    span: Span


class Seq(NamedTuple):
    elements: tuple[Element, ...]
    span: Span


# ---- top level -------------------------------------------------------------


class Param(NamedTuple):
    name: str
    default: Expr | None
    span: Span


class BlockDef(NamedTuple):
    name: str
    params: tuple[Param, ...]
    body: Seq
    span: Span
    name_span: Span


class Setting(NamedTuple):
    key: str
    value: Expr
    span: Span


class InputDecl(NamedTuple):
    dims: tuple[Expr, ...]
    span: Span


class Include(NamedTuple):
    path: str
    span: Span


class ModelDecl(NamedTuple):
    name: str
    span: Span


class TrainDef(NamedTuple):
    settings: tuple[Setting, ...]
    span: Span


@dataclass
class SpecFile:
    """One parsed file, statements sorted by kind, in source order."""

    path: str
    model: ModelDecl | None = None
    extra_models: list[ModelDecl] = field(default_factory=list)
    includes: list[Include] = field(default_factory=list)
    inputs: list[InputDecl] = field(default_factory=list)
    blocks: list[BlockDef] = field(default_factory=list)
    trains: list[TrainDef] = field(default_factory=list)
    body: list[Element] = field(default_factory=list)
