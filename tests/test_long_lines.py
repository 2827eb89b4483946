"""Long lines and large files (issue 11, item 6): a diagnostic quotes a window of
the source line around the caret, messages never echo a megabyte, and parsing
and diagnosing any input up to the file limit takes a few seconds at most."""

from __future__ import annotations

import time

import pytest

from archc.diagnostics import CLIP, WINDOW, Diagnostic, Diagnostics, Sources, SpecError
from archc.language.parser import parse
from archc.language.syntax import Span
from archc.limits import LIMITS
from archc.pipeline import compile_spec
from tests.helpers import compile_str, error

MB = LIMITS.max_file_bytes - 100


def _quoted(d) -> tuple[str, str]:
    """The quoted source line and the caret line of a rendered diagnostic."""
    lines = d.render().split("\n")
    i = next(i for i, s in enumerate(lines) if s.startswith(f"{d.span.line} | "))
    return lines[i].split(" | ", 1)[1], lines[i + 1].split(" | ", 1)[1]


@pytest.mark.parametrize("where", ["start", "middle", "end"])
def test_a_long_line_is_quoted_as_a_window_around_the_caret(where):
    before = {"start": 0, "middle": 5000, "end": 10000}[where]
    after = 10000 - before
    text = "input 8*8*1\nC(1*1*1) " + "B " * before + "Bogus " + "B " * after
    d = error(text)
    assert d.code == "E201"
    shown, caret = _quoted(d)
    assert len(shown) <= WINDOW + 6
    assert shown.startswith("...") == (where != "start")
    assert shown.endswith("...") == (where != "end")
    col = caret.index("^")
    assert shown[col : col + 5] == "Bogus" and caret[col:] == "^" * 5


def test_a_short_line_is_quoted_whole():
    d = error("input 8*8*1\nC(1*1*1) B Bogus B")
    assert _quoted(d) == ("C(1*1*1) B Bogus B", "           ^^^^^")


def test_a_caret_never_runs_past_the_window():
    line = "x" * 50 + "y" * 10_000
    d = Diagnostic("E101", "m", Span("f", 1, 51, 1, 10_051), line)
    shown, caret = _quoted(d)
    assert len(caret) <= len(shown) and caret.strip("^ ") == ""


def test_messages_quoting_a_megabyte_name_are_clipped():
    name = "a" * MB
    t = time.process_time()
    d = error("input 8*8*1\nC(1*1*1) " + name)
    assert d.code == "E201" and len(d.message) <= CLIP
    assert len(d.render()) < 2000
    assert time.process_time() - t < 5


def _one_mb(unit: str) -> str:
    return "input 8*8*1\nC(1*1*1)\n" + unit * (MB // len(unit))


ONE_MEGABYTE = {
    "layers on one line": _one_mb("C(8*3*3, s1, same) B A(relu) "),
    "empty groups": _one_mb("{}"),
    "arguments": "input 8*8*1\nC(1*1*1" + ",1" * (MB // 2) + ")",
    "names": _one_mb("B "),
    "operators": "input 8*8*1\nDense(1" + "+1" * (MB // 2) + ")",
    "white space then an error": "input 8*8*1\nC(1*1*1)" + " " * MB + "$",
    "a comment": "input 8*8*1\nC(1*1*1) #" + "a" * MB,
    "an integer": "input 8*8*1\nDense(" + "1" * MB + ")",
    "a float": "input 8*8*1\nD(0." + "1" * MB + ")",
    "newlines": "input 8*8*1\nC(1*1*1)" + "\n" * MB + "$",
}


@pytest.mark.parametrize("name", sorted(ONE_MEGABYTE))
def test_any_megabyte_is_parsed_and_diagnosed_in_seconds(name):
    text = ONE_MEGABYTE[name]
    assert len(text.encode()) <= LIMITS.max_file_bytes
    t = time.process_time()
    try:
        compile_str(text)
    except SpecError as e:
        assert len(e.render()) < 5000
    assert time.process_time() - t < 5, name


def test_too_many_tokens_is_refused_at_the_first_one_over():
    text = "input 8*8*1\n" + "B\n" * (LIMITS.max_tokens + 10)
    d = error(text)
    assert d.code == "E006" and f"{LIMITS.max_tokens:,} tokens" in d.message
    # `input 8*8*1` is 6 tokens, then one `B` a line from line 2
    assert d.span.line == 1 + (LIMITS.max_tokens + 1 - 6)


def test_a_file_just_under_the_token_limit_parses():
    text = "input 8\n" + "D(0.5)" * ((LIMITS.max_tokens - 2) // 4)
    spec = parse(text, "t.cnn", Diagnostics(Sources()))
    assert len(spec.body) == (LIMITS.max_tokens - 2) // 4


def test_the_10000_layer_benchmark_is_far_under_the_token_limit():
    text = "input 32*32*8\n" + "C(8*3*3, s1, same) B A(relu)\n" * 3333
    assert len(compile_spec("g.cnn", text).nodes) == 10_000
