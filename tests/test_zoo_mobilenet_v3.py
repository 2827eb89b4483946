"""MobileNetV3 Small and Large (specs/mobilenet_v3_*.cnn) against keras.applications,
and the two changes to `archc equiv` they needed.

tests/test_specs.py compares every Keras layer's kind, output shape and count; here
the generated Keras build must also compute keras.applications' function: both
models hold the same tensors in the same order, so one set of random values goes
into both, and their logits (the output of the Flatten before the softmax) agree
in float64. The equivalence of the Keras and PyTorch builds is
tests/test_equivalence.py's (every spec, both directions).
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from archc import equiv
from archc.pipeline import compile_spec
from tests.helpers import SPECS, compile_str

HAS_KERAS = importlib.util.find_spec("keras") is not None
HAS_TORCH = importlib.util.find_spec("torch") is not None
needs_keras = pytest.mark.skipif(not HAS_KERAS, reason="keras is not installed")


def _spec(name: str, size: int):
    path = SPECS / f"mobilenet_v3_{name}.cnn"
    text = path.read_text(encoding="utf-8").replace("input 224*224*3", f"input {size}*{size}*3")
    return compile_spec(str(path), text)


def _random_values(model, rng):
    """Values that keep a signal through the whole network: kernels with variance
    1 / fan-in (a depthwise kernel's fan-in is its window), batch-norm statistics
    and affine terms away from their initial values."""
    out = []
    for w in model.weights:
        shape, path = tuple(w.shape), w.path
        if path.endswith("kernel"):
            depthwise = "depthwise" in type(_layer_of(model, w)).__name__.lower()
            fan = int(np.prod(shape[:-2])) * (1 if depthwise else shape[-2])
            out.append(rng.uniform(-1, 1, shape) * np.sqrt(3.0 / fan))
        elif path.endswith("moving_variance"):
            out.append(rng.uniform(0.5, 2.0, shape))
        elif path.endswith("gamma"):
            out.append(rng.uniform(0.5, 1.5, shape))
        else:  # bias, beta, moving_mean
            out.append(rng.normal(0, 0.1, shape))
    return out


def _layer_of(model, weight):
    return next(layer for layer in model.layers if any(w is weight for w in layer.weights))


@needs_keras
@pytest.mark.parametrize("name", ["small", "large"])
@pytest.mark.parametrize("size", [64, 96])
def test_the_keras_build_computes_keras_applications_function(name, size):
    import keras

    from backends.runtime import build_keras, keras_dtype

    ir = _spec(name, size)
    ours = build_keras(ir, "float64")
    ctor = {
        "small": keras.applications.MobileNetV3Small,
        "large": keras.applications.MobileNetV3Large,
    }
    with keras_dtype("float64"):
        ref = ctor[name](input_shape=(size, size, 3), weights=None)
    # the same tensors, in the same order
    assert [tuple(w.shape) for w in ref.weights] == [tuple(w.shape) for w in ours.weights]
    rng = np.random.default_rng(size)
    values = _random_values(ref, rng)
    ref.set_weights(values)
    ours.set_weights(values)
    # pixels (both rescale them first); each image with its own brightness, which
    # reaches the logits through the global pooling where pixel noise averages out
    x = rng.uniform(0, 128, (3, 1, 1, 1)) + rng.uniform(0, 127, (3, size, size, 3))
    ref_logits = keras.Model(ref.input, ref.get_layer("predictions").input)(x)
    our_logits = keras.Model(ours.input, ours.get_layer("flatten").output)(x)
    ref_logits, our_logits = np.asarray(ref_logits), np.asarray(our_logits)
    assert ref_logits.shape == our_logits.shape == (3, 1000)
    tolerance = 1e-9 * max(1.0, float(np.abs(ref_logits).max()))
    # the comparison can fail: the logits differ between inputs and between classes
    # by far more than the tolerance
    assert np.ptp(ref_logits, axis=0).max() > 1000 * tolerance
    assert np.ptp(ref_logits, axis=1).min() > 1000 * tolerance
    assert float(np.abs(ref_logits - our_logits).max()) <= tolerance


def test_the_block_writes_keras_depth_rule():
    """`expanded` and `squeezed` in the specs are Keras's _depth(cin * expansion)
    and _depth(expanded * 0.25) for the expansions and SE of its stack_fn."""

    def depth(v, divisor=8):
        new = max(divisor, int(v + divisor / 2) // divisor * divisor)
        return new + divisor if new < 0.9 * v else new

    # (expansion, filters, se) per block, as mobilenet_v3.py's stack_fn lists them
    stacks = {
        "small": [(1, 16, 1), (72 / 16, 24, 0), (88 / 24, 24, 0), (4, 40, 1), (6, 40, 1),
                  (6, 40, 1), (3, 48, 1), (3, 48, 1), (6, 96, 1), (6, 96, 1), (6, 96, 1)],
        "large": [(1, 16, 0), (4, 24, 0), (3, 24, 0), (3, 40, 1), (3, 40, 1), (3, 40, 1),
                  (6, 80, 0), (2.5, 80, 0), (2.3, 80, 0), (2.3, 80, 0), (6, 112, 1),
                  (6, 112, 1), (6, 160, 1), (6, 160, 1), (6, 160, 1)],
    }  # fmt: skip
    for name, stack in stacks.items():
        ir = _spec(name, 224)
        # each block's depthwise convolution has `expanded` channels; its SE squeezes
        # to `squeezed`
        dws = [n for n in ir.nodes if n.kind == "depthwise"]
        squeezes = {
            n.scope.rsplit(".", 1)[0]: n.out_shape[-1]
            for n in ir.nodes
            if n.kind == "conv" and n.name.endswith(".se1.c1")
        }
        assert len(dws) == len(stack)
        cin = 16
        for dw, (expansion, filters, se) in zip(dws, stack):
            expanded = depth(cin * expansion)
            assert dw.out_shape[-1] == expanded, dw.name
            block = dw.scope
            assert squeezes.get(block, 0) == (depth(expanded * 0.25) if se else 0), block
            cin = filters


# ---- `archc equiv` on MobileNet-like networks -------------------------------------


def test_depthwise_kernels_are_randomised_with_their_own_fans():
    """A depthwise kernel (kh, kw, C, multiplier) reads one channel per output: its
    Glorot limit is sqrt(6 / (kh*kw*(1 + multiplier))), not that of a dense
    kernel over C channels, which would shrink the signal about C/2 times per layer."""
    ir = compile_str("input 8*8*64\nDW(3*3, s1, same, nobias) C(64*3*3, s1, same, nobias)")
    dw, conv = (n.name for n in ir.nodes if n.kind in ("depthwise", "conv"))
    weights = {f"{dw}/kernel": np.zeros((3, 3, 64, 1)), f"{conv}/kernel": np.zeros((3, 3, 64, 64))}
    values = equiv.randomize(ir, weights, seed=0)
    dw_limit, conv_limit = np.sqrt(6 / (9 * 2)), np.sqrt(6 / (9 * 128))
    assert dw_limit / 2 < np.abs(values[f"{dw}/kernel"]).max() <= dw_limit
    assert conv_limit / 2 < np.abs(values[f"{conv}/kernel"]).max() <= conv_limit


def test_random_inputs_are_pixels_where_the_model_rescales_its_input():
    z = np.random.default_rng(0).normal(size=(2, 4, 4, 3))
    rescaled = compile_str("input 4*4*3\nRescaling(scale: 1/127.5, offset: -1) C(2*1*1)")
    x = equiv.raw_inputs(rescaled, z)
    assert np.allclose(x / 127.5 - 1, z) and x.mean() > 100  # what Rescaling maps to z
    plain = compile_str("input 4*4*3\nC(2*1*1) Rescaling(2)")
    assert equiv.raw_inputs(plain, z) is z  # Rescaling elsewhere: the input as drawn


@pytest.mark.skipif(not (HAS_KERAS and HAS_TORCH), reason="needs keras and torch")
@pytest.mark.parametrize("direction", ["keras2torch", "torch2keras"])
def test_a_small_rescaled_mobilenet_block_stack_is_equivalent_node_by_node(direction):
    text = (
        'include "stdlib.cnn"\ninput 32*32*3\nRescaling(scale: 1/127.5, offset: -1)\n'
        "C(16*3*3, s2, same, nobias) B(eps: 1e-3, momentum: 0.999) A(hard_swish)\n"
        "InvertedResV3(16, 16, 16, 3, 2, 8, relu)\n"
        "InvertedResV3(16, 72, 24, 5, 2, 0, hard_swish)\n"
        "InvertedResV3(24, 88, 24, 3, 1, 24, hard_swish)\n"
        "GAP(keepdims) C(10*1*1, s1, same) Flatten\n"
    )
    ir = compile_str(text, name="mbv3_probe.cnn")
    result = equiv.check(ir, dtype="float64", direction=direction, batch=3, nodes=True)
    assert result.ok and result.first_divergence is None, equiv.report(ir, result)
