"""Generated code as a careful person writes it, and the renderer base every backend
extends (issue 13): block arithmetic written as the spec writes it (`4 * filters`,
not `c1_arg0`), variants named for the argument that differs, only the imports
the code reads, and no keyword at the framework's own default."""

from __future__ import annotations

import ast
import inspect
import re

import pytest

from archc import equiv
from archc.ir.kinds import KINDS
from backends import SOURCES, get
from backends.common import Chain, Fn, Generator, Infix, Render
from tests.generated_models import GENERATED
from tests.helpers import compile_str
from tests.test_specs import ALL_SPECS

# ---- the renderer base -----------------------------------------------------


@pytest.mark.parametrize("backend", SOURCES)
def test_each_backend_extends_the_base_table_with_every_kind(backend):
    gen = get(backend)
    assert isinstance(gen, Generator)
    assert gen.missing_kinds == set()
    assert set(gen.LOWER) == set(KINDS)
    assert gen.LOWER["input"] is Generator.LOWER["input"]  # the base's entry, extended


def test_missing_kinds_names_what_a_backend_lacks(monkeypatch):
    gen = get("keras")
    monkeypatch.delitem(gen.LOWER, "pool")
    assert gen.missing_kinds == {"pool"}


def test_a_kind_cannot_have_two_emitters():
    table: dict = {}
    lowers = Generator.registry(table)
    lowers("conv")(lambda n, r: None)
    with pytest.raises(ValueError, match="two emitters for the kind `conv`"):
        lowers("conv")(lambda n, r: None)


def test_a_backend_lacking_a_hook_fails_when_defined():
    with pytest.raises(TypeError, match="lacks .*unit_source"):

        class Half(Generator):
            NAME, FRAMEWORK, TEMPLATES = "half", "Half", "."
            model_source = training_source = staticmethod(lambda *a: "")

            def defined_names(self, model, units):
                return []


def test_apply_expressions_render_as_written():
    ops, ins = ["self.c1_pad", "self.c1"], ["x", "y"]
    assert Chain().render(ops, ins) == "self.c1(self.c1_pad(x))"
    assert Chain(method=".permute(0, 2, 3, 1)").render(["f"], ins) == "f(x.permute(0, 2, 3, 1))"
    assert Fn("torch.relu").render(["self.c1"], ins) == "torch.relu(self.c1(x))"
    assert (
        Fn("torch.cat", Chain(listed=True), ("dim=1",)).render([], ins)
        == "torch.cat([x, y], dim=1)"
    )
    assert Infix("+").render([], ins) == "x + y"
    assert Fn("torch.relu") == Fn("torch.relu")  # hashable and equal: instances group


# ---- block arithmetic --------------------------------------------------------

WIDEN = """
model widen_net
block Widen(c, s=1) {
    C((2*c)*3*3, s(s), same) B
    C(c*1*1, s1, same, relu)
}
input 13*13*3
Widen(4) Widen(8) Widen(6, s=2)
GAP Dense(5, softmax)
"""


def test_the_block_arithmetic_is_recorded_as_written():
    (d,) = compile_str(WIDEN, name="widen.cnn").block_defs
    assert "2*c" in d.exprs and "(2*c)*3*3" in d.exprs
    assert all(re.search(r"\bc\b", e) for e in d.exprs)


@pytest.mark.parametrize("backend", SOURCES)
def test_a_varying_value_is_written_with_the_blocks_arithmetic(backend):
    source = get(backend).generate(compile_str(WIDEN, name="widen.cnn"))
    assert "2 * c" in source
    assert not re.search(r"_arg\d", source)
    if backend == "keras":
        assert "def widen(x, c, s, *, name):" in source
        assert 'x = widen(x, c=6, s=2, name="widen3")' in source
    else:
        assert "def __init__(self, in_channels, c, s):" in source
        assert "nn.Conv2d(in_channels, 2 * c, 3, stride=s, padding=1)" in source
        assert "nn.BatchNorm2d(2 * c" in source
        assert "nn.Conv2d(2 * c, c, 1)" in source


@pytest.mark.parametrize("direction", ["keras2torch", "torch2keras"])
def test_block_arithmetic_computes_what_the_spec_says(direction):
    ir = compile_str(WIDEN, name="widen.cnn")
    result = equiv.check(ir, dtype="float64", direction=direction, nodes=True)
    assert result.ok and result.first_divergence is None, equiv.report(ir, result)


# ---- variant names -------------------------------------------------------------

VARIANTS = """
model variant_net
block Res(f, s=1, proj=0) {
    add { C(f*3*3, s(s), same) | if proj { C(f*1*1, s(s), same) } }
}
block Stack(ch, n) { C(ch*3*3, same) x(n) }
input 8*8*4
Res(4) Res(8, s=2, proj=1) Res(8) Res(16, s=2, proj=1)
Stack(8, 1) Stack(8, 2) Stack(16, 2)
GAP Dense(3)
"""


@pytest.mark.parametrize("backend", SOURCES)
def test_variants_are_named_for_the_argument_that_differs(backend):
    source = get(backend).generate(compile_str(VARIANTS, name="variants.cnn"))
    defined = re.findall(r"^(?:def|class) (\w+)", source, re.MULTILINE)
    if backend == "keras":
        assert defined[:4] == ["res", "res_proj", "stack_n1", "stack_n2"]
    else:
        assert defined[:4] == ["Res", "ResProj", "StackN1", "StackN2"]
    assert not any(re.search(r"_\d+$", d) for d in defined)
    if backend == "torch":  # its output channels equal its input's, but are `f`
        assert "self.c1 = nn.Conv2d(in_channels, f, 3, padding=1)" in source


def test_variants_no_argument_tells_apart_are_numbered():
    # the same arguments, a different structure: torch's `same` padding is even at
    # 13 and 7 pixels, uneven at 4, which no argument of the spec names
    text = "model odd\nblock Down(c) { C(c*3*3, s2, same) }\ninput 13*13*1\nDown(4) x3\n"
    source = get("torch").generate(compile_str(text, name="odd.cnn"))
    assert re.findall(r"^class (\w+)", source, re.MULTILINE)[:2] == ["Down", "Down_2"]
    # `c` varies within a variant, so it does not name it
    text = (
        "model odd\nblock Q(c, d=1) { if c > 2 { C(c*1*1) } else { C(c*3*3) B } }\n"
        "input 8*8*1\nQ(3) Q(4) Q(2)\nGAP\n"
    )
    source = get("keras").generate(compile_str(text, name="odd.cnn"))
    assert re.findall(r"^def (\w+)", source, re.MULTILINE)[:2] == ["q", "q_2"]
    # where it holds one value in each, it does
    text = text.replace("Q(3) Q(4) Q(2)", "Q(3) Q(2)")
    source = get("keras").generate(compile_str(text, name="odd.cnn"))
    assert re.findall(r"^def (\w+)", source, re.MULTILINE)[:2] == ["q_c3", "q_c2"]


def test_a_word_with_underscores_names_a_variant():
    # PyTorch has one module class per activation, so `act` splits the block into
    # variants; `hard_swish` names its variant as `relu` does, not a number
    text = (
        "model odd\nblock Q(c, act) { C(c*3*3, s1, same) A(act) }\n"
        "input 8*8*1\nQ(2, relu) Q(3, hard_swish) Q(4, relu)\nGAP\n"
    )
    source = get("torch").generate(compile_str(text, name="odd.cnn"))
    assert re.findall(r"^class (\w+)", source, re.MULTILINE)[:2] == ["QActRelu", "QActHardSwish"]
    source = get("keras").generate(compile_str(text, name="odd.cnn"))
    assert re.findall(r"^def (\w+)", source, re.MULTILINE)[:1] == ["q"]  # `act` is its argument


def test_a_value_nothing_names_becomes_a_parameter_named_after_its_slot():
    text = (
        "model odd\nblock Q(c) { if c > 2 { C(c*1*1) } else { C(c*3*3) } }\n"
        "input 8*8*1\nQ(3) Q(2)\nGAP\n"
    )
    source = get("keras").generate(compile_str(text, name="odd.cnn"))
    assert "def q(x, c, c1_arg1, *, name):" in source
    assert 'x = q(x, c=2, c1_arg1=3, name="q2")' in source


def test_a_varying_tuple_is_written_element_by_element():
    # EfficientNet's correct_pad and SE reshape: each element of the tuple is a
    # literal where the instances agree, else the block's own arithmetic
    text = (
        "model pads\nblock Down(k, c) {\n"
        "    ZeroPad(k // 2 - 1, k // 2, k // 2 - 1, k // 2) DW(k*k, s2, valid)\n"
        "    mul { identity | GAP Reshape(1, 1, c) C(c*1*1, sigmoid) }\n}\n"
        "input 32*32*4\nDown(3, 4) Down(5, 4) C(8*1*1) Down(3, 8)\nGAP\n"
    )
    ir = compile_str(text, name="pads.cnn")
    keras_source = get("keras").generate(ir)
    assert "def down(x, k, c, *, name):" in keras_source
    assert "((k // 2 - 1, k // 2), (k // 2 - 1, k // 2))" in keras_source
    assert "layers.Reshape((1, 1, c), " in keras_source
    torch_source = get("torch").generate(ir)
    assert "nn.ZeroPad2d((k // 2 - 1, k // 2, k // 2 - 1, k // 2))" in torch_source
    assert "nn.Unflatten(1, (c, 1, 1))" in torch_source
    for source in (keras_source, torch_source):
        assert not re.search(r"_arg\d", source)
    for direction in ("keras2torch", "torch2keras"):
        result = equiv.check(ir, dtype="float64", direction=direction)
        assert result.ok, equiv.report(ir, result)


def test_a_tuple_with_an_element_nothing_names_stays_a_parameter():
    text = (
        "model pads\nblock Down(c) { if c > 4 { ZeroPad(1, 2, 1, 2) } else { ZeroPad(0, 1, 0, 1) }"
        " }\ninput 8*8*1\nDown(5) Down(6) C(4*1*1) Down(4) Down(3)\nGAP\n"
    )
    source = get("keras").generate(compile_str(text, name="pads.cnn"))
    # the padding follows no parameter (`c > 4` is not arithmetic the generated
    # code may copy): the whole value is one argument named after its slot
    assert "def down(x, zp1_arg0, *, name):" in source
    assert 'x = down(x, zp1_arg0=((1, 2), (1, 2)), name="down1")' in source
    assert 'x = down(x, zp1_arg0=((0, 1), (0, 1)), name="down3")' in source


# ---- the committed modules -------------------------------------------------------

FILES = sorted(GENERATED.glob("*/*.py"))


def test_every_spec_is_generated():
    assert len(FILES) == 2 * len(ALL_SPECS)


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_no_opaque_parameters_numbered_variants_or_unused_imports(path):
    tree = ast.parse(path.read_text())
    names = [
        a.arg
        for f in ast.walk(tree)
        if isinstance(f, ast.FunctionDef)
        for a in f.args.args + f.args.kwonlyargs
    ]
    assert not [n for n in names if re.fullmatch(r".*_arg\d+", n)]
    defined = [d.name for d in tree.body if isinstance(d, (ast.FunctionDef, ast.ClassDef))]
    # a numbered variant (`conv_block_2`); the model's own function keeps the spec's
    # name, which may end in digits (`build_squeezenet1_0`)
    own = f"build_{path.stem}"
    assert not [d for d in defined if re.search(r"_\d+$", d) and d != own]
    imported = [
        a.asname or a.name
        for s in tree.body
        if isinstance(s, (ast.Import, ast.ImportFrom))
        for a in s.names
    ]
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
    assert [i for i in imported if i not in used] == []


def _framework():
    import keras
    import torch
    from keras import layers
    from torch import nn

    return {"layers": layers, "nn": nn, "keras": keras, "torch": torch}


def _resolve(func: ast.AST, ns: dict):
    parts = []
    while isinstance(func, ast.Attribute):
        parts.append(func.attr)
        func = func.value
    obj = ns.get(func.id) if isinstance(func, ast.Name) else None
    for p in reversed(parts):
        obj = getattr(obj, p, None)
    return obj


def _equal(value, default) -> bool:
    # Keras takes an int for a square pair: (1, 1) is written 1
    if isinstance(default, tuple) and isinstance(value, int) and len(set(default)) == 1:
        return value == default[0]
    return value == default and type(value) is type(default)


@pytest.mark.parametrize("backend", SOURCES)
def test_no_layer_keyword_is_written_at_its_default(backend):
    """Every layer keyword in the committed modules differs from the framework's
    own default (read from its signature); a pooling stride is never the pool size
    (Keras's and torch's default)."""
    ns = _framework()
    written = 0
    for path in GENERATED.glob(f"{backend}/*.py"):
        for call in ast.walk(ast.parse(path.read_text())):
            if (
                not isinstance(call, ast.Call)
                or not isinstance(call.func, ast.Attribute)
                or ast.unparse(call.func).split(".")[0] not in ("layers", "nn")
            ):
                continue
            cls = _resolve(call.func, ns)
            assert inspect.isclass(cls), ast.unparse(call.func)
            params = inspect.signature(cls).parameters
            for kw in call.keywords:
                if kw.arg not in params or not isinstance(kw.value, (ast.Constant, ast.Tuple)):
                    continue
                value = ast.literal_eval(kw.value)
                written += 1
                where = f"{path.name}:{call.lineno} {ast.unparse(call)}"
                assert not _equal(value, params[kw.arg].default), where
                if kw.arg in ("strides", "stride"):
                    assert ast.unparse(kw.value) != ast.unparse(call.args[0]), where
    assert written > 100


@pytest.mark.parametrize("backend", SOURCES)
def test_the_defaults_the_emitters_state_are_the_frameworks(backend):
    """An emitter leaves out a keyword at the default it states: each stated
    default must be the framework's (a pooling stride's is None: the pool size)."""
    from archc.pipeline import compile_spec
    from backends.common import ArgDefault
    from tests.helpers import SPECS

    ns = _framework()
    gen = get(backend)
    seen = set()
    models = [compile_spec(str(SPECS / s)) for s in ALL_SPECS]
    for model in models + [compile_str(WIDEN), compile_str(VARIANTS)]:
        r = Render(model)
        for n in model.nodes:
            if n.kind == "input":
                continue
            for op in gen.lower(n, r).ops:
                cls = _resolve(ast.parse(op.func, mode="eval").body, ns)
                if cls is None:
                    assert op.func in gen.HELPERS  # archc's own helper layers
                    continue
                params = inspect.signature(cls).parameters
                for key, default in op.defaults.items():
                    seen.add((op.func, key))
                    real = params[key].default
                    if isinstance(default, ArgDefault):
                        assert real is None, (op.func, key)
                    else:
                        assert _equal(default, real) or default == real, (op.func, key, real)
    assert len(seen) > 15
