"""Hard limits and hostile input: every case is archc's own diagnostic, never a
RecursionError, MemoryError or traceback, and nothing from a spec is executed."""

from __future__ import annotations

import pytest

from archc.limits import LIMITS
from tests.helpers import compile_str, error


def test_file_size_limit(tmp_path):
    path = tmp_path / "big.cnn"
    path.write_text("input 8*8*1\n" + "# padding\n" * (LIMITS.max_file_bytes // 10 + 1))
    from archc.diagnostics import SpecError
    from archc.pipeline import compile_spec

    with pytest.raises(SpecError) as e:
        compile_spec(str(path))
    assert e.value.diagnostics[0].code == "E004"


@pytest.mark.parametrize(
    "text",
    [
        "input 8*8*1\n" + "{" * 100 + "C(1*1*1)" + "}" * 100,
        "input 8*8*1\nC(" + "(" * 200 + "1" + ")" * 200 + "*1*1)",
        "input 8*8*1\n" + "[" * 10000,
    ],
)
def test_deep_brackets(text):
    assert error(text).code == "E005"


@pytest.mark.parametrize("op", ["+", "*", "-"])
def test_long_expressions(op):
    """A 20,000-operator expression is deep for a recursive evaluator."""
    d = error("input 8*8*1\nC((" + op.join(["1"] * 20000) + ")*1*1)")
    assert d.code == "E005"


def test_unary_minus_chain():
    assert error("input 8*8*1\nC(" + "-" * 5000 + "1*1*1)").code == "E005"


def test_sixty_bytes_that_mean_ten_billion_layers():
    text = "input 8*8*1\n{{{{C(1*1*1)x1000}x1000}x100}x100}"
    assert len(text) <= 60
    d = error(text)
    assert d.code == "E501" and "more than archc's limit" in d.message


def test_exponential_blocks_are_counted_not_expanded():
    """Each block doubles the one before: 2^40 nodes from 40 short lines."""
    lines = ["block B0() { C(1*1*1) }"]
    lines += [f"block B{i}() {{ B{i - 1}() B{i - 1}() }}" for i in range(1, 41)]
    d = error("\n".join(lines) + "\ninput 4*4*1\nB40()\n")
    assert d.code == "E501"


def test_recursion():
    assert error("block Ping(n) { Ping(n) }\ninput 4*4*1\nPing(1)").code == "E204"
    assert (
        error("block Ping(n) { Pong(n) }\nblock Pong(n) { Ping(n) }\ninput 4*4*1\nPing(1)").code
        == "E204"
    )


def test_deep_block_calls():
    lines = ["block B0() { C(1*1*1) }"]
    lines += [f"block B{i}() {{ B{i - 1}() }}" for i in range(1, 80)]
    assert error("\n".join(lines) + "\ninput 4*4*1\nB79()\n").code == "E503"


def test_within_limits_compiles():
    lines = ["block B0() { C(1*1*1, s1, same) }"]
    lines += [f"block B{i}() {{ B{i - 1}() }}" for i in range(1, 30)]
    m = compile_str("\n".join(lines) + "\ninput 4*4*1\nB29() x10\n")
    assert len(m.nodes) == 11


@pytest.mark.parametrize(
    "text",
    [
        "input 8*8*1\nC(2147483648*1*1)",
        "input 8*8*1\nC((65536*65536)*1*1)",
        "input 99999999999*8*1\nC(1*1*1)",
    ],
)
def test_integer_limits(text):
    assert error(text).code == "E305"


def test_huge_but_legal_shapes_do_not_overflow():
    m = compile_str("input 60000*60000*3\nC(512*3*3, s1, same)")
    assert m.macs == 60000 * 60000 * 512 * 27


@pytest.mark.parametrize(
    "text, code",
    [
        ('block "evil"() { C(1*1*1) }\ninput 4*4*1', "E103"),
        ("block C() { C(1*1*1) }\ninput 4*4*1\nC()", "E202"),  # a layer kind's name
        ("block __import__() { C(1*1*1) }\ninput 4*4*1\n__import__()", "E202"),
        ("block exec() { C(1*1*1) }\ninput 4*4*1\nexec()", "E202"),
        ("block Blöck() { C(1*1*1) }\ninput 4*4*1\nBlöck()", "E202"),
        ("block X(__class__) { C(1*1*1) }\ninput 4*4*1\nX(1)", "E202"),
        ("block X(lambda) { C(1*1*1) }\ninput 4*4*1\nX(1)", "E202"),
        ("block X(match) { C(1*1*1) }\ninput 4*4*1\nX(1)", "E202"),  # soft keyword
        ("block X(a, a) { C(a*1*1) }\ninput 4*4*1\nX(1, 2)", "E206"),
        ("block X(a) { C(a*1*1) }\nblock X(b) { C(b*1*1) }\ninput 4*4*1\nX(1)", "E205"),
        ("input 4*4*1\nC(1*1*1) as self", "E202"),
        ("input 4*4*1\nC(1*1*1) as torch", "E202"),
        ("input 4*4*1\nC(1*1*1) as s2", "E202"),
        ("model import\ninput 4*4*1\nC(1*1*1)", "E202"),
        ("model 'x'\ninput 4*4*1\nC(1*1*1)", "E101"),
        ("input 4*4*1\nC(__import__('os').system('touch pwned')*1*1)", "E101"),
        ("input 4*4*1\nC(__import__*1*1)", "E304"),
    ],
)
def test_hostile_names(text, code):
    assert error(text).code == code


def test_nothing_from_a_spec_is_executed(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    error("input 4*4*1\nC(__import__('os').system('touch pwned')*1*1)")
    error("input 4*4*1\nA(eval)\nD(exec)")
    assert not (tmp_path / "pwned").exists()


def test_includes(tmp_path):
    from archc.diagnostics import SpecError
    from archc.pipeline import compile_spec

    (tmp_path / "a.cnn").write_text('include "b.cnn"\nblock Ping() { Pong() }\n')
    (tmp_path / "b.cnn").write_text('include "a.cnn"\nblock Pong() { C(1*1*1) }\n')
    (tmp_path / "net.cnn").write_text('include "a.cnn"\ninput 4*4*1\nPing()\n')
    assert len(compile_spec(str(tmp_path / "net.cnn")).nodes) == 2  # a cycle is harmless
    (tmp_path / "layers.cnn").write_text("input 4*4*1\nC(1*1*1)\n")
    (tmp_path / "bad.cnn").write_text('include "layers.cnn"\ninput 4*4*1\nC(1*1*1)\n')
    with pytest.raises(SpecError) as e:
        compile_spec(str(tmp_path / "bad.cnn"))
    assert e.value.diagnostics[0].code == "E207"
    (tmp_path / "missing.cnn").write_text('include "nope.cnn"\ninput 4*4*1\nC(1*1*1)\n')
    with pytest.raises(SpecError) as e:
        compile_spec(str(tmp_path / "missing.cnn"))
    assert e.value.diagnostics[0].code == "E001"
