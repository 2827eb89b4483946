"""The ONNX backend (issue 17): `archc build --backend onnx` writes a checked ONNX model
straight from the IR, and onnxruntime computes what the PyTorch and Keras builds compute.

- every IR kind has an ONNX lowering (a kind without one fails here: add it);
- the checker (full_check) and strict shape inference pass, and the inferred shape of
  every node equals the IR's;
- onnxruntime agrees with the PyTorch build (float64 where its CPU provider has float64
  kernels, else float32 at 1e-5 of the output scale), node by node, on small specs
  covering every kind and option, and on every spec in specs/;
- trained weights from `archc train` give the top-1 `archc evaluate` gives;
- node names are the IR's, names and file names are data, output is byte-identical.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys

import pytest

from archc.cli import main
from archc.ir.kinds import KINDS
from archc.pipeline import compile_spec
from tests.helpers import HAS_KERAS, HAS_TORCH, SPECS, compile_str
from tests.test_specs import ALL_SPECS

HAS_ONNX = all(importlib.util.find_spec(m) for m in ("onnx", "onnxruntime"))
pytestmark = pytest.mark.skipif(
    not (HAS_ONNX and HAS_TORCH), reason="needs onnx, onnxruntime and torch"
)
ROOT = SPECS.parent
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}


def _archc(*args, cwd=ROOT, env=ENV):
    return subprocess.run(
        [sys.executable, "-m", "archc", *args], capture_output=True, text=True, cwd=cwd, env=env
    )


def _gen():
    from backends.onnx.generator import GENERATOR

    return GENERATOR


def _check(ir, nodes=True, against_keras=False, **kw):
    """check_onnx's results; fails the test with the report when one fails."""
    from archc import equiv

    results = equiv.check_onnx(ir, nodes=nodes, against_keras=against_keras, **kw)
    text = "\n".join(equiv.report(ir, r) for r in results)
    assert all(r.ok for r in results), text
    return results


# ---- coverage: every kind has a lowering ---------------------------------------------


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_kind_has_an_onnx_lowering(kind):
    """A kind added to the IR without an ONNX emitter fails here: add one to
    backends/onnx/generator.py (`@lowers("kind")`) and a case to KIND_SPECS below."""
    assert kind in _gen().LOWER, f"no ONNX lowering for `{kind}`"
    assert kind in COVERED, f"no spec of KIND_SPECS in tests/test_onnx.py uses `{kind}`"


def test_a_kind_without_lowering_is_a_clear_error(monkeypatch):
    from backends.common import BackendError

    monkeypatch.delitem(_gen().LOWER, "zeropad")
    ir = compile_str("input 8*8*3\nC(4*3*3)\nZeroPad(1)\n", name="pad_net.cnn")
    with pytest.raises(
        BackendError, match=r"cannot express `zp1` of kind `zeropad` \(.*pad_net.cnn:3\)"
    ):
        _gen().generate(ir)


# ---- every kind and option, against the PyTorch build node by node ---------------------

KIND_SPECS = {
    "conv_padding": """model conv_padding
input 27*25*3
C(4*3*3, s2, same) C(5*4*4, s2, same, relu) C(6*3*3, s1, same, sigmoid)
C(6*2*3, s(2,1), valid, nobias, linear) C(4*3*3, p(1,0), elu) C(4*3*3, dilation: 2, same, selu)
C(4*1*1, s1, same, relu6) C(3*2*2, dilation: [2, 1], valid, softplus)
""",
    "pooling": """model pooling
input 29*27*3
C(4*3*3, s1, same, hard_sigmoid) P(max, 3, 2, same) P(avg, 3, 2, same) P(avg, 2, 1, same)
P(max, 3, 2, p1) P(avg, 3, 1, p1) P(max, 2, 2) P(avg, 2, 1)
""",
    "activations": """model activations
input 7*7*3
C(6*3*3, s1, same) B A(relu) A(leaky_relu) A(leaky_relu, 0.1) A(elu, 0.5) A(prelu) A(gelu)
A(silu) A(softmax) A(linear) A(relu6) A(selu) A(hard_sigmoid) A(softplus) A(sigmoid) A(tanh)
LRN LRN(3, alpha: 0.001, beta: 0.75, bias_k: 1) B(eps: 1.001e-5, momentum: 0.9)
D(0.3) ZeroPad(0, 1, 2, 1) ZeroPad(1) GMP Dense(5, gelu) B A(prelu) Dense(4, silu) D(0.1)
Dense(3, softmax)
""",
    "merges": """model merges
input 9*9*4
C(8*3*3, s1, same)
add { C(8*3*3, s1, same) | C(8*1*1, s1, same, relu) | A(relu) }
concat { C(3*1*1, s2, same) | P(max, 3, 2, same) | C(2*3*3, s2, same, nobias) }
add { C(13*1*1) | A(tanh) }
GAP
""",
    "vectors": """model vectors
input 5*6*2
C(3*3*3, s2, same) Flatten B D(0.5) Dense(8, relu) concat { Dense(4) | Dense(3, tanh) }
B A(leaky_relu) Dense(6, nobias, tanh) add { A(elu) | A(prelu) } Flatten Dense(2)
""",
    "grouped_depthwise_separable_transposed": """model grouped_depthwise_separable_transposed
input 29*27*4
C(8*3*3, s1, same, groups: 2) C(8*3*3, s2, same, groups: 4, hard_swish) DW(3*3, s1, same)
DW(3*3, s2, same, multiplier: 2, mish) DW(kernel: 3*3, padding: p1, nobias, dilation: 2)
SC(6*3*3, s1, same) SC(6*3*3, s2, same, multiplier: 2, relu) SC(5*3*3, valid, nobias)
SC(5*3*3, s1, same, dilation: 2)
CT(4*3*3, s2, same) CT(4*4*4, s2, valid, relu) CT(4*2*2, s2, same)
CT(3*3*3, s2, p1, output_padding: 1)
CT(3*4*4, s2, same, output_padding: 1) CT(3*3*3, s1, same, nobias)
""",
    "norms_scales_preprocessing": """model norms_scales_preprocessing
input 9*7*6
Rescaling(1/255) Rescaling(scale: 1/127.5, offset: -1) Normalization
Normalization(mean: [0.485, 0.456, 0.406, 0.1, 0.2, 0.3], variance: [0.052, 0.050, 0.051, 0.5, 1, 2])
Normalization(mean: [0.5], variance: [0.25])
B(scale: no) LN LN(epsilon: 1e-6) GN(3) GN(2, eps: 1e-5) Scale(1e-6)
A(gelu_tanh) A(hard_swish) A(mish)
DP(0.2) C(6*3*3, s2, same) GMP(keepdims) Reshape(6) LN Scale(0.5) Rescaling(2) Normalization
B(scale: no) Reshape(1, 2, 3)
""",
    "normalization_std_floor": """model normalization_std_floor
input 4*3*3
Normalization(mean: [0.5, 0.1, 0], variance: [0, 1e-20, 4]) Flatten Dense(4)
""",
    "ceil_pools_resampling": """model ceil_pools_resampling
input 30*29*3
C(4*3*3, s1, same) P(max, 3, 2, ceil) P(avg, 3, 2, ceil) P(max, 2, 2, p1, ceil) P(avg, 3, 2, p1, ceil)
Up(3) Up([2, 3], bilinear) Resize(7, 5, nearest) Resize(11, 13) Resize(3, 2)
Resize(5, 9, nearest)
""",
    "crops_shuffles_splits_mul_reshape": """model crops_shuffles_splits_mul_reshape
input 10*9*8
C(8*3*3, s1, same) Crop(1) Crop(1, 0, 2, 1) Shuffle(2) Shuffle(4)
concat { Split(2, 0) C(4*1*1) | Split(2, 1) | Split(4, 3) }
mul { C(10*1*1) | GAP(keepdims) C(10*1*1, sigmoid) | A(tanh) }
mul { A(relu) | GAP Reshape(1, 1, 10) }
mul { GMP(keepdims) A(sigmoid) | A(tanh) }
Reshape(2, 20, 7) Reshape(280) Reshape(4, 7, 10) Flatten
""",
}
COVERED = {n.kind for text in KIND_SPECS.values() for n in compile_str(text).nodes}


@pytest.mark.parametrize("name", sorted(KIND_SPECS))
def test_each_kind_agrees_with_the_pytorch_build_node_by_node(name):
    from archc import equiv

    ir = compile_str(KIND_SPECS[name], name=f"{name}.cnn")
    (r,) = _check(ir, nodes=True, batch=3, seed=7)
    compared = {n.name for n in r.nodes}
    assert compared == {n.name for n in ir.nodes if n.kind not in equiv.NO_MODULE}
    assert r.first_divergence is None and r.diff <= r.allowed


@pytest.mark.skipif(not HAS_KERAS, reason="needs keras")
@pytest.mark.parametrize(
    "name",
    [
        "merges",
        "grouped_depthwise_separable_transposed",
        "norms_scales_preprocessing",
        "normalization_std_floor",
        "ceil_pools_resampling",
        "crops_shuffles_splits_mul_reshape",
    ],
)
def test_onnxruntime_agrees_with_the_keras_build_too(name):
    ir = compile_str(KIND_SPECS[name], name=f"{name}.cnn")
    _, keras_result = _check(ir, nodes=False, against_keras=True)
    assert keras_result.direction == "onnxruntime against Keras" and keras_result.ok


def test_a_dense_network_runs_in_float64_to_1e_9():
    """onnxruntime's CPU provider has float64 Gemm, Relu and Softmax: compared in float64."""
    ir = compile_str("model fc64\ninput 6*6*2\nFlatten Dense(16, relu) B Dense(5, softmax)\n")
    (r,) = _check(ir, nodes=True)
    assert r.dtype == "float64" and r.tolerance == 1e-9 and r.diff <= 1e-9 * max(1, r.scale)


def test_a_conv_network_falls_back_to_float32_at_1e_5():
    """No float64 Conv kernel in onnxruntime's CPU provider: float32, 1e-5 of the scale."""
    from archc import equiv

    ir = compile_str(KIND_SPECS["pooling"], name="pooling.cnn")
    (r,) = _check(ir, nodes=False)
    assert r.dtype == "float32" and r.allowed == pytest.approx(1e-5 * r.scale)
    proto = _gen().build(ir)
    assert not equiv.runs_in_float64(proto)


def test_a_wrong_lowering_fails_the_check(monkeypatch):
    """The comparison can fail: a max pool lowered as an average pool is caught at its node."""
    from backends.onnx import generator as G

    ir = compile_str("model wrong\ninput 8*8*3\nC(4*3*3, s1, same) P(max, 2, 2) Flatten Dense(3)\n")
    original = G.EMITTERS["pool"]

    def avg_instead(n, g):
        original(n.model_copy(update={"op": "avg"}), g)

    monkeypatch.setitem(G.OnnxGenerator.LOWER, "pool", avg_instead)
    from archc import equiv

    (r,) = equiv.check_onnx(ir, nodes=True, against_keras=False)
    assert not r.ok and r.first_divergence.name == "p1"


# ---- the model: checked, shaped, named, described ---------------------------------------


def _reinferred_shapes(proto):
    """Shape inference run afresh on the model without its stored shapes, but for
    the ones the model states itself: Resize's output, whose batch dimension
    inference leaves unknown (`unk__0`) however `sizes` names the axes."""
    import onnx

    from backends.onnx.generator import inferred_shapes

    bare = onnx.ModelProto()
    bare.CopyFrom(proto)
    resized = {n.output[0] for n in bare.graph.node if n.op_type == "Resize"}
    kept = [v for v in bare.graph.value_info if v.name in resized]
    del bare.graph.value_info[:]
    bare.graph.value_info.extend(kept)
    onnx.checker.check_model(bare, full_check=True)
    return inferred_shapes(onnx.shape_inference.infer_shapes(bare, strict_mode=True))


@pytest.mark.parametrize("name", sorted(KIND_SPECS))
def test_inferred_shapes_equal_the_irs_for_every_node(name):
    ir = compile_str(KIND_SPECS[name], name=f"{name}.cnn")
    shapes = _reinferred_shapes(_gen().build(ir))
    for n in ir.nodes:
        s = n.out_shape
        want = ["N", s[2], s[0], s[1]] if len(s) == 3 else ["N", *s]
        assert shapes[n.name] == want, n.name


def test_names_inputs_outputs_and_metadata():
    import onnx

    from archc import __version__

    ir = compile_spec(str(SPECS / "digits_cnn.cnn"))
    proto = onnx.load_from_string(_gen().generate(ir))
    g = proto.graph
    assert [n.name for n in g.node if "/" not in n.name] == [n.name for n in ir.nodes[1:]]
    assert [
        (v.name, [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim])
        for v in g.input
    ] == [("input", ["N", 1, 8, 8])]
    assert [
        (v.name, [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim])
        for v in g.output
    ] == [("f2", ["N", 10])]
    assert {t.name for t in g.initializer} == {
        f"{n.name}/{w.role}" for n in ir.nodes for w in n.weights(list(n.in_shapes))
    }
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["archc.version"] == __version__ and proto.producer_name == "archc"
    assert meta["archc.spec"] == "specs/digits_cnn.cnn" and meta["archc.model"] == "digits_cnn"
    assert meta["archc.weights"].startswith("random (archc.equiv.randomize, seed 0)")
    assert meta["archc.dtype"] == "float32"
    assert proto.opset_import[0].version == 21 and g.name == "digits_cnn"
    # Keras's semantics, spelled out
    by_name = {n.name: n for n in g.node}
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in by_name["b1"].attribute}
    assert attrs["epsilon"] == pytest.approx(1e-3)
    assert by_name["flatten/nhwc"].op_type == "Transpose" and by_name["flatten"].input == [
        "flatten/nhwc"
    ]


def test_asymmetric_same_padding_is_explicit_pads():
    import onnx

    ir = compile_str(
        "model pads\ninput 8*8*3\nC(4*3*3, s2, same) P(avg, 2, 2, same) P(max, 3, 2, same)\n"
    )
    g = onnx.load_from_string(_gen().generate(ir)).graph
    attrs = {
        n.name: {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute} for n in g.node
    }
    assert attrs["c1"]["pads"] == [0, 0, 1, 1]  # Keras: the odd zero at the bottom/right
    assert attrs["p1"]["pads"] == [0, 0, 0, 0] and attrs["p1"]["count_include_pad"] == 0
    assert attrs["p2"]["pads"] == [0, 0, 1, 1]


def test_float64_and_opsets():
    import onnx

    ir = compile_str(KIND_SPECS["activations"], name="activations.cnn")
    proto = onnx.load_from_string(_gen().generate(ir, dtype="float64", opset=13))
    assert proto.opset_import[0].version == 13 and proto.ir_version == 7
    types = {t.data_type for t in proto.graph.initializer}
    assert types == {onnx.TensorProto.DOUBLE, onnx.TensorProto.INT64}  # INT64: Pad's pads
    ops13 = {n.op_type for n in proto.graph.node}
    assert "Gelu" not in ops13 and "Erf" in ops13  # Gelu is an operator from opset 20
    assert "Gelu" in {n.op_type for n in _gen().build(ir, opset=20).graph.node}
    _check(ir, nodes=True, opset=13)


@pytest.mark.parametrize("opset", [13, 17])
def test_newer_operators_are_written_out_below_their_opset(opset):
    """LayerNormalization (17), HardSwish (14), Mish (18) and Gelu's tanh form (20)
    are written with older operators below their opset, and still agree."""
    ir = compile_str(KIND_SPECS["norms_scales_preprocessing"], name="norms.cnn")
    ops = {n.op_type for n in _gen().build(ir, opset=opset).graph.node}
    assert "Mish" not in ops and "Gelu" not in ops and "Tanh" in ops
    assert ("LayerNormalization" in ops) == (opset >= 17) and ("HardSwish" in ops) == (opset >= 14)
    newest = {n.op_type for n in _gen().build(ir).graph.node}
    assert {"LayerNormalization", "HardSwish", "Mish", "Gelu"} <= newest
    _check(ir, nodes=True, opset=opset, batch=3)


def test_resize_below_opset_18_is_a_clear_error():
    from backends.common import BackendError

    ir = compile_str("input 4*4*3\nUp(2)\n", name="up.cnn")
    with pytest.raises(BackendError, match=r"`up1` is a Resize of two axes.*opset 17.*up.cnn:2"):
        _gen().generate(ir, opset=17)


def test_ceil_pooling_is_end_padding_pytorch_s_rule():
    """PyTorch drops a ceil_mode window that would start in the right padding (ONNX's
    ceil_mode keeps it): the end padding gives PyTorch's length, and an average
    over an overhanging window counts the explicit zeros, not the overhang."""
    import onnx

    ir = compile_str(
        "input 3*5*2\nP(max, 2, 2, p1, ceil) P(avg, 2, 2, valid, ceil) Flatten Dense(2)\n",
        name="ceil.cnn",
    )
    assert ir.nodes[1].out_shape == (2, 3, 2)  # height: the third window is dropped
    g = onnx.load_from_string(_gen().generate(ir)).graph
    attrs = {
        n.name: {a.name: onnx.helper.get_attribute_value(a) for a in n.attribute} for n in g.node
    }
    assert attrs["p1"]["pads"] == [1, 1, 1, 1] and "ceil_mode" not in attrs["p1"]
    ir2 = compile_str("input 8*8*2\nP(avg, 3, 2, p1, ceil) Flatten Dense(2)\n", name="ceil2.cnn")
    assert ir2.nodes[1].out_shape == (5, 5, 2)  # the last window overhangs by one
    g2 = onnx.load_from_string(_gen().generate(ir2)).graph
    by = {n.name: n for n in g2.node}
    assert by["p1/padded"].op_type == "Pad" and by["p1"].input == ["p1/padded"]
    pool = {a.name: onnx.helper.get_attribute_value(a) for a in by["p1"].attribute}
    assert pool["pads"] == [0, 0, 1, 1] and pool["count_include_pad"] == 0
    _check(ir, nodes=True, batch=3)
    _check(ir2, nodes=True, batch=3)


@pytest.mark.parametrize("opset", [12, 10_000])
def test_an_opset_outside_the_range_is_refused(opset):
    from backends.common import BackendError

    with pytest.raises(BackendError, match=f"opset {opset} is outside"):
        _gen().generate(compile_str("input 4\nDense(2)\n"), opset=opset)


# ---- names are data --------------------------------------------------------------------

HOSTILE = """model N
block Relu(Gemm=2) { C(Gemm*3*3, s1, same) as kernel B as Sum A(relu) as output }
input 6*6*3
Relu(4) as Gemm Relu(3) as weights C(2*1*1) as input_ D(0) as N_ Flatten as Transpose
add { Dense(3) as nhwc | Dense(3) as Identity } Dense(2) as graph
"""


def test_hostile_names_are_data():
    """Names the ONNX graph uses itself (operator names, the batch dimension `N`,
    `output`, `kernel`) are only strings: the graph checks and computes the same."""
    import onnx

    ir = compile_str(HOSTILE, name='we"ird ü; $(x) <b>.cnn')
    proto = onnx.load_from_string(_gen().generate(ir))
    assert {n.name for n in ir.nodes[1:]} <= {n.name for n in proto.graph.node}
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["archc.spec"] == 'specs/we"ird ü; $(x) <b>.cnn' and proto.graph.name == "N"
    _check(ir, nodes=True)


def test_a_repeated_onnx_name_is_refused():
    from backends.common import BackendError
    from backends.onnx.generator import Graph

    g = Graph(compile_str("input 4\nDense(2)\n"), "float32", 21, {})
    g.op("Relu", ["x"], "y", "n1")
    with pytest.raises(BackendError, match="two ONNX nodes would both be named `n1`"):
        g.op("Relu", ["x"], "z", "n1")
    with pytest.raises(BackendError, match="two ONNX values would both be named `y`"):
        g.op("Relu", ["x"], "y", "n2")


# ---- archc build --backend onnx -----------------------------------------------------------


def test_build_writes_byte_identical_models_whatever_hash_seed_and_folder(tmp_path):
    specs = ["course_inception10.cnn", "resnet18.cnn"]
    (tmp_path / "elsewhere").mkdir()
    a = _archc(
        "build",
        *[str(SPECS / s) for s in specs],
        "--backend",
        "onnx",
        "-o",
        str(tmp_path / "a"),
        env={**ENV, "PYTHONHASHSEED": "1"},
    )
    b = _archc(
        "build",
        *[os.path.relpath(SPECS / s, tmp_path / "elsewhere") for s in specs],
        "--backend",
        "onnx",
        "-o",
        str(tmp_path / "b"),
        cwd=tmp_path / "elsewhere",
        env={**ENV, "PYTHONHASHSEED": "4242"},
    )
    assert a.returncode == b.returncode == 0, a.stderr + b.stderr
    assert a.stdout.splitlines()[0] == (
        f"wrote {tmp_path / 'a' / 'inception10.onnx'}  "
        "(input `input` N x 3 x 32 x 32 -> output `f1` N x 10)"
    )
    for name in ("inception10.onnx", "resnet18.onnx"):
        da = hashlib.sha256((tmp_path / "a" / name).read_bytes()).hexdigest()
        assert da == hashlib.sha256((tmp_path / "b" / name).read_bytes()).hexdigest()
        assert str(tmp_path).encode() not in (tmp_path / "a" / name).read_bytes()
    r = _archc(
        "build",
        *[str(SPECS / s) for s in specs],
        "--backend",
        "onnx",
        "-o",
        str(tmp_path / "a"),
        "--check",
    )
    assert r.returncode == 0 and r.stdout == "up to date: 2 generated files\n", r.stderr


def test_build_options_belong_to_the_onnx_backend(tmp_path, capsys):
    spec = str(SPECS / "mnist_fc.cnn")
    for option in (["--opset", "17"], ["--dtype", "float64"], ["--weights", "w.npz"]):
        assert main(["build", spec, *option, "-o", str(tmp_path)]) == 2
        assert f"--{option[0][2:]} applies to the onnx backend" in capsys.readouterr().err
    assert (
        main(
            [
                "build",
                spec,
                "--backend",
                "onnx",
                "--opset",
                "17",
                "--dtype",
                "float64",
                "-o",
                str(tmp_path),
            ]
        )
        == 0
    )
    import onnx

    proto = onnx.load(str(tmp_path / "mnist_fc.onnx"))
    assert proto.opset_import[0].version == 17
    assert proto.graph.initializer[0].data_type == onnx.TensorProto.DOUBLE
    # a file archc did not write is never overwritten
    (tmp_path / "mnist_fc.onnx").write_bytes(b"\x08\x07\x12\x04mine")
    capsys.readouterr()
    assert main(["build", spec, "--backend", "onnx", "-o", str(tmp_path)]) == 1
    assert "was not written by archc; not overwriting it" in capsys.readouterr().err


def test_weights_that_do_not_fit_are_a_clear_error(tmp_path, capsys):
    import numpy as np

    from backends.transfer import save_weights

    spec = str(SPECS / "mnist_fc.cnn")
    bad = tmp_path / "bad.npz"
    save_weights(str(bad), {"f1/kernel": np.zeros((784, 3))})
    assert (
        main(["build", spec, "--backend", "onnx", "--weights", str(bad), "-o", str(tmp_path)]) == 1
    )
    assert "do not fit `mnist_fc`" in capsys.readouterr().err
    (tmp_path / "last.ckpt").write_bytes(b"PK\x03\x04not a weights file")
    assert (
        main(
            [
                "build",
                spec,
                "--backend",
                "onnx",
                "--weights",
                str(tmp_path / "last.ckpt"),
                "-o",
                str(tmp_path),
            ]
        )
        == 1
    )
    assert "cannot read the weights" in capsys.readouterr().err


def test_equiv_against_onnx_on_the_command_line(capsys):
    if not HAS_KERAS:
        pytest.skip("needs keras")
    rc = main(["equiv", str(SPECS / "textbook_shape.cnn"), "--against", "onnx", "--nodes"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "shape_textbook: onnxruntime against PyTorch, float32" in out
    assert "shape_textbook: onnxruntime against Keras, float32" in out
    assert out.count("shape_textbook: ok") == 2 and "no node diverges" in out
    assert (
        main(["equiv", str(SPECS / "mnist_fc.cnn"), "--against", "onnx", "--dtype", "float32"]) == 2
    )
    assert "--dtype does not apply with --against onnx" in capsys.readouterr().err


# ---- trained weights: the same top-1 as `archc evaluate` ------------------------------


def test_trained_weights_give_evaluates_top1(tmp_path):
    """digits_cnn trained by `archc train` (torch), written to ONNX with its exported
    weights, run by onnxruntime on the digits test split: the top-1 `archc evaluate`
    reports, example for example."""
    import numpy as np
    import onnx
    import onnxruntime as ort

    from archc import data as D
    from archc.data.transforms import as_float
    from tests.test_training import train

    ir = compile_spec(str(SPECS / "digits_cnn.cnn"))
    train(ir, "torch", tmp_path / "run", epochs=1)
    r = _archc(
        "build",
        str(SPECS / "digits_cnn.cnn"),
        "--backend",
        "onnx",
        "--weights",
        str(tmp_path / "run"),
        "-o",
        str(tmp_path),
    )
    assert r.returncode == 0, r.stderr
    path = tmp_path / "digits_cnn.onnx"
    meta = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert meta["archc.weights"].startswith("from weights-best.npz (sha256 ")
    ev = _archc(
        "evaluate",
        str(SPECS / "digits_cnn.cnn"),
        "--weights",
        str(tmp_path / "run"),
        "--data",
        "digits",
        "--json",
    )
    assert ev.returncode == 0, ev.stderr
    evaluated = json.loads(ev.stdout)
    dataset = D.fit_to_spec(
        D.load("digits", seed=0, shape=ir.input_shape, classes=10), ir.input_shape, 10
    )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = as_float(dataset.x_test).transpose(0, 3, 1, 2)  # as the trainers feed it
    (probabilities,) = session.run(None, {"input": x})
    correct = int((probabilities.argmax(axis=1) == dataset.y_test).sum())
    assert len(dataset.y_test) == evaluated["examples"]
    assert correct == round(evaluated["accuracy"] * evaluated["examples"])
    assert correct / len(dataset.y_test) > 0.8  # trained, not random
    assert np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)


# ---- every spec in specs/ -------------------------------------------------------------

# ImageNet-sized specs (224 x 224 inputs, up to 144 M parameters) take 10 s to a minute
# each here: marked slow (run them with `-m slow`)
BIG = {s for s in ALL_SPECS if compile_spec(str(SPECS / s)).input_shape[0] >= 200}


@pytest.mark.parametrize(
    "spec",
    [pytest.param(s, marks=pytest.mark.slow) if s in BIG else s for s in ALL_SPECS],
)
def test_every_spec_builds_checks_and_agrees_with_pytorch(spec):
    ir = compile_spec(str(SPECS / spec))
    (r,) = _check(ir, nodes=False, batch=2)
    assert r.diff <= r.allowed
