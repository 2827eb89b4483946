"""The spec printer (archc/language/decompile.py) and the kinds' spellers
(archc/language/bind.py): printing any inferred IR gives a spec that compiles to
the same graph, and printing that again gives the same text."""

from __future__ import annotations

import random
import re
import time
from pathlib import Path

import pytest

from archc.diagnostics import SpecError
from archc.ir.kinds import KINDS
from archc.ir.model import Model, same_graph
from archc.language.bind import SPELLERS, spell
from archc.language.decompile import names, spec_text
from archc.pipeline import compile_spec, compile_text
from tests.helpers import compile_str
from tests.test_kinds import ROWS

ROOT = Path(__file__).resolve().parent.parent
SPECS = sorted((ROOT / "specs").glob("*.cnn"))
REPROS = sorted((ROOT / "tests" / "repros").glob("*.cnn"))
IGNORED = {"name", "inputs", "scope", "loc"}


def compiled(path: Path) -> Model | None:
    try:
        return compile_spec(str(path))
    except SpecError:
        return None  # a library of blocks, or a repro of an error


MODELS = {p.name: m for p in SPECS + REPROS if (m := compiled(p)) is not None}


# --- Keras-style bare IRs: what an importer gives the printer ---------------------

KERAS_WORDS = {"conv": "conv", "batchnorm": "bn", "activation": "relu", "pool": "pool"}


def bare(model: Model, style: str = "keras") -> Model:
    """`model` as an importer would give it: no scopes, no blocks, every node
    renamed in Keras's style (`bottleneck3_2_conv`: the scope path and the
    layer's kind; `style="odd"` gives names the language cannot keep)."""
    renamed: dict[str, str] = {}
    used: set[str] = set()
    for i, n in enumerate(model.nodes):
        if n.kind == "input":
            new = "input_layer"
        elif style == "keras":
            head = n.scope.replace(".", "_")
            local = n.name.rpartition(".")[2]
            word = KERAS_WORDS.get(n.kind, n.kind)
            digits = re.sub(r"^\D*", "", local) or "0"
            new = f"{head}_{digits}_{word}" if head else f"{word}_{digits}"
        else:
            new = ODD[i % len(ODD)] + (str(i) if i >= len(ODD) else "")
        while new in used:
            new += "_"
        used.add(new)
        renamed[n.name] = new
    nodes = tuple(
        n.model_copy(
            update={
                "name": renamed[n.name],
                "inputs": tuple(renamed[x] for x in n.inputs),
                "scope": "",
                "loc": None,
            }
        )
        for n in model.nodes
    )
    return model.model_copy(
        update={"nodes": nodes, "output": renamed[model.output], "blocks": (), "block_defs": ()}
    )


# names the language cannot keep: layer spellings, words of the language, Python
# keywords and builtins, dots and hyphens, generated names
ODD = ["C", "B", "DW", "input", "add", "lambda", "class", "conv.1", "res-block", "c1", "x2", "len"]


def round_trip(model: Model) -> str:
    text = spec_text(model)
    again = compile_text(text)
    assert same_graph(again, model) == [], text
    assert spec_text(again) == text, "printing is not idempotent"
    return text


# --- the spellers -------------------------------------------------------------------


def test_every_kind_has_a_speller():
    assert sorted(SPELLERS) == sorted(KINDS)


# options the specs and the rows of tests/test_kinds.py rarely write
OPTIONS = [
    (
        "input 8*8*3\nC(4*3*3, linear) A(leaky_relu, 0.2) A(elu) CT(4*3*3, s2, same, output_padding: 1)"
        " SC(8*3*3, multiplier: 2, bias_init: zeros) Up([2, 3], bilinear) Resize(5, 7, nearest)"
        " GN(2, epsilon: 1e-05) LN Scale(0.5) Crop(1, 0, 1, 2) Reshape(2, 8, 8) Flatten"
        " Dense(3, linear, nobias, init: he_normal, bias_init: 0.5, l2: 0.001)"
    ),
    (
        "input 16*16*4\nRescaling(scale: 0.5, offset: -1) Normalization(mean: [1, 2, 3.5, 4],"
        " variance: [1, 2, 3, 4]) DW(3*3, p(1,0), multiplier: 2, dilation: [2, 1], l2: 0.01, relu)"
        " C(8*3*3, s(2,1), p(1,2), groups: 2, init: glorot_normal) P(avg, 3*2, s(2,1), p1, ceil)"
        " LRN(3, alpha: 0.001, beta: 0.5, bias_k: 1) B(scale: no, epsilon: 0.0001) DP(0.1)"
        " Shuffle(2) Split(4, 3) ZeroPad(1, 2) GMP(keepdims)"
    ),
]


def spelled_nodes():
    """One node per distinct (kind, fields, input shape) of every spec, every
    row of tests/test_kinds.py and OPTIONS."""
    models = list(MODELS.values()) + [compile_text(text) for text in OPTIONS]
    for row in ROWS:
        shape = "*".join(map(str, row.input))
        models.append(compile_str(f"input {shape}\n{row.spec}\n"))
    seen = {}
    for m in models:
        for n in m.nodes:
            if n.kind in ("input", "add", "concat", "mul"):
                continue
            key = (n.kind, repr(n.model_dump(exclude=IGNORED | {"rf"})))
            seen.setdefault(key, n)
    return list(seen.values())


def assert_spelling_binds_back(n) -> None:
    """Binding the call `n`'s speller prints gives back exactly `n`'s fields."""
    shape = "*".join(map(str, n.in_shapes[0]))
    text = spell(n)
    (got,) = compile_text(f"input {shape}\n{text}\n").nodes[1:]
    fields = IGNORED | {"rf"}  # the receptive field depends on the layers before
    assert got.model_dump(exclude=fields) == n.model_dump(exclude=fields), text


def test_binding_the_spelled_call_gives_back_exactly_the_fields():
    nodes = spelled_nodes()
    assert len({n.kind for n in nodes}) == len(KINDS) - 4  # every layer kind
    for n in nodes:
        assert_spelling_binds_back(n)


def test_a_field_the_language_cannot_write_is_an_error_not_dropped():
    (node,) = compile_str("input 4*4*3\nA(relu)\n").nodes[1:]
    with pytest.raises(ValueError, match="takes no alpha"):
        spell(node.model_copy(update={"alpha": 0.5}))


def test_the_spellings_are_canonical():
    m = compile_str(
        "input 32*32*3\n"
        "C(64*3*3, s2, same, nobias) B(momentum: 0.999, eps: 0.001) DW(3*3, same) A(relu6)"
        " P(max, 3, 2, same) LRN(3, alpha: 0.001)\n"
    )
    assert [spell(n) for n in m.nodes] == [
        "input 32*32*3",
        "C(64*3*3, s2, same, nobias)",
        "B(momentum: 0.999)",
        "DW(3*3, same)",
        "A(relu6)",
        "P(max, 3, 2, same)",
        "LRN(3, alpha: 0.001)",
    ]


# --- round trips --------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_spec_round_trips(name):
    round_trip(MODELS[name])


@pytest.mark.parametrize("name", ["resnet50.cnn", "unet.cnn", "densenet121.cnn", "xception.cnn"])
def test_bare_keras_style_irs_round_trip_and_keep_their_names(name):
    model = bare(MODELS[name])
    text = round_trip(model)
    again = compile_text(text)
    mapping = names(again, model)
    assert mapping["input_layer"] == "input"
    for old, new in mapping.items():
        scope, _, _ = new.rpartition(".")
        if scope:  # in a block instance, named after its layers' common prefix
            assert old.startswith(scope + "_"), (old, new)
        elif old != "input_layer":  # at the top level every Keras-style name is kept
            assert old == new


@pytest.mark.parametrize("name", ["resnet18.cnn", "unet.cnn", "mobilenet_v3_small.cnn"])
def test_names_the_language_refuses_are_dropped(name):
    model = bare(MODELS[name], style="odd")
    text = round_trip(model)
    for refused in ("C", "B", "DW", "add", "lambda", "class", "conv.1", "res-block", "x2", "len"):
        assert f"as {refused} " not in text and not text.endswith(f"as {refused}\n")


def test_a_name_another_node_takes_in_generated_code_is_dropped():
    """Keras names a convolution's padding `X_pad` beside `X` (EfficientNet,
    MobileNetV3); PyTorch's generated code names X's own padding `self.X_pad`, so
    the compiler refuses the pair (E211): the printer keeps `X` and drops `X_pad`,
    at the top level, inside a block body, and beside a name the compiler makes up."""
    spec = """
        block Down(ch) { ZP(1) C(ch*3*3, s2, same) as dw B }
        input 32*32*3
        ZP(2) C(8*5*5, s2, same)
        Down(8) as block1 Down(16) as block2
        ZP(2) C(8*5*5, s2, same) GAP Dense(10)
    """
    model = bare(compile_text(spec))
    pads = [n for n in model.nodes if n.kind == "zeropad"]
    rename = {pads[0].name: "stem_pad", pads[-1].name: "c1_pad"}
    for n in model.nodes:
        if n.kind == "conv" and n.inputs[0] == pads[0].name:
            rename[n.name] = "stem"
    for n in model.nodes:  # in each block: `block1_1_conv_pad` beside `block1_1_conv`
        if n.kind == "conv" and n.inputs[0] in [p.name for p in pads[1:-1]]:
            rename[n.inputs[0]] = n.name + "_pad"
    nodes = tuple(
        n.model_copy(
            update={
                "name": rename.get(n.name, n.name),
                "inputs": tuple(rename.get(x, x) for x in n.inputs),
            }
        )
        for n in model.nodes
    )
    model = model.model_copy(update={"nodes": nodes})
    assert {"stem_pad", "c1_pad"} <= {n.name for n in model.nodes}, nodes
    assert sum(n.name.endswith("_conv_pad") for n in model.nodes) == 2, nodes
    text = round_trip(model)
    assert "_pad" not in text, text


def test_model_names_are_made_valid():
    m = compile_str("input 8*8*3\nC(4*3*3)\n").model_copy(update={"name": "1st-model.v2"})
    text = round_trip(m)
    assert "\nmodel net_1st_model_v2\n" in "\n" + text


def test_a_header_is_printed_as_comments():
    m = MODELS["resnet18.cnn"]
    text = spec_text(m, header="Imported from keras.applications.X\nby archc import")
    assert text.startswith("# Imported from keras.applications.X\n# by archc import\nmodel ")


# --- graphs that are not series-parallel --------------------------------------------

DAGS = {
    # DenseNet's dense block as the paper draws it: each layer reads the
    # concatenation of every earlier map
    "dense_all_earlier": """
        input 16*16*8
        C(8*3*3, same) as a0
        C(4*3*3, same) as a1
        concat { @a0 | @a1 } C(4*3*3, same) as a2
        concat { @a0 | @a1 | @a2 } C(4*3*3, same) as a3
        concat { @a0 | @a1 | @a2 | @a3 }
    """,
    # one tensor read by three consumers in different places
    "three_readers": """
        input 16*16*8
        C(8*3*3, same) as r0
        C(8*3*3, same) A(relu) as r1
        add { @r0 | } C(8*1*1) as r2
        @r0 P(max, 3, 1, same)
        concat { @r2 | }
    """,
    # a U-Net with padded convolutions: skips across the whole net
    "unet_same": """
        input 32*32*3
        C(8*3*3, same, relu) as e1 P(max, 2, 2) C(16*3*3, same, relu) as e2
        P(max, 2, 2) C(32*3*3, same, relu)
        Up(2) concat { @e2 | } C(16*3*3, same, relu)
        Up(2) concat { | @e1 } C(8*3*3, same, relu) C(2*1*1)
    """,
    # branches listed out of their input order
    "crossed": """
        input 8*8*4
        C(4*1*1) as left
        @input C(4*3*3, same) as right
        add { @right | @left }
    """,
}


@pytest.mark.parametrize("name", sorted(DAGS))
def test_graphs_that_are_not_series_parallel_round_trip(name):
    model = compile_text(DAGS[name])
    round_trip(model)
    round_trip(bare(model))
    round_trip(bare(model, style="odd"))


def random_dag(seed: int) -> str:
    """A random graph of 8 x 8 x 4 tensors: layers and merges reading random
    earlier tensors, every tensor used, all of them concatenated at the end."""
    r = random.Random(seed)
    lines = ["input 8*8*4"]
    named, unused = ["input"], {"input"}
    layers = ["C(4*3*3, same)", "B", "A(relu)", "DW(3*3, same)", "P(max, 3, 1, same)", "D(0.1)"]
    for k in range(r.randint(2, 14)):
        if r.random() < 0.4 and len(named) >= 2:
            ins = r.sample(named, r.randint(2, min(3, len(named))))
            op = r.choice(["add", "mul", "concat"])
            branches = " | ".join(f"@{x}" + r.choice(["", " A(relu)"]) for x in ins)
            text = f"{op} {{ {branches} }}" + (" C(4*1*1)" if op == "concat" else "")
        else:
            ins = [r.choice(named)]
            text = f"@{ins[0]} " + " ".join(r.sample(layers, r.randint(1, 3)))
        lines.append(f"{text} as n{k}")
        unused -= set(ins)
        named.append(f"n{k}")
        unused.add(f"n{k}")
    last = sorted(unused) * 2 if len(unused) == 1 else sorted(unused)
    lines.append("concat { " + " | ".join(f"@{x}" for x in last) + " }")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("seed", range(40))
def test_random_graphs_round_trip(seed):
    model = compile_text(random_dag(seed))
    round_trip(model)
    round_trip(bare(model, style="odd"))


# --- repetition recovered -----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "at_most"),
    [("resnet152.cnn", 80), ("densenet121.cnn", 90), ("inception_v3.cnn", 120)],
)
def test_repeated_structure_becomes_blocks_from_the_bare_graph(name, at_most):
    model = MODELS[name]
    for bare_model in (bare(model), bare(model, style="odd")):
        text = round_trip(bare_model)
        assert "\nblock " in text
        assert len(text.splitlines()) <= at_most, text  # not hundreds of flat lines


def test_varying_fields_become_parameters_and_multiples_are_written_so():
    text = round_trip(bare(MODELS["resnet50.cnn"]))
    assert "block Residual2(filters) {" in text
    assert "C((4*filters)*1*1) B(epsilon: 1.001e-05)" in text
    assert "Residual2(128) as bottleneck5" in text  # named after its layers' prefix


def test_identical_unnamed_instances_are_repeated():
    text = round_trip(bare(MODELS["resnet50.cnn"], style="odd"))
    assert re.search(r"^Residual2\(128\) x3$", text, re.MULTILINE), text


# --- same_graph can fail ------------------------------------------------------------


def test_same_graph_finds_each_kind_of_difference():
    a = compile_text("input 8*8*3\nC(4*3*3) as y C(4*3*3, same) add { @y | }\n")
    assert same_graph(a, a) == []
    b = compile_text("input 8*8*3\nC(4*3*3) as y C(4*3*3, same) add { | @y }\n")
    assert any("reads nodes" in d for d in same_graph(a, b))
    c = compile_text("input 8*8*3\nC(4*3*3) as y C(4*3*3, same, nobias) add { @y | }\n")
    assert any("use_bias" in d for d in same_graph(a, c))
    d = compile_text("input 8*8*3\nC(4*3*3) as y C(4*3*3, same) concat { @y | }\n")
    assert any("kind add != concat" in d for d in same_graph(a, d))
    e = compile_text("input 9*9*3\nC(4*3*3) as y C(4*3*3, same) add { @y | }\n")
    assert same_graph(a, e)  # input shape, and every shape after it


def test_names_needs_the_same_graph():
    a = compile_text("input 8*8*3\nC(4*3*3)\n")
    b = compile_text("input 8*8*3\nC(5*3*3)\n")
    with pytest.raises(ValueError, match="graphs differ"):
        names(a, b)


def test_printing_resnet152_takes_well_under_a_second():
    model = bare(MODELS["resnet152.cnn"])
    start = time.perf_counter()
    spec_text(model)
    assert time.perf_counter() - start < 2.0  # about 0.1 s on a quiet machine


def test_a_block_is_not_named_after_the_model():
    model = bare(MODELS["resnet18.cnn"]).model_copy(update={"name": "residual"})
    text = round_trip(model)
    assert "block Residual " not in text and "block Residual(" not in text


def test_keras_block_names_name_the_instances():
    """A small ResNet whose layers carry Keras's names (`conv2_block1_1_conv`,
    `conv2_block1_1_add`): each block is an instance named `conv2_block1`."""
    spec = """
        block Basic(ch, s=1) {
            add { C(ch*3*3, s(s), same) B A(relu) C(ch*3*3, same) B | C(ch*1*1, s(s)) B } A(relu)
        }
        input 32*32*3
        C(16*3*3, same) as stem
        Basic(16) as conv2_block1  Basic(16) as conv2_block2
        Basic(32, s=2) as conv3_block1  Basic(32, s=2) as conv3_block2
        GAP Dense(10, softmax) as predictions
    """
    model = bare(compile_text(spec))
    assert "conv2_block1_1_conv" in {n.name for n in model.nodes}
    text = round_trip(model)
    for k in ("conv2_block1", "conv2_block2", "conv3_block1", "conv3_block2"):
        assert f") as {k}\n" in text, text
    assert "Residual(16, 1) as conv2_block1" in text, text
    mapping = names(compile_text(text), model)
    assert mapping["conv3_block2_1_add"].startswith("conv3_block2.")
