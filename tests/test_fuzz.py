"""Fuzzing: random programs from the grammar and random byte mutations of the
spec library. Every input either compiles or fails with archc's own diagnostic
(SpecError); anything else (a traceback, RecursionError, MemoryError) fails.

The default profile is derandomised and small enough for CI; set
ARCHC_FUZZ_EXAMPLES to run longer locally.
"""

from __future__ import annotations

import collections
import os
import pathlib
import shutil
import sys
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.lark import from_lark
from lark import Lark

from archc.diagnostics import SpecError
from archc.language.parser import GRAMMAR
from archc.pipeline import compile_spec

SPECS = pathlib.Path(__file__).resolve().parent.parent / "specs"
EXAMPLES = int(os.environ.get("ARCHC_FUZZ_EXAMPLES", "100"))
FUZZ = settings(
    max_examples=EXAMPLES, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck)
)

small_int = st.integers(0, 300).map(str)
word = st.sampled_from(
    [
        "relu",
        "same",
        "valid",
        "max",
        "avg",
        "gavg",
        "Yes",
        "None",
        "ch",
        "k",
        "s",
        "C",
        "B",
        "A",
        "P",
        "D",
        "Dense",
        "Flatten",
        "GAP",
        "LRN",
        "ZeroPad",
        "ConvBNRelu",
        "InceptionBlk",
        "ResnetBlock",
        "identity",
        "nobias",
        "sigmoid",
        "softmax",
        "prelu",
        "n",
        "foo",
        "x",
        "Net",
    ]
)
EXPLICIT = {
    "NAME": word,
    "KEY": st.sampled_from(
        [
            "kernel",
            "stride",
            "padding",
            "units",
            "activation",
            "核",
            "步长",
            "填充",
            "神经元",
            "激活",
            "Dropout",
            "alpha",
            "eps",
            "momentum",
            "k",
            "s",
            "ch",
            "bogus",
        ]
    ),
    "INT": small_int,
    "FLOAT": st.sampled_from(["0.2", "0.5", "1e-3", ".5", "2.", "1.5"]),
    "STRING": st.sampled_from(['"stdlib.cnn"', '"nope.cnn"', '"../specs/stdlib.cnn"']),
    "DIMS_X": st.sampled_from(["32x32x3", "8x8x1", "1x1x1", "4x4"]),
    "INPUT_KW": st.sampled_from(["input ", "Input ", "输入"]),
    "MERGE": st.sampled_from(["concat ", "add ", "mul "]),
    "FOOTNOTE": st.just("LRN*"),
    "REPEAT_N": st.sampled_from(["x1", "x2", "x3", "x100"]),
    "REPEAT_OPEN": st.just("x("),
    "STRIDE_N": st.sampled_from(["s1", "s2", "s0"]),
    "PAD_N": st.sampled_from(["p0", "p1", "p3"]),
    "AT_NAME": st.sampled_from(["@input", "@a", "@c1", "@stage_1", "@nope"]),
    "CMP": st.sampled_from(["==", "<", ">="]),
    "ADDOP": st.sampled_from(["+", "-"]),
    "MULOP": st.sampled_from(["*", "//", "/", "%", "\\*"]),
    "_COMMA": st.sampled_from([",", "，"]),
    "_COLON": st.sampled_from([":", "=", "："]),
}
# hypothesis concatenates tokens with no white space between them; words are
# drawn with spaces around them so that `model` and `relu` stay two tokens.
for keyword in ("MODEL", "INCLUDE", "BLOCK", "TRAIN", "IF", "ELSE", "AS"):
    EXPLICIT[keyword] = st.just(f" {keyword.lower()} ")
for key in (
    "NAME",
    "INT",
    "FLOAT",
    "DIMS_X",
    "INPUT_KW",
    "REPEAT_N",
    "STRIDE_N",
    "PAD_N",
    "AT_NAME",
):
    EXPLICIT[key] = EXPLICIT[key].map(lambda w: f" {w} ")
GRAMMAR_PROGRAMS = from_lark(
    Lark(GRAMMAR.read_text(encoding="utf-8"), parser="lalr", lexer="contextual"),
    explicit=EXPLICIT,
    alphabet=st.characters(codec="ascii"),
)
# Most random programs lack an input line; give most of them one.
programs = st.tuples(
    st.sampled_from(["", "input 16x16x3\n", "input 32*32*3\n", "input 64\n"]), GRAMMAR_PROGRAMS
).map("".join)


def _compile_text(text: str):
    try:
        compile_spec(str(SPECS / "fuzz.cnn"), text)
    except SpecError as e:
        assert e.diagnostics and all(d.code.startswith("E") for d in e.diagnostics)
        for d in e.diagnostics:
            d.render()


@FUZZ
@given(programs)
def test_programs_from_the_grammar(text):
    _compile_text(text)


@FUZZ
@given(
    st.sampled_from(sorted(p.name for p in SPECS.glob("*.cnn"))),
    st.lists(
        st.tuples(
            st.sampled_from(["insert", "delete", "replace"]),
            st.floats(0, 1),
            st.binary(min_size=1, max_size=3),
        ),
        min_size=1,
        max_size=6,
    ),
)
def test_byte_mutations_of_the_spec_library(name, edits):
    data = bytearray((SPECS / name).read_bytes())
    for op, where, payload in edits:
        i = int(where * len(data))
        if op == "insert":
            data[i:i] = payload
        elif op == "delete":
            del data[i : i + len(payload)]
        else:
            data[i : i + len(payload)] = payload
    with tempfile.TemporaryDirectory() as d:
        shutil.copy(SPECS / "stdlib.cnn", d)
        path = pathlib.Path(d) / name
        path.write_bytes(bytes(data))
        try:
            compile_spec(str(path))
        except SpecError as e:
            assert e.diagnostics
            for diag in e.diagnostics:
                diag.render()


def test_the_fuzzer_reaches_the_compiler():
    """The strategy above is not vacuous: many of the programs it draws get past
    the parser and fail (or pass) in the later passes (names, arguments, shapes)."""
    outcomes = collections.Counter()

    @settings(
        max_examples=200, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck)
    )
    @given(programs)
    def draw(text):
        try:
            compile_spec(str(SPECS / "fuzz.cnn"), text)
            outcomes["compiled"] += 1
        except SpecError as e:
            outcomes[e.diagnostics[0].code[:2]] += 1

    draw()
    past_parser = sum(n for k, n in outcomes.items() if k not in ("E0", "E1"))
    assert past_parser >= 10, outcomes


# ---- structured mutations (benchmarks/fuzz_long.py) ------------------------------
# The mutation classes that found issue 11's defects: huge integers, deep nesting
# of groups and brackets, long lines, token duplication; a few seeds each in the
# default run. The long run (20,000 inputs) is `python benchmarks/fuzz_long.py`.


def _fuzz_long():
    import importlib.util

    path = pathlib.Path(__file__).resolve().parent.parent / "benchmarks" / "fuzz_long.py"
    spec = importlib.util.spec_from_file_location("fuzz_long", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["fuzz_long"] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


FUZZ_LONG = _fuzz_long()
CORPUS = FUZZ_LONG.corpus()
CI_SEEDS = int(os.environ.get("ARCHC_FUZZ_SEEDS", "6"))


def _assert_diagnosed(text: str, what: str) -> None:
    outcome, _seconds, exc = FUZZ_LONG.run_one(text, limit=30)  # over 30 s: a hang
    assert outcome not in ("traceback", "hang"), (
        f"{what}: {outcome} {FUZZ_LONG.signature(exc)}: {exc!r}\ninput: {text[:300]!r}"
    )


@pytest.mark.parametrize(
    "mutator",
    [
        "huge_integer",
        "deep_nesting",
        "long_line",
        "token_duplication",
        "byte_edit",
        "splice",
        "replace_word",
        "replace_number",
        "token_delete_or_swap",
    ],
)
@pytest.mark.parametrize("seed", range(CI_SEEDS))
def test_structured_mutations_of_the_spec_library(mutator, seed):
    import random

    rng = random.Random(f"{mutator}-{seed}")
    fn = getattr(FUZZ_LONG, mutator)
    text = rng.choice(CORPUS)
    for _ in range(rng.randint(1, 3)):
        text = fn(rng, text, CORPUS)
    _assert_diagnosed(text, mutator)


@pytest.mark.parametrize("seed", range(4 * CI_SEEDS))
def test_mixed_mutations_of_the_spec_library(seed):
    import random

    text, muts = FUZZ_LONG.mutate(random.Random(seed), CORPUS)
    _assert_diagnosed(text, "+".join(muts))


@pytest.mark.slow
def test_long_fuzz_run_small_version():
    """A small run of benchmarks/fuzz_long.py: 1,000 inputs, the valid ones through
    both generators. No traceback, no hang (10 s). The goal of no input over 2 s
    holds except for inputs that make large models (a mutation repeating a line
    1,000 times makes tens of thousands of nodes, and compiling and emitting
    them takes a few seconds): the time is bounded by the limits, not zero."""
    report = FUZZ_LONG.run(1000, seed=3, limit=10, minimise_budget=100)
    assert report.n == 1000
    assert not report.tracebacks and not report.hangs, report.summary()
    assert report.max_time < 10, report.summary()
