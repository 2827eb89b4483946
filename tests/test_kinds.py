"""One row per layer kind: everything archc states about the kind, checked at once.

Each row gives the kind's spelling in a spec, an input shape, and what must follow:
the output shape, trainable and non-trainable parameters, MACs, the receptive field
(size and jump, per axis), the line the Keras generator writes for it, the line the
PyTorch generator writes for it, and whether the two builds compute the same function
in float64 (`archc equiv`). The node under test is named `t` (`... as t`).

A layer kind without a row fails `test_every_kind_has_a_row`; a kind that does not
state one of its rules cannot be defined at all (`test_a_kind_must_state_every_rule`).
This is sqlglot's `validate_all(sql, write={...})` for layer kinds.
"""

from __future__ import annotations

import importlib.util
import pathlib
from fractions import Fraction
from typing import Literal, NamedTuple

import pytest

from archc.ir.kinds import KINDS, Node, Pointwise
from backends.keras.generator import generate as keras_source
from backends.pytorch.generator import generate as torch_source
from tests.helpers import compile_str

HAS_BOTH = importlib.util.find_spec("keras") and importlib.util.find_spec("torch")


class Row(NamedTuple):
    kind: str
    spec: str  # the model's body; the node under test is `... as t`
    input: tuple[int, ...]
    out: tuple[int, ...]
    trainable: int
    nontrainable: int
    macs: int
    rf: tuple[tuple, tuple] | None  # ((size h, size w), (jump h, jump w)); None: whole input
    keras: str  # the generated Keras line that makes `t`
    torch: str  # the generated PyTorch line that makes `t`
    equiv: bool = True


ROWS = [
    Row(
        "input",
        "D(0.1)",
        (9, 9, 3),
        (9, 9, 3),
        0,
        0,
        0,
        ((1, 1), (1, 1)),
        'inputs = keras.Input(shape=(9, 9, 3), name="input")',
        "input_shape = (3, 9, 9)",
    ),
    Row(
        "rescaling",
        "Rescaling(1/255, offset: -1) as t",
        (4, 4, 3),
        (4, 4, 3),
        0,
        0,
        0,
        ((1, 1), (1, 1)),
        'x = layers.Rescaling(0.00392156862745098, offset=-1.0, name="t")(x)',
        "self.t = Rescaling(0.003921568859368563, offset=-1.0)",
    ),
    Row(
        "normalization",
        "Normalization as t",
        (4, 4, 3),
        (4, 4, 3),
        0,
        2 * 3 + 1,
        0,
        ((1, 1), (1, 1)),
        'x = layers.Normalization(name="t")(x)',
        "self.t = Normalization(3)",
    ),
    Row(
        "conv",
        "C(4*3*3, s2, same) as t",
        (9, 9, 3),
        (5, 5, 4),
        3 * 3 * 3 * 4 + 4,
        0,
        5 * 5 * 4 * 3 * 3 * 3,
        ((3, 3), (2, 2)),
        'x = layers.Conv2D(4, 3, strides=2, padding="same", name="t")(x)',
        "self.t = nn.Conv2d(3, 4, 3, stride=2, padding=1)",
    ),
    Row(
        "depthwise",
        "DW(3*3, s2, same, multiplier: 2) as t",
        (9, 9, 3),
        (5, 5, 6),
        3 * 3 * 6 + 6,
        0,
        5 * 5 * 6 * 3 * 3,
        ((3, 3), (2, 2)),
        'x = layers.DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2, name="t")(x)',
        "self.t = nn.Conv2d(3, 6, 3, stride=2, padding=1, groups=3)",
    ),
    Row(
        "separable",
        "SC(4*3*3, same, multiplier: 2) as t",
        (5, 5, 3),
        (5, 5, 4),
        3 * 3 * 6 + 6 * 4 + 4,
        0,
        5 * 5 * 6 * 3 * 3 + 5 * 5 * 6 * 4,
        ((3, 3), (1, 1)),
        'x = layers.SeparableConv2D(4, 3, padding="same", depth_multiplier=2, name="t")(x)',
        "self.t = SeparableConv2d(3, 4, 3, padding=1, multiplier=2)",
    ),
    Row(
        "transposed",
        "CT(4*3*3, s2, same) as t",
        (5, 5, 3),
        (10, 10, 4),
        3 * 3 * 4 * 3 + 4,
        0,
        5 * 5 * 3 * 3 * 3 * 4,  # per input pixel
        ((2, 2), (Fraction(1, 2), Fraction(1, 2))),
        'x = layers.Conv2DTranspose(4, 3, strides=2, padding="same", name="t")(x)',
        "self.t = CroppedConvTranspose2d(3, 4, 3, stride=2, crop=(1, 1))",
    ),
    Row(
        "batchnorm",
        "B as t",
        (4, 4, 6),
        (4, 4, 6),
        12,
        12,
        0,
        ((1, 1), (1, 1)),
        'x = layers.BatchNormalization(name="t")(x)',
        "self.t = nn.BatchNorm2d(6, eps=0.001, momentum=0.01)",
    ),
    Row(
        "layernorm",
        "LN(epsilon: 1e-6) as t",
        (4, 4, 6),
        (4, 4, 6),
        12,
        0,
        0,
        ((1, 1), (1, 1)),
        'x = layers.LayerNormalization(epsilon=1e-06, name="t")(x)',
        "self.t = LayerNorm2d(6, eps=1e-06)",
    ),
    Row(
        "groupnorm",
        "GN(3) as t",
        (4, 4, 6),
        (4, 4, 6),
        12,
        0,
        0,
        None,
        'x = layers.GroupNormalization(groups=3, name="t")(x)',
        "self.t = nn.GroupNorm(3, 6, eps=0.001)",
    ),
    Row(
        "layerscale",
        "Scale(0.5) as t",
        (4, 4, 6),
        (4, 4, 6),
        6,
        0,
        0,
        ((1, 1), (1, 1)),
        'x = LayerScale(0.5, name="t")(x)',
        "self.t = LayerScale(6, 0.5)",
    ),
    Row(
        "lrn",
        "LRN(3, alpha: 0.01) as t",
        (4, 4, 6),
        (4, 4, 6),
        0,
        0,
        0,
        ((1, 1), (1, 1)),
        'x = LocalResponseNormalization(depth=3, alpha=0.01, name="t")(x)',
        "self.t = nn.LocalResponseNorm(3, alpha=0.03, k=2.0)",
    ),
    Row(
        "activation",
        "A(prelu) as t",
        (4, 4, 6),
        (4, 4, 6),
        6,
        0,
        0,
        ((1, 1), (1, 1)),
        'x = layers.PReLU(shared_axes=[1, 2], name="t")(x)',
        "self.t = nn.PReLU(6, init=0.0)",
    ),
    Row(
        "pool",
        "P(max, 3, 2) as t",
        (9, 9, 2),
        (4, 4, 2),
        0,
        0,
        0,
        ((3, 3), (2, 2)),
        'x = layers.MaxPooling2D(3, strides=2, name="t")(x)',
        "self.t = nn.MaxPool2d(3, stride=2)",
    ),
    Row(
        "upsample",
        "C(2*3*3, same) Up([2, 3], bilinear) as t",
        (3, 4, 1),
        (6, 12, 2),
        0,
        0,
        0,
        ((4, 4), (Fraction(1, 2), Fraction(1, 3))),
        'x = BilinearResize2D((6, 12), name="t")(x)',
        'self.t = nn.Upsample(scale_factor=(2, 3), mode="bilinear", align_corners=False)',
    ),
    Row(
        "resize",
        "C(2*3*3, same) Resize(7, 5, nearest) as t",
        (5, 7, 1),
        (7, 5, 2),
        0,
        0,
        0,
        ((3, 3), (Fraction(5, 7), Fraction(7, 5))),
        'x = layers.Resizing(7, 5, interpolation="nearest", name="t")(x)',
        'self.t = nn.Upsample(size=(7, 5), mode="nearest-exact")',
    ),
    Row(
        "globalpool",
        "GAP as t",
        (5, 5, 7),
        (7,),
        0,
        0,
        0,
        None,
        'x = layers.GlobalAveragePooling2D(name="t")(x)',
        "self.t = nn.AdaptiveAvgPool2d(1)",
    ),
    Row(
        "dropout",
        "D(0.25) as t",
        (6,),
        (6,),
        0,
        0,
        0,
        None,
        'x = layers.Dropout(0.25, name="t")(x)',
        "self.t = nn.Dropout(0.25)",
    ),
    Row(
        "droppath",
        "DP(0.2) as t",
        (4, 4, 6),
        (4, 4, 6),
        0,
        0,
        0,
        ((1, 1), (1, 1)),
        'x = layers.Dropout(0.2, noise_shape=(None, 1, 1, 1), name="t")(x)',
        "self.t = DropPath(0.2)",
    ),
    Row(
        "flatten",
        "Flatten as t",
        (2, 3, 4),
        (24,),
        0,
        0,
        0,
        None,
        'x = layers.Flatten(name="t")(x)',
        "x = self.t(x.permute(0, 2, 3, 1))",
    ),
    Row(
        "reshape",
        "Reshape(4, 3, 2) as t",
        (2, 3, 4),
        (4, 3, 2),
        0,
        0,
        0,
        None,
        'x = layers.Reshape((4, 3, 2), name="t")(x)',
        "self.t = Reshape((4, 3, 2))",
    ),
    Row(
        "zeropad",
        "ZeroPad(1, 2) as t",
        (4, 4, 2),
        (6, 8, 2),
        0,
        0,
        0,
        ((1, 1), (1, 1)),
        'x = layers.ZeroPadding2D(((1, 1), (2, 2)), name="t")(x)',
        "self.t = nn.ZeroPad2d((2, 2, 1, 1))",
    ),
    Row(
        "crop",
        "Crop(1, 0, 2, 1) as t",
        (6, 7, 2),
        (5, 4, 2),
        0,
        0,
        0,
        ((1, 1), (1, 1)),
        'x = layers.Cropping2D(((1, 0), (2, 1)), name="t")(x)',
        "self.t = Crop2d(1, 0, 2, 1)",
    ),
    Row(
        "dense",
        "Dense(5, relu) as t",
        (8,),
        (5,),
        8 * 5 + 5,
        0,
        8 * 5,
        None,
        'x = layers.Dense(5, activation="relu", name="t")(x)',
        "self.t = nn.Linear(8, 5)",
    ),
    Row(
        "concat",
        "concat { C(2*1*1) | P(max, 3, 1, same) } as t",
        (5, 5, 3),
        (5, 5, 5),
        0,
        0,
        0,
        ((3, 3), (1, 1)),
        'x = layers.Concatenate(name="t")([c1, x])',
        "x = torch.cat([c1, x], dim=1)",
    ),
    Row(
        "shuffle",
        "C(6*3*3, same) Shuffle(3) as t",
        (4, 5, 2),
        (4, 5, 6),
        0,
        0,
        0,
        ((3, 3), (1, 1)),
        'x = ChannelShuffle(3, name="t")(x)',
        "self.t = nn.ChannelShuffle(3)",
    ),
    Row(
        "split",
        "C(6*3*3, same) Split(3, 1) as t",
        (4, 5, 2),
        (4, 5, 2),
        0,
        0,
        0,
        ((3, 3), (1, 1)),
        'x = ChannelSplit(3, 1, name="t")(x)',
        "self.t = ChannelSplit(3, 1)",
    ),
    Row(
        "add",
        "add { C(3*3*3, same) | D(0.1) } as t",
        (5, 5, 3),
        (5, 5, 3),
        0,
        0,
        0,
        ((3, 3), (1, 1)),
        'x = layers.Add(name="t")([c1, x])',
        "x = c1 + x",
    ),
    Row(
        "mul",
        "mul { C(3*3*3, same) | GAP(keepdims) } as t",
        (5, 5, 3),
        (5, 5, 3),
        0,
        0,
        0,
        None,
        'x = layers.Multiply(name="t")([c1, x])',
        "x = c1 * x",
    ),
]


def _model(row: Row):
    shape = "*".join(map(str, row.input))
    return compile_str(f"model kind_{row.kind}\ninput {shape}\n{row.spec}\n")


def _node(model, row: Row):
    if row.kind == "input":
        return model.nodes[0]
    (node,) = [n for n in model.nodes if n.name == "t"]
    return node


def test_every_kind_has_a_row():
    assert sorted(r.kind for r in ROWS) == sorted(KINDS), "each layer kind needs a row here"


@pytest.mark.parametrize("row", ROWS, ids=[r.kind for r in ROWS])
def test_rules(row):
    model = _model(row)
    node = _node(model, row)
    assert node.kind == row.kind
    assert node.out_shape == row.out
    assert (node.trainable, node.nontrainable, node.macs) == (
        row.trainable,
        row.nontrainable,
        row.macs,
    )
    rf = None if node.rf is None else (node.rf.size, node.rf.jump)
    assert rf == row.rf
    # the tensors the kind declares add up to its parameters, split as counted
    ws = node.weights(list(node.in_shapes))
    assert sum(w.size for w in ws if w.trainable) == row.trainable
    assert sum(w.size for w in ws if not w.trainable) == row.nontrainable


@pytest.mark.parametrize("row", ROWS, ids=[r.kind for r in ROWS])
def test_generated_lines(row):
    model = _model(row)
    keras_lines = [line.strip() for line in keras_source(model).splitlines()]
    torch_lines = [line.strip() for line in torch_source(model).splitlines()]
    assert row.keras in keras_lines
    assert row.torch in torch_lines


@pytest.mark.skipif(not HAS_BOTH, reason="needs keras and torch")
@pytest.mark.parametrize("direction", ["keras2torch", "torch2keras"])
@pytest.mark.parametrize("row", [r for r in ROWS if r.equiv], ids=[r.kind for r in ROWS if r.equiv])
def test_equivalence(row, direction):
    from archc import equiv

    result = equiv.check(_model(row), dtype="float64", batch=2, direction=direction)
    assert result.ok, equiv.report(_model(row), result)


@pytest.mark.parametrize("row", ROWS, ids=[r.kind for r in ROWS])
def test_the_stated_mac_rule_matches_the_count(row):
    """A kind that counts MACs states how (the report prints it); one that counts
    none states nothing."""
    assert bool(KINDS[row.kind].macs_rule) == (row.macs > 0)


# ---- a kind must state every rule -----------------------------------------------------------


def test_a_kind_must_state_every_rule():
    with pytest.raises(TypeError, match="does not state its receptive_field"):

        class Forgetful(Node):  # states its shape, counts and weights, not its receptive field
            kind: Literal["forgetful_test"] = "forgetful_test"

            def infer(self, ins):
                return ins[0]

            def count(self, ins, out):
                return (0, 0, 0)

            def weights(self, ins):
                return ()

    assert "forgetful_test" not in KINDS


def test_a_mixin_states_rules_by_name():
    class Scaled(Pointwise, Node):  # Pointwise states shape, counts, weights, receptive field
        kind: Literal["scaled_test"] = "scaled_test"

    try:
        assert Scaled(name="s").infer([(2, 3, 4)]) == (2, 3, 4)
    finally:
        del KINDS["scaled_test"]


def test_receptive_fields_are_exact_fractions():
    from archc.ir.kinds import RF, rf_window

    half = RF.of((1, 1), (Fraction(1, 2), Fraction(1, 2)))  # after an upsampling by 2
    r = rf_window([half], (3, 3), (1, 1))
    assert r.size == (2, 2) and r.jump == (Fraction(1, 2), Fraction(1, 2))
    assert RF.model_validate_json(r.model_dump_json()) == r
    assert r.model_dump(mode="json") == {"size": [2, 2], "jump": ["1/2", "1/2"]}


# ---- adding a kind: exactly the places docs/architecture.md lists ----------------------------


@pytest.fixture
def throwaway_kind():
    """A nearest-neighbour upsampling kind added the way docs/architecture.md says, in
    its places 1-5 (place 6, docs/language.md, is checked by the test below): the class,
    its binder and speller, one emitter per backend, its row. Nothing else is touched; it is all
    taken away again afterwards."""
    from fractions import Fraction as F

    from archc.ir.kinds import RF, NoWeights, _spatial
    from archc.language import bind
    from backends.common import Lowered, Op
    from backends.keras.generator import KerasGenerator
    from backends.pytorch.generator import TorchGenerator

    # 1. archc/ir/kinds.py: the class, stating its rules (NoWeights states two)
    class ThrowawayUp(NoWeights, Node):
        kind: Literal["throwaway_up"] = "throwaway_up"
        size: int
        prefix = "up"
        title = "upsampling `ThrowawayUp`"

        def infer(self, ins):
            h, w, c = _spatial(self, ins)
            return (h * self.size, w * self.size, c)

        def receptive_field(self, ins):
            (r,) = ins  # each output cell copies one input cell; neighbours 1/size apart
            return RF.of(r.size, (r.jump[0] / self.size, r.jump[1] / self.size))

    try:
        # 2. archc/language/bind.py: its binder
        @bind.binds(ThrowawayUp, "ThrowawayUp", options=("size",))
        def bind_throwaway_up(r, spelled):
            a = r.next_pos() or r.take("size")
            size = r.positive_int(a.value, "the upsampling factor") if a else 2
            r.finish()
            return [(ThrowawayUp, {"size": size})]

        # ... and its speller, next to it
        @bind.spells(ThrowawayUp)
        def spell_throwaway_up(n):
            return f"ThrowawayUp({n.size})"

        # 3. and 4. one emitter per backend, in its generator's table
        KerasGenerator.LOWER["throwaway_up"] = lambda n, r: Lowered(
            [Op("layers.UpSampling2D", [n.size])]
        )
        TorchGenerator.LOWER["throwaway_up"] = lambda n, r: Lowered(
            [Op("nn.Upsample", [], {"scale_factor": n.size})]
        )
        # 5. tests/test_kinds.py: its row
        yield Row(
            "throwaway_up",
            "C(2*3*3, same) ThrowawayUp(2) as t",
            (3, 3, 1),
            (6, 6, 2),
            0,
            0,
            0,
            ((3, 3), (F(1, 2), F(1, 2))),
            'x = layers.UpSampling2D(2, name="t")(x)',
            "self.t = nn.Upsample(scale_factor=2)",
        )
    finally:
        KINDS.pop("throwaway_up", None)
        tables = (bind.SPELLINGS, bind.BINDERS, bind.SPELLERS)
        for table in (*tables, KerasGenerator.LOWER, TorchGenerator.LOWER):
            for key in ("ThrowawayUp", "throwaway_up"):
                table.pop(key, None)


def test_a_new_kind_needs_exactly_the_documented_places(throwaway_kind):
    import re

    from archc.ir import Model
    from tests.test_decompile import assert_spelling_binds_back
    from tests.test_language import test_language_doc_covers_every_layer_spelling

    row = throwaway_kind
    assert sorted([*(r.kind for r in ROWS), row.kind]) == sorted(KINDS)  # it has its row
    test_rules(row)
    test_generated_lines(row)
    test_the_stated_mac_rule_matches_the_count(row)
    assert_spelling_binds_back(_node(_model(row), row))  # the printer writes it
    if HAS_BOTH:  # weight transfer and equiv needed no change
        test_equivalence(row, "keras2torch")
        test_equivalence(row, "torch2keras")
    model = _model(row)
    assert Model.model_validate_json(model.model_dump_json()) == model  # nor the JSON form
    # place 6: until docs/language.md documents the spelling, the suite says so
    with pytest.raises(AssertionError, match=re.escape("ThrowawayUp")):
        test_language_doc_covers_every_layer_spelling()
    doc = pathlib.Path(__file__).parent.parent / "docs" / "architecture.md"
    places = re.findall(
        r"^(\d)\. ", doc.read_text("utf-8").split("## Adding a layer kind")[1], re.MULTILINE
    )
    assert places == ["1", "2", "3", "4", "5", "6"]
