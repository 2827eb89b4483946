"""Text -> syntax tree (archc/syntax.py), with archc's own diagnostics.

The grammar (archc/grammar.lark) is compiled by lark's LALR(1) generator once
and cached on disk, so a fresh process pays only for loading the tables. Both
the LALR parser and the tree transformer are iterative, and the input is checked for size, binary content and nesting depth before
lark sees it, so no deep or huge input can exhaust the stack or the memory.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from lark import Lark, Token, Transformer_NonRecursive, v_args
from lark.exceptions import (
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
    VisitError,
)

from archc import syntax as S
from archc.diagnostics import Diagnostics, SpecError
from archc.limits import LIMITS

GRAMMAR = Path(__file__).with_name("grammar.lark")

# Human words for the grammar's terminals, used in "expected ..." lines.
TERMINAL_WORDS = {
    "NAME": "a name",
    "KEY": "a label such as `kernel:`",
    "INT": "an integer",
    "FLOAT": "a number",
    "STRING": 'a quoted path such as "stdlib.cnn"',
    "DIMS_X": "dimensions such as 32x32x3",
    "INPUT_KW": "`input`",
    "MERGE": "`concat {` or `add {`",
    "REPEAT_N": "a repeat such as `x3`",
    "REPEAT_OPEN": "`x(`",
    "STRIDE_N": "a stride such as `s2`",
    "PAD_N": "a padding such as `p1`",
    "FOOTNOTE": "a footnote such as `LRN*`",
    "LPAR": "`(`",
    "RPAR": "`)`",
    "LBRACE": "`{`",
    "RBRACE": "`}`",
    "LSQB": "`[`",
    "RSQB": "`]`",
    "_COMMA": "`,`",
    "_COLON": "`:`",
    "COLON": "`:`",
    "EQUAL": "`=`",
    "VBAR": "`|`",
    "MINUS": "`-`",
    "ADDOP": "an operator",
    "MULOP": "an operator",
    "CMP": "a comparison",
    "$END": "end of file",
}


class _TooDeep(Exception):
    def __init__(self, span: S.Span):
        self.span = span


class _ToSyntax(Transformer_NonRecursive):
    """Builds archc.syntax nodes from lark's tree, iteratively (deep input is safe)."""

    def __init__(self, file: str):
        super().__init__()
        self.file = file

    # -- helpers
    def _span(self, meta) -> S.Span:
        if getattr(meta, "empty", True):
            return S.Span(self.file, 1, 1, 1, 2)
        return S.Span(self.file, meta.line, meta.column, meta.end_line, meta.end_column)

    def _tspan(self, tok: Token) -> S.Span:
        return S.Span(self.file, tok.line, tok.column, tok.end_line, tok.end_column)

    # -- top level
    @v_args(meta=True)
    def start(self, meta, items):
        spec = S.SpecFile(path=self.file)
        for item in items:
            if isinstance(item, S.ModelDecl):
                if spec.model is None:
                    spec.model = item
                else:
                    spec.trains.append(item)  # reported as a duplicate later
            elif isinstance(item, S.Include):
                spec.includes.append(item)
            elif isinstance(item, S.InputDecl):
                spec.inputs.append(item)
            elif isinstance(item, S.BlockDef):
                spec.blocks.append(item)
            elif isinstance(item, S.TrainDef):
                spec.trains.append(item)
            else:
                spec.body.append(item)
        return spec

    @v_args(meta=True)
    def model_decl(self, meta, items):
        return S.ModelDecl(str(items[0]), self._tspan(items[0]))

    @v_args(meta=True)
    def include_decl(self, meta, items):
        return S.Include(str(items[0])[1:-1], self._span(meta))

    @v_args(meta=True)
    def input_decl(self, meta, items):
        return S.InputDecl(items[-1], self._span(meta))

    @v_args(meta=True)
    def dims(self, meta, items):
        (item,) = items
        if isinstance(item, Token):  # 32x32x3
            span = self._tspan(item)
            return tuple(S.Num(int(p), span) for p in str(item).split("x"))
        return tuple(_product_factors(item))

    @v_args(meta=True)
    def block_def(self, meta, items):
        name = items[0]
        params = tuple(p for p in items[1:-1] if p is not None)
        return S.BlockDef(str(name), params, items[-1], self._span(meta), self._tspan(name))

    @v_args(meta=True)
    def param(self, meta, items):
        default = items[1] if len(items) > 1 else None
        return S.Param(str(items[0]), default, self._tspan(items[0]))

    @v_args(meta=True)
    def train_def(self, meta, items):
        return S.TrainDef(tuple(items), self._span(meta))

    @v_args(meta=True)
    def setting(self, meta, items):
        return S.Setting(str(items[0]), items[1], self._span(meta))

    # -- structure
    @v_args(meta=True)
    def seq(self, meta, items):
        return S.Seq(tuple(items), self._span(meta))

    @v_args(meta=True)
    def element(self, meta, items):
        unit, repeat, alias, alias_span = items[0], None, None, None
        for extra in items[1:]:
            if isinstance(extra, tuple) and extra[0] == "repeat":
                repeat = extra[1]
            elif isinstance(extra, tuple) and extra[0] == "alias":
                alias, alias_span = extra[1], extra[2]
        return S.Element(unit, repeat, alias, alias_span, self._span(meta))

    @v_args(meta=True)
    def repeat(self, meta, items):
        if len(items) == 1:
            tok = items[0]
            return ("repeat", S.Num(int(str(tok)[1:]), self._tspan(tok)))
        return ("repeat", items[1])

    @v_args(meta=True)
    def alias(self, meta, items):
        return ("alias", str(items[0]), self._tspan(items[0]))

    @v_args(meta=True)
    def call(self, meta, items):
        name = items[0]
        args = items[1] if len(items) > 1 else ()
        return S.Call(str(name), args, self._span(meta), self._tspan(name))

    @v_args(meta=True)
    def group(self, meta, items):
        return S.Group(items[0], self._span(meta))

    @v_args(meta=True)
    def branch(self, meta, items):
        return S.Branch(str(items[0]), tuple(items[1:]), self._span(meta))

    @v_args(meta=True)
    def cond(self, meta, items):
        orelse = items[2] if len(items) > 2 else None
        return S.Cond(items[0], items[1], orelse, self._span(meta))

    # -- arguments
    @v_args(meta=True)
    def args(self, meta, items):
        out = []
        for item in items:
            if item is None:
                continue
            if isinstance(item, (S.KwArg, S.Footnote)):
                out.append(item)
            else:
                out.append(S.PosArg(item, item.span))
        return tuple(out)

    @v_args(meta=True)
    def kwarg(self, meta, items):
        key, value = items
        return S.KwArg(str(key), value, self._span(meta))

    @v_args(meta=True)
    def footnote(self, meta, items):
        tok = items[0]
        return S.Footnote(str(tok), self._tspan(tok))

    # -- expressions
    @v_args(meta=True)
    def compare(self, meta, items):
        left, right = items[0], items[2]
        depth = 1 + max(getattr(left, "depth", 0), getattr(right, "depth", 0))
        return S.BinOp(str(items[1]), left, right, self._span(meta), depth)

    @v_args(meta=True)
    def binop(self, meta, items):
        op = str(items[1])
        if op == "\\*":
            op = "*"
        left, right = items[0], items[2]
        depth = 1 + max(getattr(left, "depth", 0), getattr(right, "depth", 0))
        if depth > LIMITS.max_nesting:
            raise _TooDeep(self._span(meta))
        return S.BinOp(op, left, right, self._span(meta), depth)

    @v_args(meta=True)
    def neg(self, meta, items):
        depth = 1 + getattr(items[0], "depth", 0)
        if depth > LIMITS.max_nesting:
            raise _TooDeep(self._span(meta))
        return S.Neg(items[0], self._span(meta), depth)

    @v_args(meta=True)
    def int(self, meta, items):
        tok = items[0]
        return S.Num(int(str(tok)), self._tspan(tok))

    @v_args(meta=True)
    def float(self, meta, items):
        tok = items[0]
        return S.Num(float(str(tok)), self._tspan(tok))

    @v_args(meta=True)
    def name(self, meta, items):
        tok = items[0]
        return S.Ref(str(tok), self._tspan(tok))

    @v_args(meta=True)
    def stride_lit(self, meta, items):
        tok = items[0]
        return S.Lit("stride", int(str(tok)[1:]), self._tspan(tok))

    @v_args(meta=True)
    def pad_lit(self, meta, items):
        tok = items[0]
        return S.Lit("pad", int(str(tok)[1:]), self._tspan(tok))

    @v_args(meta=True)
    def fcall(self, meta, items):
        return S.FCall(str(items[0]), items[1], self._span(meta))

    @v_args(meta=True)
    def paren(self, meta, items):
        return S.Paren(items[0], self._span(meta))

    @v_args(meta=True)
    def list(self, meta, items):
        return S.ListExpr(tuple(i for i in items if i is not None), self._span(meta))


def _product_factors(expr: S.Expr) -> list[S.Expr]:
    """`6*5*5` -> [6, 5, 5]: the top-level factors of a product (parentheses group)."""
    factors: list[S.Expr] = []
    stack = [expr]
    while stack:
        e = stack.pop()
        if isinstance(e, S.BinOp) and e.op == "*":
            stack.append(e.right)
            stack.append(e.left)
        else:
            factors.append(e)
    return factors


product_factors = _product_factors


@lru_cache(maxsize=1)
def _lark() -> Lark:
    cache_dir = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    cache_path: str | bool = True
    try:
        os.makedirs(os.path.join(cache_dir, "archc"), exist_ok=True)
        import hashlib

        digest = hashlib.sha256(GRAMMAR.read_bytes()).hexdigest()[:16]
        cache_path = os.path.join(cache_dir, "archc", f"grammar-{digest}.lark-cache")
    except OSError:
        cache_path = True
    return Lark(
        GRAMMAR.read_text(encoding="utf-8"),
        parser="lalr",
        lexer="contextual",
        propagate_positions=True,
        maybe_placeholders=True,
        cache=cache_path,
    )


def read_source(path: str, diags: Diagnostics) -> str:
    """Read a spec file, refusing what is not a readable, sane-sized text file."""
    try:
        size = os.path.getsize(path)
    except OSError as e:
        raise diags.fatal("E001", f"cannot read `{path}`: {e.strerror or e}",
                          hint="check the path; specs live under specs/")
    if os.path.isdir(path):
        raise diags.fatal("E001", f"`{path}` is a directory, not a .cnn file")
    if size > LIMITS.max_file_bytes:
        raise diags.fatal("E004", f"`{path}` is {size:,} bytes; specs are limited to "
                          f"{LIMITS.max_file_bytes:,} bytes",
                          hint="a spec this large is almost certainly not a network description")
    try:
        with open(path, "rb") as f:
            data = f.read(LIMITS.max_file_bytes + 1)
    except OSError as e:
        raise diags.fatal("E001", f"cannot read `{path}`: {e.strerror or e}")
    return decode_source(data, path, diags)


def decode_source(data: bytes, path: str, diags: Diagnostics) -> str:
    if len(data) > LIMITS.max_file_bytes:
        raise diags.fatal("E004", f"`{path}` is larger than {LIMITS.max_file_bytes:,} bytes")
    if b"\x00" in data:
        raise diags.fatal("E002", f"`{path}` is a binary file, not a .cnn spec",
                          hint="a spec is UTF-8 text such as `input 32*32*3`")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise diags.fatal("E002", f"`{path}` is not UTF-8 text (bad byte at offset {e.start})",
                          hint="save the spec as UTF-8")
    return text.removeprefix("\ufeff")  # a byte-order mark some editors write


def _check_nesting(text: str, path: str, diags: Diagnostics) -> None:
    depth = 0
    line, col = 1, 0
    for ch in text:
        col += 1
        if ch == "\n":
            line, col = line + 1, 0
        elif ch in "({[":
            depth += 1
            if depth > LIMITS.max_nesting:
                span = S.Span(path, line, col, line, col + 1)
                raise diags.fatal(
                    "E005", f"brackets are nested more than {LIMITS.max_nesting} deep", span,
                    hint="flatten the structure with named blocks")
        elif ch in ")}]":
            depth = max(0, depth - 1)


def parse(text: str, path: str, diags: Diagnostics) -> S.SpecFile:
    """Parse one file's text into a SpecFile, or raise SpecError."""
    diags.sources.add(path, text)
    if len(text.encode("utf-8")) > LIMITS.max_file_bytes:
        raise diags.fatal("E004", f"`{path}` is larger than {LIMITS.max_file_bytes:,} bytes")
    _check_nesting(text, path, diags)
    try:
        return _parse(text, path)
    except UnexpectedInput as e:
        raise _syntax_error(e, text, path, diags) from None
    except VisitError as v:
        if not isinstance(v.orig_exc, _TooDeep):
            raise
        e = v.orig_exc
        raise diags.fatal("E005", f"an expression is nested more than {LIMITS.max_nesting} "
                          "operators deep", e.span, hint="simplify the arithmetic") from None


def _parse(text: str, path: str) -> S.SpecFile:
    tree = _lark().parse(text)
    return _ToSyntax(path).transform(tree)


def _expected_words(names) -> str:
    words = sorted({TERMINAL_WORDS.get(n, f"`{n.lower()}`" if n.isalpha() else n) for n in names})
    if len(words) > 8:
        words = words[:8] + ["..."]
    return ", ".join(words)


def _syntax_error(e: UnexpectedInput, text: str, path: str, diags: Diagnostics) -> SpecError:
    line = getattr(e, "line", 1) or 1
    col = getattr(e, "column", 1) or 1
    if isinstance(e, UnexpectedEOF) or (
        isinstance(e, UnexpectedToken) and e.token.type == "$END"
    ):
        lines = text.split("\n")
        line = len(lines)
        col = len(lines[-1]) + 1
        span = S.Span(path, line, col, line, col + 1)
        expected = _expected_words(getattr(e, "expected", ()) or ())
        return diags.fatal("E102", "the spec ends too early", span, expected=expected or None,
                           hint="a bracket or block may be left open")
    if isinstance(e, UnexpectedCharacters):
        ch = text[e.pos_in_stream] if e.pos_in_stream < len(text) else ""
        span = S.Span(path, line, col, line, col + 1)
        hint = None
        if ch == "\t":
            hint = "tabs are fine as white space; check the character before"
        elif ch.isdigit() or ch.isalpha():
            hint = "a name or number cannot stand here; a comma or bracket may be missing"
        allowed = _expected_words(e.allowed or ())
        return diags.fatal("E101", f"unexpected character `{ch}`", span,
                           expected=allowed or None, hint=hint)
    assert isinstance(e, UnexpectedToken)
    tok = e.token
    end_col = getattr(tok, "end_column", None) or col + max(1, len(str(tok)))
    span = S.Span(path, line, col, line, end_col if tok.end_line == line else col + 1)
    expected = _expected_words(e.accepts or e.expected or ())
    hint = None
    value = str(tok)
    accepts = set(e.accepts or e.expected or ())
    if "RPAR" in accepts and value not in (")",):
        hint = "is a `)` missing before this?"
    elif "RBRACE" in accepts and tok.type == "$END":
        hint = "is a `}` missing?"
    elif value in ("(", ")") or value in ("{", "}"):
        hint = "brackets must balance: `(...)` for arguments, `{...}` for groups and blocks"
    elif tok.type in ("INT", "FLOAT") and "KEY" in (e.accepts or ()):
        hint = "separate arguments with commas"
    return diags.fatal("E103", f"unexpected `{value}`", span, expected=expected or None, hint=hint)
