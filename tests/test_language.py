"""Grammar coverage: every construct of the .cnn language, in both notations."""

from __future__ import annotations

import pathlib
import re

import pytest

from archc.diagnostics import SpecError
from archc.pipeline import compile_spec
from tests.helpers import compile_str, error, same_ir

SEEDS = pathlib.Path(__file__).resolve().parent.parent.parent / "shared" / "seeds"


def kinds(model):
    return [n.kind for n in model.nodes]


def test_compact_notation_from_the_readme():
    m = compile_str("""
        input 32*32*3
        C(6*5*5,s1,same) B A(relu) P(max,2,2) D(0.2)
        Flatten
        Dense(128,relu) D(0.2)
        Dense(10,softmax)
    """)
    assert [n.name for n in m.nodes] == [
        "input",
        "c1",
        "b1",
        "a1",
        "p1",
        "d1",
        "flatten",
        "f1",
        "d2",
        "f2",
    ]
    c1 = m.node("c1")
    assert (c1.filters, c1.kernel, c1.stride, c1.padding) == (6, (5, 5), (1, 1), "same")
    assert m.node("p1").out_shape == (16, 16, 6)
    assert m.output_shape == (10,)


def test_one_layer_per_line_equals_several_per_line():
    a = compile_str("input 8*8*1\nC(4*3*3,s1,same) B A(relu) P(max,2,2)\n")
    b = compile_str("input 8*8*1\nC(4*3*3,s1,same)\nB\nA(relu)\nP(max,2,2)\n")
    assert same_ir(a, b)


def test_comments_are_ignored():
    a = compile_str("# a net\ninput 8*8*1  # the input\nC(4*3*3) # conv\n")
    b = compile_str("input 8*8*1 C(4*3*3)")
    assert same_ir(a, b)


LONG_FORM = """
input 32*32*3
C (核: 6*5*5, 步长: 1, 填充: same)
B (Yes)
A (relu)
P (max, 核: 2*2, 步长: 2, 填充: same)
D (0.2)
Flatten
Dense (神经元: 128, 激活: relu, Dropout: 0.2)
Dense (神经元: 10, 激活: softmax)
"""
COMPACT = """
input 32*32*3
C(6*5*5,s1,same) B A(relu) P(max,2,2,same) D(0.2)
Flatten Dense(128,relu) D(0.2) Dense(10,softmax)
"""


def test_slide_long_form_equals_compact_form():
    assert same_ir(compile_str(LONG_FORM), compile_str(COMPACT))


def test_english_labels_equal_chinese_labels():
    english = (
        LONG_FORM.replace("核", "kernel")
        .replace("步长", "stride")
        .replace("填充", "padding")
        .replace("神经元", "units")
        .replace("激活", "activation")
        .replace("Dropout", "dropout")
    )
    assert same_ir(compile_str(english), compile_str(COMPACT))


def test_blog_full_width_punctuation():
    """Seed 003 prints `C(核:6*5*5，步长:1，填充:same )` with full-width commas."""
    blog = compile_str(
        "input 32*32*3\nC(核:6*5*5，步长:1，填充:same ) B(Yes) A(relu)\n"
        "P(max，核:2*2，步长:2，填充:same) D(0.2)\n"
    )
    compact = compile_str("input 32*32*3\nC(6*5*5,s1,same) B A(relu) P(max,2,2,same) D(0.2)")
    assert same_ir(blog, compact)


@pytest.mark.parametrize("none_row", ["B (None)", "P (None)", "D (None)", "A (None)"])
def test_none_rows_make_no_layer(none_row):
    m = compile_str(f"input 8*8*1\nC(4*3*3)\n{none_row}\n")
    assert kinds(m) == ["input", "conv"]


@pytest.mark.parametrize(
    "bn", ["B (Yes, LRN*)", "B (Yes, , LRN*)", "B(Yes)", "B", "BN", "BatchNorm"]
)
def test_batch_norm_spellings(bn):
    m = compile_str(f"input 8*8*1\nC(4*3*3) {bn}\n")
    assert kinds(m) == ["input", "conv", "batchnorm"]


def test_markdown_escaped_stars_from_the_seed_text():
    r"""The seed's text writes `6\*5\*5` (Markdown escapes); archc reads it as `6*5*5`."""
    a = compile_str("输入: 32\\*32\\*3\nC (核: 6\\*5\\*5, 步长: 1, 填充: valid)\n")
    b = compile_str("input 32*32*3\nC(6*5*5, s1, valid)\n")
    assert same_ir(a, b)


def _seed_table(start: str, end: str) -> str:
    text = (SEEDS / "000_62ce38a2b965a7fa.txt").read_text(encoding="utf-8")
    i = text.index(start)
    j = text.index(end, i) + len(end)
    return text[i:j]


@pytest.mark.skipif(not SEEDS.exists(), reason="../shared/seeds is not beside the checkout")
def test_lenet_table_copied_verbatim_from_the_slides():
    table = _seed_table(
        "输入: 32\\*32\\*3  \n C (核: 6\\*5\\*5", "Dense (神经元: 10, 激活: softmax)"
    )
    copied = compile_str(table)
    spec = compile_spec(str(pathlib.Path(__file__).parent.parent / "specs" / "course_lenet5.cnn"))
    compact = compile_str(
        "input 32*32*3\nC(6*5*5,s1,valid) A(sigmoid) P(max,2,2)\n"
        "C(16*5*5,s1,valid) A(sigmoid) P(max,2,2)\n"
        "Flatten Dense(120,sigmoid) Dense(84,sigmoid) Dense(10,softmax)"
    )
    assert same_ir(copied, compact)
    assert same_ir(spec, compact)


@pytest.mark.skipif(not SEEDS.exists(), reason="../shared/seeds is not beside the checkout")
def test_alexnet_table_copied_verbatim_from_the_slides():
    """The slides' second AlexNet table, with its `B (Yes, , LRN*)` typo."""
    text = (SEEDS / "000_62ce38a2b965a7fa.txt").read_text(encoding="utf-8")
    i = text.index("C (核: 96\\*3\\*3, 步长: 1, 填充: valid)  \nB (Yes, , LRN\\*)")
    j = text.index("Dense (神经元: 10, 激活: softmax)", i) + len(
        "Dense (神经元: 10, 激活: softmax)"
    )
    copied = compile_str("input 32*32*3\n" + text[i:j])
    spec = compile_spec(str(pathlib.Path(__file__).parent.parent / "specs" / "course_alexnet8.cnn"))
    assert same_ir(copied, spec)


# ---- every layer kind and option -----------------------------------------


@pytest.mark.parametrize(
    "text, field, value",
    [
        ("C(8*3*3, s2)", "stride", (2, 2)),
        ("C(8*3*3, s(2,1))", "stride", (2, 1)),
        ("C(8*3*3, stride=2)", "stride", (2, 2)),
        ("C(8*3*3, p1)", "padding", (1, 1)),
        ("C(8*3*3, p(1,0))", "padding", (1, 0)),
        ("C(8*3*3, padding: 2)", "padding", (2, 2)),
        ("C(8*3*3, valid)", "padding", "valid"),
        ("C(8*3*3)", "padding", "valid"),
        ("C(8*3*3, nobias)", "use_bias", False),
        ("C(8*3*3, bias: no)", "use_bias", False),
        ("C(8*3*3, dilation=2)", "dilation", (2, 2)),
        ("C(8*1*7, s1, same)", "kernel", (1, 7)),
        ("C(filters: 8, kernel: 3*5)", "kernel", (3, 5)),
        ("C(8*3*3, relu)", "activation", "relu"),
        ("C(8*3*3, init: he_normal)", "init", "he_normal"),
        ("C(8*3*3, bias_init: 0.2)", "bias_init", 0.2),
        ("C(8*3*3, l2: 0.0005)", "l2", 0.0005),
    ],
)
def test_conv_options(text, field, value):
    m = compile_str(f"input 16*16*3\n{text}\n")
    assert getattr(m.node("c1"), field) == value


@pytest.mark.parametrize(
    "text, fn, alpha",
    [
        ("A(relu)", "relu", None),
        ("A(sigmoid)", "sigmoid", None),
        ("A(tanh)", "tanh", None),
        ("A(softmax)", "softmax", None),
        ("A(linear)", "linear", None),
        ("A(elu)", "elu", 1.0),
        ("A(elu, 0.5)", "elu", 0.5),
        ("A(leaky_relu)", "leaky_relu", 0.3),
        ("A(leaky_relu, 0.1)", "leaky_relu", 0.1),
        ("A(leakyrelu, alpha: 0.2)", "leaky_relu", 0.2),
        ("A(prelu)", "prelu", None),
        ("A(gelu)", "gelu", None),
        ("A(swish)", "silu", None),
        ("A(silu)", "silu", None),
        ("ReLU", "relu", None),
        ("PReLU", "prelu", None),
        ("LeakyReLU", "leaky_relu", 0.3),
    ],
)
def test_activations(text, fn, alpha):
    m = compile_str(f"input 4*4*3\n{text}\n")
    a = m.nodes[1]
    assert (a.kind, a.fn, a.alpha) == ("activation", fn, alpha)


def test_prelu_has_one_slope_per_channel():
    m = compile_str("input 4*4*3\nC(8*3*3, same) A(prelu) Flatten Dense(5) A(prelu)\n")
    assert [n.trainable for n in m.nodes if n.kind == "activation"] == [8, 5]


@pytest.mark.parametrize(
    "text, op, kernel, stride, padding",
    [
        ("P(max,2,2)", "max", (2, 2), (2, 2), "valid"),
        ("P(avg,3,1,same)", "avg", (3, 3), (1, 1), "same"),
        ("P(max,3)", "max", (3, 3), (3, 3), "valid"),
        ("P(max, 3, 2, p1)", "max", (3, 3), (2, 2), (1, 1)),
        ("P(max, 核: 3*3, 步长: 2)", "max", (3, 3), (2, 2), "valid"),
        ("MaxPool(2)", "max", (2, 2), (2, 2), "valid"),
        ("AvgPool(2, 1, same)", "avg", (2, 2), (1, 1), "same"),
        ("P(max, 2*1, s(2,1))", "max", (2, 1), (2, 1), "valid"),
    ],
)
def test_pooling(text, op, kernel, stride, padding):
    p = compile_str(f"input 8*8*3\n{text}\n").nodes[1]
    assert (p.kind, p.op, p.kernel, p.stride, p.padding) == ("pool", op, kernel, stride, padding)


@pytest.mark.parametrize(
    "text, op",
    [
        ("P(gavg)", "avg"),
        ("GAP", "avg"),
        ("P(gmax)", "max"),
        ("GMP", "max"),
        ("GlobalAvgPool", "avg"),
    ],
)
def test_global_pooling(text, op):
    m = compile_str(f"input 8*8*3\n{text}\n")
    assert (m.nodes[1].kind, m.nodes[1].op, m.output_shape) == ("globalpool", op, (3,))


def test_lrn_defaults_are_alexnets():
    n = compile_str("input 8*8*3\nLRN\n").nodes[1]
    assert (n.depth, n.alpha, n.beta, n.bias_k) == (5, 1e-4, 0.75, 2.0)
    n = compile_str("input 8*8*3\nLRN(3, alpha: 0.001, beta: 0.5, bias_k: 1)\n").nodes[1]
    assert (n.depth, n.alpha, n.beta, n.bias_k) == (3, 0.001, 0.5, 1.0)


@pytest.mark.parametrize(
    "text, pad, shape",
    [
        ("ZeroPad(1)", (1, 1, 1, 1), (10, 10, 3)),
        ("ZeroPad(1, 2)", (1, 1, 2, 2), (10, 12, 3)),
        ("ZeroPad(0, 1, 0, 1)", (0, 1, 0, 1), (9, 9, 3)),
    ],
)
def test_zero_padding(text, pad, shape):
    n = compile_str(f"input 8*8*3\n{text}\n").nodes[1]
    assert (n.pad, n.out_shape) == (pad, shape)


@pytest.mark.parametrize(
    "decl, shape",
    [
        ("input 32*32*3", (32, 32, 3)),
        ("input 32x32x3", (32, 32, 3)),
        ("Input 28x28x1", (28, 28, 1)),
        ("输入: 32*32*3", (32, 32, 3)),
        ("input: 227*227*3", (227, 227, 3)),
        ("input 784", (784,)),
    ],
)
def test_input_forms(decl, shape):
    m = compile_str(f"{decl}\nFlatten\n")
    assert m.input_shape == shape


def test_dense_options():
    m = compile_str("input 10\nDense(units: 4, activation: tanh, bias: no)\n")
    d = m.node("f1")
    assert (d.units, d.activation, d.use_bias, d.trainable) == (4, "tanh", False, 40)


# ---- structure ---------------------------------------------------------------


def test_block_with_defaults_and_arithmetic():
    m = compile_str("""
        block Stage(ch, k=3, s=1, out=ch*2) { C(out*k*k, s(s), same) B A(relu) }
        input 32*32*3
        Stage(8) Stage(ch: 16, s=2) Stage(4, k=1 + 4, out=(4+1)*2)
    """)
    convs = [n for n in m.nodes if n.kind == "conv"]
    assert [(c.filters, c.kernel, c.stride) for c in convs] == [
        (16, (3, 3), (1, 1)),
        (32, (3, 3), (2, 2)),
        (10, (5, 5), (1, 1)),
    ]
    assert [n.name for n in convs] == ["stage1.c1", "stage2.c1", "stage3.c1"]
    assert [(b.path, b.block, b.args) for b in m.blocks] == [
        ("stage1", "Stage", {"ch": 8, "k": 3, "s": 1, "out": 16}),
        ("stage2", "Stage", {"ch": 16, "k": 3, "s": 2, "out": 32}),
        ("stage3", "Stage", {"ch": 4, "k": 5, "s": 1, "out": 10}),
    ]


def test_integer_arithmetic():
    m = compile_str(
        "block X(a) { C((a//3 + a%3 - 1)*1*1) Flatten Dense((2*a)/4 * 3 - -1) }\n"
        "input 4*4*1\nX(10)\n"
    )
    assert m.node("x1.c1").filters == 10 // 3 + 10 % 3 - 1
    assert m.node("x1.f1").units == (2 * 10) // 4 * 3 + 1


def test_concat_add_and_identity():
    m = compile_str("""
        input 16*16*8
        concat { C(4*1*1) | C(6*3*3, s1, same) | identity }
        add { C(18*3*3, s1, same) | identity }
    """)
    assert m.node("cat1").out_shape == (16, 16, 18)
    assert m.node("cat1").inputs == ("c1", "c2", "input")
    assert m.node("add1").inputs == ("c3", "cat1")


def test_repetition_of_layer_block_and_group():
    m = compile_str("""
        block CB(ch) { C(ch*3*3, s1, same) B }
        input 8*8*1
        C(2*3*3, s1, same) x3
        CB(4) x2
        { C(1*1*1) A(relu) } x(1+1)
    """)
    assert [n.name for n in m.nodes] == [
        "input",
        "c1",
        "c2",
        "c3",
        "cb1.c1",
        "cb1.b1",
        "cb2.c1",
        "cb2.b1",
        "c4",
        "a1",
        "c5",
        "a2",
    ]


def test_repeat_of_one_block_on_one_line():
    a = compile_str("block Head(n) { Dense(n) }\ninput 4\nHead(3) x3")
    assert [n.name for n in a.nodes] == ["input", "head1.f1", "head2.f1", "head3.f1"]


def test_aliases_name_layers_blocks_and_groups():
    m = compile_str("""
        block CB(ch) { C(ch*3*3, s1, same) B }
        input 8*8*1
        C(2*3*3) as stem
        CB(4) as stage1
        { C(1*1*1) } as head
        CB(2) x2 as tail
    """)
    names = [n.name for n in m.nodes]
    assert names == [
        "input",
        "stem",
        "stage1.c1",
        "stage1.b1",
        "head.c1",
        "tail_1.c1",
        "tail_1.b1",
        "tail_2.c1",
        "tail_2.b1",
    ]


def test_if_else_in_blocks():
    m = compile_str("""
        block R(ch, proj=0) { add { C(ch*1*1) | if proj { C(ch*1*1) } else { identity } } }
        input 4*4*2
        R(2) R(2, proj=1) R(3, proj=2 > 1)
    """)
    assert [n.inputs for n in m.nodes if n.kind == "add"] == [
        ("r1.c1", "input"),
        ("r2.c1", "r2.c2"),
        ("r3.c1", "r3.c2"),
    ]


def test_nested_blocks_keep_their_structure():
    m = compile_str("""
        block Inner(c) { C(c*1*1) }
        block Outer(c) { Inner(c) Inner(c*2) }
        input 4*4*1
        Outer(2)
    """)
    assert [n.name for n in m.nodes] == ["input", "outer1.inner1.c1", "outer1.inner2.c1"]
    assert [(b.path, b.block) for b in m.blocks] == [
        ("outer1", "Outer"),
        ("outer1.inner1", "Inner"),
        ("outer1.inner2", "Inner"),
    ]
    assert [d.name for d in m.block_defs] == ["Inner", "Outer"]


def test_model_name_and_include(tmp_path):
    (tmp_path / "lib.cnn").write_text("block Two(c) { C(c*1*1) x2 }\n")
    (tmp_path / "net.cnn").write_text('model my_net\ninclude "lib.cnn"\ninput 4*4*1\nTwo(3)\n')
    m = compile_spec(str(tmp_path / "net.cnn"))
    assert m.name == "my_net" and len(m.nodes) == 3


def test_model_name_defaults_to_the_file_name(tmp_path):
    (tmp_path / "tiny_net.cnn").write_text("input 4*4*1\nC(1*1*1)\n")
    assert compile_spec(str(tmp_path / "tiny_net.cnn")).name == "tiny_net"


def test_training_section():
    m = compile_str("""
        input 4
        Dense(2)
        train {
            optimizer: sgd(momentum=0.9, nesterov=true)
            lr: 0.01
            schedule: piecewise(boundaries=[3, 6], values=[0.1, 0.01, 0.001])
            epochs: 20
            batch_size: 128
            loss: categorical_crossentropy
            weight_decay: 5e-4
        }
    """)
    t = m.training
    assert (t.optimizer.name, t.optimizer.momentum, t.optimizer.nesterov) == ("sgd", 0.9, True)
    assert (t.lr, t.epochs, t.batch_size, t.weight_decay) == (0.01, 20, 128, 5e-4)
    assert (t.schedule.kind, t.schedule.boundaries, t.schedule.values) == (
        "piecewise",
        (3, 6),
        (0.1, 0.01, 0.001),
    )
    assert t.loss == "categorical_crossentropy"


@pytest.mark.parametrize(
    "schedule, kind",
    [
        ("plateau(factor=0.1, patience=5, min_lr=1e-6)", "plateau"),
        ("step(rate=0.96, every=8, offset=1)", "step"),
        ("cosine", "cosine"),
        ("onecycle(max_lr=0.1)", "onecycle"),
        ("constant", "constant"),
    ],
)
def test_schedules(schedule, kind):
    m = compile_str(f"input 4\nDense(2)\ntrain {{ schedule: {schedule} }}\n")
    assert m.training.schedule.kind == kind


def test_training_errors_point_at_the_value():
    d = error(
        "input 4\nDense(2)\ntrain { lr: 0.1 schedule: piecewise(boundaries=[3], values=[0.1]) }\n"
    )
    assert d.code == "E603" and "one more value than boundaries" in d.message
    assert (d.span.line, d.span.col) == (3, 27)


def test_language_doc_covers_every_layer_spelling():
    from archc.language.bind import SPELLINGS

    doc = (pathlib.Path(__file__).parent.parent / "docs" / "language.md").read_text("utf-8")
    for spelling in SPELLINGS:
        assert re.search(rf"`{re.escape(spelling)}[`(]", doc), spelling


def test_compile_text_needs_no_model_line():
    from archc.pipeline import compile_text

    m = compile_text("input 8*8*1\nC(4*3*3) Flatten Dense(2)")
    assert (m.name, m.source, m.params) == ("spec", "<text>", 4 * 9 + 4 + 6 * 6 * 4 * 2 + 2)
    assert compile_text("input 8*8*1\nFlatten", name="tiny").name == "tiny"
    assert compile_text("model foo\ninput 8*8*1\nFlatten").name == "foo"
    with pytest.raises(SpecError) as e:
        compile_text("input 8*8*1\nC(4*3*3) Flat", path="mine.cnn")
    assert str(e.value).startswith("error[E201]") and "mine.cnn:2:10" in str(e.value)
