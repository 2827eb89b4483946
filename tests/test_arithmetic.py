"""Arithmetic in specs means what Python means, whatever the spacing (issue 11, item 1).

`C(filters*kh*kw)` reads the top-level factors of a product; that convention
must not change what an expression computes anywhere else.
"""

from __future__ import annotations

import pathlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archc.diagnostics import Diagnostics, Sources, SpecError
from archc.language.parser import parse, product_factors
from archc.language.values import Evaluator
from archc.pipeline import compile_spec
from tests.helpers import compile_str

REPROS = pathlib.Path(__file__).parent / "repros"


def archc_value(expr: str):
    """The value archc computes for one expression (parser + evaluator)."""
    diags = Diagnostics(Sources())
    spec = parse(f"input 4\nX({expr})\n", "expr.cnn", diags)
    (element,) = spec.body
    (arg,) = element.unit.args
    return Evaluator({}, diags).eval(arg.value)


def test_repro_block_argument_16_floordiv_2_times_2():
    m = compile_spec(str(REPROS / "arith_precedence_min.cnn"))
    assert m.node("u1.c1").filters == 16


@pytest.mark.parametrize(
    "expr, value",
    [
        ("100//4*2", 50),
        ("10%4*2", 4),
        ("12/4*3", 9),
        ("16//2*2", 16),
        ("2*3//4", 1),
        ("7-2*3", 1),
        ("-7//2*2", -8),
        ("2*-3*4", -24),
        ("1+2*3%4", 3),
        ("(1+2)*3", 9),
        ("9//3//2", 1),
        ("100//10%7", 3),
        ("8/2/2", 2),
        ("3*4/2", 6),
    ],
)
@pytest.mark.parametrize("spacing", ["none", "spaced", "mixed"])
def test_precedence_does_not_depend_on_spacing(expr, value, spacing):
    if spacing == "spaced":
        for op in ("//", "*", "%", "+", "/"):
            expr = expr.replace(op, f" {op} ").replace("/  /", "//")
    elif spacing == "mixed":
        expr = expr.replace("*", " * ", 1)
    assert archc_value(expr) == value


@pytest.mark.parametrize("expr, units", [("100//4*2", 50), ("10%4*2", 4), ("12/4*3", 9)])
def test_issue_cases_through_the_compiler(expr, units):
    m = compile_str(f"input 8\nDense({expr})\n")
    assert m.node("f1").units == units


def test_block_default_uses_python_precedence():
    m = compile_str("block U(ch, w=ch//2*2) { C(w*1*1) }\ninput 8*8*3\nU(25)\n")
    assert m.node("u1.c1").filters == 24
    assert m.blocks[0].args == {"ch": 25, "w": 24}


def test_conv_reads_the_top_level_factors_of_a_product():
    """`C(ch//2*3*3)` is (ch//2) filters of 3x3: the factors of ((ch//2)*3)*3."""
    m = compile_str(
        "block U(ch) { C(ch//2*3*3, s1, same) C((ch*2)*1*3, s1, same) }\n"
        "input 8*8*3\nU(20)\nC(6*3*3)\n"
    )
    assert (m.node("u1.c1").filters, m.node("u1.c1").kernel) == (10, (3, 3))
    assert (m.node("u1.c2").filters, m.node("u1.c2").kernel) == (40, (1, 3))
    assert (m.node("c1").filters, m.node("c1").kernel) == (6, (3, 3))


def test_product_factors_are_the_operands_of_top_level_stars():
    def factors(expr):
        diags = Diagnostics(Sources())
        spec = parse(f"input 4\nX({expr})\n", "f.cnn", diags)
        ev = Evaluator({}, diags)
        return [ev.eval(f) for f in product_factors(spec.body[0].unit.args[0].value)]

    assert factors("6*5*5") == [6, 5, 5]
    assert factors("6 * 5*5") == [6, 5, 5]
    assert factors("12//2*3*3") == [6, 3, 3]
    assert factors("(2*3)*1*1") == [6, 1, 1]
    assert factors("2+3*4*4") == [50]  # a sum is one factor: `+` binds looser than `*`


def test_a_four_factor_conv_is_refused_with_the_grouping_hint():
    with pytest.raises(SpecError) as e:
        compile_str("input 8*8*3\nC(100//4*2*1*1)\n")
    d = e.value.diagnostics[0]
    assert d.code == "E303" and "parentheses" in (d.hint or "")


# ---- property: archc's value is Python's value, with and without spaces ------

# Leaves are 0..30 and an expression has at most 6 of them, so no intermediate
# value exceeds 30**6, well inside archc's integer limit (2**31 - 1).
_LEAVES = 6


@st.composite
def int_expr(draw, leaves: int = _LEAVES) -> list[str]:
    """Tokens of a random integer expression with at most `leaves` literals."""
    if leaves == 1 or draw(st.integers(0, 2)) == 0:
        tokens = [str(draw(st.integers(0, 30)))]
    else:
        left = draw(st.integers(1, leaves - 1))
        a = draw(int_expr(left))
        b = draw(int_expr(draw(st.integers(1, leaves - left))))
        tokens = a + [draw(st.sampled_from(["+", "-", "*", "//", "%"]))] + b
    if draw(st.integers(0, 3)) == 0:
        tokens = ["("] + tokens + [")"]
    if draw(st.integers(0, 5)) == 0:
        tokens = ["-"] + (tokens if tokens[0] == "(" else ["("] + tokens + [")"])
    return tokens


@settings(max_examples=400, derandomize=True, deadline=None)
@given(int_expr(), st.lists(st.sampled_from(["", " ", "  "]), min_size=1, max_size=8))
def test_random_integer_expressions_equal_python(tokens, gaps):
    """The same tokens tight, spaced, and with random gaps: one value, Python's."""
    tight = "".join(tokens)
    spaced = " ".join(tokens)
    mixed = tokens[0] + "".join(gaps[i % len(gaps)] + t for i, t in enumerate(tokens[1:]))
    try:
        expected = eval(tight, {"__builtins__": {}})  # the oracle: Python itself
    except ZeroDivisionError:
        expected = ZeroDivisionError
    for text in (tight, spaced, mixed):
        if expected is ZeroDivisionError:
            with pytest.raises(SpecError) as e:
                archc_value(text)
            assert "division by zero" in e.value.diagnostics[0].message
        else:
            assert archc_value(text) == expected, text
