"""`import_torch`: a PyTorch nn.Module -> archc IR + weights (backends/pytorch/importer.py).

Each imported model is checked against the module itself: the parameter count
(torch's parameters as trainable, BN running statistics as non-trainable), every
layer's output shape against a forward hook on its module, and the Keras model
built from the imported IR with the imported weights against the module in
float64 (archc/equiv.py `allowed`: 1e-9 of the output scale), the output and every
node (`node_outputs`), with batch norm in eval mode on random running statistics so
the outputs are not trivial.
Models built from archc specs come back as the spec's graph. Inputs are small
(64 x 64 x 3 for the ImageNet nets) to keep the default run short.
"""

from __future__ import annotations

import pathlib

import pytest

pytest.importorskip("torch")
pytest.importorskip("keras")

import keras
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from archc.equiv import allowed
from archc.ir.model import same_graph
from archc.ir.shapes import same_padding
from archc.language.decompile import spec_text
from archc.pipeline import compile_spec, compile_text
from backends.importing import ImportFailure
from backends.pytorch.generator import model_class_name
from backends.pytorch.importer import import_torch, node_outputs
from backends.runtime import build_keras, build_torch, load_module
from backends.transfer import set_keras_weights
from tests.references.torch_refs import BasicBlock, ResNet, counts, mobilenet_v2

# ---------------------------------------------------------------------------
# Modules written for these tests
# ---------------------------------------------------------------------------


class LeNet(nn.Module):
    """Flatten of a 16 x 5 x 5 map into Linear: torch's channels-first order."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.pool1 = nn.AvgPool2d(2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.pool2 = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.drop = nn.Dropout(0.5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 10)

    def forward(self, x):
        x = self.pool1(torch.sigmoid(self.conv1(x)))
        x = self.pool2(torch.sigmoid(self.conv2(x)))
        x = F.relu(self.fc1(self.drop(self.flatten(x))))
        return torch.softmax(self.fc2(x), dim=1)


def _double_conv(cin, cout):
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """A small U-Net: padded double convolutions, max pooling, transposed
    convolutions up (one bilinear upsampling), skips concatenated."""

    def __init__(self, channels=(8, 16, 32), classes=3):
        super().__init__()
        c1, c2, c3 = channels
        self.enc1 = _double_conv(3, c1)
        self.enc2 = _double_conv(c1, c2)
        self.bottom = _double_conv(c2, c3)
        self.pool = nn.MaxPool2d(2)
        self.up2 = nn.ConvTranspose2d(c3, c2, 2, stride=2)
        self.dec2 = _double_conv(2 * c2, c2)
        self.up1 = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
        self.dec1 = _double_conv(c2 + c1, c1)
        self.head = nn.Conv2d(c1, classes, 1)

    def forward(self, x):
        e1 = self.enc1(x)
        e2 = self.enc2(self.pool(e1))
        b = self.bottom(self.pool(e2))
        d2 = self.dec2(torch.cat([self.up2(b), e2], dim=1))
        d1 = self.dec1(torch.cat([self.up1(d2), e1], dim=1))
        return self.head(d1)


class Zoo(nn.Module):
    """Many converters at once: grouped, dilated and uneven-`same` convolutions,
    norms, parameterised activations, padded and ceil pooling, squeeze-and-
    excitation, channel split and shuffle, global mean."""

    def __init__(self):
        super().__init__()
        self.stem_pad = nn.ZeroPad2d((0, 1, 0, 1))  # as archc names it
        self.stem = nn.Conv2d(3, 16, 3, stride=2)  # Keras `same` at an even input
        self.gn = nn.GroupNorm(4, 16, eps=1e-3)
        self.act1 = nn.LeakyReLU(0.25)
        self.grouped = nn.Conv2d(16, 16, 3, padding=2, dilation=2, groups=4)
        self.lrn = nn.LocalResponseNorm(5, alpha=1e-3, beta=0.75, k=2.0)
        self.act2 = nn.ELU(alpha=0.5)
        self.avg = nn.AvgPool2d(3, stride=2, padding=1)  # zeros counted
        self.dw = nn.Conv2d(16, 32, 3, padding=1, groups=16)
        self.bn = nn.BatchNorm2d(32, eps=1e-3, momentum=0.01)
        self.prelu = nn.PReLU(32)
        self.se_pool = nn.AdaptiveAvgPool2d(1)
        self.se_fc = nn.Conv2d(32, 32, 1)
        self.maxpool = nn.MaxPool2d(3, stride=2, ceil_mode=True)
        self.right = nn.Conv2d(16, 16, 1)
        self.gelu = nn.GELU(approximate="tanh")
        self.hs = nn.Hardswish()
        self.fc = nn.Linear(32, 7)

    def forward(self, x):
        x = self.act1(self.gn(self.stem(self.stem_pad(x))))
        x = self.act2(self.lrn(self.grouped(x)))
        x = self.prelu(self.bn(self.dw(self.avg(x))))
        x = x * torch.sigmoid(self.se_fc(self.se_pool(x)))
        x = self.maxpool(x)
        a, b = x.chunk(2, dim=1)
        x = torch.cat([a, F.silu(self.right(b))], dim=1)
        n, c, h, w = x.size()
        x = x.view(n, 2, c // 2, h, w).transpose(1, 2).contiguous().view(n, c, h, w)
        x = self.hs(self.gelu(x))
        return self.fc(x.mean((2, 3)))


class Zoo2(nn.Module):
    """More converters: torch's `same` with an even kernel, F.pad, average pooling
    without the zeros counted, a transposed convolution with output padding,
    resizing and upsampling, adaptive pooling as plain pooling, vector layers."""

    def __init__(self):
        super().__init__()
        self.c1 = nn.Conv2d(3, 8, 4, padding="same")
        self.avg = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
        self.ct = nn.ConvTranspose2d(8, 8, 3, stride=2, padding=1, output_padding=1)
        self.mish = nn.Mish()
        self.up = nn.Upsample(scale_factor=2)
        self.c2 = nn.Conv2d(8, 8, 3, stride=2, padding=1)
        self.ada = nn.AdaptiveAvgPool2d((5, 5))
        self.c3 = nn.Conv2d(8, 16, 3, dilation=2, padding=2, bias=False)
        self.fc1 = nn.Linear(16, 12)
        self.bn1 = nn.BatchNorm1d(12)
        self.ln = nn.LayerNorm(12)
        self.selu = nn.SELU()
        self.fc2 = nn.Linear(12, 5)
        self.unflat = nn.Unflatten(1, (5, 1, 1))

    def forward(self, x):
        x = self.avg(F.pad(self.c1(x), (1, 1, 2, 0)))
        x = self.mish(self.ct(x))
        x = F.interpolate(x, size=(20, 20), mode="bilinear", align_corners=False)
        x = self.up(x)
        x = F.max_pool2d(torch.tanh(self.c2(x)), 2)
        x = self.c3(self.ada(x))
        x = F.adaptive_max_pool2d(x, 1).view(x.size(0), -1)
        x = self.selu(self.ln(self.bn1(self.fc1(x))))
        return F.softplus(self.unflat(self.fc2(x)))


# ---------------------------------------------------------------------------
# The checks
# ---------------------------------------------------------------------------


def _randomize(module: nn.Module, seed: int = 0) -> None:
    """He-uniform kernels (torch's default init lets a deep MobileNetV2's signal
    fade until every input gives the same output) and random batch-norm
    statistics, gamma and beta."""
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.kaiming_uniform_(m.weight, nonlinearity="relu")
        if isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.2)
                m.running_var.copy_(torch.rand(m.num_features, generator=g) * 1.5 + 0.5)
                m.weight.copy_(torch.rand(m.num_features, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.num_features, generator=g) * 0.2)


def _hwc(shape) -> tuple[int, ...]:
    shape = tuple(shape)
    return (shape[2], shape[3], shape[1]) if len(shape) == 4 else shape[1:]


def _hook_shapes(module: nn.Module, x: torch.Tensor) -> dict[str, tuple[int, ...]]:
    """Every leaf module's output shape (H x W x C), keyed as the importer names it
    (the qualified name, dots as underscores; `layer` before a leading digit)."""
    shapes, handles = {}, []
    for name, m in module.named_modules():
        if name and not list(m.children()):
            key = name.replace(".", "_")
            key = "layer" + key if key[0].isdigit() else key

            def hook(_m, _i, out, key=key):
                shapes.setdefault(key, _hwc(out.shape))

            handles.append(m.register_forward_hook(hook))
    with torch.no_grad():
        module(x)
    for h in handles:
        h.remove()
    return shapes


def _check(module: nn.Module, hwc: tuple[int, int, int], min_shapes: int) -> object:
    """Import `module` at `hwc` and check counts, shapes and the float64 Keras build."""
    _randomize(module)
    module = module.double().eval()
    imp = import_torch(module, hwc, "test")
    ir = imp.model
    params, stats = counts(module)
    assert (ir.trainable, ir.nontrainable) == (params, stats)

    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, *hwc))
    x_torch = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
    hooks = _hook_shapes(module, x_torch[:1])
    compared = 0
    for n in ir.nodes:
        if n.name in hooks:
            want = hooks[n.name]
            got = n.out_shape
            if n.kind == "globalpool" and not n.keepdims:  # GAP then flatten: one node
                got = (1, 1, *got)
            assert got == want, n.name
            compared += 1
    assert compared >= min_shapes

    keras_model = build_keras(ir, "float64")
    set_keras_weights(ir, keras_model, imp.weights)
    with torch.no_grad():
        ref = module(x_torch).numpy()
    if ref.ndim == 4:
        ref = ref.transpose(0, 2, 3, 1)
    out = np.asarray(keras_model(x))
    assert out.shape == ref.shape
    assert np.abs(ref[0] - ref[1]).max() > 1e-6  # the output depends on the input
    diff = np.abs(out - ref).max()
    assert diff <= allowed(float(np.abs(ref).max()), "float64"), diff

    # every node, as the module computes it (node_outputs) and as Keras does
    # (not a transposed convolution with explicit padding: Keras crops after the layer)
    refs = node_outputs(module, hwc, x_torch)
    assert sorted(refs) == sorted(n.name for n in ir.nodes)
    nodes = [n for n in ir.nodes[1:] if n.kind != "transposed" or isinstance(n.padding, str)]
    probe = keras.Model(
        keras_model.inputs[0], [keras_model.get_layer(n.name).output for n in nodes]
    )
    for n, got in zip(nodes, probe(x), strict=True):
        want = refs[n.name]
        err = np.abs(np.asarray(got) - want).max()
        assert err <= allowed(float(np.abs(want).max()), "float64"), (n.name, err)
    return imp


def test_lenet_flatten_into_linear_is_permuted_to_channels_last():
    imp = _check(LeNet(), (28, 28, 1), min_shapes=7)
    kinds = [n.kind for n in imp.model.nodes]
    assert kinds == [
        "input", "conv", "pool", "conv", "pool", "flatten", "dropout", "dense", "dense"
    ]  # fmt: skip
    assert imp.model.node("conv1").activation == "sigmoid"  # torch.sigmoid(conv) fused
    assert imp.model.node("fc2").activation == "softmax"
    assert imp.model.node("conv1").padding == "same"


def test_zoo_of_converters():
    imp = _check(Zoo(), (32, 32, 3), min_shapes=12)
    ir = imp.model
    assert ir.node("stem").padding == "same"  # ZeroPad2d((0, 1, 0, 1)) + conv: Keras same
    assert "stem_pad" not in [n.name for n in ir.nodes]
    assert ir.node("grouped").groups == 4 and ir.node("grouped").dilation == (2, 2)
    assert ir.node("dw").kind == "depthwise" and ir.node("dw").multiplier == 2
    assert ir.node("avg").padding == (1, 1)
    assert ir.node("maxpool").ceil
    assert ir.node("act1").alpha == 0.25
    assert ir.node("bn").momentum == 0.99 and ir.node("bn").epsilon == 1e-3
    assert [n.kind for n in ir.nodes].count("shuffle") == 1
    assert [n.kind for n in ir.nodes].count("split") == 2


# torch warns that it copies the input to pad an even kernel's `same` (a cost, not a change)
@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel:UserWarning")
def test_more_converters():
    imp = _check(Zoo2(), (16, 16, 3), min_shapes=12)
    ir = imp.model
    kinds = [n.kind for n in ir.nodes]
    assert kinds == [
        "input", "conv", "zeropad", "pool", "transposed", "activation", "resize",
        "upsample", "conv", "pool", "pool", "conv", "globalpool", "dense", "batchnorm",
        "layernorm", "activation", "dense", "reshape", "activation",
    ]  # fmt: skip
    assert ir.node("avg").padding == "same"  # count_include_pad=False: Keras's same
    assert ir.node("ct").padding == (1, 1) and ir.node("ct").output_padding == (1, 1)
    assert ir.node("c2").activation == "tanh"


def test_unet():
    _check(UNet(), (32, 32, 3), min_shapes=30)


def test_resnet18_and_its_float64_check():
    imp = _check(ResNet(BasicBlock, [2, 2, 2, 2]), (64, 64, 3), min_shapes=52)
    assert imp.model.node("layer1_0_conv1").padding == "same"  # 3x3 s1 p1
    assert imp.model.node("conv1").padding == (3, 3)  # 7x7 s2 p3 is not Keras's same
    assert "layer1_0_conv1/kernel" in imp.weights


@pytest.mark.slow
def test_mobilenet_v2():
    imp = _check(mobilenet_v2(), (64, 64, 3), min_shapes=140)
    assert imp.model.node("layer3_conv_0").kind == "depthwise"


# ---------------------------------------------------------------------------
# Models built from archc specs come back as the spec's graph
# ---------------------------------------------------------------------------


def _pads(n) -> tuple:
    """A window layer's padding as the zeros it adds ((top, bottom), (left, right))."""
    if n.padding == "valid":
        return ((0, 0), (0, 0))
    if n.padding == "same":
        h, w = n.in_shapes[0][:2]
        dil = getattr(n, "dilation", (1, 1))
        return (
            same_padding(h, n.kernel[0], n.stride[0], dil[0]),
            same_padding(w, n.kernel[1], n.stride[1], dil[1]),
        )
    return ((n.padding[0],) * 2, (n.padding[1],) * 2)


def _spelled_as(compiled, imported):
    """`compiled` as the importer spells what a PyTorch module cannot tell apart:
    padding that adds the same zeros (`same`, `valid`, `p0`, `pN`: the importer
    writes `valid` for none, `same` where it is Keras's, else `pN`), and the
    initialisers and l2 (a module holds weights, not the rule that drew them).
    Everything else is compared by `same_graph` as it is."""
    nodes = []
    for k, x in enumerate(compiled.nodes):
        update = {f: None for f in ("init", "bias_init", "l2") if f in type(x).model_fields}
        y = imported.nodes[k] if k < len(imported.nodes) else None
        windowed = "padding" in type(x).model_fields and x.kind != "transposed"
        if windowed and y is not None and y.kind == x.kind and _pads(x) == _pads(y):
            update["padding"] = y.padding
        nodes.append(x.model_copy(update=update))
    return compiled.model_copy(update={"nodes": tuple(nodes)})


def _generated(name: str, cls: str):
    return getattr(load_module(f"generated/torch/{name}.py", f"gen_{name}"), cls)


def _comes_back(spec: str, file: str) -> None:
    compiled = compile_spec(spec)
    module = _generated(file, model_class_name(compiled))().eval()
    imp = import_torch(module, compiled.input_shape, file)
    assert same_graph(imp.model, _spelled_as(compiled, imp.model)) == []
    assert (imp.model.trainable, imp.model.nontrainable) == (
        compiled.trainable,
        compiled.nontrainable,
    )


@pytest.mark.parametrize(
    ("spec", "file"),
    [
        ("specs/resnet18.cnn", "resnet18"),
        ("specs/course_inception10.cnn", "inception10"),
        ("specs/course_lenet5.cnn", "lenet5_course"),  # the channels-last flatten
    ],
)
def test_a_generated_model_comes_back_as_its_spec(spec, file):
    _comes_back(spec, file)


# Every other spec whose generated model comes back exactly. Not here: convnext_tiny
# (its depthwise convolution is written C(groups: 96), the same nn.Conv2d as DW, and
# its Normalization variance is the float32 of (255 * std)^2, not a short decimal),
# efficientnet_b0 and mobilenet_v3_* (Rescaling's scale comes back as the shortest
# decimal of the float32 both builds multiply by, not 1/255):
# tests/test_import_roundtrip.py pins these differences.
@pytest.mark.slow
@pytest.mark.parametrize(
    ("spec", "file"),
    [
        ("specs/resnet18_torchvision.cnn", "resnet18_torchvision"),
        ("specs/resnext50_32x4d.cnn", "resnext50_32x4d"),
        ("specs/mobilenet_v2.cnn", "mobilenet_v2"),
        ("specs/mobilenet_v2_torchvision.cnn", "mobilenet_v2_torchvision"),
        ("specs/shufflenet_v2_x1_0.cnn", "shufflenet_v2_x1_0"),
        ("specs/squeezenet1_0.cnn", "squeezenet1_0"),
        ("specs/xception.cnn", "xception"),
        ("specs/densenet121.cnn", "densenet121"),
        ("specs/googlenet.cnn", "googlenet"),
        ("specs/inception_v3.cnn", "inception_v3"),
        ("specs/vgg11_lrn.cnn", "vgg11_lrn"),
        ("specs/alexnet_original.cnn", "alexnet"),
    ],
)
def test_more_generated_models_come_back_as_their_specs(spec, file):
    _comes_back(spec, file)


def test_the_generated_unet_comes_back_at_a_small_input():
    text = pathlib.Path("specs/unet.cnn").read_text(encoding="utf-8")
    text = text.replace("input 572*572*1", "input 188*188*1")
    compiled = compile_text(text, path="specs/unet.cnn")
    module = _generated("unet", "Unet")().eval()  # Crop2d reads the size at run time
    imp = import_torch(module, (188, 188, 1), "unet")
    assert same_graph(imp.model, _spelled_as(compiled, imp.model)) == []
    assert imp.model.output_shape == compiled.output_shape == (4, 4, 2)


@pytest.mark.parametrize(
    "ct",
    [
        "CT(3*2*2, s2, valid)",
        "CT(3*2*2, s2, same)",
        "CT(3*3*3, s2, same)",
        "CT(3*3*3, s2, same, output_padding: 1)",  # archc's CroppedConvTranspose2d
        "CT(3*4*4, s3, p1)",
        "CT(3*3*3, s2, p1, output_padding: 1)",
    ],
)
def test_a_transposed_convolution_comes_back_as_the_same_layer(ct):
    """Several spellings are one layer (`same` or `valid` and explicit padding with
    output padding): the imported one crops and pads as the spec's does."""
    compiled = compile_text(f"model t\ninput 7*7*2\n{ct}\n")
    imp = import_torch(build_torch(compiled, "float64").eval(), (7, 7, 2), "t")
    (a,), (b,) = [[n for n in m.nodes if n.kind == "transposed"] for m in (imp.model, compiled)]
    assert a.plan(list(a.in_shapes)) == b.plan(list(b.in_shapes))
    assert a.out_shape == b.out_shape


def test_the_spelling_normalisation_can_fail():
    compiled = compile_spec("specs/resnet18.cnn")
    module = _generated("resnet18", "Resnet18")().eval()
    imp = import_torch(module, compiled.input_shape, "resnet18")
    assert any("padding" in d for d in same_graph(imp.model, compiled))  # p1 / valid vs same
    other = compiled.model_copy(
        update={"nodes": tuple(n.model_copy(update={"trainable": 0}) for n in compiled.nodes)}
    )
    assert same_graph(imp.model, _spelled_as(other, imp.model))


@pytest.mark.parametrize("make", ["lenet", "zoo", "unet", "generated resnet18"])
def test_the_printed_spec_compiles_to_the_same_graph(make):
    modules = {
        "lenet": lambda: (LeNet(), (28, 28, 1)),
        "zoo": lambda: (Zoo(), (32, 32, 3)),
        "unet": lambda: (UNet(), (32, 32, 3)),
        "generated resnet18": lambda: (_generated("resnet18", "Resnet18")(), (32, 32, 3)),
    }
    module, hwc = modules[make]()
    imp = import_torch(module.eval(), hwc, make)
    text = spec_text(imp.model, f"imported from {make}")
    again = compile_text(text, path="<imported>")
    assert same_graph(again, imp.model) == [], text


# ---------------------------------------------------------------------------
# What archc cannot express: every problem, at once
# ---------------------------------------------------------------------------


class Custom(nn.Module):
    def forward(self, x):
        return x * 2


class Unsupported(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.norm = nn.InstanceNorm2d(8)
        self.pixel = nn.PixelShuffle(2)
        self.custom = Custom()
        self.bias = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        x = self.pixel(self.norm(self.conv(x)))
        x = self.custom(x) + self.bias
        return x.permute(0, 2, 3, 1)


def test_every_problem_is_listed_at_once():
    with pytest.raises(ImportFailure) as e:
        import_torch(Unsupported(), (8, 8, 3), "tests:Unsupported")
    problems = {(p.layer, p.cls) for p in e.value.problems}
    assert ("norm", "InstanceNorm2d") in problems
    assert ("pixel", "PixelShuffle") in problems
    assert ("mul", "operator.mul") in problems  # x * 2: a constant
    assert ("bias", "a tensor attribute") in problems
    assert ("permute", "Tensor.permute") in problems
    text = e.value.render()
    assert text.startswith("error: tests:Unsupported has 5 layers archc cannot express:")
    assert "`norm` (InstanceNorm2d), reading `conv`, read by `pixel`" in text


class TwoInputs(nn.Module):
    def forward(self, x, y, unused=None):
        return x + y


class TwoOutputs(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        return self.conv(x), self.conv(x + x)


def test_several_inputs_or_outputs_are_problems():
    with pytest.raises(ImportFailure) as e:
        import_torch(TwoInputs(), (8, 8, 3), "tests:TwoInputs")
    assert [(p.layer, p.why) for p in e.value.problems] == [
        ("y", "a second input: archc's models have one")
    ]
    with pytest.raises(ImportFailure) as e:
        import_torch(TwoOutputs(), (8, 8, 3), "tests:TwoOutputs")
    whys = {p.layer: p.why for p in e.value.problems}
    assert "several values" in whys["output"]
    assert "called 2 times with one set of weights" in whys["conv"]


class InPlace(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 1)
        self.relu = nn.ReLU(inplace=True)
        self.other = nn.Conv2d(4, 4, 1)

    def forward(self, x):
        y = self.conv(x)
        z = self.relu(y)  # y is changed: `other` reads the changed y
        return torch.cat([z, self.other(y)], dim=1)


def test_an_in_place_change_read_later_is_a_problem():
    with pytest.raises(ImportFailure) as e:
        import_torch(InPlace(), (8, 8, 3), "tests:InPlace")
    (p,) = e.value.problems
    assert (p.layer, p.cls) == ("relu", "ReLU")
    assert "changes `conv` in place, which `other` then read(s)" in p.why


class Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        if x.sum() > 0:
            return self.conv(x)
        return x


def test_data_dependent_control_flow_is_a_trace_failure():
    with pytest.raises(ImportFailure) as e:
        import_torch(Branchy(), (8, 8, 3), "tests:Branchy")
    assert e.value.problems == []
    assert "torch.fx cannot trace Branchy" in e.value.message
    assert "TraceError" in e.value.message


class Raises(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 8, 3)  # the input has 3 channels

    def forward(self, x):
        return self.conv(x)


def test_a_forward_that_raises_names_the_layer():
    with pytest.raises(ImportFailure) as e:
        import_torch(Raises(), (8, 8, 3), "tests:Raises")
    (p,) = e.value.problems
    assert (p.layer, p.cls) == ("conv", "Conv2d")
    assert "RuntimeError on a zero input 1 x 3 x 8 x 8" in p.why


class FlattenOut(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)

    def forward(self, x):
        return torch.flatten(self.conv(x), 1)


def test_a_channels_first_vector_that_no_linear_reads_is_a_problem():
    with pytest.raises(ImportFailure) as e:
        import_torch(FlattenOut(), (8, 8, 3), "tests:FlattenOut")
    assert "channels-first order" in e.value.problems[0].why


def test_importing_leaves_the_module_as_it_was():
    m = ResNet(BasicBlock, [1, 1, 1, 1]).train()
    before = {k: v.clone() for k, v in m.state_dict().items()}
    import_torch(m, (32, 32, 3), "resnet")
    assert m.training and all(c.training for c in m.modules())
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())
