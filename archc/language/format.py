"""`archc fmt`: a spec printed as canonical .cnn text (docs/language.md, Formatting).

The formatter prints what the user wrote: every statement, block, name,
number, condition, repeat, include and the `train { }` section in source order,
each token spelled as written (`1e-3`, `6\\*5\\*5`, `核`, `，`); only the layout is
canonical (spaces, indentation; the user's line breaks between layers are kept).
So the text it prints parses to the same syntax tree, and compiles to the same IR.

It reads lark's concrete tree of the same grammar (archc/language/parser.py,
`concrete_tree`: every token with its position, and the comments) after the
parser has accepted the text: archc's syntax tree leaves out what a formatter
needs (closing brackets, separators, spellings and comments).

Comments are kept in order. One alone on its line stays alone on its line, at the
indentation of what follows it; one after code stays at the end of its line. A
comment inside something printed on one line (a call's arguments, a block's
parameters, a condition's test) moves to its own line above that line.
"""

from __future__ import annotations

import bisect
from typing import NamedTuple

from lark import Token, Tree

from archc.diagnostics import Diagnostics, Sources
from archc.language.parser import concrete_tree, parse

# Columns: a block, merge, group or condition written on one line stays on one line
# where it fits; a call longer than its own line takes one argument per line.
WIDTH = 100
INDENT = 4  # bodies, `train { }`; a merge's `|` stands half way

_SPACED_SEPARATORS = {",": ", ", ":": ": ", "=": "="}  # `，` and `：` print as written


def format_text(text: str, path: str) -> str:
    """`text` as canonical .cnn text; raises SpecError (the parser's diagnostics)
    when it does not parse."""
    parse(text, path, Diagnostics(Sources()))
    tree, comments = concrete_tree(text)
    return _Printer(text, comments).file(tree)


def _align_comments(lines: list[str | tuple[str, str]]) -> list[str]:
    """The comments at the ends of consecutive lines (code, comment) start in one
    column, two spaces after the longest line's code."""
    out: list[str] = []
    run: list[tuple[str, str]] = []
    for line in [*lines, ""]:
        if isinstance(line, tuple):
            run.append(line)
            continue
        if run:
            width = max(len(code) for code, _ in run)
            out.extend(f"{code.ljust(width)}  {comment}" for code, comment in run)
            run = []
        out.append(line)
    return out[:-1]


class _Comment(NamedTuple):
    pos: int
    text: str
    own_line: bool  # nothing but white space before it on its line


def _first(node: Tree | Token) -> Token:
    while isinstance(node, Tree):
        node = next(c for c in node.children if c is not None)
    return node


def _last(node: Tree | Token) -> Token:
    while isinstance(node, Tree):
        node = next(c for c in reversed(node.children) if c is not None)
    return node


def _trees(node: Tree, data: str) -> list[Tree]:
    return [c for c in node.children if isinstance(c, Tree) and c.data == data]


def _tokens(node: Tree, type_: str) -> list[Token]:
    return [c for c in node.children if isinstance(c, Token) and c.type == type_]


def _separator(tok: Token) -> str:
    return _SPACED_SEPARATORS.get(str(tok), str(tok))


class _Printer:
    def __init__(self, text: str, comments: list[Token]):
        self.text = text
        self.comments = [
            _Comment(
                c.start_pos,
                str(c).rstrip(),
                not text[text.rfind("\n", 0, c.start_pos) + 1 : c.start_pos].strip(),
            )
            for c in comments
        ]
        self.positions = [c.pos for c in self.comments]
        self.next_comment = 0
        self.lines: list[str | tuple[str, str]] = []  # finished lines; (code, comment)
        self.cur = ""  # the line being built, without its indentation
        self.indent = 0
        self.trailing: str | None = None  # a comment that ends the current line
        self.hoisted: list[str] = []  # comments printed above the current line
        self.open = True  # no blank line yet: the start of the file or of a body

    # ---- the output ------------------------------------------------------------

    def flush(self) -> None:
        pad = " " * self.indent
        bar = INDENT // 2 if self.cur.startswith("|") else 0  # a branch's `| ` line
        self.lines.extend(pad + " " * bar + c for c in self.hoisted)
        if self.cur.strip():
            line = pad + self.cur.rstrip()
            self.lines.append((line, self.trailing) if self.trailing else line)
        elif self.trailing:
            self.lines.append(pad + self.trailing)
        self.cur, self.trailing, self.hoisted = "", None, []

    def newline(self, indent: int, pos: int | None = None) -> None:
        """Start a line at `indent` for what stands at source offset `pos`, after one
        blank line when the source has blank lines right before it."""
        blank = pos is not None and not self.open and self._blank_before(pos)
        self.flush()
        if blank and self.lines and self.lines[-1]:
            self.lines.append("")
        self.open = False
        self.indent = indent

    def _blank_before(self, pos: int) -> bool:
        i = pos
        while i > 0 and self.text[i - 1] in " \t\r\n\f\v":
            i -= 1
        return self.text.count("\n", i, pos) >= 2

    def put(self, s: str) -> None:
        if self.trailing is not None:  # a comment ended this line
            self.newline(self.indent)
        first, *more = s.split("\n")  # a block header keeps its line breaks
        self.cur += first
        for line in more:
            self.newline(0)
            self.cur = line

    def space(self) -> None:
        if self.cur and not self.cur.endswith(" "):
            self.cur += " "

    def column(self) -> int:
        return self.indent + len(self.cur)

    # ---- comments ----------------------------------------------------------------

    def _pending(self, pos: int) -> list[_Comment]:
        start = self.next_comment
        end = bisect.bisect_left(self.positions, pos, lo=start)
        self.next_comment = end
        return self.comments[start:end]

    def comments_as_lines(self, pos: int, indent: int) -> int:
        """Print the comments before source offset `pos`: one after code ends the
        current line, the others stand on their own lines at `indent`."""
        pending = self._pending(pos)
        for c in pending:
            if not c.own_line and self.cur.strip() and self.trailing is None:
                self.trailing = c.text
            else:
                self.newline(indent, c.pos)
                self.lines.append(" " * indent + c.text)
        return len(pending)

    def hoist(self, pos: int) -> None:
        """The comments before `pos` (inside what goes on the current line) go above it."""
        pending = self._pending(pos)
        if pending and (self.trailing is not None or self.cur[:1] in (")", "}")):
            self.newline(self.indent)  # not above the end of a call or block: start a line
        self.hoisted.extend(c.text for c in pending)

    def _has_comment(self, node: Tree) -> bool:
        i = bisect.bisect_left(self.positions, _first(node).start_pos)
        return i < len(self.positions) and self.positions[i] < _last(node).end_pos

    # ---- the file ------------------------------------------------------------------

    def file(self, tree: Tree) -> str:
        prev: Tree | None = None
        for st in tree.children:
            start = _first(st)
            if (
                prev is not None
                and st.data == prev.data == "element"
                and start.line <= _last(prev).end_line
            ):
                self.space()  # another layer on the same line
            else:
                self._statement_start(prev, st)
            self.statement(st)
            prev = st
        self.comments_as_lines(len(self.text) + 1, 0)
        self.flush()
        while self.lines and not self.lines[-1]:
            self.lines.pop()
        return "".join(line + "\n" for line in _align_comments(self.lines))

    def _statement_start(self, prev: Tree | None, st: Tree) -> None:
        """A new top-level line. A block definition or `train { }` is set off from
        the statements around it by one blank line (above its own comments)."""
        pending = self._pending(_first(st).start_pos)
        if pending and not pending[0].own_line and self.cur.strip():
            self.trailing = pending.pop(0).text
        self.flush()
        mark = len(self.lines)
        for c in pending:
            self.newline(0, c.pos)
            self.lines.append(c.text)
        self.newline(0, _first(st).start_pos)
        near = prev is not None and (self._set_off(prev) or self._set_off(st))
        if near and "" not in self.lines[mark:]:
            self.lines.insert(mark, "")

    def _set_off(self, st: Tree) -> bool:
        """`train { }` and a block definition on several lines (one-line definitions
        may stand together)."""
        if st.data == "block_def":
            return self.block_one_line(st) is None
        return st.data == "train_def"

    def statement(self, st: Tree) -> None:
        if st.data == "element":
            self.element(st, 0)
        elif st.data == "block_def":
            self.block_def(st)
        elif st.data == "train_def":
            self.train_def(st)
        else:  # model, include, input: one line each
            self.hoist(_last(st).end_pos)
            self.put(self.declaration(st))

    def declaration(self, st: Tree) -> str:
        if st.data == "input_decl":
            keyword, *colon, dims = st.children
            (value,) = dims.children
            value = str(value) if isinstance(value, Token) else self.expr(value)
            return f"{keyword}{_separator(colon[0]) if colon else ' '}{value}"
        return " ".join(str(t) for t in st.children)  # model NAME, include "path"

    def block_def(self, st: Tree) -> None:
        one_line = self.block_one_line(st)
        if one_line is not None:
            self.put(one_line)
            return
        lbrace, rbrace = st.children[-3], st.children[-1]
        self.hoist(lbrace.start_pos)  # comments in the header
        self.put(self.block_head(st, wrap=True) + " {")
        self.body(st.children[-2], 0, rbrace)

    def block_one_line(self, st: Tree) -> str | None:
        """`block A(ch) { C(ch*3*3) B }` where it was written on one line and fits."""
        if _first(st).line != _last(st).end_line or self._has_comment(st):
            return None
        text = f"{self.block_head(st, wrap=False)} {self.braced(st.children[-2])}"
        return text if len(text) <= WIDTH else None

    def block_head(self, st: Tree, wrap: bool) -> str:
        """`block Name(params)`; with `wrap`, the parameters keep the user's line
        breaks, continuation lines aligned with the first parameter."""
        head = f"block {st.children[1]}"
        if not _tokens(st, "LPAR"):
            return head
        head += "("
        lpar = st.children.index(_tokens(st, "LPAR")[0])
        rpar = st.children.index(_tokens(st, "RPAR")[0])
        items = st.children[lpar + 1 : rpar]
        params = [p for p in items if isinstance(p, Tree)]
        pieces = self.separated(items, pieces=True)
        text = head
        for i, piece in enumerate(pieces):
            if wrap and i and _first(params[i]).line > _last(params[i - 1]).end_line:
                text = text.rstrip() + "\n" + " " * len(head)
            text += piece
        return text + ")"

    def train_def(self, st: Tree) -> None:
        lbrace, rbrace = st.children[1], st.children[-1]
        self.hoist(lbrace.start_pos)
        self.put("train {")
        settings = _trees(st, "setting")
        if not settings and not self._pending_before(rbrace.start_pos):
            self.put("}")
            return
        self.open = True
        for s in settings:
            self.comments_as_lines(_first(s).start_pos, INDENT)
            self.newline(INDENT, _first(s).start_pos)
            self.hoist(_last(s).end_pos)
            key, colon, value = s.children
            self.put(f"{key}{_separator(colon)}{self.expr(value)}")
        self.comments_as_lines(rbrace.start_pos, INDENT)
        self.newline(0)
        self.put("}")

    # ---- sequences and elements ---------------------------------------------------

    def body(self, seq: Tree, indent: int, rbrace: Token) -> None:
        """`{` is on the current line: the elements at indent + 4, then `}`."""
        if not seq.children and not self._pending_before(rbrace.start_pos):
            self.put("}")  # `{}`
            return
        self.open = True
        self.seq_lines(seq, indent + INDENT, same_line=False)
        self.comments_as_lines(rbrace.start_pos, indent + INDENT)
        self.newline(indent)
        self.put("}")

    def _pending_before(self, pos: int) -> bool:
        i = self.next_comment
        return i < len(self.positions) and self.positions[i] < pos

    def seq_lines(self, seq: Tree, indent: int, same_line: bool) -> None:
        """The elements of a sequence, keeping the user's line breaks between them.
        `same_line`: the first one continues the current line (after a `|`)."""
        prev: Tree | None = None
        for el in seq.children:
            start = _first(el)
            self.comments_as_lines(start.start_pos, indent)
            if prev is None:
                broken = not same_line  # the first element of a body starts its line
            else:
                broken = start.line > _last(prev).end_line  # the user's line break
            if broken or self.trailing is not None or not self.cur.strip():
                self.newline(indent, start.start_pos)
            else:
                self.space()
            self.element(el, indent)
            prev = el

    def element(self, el: Tree, indent: int) -> None:
        unit = el.children[0]
        suffix = "".join(self.suffix(part) for part in el.children[1:])
        text = self.inline(unit)
        if unit.data in ("call", "tensor_ref"):
            self.hoist(_last(el).end_pos)  # first: it may start a line
        fits = text is not None and self.column() + len(text + suffix) <= WIDTH
        if fits or unit.data in ("call", "tensor_ref") and not self._explodes(unit):
            self.hoist(_last(el).end_pos)
            self.put(text + suffix)
            return
        if unit.data == "call":  # too long for a line of its own: one argument per line
            self.put(text[: text.index("(") + 1])
            for piece in self.separated(unit.children[2].children, pieces=True):
                if piece.strip():
                    self.newline(indent + INDENT)
                    self.put(piece.rstrip())
            self.newline(indent)
            self.put(")" + suffix)
            return
        self.lines_of(unit, indent)
        if suffix:  # after the `}` of a unit written on several lines
            if self.comments_as_lines(_last(el).end_pos, indent):
                self.newline(indent)
                suffix = suffix.lstrip()
            self.put(suffix)

    def _explodes(self, unit: Tree) -> bool:
        """A call with arguments that starts its line (after a `|` at most) and does
        not fit takes one argument per line; one later on a line leaves it long."""
        return unit.data == "call" and len(unit.children) > 1 and self.cur.strip() in ("", "|")

    def suffix(self, part: Tree) -> str:
        if part.data == "alias":
            return f" as {part.children[1]}"
        if len(part.children) == 1:  # x3
            return f" {part.children[0]}"
        return f" x({self.expr(part.children[1])})"

    def inline(self, unit: Tree) -> str | None:
        """The unit on one line, or None where it keeps several: a group, condition or
        merge written on several lines or with a comment inside."""
        if unit.data == "call":
            name = str(unit.children[0])
            if len(unit.children) == 1:
                return name
            # `x(` after a layer is a repeat: a call named x keeps a space before `(`
            return f"{name}{' ' if name == 'x' else ''}({self.args(unit.children[2])})"
        if unit.data == "tensor_ref":
            return str(unit.children[0])
        if self._has_comment(unit) or _first(unit).line != _last(unit).end_line:
            return None
        if unit.data == "branch":
            text = f"{unit.children[0]} {{"
            for i, seq in enumerate(_trees(unit, "seq")):
                arm = self.seq_inline(seq)
                text += (" |" if i else "") + (f" {arm}" if arm else "")
            return text + " }"
        seqs = [self.braced(s) for s in _trees(unit, "seq")]
        if unit.data == "group":
            return seqs[0]
        text = f"if {self.expr(unit.children[1])} {seqs[0]}"
        return text + (f" else {seqs[1]}" if len(seqs) > 1 else "")

    def seq_inline(self, seq: Tree) -> str:
        """A sequence written on one line without comments, on one line."""
        texts = []
        for el in seq.children:
            text = self.inline(el.children[0])
            assert text is not None  # what it holds is on its line, without comments
            texts.append(text + "".join(self.suffix(p) for p in el.children[1:]))
        return " ".join(texts)

    def braced(self, seq: Tree) -> str:
        text = self.seq_inline(seq)
        return f"{{ {text} }}" if text else "{}"

    def lines_of(self, unit: Tree, indent: int) -> None:
        """A group, condition or merge on several lines; leaves `}` on the current line."""
        if unit.data == "group":
            self.put("{")
            self.body(unit.children[1], indent, unit.children[2])
        elif unit.data == "cond":
            if_, test, lbrace, seq, rbrace, *orelse = unit.children
            self.hoist(lbrace.start_pos)  # comments in the test
            self.put(f"if {self.expr(test)} ")
            self.braced_lines(if_, seq, rbrace, indent)
            if orelse:
                else_, lbrace, seq, end = orelse
                moved = self.comments_as_lines(lbrace.start_pos, indent)
                if moved or else_.line > rbrace.line:  # `else` where the user broke the line
                    self.newline(indent)
                else:
                    self.space()
                self.put("else ")
                self.braced_lines(else_, seq, end, indent)
        else:
            self.merge_lines(unit, indent)

    def braced_lines(self, start: Token, seq: Tree, rbrace: Token, indent: int) -> None:
        """`{ ... }` of a condition: on its line where it was written on one line from
        `start` (`if`, `else`) and fits, else a body on lines of its own."""
        one_line = start.line == rbrace.line and not self._pending_before(rbrace.start_pos)
        text = self.braced(seq) if one_line else ""
        if one_line and self.column() + len(text) <= WIDTH:
            self.put(text)
        else:
            self.put("{")
            self.body(seq, indent, rbrace)

    def merge_lines(self, unit: Tree, indent: int) -> None:
        """One branch per line (or several, as written), each after a leading `|`."""
        self.put(f"{unit.children[0]} {{")
        self.open = True
        seqs = _trees(unit, "seq")
        bars = _tokens(unit, "VBAR")
        inner = indent + INDENT
        self.seq_lines(seqs[0], inner, same_line=False)
        for bar, seq in zip(bars, seqs[1:]):
            self.comments_as_lines(bar.start_pos, inner)
            self.newline(indent + INDENT // 2)
            self.put("|")
            self.open = True
            self.seq_lines(seq, inner, same_line=True)
        self.comments_as_lines(unit.children[-1].start_pos, inner)
        self.newline(indent)
        self.put("}")

    # ---- arguments and expressions -----------------------------------------------

    def args(self, node: Tree) -> str:
        return self.separated(node.children)

    def separated(self, items: list, pieces: bool = False):
        """Items and the separators between them as written (`，` stays full-width;
        an empty slot `B(Yes, , LRN*)` stays), one space after an ASCII comma."""
        out = [""]
        for item in items:
            if item is None:
                continue
            if isinstance(item, Token) and item.type == "_COMMA":
                out[-1] += _separator(item)
                out.append("")
            else:
                out[-1] += self.expr(item)
        if pieces:
            return out
        return "".join(out).rstrip()

    def expr(self, node: Tree | Token) -> str:
        if isinstance(node, Token):
            return str(node)
        kind, ch = node.data, node.children
        if kind in ("binop", "compare"):
            left, op, right = ch
            spaced = op.type != "MULOP"  # `6*5*5`, `k//2 - 1`, `s == 2`
            sep = " " if spaced else ""
            return f"{self.expr(left)}{sep}{op}{sep}{self.expr(right)}"
        if kind == "neg":
            return f"-{self.expr(ch[1])}"
        if kind == "paren":
            return f"({self.expr(ch[1])})"
        if kind == "fcall":
            return f"{ch[0]}({self.args(ch[2])})"
        if kind == "list":
            return f"[{self.separated(ch[1:-1])}]"
        if kind in ("kwarg", "param", "setting"):
            if len(ch) == 1:  # a parameter without a default
                return str(ch[0])
            key, colon, value = ch
            return f"{key}{_separator(colon)}{self.expr(value)}"
        (tok,) = ch  # int, float, name, stride_lit, pad_lit, footnote: as written
        return str(tok)
