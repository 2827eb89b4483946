"""`archc fmt` (archc/language/format.py): canonical .cnn text.

What must hold for every spec: the formatted text parses to the same syntax tree
(source spans aside) and compiles to the same IR (source locations aside), the
formatter is idempotent (`fmt(fmt(x)) == fmt(x)`), and every comment is kept, in
order. Checked on every spec in specs/, the repros, random programs from the
grammar (the strategy tests/test_fuzz.py uses) and random programs with comments.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pathlib
import re
import stat
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from archc.diagnostics import Diagnostics, Sources, SpecError
from archc.language import syntax as S
from archc.language.format import WIDTH, format_text
from archc.language.parser import concrete_tree, parse
from archc.pipeline import check_spec, compile_spec
from tests.test_fuzz import programs

ROOT = pathlib.Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
REPROS = ROOT / "tests" / "repros"
SPEC_NAMES = sorted(p.name for p in SPECS.glob("*.cnn"))
FUZZ = settings(
    max_examples=int(os.environ.get("ARCHC_FUZZ_EXAMPLES", "60")),
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)


def fmt(text: str, path: str = "t.cnn") -> str:
    return format_text(text, path)


def tree(text: str):
    """The syntax tree without its source spans (they move when the layout does)."""

    def strip(x):
        if isinstance(x, S.Span):
            return None
        if dataclasses.is_dataclass(x):
            return {f.name: strip(getattr(x, f.name)) for f in dataclasses.fields(x)}
        if isinstance(x, tuple | list):
            return (type(x).__name__, tuple(strip(i) for i in x))
        return x

    return strip(parse(text, "t.cnn", Diagnostics(Sources())))


def comments(text: str) -> list[str]:
    return [str(c).rstrip() for c in concrete_tree(text)[1]]


def ir(model) -> dict:
    """The IR as JSON without source locations, and without the source file's name.
    A block parameter's `default` is its source text (`res=(s == 1) * (cin == x)`),
    a record of the source like `loc`: only its spacing may change."""

    def strip(d):
        if isinstance(d, dict):
            return {
                k: "".join(v.split()) if k == "default" and isinstance(v, str) else strip(v)
                for k, v in d.items()
                if k != "loc"
            }
        if isinstance(d, list):
            return [strip(i) for i in d]
        return d

    out = strip(json.loads(model.model_dump_json()))
    out.pop("source")
    return out


def outcome(path: str, text: str | None = None):
    """A compiled spec's IR, a library's block names, or the error codes."""
    try:
        if text is None:
            result = check_spec(path)
            return result if isinstance(result, list) else ir(result)
        return ir(compile_spec(path, text))
    except SpecError as e:
        return [d.code for d in e.diagnostics]


def assert_formats_faithfully(text: str) -> str:
    out = fmt(text)
    assert tree(out) == tree(text)
    assert fmt(out) == out, "not idempotent"
    assert comments(out) == comments(text)
    assert all(line == line.rstrip() for line in out.split("\n"))
    assert not out or out.endswith("\n") and not out.endswith("\n\n")
    return out


# ---- every spec, the repros ---------------------------------------------------------


@pytest.fixture(scope="module")
def formatted_specs(tmp_path_factory) -> pathlib.Path:
    """specs/ formatted into a folder of its own (stdlib.cnn too: the specs include it)."""
    folder = tmp_path_factory.mktemp("specs")
    for name in SPEC_NAMES:
        text = (SPECS / name).read_text(encoding="utf-8")
        (folder / name).write_text(assert_formats_faithfully(text), encoding="utf-8")
    return folder


@pytest.mark.parametrize("name", SPEC_NAMES)
def test_every_spec_compiles_to_the_same_ir_formatted(name, formatted_specs):
    before = outcome(str(SPECS / name))
    assert before and not (isinstance(before, list) and before[0].startswith("E"))
    assert outcome(str(formatted_specs / name)) == before


def test_the_library_formats_idempotently_and_its_blocks_still_check(formatted_specs):
    blocks = check_spec(str(formatted_specs / "stdlib.cnn"))
    assert isinstance(blocks, list) and "Bottleneck" in blocks
    assert blocks == check_spec(str(SPECS / "stdlib.cnn"))


@pytest.mark.parametrize("path", sorted(REPROS.glob("*.cnn")), ids=lambda p: p.name)
def test_repros_keep_their_ir_or_their_errors(path, tmp_path):
    text = path.read_text(encoding="utf-8")
    out = assert_formats_faithfully(text)
    (tmp_path / path.name).write_text(out, encoding="utf-8")
    assert outcome(str(tmp_path / path.name)) == outcome(str(path))


# ---- random programs --------------------------------------------------------------


def _round_trip(text: str) -> None:
    try:
        parse(text, "t.cnn", Diagnostics(Sources()))
    except SpecError as e:  # what does not parse is refused with the parser's diagnostics
        with pytest.raises(SpecError) as refused:
            fmt(text)
        assert [d.code for d in refused.value.diagnostics] == [d.code for d in e.diagnostics]
        return
    out = assert_formats_faithfully(text)
    path = str(SPECS / "fuzz.cnn")  # beside stdlib.cnn, for the programs that include it
    assert outcome(path, out) == outcome(path, text)


@FUZZ
@given(programs)
def test_random_programs_round_trip(text):
    _round_trip(text)


@st.composite
def commented_programs(draw):
    """A random program with comments where it had white space: alone on a line or
    after code, numbered so that their order is checked."""
    text = draw(programs)
    spaces = [i for i, c in enumerate(text) if c == " "]
    assume(spaces)
    chosen = sorted(draw(st.sets(st.sampled_from(spaces), min_size=1, max_size=6)))
    out, last = [], 0
    for n, i in enumerate(chosen):
        form = draw(st.sampled_from([" # c{}\n", "\n# c{}\n", '\n\n  # c{} x(1) "#"\n']))
        out += [text[last:i], form.format(n)]
        last = i + 1
    commented = "".join(out) + text[last:]
    try:
        same = tree(commented) == tree(text)
    except SpecError:
        same = False
    assume(same)  # a comment between `add` and `{` (or a label and its `:`) reads otherwise
    return commented


@FUZZ
@given(commented_programs())
def test_random_programs_with_comments_keep_every_comment_in_order(text):
    _round_trip(text)


def _spaces_outside_comments(text: str) -> list[int]:
    out, in_comment = [], False
    for i, c in enumerate(text):
        in_comment = (in_comment or c == "#") and c != "\n"
        if c in " \n" and not in_comment:
            out.append(i)
    return out


@st.composite
def respaced_specs(draw):
    """A spec of specs/ with white space changed at random: line breaks, blank lines,
    spaces and comments (alone on a line or after code) where it had white space."""
    name = draw(st.sampled_from([n for n in SPEC_NAMES if n != "stdlib.cnn"]))
    text = (SPECS / name).read_text(encoding="utf-8")
    spaces = _spaces_outside_comments(text)
    chosen = sorted(draw(st.sets(st.sampled_from(spaces), min_size=1, max_size=30)))
    forms = ["\n", "   ", " # r{}\n", "\n\n# r{}\n", "\n\n\n", " "]
    out, last = [], 0
    for n, i in enumerate(chosen):
        out += [text[last:i], draw(st.sampled_from(forms)).format(n)]
        last = i + 1
    respaced = "".join(out) + text[last:]
    try:
        same = tree(respaced) == tree(text)
    except SpecError:
        same = False
    assume(same)  # `add # r1 {` reads otherwise
    return name, respaced


@FUZZ
@given(respaced_specs())
def test_specs_written_otherwise_format_faithfully_and_compile_the_same(spec):
    name, text = spec
    out = assert_formats_faithfully(text)
    path = str(SPECS / name)  # beside stdlib.cnn
    assert outcome(path, out) == outcome(path, text) == outcome(path)


# ---- the layout ---------------------------------------------------------------------


def test_calls_options_and_numbers_as_written():
    text = (
        "input  32*32*3\nC( 6 * 5*5 ,s1 , same )   B(eps :1e-3, momentum=0.99)\nD(.5) P(max,2.,2)\n"
    )
    assert fmt(text) == (
        "input 32*32*3\nC(6*5*5, s1, same) B(eps: 1e-3, momentum=0.99)\nD(.5) P(max, 2., 2)\n"
    )


def test_the_slides_spellings_stay():
    text = "输入：32x32x3\nC (核:6\\*5\\*5，步长:1，填充:same ) B (Yes, , LRN*)\n"
    assert fmt(text) == "输入：32x32x3\nC(核: 6\\*5\\*5，步长: 1，填充: same) B(Yes, , LRN*)\n"


def test_arithmetic_spacing_shows_precedence():
    text = "block X(n, k=n * 2, b=n>1) {\n ZeroPad(k // 2 - 1, -k) C((4 * n)*1*1) x( n+1 )\n}\n"
    assert fmt(text) == (
        "block X(n, k=n*2, b=n > 1) {\n    ZeroPad(k//2 - 1, -k) C((4*n)*1*1) x(n + 1)\n}\n"
    )


def test_a_cbapd_row_per_line_and_blank_lines_are_kept_once():
    text = "input 8*8*1\n\n\n\nC(4*3*3,s1,same) B A(relu)\nP(max,2,2)   D(0.2)\n\nFlatten\n"
    assert fmt(text) == (
        "input 8*8*1\n\nC(4*3*3, s1, same) B A(relu)\nP(max, 2, 2) D(0.2)\n\nFlatten\n"
    )


def test_blocks_are_indented_and_set_off_by_one_blank_line():
    text = (
        "model m\n# the stem\nblock A {\n C(8*3*3) B }\nblock B(c) {\n\n  A\n\n\n  C(c*1*1)\n\n}\n"
        "A B(4)\ntrain { lr: 0.1 epochs: 2 }"
    )
    assert fmt(text) == (
        "model m\n\n# the stem\nblock A {\n    C(8*3*3) B\n}\n\nblock B(c) {\n    A\n\n"
        "    C(c*1*1)\n}\n\nA B(4)\n\ntrain {\n    lr: 0.1\n    epochs: 2\n}\n"
    )


def test_one_line_blocks_written_so_stand_together():
    text = "block A(c) {  C(c*3*3)  B }\nblock B {\nA(8) }\nblock D { A(4) }\nB\n"
    assert fmt(text) == (
        "block A(c) { C(c*3*3) B }\n\nblock B {\n    A(8)\n}\n\nblock D { A(4) }\nB\n"
    )
    wide = f"block W {{ {' '.join(['C(64*3*3, s1, same) B'] * 5)} }}\n"
    assert fmt(wide).splitlines()[:2] == ["block W {", "    " + wide[10:-3]]


def test_a_merge_on_one_line_where_written_so_and_it_fits_else_a_branch_per_line():
    short = "add {  C(8*3*3, s1, same)|identity }\n"
    assert fmt(short) == "add { C(8*3*3, s1, same) | identity }\n"
    spread = "add {\n  C(8*3*3, s1, same)\n  | identity\n}\n"
    assert fmt(spread) == "add {\n    C(8*3*3, s1, same)\n  | identity\n}\n"
    arm = " ".join(["C(64*3*3, s1, same, nobias) B"] * 3)
    long = f"concat {{ {arm} | identity | }} as cat\n"
    out = fmt(long)
    assert out == f"concat {{\n    {arm}\n  | identity\n  |\n}} as cat\n"
    assert max(map(len, long.splitlines())) > WIDTH


def test_a_branch_keeps_its_line_breaks_and_nests():
    text = (
        "block R(f, s=1, p=0) {\n add {\n C(f*3*3, s(s)) B A(relu)\n C(f*3*3, s1) B\n"
        " | if p { C(f*1*1, s(s)) B }\n }\n A(relu)\n}\n"
    )
    assert fmt(text) == (
        "block R(f, s=1, p=0) {\n    add {\n        C(f*3*3, s(s)) B A(relu)\n"
        "        C(f*3*3, s1) B\n      | if p { C(f*1*1, s(s)) B }\n    }\n    A(relu)\n}\n"
    )


def test_a_condition_keeps_the_form_of_each_part():
    text = "if s == 2 { C(8*3*3, s2) }\nelse { C(8*3*3, s1) } B\n"
    assert fmt(text) == text
    text = "if s == 2 {C(8*3*3, s2)\n} else { C(8*3*3, s1) } B\n"
    assert fmt(text) == "if s == 2 {\n    C(8*3*3, s2)\n} else { C(8*3*3, s1) } B\n"
    long = f"if s {{ {' '.join(['C(64*3*3, s1, same) B'] * 5)} }} else {{ B }}\n"
    assert fmt(long).splitlines()[0] == "if s {"
    assert fmt(long).splitlines()[-1] == "} else { B }"


def test_a_long_call_takes_an_argument_per_line_and_a_header_keeps_its_breaks():
    values = ", ".join(f"{i}.25" for i in range(30))
    text = f"Normalization(mean: [{values}], variance: 2)\n"
    assert fmt(text) == f"Normalization(\n    mean: [{values}],\n    variance: 2\n)\n"
    text = "block Wide(a, b=1,\n  c=2, d=3,\n e=4) {\n    identity\n}\n"
    assert fmt(text) == (
        "block Wide(a, b=1,\n           c=2, d=3,\n           e=4) {\n    identity\n}\n"
    )


def test_a_call_named_x_keeps_its_space():
    """`x(` after a layer is a repeat; a block named x is called as `x (...)`."""
    text = "block x(n) { C(n*1*1) }\nC(4*1*1) x (8) C(4*1*1) x(2)\n"
    out = assert_formats_faithfully(text)
    assert "C(4*1*1) x (8) C(4*1*1) x(2)" in out


# ---- comments -------------------------------------------------------------------------

COMMENTED = """\
# head comment

model m   # the name
include "stdlib.cnn"  # "not # a string" here
input 16*16*3
# before the stem
C(8*3*3, # filters
  s1) B   # after B

# alone, after a blank line
block R(f,  # the filters
        s=1) {  # after the brace
    # first in the body
    add {  # after add
        C(f*3*3, s(s)) B
        # between the lines of a branch
      | # after the bar
        identity
      # before the brace
    }  # after the brace of add
    if f > 8 { A(relu) }
    # between the branches of if
    else { A(gelu) }
    # last in the body
}
{ B } # between group and repeat
  x2
train {  # the recipe
    # before lr
    lr: 0.1  # the rate
    epochs: # inside a setting
        2
}
# the end
"""


def test_every_comment_is_kept_in_order():
    out = assert_formats_faithfully(COMMENTED)
    assert len(comments(out)) == 23
    assert '"not # a string" here' in out and 'include "stdlib.cnn"' in out
    assert re.search(r"^model m +# the name$", out, re.MULTILINE)  # after code: on its line
    assert "\n      |  # after the bar\n        identity\n" in out
    assert "\n# between group and repeat\n{ B } x2\n" in out  # moved above its line


def test_comments_inside_a_line_move_above_it():
    assert fmt("C(8*3*3,  # filters\n s1) B\n") == "# filters\nC(8*3*3, s1) B\n"


def test_trailing_comments_of_consecutive_lines_line_up():
    text = "C(8*3*3) # a\nB    # b\n\nA(relu) # c\n"
    assert fmt(text) == "C(8*3*3)  # a\nB         # b\n\nA(relu)  # c\n"


# ---- the command --------------------------------------------------------------------

UGLY = "input 8*8*1\nC( 4*3*3,s1 )  B\n"
NEAT = "input 8*8*1\nC(4*3*3, s1) B\n"
BROKEN = "input 8*8*1\nC(4*3*3, s1\n"


def archc(*args: str, stdin: str | None = None, cwd=ROOT):
    r = subprocess.run(
        [sys.executable, "-m", "archc", *args],
        capture_output=True,
        text=True,
        input=stdin,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
        timeout=120,
    )
    return r.returncode, r.stdout, r.stderr


def test_fmt_rewrites_in_place_keeping_the_mode(tmp_path):
    ugly, neat = tmp_path / "ugly.cnn", tmp_path / "neat.cnn"
    ugly.write_text(UGLY)
    neat.write_text(NEAT)
    ugly.chmod(0o640)
    rc, _, err = archc("fmt", str(ugly), str(neat))
    assert rc == 0, err
    assert ugly.read_text() == NEAT and neat.read_text() == NEAT
    assert stat.S_IMODE(ugly.stat().st_mode) == 0o640
    assert f"reformatted {ugly}" in err and str(neat) not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["neat.cnn", "ugly.cnn"]  # no temp file


def test_fmt_check_names_the_files_that_would_change(tmp_path):
    ugly, neat = tmp_path / "ugly.cnn", tmp_path / "neat.cnn"
    ugly.write_text(UGLY)
    neat.write_text(NEAT)
    rc, out, err = archc("fmt", "--check", str(ugly), str(neat))
    assert rc == 1 and out == f"would reformat {ugly}\n", err
    assert ugly.read_text() == UGLY  # nothing written
    rc, out, err = archc("fmt", "--check", str(neat))
    assert (rc, out) == (0, ""), err


def test_fmt_check_passes_on_the_repository_specs():
    rc, out, err = archc("fmt", "--check", *(f"specs/{n}" for n in SPEC_NAMES))
    assert (rc, out) == (0, ""), out + err


def test_fmt_diff_prints_a_unified_diff_and_writes_nothing(tmp_path):
    ugly = tmp_path / "ugly.cnn"
    ugly.write_text(UGLY)
    rc, out, err = archc("fmt", "--diff", str(ugly))
    assert rc == 0, err
    assert out.splitlines() == [
        f"--- {ugly}",
        f"+++ {ugly}",
        "@@ -1,2 +1,2 @@",
        " input 8*8*1",
        "-C( 4*3*3,s1 )  B",
        "+C(4*3*3, s1) B",
    ]
    assert ugly.read_text() == UGLY


def test_a_file_with_errors_is_reported_and_left_as_it_is(tmp_path):
    broken, ugly = tmp_path / "broken.cnn", tmp_path / "ugly.cnn"
    broken.write_text(BROKEN)
    ugly.write_text(UGLY)
    rc, _, err = archc("fmt", str(broken), str(ugly))
    assert rc == 1
    assert "error[E102]" in err and f"{broken}:3:1" in err and "Traceback" not in err
    assert broken.read_text() == BROKEN  # untouched
    assert ugly.read_text() == NEAT  # the other file still formatted
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.cnn", "ugly.cnn"]


def test_a_missing_file_and_no_file(tmp_path):
    rc, _, err = archc("fmt", str(tmp_path / "nope.cnn"))
    assert rc == 1 and "error[E001]" in err and "Traceback" not in err
    rc, _, err = archc("fmt")
    assert rc == 2 and "FILE" in err


def test_fmt_reads_stdin_and_writes_stdout():
    assert archc("fmt", "-", stdin=UGLY)[:2] == (0, NEAT)
    rc, out, err = archc("fmt", "-", stdin=BROKEN)
    assert rc == 1 and out == "" and "<stdin>:3:1" in err


def test_fmt_is_a_core_command_without_the_optional_packages(tmp_path):
    from tests.test_cli import OPTIONAL, run_archc

    ugly = tmp_path / "ugly.cnn"
    ugly.write_text(UGLY)
    rc, _, err, imported = run_archc("fmt", str(ugly), block=OPTIONAL)
    assert rc == 0 and ugly.read_text() == NEAT, err
    assert imported == []
