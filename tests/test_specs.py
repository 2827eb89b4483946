"""The spec library: every spec against an independent count.

FIGURES holds, for every spec, (total, trainable, non-trainable, output shape)
and where the figure comes from:
  seed  - printed in a seed document (the seed's file and section are in the spec);
  paper - the issue's or the reference implementation's published figure;
  keras - obtained by building the reference in Keras (tests/references/keras_refs.py,
          the seed's own class or listing code, or keras.applications) and calling
          count_params(); test_keras_reference below rebuilds it to check;
  torch - torchvision's parameter count (trainable), rebuilt in plain PyTorch by
          tests/references/torch_refs.py.
"""

from __future__ import annotations

import collections
import importlib.util
import pathlib
import subprocess
import sys

import pytest

from archc.pipeline import compile_spec

SPECS = pathlib.Path(__file__).resolve().parent.parent / "specs"

FIGURES = {
    # the course (seed 000): counts of the course's own class code built in Keras
    "course_baseline.cnn": (198_506, 198_494, 12, (10,), "keras"),
    "course_baseline_listing.cnn": (186_130, 186_118, 12, (10,), "keras"),
    "course_lenet5.cnn": (62_006, 62_006, 0, (10,), "keras"),
    "course_alexnet8.cnn": (9_639_178, 9_638_474, 704, (10,), "keras"),
    "course_vgg16.cnn": (15_262_026, 15_253_578, 8_448, (10,), "keras"),
    "course_inception10.cnn": (121_418, 120_234, 1_184, (10,), "keras"),
    "resnet18.cnn": (11_183_562, 11_173_962, 9_600, (10,), "keras"),
    # the notes (seed 002): model.summary() printed in the seed
    "notes_lenet5.cnn": (61_706, 61_706, 0, (10,), "seed"),
    "notes_lenet_d2l.cnn": (61_706, 61_706, 0, (10,), "keras"),
    "notes_alexnet.cnn": (58_327_818, 58_325_066, 2_752, (10,), "seed"),
    # the book (seed 004)
    "book_lenet5.cnn": (61_706, 61_706, 0, (10,), "seed"),
    "book_alexnet.cnn": (62_383_848, 62_381_096, 2_752, (1000,), "seed"),
    "book_vgg16.cnn": (138_357_544, 138_357_544, 0, (1000,), "seed"),
    "book_googlenet.cnn": (5_984_826, 5_984_314, 512, (10,), "keras"),
    "book_resnet50.cnn": (123_940_712, 123_887_592, 53_120, (1000,), "keras"),
    "alexnet_original.cnn": (62_378_344, 62_378_344, 0, (1000,), "paper"),
    "vgg11.cnn": (132_863_336, 132_863_336, 0, (1000,), "keras"),  # table 5.1: 133 M
    "vgg11_lrn.cnn": (132_863_336, 132_863_336, 0, (1000,), "keras"),  # 133 M
    "vgg13.cnn": (133_047_848, 133_047_848, 0, (1000,), "keras"),  # 133 M
    "vgg16_c.cnn": (133_638_952, 133_638_952, 0, (1000,), "keras"),  # 134 M
    "vgg16.cnn": (138_357_544, 138_357_544, 0, (1000,), "paper"),  # 138 M
    "vgg19.cnn": (143_667_240, 143_667_240, 0, (1000,), "paper"),  # 144 M
    # the textbook (seed 001)
    "textbook_mnist_cnn.cnn": (12_106, 12_042, 64, (10,), "keras"),
    "textbook_color.cnn": (3_879, 3_815, 64, (6,), "keras"),
    "textbook_shape.cnn": (20_005, 19_941, 64, (5,), "keras"),
    "textbook_cifar10.cnn": (1_250_858, 1_250_858, 0, (10,), "keras"),
    "mnist_fc.cnn": (101_770, 101_770, 0, (10,), "seed"),
    # archc's own: the training runners' offline check on scikit-learn's digits
    "digits_cnn.cnn": (38_474, 38_378, 96, (10,), "keras"),
    # canonical ImageNet networks
    "resnet50.cnn": (25_636_712, 25_583_592, 53_120, (1000,), "paper"),
    "resnet101.cnn": (44_707_176, 44_601_832, 105_344, (1000,), "paper"),
    "resnet152.cnn": (60_419_944, 60_268_520, 151_424, (1000,), "paper"),
    "densenet121.cnn": (8_062_504, 7_978_856, 83_648, (1000,), "paper"),
    "resnet18_torchvision.cnn": (11_699_112, 11_689_512, 9_600, (1000,), "torch"),
    "resnet34_torchvision.cnn": (21_814_696, 21_797_672, 17_024, (1000,), "torch"),
    "resnet50_torchvision.cnn": (25_610_152, 25_557_032, 53_120, (1000,), "torch"),
    "googlenet.cnn": (6_998_552, 6_998_552, 0, (1000,), "keras"),
    "zfnet.cnn": (62_357_608, 62_357_608, 0, (1000,), "keras"),
    # modern networks (issue 14), against keras.applications or torchvision
    "inception_v3.cnn": (23_851_784, 23_817_352, 34_432, (1000,), "keras"),
    "squeezenet1_0.cnn": (1_248_424, 1_248_424, 0, (1000,), "torch"),
    "squeezenet1_1.cnn": (1_235_496, 1_235_496, 0, (1000,), "torch"),
    "unet.cnn": (31_030_658, 31_030_658, 0, (388, 388, 2), "keras"),
    "xception.cnn": (22_910_480, 22_855_952, 54_528, (1000,), "keras"),
    "resnext50_32x4d.cnn": (25_097_128, 25_028_904, 68_224, (1000,), "torch"),
    "shufflenet_v2_x1_0.cnn": (2_294_784, 2_278_604, 16_180, (1000,), "torch"),
    "mobilenet_v3_small.cnn": (2_554_968, 2_542_856, 12_112, (1000,), "keras"),
    "mobilenet_v3_large.cnn": (5_507_432, 5_483_032, 24_400, (1000,), "keras"),
    "efficientnet_b0.cnn": (5_330_571, 5_288_548, 42_023, (1000,), "keras"),
    "convnext_tiny.cnn": (28_589_128, 28_589_128, 0, (1000,), "keras"),
    "mobilenet.cnn": (4_253_864, 4_231_976, 21_888, (1000,), "keras"),
    "mobilenet_v2.cnn": (3_538_984, 3_504_872, 34_112, (1000,), "keras"),
    "mobilenet_v2_torchvision.cnn": (3_538_984, 3_504_872, 34_112, (1000,), "torch"),
}

ALL_SPECS = sorted(p.name for p in SPECS.glob("*.cnn") if p.name != "stdlib.cnn")
TORCH_SPECS = sorted(s for s, figure in FIGURES.items() if figure[4] == "torch")


def test_every_spec_has_a_figure():
    assert sorted(FIGURES) == ALL_SPECS


@pytest.mark.parametrize("spec", ALL_SPECS)
def test_counts_and_output(spec):
    total, trainable, nontrainable, output, _ = FIGURES[spec]
    model = compile_spec(str(SPECS / spec))
    assert (model.params, model.trainable, model.nontrainable) == (total, trainable, nontrainable)
    assert model.output_shape == output


@pytest.mark.parametrize("spec", ALL_SPECS)
def test_spec_names_its_source(spec):
    first = (SPECS / spec).read_text(encoding="utf-8").splitlines()[0]
    assert first.startswith("#") and len(first) > 20


def test_the_slides_notation_and_the_compact_form_agree():
    """The baseline is written in the slides' long form; its compact form (in its
    header comment) must compile to the same IR, node for node."""
    from tests.helpers import compile_str, same_ir

    text = (SPECS / "course_baseline.cnn").read_text(encoding="utf-8")
    compact = next(line for line in text.splitlines() if line.startswith("#   C("))[4:]
    long_form = compile_spec(str(SPECS / "course_baseline.cnn"))
    short = compile_str("model baseline\ninput 32*32*3\n" + compact)
    assert same_ir(long_form, short)


def test_check_all_specs_cli():
    r = subprocess.run(
        [sys.executable, "-m", "archc", "check", *map(str, SPECS.glob("*.cnn"))],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.count("ok  ") == len(ALL_SPECS) + 1  # + stdlib.cnn (blocks only)


SKIP = ("activation", "zeropad")
HAS_KERAS = importlib.util.find_spec("keras") is not None
HAS_TORCH = importlib.util.find_spec("torch") is not None

KIND_OF = {
    "Conv2D": "conv",
    "SeparableConv2D": "separable",
    "DepthwiseConv2D": "depthwise",
    "Dense": "dense",
    "MaxPooling2D": "pool",
    "AveragePooling2D": "pool",
    "GlobalAveragePooling2D": "globalpool",
    "BatchNormalization": "batchnorm",
    "ZeroPadding2D": "zeropad",
    "Flatten": "flatten",
    "Reshape": "reshape",
    "Concatenate": "concat",
    "Add": "add",
    "Multiply": "mul",
    "Rescaling": "rescaling",
    "Dropout": "dropout",
    "Activation": "activation",
    "ReLU": "activation",
    "Conv2DTranspose": "transposed",
    "Cropping2D": "crop",
    "Normalization": "normalization",
    "LayerNormalization": "layernorm",
    "LayerScale": "layerscale",  # keras.applications ConvNeXt's own layer class
}


def _keras_kind(layer) -> str:
    """The archc kind of a Keras layer, where its class alone does not say it."""
    name = type(layer).__name__
    # EfficientNet's drop connect: a Dropout of whole samples is archc's drop path
    if name == "Dropout" and getattr(layer, "noise_shape", None) is not None:
        return "droppath"
    # ConvNeXt's pointwise convolutions are Dense layers on a 4-D tensor: Keras's
    # Dense acts on the last axis (the channels), so it is a 1x1 convolution with
    # the same parameters, which the spec writes `C(n*1*1)`
    if name == "Dense" and len(layer.output.shape) == 4:
        return "conv"
    return KIND_OF[name]


def _keras_layers(model):
    """Every layer of a functional model, nested Sequential models (ConvNeXt's stem
    and downsampling layers) flattened into their layers, and the operations that
    are not layers but join two tensors: ConvNeXt's `inputs + x` makes an `Add`
    operation, archc's add. An operation on one tensor and constants is part of a
    formula archc writes as one activation (MobileNetV3's hard sigmoid,
    `relu6(x + 3) * (1 / 6)`)."""
    out = []
    for layer in model.layers:
        if type(layer).__name__ == "Sequential":
            out.extend(_keras_layers(layer))
        else:
            out.append(layer)
    if hasattr(model, "operations"):
        layers = set(map(id, model.layers))
        out.extend(
            op
            for op in model.operations
            if id(op) not in layers
            and any(len(node.input_tensors) >= 2 for node in op._inbound_nodes)
        )
    return out


@pytest.mark.keras
@pytest.mark.skipif(not HAS_KERAS, reason="keras is not installed")
@pytest.mark.parametrize("spec", [s for s in ALL_SPECS if s not in TORCH_SPECS])
def test_keras_reference(spec):
    """Rebuild the Keras reference and compare counts, output shape, and, for
    functional references, every layer: each Keras layer has a node of the
    same kind, output shape and parameter count (LRN, which Keras 3 lacks, is
    left out of the reference and of the comparison)."""
    from tests.references import keras_refs

    ref = keras_refs.REFERENCES[spec]()
    model = compile_spec(str(SPECS / spec))
    assert keras_refs.counts(ref) == (model.params, model.trainable, model.nontrainable)
    if not getattr(ref, "_is_graph_network", False) and type(ref).__name__ not in (
        "Functional",
        "Sequential",
    ):
        return  # the course's subclassed models: no per-layer output shapes
    # Left out on both sides: activations (a listing may fuse them into its Conv or
    # Dense where the spec writes `A(...)`) and zero padding (ZeroPadding2D layers
    # where the spec writes explicit padding `p1`); neither changes any count.
    theirs = collections.Counter()
    for layer in _keras_layers(ref):
        name = type(layer).__name__
        if name == "InputLayer":
            continue
        assert name in KIND_OF, f"unmapped Keras layer {name}"
        kind = _keras_kind(layer)
        if kind not in SKIP:
            params = layer.count_params() if hasattr(layer, "count_params") else 0
            theirs[(kind, tuple(layer.output.shape[1:]), params)] += 1
    ours = collections.Counter(
        (n.kind, n.out_shape, n.params)
        for n in model.nodes
        if n.kind not in SKIP + ("input", "lrn")
    )
    assert ours == theirs


@pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed")
@pytest.mark.parametrize("spec", TORCH_SPECS)
def test_torchvision_reference(spec):
    """torchvision counts parameters (archc's trainable) and keeps BN running
    statistics as buffers (archc's non-trainable); the output shape is the
    transcription's on the spec's input."""
    import torch

    from tests.references import torch_refs

    ref = torch_refs.REFERENCES[spec]().eval()
    params, stats = torch_refs.counts(ref)
    model = compile_spec(str(SPECS / spec))
    assert (model.trainable, model.nontrainable) == (params, stats)
    # every layer with tensors: (kind, output shape, parameters + running statistics)
    theirs = collections.Counter()

    def record(module, inputs, output):
        shape = tuple(output.shape[1:])
        if len(shape) == 3:  # C x H x W -> H x W x C
            shape = (*shape[1:], shape[0])
        own = sum(p.numel() for p in module.parameters(recurse=False))
        own += sum(b.numel() for n, b in module.named_buffers(recurse=False) if "running" in n)
        theirs[(torch_refs.kind_of(module), shape, own)] += 1

    handles = [
        m.register_forward_hook(record) for m in ref.modules() if torch_refs.kind_of(m) is not None
    ]
    h, w, c = model.input_shape
    with torch.no_grad():
        assert tuple(ref(torch.zeros(1, c, h, w)).shape[1:]) == model.output_shape
    for handle in handles:
        handle.remove()
    kinds = {k for k, _, _ in theirs}
    ours = collections.Counter(
        (n.kind, n.out_shape, n.params) for n in model.nodes if n.kind in kinds
    )
    assert ours == theirs


@pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed")
def test_torch_transcriptions_reproduce_torchvisions_published_counts():
    from tests.references import torch_refs

    assert set(torch_refs.PUBLISHED) == set(torch_refs.REFERENCES)
    for spec, published in torch_refs.PUBLISHED.items():
        assert torch_refs.counts(torch_refs.REFERENCES[spec]())[0] == published, spec
