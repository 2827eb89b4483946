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

import difflib
import json
from dataclasses import dataclass, field
from typing import Iterable

from archc.syntax import Span


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

    def render(self) -> str:
        out = [f"error[{self.code}]: {self.message}"]
        if self.span is not None:
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
                out.append(f"{pad} |")
                out.append(f"{num} | {line}")
                out.append(f"{pad} | {' ' * (self.span.col - 1)}{'^' * width}")
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
        if self.span is not None:
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
            message,
            span,
            self.sources.line(span),
            expected=expected,
            received=received,
            hint=hint,
            notes=notes,
        )
        self.items.append(d)
        if len(self.items) >= self.limit:
            raise SpecError(self.items)
        return d

    def fatal(self, code: str, message: str, span: Span | None = None, **kw) -> SpecError:
        """Report and return an exception to raise at once (for errors that stop a pass)."""
        self.error(code, message, span, **kw)
        return SpecError(self.items)

    def check(self) -> None:
        if self.items:
            raise SpecError(self.items)


def did_you_mean(word: str, choices: Iterable[str]) -> str | None:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    if not close:
        lowered = {c.lower(): c for c in choices}
        if word.lower() in lowered:
            return lowered[word.lower()]
        return None
    return close[0]
