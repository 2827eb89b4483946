"""Issue 11, items 3, 8 and 9: library-like files, every argument error of a file
at once, and diagnostics that do not mislead."""

from __future__ import annotations

import importlib.util
import pathlib
import subprocess
import sys

import pytest

from archc.diagnostics import SpecError
from archc.pipeline import compile_spec
from backends import get
from tests.helpers import compile_str, errors

ROOT = pathlib.Path(__file__).resolve().parents[1]
REPROS = ROOT / "tests" / "repros"


def _check(path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "archc", "check", str(path)],
        cwd=ROOT,
        capture_output=True,
        check=False,
        text=True,
        timeout=120,
    )


# -- item 3: a file whose layers all switch off (a library with a stray `B (None)`)


def test_library_like_file_with_switched_off_layers_is_refused_not_a_traceback():
    path = REPROS / "keras_generator_indexerror.cnn"
    with pytest.raises(SpecError) as e:
        compile_spec(str(path))
    (d,) = e.value.diagnostics
    assert (d.code, d.span.line, d.span.col) == ("E003", 43, 1)
    assert "produce no layer" in d.message and "include" in d.hint
    r = _check(path)
    assert r.returncode == 1 and "Traceback" not in r.stderr + r.stdout


@pytest.mark.parametrize("body", ["B(None)", "B(0) B(No)", "E(0)", "G(0)", "if 0 { C(4*1*1) }"])
def test_every_way_to_produce_no_layer_is_refused(body):
    text = (
        f"block E(u) {{ B(u) }}\nblock G(u) {{ E(u) if u {{ C(2*1*1) }} }}\ninput 8*8*3\n{body}\n"
    )
    (d,) = errors(text)
    assert d.code == "E003" and d.span.line == 4


@pytest.mark.parametrize("body", ["G(0)", "C(4*1*1) E(0) { B(0) } as g GAP", "G(1) E(0)"])
@pytest.mark.parametrize("backend", ["keras", "torch"])
def test_models_with_empty_blocks_generate(body, backend):
    text = f"block E(u) {{ B(u) }}\nblock G(u) {{ E(u) C(2*1*1) }}\ninput 8*8*3\n{body}\n"
    source = get(backend).generate(compile_str(text))
    compile(source, "<generated>", "exec")


def test_a_library_alone_checks():
    r = _check(ROOT / "specs" / "stdlib.cnn")
    assert r.returncode == 0, r.stdout + r.stderr


# -- item 8: every argument error of a file, in order, without follow-on errors


def test_every_argument_error_is_reported_in_order():
    ds = errors("input 8*8*3\nA(rellu) A(tanhh) D(1.5) Flatten Dense(10, softmx)\n")
    assert [(d.code, d.span.col) for d in ds] == [
        ("E307", 3),
        ("E307", 12),
        ("E304", 21),
        ("E307", 44),
    ]
    assert [d.message.split("`")[1] for d in ds if d.code == "E307"] == ["rellu", "tanhh", "softmx"]


def test_errors_in_a_block_body_are_reported_once_where_they_are_written():
    text = (
        "block X(c) { A(tanhh) C(c*1*1, s0) }\ninput 8*8*3\n"
        "A(rellu) X(2) D(1.5) Flatten X(3) Dense(10, softmx)\n"
    )
    ds = errors(text)
    assert [(d.span.line, d.span.col) for d in ds] == [(1, 16), (1, 32), (3, 3), (3, 17), (3, 45)]


def test_a_refused_layer_causes_no_shape_error_downstream():
    # without the refused Flatten, Dense would meet a feature map: no E401 is reported
    ds = errors("input 8*8*3\nC(4*3*3, s1, sme) Flatten(2) Dense(10, softmx)\n")
    assert "E401" not in [d.code for d in ds] and len(ds) == 3


def test_check_reports_all_with_status_1(tmp_path):
    spec = tmp_path / "several.cnn"
    spec.write_text("input 8*8*3\nA(rellu) A(tanhh) D(1.5) Flatten Dense(10, softmx)\n")
    r = _check(spec)
    assert r.returncode == 1 and "4 errors found" in r.stdout + r.stderr
    assert "Traceback" not in r.stdout + r.stderr


# -- item 9: diagnostics that do not mislead


@pytest.mark.parametrize(
    "text, message, hint",
    [
        # a different function close in letters is never proposed
        ("A(hard_tanh)", "does not support the hard tanh activation", None),
        ("A(hardtanh)", "does not support the hard tanh activation", None),
        ("A(celu)", "does not support the CELU activation", None),
        ("C(4*3*3, s1, hard_tanh)", "does not support the hard tanh activation", None),
        ("Cropping1D(1)", "unknown layer or block `Cropping1D`", "archc has no `Cropping1D`"),
        ("Conv1D(4)", "unknown layer or block `Conv1D`", "1-D and 3-D convolutions"),
        ("GELU", "unknown layer or block `GELU`", "written `A(gelu)`"),
        ("multiply(2)", "unknown layer or block `multiply`", "`concat { a | b }`"),
        # real slips are still corrected
        ("A(rellu)", "unknown activation `rellu`", "did you mean `relu`?"),
        ("Dens(4)", "unknown layer or block `Dens`", "did you mean `Dense`?"),
    ],
)
def test_suggestions_name_only_the_same_thing(text, message, hint):
    (d,) = errors(f"input 8*8*3\n{text}\n")
    assert message in d.message
    if hint is None:
        assert d.hint is None or "did you mean" not in d.hint
    else:
        assert hint in d.hint
    assert "sigmoid" not in (d.hint or "") and "Conv2D" not in (d.hint or "")


def test_did_you_mean_corrects_slips_only():
    from archc.diagnostics import did_you_mean

    acts = ("relu", "relu6", "sigmoid", "hard_sigmoid", "tanh", "elu", "selu", "gelu", "silu")
    assert did_you_mean("hard_swish", acts) is None
    assert did_you_mean("relu7", acts) is None  # digits are meaning, not slips
    assert did_you_mean("celu", acts) is None  # as close to elu, selu, gelu, relu
    assert did_you_mean("sigmiod", acts) == "sigmoid"  # two letters swapped
    assert did_you_mean("RELU", acts) == "relu"
    assert did_you_mean("Conv1D", ["Conv2D", "C"]) is None


def test_hard_sigmoid_spelled_without_underscore_is_the_same_function():
    assert compile_str("input 8*8*3\nA(hardsigmoid)\n").nodes[-1].fn == "hard_sigmoid"


def test_a_stray_bar_names_the_merges():
    (d,) = errors("input 8*8*3\nmultiply { C(2*1*1) | C(2*1*1) }\n")
    assert (d.code, d.span.line, d.span.col) == ("E103", 2, 21)
    assert "`multiply` is not a merge" in d.hint and "concat" in d.hint and "add" in d.hint
    (d,) = errors("input 8*8*3\n{ C(2*1*1) | C(2*1*1) }\n")
    assert "not a merge" not in d.hint and "`concat { a | b }`" in d.hint


def test_stride_with_dilation_says_what_refuses_it():
    (d,) = errors("input 16*16*3\nC(4*3*3, s2, dilation: 2)\n")
    assert "Keras's Conv2D refuses" in d.hint and "PyTorch accepts it" in d.hint


def test_dilation_per_axis():
    m = compile_str("input 16*16*3\nC(4*3*3, dilation: [2, 1])\n")
    assert m.nodes[-1].dilation == (2, 1) and m.output_shape == (12, 14, 4)


@pytest.mark.parametrize(
    "args",
    [
        "8, nobias",
        "8, nobias, relu",
        "8, relu, nobias",
        "8, relu, bias: no",
        "units: 8, activation: relu, bias: no",
    ],
)
def test_dense_accepts_nobias_as_conv_does(args):
    m = compile_str(f"input 4*4*3\nFlatten Dense({args})\n")
    dense = m.nodes[-1]
    assert dense.use_bias is False and m.params == 48 * 8
    assert dense.activation == ("relu" if "relu" in args else None)


@pytest.mark.parametrize("args", ["8, nobias, nobias", "8, nobias, bias: no", "8, relu, tanh"])
def test_dense_refuses_nobias_or_activation_twice(args):
    (d,) = errors(f"input 4*4*3\nFlatten Dense({args})\n")
    assert d.code in ("E306", "E301")


@pytest.mark.skipif(
    importlib.util.find_spec("torch") is None or importlib.util.find_spec("keras") is None,
    reason="torch and keras are needed",
)
def test_dense_nobias_builds_equal_in_both_frameworks():
    import numpy as np

    from archc import equiv
    from backends.runtime import build_keras, build_torch

    ir = compile_str(
        "model dense_nobias\ninput 4*4*3\nFlatten Dense(8, nobias, relu) Dense(3, nobias)\n"
    )
    assert ir.params == 48 * 8 + 8 * 3
    kmodel = build_keras(ir)
    assert sum(int(np.prod(w.shape)) for w in kmodel.weights) == ir.params
    assert not any(layer.get_config().get("use_bias", False) for layer in kmodel.layers)
    tmodel = build_torch(ir)
    assert sum(p.numel() for p in tmodel.parameters()) == ir.params
    assert all(m.bias is None for m in tmodel.modules() if hasattr(m, "bias"))
    r = equiv.check(ir)
    assert r.ok, r
