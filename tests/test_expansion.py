"""The expansion count (archc/passes/expand.py) is exact and instant (issue 11, items 5 and 7).

The count says how many nodes a spec makes before any is built; it must be the
number the expansion then builds (a layer call that makes one node counts one,
`identity` none), and it must take no time however the spec nests things that
make nothing (`{ } x2` fifty deep is 2**50 empty repetitions).
"""

from __future__ import annotations

import contextlib
import pathlib
import signal
import time

import pytest

from archc.diagnostics import Diagnostics, Sources, SpecError
from archc.limits import LIMITS, Limits
from archc.passes import expand
from archc.passes.expand import Expander, _Env, build_ir, is_library, load
from tests.helpers import SPECS, compile_str, error

REPROS = pathlib.Path(__file__).parent / "repros"


@contextlib.contextmanager
def within(seconds: float):
    """Fail (instead of hanging the suite) if the body uses more than `seconds` of
    this process's CPU time (not wall time: other work on a loaded machine does not
    count against it)."""

    def expire(signum, frame):
        raise TimeoutError(f"took more than {seconds} s of CPU time")

    old = signal.signal(signal.SIGPROF, expire)
    signal.setitimer(signal.ITIMER_PROF, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, old)


def counted(path: str, text: str | None = None) -> tuple[int, int]:
    """(nodes, block instances) the count predicts for a spec, input node included."""
    diags = Diagnostics(Sources())
    program = load(path, diags, text)
    ex = Expander(program, diags)
    plan = ex.count_seq(program.main.body, _Env({}, diags, ()), ())
    return plan.nodes + 1, plan.instances


def built(path: str, text: str | None = None):
    diags = Diagnostics(Sources())
    model = build_ir(load(path, diags, text), diags, source=path)
    return len(model.nodes), len(model.blocks)


# ---- item 5: nothing repeated is free -----------------------------------------


def test_repro_fifty_nested_empty_groups_compiles_at_once():
    t = time.process_time()
    with within(5):
        m = expand_model = compile_str((REPROS / "nested_groups_hang.cnn").read_text())
    assert len(expand_model.nodes) == 9 and m.node("f3").units == 10
    assert time.process_time() - t < 2


def _nest(inner: str, depth: int, open_: str = "{", close: str = "} x2") -> str:
    return open_ * depth + inner + close * depth


EMPTY_SHAPES = {
    "groups": _nest("", 50),
    "groups of identity": _nest("identity", 50),
    "groups of None rows": _nest("B (None) D(None)", 50),
    "groups of a false condition": _nest("if 0 { C(1*1*1) }", 50),
    "groups of an empty else": _nest("if 1 { } else { C(1*1*1) }", 50),
    "huge repeats": "{{{{ identity x2147483647 } x2147483647 } x2147483647 } x2147483647}",
    "empty block": "block E() { }\ninput 4*4*1\nC(1*1*1)\n" + _nest("{ if 0 { E() } }", 40),
    "empty block body of groups": "block E() { " + _nest("", 30) + " }\ninput 4*4*1\nC(1*1*1) E()",
    "empty branch arms in empty groups": _nest("{ } { identity }", 50),
    "many empty groups in a repeat": "{ C(1*1*1) " + "{} " * 20_000 + "} x1000",
}


@pytest.mark.parametrize("name", sorted(EMPTY_SHAPES))
def test_things_that_make_nothing_cost_nothing(name):
    text = EMPTY_SHAPES[name]
    if "input" not in text:
        text = "input 4*4*1\nC(1*1*1)\n" + text
    t = time.process_time()
    with within(10):
        nodes, _ = built("inline.cnn", text)
    assert time.process_time() - t < 2
    assert nodes == counted("inline.cnn", text)[0]


@pytest.mark.parametrize(
    "text, what",
    [
        ("block E() { }\ninput 4*4*1\nC(1*1*1)\n" + _nest("E()", 40), "block instances"),
        ("input 4*4*1\nC(1*1*1)\n" + _nest("{ } as g", 40), "block instances"),
        ("input 4*4*1\n" + _nest("C(1*1*1)", 40), "nodes"),
        ("input 4*4*1\n" + _nest("add { | }", 40), "nodes"),
    ],
)
def test_what_cannot_be_skipped_is_refused_at_once(text, what):
    with within(5):
        d = error(text)
    assert d.code == "E501" and what in d.message


# ---- item 7: the count is exact -------------------------------------------------


def _spec_files():
    out = []
    for p in sorted(SPECS.glob("*.cnn")):
        if not is_library(load(str(p), Diagnostics(Sources()))):
            out.append(p.name)
    return out


@pytest.mark.parametrize("name", _spec_files())
def test_count_equals_built_nodes_on_every_spec(name):
    path = str(SPECS / name)
    assert counted(path) == built(path)


CONSTRUCTED = [
    "input 8*8*4\nC(4*3*3, s1, same) B A(relu) P(max, 2, 2) D(0.5)",
    "input 8*8*4\nadd { C(4*3*3, s1, same) B A(relu) | identity }",
    "input 8*8*4\nadd { C(4*3*3, s1, same) | } x3",
    "input 8*8*4\nconcat { C(4*1*1) | C(4*1*1) | P(max, 3, 1, same) | identity } as cat",
    "input 8*8*4\n{ C(4*3*3, s1, same) B (None) A(relu) } x5",
    (
        "input 64\nDense(10, relu) Dense(神经元: 10, 激活: relu, Dropout: 0.2) "
        "Dense(units: 8, dropout: None)"
    ),
    (
        "block R(c) { add { C(c*3*3, s1, same) B A(relu) | identity } }\n"
        "block S(c, n=2) { R(c) x(n) { R(c) } as inner }\n"
        "input 8*8*4\nS(4) S(4, n=3) S(4) x2 R(4) as last"
    ),
    (
        "block T(r=0) { C(4*1*1) if r { C(4*1*1) } else { identity } }\n"
        "input 8*8*4\nT() T(1) T(r=0) x3 { T(1) } x4"
    ),
    (
        "block Grow(c) { if c > 8 { C(c*1*1) } }\n"
        "block Net(c) { Grow(c) Grow(2*c) add { Grow(c) | Grow(16) C(4*1*1) } }\n"
        "input 8*8*4\nNet(4) Net(8) x2"
    ),
    "block Blk(c=1) { C(4*1*1) }\ninput 8*8*4\nBlk(1) Blk(1.0) Blk(c=1)",
]


@pytest.mark.parametrize("text", CONSTRUCTED)
def test_count_equals_built_nodes_on_constructed_specs(text):
    assert counted("inline.cnn", text) == built("inline.cnn", text)


def test_arguments_that_differ_in_type_are_not_merged():
    """`Blk(1)` and `Blk(1.0)` share a count only if they bind alike: 1.0 filters is an error."""
    with pytest.raises(SpecError) as e:
        compile_str("block Blk(c) { C(c*1*1) }\ninput 8*8*4\nBlk(1) Blk(1.0)")
    assert [d.code for d in e.value.diagnostics] == ["E304"]


BIG = (
    "block R(c) { add { C(c*3*3, s1, same) B A(relu) | identity } }\n"
    "input 8*8*8\nR(8) x24999\nC(8*3*3, s1, same) B A(relu)\n"
)


def test_the_issue_spec_counts_its_true_figure():
    """Four nodes per block, 24,999 blocks, the input and three more: 100,000 exactly
    (the old estimate said 225,000 and refused it)."""
    with within(10):
        assert counted("big.cnn", BIG) == (100_000, 24_999)


@pytest.mark.slow
def test_the_issue_spec_compiles():
    assert len(compile_str(BIG).nodes) == 100_000


@pytest.mark.parametrize("extra, ok", [(0, True), (1, False)])
def test_a_spec_at_the_limit_compiles_and_one_over_is_refused_with_its_figure(
    monkeypatch, extra, ok
):
    monkeypatch.setattr(expand, "LIMITS", Limits(max_nodes=1_000))
    # input + 3 nodes per block, 333 blocks = 1,000 nodes; `extra` more makes 1,001.
    text = (
        "block R(c) { C(c*3*3, s1, same) add { A(relu) | identity } }\n"
        "input 8*8*8\nR(8) x333\n" + "B\n" * extra
    )
    if ok:
        assert len(compile_str(text).nodes) == 1_000
    else:
        d = error(text)
        assert d.code == "E501" and d.message.startswith("the spec expands to 1,001 nodes")


def test_an_over_limit_element_states_its_exact_figure():
    d = error("input 8*8*1\nadd { C(1*1*1) B | } x100000")
    assert d.code == "E501" and "this expands to 300,000 nodes" in d.message
    assert LIMITS.max_nodes == 200_000
