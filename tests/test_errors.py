"""Errors are the user's: code, file:line:col, the line with a caret, what was
expected and a hint; never a traceback; exit status 1."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.helpers import SPECS, error, errors

# (spec text, code, line, column, end column, words in the message, words in hint/expected)
CASES = [
    (
        "input 32*32*3\nConx(6*5*5, s1, same)\n",
        "E201",
        2,
        1,
        5,
        "unknown layer or block `Conx`",
        "did you mean `Conv`?",
    ),
    (
        "input 32*32*3\nC(6*5*5, s1, sme)\n",
        "E307",
        2,
        14,
        17,
        "convolution `C` has no option `sme`",
        "did you mean `same`?",
    ),
    (
        "input 32*32*3\nC(6*5*5, s1, same) D(1.5)\n",
        "E304",
        2,
        22,
        25,
        "the dropout rate is out of range",
        "[0.0, 1.0)",
    ),
    (
        "block CBR(ch) { C(ch*3*3) B A(relu) }\ninput 32*32*3\nCBRR(64)\n",
        "E201",
        3,
        1,
        5,
        "unknown layer or block `CBRR`",
        "did you mean `CBR`?",
    ),
    (
        "block Foo(a, b) { C(a*3*3) }\ninput 32*32*3\nFoo(1, 2, 3)\n",
        "E303",
        3,
        11,
        12,
        "block `Foo` takes 2 argument(s), 3 given",
        "Foo(a, b)",
    ),
    (
        "block Foo(a) { Bar(a) }\nblock Bar(a) { Foo(a) }\ninput 8*8*1\nFoo(1)\n",
        "E204",
        2,
        16,
        19,
        "block `Foo` calls itself (Foo -> Bar -> Foo)",
        "use a repeat",
    ),
    (
        "input 32*32*3\nC(64*3*3,s1,same)\nadd { C(128*3*3, s1, same) | identity }\n",
        "E401",
        3,
        1,
        4,
        (
            "add needs every branch to have the same shape, but they are 32 x 32 x 128 "
            "and 32 x 32 x 64"
        ),
        "1x1 projection",
    ),
    (
        "input 32*32*3\nC(6*5*5,s1,same)\nDense(10)\n",
        "E401",
        3,
        1,
        6,
        "`Dense` needs a vector, but its input is 32 x 32 x 6",
        "insert `Flatten`",
    ),
    (
        "input 4*4*3\nP(max, 8, 8)\n",
        "E401",
        2,
        1,
        2,
        "a window of 8 does not fit an input of 4",
        "smaller kernel",
    ),
    (
        "input 32*32*3\nC(6*5*5, s1, same\nB\n",
        "E103",
        3,
        1,
        2,
        "unexpected `B`",
        "is a `)` missing",
    ),
    ("input 8*8*1\nC(6*5*5) @\n", "E101", 2, 10, 11, "unexpected character `@`", "a name"),
    (
        "input 8*8*1\nC(6*5*5, s1, same) x0\n",
        "E304",
        2,
        20,
        22,
        "a repeat count must be a positive integer",
        "0",
    ),
    ("input 8*8*1\nC(99999999999*1*1)\n", "E305", 2, 3, 14, "is too large", "2,147,483,647"),
    ("input 8*8*1\nC(6*5)\n", "E303", 2, 3, 6, "expects filters*kh*kw", "(2*ch)*3*3"),
    (
        "block class(a) { C(a*1*1) }\ninput 8*8*1\nC(1*1*1)\n",
        "E202",
        1,
        7,
        12,
        "`class` cannot name a block",
        "Python keyword",
    ),
    ("input 8*8*1\nC(1*1*1) as max\n", "E202", 2, 13, 16, "`max` cannot name", "builtin"),
    (
        "input 8*8*1\nC(1*1*1) C(2*1*1) as c1\n",
        "E206",
        2,
        22,
        24,
        "the name `c1` is already used here",
        "unique",
    ),
    (
        "input 8*8*1\nConvBNRelu(4)\n",
        "E201",
        2,
        1,
        11,
        "unknown layer or block `ConvBNRelu`",
        "include",
    ),
    (
        "input 8*8*1\nC(4*3*3) B(eps: 0.001, momentum: 2)\n",
        "E304",
        2,
        34,
        35,
        "momentum is out of range",
        "[0.0, 1.0]",
    ),
    (
        "input 8*8*1\nC(4*3*3, kernal: 3)\n",
        "E302",
        2,
        10,
        19,
        "has no option `kernal`",
        "did you mean `kernel:`?",
    ),
    ("input 8*8*1\nA(rel)\n", "E307", 2, 3, 6, "unknown activation `rel`", "did you mean `relu`?"),
    ("input 8*8*1\nP(mux, 2)\n", "E307", 2, 3, 6, "unknown pooling `mux`", "did you mean `max`?"),
]


@pytest.mark.parametrize("text, code, line, col, end_col, message, helpful", CASES)
def test_diagnostic(text, code, line, col, end_col, message, helpful):
    d = error(text)
    assert d.code == code
    assert (d.span.line, d.span.col, d.span.end_col) == (line, col, end_col)
    assert message in d.message
    assert helpful in " ".join(filter(None, (d.hint, d.expected, d.received)))
    assert d.source_line == text.split("\n")[line - 1]


def test_rendering_is_exact():
    d = error("input 32*32*3\nC(6*5*5,s1,same)\nDense(10)\n", name="net.cnn")
    assert (
        d.render()
        == f"""error[E401]: shapes do not fit at `f1` (dense): `Dense` needs a vector, but its input is 32 x 32 x 6
 --> {SPECS / "net.cnn"}:3:1
  |
3 | Dense(10)
  | ^^^^^
  = received: input 32 x 32 x 6
help: insert `Flatten` (or global pooling `GAP`) before it"""
    )


def test_every_error_in_a_spec_is_reported():
    ds = errors("input 8*8*1\nConx(1)\nC(1*1*1, sme)\nA(rel)\n")
    assert [(d.code, d.span.line) for d in ds] == [("E201", 2), ("E307", 3), ("E307", 4)]
    ds = errors("input 8*8*1\nadd { C(2*1*1) | identity }\nadd { C(3*1*1) | identity }\n")
    assert [d.code for d in ds] == ["E401"]  # the second add is downstream of the first
    ds = errors("input 8*8*1\nconcat { add { C(2*1*1) | identity } | add { C(3*1*1) | identity } }")
    assert [(d.code, d.message.split("`")[1]) for d in ds] == [("E401", "add1"), ("E401", "add2")]


def _run(*args, stdin=None):
    return subprocess.run(
        [sys.executable, "-m", "archc", *args], capture_output=True, text=True, input=stdin
    )


@pytest.mark.parametrize(
    "content, code",
    [
        (b"", "E003"),
        (b"   \n# only a comment\n", "E003"),
        (b"\x00\x01\x02binary", "E002"),
        (b"\xff\xfe\xfa not utf-8", "E002"),
        (b"input 8*8*1\nC(", "E102"),
        (b"C(1*1*1)", "E208"),
        (b"input 8*8*1", "E003"),
    ],
)
def test_bad_files_give_diagnostics_not_tracebacks(tmp_path, content, code):
    path = tmp_path / "bad.cnn"
    path.write_bytes(content)
    for command in ("check", "report"):
        r = _run(command, str(path))
        assert r.returncode == 1
        assert f"error[{code}]" in r.stderr
        assert "Traceback" not in r.stderr + r.stdout


def test_missing_file_and_directory(tmp_path):
    r = _run("report", str(tmp_path / "nope.cnn"))
    assert r.returncode == 1 and "error[E001]: cannot read" in r.stderr
    r = _run("check", str(tmp_path))
    assert r.returncode == 1 and "error[E001]" in r.stderr and "Traceback" not in r.stderr


def test_errors_as_json(tmp_path):
    import json

    path = tmp_path / "bad.cnn"
    path.write_text("input 8*8*1\nConx(1)\n")
    r = _run("check", "--json", str(path))
    assert r.returncode == 1
    (d,) = json.loads(r.stderr)["errors"]
    assert (d["code"], d["line"], d["column"]) == ("E201", 2, 1)
    assert d["hint"] == "did you mean `Conv`?"


def test_usage_errors_exit_2():
    assert _run().returncode == 2
    assert _run("frobnicate").returncode == 2
