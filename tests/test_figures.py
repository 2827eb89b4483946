"""The figures the seeds print, computed by the report (issue: 'Figures that must
come out exactly')."""

from __future__ import annotations

import pytest

from tests.helpers import compile_str


def test_fully_connected_mnist_net():
    """Seed 000: 784x128 w + 128 b, 128x10 w + 10 b: 101,770."""
    m = compile_str("input 28*28*1\nFlatten\nDense(128, relu)\nDense(10, softmax)")
    assert m.params == 101_770


def test_lenet5_of_the_notes():
    m = compile_str("""input 28*28*1
        C(6*5*5, s1, same, tanh) P(max,2,2) C(16*5*5, s1, valid, tanh) P(max,2,2)
        Flatten Dense(120, tanh) Dense(84, tanh) Dense(10, softmax)""")
    assert m.params == 61_706
    assert [n.params for n in m.nodes if n.params] == [156, 2416, 48120, 10164, 850]


def test_lenet5_of_the_book_with_c5():
    m = compile_str("""input 28*28*1
        C(6*5*5, s1, same, tanh) P(avg,2,2) C(16*5*5, s1, valid, tanh) P(avg,2,2)
        C(120*5*5, s1, valid, tanh) Flatten Dense(84, tanh) Dense(10, softmax)""")
    assert m.params == 61_706
    assert m.node("c3").out_shape == (1, 1, 120)


ALEXNET_NOTES = """input 227*227*3
C(96*11*11, s4, valid, relu) B P(max, 3, 2)
C(256*5*5, s1, same, relu) B P(max, 3, 2)
C(384*3*3, s1, same, relu) B C(384*3*3, s1, same, relu) B
C(256*3*3, s1, same, relu) B P(max, 2, 2)
Flatten Dense(4096, tanh) D(0.5) Dense(4096, tanh) D(0.5) Dense(10, softmax)"""


def test_alexnet_of_the_notes():
    m = compile_str(ALEXNET_NOTES)
    assert (m.params, m.nontrainable) == (58_327_818, 2_752)
    # the per-layer figures of the notes' model.summary()
    assert [(n.out_shape, n.params) for n in m.nodes if n.kind in ("conv", "dense")] == [
        ((55, 55, 96), 34_944),
        ((27, 27, 256), 614_656),
        ((13, 13, 384), 885_120),
        ((13, 13, 384), 1_327_488),
        ((13, 13, 256), 884_992),
        ((4096,), 37_752_832),
        ((4096,), 16_781_312),
        ((10,), 40_970),
    ]


def test_alexnet_of_the_book():
    m = compile_str("""input 227*227*3
        C(96*11*11, s4, valid) A(relu) P(max, 3, 2) B
        C(256*5*5, s1, same) A(relu) P(max, 3, 2) B
        C(384*3*3, s1, same) A(relu) B C(384*3*3, s1, same) A(relu) B
        C(256*3*3, s1, same) A(relu) B P(max, 3, 2)
        Flatten Dense(4096, relu) D(0.5) Dense(4096, relu) D(0.5) Dense(1000, softmax)""")
    assert (m.params, m.trainable, m.nontrainable) == (62_383_848, 62_381_096, 2_752)


def test_vgg16():
    m = compile_str(
        'include "stdlib.cnn"\ninput 224*224*3\n'
        "VGGBlock(64,2) VGGBlock(128,2) VGGBlock(256,3) VGGBlock(512,3) "
        "VGGBlock(512,3) Flatten Dense(4096, relu) Dense(4096, relu) "
        "Dense(1000, softmax)"
    )
    assert m.params == 138_357_544


def test_one_by_one_reduction_cost_of_the_book():
    """Seed 004 §5.5.3: 32x32x200, 5x5 conv with 32 filters: 163,840,000
    multiplications; with a 16-filter 1x1 reduction first: 3,276,800 + 13,107,200."""
    direct = compile_str("input 32*32*200\nC(32*5*5, s1, same)")
    assert direct.macs == 163_840_000
    reduced = compile_str("input 32*32*200\nC(16*1*1, s1, same) C(32*5*5, s1, same)")
    assert [n.macs for n in reduced.nodes[1:]] == [3_276_800, 13_107_200]


@pytest.mark.parametrize("x", [5, 6, 10, 11, 32, 100])
def test_two_3x3_versus_one_5x5(x):
    """Seed 000: two stacked 3x3 convolutions see 5x5 like one 5x5 convolution,
    with 18 weights instead of 25; on an x*x*1 input (stride 1, valid) they cost
    18x²-108x+180 and 25x²-200x+400 multiplications."""
    two = compile_str(f"input {x}*{x}*1\nC(1*3*3, s1, valid, nobias) C(1*3*3, s1, valid, nobias)")
    one = compile_str(f"input {x}*{x}*1\nC(1*5*5, s1, valid, nobias)")
    assert two.nodes[-1].rf.size == one.nodes[-1].rf.size == (5, 5)
    assert (two.params, one.params) == (18, 25)
    assert two.macs == 18 * x * x - 108 * x + 180
    assert one.macs == 25 * x * x - 200 * x + 400
    assert (two.macs < one.macs) == (x > 10)  # the slide: better when x > 10
