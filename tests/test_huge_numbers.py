"""Number literals of any length get archc's size diagnostic (issue 11, item 4).

Python refuses to convert an integer string of more than 4,300 digits (and the
conversion is quadratic below that); archc checks the length first. Floats that
overflow (`1e999`, `1e308*10`) are refused as well, never carried on as inf/NaN.
"""

from __future__ import annotations

import time

import pytest

from tests.helpers import compile_str, error

HUGE = "9" * 5000  # beyond Python's int string conversion limit (4,300 digits)
LONG = "1" + "0" * 100_000


@pytest.mark.parametrize(
    "text",
    [
        f"input 8*8*1\nDense({HUGE})",
        f"input 8*8*1\nC({HUGE}*1*1)",
        f"input 8*8*1\nC(8*3*3, s1, same) Dense({LONG})",
        f"input 32x{HUGE}x3\nC(1*1*1)",
        f"input {HUGE}*8*1\nC(1*1*1)",
        f"input 8*8*1\n{{C(1*1*1)}} x{HUGE}",
        f"input 8*8*1\nC(1*1*1) x({HUGE})",
        f"input 8*8*1\nC(8*3*3, s{HUGE}, same)",
        f"input 8*8*1\nC(8*3*3, s1, p{HUGE})",
        f"block U(c={HUGE}) {{ C(c*1*1) }}\ninput 8*8*1\nU()",
        f"input 8*8*1\nC(1*1*1)\ntrain {{ epochs: {HUGE} }}",
        "input 8*8*1\nDense(99999999999)",
    ],
)
def test_huge_integer_literals(text):
    t = time.process_time()
    d = error(text)
    assert d.code == "E305" and "too large" in d.message
    assert len(d.message) < 120  # the literal is abridged, not quoted whole
    assert time.process_time() - t < 2


def test_leading_zeros_are_not_a_large_number():
    m = compile_str("input 8\nDense(" + "0" * 5000 + "10)")
    assert m.node("f1").units == 10


@pytest.mark.parametrize(
    "text",
    [
        "input 8\nD(1e999)",
        "input 8\nD(" + "9" * 400 + ".5)",
        "input 8\nD(1e308*10)",
        "input 8\nD(1e308*10 - 1e308*10)",
        "input 8\nDense(2147483647*1e300)",
        "input 8\nA(leaky_relu(1e999))",
    ],
)
def test_floats_that_overflow(text):
    d = error(text)
    assert d.code == "E305", d.render()


def test_long_float_mantissas_are_read():
    m = compile_str("input 8\nD(0." + "0" * 5000 + "25e5000)")
    assert m.node("d1").rate == 0.25
