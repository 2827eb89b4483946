"""Import then print then fmt then compile is stable (issue #15): a model built by
archc's generated PyTorch code (backends/runtime.py build_torch) or Keras code
(build_keras) from a spec of specs/, imported (import_torch at the spec's input
size, import_keras), printed (spec_text), formatted (format_text) and compiled
(compile_text), gives back the spec's own graph (same_graph: only names, which the
source model chose, may differ); printing that graph again gives the same text, and
a spec with blocks prints shorter than its node list.

Where a spec does not come back exactly, the difference is pinned here, with why
the source model cannot say what the spec wrote: it is known, and cannot change
silently. Most of a spec's build and import time is the framework building the
model's weights: the default part is the small specs, the rest is marked slow.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from archc.ir import Model
from archc.ir.model import same_graph
from archc.language.decompile import spec_text
from archc.language.format import format_text
from archc.pipeline import compile_spec, compile_text

SPECS = Path(__file__).resolve().parent.parent / "specs"


def imported(spec: str, framework: str) -> tuple[Model, Model]:
    """The spec's IR and the IR imported from its build in `framework`."""
    ir = compile_spec(str(SPECS / spec))
    if framework == "torch":
        from backends.pytorch.importer import import_torch
        from backends.runtime import build_torch

        return ir, import_torch(build_torch(ir).eval(), ir.input_shape, spec).model
    from backends.keras.importer import import_keras
    from backends.runtime import build_keras

    return ir, import_keras(build_keras(ir), spec).model


def round_trip(spec: str, framework: str) -> tuple[Model, Model, str]:
    """The spec's IR, the IR the printed and formatted import compiles to, and that text."""
    ir, model = imported(spec, framework)
    text = format_text(spec_text(model), spec)
    assert format_text(text, spec) == text  # fmt is idempotent
    result = compile_text(text, path=spec)
    assert format_text(spec_text(result), spec) == text, "printing again gives another text"
    return ir, result, text


def assert_comes_back(spec: str, framework: str) -> None:
    ir, result, text = round_trip(spec, framework)
    assert same_graph(result, ir) == [], text
    if ir.blocks:  # repeated structure comes back as blocks, not a flat list
        assert len(text.splitlines()) < len(ir.nodes), text


NODE = re.compile(r"^node \d+ \(`[^`]*` / `[^`]*`\): ")


def difference(spec: str, framework: str) -> dict[str, int]:
    """same_graph's differences between the round trip and the spec, each without
    its node's position and names, with how many nodes have it."""
    ir, result, _ = round_trip(spec, framework)
    return dict(Counter(NODE.sub("", d) for d in same_graph(result, ir)))


# --- through PyTorch ------------------------------------------------------------------

# Specs whose generated PyTorch model comes back as exactly the spec's graph.
TORCH_EXACT = {  # spec -> slow
    "book_lenet5.cnn": False,
    "course_lenet5.cnn": False,
    "course_alexnet8.cnn": False,
    "digits_cnn.cnn": False,
    "mnist_fc.cnn": False,
    "notes_lenet5.cnn": False,
    "notes_lenet_d2l.cnn": False,
    "textbook_cifar10.cnn": False,
    "textbook_color.cnn": False,
    "textbook_mnist_cnn.cnn": False,
    "alexnet_original.cnn": True,
    "notes_alexnet.cnn": True,
    "book_resnet50.cnn": True,
    "book_vgg16.cnn": True,
    "densenet121.cnn": True,
    "resnet50.cnn": True,
    "resnet101.cnn": True,
    "resnet152.cnn": True,
    "unet.cnn": True,
    "vgg11.cnn": True,
    "vgg11_lrn.cnn": True,
    "vgg13.cnn": True,
    "vgg16.cnn": True,
    "vgg19.cnn": True,
}


@pytest.mark.parametrize(
    "spec",
    [pytest.param(s, marks=[pytest.mark.slow] if slow else []) for s, slow in TORCH_EXACT.items()],
)
def test_a_spec_built_in_pytorch_comes_back_exactly(spec):
    assert_comes_back(spec, "torch")


@pytest.mark.parametrize("layer", ["Reshape(8)", "Flatten"])
def test_a_vector_of_a_one_by_one_map_comes_back_as_written(layer):
    """archc's PyTorch code flattens a 1 x 1 map plainly for Reshape(C) and after a
    channels-last permute for Flatten: the importer reads each back as written."""
    ir = compile_text(f"model v\ninput 4*4*3\nC(8*4*4) {layer} Dense(2)\n")
    from backends.pytorch.importer import import_torch
    from backends.runtime import build_torch

    model = import_torch(build_torch(ir).eval(), ir.input_shape, "v").model
    assert same_graph(model, ir) == []


# What a PyTorch module cannot say, so the round trip differs from the spec in it
# (each the same function):
# - padding that adds the same zeros: `same` on a 1 x 1 window or where it adds none
#   and `valid` are both nn.Conv2d's padding=0 (the importer writes `valid`);
#   a spec's `p1` and a symmetric `same` are both padding=1 (the importer writes
#   `same`, Keras's name, wherever it is Keras's `same`), `p0` is `valid`;
# - initialisers and l2 (`init`, `bias_init`, `l2`): a module holds weights, not
#   the rule that drew them, nor the loss term of training;
# - a grouped convolution with one group per channel and multiplier 1, written
#   `C(groups: 96)`, is the same nn.Conv2d as `DW` (the importer writes DW);
# - a float32 constant comes back as the shortest decimal that rounds to it
#   (backends/pytorch/importer.py float32_decimal): a spec's `1/255` or
#   `(255*0.229)^2` is not that decimal, and the module holds only the float32.
VALID = "padding 'valid' != 'same'"  # a `same` that adds no zeros
SAME = "padding 'same' != (1, 1)"  # a spec's `p1`
P0 = "padding 'valid' != (0, 0)"  # a spec's `p0`
TORCH_DIFFERS = {  # spec -> (slow, the difference)
    "course_baseline.cnn": (False, {VALID: 1}),
    "course_baseline_listing.cnn": (False, {VALID: 1}),
    "textbook_shape.cnn": (False, {SAME: 1}),
    "resnet18.cnn": (False, {"init None != 'he_normal'": 1, VALID: 3}),
    "course_inception10.cnn": (False, {VALID: 16}),
    "course_vgg16.cnn": (True, {VALID: 5}),
    "book_alexnet.cnn": (True, {"l2 None != 0.0005": 4}),
    "book_googlenet.cnn": (True, {"bias_init None != 0.2": 55, VALID: 37}),
    "googlenet.cnn": (True, {VALID: 37, "bias_init None != 0.0": 54}),
    "convnext_tiny.cnn": (
        True,
        {
            "variance (3409.976, 3262.6943, 3291.8906) != "
            "(3409.9760250000004, 3262.6944000000003, 3291.890625)": 1,
            "kind depthwise != conv": 18,
        },
    ),
    "efficientnet_b0.cnn": (True, {"scale 0.003921569 != 0.00392156862745098": 1, VALID: 64}),
    "mobilenet_v3_large.cnn": (
        True,
        {"scale 0.007843138 != 0.00784313725490196": 1, VALID: 48},
    ),
    "mobilenet_v3_small.cnn": (
        True,
        {"scale 0.007843138 != 0.00784313725490196": 1, VALID: 42},
    ),
    "inception_v3.cnn": (True, {VALID: 39}),
    "mobilenet.cnn": (True, {VALID: 14}),
    "mobilenet_v2.cnn": (True, {VALID: 33}),
    "xception.cnn": (True, {VALID: 4}),
    "vgg16_c.cnn": (True, {VALID: 3}),
    "mobilenet_v2_torchvision.cnn": (True, {SAME: 13, P0: 34}),
    "resnet18_torchvision.cnn": (True, {SAME: 13, P0: 3}),
    "resnet34_torchvision.cnn": (True, {SAME: 29, P0: 3}),
    "resnet50_torchvision.cnn": (True, {P0: 36, SAME: 13}),
    "resnext50_32x4d.cnn": (True, {P0: 36, SAME: 13}),
    "shufflenet_v2_x1_0.cnn": (True, {P0: 36, SAME: 13}),
    "squeezenet1_0.cnn": (True, {SAME: 8}),
    "squeezenet1_1.cnn": (True, {SAME: 8}),
    "zfnet.cnn": (True, {P0: 1, SAME: 3}),
}


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param(s, marks=[pytest.mark.slow] if slow else [])
        for s, (slow, _) in TORCH_DIFFERS.items()
    ],
)
def test_what_a_spec_built_in_pytorch_comes_back_without_is_pinned(spec):
    assert difference(spec, "torch") == TORCH_DIFFERS[spec][1]


# --- through Keras ---------------------------------------------------------------------

# Specs whose generated Keras model comes back as exactly the spec's graph (Keras's
# layer configs carry padding, initialisers, l2 and the constants as written).
KERAS_EXACT = {  # spec -> slow
    "book_lenet5.cnn": False,
    "course_lenet5.cnn": False,
    "digits_cnn.cnn": False,
    "mnist_fc.cnn": False,
    "textbook_cifar10.cnn": False,
    "course_baseline.cnn": False,
    "resnet18.cnn": False,
    "mobilenet.cnn": False,
    "googlenet.cnn": False,
    "alexnet_original.cnn": True,
    "book_alexnet.cnn": True,
    "book_googlenet.cnn": True,
    "book_resnet50.cnn": True,
    "book_vgg16.cnn": True,
    "convnext_tiny.cnn": True,
    "course_alexnet8.cnn": True,
    "course_baseline_listing.cnn": True,
    "course_inception10.cnn": True,
    "course_vgg16.cnn": True,
    "densenet121.cnn": True,
    "efficientnet_b0.cnn": True,
    "inception_v3.cnn": True,
    "mobilenet_v2.cnn": True,
    "mobilenet_v3_large.cnn": True,
    "mobilenet_v3_small.cnn": True,
    "notes_alexnet.cnn": True,
    "notes_lenet5.cnn": True,
    "notes_lenet_d2l.cnn": True,
    "resnet50.cnn": True,
    "resnet101.cnn": True,
    "resnet152.cnn": True,
    "textbook_color.cnn": True,
    "textbook_mnist_cnn.cnn": True,
    "vgg11.cnn": True,
    "vgg11_lrn.cnn": True,
    "vgg13.cnn": True,
    "vgg16.cnn": True,
    "vgg16_c.cnn": True,
    "vgg19.cnn": True,
    "xception.cnn": True,
    "textbook_shape.cnn": False,
    "unet.cnn": True,
}


@pytest.mark.parametrize(
    "spec",
    [pytest.param(s, marks=[pytest.mark.slow] if slow else []) for s, slow in KERAS_EXACT.items()],
)
def test_a_spec_built_in_keras_comes_back_exactly(spec):
    assert_comes_back(spec, "keras")


def keras_difference(spec: str) -> dict:
    """What the Keras round trip gives instead of the spec: how many differences
    same_graph finds, which of the spellings a Keras model keeps no trace of they
    are, and any other difference (none is expected)."""
    ir, result, _ = round_trip(spec, "keras")
    diffs = same_graph(result, ir)
    return {
        "differences": len(diffs),
        "spellings": sorted({u for d in diffs for u in UNTRACED if u in d}),
        "other": [d for d in diffs if not any(u in d for u in UNTRACED)],
    }


# What a Keras model keeps no trace of (backends/keras/importer.py folds archc's own
# padding layers back into their layers, so `pN` comes back): `p0` is generated as
# Keras's `valid` and comes back so; `ceil` on a pooling whose last window has no
# overhang is generated as a plain pooling and comes back without it. Both compute
# the same function.
UNTRACED = ("padding 'valid' != (0, 0)", "ceil False != True")
KERAS_DIFFERS = {  # spec -> (slow, the difference)
    "zfnet.cnn": (False, {"differences": 1, "spellings": [UNTRACED[0]], "other": []}),
    "squeezenet1_0.cnn": (False, {"differences": 2, "spellings": [UNTRACED[1]], "other": []}),
    "squeezenet1_1.cnn": (True, {"differences": 3, "spellings": [UNTRACED[1]], "other": []}),
    "resnet18_torchvision.cnn": (True, {"differences": 3, "spellings": [UNTRACED[0]], "other": []}),
    "resnet34_torchvision.cnn": (True, {"differences": 3, "spellings": [UNTRACED[0]], "other": []}),
    "resnet50_torchvision.cnn": (
        True,
        {"differences": 36, "spellings": [UNTRACED[0]], "other": []},
    ),
    "resnext50_32x4d.cnn": (True, {"differences": 36, "spellings": [UNTRACED[0]], "other": []}),
    "shufflenet_v2_x1_0.cnn": (True, {"differences": 36, "spellings": [UNTRACED[0]], "other": []}),
    "mobilenet_v2_torchvision.cnn": (
        True,
        {"differences": 34, "spellings": [UNTRACED[0]], "other": []},
    ),
}


@pytest.mark.parametrize(
    "spec",
    [
        pytest.param(s, marks=[pytest.mark.slow] if slow else [])
        for s, (slow, _) in KERAS_DIFFERS.items()
    ],
)
def test_what_a_spec_built_in_keras_comes_back_without_is_pinned(spec):
    assert keras_difference(spec) == KERAS_DIFFERS[spec][1]


def test_every_spec_is_covered():
    specs = {p.name for p in SPECS.glob("*.cnn")} - {"stdlib.cnn"}  # a library, no input
    assert set(TORCH_EXACT) | set(TORCH_DIFFERS) == specs
    assert not set(TORCH_EXACT) & set(TORCH_DIFFERS)
    assert set(KERAS_EXACT) | set(KERAS_DIFFERS) == specs
    assert not set(KERAS_EXACT) & set(KERAS_DIFFERS)


@pytest.mark.parametrize(
    ("value", "decimal"),
    [
        (0.30000001192092896, 0.3),  # float32(0.3)
        (123.67500305175781, 123.675),
        (9.999999974752427e-07, 1e-06),
        (0.003921568859368563, 0.003921569),  # float32(1/255): 1/255 is not recoverable
        (0.1, 0.1),  # not a float32 value: kept
        (-1.0, -1.0),
        (1e300, 1e300),
    ],
)
def test_a_float32_constant_comes_back_as_its_shortest_decimal(value, decimal):
    from backends.pytorch.importer import float32_decimal

    assert float32_decimal(value) == decimal
