"""Diagnostics: the user's errors, told the way ruff and rustc tell them.

One `Diagnostic` object (stable code, span, message, what was expected, what was
received, a hint), rendered as text or JSON. Passes collect diagnostics in a
`Diagnostics` sink and raise `SpecError` at the end of a pass when any exist,
so a spec with several mistakes reports them all at once.

Codes:
    E0xx  reading the file (unreadable, binary, empty, too large, too deep)
    E1xx  syntax
    E2xx  names (unknown layer or block, bad identifier, duplicates, recursion)
    E3xx  arguments (arity, unknown option, bad value)
    E4xx  shapes
    E5xx  limits on expansion
    E6xx  training settings
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from archc.language.syntax import Span


@dataclass(frozen=True)
class Diagnostic:
    code: str
    message: str
    span: Span | None = None
    source_line: str | None = None
    expected: str | None = None
    received: str | None = None
    hint: str | None = None
    notes: tuple[str, ...] = ()
    # where the text came from when it is not a file (`the command line, --schedule`):
    # shown instead of file:line:col, and the quoted line has no line number
    origin: str | None = None

    def render(self) -> str:
        out = [f"error[{self.code}]: {self.message}"]
        if self.span is not None and self.origin is not None:
            out.append(f" --> {self.origin}")
            if self.source_line is not None:
                width = max(1, self.span.end_col - self.span.col)
                line, col, width = _window(self.source_line, self.span.col, width)
                out += ["  |", f"  | {line}", f"  | {' ' * (col - 1)}{'^' * width}"]
        elif self.span is not None:
            out.append(f" --> {self.span.file}:{self.span.line}:{self.span.col}")
            if self.source_line is not None:
                num = str(self.span.line)
                pad = " " * len(num)
                line = self.source_line.expandtabs(1)
                width = (
                    self.span.end_col - self.span.col
                    if self.span.end_line == self.span.line
                    else len(line) - self.span.col + 1
                )
                width = max(1, min(width, max(1, len(line) - self.span.col + 1)))
                line, col, width = _window(line, self.span.col, width)
                out.append(f"{pad} |")
                out.append(f"{num} | {line}")
                out.append(f"{pad} | {' ' * (col - 1)}{'^' * width}")
        if self.received is not None:
            out.append(f"  = received: {self.received}")
        if self.expected is not None:
            out.append(f"  = expected: {self.expected}")
        for note in self.notes:
            out.append(f"  = note: {note}")
        if self.hint is not None:
            out.append(f"help: {self.hint}")
        return "\n".join(out)

    def to_dict(self) -> dict:
        d: dict = {"code": self.code, "message": self.message}
        if self.origin is not None:
            d["origin"] = self.origin
        elif self.span is not None:
            d["file"] = self.span.file
            d["line"] = self.span.line
            d["column"] = self.span.col
            d["end_line"] = self.span.end_line
            d["end_column"] = self.span.end_col
        for key in ("expected", "received", "hint"):
            if getattr(self, key) is not None:
                d[key] = getattr(self, key)
        if self.notes:
            d["notes"] = list(self.notes)
        return d


WINDOW = 100  # the most characters of a source line a diagnostic quotes
ELLIPSIS = "..."


def _window(line: str, col: int, width: int) -> tuple[str, int, int]:
    """A long source line cut to WINDOW characters around the caret, with an
    ellipsis where text is left out; returns the shown text and the caret's
    column and width in it (a caret never runs past the shown text)."""
    if len(line) <= WINDOW:
        return line, col, width
    start = max(0, min(col - 1 - WINDOW // 3, len(line) - WINDOW))
    end = start + WINDOW
    shown = line[start:end]
    caret = col - 1 - start  # 0-based in `shown`
    width = max(1, min(width, end - (col - 1)))
    if start > 0:
        shown, caret = ELLIPSIS + shown, caret + len(ELLIPSIS)
    if end < len(line):
        shown += ELLIPSIS
    return shown, caret + 1, width


CLIP = 500  # the longest message, `expected` or `received` text (they may quote the spec)


def _clip(text: str | None) -> str | None:
    """A text that quotes a 1 MB name or value, cut in its middle to CLIP characters."""
    if text is None or len(text) <= CLIP:
        return text
    half = (CLIP - len(ELLIPSIS)) // 2
    return f"{text[:half]}{ELLIPSIS}{text[-half:]}"


class SpecError(Exception):
    """Raised with every diagnostic a pass found. Never a Python bug: a user error."""

    def __init__(self, diagnostics: Iterable[Diagnostic]):
        self.diagnostics = list(diagnostics)
        super().__init__("\n\n".join(d.render() for d in self.diagnostics))

    def render(self) -> str:
        n = len(self.diagnostics)
        tail = f"\n\n{n} error{'s' if n != 1 else ''} found"
        return "\n\n".join(d.render() for d in self.diagnostics) + tail

    def to_json(self) -> str:
        return json.dumps({"errors": [d.to_dict() for d in self.diagnostics]}, indent=2)


@dataclass
class Sources:
    """The text of every file read so far, to quote source lines in diagnostics."""

    texts: dict[str, list[str]] = field(default_factory=dict)

    def add(self, path: str, text: str) -> None:
        self.texts[path] = text.split("\n")

    def line(self, span: Span | None) -> str | None:
        if span is None:
            return None
        lines = self.texts.get(span.file)
        if lines is None or not 1 <= span.line <= len(lines):
            return None
        return lines[span.line - 1].rstrip("\r")


@dataclass
class Diagnostics:
    """A sink that passes report into; `check()` raises if anything was reported."""

    sources: Sources
    items: list[Diagnostic] = field(default_factory=list)
    limit: int = 50

    def error(
        self,
        code: str,
        message: str,
        span: Span | None = None,
        *,
        expected: str | None = None,
        received: str | None = None,
        hint: str | None = None,
        notes: tuple[str, ...] = (),
    ) -> Diagnostic:
        d = Diagnostic(
            code,
            _clip(message),
            span,
            self.sources.line(span),
            expected=_clip(expected),
            received=_clip(received),
            hint=hint,
            notes=notes,
        )
        if any(d == seen for seen in self.items):
            return d  # the same mistake met again (a block's body expanded twice)
        self.items.append(d)
        if len(self.items) >= self.limit:
            raise SpecError(self.items)
        return d

    def fatal(self, code: str, message: str, span: Span | None = None, **kw) -> SpecError:
        """Report and return an exception to raise at once (for errors that stop a pass)."""
        self.error(code, message, span, **kw)
        return SpecError(self.ordered())

    def ordered(self) -> list[Diagnostic]:
        """The diagnostics by position: files in the order first met, then line and
        column (a block's body is checked where it is called, but reported where
        it is written)."""
        files: dict[str, int] = {}
        for d in self.items:
            if d.span is not None:
                files.setdefault(d.span.file, len(files))

        def key(d: Diagnostic) -> tuple:
            if d.span is None:
                return (len(files), 0, 0)
            return (files[d.span.file], d.span.line, d.span.col)

        return sorted(self.items, key=key)

    def check(self) -> None:
        if self.items:
            raise SpecError(self.ordered())


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    """The one choice `word` is a misspelling of, or None.

    Only a slip of the keyboard is corrected: the same name in another case, or
    one edit away (two for words longer than four letters: a letter missing,
    extra, wrong, or two letters swapped), or a compound cut short (`min` for
    `min_lr`, when no other choice starts so). Never a choice whose digits differ
    (`Conv1D` is not `Conv2D`, `relu7` not `relu6`), and nothing when two choices
    are equally close, unless one of them is the word with a doubled letter
    typed once (`adamm` is `adam`, not `adamw`). A word that names something else
    (`hard_swish`, a different function from `hard_sigmoid`) must be caught by its
    caller before asking here: closeness in letters is not sameness in meaning."""
    choices = list(dict.fromkeys(choices))
    lowered = {c.lower(): c for c in choices}
    w = word.lower()
    if w in lowered:
        return lowered[w]
    limit = 1 if len(w) <= 4 else 2
    digits = re.sub(r"\D", "", w)
    scored = sorted((_edits(w, c.lower()), c) for c in choices if re.sub(r"\D", "", c) == digits)
    scored = [(d, c) for d, c in scored if d <= limit]
    if scored:
        best = [c for d, c in scored if d == scored[0][0]]
        if len({c.lower() for c in best}) == 1:
            return best[0]
        undoubled = {w[:i] + w[i + 1 :] for i in range(1, len(w)) if w[i] == w[i - 1]}
        bounced = [c for c in best if c.lower() in undoubled]
        return bounced[0] if len(bounced) == 1 else None
    cut = [c for c in choices if c.lower().startswith(w + "_")]
    return cut[0] if len(w) >= 2 and len(cut) == 1 else None


def _edits(a: str, b: str) -> int:
    """Optimal string alignment distance: insertions, deletions, substitutions and
    swaps of two neighbours."""
    if abs(len(a) - len(b)) > 2:
        return 3
    prev2: list[int] = []
    prev = list(range(len(b) + 1))
    for i in range(1, len(a) + 1):
        cur = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            cost = 0 if a[i - 1] == b[j - 1] else 1
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                cur[j] = min(cur[j], prev2[j - 2] + 1)
        prev2, prev = prev, cur
    return prev[len(b)]
