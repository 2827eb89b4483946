"""Text -> syntax tree (archc/language/syntax.py), with archc's own diagnostics.

The grammar (archc/language/grammar.lark) is compiled by lark's LALR(1) generator once
and cached on disk, so a fresh process pays only for loading the tables. The
LALR parser builds syntax nodes directly (no parse tree) without recursion, and
the input is checked for size, binary content and nesting depth before
lark sees it, so no deep or huge input can exhaust the stack or the memory.
"""

from __future__ import annotations

import itertools
import os
import re
from functools import lru_cache
from pathlib import Path

from lark import Lark, Token, Transformer, Tree
from lark.exceptions import (
    UnexpectedCharacters,
    UnexpectedEOF,
    UnexpectedInput,
    UnexpectedToken,
    VisitError,
)

from archc.diagnostics import Diagnostics, SpecError
from archc.language import syntax as S
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
    "AT_NAME": "a reference such as `@enc1`",
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
    "NEG": "`-`",
    "ADDOP": "an operator",
    "MULOP": "an operator",
    "CMP": "a comparison",
    "$END": "end of file",
}


class _TooDeep(Exception):
    def __init__(self, span: S.Span):
        self.span = span


class _TooLarge(Exception):
    """A number literal beyond archc's integer limit (or a float that overflows)."""

    def __init__(self, text: str, span: S.Span):
        self.text = text
        self.span = span


# Digits of the largest integer a spec may write: a literal with more
# significant digits is refused before Python converts it (a conversion is
# quadratic in the length, and refused beyond 4,300 digits).
_MAX_DIGITS = len(str(LIMITS.max_int))


def _int_literal(digits: str, span: S.Span) -> int:
    significant = digits.lstrip("0")
    if len(significant) > _MAX_DIGITS:
        raise _TooLarge(digits, span)
    return int(significant or "0")


def _float_literal(text: str, span: S.Span) -> float:
    value = float(text)  # linear in the length; never raises for the FLOAT pattern
    if value in (float("inf"), float("-inf")):
        raise _TooLarge(text, span)
    return value


class _ToSyntax(Transformer):
    """Builds archc.language.syntax nodes. It runs inside the LALR parser, one callback per
    reduction (no parse tree, no recursion), so deep input is safe and a
    10,000-layer spec parses in a fraction of a second. Spans are computed from
    the tokens each node covers."""

    def __init__(self, file: str):
        super().__init__()
        self.file = file

    # -- helpers
    def _of(self, item) -> S.Span | None:
        if isinstance(item, Token):
            return self._tspan(item)
        if type(item) is tuple:  # ("repeat", expr) and ("alias", name, span)
            for x in reversed(item):
                span = x if isinstance(x, S.Span) else getattr(x, "span", None)
                if span is not None:
                    return span
            return None
        return getattr(item, "span", None)

    def _cover(self, items) -> S.Span:
        first = last = None
        for item in items:
            span = self._of(item)
            if span is not None:
                first = first or span
                last = span
        if first is None:
            return S.Span(self.file, 1, 1, 1, 2)
        return S.Span(self.file, first.line, first.col, last.end_line, last.end_col)

    def _tspan(self, tok: Token) -> S.Span:
        return S.Span(self.file, tok.line, tok.column, tok.end_line, tok.end_column)

    # -- top level
    def start(self, items):
        spec = S.SpecFile(path=self.file)
        for item in items:
            if isinstance(item, S.ModelDecl):
                if spec.model is None:
                    spec.model = item
                else:
                    spec.extra_models.append(item)
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

    def model_decl(self, items):
        return S.ModelDecl(str(items[0]), self._tspan(items[0]))

    def include_decl(self, items):
        return S.Include(str(items[0])[1:-1], self._cover(items))

    def input_decl(self, items):
        return S.InputDecl(items[-1], self._cover(items))

    def dims(self, items):
        (item,) = items
        if isinstance(item, Token):  # 32x32x3
            span = self._tspan(item)
            return tuple(S.Num(_int_literal(p, span), span) for p in str(item).split("x"))
        return tuple(_product_factors(item))

    def block_def(self, items):
        name = items[0]
        params = tuple(p for p in items[1:-1] if p is not None)
        return S.BlockDef(str(name), params, items[-1], self._cover(items), self._tspan(name))

    def param(self, items):
        default = items[1] if len(items) > 1 else None
        return S.Param(str(items[0]), default, self._tspan(items[0]))

    def train_def(self, items):
        return S.TrainDef(tuple(items), self._cover(items))

    def setting(self, items):
        return S.Setting(str(items[0]), items[1], self._cover(items))

    # -- structure
    def seq(self, items):
        return S.Seq(tuple(items), self._cover(items))

    def element(self, items):
        unit, repeat, alias, alias_span = items[0], None, None, None
        for extra in items[1:]:
            if type(extra) is tuple and extra[0] == "repeat":
                repeat = extra[1]
            elif type(extra) is tuple and extra[0] == "alias":
                alias, alias_span = extra[1], extra[2]
        return S.Element(unit, repeat, alias, alias_span, self._cover(items))

    def repeat(self, items):
        if len(items) == 1:
            tok = items[0]
            span = self._tspan(tok)
            return ("repeat", S.Num(_int_literal(str(tok)[1:], span), span))
        return ("repeat", items[1])

    def alias(self, items):
        return ("alias", str(items[0]), self._tspan(items[0]))

    def call(self, items):
        name = items[0]
        args = items[1] if len(items) > 1 else ()
        return S.Call(str(name), args, self._cover(items), self._tspan(name))

    def tensor_ref(self, items):
        tok = items[0]
        return S.TensorRef(str(tok)[1:], self._tspan(tok))

    def group(self, items):
        return S.Group(items[0], self._cover(items))

    def branch(self, items):
        return S.Branch(str(items[0]), tuple(items[1:]), self._cover(items))

    def cond(self, items):
        orelse = items[2] if len(items) > 2 else None
        return S.Cond(items[0], items[1], orelse, self._cover(items))

    # -- arguments
    def args(self, items):
        out = []
        for item in items:
            if item is None:
                continue
            if isinstance(item, (S.KwArg, S.Footnote)):
                out.append(item)
            else:
                out.append(S.PosArg(item, item.span))
        return tuple(out)

    def kwarg(self, items):
        key, value = items
        return S.KwArg(str(key), value, self._cover(items))

    def footnote(self, items):
        tok = items[0]
        return S.Footnote(str(tok), self._tspan(tok))

    # -- expressions
    def compare(self, items):
        left, right = items[0], items[2]
        depth = 1 + max(getattr(left, "depth", 0), getattr(right, "depth", 0))
        return S.BinOp(str(items[1]), left, right, self._cover(items), depth)

    def binop(self, items):
        op = str(items[1])
        if op == "\\*":
            op = "*"
        left, right = items[0], items[2]
        depth = 1 + max(getattr(left, "depth", 0), getattr(right, "depth", 0))
        a, b = left.span, right.span  # both operands are expressions, with spans
        span = S.Span(self.file, a.line, a.col, b.end_line, b.end_col)
        if depth > LIMITS.max_nesting:
            raise _TooDeep(span)
        return S.BinOp(op, left, right, span, depth)

    def neg(self, items):  # items: the NEG token (for the span), the operand
        depth = 1 + getattr(items[1], "depth", 0)
        if depth > LIMITS.max_nesting:
            raise _TooDeep(self._cover(items))
        return S.Neg(items[1], self._cover(items), depth)

    def int(self, items):
        tok = items[0]
        span = self._tspan(tok)
        return S.Num(_int_literal(str(tok), span), span)

    def float(self, items):
        tok = items[0]
        span = self._tspan(tok)
        return S.Num(_float_literal(str(tok), span), span)

    def name(self, items):
        tok = items[0]
        return S.Ref(str(tok), self._tspan(tok))

    def stride_lit(self, items):
        tok = items[0]
        span = self._tspan(tok)
        return S.Lit("stride", _int_literal(str(tok)[1:], span), span)

    def pad_lit(self, items):
        tok = items[0]
        span = self._tspan(tok)
        return S.Lit("pad", _int_literal(str(tok)[1:], span), span)

    def fcall(self, items):
        return S.FCall(str(items[0]), items[1], self._cover(items))

    def paren(self, items):
        return S.Paren(items[0], self._cover(items))

    def list(self, items):
        return S.ListExpr(tuple(i for i in items if i is not None), self._cover(items))


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


def _cache_path(kind: str) -> str | bool:
    """Where lark keeps the compiled tables of the grammar (one file per grammar text)."""
    cache_dir = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    try:
        os.makedirs(os.path.join(cache_dir, "archc"), exist_ok=True)
        import hashlib

        digest = hashlib.sha256(GRAMMAR.read_bytes()).hexdigest()[:16]
        return os.path.join(cache_dir, "archc", f"{kind}-{digest}.lark-cache")
    except OSError:
        return True


@lru_cache(maxsize=1)
def _lark() -> Lark:
    return Lark(
        GRAMMAR.read_text(encoding="utf-8"),
        parser="lalr",
        lexer="contextual",
        maybe_placeholders=True,
        transformer=_ToSyntax("<spec>"),
        cache=_cache_path("grammar"),
    )


# The formatter (archc/language/format.py) prints what the user wrote, so it reads
# the same grammar with every token kept (brackets, separators, spellings such as
# `\*` and `，`) and the comments, which the syntax tree leaves out, collected.
_COMMENTS: list[Token] = []


@lru_cache(maxsize=1)
def _concrete_lark() -> Lark:
    return Lark(
        GRAMMAR.read_text(encoding="utf-8"),
        parser="lalr",
        lexer="contextual",
        maybe_placeholders=True,
        keep_all_tokens=True,
        lexer_callbacks={"COMMENT": _COMMENTS.append},
        cache=_cache_path("concrete"),
    )


def concrete_tree(text: str) -> tuple[Tree, list[Token]]:
    """The concrete syntax tree of text that `parse` accepted (lark's tree, every
    token kept, positions on each token) and its comments in source order."""
    parser = _concrete_lark()
    _COMMENTS.clear()  # one parse at a time, as for `_parse`
    tree = parser.parse(text)
    comments = list(_COMMENTS)
    _COMMENTS.clear()
    return tree, comments


def read_source(path: str, diags: Diagnostics) -> str:
    """Read a spec file, refusing what is not a readable, sane-sized text file."""
    try:
        size = os.path.getsize(path)
    except OSError as e:
        raise diags.fatal(
            "E001",
            f"cannot read `{path}`: {e.strerror or e}",
            hint="check the path; specs live under specs/",
        )
    if os.path.isdir(path):
        raise diags.fatal("E001", f"`{path}` is a directory, not a .cnn file")
    if size > LIMITS.max_file_bytes:
        raise diags.fatal(
            "E004",
            f"`{path}` is {size:,} bytes; specs are limited to {LIMITS.max_file_bytes:,} bytes",
            hint="a spec this large is almost certainly not a network description",
        )
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
        raise diags.fatal(
            "E002",
            f"`{path}` is a binary file, not a .cnn spec",
            hint="a spec is UTF-8 text such as `input 32*32*3`",
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise diags.fatal(
            "E002",
            f"`{path}` is not UTF-8 text (bad byte at offset {e.start})",
            hint="save the spec as UTF-8",
        )
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
                    "E005",
                    f"brackets are nested more than {LIMITS.max_nesting} deep",
                    span,
                    hint="flatten the structure with named blocks",
                )
        elif ch in ")}]":
            depth = max(0, depth - 1)


# The words, numbers and signs of a spec, roughly as the grammar's lexer splits
# them (never fewer): comments count nothing, a quoted path one.
_TOKENS = re.compile(
    r'#[^\n]*|("[^"\n]*"|[^\W\d]\w*|[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?'
    r"|//|[=!<>]=|\\\*|\S)"
)


def _check_tokens(text: str, path: str, diags: Diagnostics) -> None:
    """Refuse more than LIMITS.max_tokens tokens before lark sees them: the LALR
    parser is pure Python (a few microseconds a token), so this bounds the parse
    of any file to a few seconds. A token is at least a byte, so a file that
    short is not scanned."""
    if len(text) <= LIMITS.max_tokens:
        return
    found = _TOKENS.findall(text)
    if len(found) - found.count("") <= LIMITS.max_tokens:
        return
    tokens = (m for m in _TOKENS.finditer(text) if m.group(1))
    first_over = next(itertools.islice(tokens, LIMITS.max_tokens, None))
    line = text.count("\n", 0, first_over.start()) + 1
    col = first_over.start() - (text.rfind("\n", 0, first_over.start()) + 1) + 1
    span = S.Span(path, line, col, line, col + len(first_over.group(1)))
    raise diags.fatal(
        "E006",
        f"the spec has more than {LIMITS.max_tokens:,} tokens (names, "
        "numbers and signs); this is the first one over",
        span,
        hint="write repeated layers once with a repeat `xN` or a block",
    )


def parse(text: str, path: str, diags: Diagnostics) -> S.SpecFile:
    """Parse one file's text into a SpecFile, or raise SpecError."""
    diags.sources.add(path, text)
    if len(text.encode("utf-8")) > LIMITS.max_file_bytes:
        raise diags.fatal("E004", f"`{path}` is larger than {LIMITS.max_file_bytes:,} bytes")
    _check_tokens(text, path, diags)
    _check_nesting(text, path, diags)
    try:
        return _parse(text, path)
    except UnexpectedInput as e:
        raise _syntax_error(e, text, path, diags) from None
    except (VisitError, _TooDeep, _TooLarge) as v:
        e = v.orig_exc if isinstance(v, VisitError) else v
        if isinstance(e, _TooLarge):
            raise diags.fatal(
                "E305",
                f"the number {_quoted_number(e.text)} is too large",
                e.span,
                expected=f"integers up to {LIMITS.max_int:,} and finite numbers",
            ) from None
        if not isinstance(e, _TooDeep):
            raise
        raise diags.fatal(
            "E005",
            f"an expression is nested more than {LIMITS.max_nesting} operators deep",
            e.span,
            hint="simplify the arithmetic",
        ) from None


def _quoted_number(text: str, keep: int = 12) -> str:
    """`123` as is; a long literal as `123456...789` (5,000 characters)."""
    if len(text) <= 2 * keep + 3:
        return f"`{text}`"
    return f"`{text[:keep]}...{text[-keep:]}` ({len(text):,} characters)"


def _parse(text: str, path: str) -> S.SpecFile:
    parser = _lark()
    parser.options.transformer.file = path  # spans name this file (one parse at a time)
    return parser.parse(text)


def _expected_words(names) -> str:
    words = sorted({TERMINAL_WORDS.get(n, f"`{n.lower()}`" if n.isalpha() else n) for n in names})
    if len(words) > 8:
        words = words[:8] + ["..."]
    return ", ".join(words)


def _syntax_error(e: UnexpectedInput, text: str, path: str, diags: Diagnostics) -> SpecError:
    line = getattr(e, "line", 1) or 1
    col = getattr(e, "column", 1) or 1
    if isinstance(e, UnexpectedEOF) or (isinstance(e, UnexpectedToken) and e.token.type == "$END"):
        lines = text.split("\n")
        line = len(lines)
        col = len(lines[-1]) + 1
        span = S.Span(path, line, col, line, col + 1)
        expected = _expected_words(getattr(e, "expected", ()) or ())
        return diags.fatal(
            "E102",
            "the spec ends too early",
            span,
            expected=expected or None,
            hint="a bracket or block may be left open",
        )
    if isinstance(e, UnexpectedCharacters):
        ch = text[e.pos_in_stream] if e.pos_in_stream < len(text) else ""
        span = S.Span(path, line, col, line, col + 1)
        hint = None
        if ch == "\t":
            hint = "tabs are fine as white space; check the character before"
        elif ch.isdigit() or ch.isalpha():
            hint = "a name or number cannot stand here; a comma or bracket may be missing"
        allowed = _expected_words(e.allowed or ())
        return diags.fatal(
            "E101", f"unexpected character `{ch}`", span, expected=allowed or None, hint=hint
        )
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
    if value == "|":
        hint = _merge_hint(text, getattr(tok, "start_pos", None))
    return diags.fatal("E103", f"unexpected `{value}`", span, expected=expected or None, hint=hint)


MERGE_WORDS = ("concat", "add", "mul")  # archc/passes/expand.py: MERGES


def _merge_hint(text: str, pos: int | None) -> str:
    """`multiply { a | b }`: `|` separates branches only in a merge; name the merges."""
    words = [f"`{m} {{ a | b }}`" for m in MERGE_WORDS]
    merges = ", ".join(words[:-1]) + " and " + words[-1]
    hint = f"`|` separates the branches of a merge; the merges are {merges}"
    if pos is None:
        return hint
    depth = 0
    for i in range(pos - 1, -1, -1):  # the `{` this `|` stands in
        c = text[i]
        if c == "}":
            depth += 1
        elif c == "{":
            if depth == 0:
                word = re.search(r"([A-Za-z_][A-Za-z0-9_]*)\s*$", text[max(0, i - 100) : i])
                if word and word.group(1) not in MERGE_WORDS:
                    return f"`{word.group(1)}` is not a merge: {hint}"
                return hint
            depth -= 1
    return hint
