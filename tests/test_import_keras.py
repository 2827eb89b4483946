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


def test_nested_sequential_models_are_flattened():
    import keras
    from keras import layers

    from backends.keras.importer import import_keras

    stem = keras.Sequential([layers.Conv2D(4, 2, strides=2), layers.LayerNormalization()])
    ir = import_keras(_functional(lambda x: layers.Activation("relu")(stem(x))), "t").model
    assert [n.kind for n in ir.nodes] == ["input", "conv", "layernorm", "activation"]
