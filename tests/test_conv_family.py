"""The convolution family beyond `C`: grouped, depthwise, separable and transposed
convolutions. Shapes and counts against the rules each kind states; the Keras
build's output shape against the IR's; float64 equivalence in both directions
(Keras weights -> PyTorch and PyTorch weights -> Keras); the user's errors.

The transposed convolution is checked over a grid (kernels 1..5, strides 1..3,
`same`, `valid` and explicit padding, every output padding Keras allows, inputs
5..8): Keras with the TensorFlow backend is the ground truth for its output size
and values, including where `same` crops one cell more at the end than at the
start. Height and width are independent axes, so each model checks two
configurations at once (a non-square kernel and input).
"""

from __future__ import annotations

import importlib.util
from fractions import Fraction

import numpy as np
import pytest

from archc.ir.kinds import DepthwiseConv2D, SeparableConv2D, Weight
from archc.ir.shapes import ShapeError
from backends import transfer
from tests.helpers import compile_str, error

HAS_BOTH = importlib.util.find_spec("keras") and importlib.util.find_spec("torch")
needs_both = pytest.mark.skipif(not HAS_BOTH, reason="needs keras and torch")


def _model(body: str, shape: tuple[int, ...]):
    return compile_str(f"model conv_family\ninput {'*'.join(map(str, shape))}\n{body}\n")


def _node(model):
    (node,) = [n for n in model.nodes if n.name == "t"]
    return node


def _equivalent_both_ways(model) -> None:
    """float64 equivalence, Keras -> PyTorch and PyTorch -> Keras, node by node,
    and the Keras build's output shape is the IR's."""
    from archc import equiv
    from backends.runtime import build_keras, build_torch

    models = (build_keras(model, "float64"), build_torch(model, "float64"))
    assert tuple(models[0].output_shape[1:]) == model.nodes[-1].out_shape
    for direction in ("keras2torch", "torch2keras"):
        result = equiv.check(
            model, dtype="float64", batch=2, direction=direction, models=models, nodes=True
        )
        assert result.ok and result.first_divergence is None, equiv.report(model, result)


# ---- transposed convolution: the grid ------------------------------------------------------

# (kernel h, kernel w) with (input h, input w): every kernel 1..5 and input 5..8
KERNELS_INPUTS = [((1, 2), (5, 6)), ((3, 4), (7, 8)), ((5, 3), (8, 5))]


def _options(padding: str, output_padding: int | None) -> str:
    op = "" if output_padding is None else f", output_padding: {output_padding}"
    return f"{padding}{op}"


def _keras_refuses(padding, kernel, stride, output_padding, shape) -> bool:
    """Whether Keras (TensorFlow backend) refuses this transposed convolution."""
    import keras

    layer = keras.layers.Conv2DTranspose(
        2, kernel, strides=stride, padding=padding, output_padding=output_padding
    )
    try:
        layer(np.zeros((1, *shape), dtype="float32"))
    except Exception:  # noqa: BLE001 - Keras and TensorFlow raise several types
        return True
    return False


def _grid():
    for padding in ("same", "valid"):
        for s in (1, 2, 3):
            for op in (None, *range(s)):
                for kernel, hw in KERNELS_INPUTS:
                    yield padding, s, op, kernel, hw


def _ct(padding, s, op, kernel, hw, channels=2):
    body = f"CT(3*{kernel[0]}*{kernel[1]}, s{s}, {_options(padding, op)}) as t"
    return body, (*hw, channels)


@needs_both
@pytest.mark.parametrize(
    ("padding", "s", "op", "kernel", "hw"),
    list(_grid()),
    ids=lambda v: str(v).replace(" ", ""),
)
def test_transposed_grid_matches_keras(padding, s, op, kernel, hw):
    body, shape = _ct(padding, s, op, kernel, hw)
    refused = _keras_refuses(padding, kernel, s, op, shape)
    if refused:  # archc refuses exactly what Keras refuses, as the user's error
        d = error(f"input {'*'.join(map(str, shape))}\n{body}")
        assert d.code == "E401"
        return
    model = _model(body, shape)
    _equivalent_both_ways(model)


@needs_both
@pytest.mark.parametrize("s", [1, 2, 3])
@pytest.mark.parametrize("pad", [0, 1, 2])
def test_transposed_explicit_padding_is_pytorchs(s, pad):
    """`pP` and `output_padding:` mean PyTorch's padding and output_padding: the
    output length is (n - 1) * s + k - 2P + op, in both builds."""
    import torch

    for op in range(s):
        for kernel, hw in KERNELS_INPUTS:
            body = f"CT(3*{kernel[0]}*{kernel[1]}, s{s}, p{pad}, output_padding: {op}) as t"
            layer = torch.nn.ConvTranspose2d(2, 3, kernel, s, pad, op)
            expected = tuple(layer(torch.zeros(1, 2, *hw)).shape[2:])
            model = _model(body, (*hw, 2))
            assert _node(model).out_shape == (*expected, 3)
            _equivalent_both_ways(model)


@needs_both
def test_transposed_unequal_strides_and_a_fused_activation():
    _equivalent_both_ways(_model("CT(4*4*3, s(2,3), same, relu) as t", (6, 5, 2)))
    _equivalent_both_ways(_model("CT(4*3*3, s(3,1), valid, nobias) as t", (5, 7, 2)))


def test_transposed_even_kernel_same_keeps_keras_alignment():
    """k=4, s=1, `same`: TensorFlow crops 1 cell at the start and 2 at the end; PyTorch's
    padding=1 crops 1 and 1, so the build cuts the last cell too (padding=2 with
    output_padding=1 would be the shifted output Keras's own PyTorch backend had)."""
    from backends.pytorch.generator import generate

    model = _model("CT(3*4*4, s1, same) as t", (5, 5, 2))
    assert _node(model).out_shape == (5, 5, 3)
    lines = [line.strip() for line in generate(model).splitlines()]
    assert "self.t = CroppedConvTranspose2d(2, 3, 4, padding=1, crop=(1, 1))" in lines


def test_transposed_counts_per_input_pixel():
    t = _node(_model("CT(5*3*2, s2, same) as t", (4, 6, 3)))
    assert t.out_shape == (8, 12, 5)
    assert (t.trainable, t.nontrainable) == (3 * 2 * 5 * 3 + 5, 0)
    assert t.macs == 4 * 6 * 3 * 2 * 3 * 5


def test_transposed_receptive_field_has_fractional_jumps():
    m = _model("CT(1*3*3, s2, same) C(1*3*3, same) CT(1*2*2, s3, valid) as t", (8, 8, 1))
    rfs = [(n.rf.size, n.rf.jump) for n in m.nodes[1:]]
    half, sixth = Fraction(1, 2), Fraction(1, 6)
    assert rfs == [
        ((2, 2), (half, half)),  # ceil(3/2) = 2 input cells, half a pixel apart
        ((3, 3), (half, half)),  # 2 more cells, each half a pixel
        ((3, 3), (sixth, sixth)),  # a 2-kernel at stride 3 sees one cell
    ]
    assert m.model_dump(mode="json")["nodes"][1]["rf"]["jump"] == ["1/2", "1/2"]


@pytest.mark.parametrize(
    ("body", "code", "what"),
    [
        ("CT(3*3*3, s2, same, output_padding: 2)", "E401", "less than the stride 2"),
        ("CT(3*4*4, s1, same, output_padding: 0)", "E401", "does not map back"),
        ("CT(3*3*3, s2, dilation: 2)", "E307", "cannot be dilated"),
        ("CT(3*3*3, s2, output_padding: -1)", "E307", "non-negative"),
        ("CT(3*3*3, s1, p5)", "E401", "leaves no output"),
    ],
)
def test_transposed_errors(body, code, what):
    d = error(f"input 6*6*2\n{body}")
    assert d.code == code and what in d.message, d.message


@pytest.mark.parametrize(
    "spelling", ["CT", "ConvT", "Conv2DTranspose", "ConvTranspose2d", "deconv"]
)
def test_transposed_spellings(spelling):
    assert _node(_model(f"{spelling}(4*3*3, s2, same) as t", (5, 5, 1))).kind == "transposed"


# ---- grouped convolution ---------------------------------------------------------------------


def test_grouped_counts_divide_by_groups():
    t = _node(_model("C(128*3*3, s1, same, groups: 32) as t", (8, 8, 64)))
    assert t.trainable == 3 * 3 * 2 * 128 + 128
    assert t.macs == 8 * 8 * 128 * 3 * 3 * 64 // 32
    assert t.weights([(8, 8, 64)])[0].shape == (3, 3, 2, 128)


@pytest.mark.parametrize(
    ("body", "what"),
    [
        (
            "C(6*3*3, groups: 4)",
            "4 groups must divide both the input channels (8) and the filters (6)",
        ),
        ("C(8*3*3, groups: 3)", "3 groups must divide"),
    ],
)
def test_grouped_channels_must_divide(body, what):
    d = error(f"input 6*6*8\n{body}")
    assert d.code == "E401" and what in d.message, d.message


@needs_both
@pytest.mark.parametrize(
    ("body", "shape"),
    [
        ("C(6*3*3, s2, same, groups: 2) as t", (7, 7, 4)),
        ("C(8*1*1, groups: 4, nobias) as t", (5, 5, 8)),
        ("C(6*4*4, same, groups: 3, relu) as t", (6, 6, 3)),  # uneven `same` padding
        ("C(4*3*2, p1, groups: 2, dilation: 2) as t", (7, 6, 2)),
    ],
)
def test_grouped_equivalence(body, shape):
    _equivalent_both_ways(_model(body, shape))


# ---- depthwise convolution -------------------------------------------------------------------


def test_depthwise_layout_is_a_permutation_then_a_reshape():
    """Keras's (kh, kw, C, K) kernel is PyTorch's (C*K, 1, kh, kw) with output channel
    c*K + k; the transfer reshapes after permuting, and back."""
    kh, kw, c, k = 2, 3, 4, 3
    node = DepthwiseConv2D(name="t", kernel=(kh, kw), multiplier=k)
    (w, _bias) = node.weights([(6, 6, c)])
    keras = np.arange(kh * kw * c * k, dtype=float).reshape(kh, kw, c, k)
    torch_layout = transfer._to_torch_layout(w, keras)
    assert torch_layout.shape == (c * k, 1, kh, kw)
    for ci in range(c):
        for ki in range(k):
            assert (torch_layout[ci * k + ki, 0] == keras[:, :, ci, ki]).all()
    assert (transfer._to_keras_layout(w, torch_layout) == keras).all()


def test_a_weight_without_torch_shape_keeps_its_layout():
    w = Weight("kernel", "weight", (3, 3, 2, 4), to_torch=(3, 2, 0, 1))
    a = np.arange(72, dtype=float).reshape(3, 3, 2, 4)
    assert (transfer._to_keras_layout(w, transfer._to_torch_layout(w, a)) == a).all()


def test_depthwise_counts():
    t = _node(_model("DW(3*3, s2, same, multiplier: 3) as t", (7, 7, 4)))
    assert t.out_shape == (4, 4, 12)
    assert (t.trainable, t.macs) == (3 * 3 * 12 + 12, 4 * 4 * 12 * 3 * 3)
    t = _node(_model("DWConv(kernel: 5*3, nobias) as t", (7, 7, 2)))
    assert (t.out_shape, t.trainable) == ((3, 5, 2), 5 * 3 * 2)


@needs_both
@pytest.mark.parametrize(
    ("body", "shape"),
    [
        ("DW(3*3, s1, same) as t", (6, 6, 3)),
        ("DW(3*3, s2, same, multiplier: 2, relu) as t", (7, 7, 3)),
        ("DW(4*4, s2, same, multiplier: 3) as t", (8, 8, 2)),  # uneven `same` padding
        ("DepthwiseConv2D(3*2, p(1,0), nobias, multiplier: 2) as t", (6, 5, 3)),
        ("DW(3*3, valid, dilation: 2) as t", (8, 7, 2)),
    ],
)
def test_depthwise_equivalence(body, shape):
    _equivalent_both_ways(_model(body, shape))


@pytest.mark.parametrize("kernels", ["glorot", "he"])
def test_equiv_randomizes_a_depthwise_kernel_per_channel(kernels):
    """equiv's random kernels are Glorot-uniform, +-sqrt(6 / (fan-in + fan-out)), or
    He-uniform, +-sqrt(6 / fan-in); a depthwise kernel's fans are one channel's
    convolution's (kh*kw in, kh*kw*multiplier out), whatever the channel count, and
    a separable convolution's depthwise kernel's too."""
    from archc import equiv

    for channels in (8, 512):
        model = _model(
            "DW(3*3, s1, same, multiplier: 2) as t SC(4*3*3, s1, same) as s C(4*3*3) as c",
            (6, 6, channels),
        )
        zeros = {
            f"{n.name}/{w.role}": np.zeros(w.shape)
            for n in model.nodes
            for w in n.weights(n.in_shapes)
        }
        values = equiv.randomize(model, zeros, seed=0, kernels=kernels)
        for key, fan_in, fan_out in (
            ("t/kernel", 9, 9 * 2),
            ("s/depthwise_kernel", 9, 9),
            ("s/pointwise_kernel", 2 * channels, 4),
            ("c/kernel", 9 * 4, 9 * 4),
        ):
            limit = np.sqrt(6.0 / (fan_in + fan_out if kernels == "glorot" else fan_in))
            v = values[key]
            assert np.abs(v).max() <= limit and np.abs(v).max() > 0.8 * limit, key


@needs_both
def test_a_deep_depthwise_stack_keeps_the_output_input_dependent():
    """Twelve depthwise layers on 256 channels (a MobileNet's depth): with Keras's
    fans (kh*kw*C in) each scaled the variance by about 2/C, and the check failed
    for an output that was the same for every input."""
    body = "{ DW(3*3, s1, same, nobias) B A(relu6) C(256*1*1, s1, same, nobias) B A(relu6) } x12"
    _equivalent_both_ways(_model(body + " GAP Dense(4)", (4, 4, 256)))


# ---- separable convolution -------------------------------------------------------------------


def test_separable_counts_and_tensors():
    t = _node(_model("SC(16*3*3, s1, same, multiplier: 2) as t", (6, 6, 4)))
    assert t.trainable == 3 * 3 * 4 * 2 + 8 * 16 + 16
    assert t.macs == 6 * 6 * 8 * 3 * 3 + 6 * 6 * 8 * 16
    node = SeparableConv2D(name="t", filters=16, kernel=(3, 3), multiplier=2)
    assert [(w.role, w.torch, w.shape) for w in node.weights([(6, 6, 4)])] == [
        ("depthwise_kernel", "depthwise.weight", (3, 3, 4, 2)),
        ("pointwise_kernel", "pointwise.weight", (1, 1, 8, 16)),
        ("bias", "pointwise.bias", (16,)),
    ]


@needs_both
@pytest.mark.parametrize(
    ("body", "shape"),
    [
        ("SC(5*3*3, s1, same) as t", (6, 6, 3)),
        ("SepConv(4*3*3, s2, same, multiplier: 2, relu) as t", (8, 8, 3)),  # uneven padding
        ("SeparableConv2D(3*2*3, valid, nobias) as t", (6, 7, 2)),
        ("SC(4*3*3, p1, dilation: 2, multiplier: 3) as t", (7, 7, 2)),
    ],
)
def test_separable_equivalence(body, shape):
    _equivalent_both_ways(_model(body, shape))


@needs_both
def test_the_family_in_one_network_and_a_block():
    """Shared block functions over different channel counts, and every kind in a row."""
    spec = (
        "block Sep(f) { SC(f*3*3, same) B A(relu) }\n"
        "C(8*3*3, same, groups: 1) Sep(8) Sep(12) DW(3*3, s2, same, multiplier: 2)\n"
        "C(8*1*1, groups: 4) CT(4*3*3, s2, same) as t"
    )
    _equivalent_both_ways(_model(spec, (8, 8, 3)))


# ---- the user's errors for depthwise and separable --------------------------------------------


@pytest.mark.parametrize(
    ("body", "code", "what"),
    [
        ("DW(3*3, s(2,1))", "E304", "the same stride along height and width"),
        ("SC(4*3*3, stride: [1, 2])", "E304", "the same stride along height and width"),
        ("DW(4*3*3)", "E303", "kernel size kh*kw"),
        ("DW(3*3, filters: 4)", "E302", "has no option `filters`"),
        ("DW(3*3, multiplier: 0)", "E", "multiplier"),
        ("SC(4*3*3, s2, dilation: 2)", "E304", "both a stride and a dilation"),
        ("DW", "E303", "needs its kernel: `DW(kh*kw, ...)`"),
        ("C(4*3*3, groups: 0)", "E", "groups"),
        ("SC(4*3*3, l2: 0.01)", "E302", "has no option `l2`"),
    ],
)
def test_family_errors(body, code, what):
    d = error(f"input 6*6*2\n{body}")
    assert d.code.startswith(code) and what in d.message, (d.code, d.message)


def test_unequal_strides_are_refused_with_the_reason():
    d = error("input 6*6*2\nDW(3*3, s(2,1))")
    assert "TensorFlow" in d.hint


def test_shape_error_is_raised_by_the_rule_itself():
    from archc.ir.kinds import transpose_axis

    with pytest.raises(ShapeError):
        transpose_axis(5, 4, 1, "same", 0)
    assert transpose_axis(5, 4, 1, "same", None) == (5, 1, 0, 1)
    assert transpose_axis(5, 3, 2, "same", None) == (10, 0, 0, 1)
    assert transpose_axis(5, 3, 2, "same", 0) == (9, 1, 0, 0)
    assert transpose_axis(5, 1, 3, "valid", None) == (15, 0, 2, 0)


# ---- training: weight decay reaches the same kernels in both builds ----------------------------


@needs_both
@pytest.mark.parametrize("optimizer", ["adam", "adamw"])
def test_weight_decay_reaches_the_same_kernels(optimizer):
    """Keras names a separable convolution's kernels `depthwise_kernel` and
    `pointwise_kernel`: the compile helper decays them as PyTorch decays
    `depthwise.weight` and `pointwise.weight`; biases decay in neither."""
    from archc.train.recipe import recipe_of, torch_weight_decay
    from backends.keras.generator import generate
    from backends.runtime import build_torch, load_source

    model = compile_str(
        "model sep_decay\ninput 6*6*2\n"
        "SC(4*3*3, same, multiplier: 2) DW(3*3) CT(2*3*3, s2, same) C(2*1*1, groups: 2)\n"
        f"train {{\n    optimizer: {optimizer}\n    weight_decay: 0.0002\n}}\n"
    )
    module = load_source(generate(model), "archc_keras_sep_decay")
    kmodel = module.build_sep_decay()
    module.compile_sep_decay(kmodel)
    if optimizer == "adamw":
        decays = kmodel.optimizer._use_weight_decay  # Keras's own test of a variable
        keras_decayed = {v.path for v in kmodel.trainable_variables if decays(v)}
    else:
        keras_decayed = {v.path for v in kmodel.trainable_variables if v.regularizer is not None}
    tmodel = build_torch(model, "float32")
    r = recipe_of(model)
    torch_decayed = {
        name for name, p in tmodel.named_parameters() if torch_weight_decay(r, name, p.ndim)
    }
    expected_keras, expected_torch = set(), set()
    for node in model.nodes:
        for w in node.weights(list(node.in_shapes)):
            if w.role.endswith("kernel"):
                expected_keras.add(f"{node.name}/{w.role}")
                expected_torch.add(f"{node.name}.{w.torch}")
    assert len(expected_keras) == 5
    assert keras_decayed == expected_keras
    assert torch_decayed == expected_torch
    # `archc train`'s Keras trainer decays the same variables as the generated helper
    import keras

    from backends.keras.train import apply_weight_decay, make_optimizer

    fresh = module.build_sep_decay()
    apply_weight_decay(keras, fresh, r)
    opt = make_optimizer(keras, fresh, r)
    opt.build(fresh.trainable_variables)
    if optimizer == "adamw":
        trainer_decayed = {v.path for v in fresh.trainable_variables if opt._use_weight_decay(v)}
    else:
        trainer_decayed = {v.path for v in fresh.trainable_variables if v.regularizer is not None}
    assert trainer_decayed == expected_keras
