"""`archc import` from Keras: backends/keras/importer.py and the command.

Every keras.applications model of issue 15 is built with weights=None at a
reduced input (APPS: 32x32 where the application allows it; Xception needs at
least 71x71 and InceptionV3 75x75), with 10 classes and no classifier softmax
(an untrained 1000-way softmax is nearly uniform), in float64, its weights and
batch-norm statistics drawn at random (`_randomize`). The imported IR must count
exactly Keras's total, trainable and non-trainable parameters, give every layer
Keras's output shape (by name), and the PyTorch model generated from it, loaded
with the imported weights, must compute Keras's output to 1e-9 * max(1, output
scale) (archc/equiv.py `allowed`).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest

pytestmark = [
    pytest.mark.keras,
    pytest.mark.skipif(
        importlib.util.find_spec("keras") is None or importlib.util.find_spec("torch") is None,
        reason="needs keras and torch",
    ),
]

# application -> (its reduced input side, slow)
APPS = {
    "VGG16": (32, False),
    "VGG19": (32, True),
    "ResNet50": (32, False),
    "ResNet101": (32, True),
    "ResNet152": (32, True),
    "ResNet50V2": (32, True),
    "ResNet101V2": (32, True),
    "ResNet152V2": (32, True),
    "DenseNet121": (32, False),
    "DenseNet169": (32, True),
    "DenseNet201": (32, True),
    "MobileNet": (32, False),
    "MobileNetV2": (32, False),
    "MobileNetV3Small": (32, False),
    "MobileNetV3Large": (32, False),
    "EfficientNetB0": (32, False),
    "Xception": (71, True),
    "InceptionV3": (75, False),
    "ConvNeXtTiny": (32, False),
}


def _randomize(model, seed: int) -> None:
    """Every weight and statistic of a Keras model at a seeded random value, by the
    rules of archc/equiv.py's `randomize` (He-uniform kernels; depthwise kernels by
    one channel's fan-in), set through Keras's own variables."""
    import numpy as np

    rng = np.random.default_rng(seed)
    for layer in _layers(model):
        cls = type(layer).__name__
        for v in layer.weights:
            role, shape = v.path.split("/")[-1], tuple(v.shape)
            if role in ("kernel", "depthwise_kernel", "pointwise_kernel"):
                receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
                per_channel = cls == "DepthwiseConv2D" or role == "depthwise_kernel"
                limit = np.sqrt(6.0 / (receptive * (1 if per_channel else shape[-2])))
                value = rng.uniform(-limit, limit, shape)
            elif role == "bias":
                value = rng.uniform(-0.1, 0.1, shape)
            elif role in ("moving_variance", "variance"):
                value = rng.uniform(0.5, 2.0, shape)
            elif role in ("moving_mean", "beta", "mean"):
                value = rng.normal(0, 0.1, shape)
            elif role == "gamma" or cls == "LayerScale":
                value = rng.uniform(0.5, 1.5, shape)
            elif role == "alpha":  # PReLU's slopes
                value = rng.uniform(0.05, 0.3, shape)
            elif role == "count":
                continue
            else:
                raise AssertionError(f"no rule for {v.path}")
            v.assign(value.astype(v.dtype))
        if cls == "Normalization":
            layer.finalize_state()  # its call reads the broadcast statistics


def _layers(model):
    """The layers of a model, nested models flattened."""
    import keras

    out = []
    for layer in model.layers:
        out.extend(_layers(layer) if isinstance(layer, keras.Model) else [layer])
    return out


def _counts(model) -> tuple[int, int, int]:
    import numpy as np

    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    frozen = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
    return trainable + frozen, trainable, frozen


def _application(name: str, side: int):
    import keras

    from backends.runtime import keras_dtype

    with keras_dtype("float64"):
        return getattr(keras.applications, name)(
            weights=None, input_shape=(side, side, 3), classes=10, classifier_activation=None
        )


def _run_torch(imported, x):
    """The PyTorch build of the imported IR with the imported weights, on x (NHWC)."""
    import torch

    from archc import equiv
    from backends import transfer
    from backends.runtime import build_torch

    ir = imported.model
    model = build_torch(ir, "float64").eval()
    transfer.set_torch_weights(ir, model, imported.weights)
    measured: dict[str, float] = {}
    # Keras's GELU is inexact in float64 (archc/equiv.py KNOWN_INEXACT): PyTorch's is
    # replaced by Keras's while the model runs, and checked against its stated bound
    with torch.no_grad(), equiv._keras_functions(ir, "float64", measured):
        out = model(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy()
    for fn, size in measured.items():
        assert size <= equiv.KNOWN_INEXACT[fn].bound, fn
    return out


@pytest.mark.parametrize(
    "app",
    [pytest.param(a, marks=[pytest.mark.slow] if slow else []) for a, (_, slow) in APPS.items()],
)
def test_application_imports_exactly(app):
    import numpy as np

    from archc.equiv import allowed
    from backends.keras.importer import import_keras

    side = APPS[app][0]
    model = _application(app, side)
    _randomize(model, seed=0)
    imported = import_keras(model, f"keras.applications.{app}")
    ir = imported.model

    assert (ir.params, ir.trainable, ir.nontrainable) == _counts(model)
    nodes = {n.name: n for n in ir.nodes}
    for layer in _layers(model):
        if layer.weights:  # every layer with tensors is a node of its own name
            assert layer.name in nodes, layer.name
            assert nodes[layer.name].params == layer.count_params(), layer.name
        if layer.name in nodes:
            assert nodes[layer.name].out_shape == tuple(layer.output.shape[1:]), layer.name
    # every node is a layer or (ConvNeXt's +, MobileNetV3's hard sigmoid) an operation
    # of the source graph, under its name
    operations = {op.name for op in model.operations} | {layer.name for layer in _layers(model)}
    assert set(nodes) <= operations

    x = np.random.default_rng(1).normal(size=(2, side, side, 3)) * 50.0
    ref = np.asarray(model(x, training=False))
    out = _run_torch(imported, x)
    scale = float(np.abs(ref).max())
    assert float(np.abs(out - ref).max()) <= allowed(scale, "float64")
    # evidence only if the output depends on the input, beyond the tolerance
    assert float(np.ptp(ref, axis=0).max()) > 1e3 * allowed(scale, "float64")


@pytest.mark.parametrize(
    "app",
    [pytest.param(a, marks=[pytest.mark.slow] if slow else []) for a, (_, slow) in APPS.items()],
)
def test_application_prints_as_a_spec_of_the_same_graph(app):
    """What `archc import` does after importing: print the spec, compile it, check
    it is the imported graph (porting.printed raises ImportFailure otherwise), and
    key the weights by the spec's node names."""
    import keras

    from archc import porting
    from backends.keras.importer import import_keras

    side = APPS[app][0]
    model = getattr(keras.applications, app)(weights=None, input_shape=(side, side, 3))
    imported = import_keras(model, f"keras.applications.{app}")
    ported = porting.printed(imported, model, None, f"{app}.cnn")
    assert ported.model.params == model.count_params()
    assert len(ported.spec.splitlines()) < len(ported.model.nodes)  # blocks, not a flat list
    expected = {
        f"{n.name}/{w.role}" for n in ported.model.nodes for w in n.weights(list(n.in_shapes))
    }
    assert set(ported.weights) == expected


# Every spec of specs/ built in Keras by archc and imported back (then printed,
# formatted and compiled) is tested in tests/test_import_roundtrip.py: 42 come back
# as exactly their own graph, the other 9 differ only in spellings a Keras model
# keeps no trace of (its KERAS_DIFFERS pins them). Here: the folds themselves.


def test_archc_padding_and_helpers_fold_back():
    """Every pattern of backends/keras/generator.py's explicit padding and pooling:
    zeros before a convolution, depthwise, separable and average pooling, -inf
    before a max pooling, ceil mode's overhang (max and average), the crop after a
    transposed convolution, and the channel shuffle and split helpers."""
    from archc.ir.model import same_graph
    from archc.pipeline import compile_text
    from backends.keras.importer import import_keras
    from backends.runtime import build_keras

    ir = compile_text(
        "model folds\ninput 21*21*4\n"
        "C(8*3*3, p(1, 2)) DW(3*3, p1) SC(8*3*3, p(2, 1)) P(max, 3, 1, p1) "
        "P(avg, 3, 1, p1) P(max, 2, 2, ceil) P(max, 3, 2, p1, ceil) "
        "P(avg, 2, 2, ceil) P(avg, 3, 2, p1, ceil) "
        "concat { Split(2, 0) | Split(2, 1) C(4*1*1) } Shuffle(2) "
        "CT(4*3*3, s2, p1) CT(4*3*3, s2, p(1, 2), output_padding: 1) GAP Dense(2)\n"
    )
    assert [n.ceil for n in ir.nodes if n.kind == "pool"] == [False] * 2 + [True] * 4
    model = build_keras(ir)
    assert sum(layer.name.endswith(".pad") for layer in model.layers) == 8
    assert sum(layer.name.endswith(".crop") for layer in model.layers) == 2
    assert sum(type(layer).__name__ == "CeilAveragePooling2D" for layer in model.layers) == 2
    imported = import_keras(model, "folds")
    assert same_graph(imported.model, ir) == []


def test_a_users_own_zero_padding_stays_a_layer():
    """Only archc's pattern folds: a ZeroPadding2D named otherwise, or named `X.pad`
    before an X that pads `same`, or read by two layers, stays a zero padding."""
    import keras

    from backends.keras.importer import import_keras

    def build(x):
        p = keras.layers.ZeroPadding2D(1, name="pad1")(x)
        y = keras.layers.Conv2D(4, 3, name="c1")(p)
        p = keras.layers.ZeroPadding2D(1, name="c2.pad")(y)
        y = keras.layers.Conv2D(4, 3, padding="same", name="c2")(p)
        p = keras.layers.ZeroPadding2D(1, name="c3.pad")(y)
        a = keras.layers.Conv2D(4, 3, name="c3")(p)
        b = keras.layers.Conv2D(4, 3, name="c4")(p)
        return keras.layers.Add(name="sum")([a, b])

    ir = import_keras(_functional(build), "users").model
    kinds = [(n.kind, getattr(n, "padding", None)) for n in ir.nodes]
    assert kinds == [
        ("input", None),
        ("zeropad", None),
        ("conv", "valid"),
        ("zeropad", None),
        ("conv", "same"),
        ("zeropad", None),
        ("conv", "valid"),
        ("conv", "valid"),
        ("add", None),
    ]


def test_a_users_own_crop_after_a_transposed_convolution_stays_a_layer():
    import keras

    from backends.keras.importer import import_keras

    def build(x):
        y = keras.layers.Conv2DTranspose(4, 3, strides=2, name="t1")(x)
        y = keras.layers.Cropping2D(1, name="crop1")(y)
        y = keras.layers.Conv2DTranspose(4, 3, strides=2, padding="same", name="t2")(y)
        return keras.layers.Cropping2D(1, name="t2.crop")(y)

    ir = import_keras(_functional(build, (4, 4, 3)), "users").model
    kinds = [(n.kind, getattr(n, "padding", None)) for n in ir.nodes]
    assert kinds == [
        ("input", None),
        ("transposed", "valid"),
        ("crop", None),
        ("transposed", "same"),
        ("crop", None),
    ]


def test_archc_helper_layers_import_as_their_kinds():
    from archc.ir.model import same_graph
    from archc.pipeline import compile_text
    from backends.keras.importer import import_keras
    from backends.runtime import build_keras

    ir = compile_text(
        "model helpers\ninput 8*8*6\nC(6*3*3, same) LRN(depth: 3, alpha: 2e-4) "
        "Scale(0.5) A(gelu_tanh) GAP Dense(2)\n"
    )
    imported = import_keras(build_keras(ir), "helpers")
    assert same_graph(imported.model, ir) == []


# ---------------------------------------------------------------------------
# What the importer carries and what it refuses, on small hand-built models
# ---------------------------------------------------------------------------


def _functional(build, shape=(16, 16, 3)):
    import keras

    inputs = keras.Input(shape)
    return keras.Model(inputs, build(inputs))


def test_settings_are_carried():
    import keras
    from keras import layers

    def build(x):
        x = layers.Rescaling(1 / 127.5, offset=-1)(x)
        x = layers.Conv2D(
            8, 3, strides=2, padding="same", use_bias=False, kernel_initializer="he_normal"
        )(x)
        x = layers.BatchNormalization(epsilon=1e-5, momentum=0.9)(x)
        x = layers.ReLU(6.0)(x)
        x = layers.DepthwiseConv2D(3, dilation_rate=2, padding="same", activation="relu")(x)
        y = layers.Conv2D(8, 1, groups=2, bias_initializer=keras.initializers.Constant(0.1))(x)
        x = layers.Concatenate()([x, y])
        x = layers.ZeroPadding2D(((0, 1), (2, 3)))(x)
        x = layers.AveragePooling2D(3, strides=2, padding="same")(x)
        x = layers.LayerNormalization(epsilon=1e-6)(x)
        x = layers.GlobalAveragePooling2D(keepdims=True)(x)
        x = layers.Flatten()(x)
        x = layers.Dropout(0.3)(x)
        return layers.Dense(5, activation="softmax")(x)

    from backends.keras.importer import import_keras

    ir = import_keras(_functional(build), "test").model
    kinds = [n.kind for n in ir.nodes]
    assert kinds == [
        "input", "rescaling", "conv", "batchnorm", "activation", "depthwise", "conv",
        "concat", "zeropad", "pool", "layernorm", "globalpool", "flatten", "dropout", "dense",
    ]  # fmt: skip
    by_kind = {n.kind: n for n in ir.nodes}
    (conv, grouped) = [n for n in ir.nodes if n.kind == "conv"]
    assert (conv.stride, conv.padding, conv.use_bias, conv.init) == (
        (2, 2),
        "same",
        False,
        "he_normal",
    )
    assert (grouped.groups, grouped.bias_init) == (2, 0.1)
    assert (by_kind["batchnorm"].epsilon, by_kind["batchnorm"].momentum) == (1e-5, 0.9)
    assert by_kind["activation"].fn == "relu6"
    assert (by_kind["depthwise"].dilation, by_kind["depthwise"].activation) == ((2, 2), "relu")
    assert by_kind["zeropad"].pad == (0, 1, 2, 3)
    assert by_kind["pool"].padding == "same" and by_kind["pool"].op == "avg"
    assert by_kind["layernorm"].epsilon == 1e-6
    assert by_kind["globalpool"].keepdims
    assert by_kind["dropout"].rate == 0.3
    assert (by_kind["rescaling"].scale, by_kind["rescaling"].offset) == (1 / 127.5, -1.0)
    assert by_kind["dense"].activation == "softmax"


def test_the_other_layers_compute_keras_function_in_float64():
    """The converters no application above uses, run: the PyTorch build of the
    imported IR computes the Keras model's output to 1e-9."""
    import keras
    import numpy as np
    from keras import layers

    from archc.equiv import allowed
    from backends.keras.importer import import_keras
    from backends.runtime import keras_dtype

    def build(x):
        x = layers.Normalization(mean=[0.5, -0.2, 0.1], variance=[2.0, 1.0, 0.5])(x)
        x = layers.SeparableConv2D(6, 3, dilation_rate=2, padding="same", depth_multiplier=2)(x)
        x = layers.GroupNormalization(groups=3, epsilon=1e-4)(x)
        x = layers.LeakyReLU(0.1)(x)
        x = layers.Conv2DTranspose(4, 3, strides=2, padding="same", output_padding=1)(x)
        x = layers.PReLU(shared_axes=[1, 2])(x)
        x = layers.Cropping2D(((1, 2), (0, 3)))(x)
        x = layers.UpSampling2D(2)(x)
        x = layers.ELU(0.7)(x)
        x = layers.Resizing(10, 12, interpolation="nearest")(x)
        x = layers.Dropout(0.2, noise_shape=(None, 1, 1, 1))(x)
        x = layers.Conv2D(3, 3, activation="tanh")(x)
        x = layers.GlobalMaxPooling2D()(x)
        x = layers.Reshape((1, 1, 3))(x)
        x = layers.Flatten()(x)
        return layers.Activation("softmax")(x)

    with keras_dtype("float64"):
        model = _functional(build, shape=(8, 8, 3))
    _randomize(model, seed=2)
    imported = import_keras(model, "mixed")
    assert [n.kind for n in imported.model.nodes][1:] == [
        "normalization", "separable", "groupnorm", "activation", "transposed", "activation",
        "crop", "upsample", "activation", "resize", "droppath", "conv", "globalpool",
        "reshape", "flatten", "activation",
    ]  # fmt: skip
    x = np.random.default_rng(1).normal(size=(2, 8, 8, 3)) * 3.0
    ref = np.asarray(model(x, training=False))
    out = _run_torch(imported, x)
    assert float(np.abs(out - ref).max()) <= allowed(float(np.abs(ref).max()), "float64")
    assert float(np.ptp(ref, axis=0).max()) > 1e-3
    assert keras.config.floatx() == "float32"  # keras_dtype restored it


def test_hard_sigmoid_and_hard_swish_written_as_operations_are_folded():
    from keras import layers

    from backends.keras.importer import import_keras

    def hard_sigmoid(x):
        return layers.ReLU(6.0)(x + 3.0) * (1.0 / 6.0)

    def build(x):
        x = layers.Conv2D(4, 3)(x)
        x = x * hard_sigmoid(x)  # hard swish, written out
        g = layers.Conv2D(4, 1)(layers.GlobalAveragePooling2D(keepdims=True)(x))
        return layers.Multiply()([x, hard_sigmoid(g)])

    ir = import_keras(_functional(build), "test").model
    assert [(n.kind, getattr(n, "fn", None)) for n in ir.nodes if n.kind == "activation"] == [
        ("activation", "hard_swish"),
        ("activation", "hard_sigmoid"),
    ]
    assert len(ir.nodes) == 7  # input, conv, hard_swish, GAP, conv, hard_sigmoid, mul


def _problems(build, shape=(16, 16, 3)):
    from backends.importing import ImportFailure
    from backends.keras.importer import import_keras

    with pytest.raises(ImportFailure) as e:
        import_keras(_functional(build, shape), "test")
    return e.value


def test_everything_archc_cannot_express_is_reported_at_once():
    import keras
    from keras import layers

    class Mine(layers.Layer):
        def call(self, x):
            return x * 2

    def build(x):
        a = layers.Conv2D(4, 3, padding="same", name="c1")(x)
        b = layers.Lambda(lambda t: t * 2, name="twice")(a)
        c = Mine(name="mine")(b)
        d = keras.ops.subtract(c, 1.0)  # an operation archc does not read
        shared = layers.Conv2D(4, 1, name="shared")
        e = shared(shared(d))
        f = layers.Concatenate(axis=1, name="rows")([e, e])
        return layers.BatchNormalization(center=False, name="bn")(f)

    failure = _problems(build)
    by_layer = {p.layer: p for p in failure.problems}
    assert set(by_layer) >= {"twice", "mine", "shared", "rows", "bn"}
    assert any(p.cls == "Subtract" for p in failure.problems)
    assert by_layer["twice"].cls == "Lambda" and "reads c1" in by_layer["twice"].where
    assert "custom layer" in by_layer["mine"].why
    assert "called 2 times" in by_layer["shared"].why
    assert "axis 1" in by_layer["rows"].why
    text = failure.render()
    assert text.startswith(f"error: test has {len(failure.problems)} layers archc cannot express")


def test_dynamic_shapes_and_channels_first_are_refused():
    from keras import layers

    failure = _problems(lambda x: layers.Conv2D(4, 3)(x), shape=(None, None, 3))
    assert "unknown" in failure.problems[0].why
    failure = _problems(lambda x: layers.Conv2D(4, 3, data_format="channels_first")(x))
    assert "channels_first" in failure.problems[0].why


def test_several_outputs_are_refused():
    import keras
    from keras import layers

    from backends.importing import ImportFailure
    from backends.keras.importer import import_keras

    x = keras.Input((8, 8, 3))
    model = keras.Model(x, [layers.Conv2D(2, 1)(x), layers.Conv2D(3, 1)(x)])
    with pytest.raises(ImportFailure, match="2 outputs"):
        import_keras(model, "two")


def test_a_nested_subclassed_model_is_a_custom_class():
    import keras
    from keras import layers

    class Block(keras.Model):
        def __init__(self):
            super().__init__()
            self.conv = layers.Conv2D(4, 3)

        def call(self, x):
            return self.conv(x)

    failure = _problems(lambda x: layers.ReLU()(Block()(x)))
    assert [p.cls for p in failure.problems] == ["Block"]
    assert "custom layer class" in failure.problems[0].why


def test_nested_sequential_models_are_flattened():
    import keras
    from keras import layers

    from backends.keras.importer import import_keras

    stem = keras.Sequential([layers.Conv2D(4, 2, strides=2), layers.LayerNormalization()])
    ir = import_keras(_functional(lambda x: layers.Activation("relu")(stem(x))), "t").model
    assert [n.kind for n in ir.nodes] == ["input", "conv", "layernorm", "activation"]


# ---------------------------------------------------------------------------
# The command: archc import
# ---------------------------------------------------------------------------


def _small_keras(path):
    """A small functional model with every weight non-trivial, saved as .keras."""
    import keras
    from keras import layers

    x = keras.Input((12, 12, 3))
    y = layers.Conv2D(8, 3, padding="same", use_bias=False, name="stem")(x)
    y = layers.BatchNormalization(name="stem_bn")(y)
    y = layers.Activation("relu", name="stem_relu")(y)
    z = layers.DepthwiseConv2D(3, padding="same", name="dw")(y)
    z = layers.BatchNormalization(name="dw_bn")(z)
    y = layers.Add(name="residual")([y, z])
    y = layers.MaxPooling2D(2, name="pool")(y)
    y = layers.GlobalAveragePooling2D(name="gap")(y)
    y = layers.Dense(4, name="head")(y)
    model = keras.Model(x, y, name="small")
    _randomize(model, seed=3)
    model.save(path)
    return model


def _archc(*argv, capsys):
    from archc.cli import main

    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def test_a_keras_file_round_trips(tmp_path, capsys):
    import numpy as np

    from archc.pipeline import compile_spec
    from backends.transfer import load_weights

    source = str(tmp_path / "small.keras")
    model = _small_keras(source)
    spec, weights = str(tmp_path / "small.cnn"), str(tmp_path / "small.npz")
    rc, out, err = _archc(
        "import", source, "-o", spec, "--weights", weights, "--check", capsys=capsys
    )
    assert rc == 0, err
    assert "small: ok" in out and "no node diverges" in out
    with open(spec, encoding="utf-8") as f:
        text = f.read()
    assert text.startswith(f"# Imported by `archc import` from {source} (keras)")
    ir = compile_spec(spec)
    assert (ir.params, ir.trainable, ir.nontrainable) == _counts(model)
    saved = load_weights(weights)
    assert np.array_equal(saved["stem/kernel"], model.get_layer("stem").get_weights()[0])
    assert np.array_equal(saved["dw_bn/moving_variance"], model.get_layer("dw_bn").get_weights()[3])
    # the same source gives the same bytes
    again = str(tmp_path / "again.cnn")
    assert _archc("import", source, "-o", again, capsys=capsys)[0] == 0
    with open(again, encoding="utf-8") as f:
        assert f.read() == text


def test_a_failed_check_writes_nothing(tmp_path, capsys, monkeypatch):
    from archc import porting

    real = porting.check

    def diverging(ported, **kw):  # the real comparison, then one node made to diverge
        result = real(ported, **kw)
        result.nodes[0].diff = 10 * result.nodes[0].allowed
        return result

    monkeypatch.setattr(porting, "check", diverging)
    source = str(tmp_path / "small.keras")
    _small_keras(source)
    spec, weights = tmp_path / "s.cnn", tmp_path / "s.npz"
    rc, out, err = _archc(
        "import", source, "-o", str(spec), "--weights", str(weights), "--check", capsys=capsys
    )
    assert rc == 1 and "DIVERGES" in out and "first node to diverge: stem" in out
    assert "the check failed: nothing written" in err
    assert not spec.exists() and not weights.exists()


def test_an_application_with_a_weights_file(tmp_path, capsys):
    import keras
    import numpy as np

    from backends.transfer import load_weights

    model = keras.applications.MobileNet(weights=None, input_shape=(32, 32, 3))
    _randomize(model, seed=5)
    saved = str(tmp_path / "mobilenet.weights.h5")
    model.save_weights(saved)
    spec, weights = str(tmp_path / "m.cnn"), str(tmp_path / "m.npz")
    argv = ("keras.applications.MobileNet", "--input", "32x32x3", "--source-weights", saved)
    rc, _, err = _archc("import", *argv, "-o", spec, "--weights", weights, capsys=capsys)
    assert rc == 0, err
    got = load_weights(weights)
    assert len(got) == sum(len(layer.weights) for layer in model.layers)
    bn = model.get_layer("conv_dw_3_bn").get_weights()
    names = [k for k in got if k.endswith("/moving_mean")]
    assert any(np.array_equal(got[k], bn[2]) for k in names)


def test_a_pytorch_callable_goes_to_the_pytorch_importer(tmp_path, capsys):
    """The command's dispatch: an nn.Module from module:callable is imported by
    backends/pytorch/importer.py and checked against the spec's Keras build."""
    nets = tmp_path / "tnets.py"
    nets.write_text(
        "import torch.nn as nn\n"
        "def net():\n"
        "    return nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),\n"
        "                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 4))\n",
        encoding="utf-8",
    )
    spec = str(tmp_path / "t.cnn")
    assert "needs --input" in _refused(tmp_path, capsys, f"{nets}:net")
    rc, out, err = _archc("import", f"{nets}:net", "--input", "16x16x3", "-o", spec, "--check",
                          capsys=capsys)  # fmt: skip
    assert rc == 0, err
    assert "torch2keras, float64" in out and "no node diverges" in out
    with open(spec, encoding="utf-8") as f:
        assert f.readline().startswith(f"# Imported by `archc import` from {nets}:net (torch)")


def _refused(tmp_path, capsys, *argv):
    spec, weights = tmp_path / "out.cnn", tmp_path / "out.npz"
    rc, _, err = _archc("import", *argv, "-o", str(spec), "--weights", str(weights), capsys=capsys)
    assert rc == 1
    assert err.startswith("error: ") and "Traceback" not in err
    assert not spec.exists() and not weights.exists()
    return err


def test_bad_sources_are_clear_errors_and_write_nothing(tmp_path, capsys):
    import keras
    from keras import layers

    x = keras.Input((8, 8, 3), name="pixels")
    lam = str(tmp_path / "lambda.keras")
    keras.Model(x, layers.Lambda(lambda t: t * 2.0, name="twice")(x)).save(lam)
    assert "`twice` (Lambda), reads pixels, read by the model's output" in _refused(
        tmp_path, capsys, lam
    )

    class Doubling(layers.Layer):  # not registered: a loader cannot know it
        def call(self, t):
            return t * 2.0

    custom = str(tmp_path / "custom.keras")
    keras.Model(x, Doubling(name="mine")(x)).save(custom)
    err = _refused(tmp_path, capsys, custom)
    assert "`mine` (Doubling), reads pixels" in err and "custom layer class" in err

    good = str(tmp_path / "good.keras")
    _small_keras(good)
    truncated = tmp_path / "truncated.keras"
    with open(good, "rb") as f:
        data = f.read()
    truncated.write_bytes(data[: len(data) // 2])
    assert "could not load" in _refused(tmp_path, capsys, str(truncated))

    assert "no such file" in _refused(tmp_path, capsys, str(tmp_path / "absent.keras"))
    err = _refused(tmp_path, capsys, "archc_no_such_module_xyz:build")
    assert "no module named 'archc_no_such_module_xyz'" in err
    nets = tmp_path / "nets.py"
    nets.write_text(
        "import keras\n"
        "def boom():\n"
        "    raise RuntimeError('no GPU here')\n"
        "def lambda_net():\n"
        "    x = keras.Input((8, 8, 3))\n"
        "    y = keras.layers.Conv2D(2, 3, name='c')(x)\n"
        "    return keras.Model(x, keras.layers.Lambda(lambda t: t + 1, name='plus')(y))\n",
        encoding="utf-8",
    )
    assert "boom() raised RuntimeError: no GPU here" in _refused(tmp_path, capsys, f"{nets}:boom")
    assert "no callable 'nope'" in _refused(tmp_path, capsys, f"{nets}:nope")
    err = _refused(tmp_path, capsys, f"{nets}:lambda_net")
    assert "`plus` (Lambda), reads c, the model's output" in err
    assert "has no model 'NoSuchNet'" in _refused(tmp_path, capsys, "keras.applications.NoSuchNet")


def test_the_command_exits_1_without_a_traceback(tmp_path):
    spec = tmp_path / "out.cnn"
    r = subprocess.run(
        [sys.executable, "-m", "archc", "import", "archc_no_such_module_xyz:net", "-o", str(spec)],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert r.returncode == 1
    assert "Traceback" not in r.stderr and "no module named" in r.stderr
    assert not spec.exists()
