"""Upsampling `Up`, resizing `Resize`, cropping `Crop`, channel shuffle and split,
and PyTorch's ceil-mode pooling: spellings, user errors, shape rules against
PyTorch, receptive fields, Keras's layer shapes against the IR, and float64
equivalence of the two builds in both directions over grids of sizes and factors.
"""

from __future__ import annotations

import itertools
import re
from fractions import Fraction

import pytest

from archc.ir.shapes import ShapeError, ceil_window_output
from tests.helpers import HAS_KERAS, HAS_TORCH, compile_str, errors

HAS_BOTH = HAS_KERAS and HAS_TORCH
needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="needs torch")
needs_keras = pytest.mark.skipif(not HAS_KERAS, reason="needs keras")
needs_both = pytest.mark.skipif(not HAS_BOTH, reason="needs keras and torch")


def _node(body: str, shape: str = "8*8*4"):
    model = compile_str(f"input {shape}\n{body} as t\n")
    (node,) = [n for n in model.nodes if n.name == "t"]
    return node


# ---- spellings ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, factor, interpolation",
    [
        ("Up", (2, 2), "nearest"),
        ("Up(2)", (2, 2), "nearest"),
        ("Up(3)", (3, 3), "nearest"),
        ("UpSampling2D(2)", (2, 2), "nearest"),
        ("Up(2, bilinear)", (2, 2), "bilinear"),
        ("Up([2, 3])", (2, 3), "nearest"),
        ("Up(size: [2, 3])", (2, 3), "nearest"),
        ("Up(size: 2, interpolation: bilinear)", (2, 2), "bilinear"),
        ("Up(bilinear)", (2, 2), "bilinear"),
    ],
)
def test_upsample_spellings(text, factor, interpolation):
    n = _node(text)
    assert (n.kind, n.factor, n.interpolation) == ("upsample", factor, interpolation)
    assert n.out_shape == (8 * factor[0], 8 * factor[1], 4)


@pytest.mark.parametrize(
    "text, size, interpolation",
    [
        ("Resize(5, 7)", (5, 7), "bilinear"),
        ("Resizing(64, 64, bilinear)", (64, 64), "bilinear"),
        ("Resize(3, 9, nearest)", (3, 9), "nearest"),
        ("Resize(height: 2, width: 3, interpolation: nearest)", (2, 3), "nearest"),
    ],
)
def test_resize_spellings(text, size, interpolation):
    n = _node(text)
    assert (n.kind, n.size, n.interpolation, n.out_shape) == (
        "resize",
        size,
        interpolation,
        (*size, 4),
    )


@pytest.mark.parametrize(
    "text, crop, out",
    [
        ("Crop(2)", (2, 2, 2, 2), (4, 4, 4)),
        ("Crop(1, 2)", (1, 1, 2, 2), (6, 4, 4)),
        ("Crop(1, 0, 2, 3)", (1, 0, 2, 3), (7, 3, 4)),
        ("Cropping2D(0)", (0, 0, 0, 0), (8, 8, 4)),
    ],
)
def test_crop_spellings(text, crop, out):
    n = _node(text)
    assert (n.kind, n.crop, n.out_shape) == ("crop", crop, out)


def test_shuffle_and_split_spellings():
    for text in ("Shuffle(2)", "ChannelShuffle(2)", "ChannelShuffle(groups: 2)"):
        n = _node(text)
        assert (n.kind, n.groups, n.out_shape) == ("shuffle", 2, (8, 8, 4))
    for text, take in (("Split(2, 0)", 0), ("ChannelSplit(parts: 2, take: 1)", 1)):
        n = _node(text)
        assert (n.kind, n.parts, n.take, n.out_shape) == ("split", 2, take, (8, 8, 2))


@pytest.mark.parametrize(
    "text, ceil",
    [
        ("P(max, 3, 2, ceil)", True),
        ("P(avg, 3, 2, p1, ceil)", True),
        ("P(max, 3, 2, ceil: yes)", True),
        ("P(max, 3, 2, ceil_mode: no)", False),
        ("MaxPool(3, 2, ceil)", True),
    ],
)
def test_ceil_pool_spellings(text, ceil):
    n = _node(text)
    assert (n.kind, n.ceil) == ("pool", ceil)
    assert n.describe().endswith(", ceil") == ceil


def test_a_shufflenet_unit():
    model = compile_str(
        "input 8*8*8\nconcat { Split(2, 0) | Split(2, 1) C(4*1*1) B A(relu) } Shuffle(2)\n"
    )
    assert model.nodes[-1].kind == "shuffle" and model.nodes[-1].out_shape == (8, 8, 8)
    splits = [n for n in model.nodes if n.kind == "split"]
    assert [(n.take, n.inputs) for n in splits] == [(0, ("input",)), (1, ("input",))]


# ---- generated lines --------------------------------------------------------------------


@pytest.mark.parametrize(
    "body, shape, keras, torch",
    [
        (
            "Up(2)",
            "4*4*1",
            ['x = layers.UpSampling2D(2, name="t")(x)'],
            ["self.t = nn.Upsample(scale_factor=2)"],
        ),
        (
            "Up(2, bilinear)",
            "4*3*1",
            ['x = BilinearResize2D((8, 6), name="t")(x)'],
            ['self.t = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)'],
        ),
        (
            "Resize(5, 7)",
            "7*5*1",
            ['x = BilinearResize2D((5, 7), name="t")(x)'],
            ['self.t = nn.Upsample(size=(5, 7), mode="bilinear", align_corners=False)'],
        ),
        (
            "Crop(2)",
            "8*8*1",
            ['x = layers.Cropping2D(2, name="t")(x)'],
            ["self.t = Crop2d(2, 2, 2, 2)"],
        ),
        (
            "Shuffle(2)",
            "3*5*6",
            ['x = ChannelShuffle(2, name="t")(x)'],
            ["self.t = nn.ChannelShuffle(2)"],
        ),
        (
            "P(max, 3, 2, ceil)",
            "8*8*1",
            [
                'x = NegInfPadding2D(((0, 1), (0, 1)), name="t.pad")(x)',
                'x = layers.MaxPooling2D(3, strides=2, name="t")(x)',
            ],
            ["self.t = nn.MaxPool2d(3, stride=2, ceil_mode=True)"],
        ),
        (
            "P(avg, 3, 2, p1, ceil)",
            "8*9*1",
            [
                'x = layers.ZeroPadding2D(1, name="t.pad")(x)',
                'x = CeilAveragePooling2D((3, 3), strides=(2, 2), overhang=(1, 0), name="t")(x)',
            ],
            ["self.t = nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True)"],
        ),
        (
            "P(avg, 3, 2, ceil)",
            "9*9*1",  # no overhang: a plain valid pooling
            ['x = layers.AveragePooling2D(3, strides=2, name="t")(x)'],
            ["self.t = nn.AvgPool2d(3, stride=2, ceil_mode=True)"],
        ),
    ],
)
def test_generated_lines(body, shape, keras, torch):
    from backends.keras.generator import generate as keras_source
    from backends.pytorch.generator import generate as torch_source

    model = compile_str(f"input {shape}\n{body} as t\n")
    keras_lines = [line.strip() for line in keras_source(model).splitlines()]
    torch_lines = [line.strip() for line in torch_source(model).splitlines()]
    start = keras_lines.index(keras[0])
    assert keras_lines[start : start + len(keras)] == keras
    for line in torch:
        assert line in torch_lines


# ---- the user's errors ----------------------------------------------------------------


@pytest.mark.parametrize(
    "text, message",
    [
        ("Up(0)", "the upsampling factor must be a positive integer"),
        ("Up(1.5)", "the upsampling factor must be a positive integer"),
        ("Up(2, bicubic)", "unknown interpolation `bicubic`"),
        ("Up(2, 3)", "the upsampling factor is given twice"),
        ("Up(2, nearest, bilinear)", "interpolation is given twice"),
        ("Resize(64)", "needs the output height and width"),
        ("Resize(64, 0)", "must be a positive integer"),
        ("Resize(4, 4, area)", "unknown interpolation `area`"),
        ("Crop(1, 2, 3)", "takes 1 (all sides), 2 (height, width) or 4"),
        ("Crop(-1)", "cropping must be a non-negative integer"),
        ("Shuffle", "needs the number of groups"),
        ("Shuffle(0)", "the number of groups must be a positive integer"),
        ("Split(2)", "needs the number of parts and the part to take"),
        ("Split(2, 2)", "there is no part 2 of 2"),
        ("P(max, 3, 2, same, ceil)", "`ceil` pooling needs valid or explicit padding"),
        ("P(max, 3, 2, ceil, ceil)", "ceil is given twice"),
        ("Cropping1D(1)", "unknown layer or block `Cropping1D`"),
    ],
)
def test_bad_arguments_are_located_errors(text, message):
    (d,) = errors(f"input 8*8*4\n{text}\n")
    assert message in d.message, d.render()
    assert d.span is not None and d.span.line == 2


@pytest.mark.parametrize(
    "text, message",
    [
        ("Crop(4)", "leaves nothing of 8 x 8 x 4"),
        ("Crop(0, 0, 5, 3)", "leaves nothing"),
        ("Shuffle(3)", "channels (4) to be a multiple of the groups (3)"),
        ("Split(3, 0)", "channels (4) to be a multiple of the parts (3)"),
        ("P(max, 9, 2, p5, ceil)", "must be at most half the kernel"),
        ("Flatten Up(2)", "needs a feature map"),
    ],
)
def test_shapes_that_do_not_fit(text, message):
    (d,) = errors(f"input 8*8*4\n{text}\n")
    assert d.code == "E401" and message in d.message, d.render()


# ---- shape rules ----------------------------------------------------------------------


CEIL_GRID = [
    (n, k, s, p)
    for n, k, s in itertools.product(range(1, 13), range(1, 5), range(1, 4))
    for p in range(k // 2 + 1)
]


@needs_torch
def test_ceil_pool_shape_is_torchs():
    import torch
    import torch.nn.functional as F

    x = torch.zeros(1, 1, 12, 12)
    checked = 0
    for n, k, s, p in CEIL_GRID:
        try:
            theirs = F.max_pool2d(x[..., :n, :n], k, s, p, ceil_mode=True).shape[-1]
        except RuntimeError:
            theirs = None
        try:
            ours = ceil_window_output(n, k, s, (p, p))
        except ShapeError:
            ours = None
        assert ours == theirs, (n, k, s, p)
        checked += ours is not None
    assert checked > 200


def test_ceil_pool_shape_rule_by_hand():
    # 8, window 3, stride 2: floor mode 3, ceil mode 4 (GoogLeNet's stem: 112 -> 56)
    assert ceil_window_output(8, 3, 2, (0, 0)) == 4
    assert ceil_window_output(112, 3, 2, (0, 0)) == 56
    # the last window would start in the right padding only: PyTorch drops it
    assert ceil_window_output(5, 2, 2, (1, 1)) == 3
    assert _node("P(max, 2, 2, p1, ceil)", "5*6*1").out_shape == (3, 4, 1)
    # a window longer than the input still gives one output, as in PyTorch
    assert _node("P(max, 9, 2, ceil)").out_shape == (1, 1, 4)
    (d,) = errors("input 2*2*1\nP(max, 5, 1, ceil)\n")
    assert d.code == "E401" and "no window of 5 starts inside an input of 2" in d.message


# ---- receptive fields -----------------------------------------------------------------


def _rf(body, shape="6*6*1"):
    n = _node(body, shape)
    return tuple(n.rf.size), tuple(n.rf.jump)


def test_receptive_fields():
    half, third = Fraction(1, 2), Fraction(1, 3)
    # nearest: one input cell; the jump divided by the factor, exactly
    assert _rf("C(1*3*3) Up([2, 3])") == ((3, 3), (half, third))
    # bilinear: the 2 nearest input cells per axis (one more jump) on resampled axes
    assert _rf("C(1*3*3) Up([2, 1], bilinear)") == ((4, 3), (half, 1))
    # resize: jump * in / out, up or down
    assert _rf("Resize(9, 4)") == ((2, 2), (Fraction(6, 9), Fraction(6, 4)))
    assert _rf("Resize(9, 6, nearest)") == ((1, 1), (Fraction(2, 3), 1))
    assert _rf("Resize(6, 6)") == ((1, 1), (1, 1))  # the identity
    # crop, shuffle, split: pass through
    for body in ("C(4*3*3, s2) Crop(1)", "C(4*3*3, s2) Shuffle(2)", "C(4*3*3, s2) Split(2, 1)"):
        assert _rf(body, "9*9*1") == ((3, 3), (2, 2))
    # ceil pooling: the window's rule
    assert _rf("P(max, 3, 2, ceil)") == ((3, 3), (2, 2))


def test_no_parameters_no_macs():
    model = compile_str(
        "input 6*6*4\nUp(2, bilinear) Resize(5, 7) Crop(1) Shuffle(2) Split(2, 1) "
        "P(avg, 2, 2, ceil)\n"
    )
    for n in model.nodes[1:]:
        assert (n.trainable, n.nontrainable, n.macs) == (0, 0, 0)
        assert n.weights(list(n.in_shapes)) == ()


# ---- Keras's shapes are the IR's ------------------------------------------------------

ALL_KINDS = """
Up([2, 3], bilinear) as u1
Up(2) as u2
Resize(13, 9) as r1
Resize(5, 17, nearest) as r2
Crop(1, 0, 2, 3) as cr
P(max, 3, 2, ceil) as pm
P(avg, 3, 2, p1, ceil) as pa
concat { Split(2, 0) as half0 | Split(2, 1) C(2*1*1) as c } Shuffle(2) as sh
"""


@needs_both
def test_keras_layer_shapes_are_the_irs():
    import torch

    from backends.runtime import build_keras, build_torch

    ir = compile_str(f"input 7*5*4\n{ALL_KINDS}")
    km = build_keras(ir, "float64")
    tm = build_torch(ir, "float64")
    modules = dict(tm.named_modules())
    x = torch.zeros(1, 4, 7, 5, dtype=torch.float64)
    seen = {}
    for n in ir.nodes[1:]:
        if n.name in modules:
            modules[n.name].register_forward_hook(
                lambda m, i, o, name=n.name: seen.__setitem__(name, tuple(o.shape))
            )
    tm(x)
    for n in ir.nodes[1:]:
        if n.kind == "concat":
            continue
        assert tuple(km.get_layer(n.name).output.shape) == (None, *n.out_shape), n.name
        h, w, c = n.out_shape
        assert seen[n.name] == (1, c, h, w), n.name


# ---- equivalence in float64, both directions -------------------------------------------


def _equivalent(spec: str, name: str):
    from archc import equiv

    ir = compile_str(f"model {name}\n{spec}")
    for direction in ("keras2torch", "torch2keras"):
        result = equiv.check(ir, dtype="float64", batch=2, direction=direction, nodes=True)
        assert result.ok, equiv.report(ir, result)
        assert all(not n.problem for n in result.nodes), equiv.report(ir, result)
        assert len(result.nodes) >= 1


RESAMPLING = {  # input: a chain of resamplings, each compared node by node
    "5*7*2": "Resize(7, 5) Resize(5, 7) Resize(3, 11) Resize(7, 5, nearest) Resize(5, 7, nearest)",
    "7*5*2": "Up([2, 3], bilinear) Resize(9, 4) Up(3) Resize(2, 13, nearest) Resize(1, 1)",
    "1*3*1": "Up(2, bilinear) Resize(5, 2) Up([1, 2]) Resize(3, 4, nearest) Up(3, bilinear)",
    "6*6*3": "Resize(4, 4) Resize(6, 6) Resize(6, 6, nearest) Up([3, 1], bilinear) Resize(17, 5)",
}


@needs_both
@pytest.mark.parametrize("shape", sorted(RESAMPLING))
def test_resampling_is_equivalent(shape):
    _equivalent(f"input {shape}\n{RESAMPLING[shape]}\n", "resampling")


CEIL_CASES = [  # (h, w, k, s, p): overhangs, none, PyTorch's dropped last window
    (7, 8, 3, 2, 0),
    (8, 9, 3, 2, 1),
    (5, 6, 2, 2, 1),
    (10, 7, 4, 3, 2),
    (9, 9, 3, 3, 1),
    (6, 11, 2, 3, 0),
    (3, 4, 4, 2, 0),
]


@needs_both
@pytest.mark.parametrize("h, w, k, s, p", CEIL_CASES)
def test_ceil_pooling_is_equivalent(h, w, k, s, p):
    pad = f", p{p}" if p else ""
    _equivalent(
        f"input {h}*{w}*2\n"
        f"add {{ P(max, {k}, {s}{pad}, ceil) as mx | P(avg, {k}, {s}{pad}, ceil) as av }}\n",
        "ceil_pool",
    )


@needs_both
def test_shuffle_split_and_crop_are_equivalent():
    _equivalent(
        "input 9*8*6\n"
        "concat { Split(3, 0) Crop(2, 0, 1, 1) | Split(3, 2) C(4*3*3) A(relu) } as m\n"
        "Shuffle(3) as sh  Split(2, 1) as second  Shuffle(1)  Crop(2, 1)\n",
        "shuffle_net",
    )


@needs_keras
def test_bilinear_helper_is_keras_resizing():
    """The Keras build's BilinearResize2D computes what Keras's own Resizing and
    UpSampling2D(interpolation="bilinear") compute (those in float32 only)."""
    import numpy as np
    from keras import layers

    from backends.keras.generator import generate
    from backends.runtime import load_source

    module = load_source(generate(compile_str("input 2*2*1\nResize(3, 3)\n")), "bilinear")
    helper = module.BilinearResize2D  # as the generated module defines it
    rng = np.random.default_rng(0)
    for (h, w), size in [((5, 7), (7, 5)), ((7, 5), (3, 11)), ((1, 3), (4, 2)), ((4, 4), (8, 8))]:
        x = rng.standard_normal((2, h, w, 3)).astype("float32")
        ours = np.asarray(helper(size)(x))
        theirs = np.asarray(layers.Resizing(*size, interpolation="bilinear")(x))
        assert ours.shape == theirs.shape == (2, *size, 3)
        assert np.abs(ours - theirs).max() < 1e-5, ((h, w), size)
    x = rng.standard_normal((1, 3, 4, 2)).astype("float32")
    up = np.asarray(layers.UpSampling2D((2, 3), interpolation="bilinear")(x))
    assert np.abs(np.asarray(helper((6, 12))(x)) - up).max() < 1e-5


@needs_both
def test_a_unet_skip_is_equivalent():
    """U-Net's valid convolutions: the skip is cropped to meet the upsampled path."""
    _equivalent(
        "input 16*16*1\nC(4*3*3) A(relu) as e1\n"
        "concat { Crop(4) | P(max, 2, 2) C(8*3*3) A(relu) C(8*3*3) A(relu) Up(2, bilinear) "
        "C(4*1*1) }\nC(2*1*1)\n",
        "tiny_unet",
    )


@needs_keras
def test_keras_channel_shuffle_is_torchvisions_in_channels_last():
    """The Keras build's ChannelShuffle helper moves channel i*(C/g) + j to j*g + i,
    what torchvision's channel_shuffle does, at any height and width."""
    import numpy as np

    from backends.keras.generator import generate
    from backends.runtime import load_source

    module = load_source(generate(compile_str("input 2*2*4\nShuffle(2)\n")), "shuffle")
    rng = np.random.default_rng(0)
    for (h, w), c, g in [((3, 4), 12, 1), ((3, 4), 12, 3), ((1, 5), 12, 4), ((6, 2), 6, 6)]:
        shuffle = module.ChannelShuffle(g, dtype="float64")
        x = rng.standard_normal((2, h, w, c))
        ref = x.reshape(2, h, w, g, c // g).swapaxes(3, 4).reshape(2, h, w, c)
        assert np.array_equal(np.asarray(shuffle(x)), ref), (h, w, c, g)
        order = np.asarray(shuffle(np.arange(c, dtype="float64")[None, None, None]))
        assert order.ravel().tolist() == [i * (c // g) + j for j in range(c // g) for i in range(g)]


def test_a_shuffle_in_a_block_used_at_several_sizes_takes_no_opaque_parameter():
    """ShuffleNet's units: one block at 8 x 8 and at 4 x 4 is one function."""
    from backends import get

    text = (
        "model net\nblock Unit(ch) { concat { Split(2, 0) | Split(2, 1) C((ch//2)*1*1) } "
        "Shuffle(2) }\ninput 8*8*4\nUnit(4) P(max, 2, 2) Unit(4)\nGAP\n"
    )
    source = get("keras").generate(compile_str(text, name="net.cnn"))
    assert re.findall(r"^def (\w+)\((.*)\)", source, re.MULTILINE)[0] == ("unit", "x, *, name")
    assert 'x = ChannelShuffle(2, name=f"{name}.shuffle1")(x)' in source


@needs_torch
def test_torch_channel_shuffle_is_torchvisions():
    """nn.ChannelShuffle, which the PyTorch build writes, is torchvision's
    channel_shuffle: view (N, g, C/g, H, W), transpose(1, 2), flatten."""
    import torch

    x = torch.randn(2, 12, 3, 4, dtype=torch.float64)
    for g in (1, 2, 3, 4, 6, 12):
        ref = x.view(2, g, 12 // g, 3, 4).transpose(1, 2).reshape(2, 12, 3, 4)
        assert torch.equal(torch.nn.ChannelShuffle(g)(x), ref)
