"""References `@name`: a chain continues from an earlier named tensor (skips such
as U-Net's encoder-to-decoder concatenations). Parsing, which names are visible
where, the errors (exact messages and places), the generated Keras and PyTorch
code, float64 equivalence in both directions, the report and the JSON form."""

from __future__ import annotations

import subprocess
import sys

import pytest

from archc.diagnostics import Diagnostics, Sources
from archc.ir import Model
from archc.language import syntax as S
from archc.language.parser import parse
from archc.pipeline import compile_spec
from archc.report import markdown, text
from backends.keras.generator import generate as keras_source
from backends.pytorch.generator import generate as torch_source
from tests.helpers import HAS_KERAS, HAS_TORCH, SPECS, compile_str, errors

# Two levels down and back up, with kinds archc has: the decoder grows the maps
# back with ZeroPad (no upsampling yet) and concatenates the encoder's output of
# the same size, read through a reference. `Down` names a tensor inside itself
# (`feat`, local to each instance) and adds it back.
UNET = """model unet_mini
input 16*16*3

block Down(ch) {
    C(ch*3*3, s1, same) B A(relu) as feat
    C(ch*3*3, s1, same) B
    add { @feat | } A(relu)
}

Down(8) as enc1                   # 16 x 16 x 8
P(max, 2, 2)
Down(16) as enc2                  # 8 x 8 x 16
P(max, 2, 2)
C(32*3*3, s1, same) A(relu)       # 4 x 4 x 32
ZeroPad(2)                        # grown back to 8 x 8
concat { @enc2 C(16*1*1, s1) | }  # 8 x 8 x 48
C(16*3*3, s1, same) A(relu) as dec2
ZeroPad(4)                        # 16 x 16
concat { @enc1 | C(8*1*1, s1) }   # 16 x 16 x 16
C(8*3*3, s1, same) A(relu)
C(2*1*1, s1)
"""

# The original U-Net's way, two levels: unpadded convolutions shrink the maps, so
# each encoder output is cropped to meet the upsampled decoder (`@e2 Crop(2)`).
UNET_VALID = """model unet_valid
input 28*28*1
C(4*3*3) A(relu) C(4*3*3) A(relu) as e1     # 24 x 24 x 4
P(max, 2, 2)
C(8*3*3) A(relu) C(8*3*3) A(relu) as e2     # 8 x 8 x 8
P(max, 2, 2)
C(16*3*3) A(relu)                           # 2 x 2 x 16
Up(2) C(8*1*1)                               # 4 x 4 x 8
concat { @e2 Crop(2) | }                    # 4 x 4 x 16
C(8*3*3, s1, same) A(relu)
Up(2, bilinear) C(4*1*1)                     # 8 x 8 x 4
concat { @e1 Crop(8) | }                    # 8 x 8 x 8
C(4*3*3, s1, same) A(relu)
C(2*1*1)
"""

# The other forms a name takes: a named group (its output; `b` inside it), a
# block's input named by `identity as entry`, repeated instances `stage_1`,
# `stage_2`, `@input`, several references into one merge, a feature pyramid
# read back after strided convolutions, and a name made in a branch read after
# its merge.
FORMS = """model forms
input 12*12*3
block Res(ch) {
    identity as entry
    C(ch*3*3, s1, same) A(relu)
    concat { @entry | } C(ch*1*1, s1)
}
C(4*3*3, s1, same) as a
{ C(4*3*3, s1, same) as b add { @b | C(4*1*1, s1) } } as g
add { @a | }
Res(6) x2 as stage
concat { @input | @stage_1 | }
C(8*3*3, s2, same) as f2
C(8*3*3, s2, same) as f3
GAP as g3
@f2 GAP
concat { @g3 | }
add { Dense(16) as side | }
concat { @side | }
Dense(5)
"""


def inputs(model) -> dict[str, tuple[str, ...]]:
    return {n.name: n.inputs for n in model.nodes}


# ---- parsing ----------------------------------------------------------------


def test_a_reference_parses_to_its_name_and_span():
    spec = parse("input 8*8*1\nconcat { @enc1 C(2*1*1) | }\n", "x.cnn", Diagnostics(Sources()))
    branch = spec.body[0].unit
    ref = branch.branches[0].elements[0].unit
    assert ref == S.TensorRef("enc1", S.Span("x.cnn", 2, 10, 2, 15))
    assert branch.branches[1].elements == ()


def test_the_at_sign_is_part_of_the_name():
    (d,) = errors("input 8*8*1\nC(2*1*1) as a\n@ a C(2*1*1)\n")
    assert (d.code, d.message, d.span.line, d.span.col) == (
        "E101",
        "unexpected character `@`",
        3,
        1,
    )
    (d,) = errors("input 8*8*1\nC(2*1*1) as a\n@1\n")
    assert (d.code, d.span.line, d.span.col) == ("E101", 3, 1)


# ---- what a name stands for, and where it is seen ----------------------------


def test_unet_graph():
    m = compile_str(UNET)
    ins = inputs(m)
    assert ins["enc1.add1"] == ("enc1.feat", "enc1.b2")  # @feat inside the instance
    assert ins["enc2.add1"] == ("enc2.feat", "enc2.b2")  # each instance its own `feat`
    assert ins["c2"] == ("enc2.a1",)  # @enc2: the instance's output
    assert ins["cat1"] == ("c2", "zp1")
    assert ins["cat2"] == ("enc1.a1", "c4")  # an empty branch after @enc1 is enc1
    assert ins["c3"] == ("cat1",) and ins["c4"] == ("zp2",)
    assert m.output == "c6" and m.output_shape == (16, 16, 2)
    assert m.node("cat1").out_shape == (8, 8, 48)
    assert m.node("cat2").out_shape == (16, 16, 16)
    assert (m.trainable, m.nontrainable, m.macs) == (17546, 96, 1288192)


def test_unet_with_valid_convolutions_crops_each_skip():
    m = compile_str(UNET_VALID)
    ins = inputs(m)
    assert ins["crop1"] == ("e2",) and ins["cat1"] == ("crop1", "c6")
    assert ins["crop2"] == ("e1",) and ins["cat2"] == ("crop2", "c8")
    assert [m.node(n).out_shape for n in ("e1", "e2", "crop1", "cat1", "crop2", "cat2")] == [
        (24, 24, 4),
        (8, 8, 8),
        (4, 4, 8),
        (4, 4, 16),
        (8, 8, 4),
        (8, 8, 8),
    ]
    assert m.output_shape == (8, 8, 2) and m.params == 3870
    assert "crop(top 8, bottom 8, left 8, right 8) ← @e1" in text(m)
    # a crop that misses: both ends of the merge, and where the skip comes from
    (d,) = errors(UNET_VALID.replace("Crop(8)", "Crop(7)"), "unet.cnn")
    u = str(SPECS / "unet.cnn")
    assert (d.code, d.span.line) == ("E401", 12)
    assert d.notes == (
        (
            f"branch 1 (10 x 10 x 4) ends at `crop2` ({u}:12:14), from `@e1` ({u}:12:10): "
            f"`e1` is defined at {u}:3:38"
        ),
        f"branch 2 (8 x 8 x 4) is `c8` ({u}:11:17)",
    )


def test_every_form_of_a_name():
    m = compile_str(FORMS)
    ins = inputs(m)
    assert ins["g.add1"] == ("g.b", "g.c1")
    assert ins["add1"] == ("a", "g.add1")  # a named group: its output
    assert ins["stage_1.cat1"] == ("add1", "stage_1.a1")  # `identity as entry`: the input
    assert ins["stage_2.cat1"] == ("stage_1.c2", "stage_2.a1")
    assert ins["cat1"] == ("input", "stage_1.c2", "stage_2.c2")
    assert ins["p1"] == ("f2",)  # @f2 GAP
    assert ins["cat2"] == ("g3", "p1")
    assert ins["add2"] == ("side", "cat2")
    assert ins["cat3"] == ("side", "add2")  # a name made in a branch, after its merge
    assert m.output == "f1" and m.output_shape == (5,)


def test_a_name_on_an_element_without_layers_names_the_tensor_passing_through():
    m = compile_str(
        "input 8*8*2\nC(3*1*1)\nidentity as here B(No) as there\nconcat { @here | @there }\n"
    )
    assert inputs(m)["cat1"] == ("c1", "c1")
    m = compile_str("input 8*8*2\nC(3*1*1)\nif 0 { C(2*1*1) } as maybe\nconcat { @maybe | }\n")
    assert inputs(m)["cat1"] == ("c1", "c1")


def test_a_reference_in_a_repeated_group_is_followed_each_time():
    # the second repetition starts from `a` again, so the first one's conv is unused
    assert [d.code for d in errors("input 8*8*2\nC(3*1*1) as a\n{ @a C(3*1*1) } x2\n")] == ["E214"]
    m = compile_str("input 8*8*2\nC(3*1*1) as a\n{ add { @a | C(3*1*1) } } x2\n")
    assert inputs(m)["add2"] == ("a", "c2") and inputs(m)["c2"] == ("add1",)
    m = compile_str("input 8*8*2\nC(3*1*1) as a\nC(3*1*1)\nconcat { { @a } x3 | }\n")
    assert inputs(m)["cat1"] == ("a", "c1")


def test_references_add_nothing_to_a_spec_without_them():
    plain = compile_str("input 8*8*2\nC(3*1*1) add { C(3*1*1) | }\n")
    assert plain._skips == {} and plain._branches == {"add1": (("c1", None), ("c1", None))}


# ---- errors ----------------------------------------------------------------

F = str(SPECS / "refs.cnn")

# spec, code, line, col, end col, message, expected, notes, hint
ERRORS = [
    (
        "input 8*8*2\nC(4*1*1) as enc1 C(4*1*1) as enc2\nconcat { @enc3 | }\n",
        "E212",
        3,
        10,
        15,
        "no tensor is named `enc3` in the spec",
        "a name defined before it: `input`, `enc1`, `enc2`",
        (),
        "name a tensor with `as` before referring to it with `@`",
    ),
    (
        "input 8*8*2\nC(4*1*1) as enc1\nconcat { @ecn1 | }\n",
        "E212",
        3,
        10,
        15,
        "no tensor is named `ecn1` in the spec",
        "a name defined before it: `input`, `enc1`",
        (),
        "did you mean `@enc1`?",
    ),
    (
        "input 8*8*2\nC(4*1*1) C(4*1*1)\nadd { @c1 | }\n",
        "E212",
        3,
        7,
        10,
        "no tensor is named `c1` in the spec",
        "a name defined before it: `input`",
        (),
        "`c1` is a generated name; name the tensor with `as`, e.g. `... as skip1`",
    ),
    (
        "input 8*8*2\nblock Blk { C(2*1*1) add { @nope | } }\nBlk\n",
        "E212",
        2,
        28,
        33,
        "no tensor is named `nope` in this block",
        "a name given with `as` before it",
        (),
        "name a tensor with `as` before referring to it with `@`",
    ),
    (
        "input 8*8*2\nC(3*1*1) x3 as stage\nadd { @stage | }\n",
        "E213",
        3,
        7,
        13,
        "`stage` names a repeated element: each repetition has its own name",
        "`@stage_1`, `@stage_2`, `@stage_3`",
        (),
        "the last repetition's output is `@stage_3`",
    ),
    (
        "input 8*8*2\nadd { @late | } C(2*1*1) as late\n",
        "E213",
        2,
        7,
        12,
        "`late` is used before it is defined",
        None,
        (f"`late` is defined at {F}:2:29",),
        "a reference goes back to a tensor made before it; move `@late` after `as late`",
    ),
    (
        "input 8*8*2\nconcat { C(3*1*1) as a | @a C(1*1*1) }\n",
        "E213",
        2,
        26,
        28,
        "`a` is made in another branch of a merge that is not closed yet",
        None,
        (f"`a` is defined at {F}:2:22",),
        (
            "a branch starts from the tensor before its merge; the names made in other "
            "branches can be used after the merge"
        ),
    ),
    (
        "input 8*8*2\nblock Down(ch) { @top C(ch*1*1) }\nC(3*1*1) as top\nDown(4)\n",
        "E213",
        2,
        18,
        22,
        "`top` is defined outside this block",
        None,
        (f"`top` is defined at {F}:3:13",),
        "a block and a named group see only their input and the names defined in them",
    ),
    (
        "input 8*8*2\nC(3*1*1) as top\n{ add { @top | } } as g\n",
        "E213",
        3,
        9,
        13,
        "`top` is defined outside the group `g`",
        None,
        (f"`top` is defined at {F}:2:13",),
        "a block and a named group see only their input and the names defined in them",
    ),
    (
        "input 8*8*2\nblock Down(ch) { C(ch*1*1) as feat C(ch*1*1) }\nDown(4) as d1\nadd { @feat | }\n",
        "E213",
        4,
        7,
        12,
        "`feat` is local to `d1`",
        None,
        (f"`feat` is defined at {F}:2:31",),
        (
            "the names inside a block instance or a named group are its own; refer to the "
            "instance or group by its name (its output)"
        ),
    ),
    (
        "input 8*8*2\nif 0 { C(2*1*1) as side }\nadd { @side | }\n",
        "E213",
        3,
        7,
        12,
        "`side` is defined in an `if` that is not taken here",
        None,
        (f"`side` is defined at {F}:2:20",),
        "refer to it only where its `if` is taken, or name a tensor outside the `if`",
    ),
    (
        "input 8*8*2\nC(4*1*1) as a\nC(4*1*1)\n@a C(2*1*1)\n",
        "E214",
        3,
        1,
        2,
        "the output of `c1` is never used",
        None,
        (f"`@a` at {F}:4:1 continues from `a` instead",),
        "use it in a merge (`concat { ... | }`, `add { ... | }`) or remove it",
    ),
    (
        "input 8*8*2\nC(4*1*1) as a\nC(4*1*1) as b\nconcat { @a | @a }\n",
        "E214",
        3,
        1,
        2,
        "the output of `b` is never used",
        None,
        (f"`@a` at {F}:4:10 continues from `a` instead",),
        "use it in a merge (`concat { ... | }`, `add { ... | }`) or remove it",
    ),
    (
        "input 8*8*2\nC(4*1*1) as a\nC(2*1*1) @a\n",
        "E214",
        3,
        1,
        2,
        "the output of `c1` is never used",
        None,
        (f"`@a` at {F}:3:10 continues from `a` instead",),
        "use it in a merge (`concat { ... | }`, `add { ... | }`) or remove it",
    ),
    (
        "input 8*8*2\nC(4*1*1) as a\n@a x2\n",
        "E215",
        3,
        4,
        6,
        "a reference `@a` cannot be repeated",
        None,
        (),
        "`@a` only continues from `a`; repeat or name the layers that follow it",
    ),
    (
        "input 8*8*2\nC(4*1*1) as a\n@a as b\n",
        "E215",
        3,
        7,
        8,
        "a reference `@a` cannot be named",
        None,
        (),
        "`@a` only continues from `a`; repeat or name the layers that follow it",
    ),
]


@pytest.mark.parametrize(
    "spec, code, line, col, end_col, message, expected, notes, hint",
    ERRORS,
    ids=[f"{c[1]}-{i}" for i, c in enumerate(ERRORS)],
)
def test_reference_errors(spec, code, line, col, end_col, message, expected, notes, hint):
    (d,) = errors(spec, "refs.cnn")
    assert (d.code, d.message) == (code, message)
    assert (d.span.file, d.span.line, d.span.col, d.span.end_col) == (F, line, col, end_col)
    assert (d.expected, d.notes, d.hint) == (expected, notes, hint)
    assert d.source_line == spec.split("\n")[line - 1]


def test_an_error_renders_with_the_line_and_a_caret():
    (d,) = errors("input 8*8*2\nC(4*1*1) as enc1\nconcat { @ecn1 | }\n", "refs.cnn")
    assert d.render() == (
        "error[E212]: no tensor is named `ecn1` in the spec\n"
        f" --> {F}:3:10\n"
        "  |\n"
        "3 | concat { @ecn1 | }\n"
        "  |          ^^^^^\n"
        "  = expected: a name defined before it: `input`, `enc1`\n"
        "help: did you mean `@enc1`?"
    )


def test_a_refused_definition_is_reported_once_not_again_at_its_references():
    ds = errors("input 8*8*2\nC(4*1*1, bogus) as a\nadd { @a | }\nadd { @b | }\n")
    assert [(d.code, d.span.line) for d in ds] == [("E307", 2), ("E212", 4)]


def test_every_reference_error_of_a_file_is_reported():
    ds = errors("input 8*8*2\nC(2*1*1) as a\nadd { @x | }\nadd { @y | }\n@a x2\n")
    assert [(d.code, d.span.line) for d in ds] == [("E212", 3), ("E212", 4), ("E215", 5)]


def test_a_shape_conflict_at_a_merge_names_both_ends_and_where_the_reference_leads():
    spec = "input 8*8*2\nC(4*3*3,s1,same) as e1 P(max,2,2) C(8*3*3,s1,same)\nconcat { @e1 | }\n"
    (d,) = errors(spec, "net.cnn")
    n = str(SPECS / "net.cnn")
    assert d.render() == (
        "error[E401]: shapes do not fit at `cat1` (concat): concat needs every branch to "
        "have the same height and width, but they are 8 x 8 x 4, 4 x 4 x 8\n"
        f" --> {n}:3:1\n"
        "  |\n"
        "3 | concat { @e1 | }\n"
        "  | ^^^^^^\n"
        "  = received: input 8 x 8 x 4, 4 x 4 x 8\n"
        f"  = note: branch 1 (8 x 8 x 4) is `e1` ({n}:2:1), from `@e1` ({n}:3:10): "
        f"`e1` is defined at {n}:2:21\n"
        f"  = note: branch 2 (4 x 4 x 8) is `c1` ({n}:2:35)\n"
        "help: give every branch the same strides and `same` padding"
    )


def test_merge_notes_name_a_block_instance_by_its_name_and_each_branch_end():
    spec = (
        "input 8*8*2\nblock Enc(c) { C(c*3*3,s1,same) B A(relu) }\n"
        "Enc(4) as e1 P(max,2,2) Enc(8)\n"
        "concat { @e1 C(2*1*1) | C(3*1*1) }\n"
    )
    (d,) = errors(spec, "net.cnn")
    n = str(SPECS / "net.cnn")
    assert d.code == "E401"
    assert d.notes == (
        (
            f"branch 1 (8 x 8 x 2) ends at `c1` ({n}:4:14), from `@e1` ({n}:4:10): "
            f"`e1` is defined at {n}:3:11"
        ),
        f"branch 2 (4 x 4 x 3) ends at `c2` ({n}:4:25), from `enc1` ({n}:3:25)",
    )


def test_merge_notes_without_references():
    (d,) = errors("input 32*32*3\nC(64*3*3,s1,same)\nadd { C(128*3*3, s1, same) | identity }\n")
    n = str(SPECS / "inline.cnn")
    assert d.notes == (
        f"branch 1 (32 x 32 x 128) ends at `c2` ({n}:3:7), from `c1` ({n}:2:1)",
        f"branch 2 (32 x 32 x 64) is `c1` ({n}:2:1)",
    )


def test_check_prints_the_error_and_no_traceback(tmp_path):
    spec = tmp_path / "bad.cnn"
    spec.write_text("input 8*8*2\nC(4*1*1) as enc1\nconcat { @ecn1 | }\n@enc1 x2\n")
    r = subprocess.run(
        [sys.executable, "-m", "archc", "check", str(spec)], capture_output=True, text=True
    )
    assert r.returncode == 1
    assert "Traceback" not in r.stderr + r.stdout
    assert "error[E212]: no tensor is named `ecn1` in the spec" in r.stderr
    assert "error[E215]: a reference `@enc1` cannot be repeated" in r.stderr


# ---- generated code ----------------------------------------------------------


def test_keras_keeps_a_tensor_read_later_in_its_own_variable():
    src = keras_source(compile_str(UNET))
    body = src[src.index("def build_unet_mini") :]
    assert [line.strip() for line in body.splitlines()[3:]] == (
        [
            "x = inputs",
            'enc1 = down(x, ch=8, name="enc1")',
            'x = layers.MaxPooling2D(2, name="p1")(enc1)',
            'enc2 = down(x, ch=16, name="enc2")',
            'x = layers.MaxPooling2D(2, name="p2")(enc2)',
            'x = layers.Conv2D(32, 3, padding="same", name="c1")(x)',
            'x = layers.Activation("relu", name="a1")(x)',
            'x = layers.ZeroPadding2D(2, name="zp1")(x)',
            'c2 = layers.Conv2D(16, 1, name="c2")(enc2)',
            'x = layers.Concatenate(name="cat1")([c2, x])',
            'x = layers.Conv2D(16, 3, padding="same", name="c3")(x)',
            'x = layers.Activation("relu", name="dec2")(x)',
            'x = layers.ZeroPadding2D(4, name="zp2")(x)',
            'x = layers.Conv2D(8, 1, name="c4")(x)',
            'x = layers.Concatenate(name="cat2")([enc1, x])',
            'x = layers.Conv2D(8, 3, padding="same", name="c5")(x)',
            'x = layers.Activation("relu", name="a2")(x)',
            'x = layers.Conv2D(2, 1, name="c6")(x)',
            'return keras.Model(inputs, x, name="unet_mini")',
        ]
    )
    assert 'feat = layers.Activation("relu", name=f"{name}.feat")(x)' in src
    assert 'x = layers.Add(name=f"{name}.add1")([feat, x])' in src


def test_torch_keeps_a_tensor_read_later_in_its_own_variable():
    src = torch_source(compile_str(UNET))
    forward = src[src.rindex("def forward") :]
    assert [line.strip() for line in forward.splitlines()[1:]] == [
        "enc1 = self.enc1(x)",
        "x = self.p1(enc1)",
        "enc2 = self.enc2(x)",
        "x = self.p2(enc2)",
        "x = self.c1(x)",
        "x = self.a1(x)",
        "x = self.zp1(x)",
        "c2 = self.c2(enc2)",
        "x = torch.cat([c2, x], dim=1)",
        "x = self.c3(x)",
        "x = self.dec2(x)",
        "x = self.zp2(x)",
        "x = self.c4(x)",
        "x = torch.cat([enc1, x], dim=1)",
        "x = self.c5(x)",
        "x = self.a2(x)",
        "x = self.c6(x)",
        "return x",
    ]
    assert (
        "self.c2 = nn.Conv2d(16, 16, 1)" in src
        and "self.c3 = nn.Conv2d(48, 16, 3, padding=1)" in src
    )


def test_a_named_group_held_in_a_variable_does_not_shadow_its_function():
    src = keras_source(
        compile_str("model gg\ninput 8*8*1\nconcat { { C(2*1*1) } as g | C(3*1*1) }\n")
    )
    assert 'g_ = g(x, name="g")' in src and "([g_, x])" in src
    src = keras_source(compile_str(FORMS))
    assert 'g_ = g(a, name="g")' in src and 'add1 = layers.Add(name="add1")([a, g_])' in src
    assert (
        "x = inputs" in src and 'x = layers.Concatenate(name="cat1")([x, stage_1, stage_2])' in src
    )


def test_generated_code_is_the_same_from_the_spec_and_from_its_json_form():
    m = compile_str(UNET)
    again = Model.model_validate_json(m.model_dump_json())
    assert again == m  # the JSON form leaves out the notes for diagnostics only
    assert again._skips == {} and m._skips
    assert keras_source(again) == keras_source(m) == keras_source(compile_str(UNET))
    assert torch_source(again) == torch_source(m)


def test_the_ir_command_round_trips(tmp_path):
    spec = tmp_path / "unet_mini.cnn"
    spec.write_text(UNET)
    r = subprocess.run(
        [sys.executable, "-m", "archc", "ir", str(spec), "--json"], capture_output=True, text=True
    )
    assert r.returncode == 0, r.stderr
    assert Model.model_validate_json(r.stdout) == compile_spec(str(spec))


# ---- the report --------------------------------------------------------------


def test_the_report_marks_what_reads_through_a_reference():
    m = compile_str(UNET)
    rows = {line.split()[0]: line for line in text(m).splitlines()[4:] if line.strip()}
    assert "conv(16*1*1, s1, valid) ← @enc2" in rows["c2"]
    assert "concat ← @enc1" in rows["cat2"]
    assert "add ← @feat" in rows["add1"]
    assert rows["cat1"].split()[1] == "concat" and "←" not in rows["cat1"]
    assert "| c2 | conv(16*1*1, s1, valid) ← @enc2 | 8 x 8 x 16 | 272 | 16,384 |" in markdown(m)
    forms = text(compile_str(FORMS))
    assert "concat ← @input, stage_1" in forms and "globalpool(global avg) ← @f2" in forms


# ---- equivalence ---------------------------------------------------------------


@pytest.mark.skipif(not (HAS_KERAS and HAS_TORCH), reason="needs keras and torch")
@pytest.mark.parametrize("spec", [UNET, UNET_VALID, FORMS], ids=["unet", "unet_valid", "forms"])
@pytest.mark.parametrize("direction", ["keras2torch", "torch2keras"])
def test_equivalence_float64(spec, direction):
    from archc import equiv

    r = equiv.check(compile_str(spec), dtype="float64", direction=direction, nodes=True)
    assert r.problems == [] and r.diff <= 1e-9 * max(1.0, r.scale), r
    assert r.scale > 0.1  # the output is not degenerate
    assert [n.name for n in r.nodes if n.problem or n.degenerate] == []


# ---- documentation -------------------------------------------------------------


def test_the_documented_example_compiles_and_every_code_is_documented():
    import pathlib
    import re

    doc = (pathlib.Path(__file__).resolve().parent.parent / "docs" / "language.md").read_text()
    section = doc[doc.index("## Skips to earlier tensors") : doc.index("## Conditions")]
    example = re.search(r"```\n(.*?)```", section, re.DOTALL).group(1)
    m = compile_str("input 16*16*3\n" + example)
    assert m.node("cat1").out_shape == (16, 16, 24) and m.output_shape == (16, 16, 24)
    assert inputs(m)["c3"] == ("enc1",) and m._skips == {"cat1": "enc1", "c3": "enc1"}
    for code in ("E212", "E213", "E214", "E215"):
        assert code in section, code
    shown = re.findall(r"```\n(error\[E401\].*?)```", section, re.DOTALL)[0].strip()
    spec = "input 8*8*2\nC(4*3*3,s1,same) as e1 P(max,2,2) C(8*3*3,s1,same)\nconcat { @e1 | }\n"
    (d,) = errors(spec, "net.cnn")
    assert d.render().replace(str(SPECS / "net.cnn"), "net.cnn") == shown


# ---- every combination of a few pieces ------------------------------------------

PIECES = [
    "C(4*1*1) as a",
    "C(4*1*1)",
    "@a",
    "@input",
    "add { @a | }",
    "concat { @a C(2*1*1) | }",
    "{ C(4*1*1) as b add { @b | } } as g",
    "@g",
    "Blk as k",
    "@k",
    "identity as i",
    "add { @i | C(4*1*1) as a }",
]


def test_every_sequence_of_pieces_compiles_or_is_refused_cleanly():
    """Three pieces in every order: no traceback; what compiles uses every
    tensor it makes (so a body's last node is its output, as the generators
    expect) and generates source that is valid Python."""
    import itertools

    from archc.diagnostics import SpecError

    compiled = 0
    for parts in itertools.product(PIECES, repeat=3):
        spec = "input 6*6*4\nblock Blk { C(4*1*1) as z add { @z | } }\n" + "\n".join(parts) + "\n"
        try:
            m = compile_str(spec)
        except SpecError as e:
            assert {d.code[:2] for d in e.diagnostics} <= {"E0", "E2", "E4"}, spec
            continue
        compiled += 1
        used = {i for n in m.nodes for i in n.inputs} | {m.output}
        assert [n.name for n in m.nodes if n.name not in used] == [], spec
        for scope in {n.scope for n in m.nodes if n.scope}:
            inside = [n.name for n in m.nodes if f"{n.scope}.".startswith(f"{scope}.")]
            read = {i for n in m.nodes if n.name not in inside for i in n.inputs} | {m.output}
            assert read & set(inside) == {inside[-1]}, (
                spec
            )  # the instance's output is its last node
        compile(keras_source(m), "keras.py", "exec")
        compile(torch_source(m), "torch.py", "exec")
    assert compiled > 100
