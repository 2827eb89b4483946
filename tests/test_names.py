"""Issue 11, item 2: every name a spec declares reaches generated code in some
form (a function, a class, a parameter, a variable, an attribute); each is
checked, where it is declared, against what the backend's module already uses."""

from __future__ import annotations

import ast
import importlib.util
import pathlib

import pytest

from archc.diagnostics import SpecError
from archc.passes.expand import identifier_problem
from archc.pipeline import compile_spec
from backends import get
from backends.keras import names as keras_names
from backends.pytorch import names as torch_names
from tests.helpers import compile_str, errors

ROOT = pathlib.Path(__file__).resolve().parents[1]
REPROS = ROOT / "tests" / "repros"
HAS_TORCH = importlib.util.find_spec("torch") is not None
HAS_KERAS = importlib.util.find_spec("keras") is not None

# repro -> (line, column, the name refused, words of the hint)
REFUSED = {
    "alias_double.cnn": (5, 29, "double", "self.double"),
    "alias_forward.cnn": (5, 29, "forward", "self.forward"),
    "alias_parameters.cnn": (5, 29, "parameters", "self.parameters"),
    "alias_state_dict.cnn": (5, 29, "state_dict", "self.state_dict"),
    "alias_to.cnn": (5, 29, "to", "self.to"),
    "alias_training.cnn": (5, 29, "training", "self.training"),
    "block_named_keras.cnn": (4, 7, "Keras", "the Keras function `keras`"),
    "block_named_layers.cnn": (4, 7, "Layers", "shadow `from keras import layers`"),
    "block_named_ops.cnn": (5, 7, "Ops", "the Keras function `ops`"),
    "model_named_f.cnn": (3, 7, "f", "the PyTorch class `F`"),
}


@pytest.mark.parametrize("repro", sorted(REFUSED))
def test_repro_is_refused_where_the_name_is_declared(repro):
    line, col, name, hint = REFUSED[repro]
    with pytest.raises(SpecError) as e:
        compile_spec(str(REPROS / repro))
    (d,) = e.value.diagnostics
    assert (d.code, d.span.line, d.span.col) == ("E202", line, col)
    assert d.span.end_col == col + len(name) and f"`{name}`" in d.message
    assert hint in d.hint and "rename" in d.hint


MEMBERS = [
    "forward",
    "training",
    "to",
    "double",
    "state_dict",
    "parameters",
    "children",
    "apply",
    "cuda",
    "half",
    "cpu",
    "zero_grad",
    "modules",
    "buffers",
    "extra_repr",
    "requires_grad_",
    "input_shape",
    "_modules",
]


@pytest.mark.parametrize("alias", MEMBERS)
def test_every_nn_module_member_is_refused_as_a_layer_name(alias):
    (d,) = errors(f"input 8*8*3\nC(4*3*3) as {alias}\nGAP Dense(2)\n")
    assert d.code == "E202" and d.span.col == 13 and "PyTorch submodule" in d.hint


@pytest.mark.parametrize(
    "text, line, col, words",
    [
        # derived module-level names: keywords and builtins, helpers, the model's functions
        ("block Class(c) { C(c*1*1) }\ninput 8*8*3\nClass(2)\n", 1, 7, "a Python keyword"),
        ("block Float(c) { C(c*1*1) }\ninput 8*8*3\nFloat(2)\n", 1, 7, "builtin"),
        ("model true\ninput 8*8*3\nC(2*1*1)\n", 1, 7, "the PyTorch class `True`"),
        ("block SamePool2d(c) { C(c*1*1) }\ninput 8*8*3\nSamePool2d(2)\n", 1, 7, "helper"),
        ("block _Net(c) { C(c*1*1) }\ninput 8*8*3\n_Net(2)\n", 1, 7, "`_` attributes"),
        ("input 8*8*3\nC(2*1*1) as NegInfPadding2D\n", 2, 13, "helper layer"),
        # parameters: the module's own names
        (
            "block Foo(learning_rate) { C(learning_rate*1*1) }\ninput 8*8*3\nFoo(2)\n",
            1,
            11,
            "learning-rate function",
        ),
        (
            "block Foo(SamePool2d) { C(SamePool2d*1*1) }\ninput 8*8*3\nFoo(2)\n",
            1,
            11,
            "helper module",
        ),
    ],
)
def test_derived_names_are_refused(text, line, col, words):
    (d,) = errors(text)
    assert (d.code, d.span.line, d.span.col) == ("E202", line, col)
    assert words in d.hint


@pytest.mark.parametrize(
    "text, line, col, words",
    [
        # a block and the model
        ("model m\nblock M(c) { C(c*1*1) }\ninput 8*8*3\nM(2)\n", 2, 7, "the PyTorch class `M`"),
        (
            "model net\nblock BuildNet(c) { C(c*1*1) }\ninput 8*8*3\nBuildNet(2)\n",
            2,
            7,
            "the Keras function `build_net`",
        ),
        # two blocks
        (
            "block ConvBn(c) { C(c*1*1) }\nblock conv_bn(c) { C(c*1*1) }\n"
            + "input 8*8*3\nConvBn(2) conv_bn(3)\n",
            2,
            7,
            "`conv_bn`",
        ),
        # a parameter and a block it calls
        (
            "block ConvBn(c) { C(c*1*1) B }\nblock Stage(conv_bn) { ConvBn(conv_bn) }\n"
            + "input 8*8*3\nStage(2)\n",
            2,
            13,
            "the Keras function `conv_bn`",
        ),
        # a layer and a block, a layer and its block's parameter
        (
            "block ConvBn(c) { C(c*1*1) B }\ninput 8*8*3\nC(2*1*1) as conv_bn ConvBn(2)\n",
            3,
            13,
            "the Keras function `conv_bn`",
        ),
        (
            "block Res(ch) { add { C(ch*1*1) as ch | identity } }\ninput 8*8*3\nRes(3)\n",
            1,
            36,
            "the Keras function parameter `ch`",
        ),
    ],
)
def test_names_that_meet_in_one_module_are_refused(text, line, col, words):
    (d,) = errors(text)
    assert (d.code, d.span.line, d.span.col) == ("E211", line, col)
    assert words in d.hint


def test_a_name_equal_to_a_layers_padding_helper_is_refused():
    # PyTorch builds c1's uneven `same` padding as `self.c1_pad`
    (d,) = errors("input 8*8*3\nC(4*3*3, s2, same) C(4*1*1) as c1_pad GAP Dense(2)\n")
    assert (d.code, d.span.line, d.span.col) == ("E211", 2, 32)
    assert "self.c1_pad" in d.hint


def test_a_clash_with_an_unused_block_is_not_a_clash():
    compile_str("block M(c) { C(c*1*1) }\nmodel m\ninput 8*8*3\nC(2*1*1)\n")


# -- the static reserved sets cover what the frameworks and the modules define


def _module_names(source: str) -> set[str]:
    """Names a module binds at its top level: imports, functions, classes."""
    out = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.Import):
            out |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            out |= {a.asname or a.name for a in node.names}
        elif isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            out.add(node.name)
    return out


# a spec that needs every helper of both backends and a training section
EVERYTHING = """model everything
input 9*9*3
C(4*3*3, s2, p1) LRN Shuffle(2) P(max, 3, 2, p1) P(avg, 2, 2, same) GAP Dense(2)
train {
    optimizer: sgd(momentum=0.9)
    lr: 0.1
    schedule: cosine
    epochs: 2
}
"""


@pytest.mark.parametrize("backend, names", [("keras", keras_names), ("torch", torch_names)])
def test_reserved_module_names_cover_the_generated_module(backend, names):
    ir = compile_str(EVERYTHING)
    source = get(backend).generate(ir)
    derived = {t for _, t, _ in names.forms("model", ir.name)}
    own = _module_names(source) - derived
    assert own <= set(names.RESERVED["module"]), own - set(names.RESERVED["module"])
    assert own <= set(names.RESERVED["parameter"]) and own <= set(names.RESERVED["variable"])


@pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed")
def test_reserved_attributes_cover_nn_module():
    from torch import nn

    found = set(dir(nn.Module)) | set(dir(nn.Module())) | set(vars(nn.Module()))
    found = {n for n in found if not (n.startswith("__") and n.endswith("__"))}
    reserved = set(torch_names.RESERVED["attribute"])
    uncovered = {
        n
        for n in found - reserved
        if not any(n.startswith(p) for p in torch_names.PREFIXES["attribute"])
    }
    assert not uncovered, f"nn.Module members archc would accept as layer names: {uncovered}"
    for n in sorted(found):
        if n.isidentifier() and not n.startswith("__"):
            assert identifier_problem(n, "node") is not None, n


@pytest.mark.skipif(not HAS_KERAS, reason="keras is not installed")
def test_keras_model_and_layer_members_are_harmless_layer_names():
    """Keras layer names are strings of a functional model, never attributes: every
    member of keras.Model and keras.layers.Layer that archc accepts as a name builds."""
    import keras
    import numpy as np

    from backends.runtime import build_keras

    members = sorted(
        {
            n
            for n in set(dir(keras.Model)) | set(dir(keras.layers.Layer))
            if n.isidentifier() and identifier_problem(n, "node") is None
        }
    )
    assert {"call", "build", "weights", "summary", "fit"} <= set(members)
    body = " ".join(f"D(0) as {n}" for n in members)
    ir = compile_str(f"model members\ninput 4\n{body}\nDense(2)\n")
    model = build_keras(ir)
    assert {n for n in members} <= {layer.name for layer in model.layers}
    y = model(np.ones((1, 4), dtype="float32"))
    assert tuple(y.shape) == (1, 2)


# -- unusual but valid names, in every form, build and run in both frameworks

UNUSUAL = """model keras_torch
block Torch_Layer(layers_n, nn_w=2, Ch=3) {
    C(layers_n*3*3, s1, same) B as module A(relu) as call
    add { C(Ch*1*1) as self_ | C(Ch*1*1) as weights }
}
block Conv2d(filters) { C(filters*1*1) as Conv2d_ Torch_Layer(filters, Ch=filters) }
input 8*8*3
Torch_Layer(4) as build Conv2d(5) as fit Torch_Layer(6, Ch=4) as trainable GAP
Dense(3) as summary
"""


@pytest.mark.skipif(not (HAS_TORCH and HAS_KERAS), reason="torch and keras are needed")
def test_unusual_valid_names_build_and_run_in_both_frameworks():
    import numpy as np
    import torch

    from backends.runtime import build_keras, build_torch

    ir = compile_str(UNUSUAL)
    kmodel = build_keras(ir)
    y = kmodel(np.ones((2, 8, 8, 3), dtype="float32"))
    assert tuple(y.shape) == (2, 3)
    assert sum(int(np.prod(w.shape)) for w in kmodel.weights) == ir.params
    tmodel = build_torch(ir)
    assert sum(p.numel() for p in tmodel.parameters()) == ir.trainable
    out = tmodel(torch.ones(2, 3, 8, 8))
    assert tuple(out.shape) == (2, 3)
    assert {"build", "fit", "trainable", "summary"} <= {n for n, _ in tmodel.named_children()}
    tmodel.to(torch.float64).eval()  # nn.Module's own members still work
    assert all(p.dtype == torch.float64 for p in tmodel.parameters())
