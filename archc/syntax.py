"""The syntax tree of a .cnn file: what the user wrote, with source spans.

These are plain frozen dataclasses produced by the parser (archc/parser.py).
They carry no meaning yet: names are not resolved, expressions not evaluated.
The expansion pass (archc/expand.py) gives them meaning and builds the IR.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Union


@dataclass(frozen=True, slots=True)
class Span:
    """A region of one source file, 1-based lines and columns (end exclusive)."""

    file: str
    line: int
    col: int
    end_line: int
    end_col: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


# ---- expressions -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Num:
    value: int | float
    span: Span


@dataclass(frozen=True, slots=True)
class Ref:
    """A bare name: a block parameter, or a symbol such as `same` or `relu`."""

    name: str
    span: Span


@dataclass(frozen=True, slots=True)
class Lit:
    """A literal written in the slides' shorthand: `s2` (stride) or `p1` (padding)."""

    kind: str  # "stride" | "pad"
    value: int
    span: Span


@dataclass(frozen=True, slots=True)
class BinOp:
    op: str
    left: Expr
    right: Expr
    span: Span
    depth: int = 1


@dataclass(frozen=True, slots=True)
class Neg:
    operand: Expr
    span: Span
    depth: int = 1


@dataclass(frozen=True, slots=True)
class Paren:
    inner: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class FCall:
    """`s(2,1)`, `p(1)`, `sgd(momentum=0.9)`: a name applied to arguments."""

    name: str
    args: tuple[Arg, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class ListExpr:
    items: tuple[Expr, ...]
    span: Span


Expr = Union[Num, Ref, Lit, BinOp, Neg, Paren, FCall, ListExpr]


# ---- arguments -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PosArg:
    value: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class KwArg:
    key: str
    value: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class Footnote:
    """A starred marker such as `LRN*` in `B (Yes, LRN*)`: informative only."""

    text: str
    span: Span


Arg = Union[PosArg, KwArg, Footnote]


# ---- layers and structure --------------------------------------------------


@dataclass(frozen=True, slots=True)
class Call:
    """A layer (`C(...)`, `B`) or a block invocation (`ConvBNRelu(64)`)."""

    name: str
    args: tuple[Arg, ...]
    span: Span
    name_span: Span


@dataclass(frozen=True, slots=True)
class Group:
    body: Seq
    span: Span


@dataclass(frozen=True, slots=True)
class Branch:
    merge: str  # "concat" | "add"
    branches: tuple[Seq, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Cond:
    test: Expr
    then: Seq
    orelse: Seq | None
    span: Span


@dataclass(frozen=True, slots=True)
class Element:
    unit: Call | Group | Branch | Cond
    repeat: Expr | None
    alias: str | None
    alias_span: Span | None
    span: Span


@dataclass(frozen=True, slots=True)
class Seq:
    elements: tuple[Element, ...]
    span: Span


# ---- top level -------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    default: Expr | None
    span: Span


@dataclass(frozen=True, slots=True)
class BlockDef:
    name: str
    params: tuple[Param, ...]
    body: Seq
    span: Span
    name_span: Span


@dataclass(frozen=True, slots=True)
class Setting:
    key: str
    value: Expr
    span: Span


@dataclass(frozen=True, slots=True)
class InputDecl:
    dims: tuple[Expr, ...]
    span: Span


@dataclass(frozen=True, slots=True)
class Include:
    path: str
    span: Span


@dataclass(frozen=True, slots=True)
class ModelDecl:
    name: str
    span: Span


@dataclass(frozen=True, slots=True)
class TrainDef:
    settings: tuple[Setting, ...]
    span: Span


@dataclass(slots=True)
class SpecFile:
    """One parsed file, statements sorted by kind, in source order."""

    path: str
    model: ModelDecl | None = None
    includes: list[Include] = field(default_factory=list)
    inputs: list[InputDecl] = field(default_factory=list)
    blocks: list[BlockDef] = field(default_factory=list)
    trains: list[TrainDef] = field(default_factory=list)
    body: list[Element] = field(default_factory=list)
