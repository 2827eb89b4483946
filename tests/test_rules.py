"""Shape, parameter and MAC rules per layer kind, as parameter tables.

Shapes follow Keras: SAME = ceil(n/s), VALID = ceil((n-k+1)/s); explicit
padding as PyTorch: floor((n+2p-d(k-1)-1)/s)+1. Parameters as Keras counts
them (BN: 2C trainable + 2C non-trainable).
"""

from __future__ import annotations

import math

import pytest

from archc.ir.shapes import ShapeError, same_padding, window_output
from tests.helpers import compile_str, error


@pytest.mark.parametrize(
    "n, k, s, padding, d, out",
    [
        (32, 5, 1, "same", 1, 32),
        (32, 5, 1, "valid", 1, 28),
        (32, 3, 2, "same", 1, 16),
        (33, 3, 2, "same", 1, 17),  # ceil(33/2)
        (32, 3, 2, "valid", 1, 15),
        (33, 3, 2, "valid", 1, 16),  # ceil((33-3+1)/2)
        (227, 11, 4, "valid", 1, 55),
        (224, 7, 2, "same", 1, 112),
        (224, 7, 2, (3, 3), 1, 112),
        (112, 3, 2, (1, 1), 1, 56),  # torchvision stem
        (224, 7, 2, "valid", 1, 109),
        (109, 3, 2, "valid", 1, 54),  # the book's ResNet50
        (8, 2, 2, "same", 1, 4),
        (7, 2, 2, "same", 1, 4),
        (7, 2, 2, "valid", 1, 3),  # even k
        (5, 3, 1, "valid", 2, 1),
        (10, 3, 1, "same", 2, 10),
        (10, 3, 1, (2, 2), 2, 10),
        (1, 1, 1, "valid", 1, 1),
        (6, 3, 3, "valid", 1, 2),
    ],
)
def test_window_output(n, k, s, padding, d, out):
    assert window_output(n, k, s, padding, d) == out
    if padding == "valid":
        assert out == math.ceil((n - d * (k - 1)) / s)
    if padding == "same":
        assert out == math.ceil(n / s)


@pytest.mark.parametrize(
    "n, k, s, padding", [(4, 5, 1, "valid"), (2, 3, 1, (0, 0)), (3, 7, 2, "valid")]
)
def test_window_that_does_not_fit(n, k, s, padding):
    with pytest.raises(ShapeError):
        window_output(n, k, s, padding)


@pytest.mark.parametrize(
    "n, k, s, pads",
    [
        (32, 3, 1, (1, 1)),
        (32, 3, 2, (0, 1)),
        (33, 3, 2, (1, 1)),
        (32, 2, 2, (0, 0)),
        (7, 2, 2, (0, 1)),
        (224, 7, 2, (2, 3)),
        (5, 4, 1, (1, 2)),
    ],
)
def test_keras_same_padding_puts_the_odd_zero_after(n, k, s, pads):
    assert same_padding(n, k, s) == pads


# (layers on the given input, expected output shape, trainable, non-trainable, MACs)
RULES = [
    ("input 32*32*3\nC(6*5*5, s1, same)", (32, 32, 6), 456, 0, 32 * 32 * 6 * 5 * 5 * 3),
    ("input 32*32*3\nC(6*5*5, s1, valid)", (28, 28, 6), 456, 0, 28 * 28 * 6 * 75),
    ("input 32*32*3\nC(6*5*5, s1, same, nobias)", (32, 32, 6), 450, 0, 32 * 32 * 6 * 75),
    ("input 32*32*3\nC(64*1*7, s1, same)", (32, 32, 64), 64 * 7 * 3 + 64, 0, 32 * 32 * 64 * 7 * 3),
    ("input 32*32*3\nC(8*3*3, s(2,1), same)", (16, 32, 8), 224, 0, 16 * 32 * 8 * 27),
    ("input 32*32*3\nC(8*3*3, s1, valid, dilation=2)", (28, 28, 8), 224, 0, 28 * 28 * 8 * 27),
    ("input 32*32*3\nC(8*3*3, s1, p(1,0))", (32, 30, 8), 224, 0, 32 * 30 * 8 * 27),
    ("input 8*8*5\nB", (8, 8, 5), 10, 10, 0),
    ("input 7\nB", (7,), 14, 14, 0),
    ("input 8*8*5\nLRN", (8, 8, 5), 0, 0, 0),
    ("input 8*8*5\nA(prelu)", (8, 8, 5), 5, 0, 0),
    ("input 8*8*5\nA(leaky_relu, 0.1)", (8, 8, 5), 0, 0, 0),
    ("input 8*8*5\nP(max, 2, 2)", (4, 4, 5), 0, 0, 0),
    ("input 7*7*5\nP(max, 2, 2, same)", (4, 4, 5), 0, 0, 0),
    ("input 7*7*5\nP(avg, 3, 2)", (3, 3, 5), 0, 0, 0),
    ("input 112*112*64\nP(max, 3, 2, p1)", (56, 56, 64), 0, 0, 0),
    ("input 8*8*5\nGAP", (5,), 0, 0, 0),
    ("input 8*8*5\nD(0.5)", (8, 8, 5), 0, 0, 0),
    ("input 8*8*5\nFlatten", (320,), 0, 0, 0),
    ("input 320\nDense(10)", (10,), 3210, 0, 3200),
    ("input 320\nDense(10, bias: no)", (10,), 3200, 0, 3200),
    ("input 8*8*5\nZeroPad(1, 2)", (10, 12, 5), 0, 0, 0),
]


@pytest.mark.parametrize("text, shape, trainable, nontrainable, macs", RULES)
def test_layer_rules(text, shape, trainable, nontrainable, macs):
    n = compile_str(text).nodes[-1]
    assert (n.out_shape, n.trainable, n.nontrainable, n.macs) == (
        shape,
        trainable,
        nontrainable,
        macs,
    )


def test_merges():
    m = compile_str(
        "input 8*8*4\nconcat { C(2*1*1) | C(3*1*1) | identity }\nadd { C(9*1*1) | identity }\n"
    )
    assert m.node("cat1").out_shape == (8, 8, 9)
    assert m.node("add1").out_shape == (8, 8, 9)
    m = compile_str("input 10\nconcat { Dense(3) | Dense(4) }\n")
    assert m.output_shape == (7,)


@pytest.mark.parametrize(
    "text, what",
    [
        ("input 8*8*4\nadd { C(2*1*1) | identity }", "same shape"),
        ("input 8*8*4\nconcat { C(2*1*1, s2) | identity }", "same height and width"),
        ("input 8*8*4\nFlatten C(2*1*1)", "needs a feature map"),
        ("input 8*8*4\nFlatten GAP", "needs a feature map"),
        ("input 8*8*4\nDense(3)", "needs a vector"),
        ("input 2*2*4\nP(max, 3, 3)", "does not fit"),
        ("input 4*4*1\nP(max, 2, 2, p2)", "at most half the kernel"),
    ],
)
def test_shape_conflicts(text, what):
    d = error(text)
    assert d.code == "E401" and what in d.message


def test_receptive_field_and_jump():
    m = compile_str(
        "input 32*32*1\nC(1*3*3, s1, same) C(1*3*3, s1, same) P(max, 2, 2) C(1*3*3, s2, same) GAP"
    )
    assert [(n.rf.size, n.rf.jump) for n in m.nodes[:5]] == [
        ((1, 1), (1, 1)),
        ((3, 3), (1, 1)),
        ((5, 5), (1, 1)),
        ((6, 6), (2, 2)),
        ((10, 10), (4, 4)),
    ]
    assert m.nodes[-1].rf is None  # global pooling sees the whole input


def test_dilated_receptive_field():
    m = compile_str("input 32*32*1\nC(1*3*3, s1, same, dilation: 2)")
    assert m.nodes[1].rf.size == (5, 5)
