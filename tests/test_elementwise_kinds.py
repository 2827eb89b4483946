"""The element-wise kinds of issue #14 (part 2): the `mul` merge and squeeze-and-
excitation, `GAP(keepdims)`, `Reshape`, layer and group norm, layer scale, drop path,
the preprocessing layers `Rescaling` and `Normalization`, and the activations
hard_swish, mish and gelu_tanh.

Counts are checked against Keras itself (each layer built directly), the SE block
against a hand-built Keras SE, and every configuration computes the same function in
float64 in both directions of weight transfer.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.helpers import HAS_KERAS, HAS_TORCH, compile_str, error

needs_keras = pytest.mark.skipif(not HAS_KERAS, reason="needs keras")
needs_both = pytest.mark.skipif(not (HAS_KERAS and HAS_TORCH), reason="needs keras and torch")


def _model(body: str, shape: str = "6*6*4"):
    return compile_str(f'model ew\ninclude "stdlib.cnn"\ninput {shape}\n{body}\n')


def _node(model, name="t"):
    (node,) = [n for n in model.nodes if n.name == name]
    return node


# ---- shapes and counts -----------------------------------------------------------------


@pytest.mark.parametrize(
    "body, shape, out, trainable, nontrainable",
    [
        ("LN as t", "5*7*6", (5, 7, 6), 12, 0),
        ("Dense(6) LN(eps: 1e-6) as t", "10", (6,), 12, 0),
        ("GN(1) as t", "5*7*6", (5, 7, 6), 12, 0),
        ("GN(6) as t", "5*7*6", (5, 7, 6), 12, 0),
        ("Scale as t", "5*7*6", (5, 7, 6), 6, 0),
        ("Dense(6) Scale(0.1) as t", "10", (6,), 6, 0),
        ("DP(0.3) as t", "5*7*6", (5, 7, 6), 0, 0),
        ("Rescaling(2) as t", "5*7*6", (5, 7, 6), 0, 0),
        ("Normalization as t", "5*7*6", (5, 7, 6), 0, 13),
        ("Normalization(mean: 0.5, variance: 2) as t", "5*7*6", (5, 7, 6), 0, 0),
        ("Normalization as t", "10", (10,), 0, 21),
        ("GAP(keepdims) as t", "5*7*6", (1, 1, 6), 0, 0),
        ("GMP(keepdims: yes) as t", "5*7*6", (1, 1, 6), 0, 0),
        ("GAP(keepdims: no) as t", "5*7*6", (6,), 0, 0),
        ("Reshape(7, 5, 6) as t", "5*7*6", (7, 5, 6), 0, 0),
        ("Reshape(210) as t", "5*7*6", (210,), 0, 0),
        ("mul { identity | GAP(keepdims) } as t", "5*7*6", (5, 7, 6), 0, 0),
        ("mul { GAP(keepdims) | identity } as t", "5*7*6", (5, 7, 6), 0, 0),
        ("mul { identity | A(sigmoid) | GMP(keepdims) } as t", "5*7*6", (5, 7, 6), 0, 0),
        ("mul { GAP(keepdims) | GMP(keepdims) } as t", "5*7*6", (1, 1, 6), 0, 0),
    ],
)
def test_shapes_and_counts(body, shape, out, trainable, nontrainable):
    n = _node(_model(body, shape))
    assert (n.out_shape, n.trainable, n.nontrainable, n.macs) == (out, trainable, nontrainable, 0)
    ws = n.weights(list(n.in_shapes))
    assert sum(w.size for w in ws if w.trainable) == trainable
    assert sum(w.size for w in ws if not w.trainable) == nontrainable


def test_receptive_fields():
    m = _model("C(4*3*3, same) LN as ln GN(2) as gn C(4*3*3, same) as c", "8*8*3")
    assert _node(m, "ln").rf.size == (3, 3)  # per cell: passes through
    assert _node(m, "gn").rf is None and _node(m, "c").rf is None  # the whole map
    m = _model("C(4*3*3, same) mul { identity | GAP(keepdims) } as t", "8*8*3")
    assert _node(m).rf is None  # the gate reads the whole input


@needs_keras
@pytest.mark.parametrize(
    "make, body, shape",
    [
        ("layers.LayerNormalization(epsilon=1e-6)", "LN(eps: 1e-6)", (5, 7, 6)),
        ("layers.LayerNormalization()", "LN", (10,)),
        ("layers.GroupNormalization(groups=3)", "GN(3)", (5, 7, 6)),
        ("layers.Normalization(axis=-1)", "Normalization", (5, 7, 6)),
        (
            "layers.Normalization(mean=[1, 2, 3], variance=[1, 1, 2])",
            "Normalization(mean: [1, 2, 3], variance: [1, 1, 2])",
            (5, 7, 3),
        ),
        ("layers.Rescaling(1 / 255, offset=-1)", "Rescaling(1/255, offset: -1)", (5, 7, 6)),
        ("layers.Dropout(0.2, noise_shape=(None, 1, 1, 1))", "DP(0.2)", (5, 7, 6)),
        ("layers.Reshape((1, 1, 10))", "Reshape(1, 1, 10)", (10,)),
        ("layers.GlobalAveragePooling2D(keepdims=True)", "GAP(keepdims)", (5, 7, 6)),
        ("layers.GlobalMaxPooling2D(keepdims=True)", "GMP(keepdims)", (5, 7, 6)),
    ],
)
def test_counts_are_keras_counts(make, body, shape):
    """Each layer built in Keras directly: its parameters, split as Keras splits them,
    and its output shape are the IR's."""
    import keras
    from keras import layers

    layer = eval(make, {"layers": layers})  # a Keras constructor written in this test
    y = layer(keras.Input(shape=shape))
    trainable = sum(int(np.prod(w.shape)) for w in layer.trainable_weights)
    nontrainable = sum(int(np.prod(w.shape)) for w in layer.non_trainable_weights)
    n = _node(_model(f"{body} as t", "*".join(map(str, shape))))
    assert (n.trainable, n.nontrainable) == (trainable, nontrainable)
    assert n.out_shape == tuple(y.shape[1:])


@needs_keras
def test_keras_epsilon_defaults_are_the_irs():
    from keras import layers

    from archc.ir.kinds import GroupNorm, LayerNorm

    assert layers.LayerNormalization().epsilon == LayerNorm.model_fields["epsilon"].default
    assert layers.GroupNormalization().epsilon == GroupNorm.model_fields["epsilon"].default
    assert LayerNorm.model_fields["epsilon"].default == 1e-3


@needs_keras
def test_keras_multiply_broadcasts_a_gate():
    """Keras's Multiply scales H x W x C by 1 x 1 x C channel by channel, as `*` does."""
    from keras import layers

    x = np.random.default_rng(0).normal(size=(2, 3, 5, 4)).astype("float32")
    g = np.random.default_rng(1).normal(size=(2, 1, 1, 4)).astype("float32")
    assert np.array_equal(np.asarray(layers.Multiply()([x, g])), x * g)


# ---- the SE block --------------------------------------------------------------------


@needs_keras
@pytest.mark.parametrize("form", ["mobilenetv3", "efficientnet"])
def test_se_block_counts_as_a_hand_built_keras_se(form):
    import keras
    from keras import layers

    inputs = keras.Input(shape=(7, 7, 24))
    if form == "mobilenetv3":  # keras.applications MobileNetV3's _se_block
        x = layers.GlobalAveragePooling2D(keepdims=True)(inputs)
        x = layers.Conv2D(8, 1, padding="same")(x)
        x = layers.ReLU()(x)
        x = layers.Conv2D(24, 1, padding="same")(x)
        x = layers.Activation("hard_sigmoid")(x)
        spec = "SE(24, 8)"
    else:  # keras.applications EfficientNet's block: GAP -> Reshape -> conv swish/sigmoid
        x = layers.GlobalAveragePooling2D()(inputs)
        x = layers.Reshape((1, 1, 24))(x)
        x = layers.Conv2D(8, 1, padding="same", activation="swish")(x)
        x = layers.Conv2D(24, 1, padding="same", activation="sigmoid")(x)
        spec = "mul { identity | GAP Reshape(1, 1, 24) C(8*1*1, same, swish) C(24*1*1, same, sigmoid) }"
    out = layers.Multiply()([inputs, x])
    hand = keras.Model(inputs, out)
    m = _model(spec, "7*7*24")
    assert m.params == hand.count_params() == (24 * 8 + 8) + (8 * 24 + 24)
    assert m.output_shape == tuple(out.shape[1:])


@needs_both
@pytest.mark.parametrize("direction", ["keras2torch", "torch2keras"])
def test_se_block_equivalence(direction):
    from archc import equiv

    m = _model("C(8*3*3, same) SE(8, 2) SE(8, 4, act=swish, gate=sigmoid) Flatten", "6*6*3")
    r = equiv.check(m, direction=direction, nodes=True, batch=3)
    assert r.ok, equiv.report(m, r)


# ---- float64 equivalence over several configurations -----------------------------------

CONFIGS = {
    "preprocessing": (
        "7*5*3",
        (
            "Rescaling(1/127.5, offset: -1) Normalization C(4*3*3, same) "
            "Normalization(mean: [0.485, 0.456, 0.406, 0.1], variance: [0.052, 0.05, 0.051, 2]) "
            "Flatten"
        ),
    ),
    "normalization_scalar": ("5*5*3", "Normalization(mean: 0.3, variance: 0.7) C(2*3*3) Flatten"),
    "norms": (
        "7*5*3",
        (
            "C(12*3*3, same) LN(eps: 1e-6) GN(3) GN(1, epsilon: 1e-5) GN(12) Scale(0.3) "
            "C(4*1*1) Flatten"
        ),
    ),
    "vector_norms": (
        "12",
        "Dense(8) LN Scale(0.5) DP(0.1) Normalization Dense(3, mish) Dense(3, hard_swish)",
    ),
    "reshapes": (
        "4*6*2",
        (
            "Reshape(6, 4, 2) C(3*3*3, same) Reshape(72) Dense(8) Reshape(2, 2, 2) "
            "C(3*1*1) Reshape(1, 1, 12) Reshape(12)"
        ),
    ),
    "gates": (
        "7*5*4",
        (
            "C(6*3*3, same) mul { identity | GMP(keepdims) C(6*1*1, hard_sigmoid) } "
            "mul { A(tanh) | C(6*3*3, same, sigmoid) | GAP(keepdims) } DP(0.5) Flatten"
        ),
    ),
    "activations": (
        "6*6*3",
        (
            "C(4*3*3, same, hard_swish) A(mish) C(4*3*3, mish) A(hard_swish) A(hardswish) "
            "A(hard_silu) A(gelu_tanh) Flatten"
        ),
    ),
}


@needs_both
@pytest.mark.parametrize("direction", ["keras2torch", "torch2keras"])
@pytest.mark.parametrize("config", sorted(CONFIGS))
def test_equivalence(config, direction):
    from archc import equiv

    shape, body = CONFIGS[config]
    m = _model(body, shape)
    r = equiv.check(m, direction=direction, nodes=True, batch=3, seed=5)
    assert r.ok, equiv.report(m, r)
    assert all(n.diff <= n.allowed for n in r.nodes)


@needs_both
def test_gelu_tanh_is_reported_as_known_inexactness():
    from archc import equiv

    m = _model("C(4*3*3, same) A(gelu_tanh) A(gelu) Flatten", "6*6*3")
    r = equiv.check(m, nodes=True, batch=3)
    assert r.ok, equiv.report(m, r)
    known = {k.fn: k for k in r.known}
    assert sorted(known) == ["gelu", "gelu_tanh"]  # both replaced, each by its own
    assert known["gelu_tanh"].nodes == ["a1"] and known["gelu"].nodes == ["a2"]
    assert 0 < known["gelu_tanh"].measured <= known["gelu_tanh"].inexact.bound
    assert "known float64 inexactness: gelu_tanh at a1" in equiv.report(m, r)


@needs_keras
def test_keras_gelu_tanh_uses_a_float32_coefficient():
    """The cause of KNOWN_INEXACT["gelu_tanh"]: TensorFlow's float64 tanh GELU is the
    textbook formula with 0.044715 rounded to float32."""
    import math

    import keras

    from archc import equiv

    x = np.linspace(-8, 8, 16001)
    keras_gelu = np.asarray(keras.activations.gelu(x, approximate=True))
    c = math.sqrt(2 / math.pi)

    def formula(coeff):
        return 0.5 * x * (1 + np.tanh(c * (x + coeff * x**3)))

    assert np.abs(keras_gelu - formula(float(np.float32(0.044715)))).max() <= 1e-14  # rounding
    worst = np.abs(keras_gelu - formula(0.044715)).max()
    assert 8e-10 < worst <= equiv.KNOWN_INEXACT["gelu_tanh"].bound


# ---- weight transfer and training semantics ---------------------------------------------


@needs_both
def test_normalization_statistics_and_count_transfer():
    from archc import equiv
    from backends import transfer
    from backends.runtime import build_keras, build_torch

    m = _model("Normalization as t Flatten", "3*3*2")
    k, t = build_keras(m, "float64"), build_torch(m, "float64")
    weights = equiv.randomize(m, transfer.keras_weights(m, k), seed=1)
    transfer.set_keras_weights(m, k, weights)
    transfer.keras_to_torch(m, k, t)
    assert set(dict(t.named_buffers())) == {"t.mean", "t.variance", "t.count"}
    for role in ("mean", "variance", "count"):
        assert np.array_equal(getattr(t.t, role).numpy(), weights[f"t/{role}"])
    assert int(t.t.count) >= 1 and t.t.count.dtype.is_floating_point is False
    back = transfer.torch_weights(m, t)
    assert all(np.array_equal(back[key], weights[key]) for key in weights)


@needs_both
def test_given_statistics_are_constants_in_both_builds():
    from backends.runtime import build_keras, build_torch

    m = _model("Normalization(mean: [1, 2], variance: [4, 9]) as t Flatten", "3*3*2")
    assert build_keras(m, "float64").get_layer("t").weights == []
    t = build_torch(m, "float64")
    assert t.state_dict() == {}  # not weights: nothing to load
    x = np.random.default_rng(0).normal(size=(2, 3, 3, 2))
    import torch

    out = t(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy()
    assert np.allclose(out, ((x - [1, 2]) / [2, 3]).reshape(2, -1), rtol=0, atol=1e-12)


@needs_both
@pytest.mark.parametrize("shape", ["6*6*4", "12"])
def test_drop_path_trains_per_sample_with_the_same_scaling(shape):
    """Training mode: each sample is kept whole (scaled by 1/(1 - rate)) or dropped
    whole, in both builds; inference is the identity."""
    import keras
    import torch

    from backends.runtime import build_keras, build_torch

    rate = 0.4
    m = _model(f"DP({rate}) as t", shape)
    k, t = build_keras(m, "float64"), build_torch(m, "float64")
    x = np.random.default_rng(0).uniform(1, 2, size=(400, *m.input_shape))
    keras.utils.set_random_seed(0)
    torch.manual_seed(0)
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy() if x.ndim == 4 else x)
    t.train()
    ratios = {
        "keras": np.asarray(k(x, training=True)) / x,
        "torch": (t(xt) / xt).detach().numpy(),
    }
    for name, ratio in ratios.items():
        ratio = ratio.reshape(len(x), -1)
        per_sample = ratio[:, :1]
        assert np.allclose(ratio, per_sample), name  # one draw per sample
        assert set(np.round(per_sample.ravel(), 12)) == {0.0, round(1 / (1 - rate), 12)}, name
        assert 0.25 < np.mean(per_sample == 0) < 0.55, name  # about `rate` of them
    assert np.array_equal(np.asarray(k(x, training=False)), x)
    t.eval()
    assert torch.equal(t(xt), xt)


# ---- the user's errors ---------------------------------------------------------------


@pytest.mark.parametrize(
    "body, shape, message, hint",
    [
        (
            "mul { identity | GAP }",
            "6*6*4",
            (
                "mul needs every branch to have one shape, or 1 x 1 x C against H x W x C, "
                "but they are 6 x 6 x 4 and 4"
            ),
            "GAP(keepdims)",
        ),
        (
            "mul { identity | GAP(keepdims) C(3*1*1) }",
            "6*6*4",
            "but they are 6 x 6 x 4 and 1 x 1 x 3",
            "the channels differ",
        ),
        ("mul { identity | C(4*3*3) }", "6*6*4", "6 x 6 x 4 and 4 x 4 x 4", None),
        ("Reshape(5, 5, 5)", "6*6*4", "`Reshape` to 5 x 5 x 5 needs 125 values", None),
        ("GN(3)", "6*6*4", "3 does not divide 4", "must divide the channels"),
        ("Flatten GN(2)", "6*6*4", "group norm `GN` needs a feature map", None),
        ("Normalization(mean: [1, 2], variance: [1, 2])", "6*6*4", "2 mean values for 4", None),
    ],
)
def test_shape_errors(body, shape, message, hint):
    d = error(f"input {shape}\n{body}\n")
    assert d.code == "E401" and message in d.message
    if hint:
        assert hint in d.hint


@pytest.mark.parametrize(
    "body, message",
    [
        ("GN", "`GN` needs the number of groups"),
        ("GN(0)", "the number of groups"),
        ("Reshape(2, 72)", "`Reshape` takes the target shape"),
        ("Reshape", "`Reshape` takes the target shape"),
        ("DP", "`DP` needs the drop rate"),
        ("DP(1)", "the drop rate"),
        ("Rescaling", "`Rescaling` needs its scale"),
        ("Normalization(mean: [1, 2])", "takes both `mean:` and `variance:`"),
        ("Normalization(mean: 1, variance: -1)", "a variance cannot be negative"),
        ("LN(eps: 0)", "epsilon must be positive"),
        ("GAP(true)", "takes only `keepdims`"),
        ("C(4*3*3, gelu_tanh)", "unknown activation `gelu_tanh`"),
        ("A(gelu_erf)", "unknown activation `gelu_erf`"),
        ("A(hard_tanh)", "does not support the hard tanh activation"),
    ],
)
def test_argument_errors(body, message):
    d = error(f"input 6*6*4\n{body}\n")
    assert message in d.message, d.message
    assert d.span is not None and d.span.line == 2  # file:line:col, never a traceback


def test_gelu_tanh_is_not_fusable_and_says_so():
    d = error("input 6*6*4\nC(4*3*3, gelu_tanh)\n")
    assert d.hint == "write `gelu_tanh` as its own layer: `A(gelu_tanh)`"


def test_activation_aliases():
    m = _model("A(hard_silu) as t", "4*4*2")
    assert _node(m).fn == "hard_swish"
    assert _node(_model("A(hardswish) as t", "4*4*2")).fn == "hard_swish"


def test_layers_no_longer_listed_as_unsupported():
    from archc.language.bind import SPELLINGS, UNSUPPORTED_ACTIVATIONS, UNSUPPORTED_LAYERS

    for name in ("hard_swish", "hardswish", "hard_silu", "mish"):
        assert name not in UNSUPPORTED_ACTIVATIONS
    for spelling in SPELLINGS:
        assert spelling.lower() not in UNSUPPORTED_LAYERS, spelling
    d = error("input 6*6*4\nMultiply\n")
    assert "`mul { a | b }`" in d.hint


@needs_keras
def test_generated_keras_layers_count_as_the_ir():
    """Every layer of a generated Keras model, the helper layers included (LayerScale,
    GeluTanh), has the IR node's parameters, split as Keras splits them."""
    from backends.runtime import build_keras

    m = _model(
        "Rescaling(1/255) Normalization C(8*3*3, same) LN GN(4) Scale(0.1) DP(0.2) "
        "A(gelu_tanh) SE(8, 2) GAP Reshape(1, 1, 8) Reshape(8) Dense(3) LN Scale",
        "9*7*3",
    )
    k = build_keras(m)
    for n in m.nodes[1:]:
        layer = k.get_layer(n.name)
        trainable = sum(int(np.prod(w.shape)) for w in layer.trainable_weights)
        nontrainable = sum(int(np.prod(w.shape)) for w in layer.non_trainable_weights)
        assert (trainable, nontrainable) == (n.trainable, n.nontrainable), n.name
        assert tuple(layer.output.shape[1:]) == n.out_shape, n.name
    assert k.count_params() == m.params


@needs_both
def test_hard_sigmoid_is_relu6_of_x_plus_3_over_6_in_both():
    """Keras 3's hard_sigmoid (not Keras 2's 0.2 x + 0.5) and PyTorch's Hardsigmoid."""
    import keras
    import torch

    x = np.linspace(-5, 5, 10001)
    expected = np.minimum(np.maximum(x + 3, 0), 6) / 6
    assert np.array_equal(np.asarray(keras.activations.hard_sigmoid(x)), expected)
    assert np.array_equal(torch.nn.functional.hardsigmoid(torch.from_numpy(x)).numpy(), expected)
    silu = x * expected
    assert np.allclose(np.asarray(keras.activations.hard_silu(x)), silu, rtol=0, atol=1e-15)
    assert np.allclose(torch.nn.functional.hardswish(torch.from_numpy(x)).numpy(), silu, atol=1e-15)
