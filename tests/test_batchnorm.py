"""Batch norm's options beyond the kind's row in test_kinds.py: `scale: no`
(Keras's BatchNormalization(scale=False), as Inception v3 uses it)."""

from __future__ import annotations

import pytest

from backends.keras.generator import generate as keras_source
from backends.pytorch.generator import generate as torch_source
from tests.helpers import HAS_KERAS, HAS_TORCH, compile_str, error


def _t(text: str):
    model = compile_str(text)
    (node,) = [n for n in model.nodes if n.name == "t"]
    return model, node


def test_no_scale_counts_beta_and_the_moving_statistics_only():
    _, n = _t("model m\ninput 9*9*3\nC(4*3*3) B(scale: no) as t\n")
    assert (n.trainable, n.nontrainable) == (4, 8)
    assert [w.role for w in n.weights(list(n.in_shapes))] == [
        "beta",
        "moving_mean",
        "moving_variance",
    ]
    _, n = _t("model m\ninput 9*9*3\nC(4*3*3) B(scale: yes) as t\n")
    assert (n.trainable, n.nontrainable) == (8, 8)


def test_no_scale_generated_lines():
    model, _ = _t(
        "model m\ninput 9*9*3\nC(4*3*3) B(scale: no) as t Flatten Dense(3) B(scale: no)\n"
    )
    keras = keras_source(model)
    torch = torch_source(model)
    assert 'x = layers.BatchNormalization(scale=False, name="t")(x)' in keras
    assert "self.t = BatchNorm2dNoScale(4, eps=0.001, momentum=0.01)" in torch
    assert "class BatchNorm2dNoScale(nn.BatchNorm2d):" in torch
    assert "class BatchNorm1dNoScale(nn.BatchNorm1d):" in torch
    assert "NoScale" not in torch_source(compile_str("model m\ninput 9*9*3\nC(4*3*3) B\n"))


def test_scale_must_be_yes_or_no():
    e = error("model m\ninput 9*9*3\nC(4*3*3) B(scale: 2)\n")
    assert e.code == "E307"
    assert "yes or no" in e.message


@pytest.mark.skipif(not (HAS_KERAS and HAS_TORCH), reason="needs keras and torch")
@pytest.mark.parametrize("direction", ["keras2torch", "torch2keras"])
@pytest.mark.parametrize(
    "body",
    [
        "C(4*3*3) B(scale: no) A(relu) C(2*3*3)",
        "Flatten Dense(5) B(scale: no, epsilon: 0.01) Dense(3)",
    ],
)
def test_no_scale_is_the_same_function_in_both_builds(body, direction):
    from archc import equiv

    model = compile_str(f"model m\ninput 6*6*3\n{body}\n")
    result = equiv.check(model, dtype="float64", batch=3, direction=direction)
    assert result.ok, equiv.report(model, result)


@pytest.mark.skipif(not HAS_TORCH, reason="needs torch")
def test_no_scale_torch_module_has_exactly_keras_tensors():
    from backends.runtime import build_torch

    model, _ = _t("model m\ninput 6*6*3\nC(4*3*3) B(scale: no) as t\n")
    t = build_torch(model, "float64")
    params = {k: tuple(v.shape) for k, v in t.t.named_parameters()}
    assert params == {"bias": (4,)}
    assert sum(p.numel() for p in t.parameters()) == model.trainable
