"""A Keras 3 model -> archc's IR and its weights (`archc import`).

The functional graph is walked from the model's output back to its input (nested
`Sequential` and functional models are flattened into their layers); each layer
becomes one IR node through the converter of its class (`@imports("Conv2D")`
below, one per Keras class, each stating exactly which settings it carries and
refusing the ones archc cannot express). Keras 3 writes some arithmetic on tensors
as raw operations, not layers; exactly these are recognised:

- `ReLU(6.0)(x + 3.0) * (1.0 / 6.0)`, MobileNetV3's hard sigmoid -> `A(hard_sigmoid)`;
- `x * hard_sigmoid(x)`, the hard swish written out -> `A(hard_swish)`;
- `x + y` of two tensors (ConvNeXt's residual sum) -> `add`.

archc's own generated layers are read back as what they were generated from: its
helper classes (`archc>LayerScale`, ...; ARCHC_HELPERS) as their kinds, and its
explicit padding, the layer `X.pad` before a `valid` X, folded into X
(`_fold_padding`: exactly the generator's pattern; any other ZeroPadding2D stays a
zero-padding node). The nodes come in the order the model called its layers
(`_call_order`), so a model generated from a spec imports to that spec's graph.

Everything else (a Lambda, a custom layer class, any other operation, a layer
called twice, several inputs or outputs, an unknown spatial size, channels-first
data, a setting without an archc equivalent) is a `Problem` naming the layer, its
class and its neighbours; all of them are raised at once as one `ImportFailure`.

Shapes and counts come from archc's own inference (archc/passes/infer.py); each
node's inferred shape is then checked against Keras's, so an importer that
mistranslated a layer fails here, not later. Weights are each layer's
`get_weights()` in the roles of the kind's `weights()` (backends/transfer.py's
neutral form), keyed "<node>/<role>".
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from archc.ir import Model
from archc.ir.kinds import FUSABLE, KINDS, Node
from backends.importing import Imported, ImportFailure, Problem


class Refuse(Exception):
    """Raised by a converter: archc cannot express this layer; the message says why."""


@dataclass
class Call:
    """One call of a layer in the graph, as a converter sees it."""

    layer: Any
    name: str  # the IR node's name
    inputs: tuple[str, ...]  # the IR names of its input tensors
    in_shapes: list[tuple]  # Keras's input shapes, batch axis dropped
    out_shape: tuple
    reshape_weights: bool = False  # a converter sets it where Keras's tensors are reshaped
    # explicit padding (h, w) folded from archc's generated `<layer>.pad` (_fold_padding)
    padding: tuple[int, int] | None = None
    ceil: bool = False  # a max pooling's -inf overhang folded from its `.pad` (PyTorch's ceil)

    def node(self, kind: str, **fields: Any) -> Node:
        return KINDS[kind](name=self.name, inputs=self.inputs, **fields)


Converter = Callable[[Call], Node | None]  # None: the identity (the tensor passes through)
CONVERTERS: dict[str, Converter] = {}  # Keras layer class -> its converter


def imports(*classes: str):
    def register(fn: Converter) -> Converter:
        for cls in classes:
            CONVERTERS[cls] = fn
        return fn

    return register


# ---------------------------------------------------------------------------
# Settings shared by several converters
# ---------------------------------------------------------------------------

# Keras's activation names -> archc's (`swish` is Keras's alias of `silu`)
ACTIVATION_NAMES = {
    "relu": "relu",
    "relu6": "relu6",
    "sigmoid": "sigmoid",
    "hard_sigmoid": "hard_sigmoid",
    "tanh": "tanh",
    "softmax": "softmax",
    "elu": "elu",
    "selu": "selu",
    "gelu": "gelu",
    "silu": "silu",
    "swish": "silu",
    "softplus": "softplus",
    "hard_silu": "hard_swish",
    "hard_swish": "hard_swish",
    "mish": "mish",
    "leaky_relu": "leaky_relu",
}

# Keras's initializer classes (default settings) -> archc's `init:` names
INITIALIZER_NAMES = {
    "GlorotUniform": "glorot_uniform",
    "GlorotNormal": "glorot_normal",
    "HeNormal": "he_normal",
    "HeUniform": "he_uniform",
    "LecunNormal": "lecun_normal",
    "LecunUniform": "lecun_uniform",
    "Zeros": "zeros",
    "Ones": "ones",
    "Orthogonal": "orthogonal",
}


def _keras():
    import keras

    return keras


def _activation_name(fn) -> str:
    name = _keras().activations.serialize(fn)
    if not isinstance(name, str):
        raise Refuse(f"its activation {name!r} is not one of Keras's named activations")
    return name


def _fused(layer) -> str | None:
    """A convolution's or Dense's fused activation, None for linear."""
    name = _activation_name(layer.activation)
    if name == "linear":
        return None
    fn = ACTIVATION_NAMES.get(name)
    if fn not in FUSABLE:
        raise Refuse(
            f"its fused activation `{name}` is not one archc fuses "
            f"(fusable: {', '.join(FUSABLE)}); write it as a separate Activation layer"
        )
    return fn


def _init(initializer) -> str | None:
    """`init:` for a kernel initializer archc can spell other than Keras's default
    (Glorot-uniform, which is also archc's); None for the default and for one
    archc cannot spell (EfficientNet's VarianceScaling(2.0, fan_out)): an
    initializer only chooses where training from scratch starts, and the imported
    weights replace it (docs/import.md says so)."""
    conf = _keras().initializers.serialize(initializer)
    cls = conf["class_name"] if isinstance(conf, dict) else str(conf)
    settings = {k: v for k, v in (conf.get("config") or {}).items() if v is not None}
    settings.pop("seed", None)
    name = INITIALIZER_NAMES.get(cls)
    if name is None or (settings and cls != "Orthogonal") or settings.get("gain", 1.0) != 1.0:
        return None
    return None if name == "glorot_uniform" else name


def _bias_init(layer) -> float | str | None:
    """`bias_init:` where archc can spell it (zeros, archc's default, is None)."""
    conf = _keras().initializers.serialize(layer.bias_initializer)
    cls = conf["class_name"] if isinstance(conf, dict) else str(conf)
    if cls == "Constant":
        return float(conf["config"]["value"])
    return "ones" if cls == "Ones" else None


def _l2(regularizer) -> float | None:
    if regularizer is None:
        return None
    conf = _keras().regularizers.serialize(regularizer)
    cls = conf["class_name"] if isinstance(conf, dict) else str(conf)
    config = conf.get("config", {}) if isinstance(conf, dict) else {}
    if cls in ("L2", "l2"):
        return float(config["l2"])
    raise Refuse(f"its kernel regularizer {cls} has no archc spelling (archc has `l2:` only)")


def _no_regularizers(layer, *attrs: str) -> None:
    for attr in attrs:
        if getattr(layer, attr, None) is not None:
            raise Refuse(f"its {attr} has no archc spelling (archc has a kernel `l2:` only)")


def _channels_last(layer) -> None:
    if getattr(layer, "data_format", "channels_last") != "channels_last":
        raise Refuse(
            "it is channels_first: archc's maps are H x W x C "
            "(rebuild the model with data_format='channels_last')"
        )


def _pair(value) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    return (int(value[0]), int(value[1]))


def _padding(c: Call) -> str | tuple[int, int]:
    """The layer's `same` or `valid`, or the explicit padding folded into it."""
    if c.layer.padding not in ("same", "valid"):
        raise Refuse(f"padding `{c.layer.padding}` has no archc equivalent (same or valid)")
    return c.layer.padding if c.padding is None else c.padding


def _window_fields(c: Call) -> dict:
    layer = c.layer
    _channels_last(layer)
    return {
        "kernel": _pair(layer.kernel_size),
        "stride": _pair(layer.strides),
        "padding": _padding(c),
        "dilation": _pair(layer.dilation_rate),
        "use_bias": bool(layer.use_bias),
        "activation": _fused(layer),
        "bias_init": _bias_init(layer) if layer.use_bias else None,
    }


def _last_axis(axis, rank: int, what: str) -> None:
    axes = list(axis) if isinstance(axis, (list, tuple)) else [axis]
    if [a % (rank + 1) if a < 0 else a for a in axes] != [rank]:
        raise Refuse(f"{what} over axis {axis}: archc's acts on the channels (the last axis) only")


# ---------------------------------------------------------------------------
# The converters, one per Keras class
# ---------------------------------------------------------------------------


@imports("Conv2D")
def conv2d(c: Call) -> Node:
    layer = c.layer
    _no_regularizers(layer, "bias_regularizer", "activity_regularizer")
    return c.node(
        "conv",
        filters=int(layer.filters),
        groups=int(layer.groups),
        init=_init(layer.kernel_initializer),
        l2=_l2(layer.kernel_regularizer),
        **_window_fields(c),
    )


@imports("DepthwiseConv2D")
def depthwise(c: Call) -> Node:
    layer = c.layer
    _no_regularizers(layer, "bias_regularizer", "activity_regularizer")
    return c.node(
        "depthwise",
        multiplier=int(layer.depth_multiplier),
        init=_init(layer.depthwise_initializer),
        l2=_l2(layer.depthwise_regularizer),
        **_window_fields(c),
    )


@imports("SeparableConv2D")
def separable(c: Call) -> Node:
    layer = c.layer
    _no_regularizers(
        layer,
        "depthwise_regularizer",
        "pointwise_regularizer",
        "bias_regularizer",
        "activity_regularizer",
    )
    init = _init(layer.depthwise_initializer)
    if _init(layer.pointwise_initializer) != init:
        raise Refuse("its depthwise and pointwise initializers differ: archc's `init:` is one")
    return c.node(
        "separable",
        filters=int(layer.filters),
        multiplier=int(layer.depth_multiplier),
        init=init,
        **_window_fields(c),
    )


@imports("Conv2DTranspose")
def transposed(c: Call) -> Node:
    layer = c.layer
    _no_regularizers(layer, "bias_regularizer", "activity_regularizer")
    fields = _window_fields(c)
    if fields.pop("dilation") != (1, 1):
        raise Refuse("a dilated transposed convolution has no archc equivalent")
    op = None if layer.output_padding is None else _pair(layer.output_padding)
    if c.padding is not None and op == (0, 0):  # explicit padding's default, as PyTorch's
        op = None
    return c.node(
        "transposed",
        filters=int(layer.filters),
        output_padding=op,
        init=_init(layer.kernel_initializer),
        l2=_l2(layer.kernel_regularizer),
        **fields,
    )


@imports("Dense")
def dense(c: Call) -> Node:
    """On a vector, `Dense`; on a feature map (ConvNeXt's pointwise layers) Keras's
    Dense acts on the channels: a 1x1 convolution, the same function with the same
    parameters (its kernel (C, n) reshaped to (1, 1, C, n))."""
    layer = c.layer
    _no_regularizers(layer, "bias_regularizer", "activity_regularizer")
    fields = {
        "use_bias": bool(layer.use_bias),
        "activation": _fused(layer),
        "init": _init(layer.kernel_initializer),
        "bias_init": _bias_init(layer) if layer.use_bias else None,
        "l2": _l2(layer.kernel_regularizer),
    }
    rank = len(c.in_shapes[0])
    if rank == 1:
        return c.node("dense", units=int(layer.units), **fields)
    if rank == 3:
        c.reshape_weights = True
        return c.node("conv", filters=int(layer.units), kernel=(1, 1), **fields)
    raise Refuse(f"a Dense on a rank-{rank} tensor has no archc equivalent")


@imports("BatchNormalization")
def batchnorm(c: Call) -> Node:
    layer = c.layer
    _last_axis(layer.axis, len(c.in_shapes[0]), "batch normalisation")
    if not layer.center:
        raise Refuse("center=False (no beta) has no archc equivalent")
    if getattr(layer, "renorm", False):
        raise Refuse("batch renormalisation has no archc equivalent")
    _no_regularizers(layer, "beta_regularizer", "gamma_regularizer")
    return c.node(
        "batchnorm",
        epsilon=float(layer.epsilon),
        momentum=float(layer.momentum),
        scale=bool(layer.scale),
    )


@imports("LayerNormalization")
def layernorm(c: Call) -> Node:
    layer = c.layer
    _last_axis(layer.axis, len(c.in_shapes[0]), "layer normalisation")
    if not (layer.center and layer.scale) or getattr(layer, "rms_scaling", False):
        raise Refuse("only a layer norm with both gamma and beta (center and scale) is archc's")
    return c.node("layernorm", epsilon=float(layer.epsilon))


@imports("GroupNormalization")
def groupnorm(c: Call) -> Node:
    layer = c.layer
    _last_axis(layer.axis, len(c.in_shapes[0]), "group normalisation")
    if not (layer.center and layer.scale):
        raise Refuse("only a group norm with both gamma and beta (center and scale) is archc's")
    return c.node("groupnorm", groups=int(layer.groups), epsilon=float(layer.epsilon))


@imports("LayerScale")
def layerscale(c: Call) -> Node:
    """keras.applications.convnext.LayerScale: x * gamma, gamma starting at init_values."""
    return c.node("layerscale", init=float(c.layer.init_values))


@imports("StochasticDepth")
def stochastic_depth(c: Call) -> Node:
    """keras.applications.convnext.StochasticDepth: drop path."""
    return c.node("droppath", rate=float(c.layer.drop_path_rate))


# archc's own helper layers of generated Keras code (backends/keras/generator.py
# HELPERS), known by the name they are registered under: "archc>LayerScale".
ARCHC_HELPERS: dict[str, Converter] = {}


def _archc_helper(op) -> Converter | None:
    name = _keras().saving.get_registered_name(type(op))
    return ARCHC_HELPERS.get(name)


def _helper(cls: str):
    def register(fn: Converter) -> Converter:
        ARCHC_HELPERS[f"archc>{cls}"] = fn
        return fn

    return register


@_helper("LayerScale")
def archc_layerscale(c: Call) -> Node:
    return c.node("layerscale", init=float(c.layer.init))


@_helper("LocalResponseNormalization")
def archc_lrn(c: Call) -> Node:
    layer = c.layer
    return c.node(
        "lrn",
        depth=int(layer.depth),
        alpha=float(layer.alpha),
        beta=float(layer.beta),
        bias_k=float(layer.k),
    )


@_helper("GeluTanh")
def archc_gelu_tanh(c: Call) -> Node:
    return c.node("activation", fn="gelu_tanh")


def _overhang(c: Call, kernel, stride, padding) -> tuple[int, int]:
    """The cells past the padded input that the last window of PyTorch's ceil-mode
    pooling covers, per axis, for Keras's output size (backends/keras/generator.py
    `_ceil_pool`'s rule)."""
    pad = (0, 0) if isinstance(padding, str) else padding
    return tuple(
        max((c.out_shape[i] - 1) * stride[i] + kernel[i] - c.in_shapes[0][i] - 2 * pad[i], 0)
        for i in (0, 1)
    )


@_helper("CeilAveragePooling2D")
def archc_ceil_avg_pool(c: Call) -> Node:
    """PyTorch's ceil-mode average pooling, with the zeros of its `.pad` if any."""
    layer = c.layer
    kernel, stride = _pair(layer.pool_size), _pair(layer.strides)
    padding = "valid" if c.padding is None else c.padding
    if tuple(layer.overhang) != _overhang(c, kernel, stride, padding):
        raise Refuse(
            f"its overhang {tuple(layer.overhang)} is not the one archc's ceil pooling "
            f"gives for this input ({_overhang(c, kernel, stride, padding)})"
        )
    return c.node("pool", op="avg", kernel=kernel, stride=stride, padding=padding, ceil=True)


@_helper("ChannelShuffle")
def archc_shuffle(c: Call) -> Node:
    return c.node("shuffle", groups=int(c.layer.groups))


@_helper("ChannelSplit")
def archc_split(c: Call) -> Node:
    return c.node("split", parts=int(c.layer.parts), take=int(c.layer.take))


@imports("Activation")
def activation(c: Call) -> Node | None:
    name = _activation_name(c.layer.activation)
    if name == "linear":
        return None  # the identity (ConvNeXt writes it where its drop path rate is 0)
    fn = ACTIVATION_NAMES.get(name)
    if fn is None:
        raise Refuse(f"the activation `{name}` has no archc equivalent")
    # Keras's functions' own defaults, stated (archc's A(leaky_relu) defaults to 0.3)
    alpha = {"leaky_relu": 0.2, "elu": 1.0}.get(fn)
    return c.node("activation", fn=fn, alpha=alpha)


@imports("ReLU")
def relu(c: Call) -> Node:
    layer = c.layer
    top = None if layer.max_value is None else float(layer.max_value)
    slope, threshold = float(layer.negative_slope), float(layer.threshold)
    if threshold == 0 and slope == 0 and top in (None, 6.0):
        return c.node("activation", fn="relu" if top is None else "relu6")
    if threshold == 0 and top is None:
        return c.node("activation", fn="leaky_relu", alpha=slope)
    raise Refuse(
        f"ReLU(max_value={top}, negative_slope={slope}, threshold={threshold}) has no archc "
        "equivalent (archc has relu, relu6 and leaky_relu)"
    )


@imports("LeakyReLU")
def leaky_relu(c: Call) -> Node:
    return c.node("activation", fn="leaky_relu", alpha=float(c.layer.negative_slope))


@imports("ELU")
def elu(c: Call) -> Node:
    return c.node("activation", fn="elu", alpha=float(c.layer.alpha))


@imports("PReLU")
def prelu(c: Call) -> Node:
    shared = sorted(c.layer.shared_axes or [])
    rank = len(c.in_shapes[0])
    if (rank == 3 and shared != [1, 2]) or (rank == 1 and shared):
        raise Refuse(
            f"PReLU with shared_axes={c.layer.shared_axes}: archc's learns one slope per "
            "channel (shared_axes=[1, 2] on a feature map)"
        )
    return c.node("activation", fn="prelu")


@imports("Softmax")
def softmax(c: Call) -> Node:
    _last_axis(c.layer.axis, len(c.in_shapes[0]), "softmax")
    return c.node("activation", fn="softmax")


def _pool(c: Call, op: str) -> Node:
    layer = c.layer
    _channels_last(layer)
    return c.node(
        "pool",
        op=op,
        kernel=_pair(layer.pool_size),
        stride=_pair(layer.strides),
        padding=_padding(c),
        ceil=c.ceil,
    )


@imports("MaxPooling2D")
def max_pool(c: Call) -> Node:
    return _pool(c, "max")


@imports("AveragePooling2D")
def avg_pool(c: Call) -> Node:
    return _pool(c, "avg")


def _global_pool(c: Call, op: str) -> Node:
    _channels_last(c.layer)
    return c.node("globalpool", op=op, keepdims=bool(c.layer.keepdims))


@imports("GlobalAveragePooling2D")
def global_avg_pool(c: Call) -> Node:
    return _global_pool(c, "avg")


@imports("GlobalMaxPooling2D")
def global_max_pool(c: Call) -> Node:
    return _global_pool(c, "max")


def _edges(value) -> tuple[int, int, int, int]:
    (t, b), (left, right) = value
    return (int(t), int(b), int(left), int(right))


@imports("ZeroPadding2D")
def zero_padding(c: Call) -> Node:
    _channels_last(c.layer)
    return c.node("zeropad", pad=_edges(c.layer.padding))


@imports("Cropping2D")
def cropping(c: Call) -> Node:
    _channels_last(c.layer)
    return c.node("crop", crop=_edges(c.layer.cropping))


@imports("UpSampling2D")
def upsampling(c: Call) -> Node:
    _channels_last(c.layer)
    if c.layer.interpolation not in ("nearest", "bilinear"):
        raise Refuse(f"interpolation `{c.layer.interpolation}` (archc: nearest or bilinear)")
    return c.node("upsample", factor=_pair(c.layer.size), interpolation=c.layer.interpolation)


@imports("Resizing")
def resizing(c: Call) -> Node:
    layer = c.layer
    _channels_last(layer)
    if layer.interpolation not in ("nearest", "bilinear"):
        raise Refuse(f"interpolation `{layer.interpolation}` (archc: nearest or bilinear)")
    if layer.crop_to_aspect_ratio or getattr(layer, "pad_to_aspect_ratio", False):
        raise Refuse("cropping or padding to the aspect ratio has no archc equivalent")
    if getattr(layer, "antialias", False):
        raise Refuse("antialiased resizing has no archc equivalent")
    return c.node(
        "resize", size=(int(layer.height), int(layer.width)), interpolation=layer.interpolation
    )


@imports("Rescaling")
def rescaling(c: Call) -> Node:
    scale, offset = c.layer.scale, c.layer.offset
    if not all(isinstance(v, (int, float)) for v in (scale, offset)):
        raise Refuse("a per-channel scale or offset: archc's Rescaling takes one number each")
    return c.node("rescaling", scale=float(scale), offset=float(offset))


@imports("Normalization")
def normalization(c: Call) -> Node:
    """Given mean and variance are constants; adapted ones are weights."""
    layer = c.layer
    _last_axis(layer.axis, len(c.in_shapes[0]), "normalisation")
    if layer.invert:
        raise Refuse("an inverted normalisation has no archc equivalent")
    if layer.input_mean is None:
        return c.node("normalization")

    def values(v) -> tuple[float, ...]:
        import numpy as np

        return tuple(float(x) for x in np.asarray(v, dtype="float64").reshape(-1))

    return c.node(
        "normalization", mean=values(layer.input_mean), variance=values(layer.input_variance)
    )


@imports("Dropout")
def dropout(c: Call) -> Node:
    """A Dropout of whole samples (noise_shape (None, 1, 1, 1): EfficientNet's drop
    connect) is archc's drop path; a plain one is dropout."""
    noise = c.layer.noise_shape
    rate = float(c.layer.rate)
    if noise is None:
        return c.node("dropout", rate=rate)
    if tuple(noise)[1:] == (1,) * len(c.in_shapes[0]):
        return c.node("droppath", rate=rate)
    raise Refuse(f"noise_shape {tuple(noise)}: archc drops cells or whole samples only")


@imports("Flatten")
def flatten(c: Call) -> Node:
    _channels_last(c.layer)
    return c.node("flatten")


@imports("Reshape")
def reshape(c: Call) -> Node:
    return c.node("reshape", shape=tuple(int(d) for d in c.out_shape))


@imports("Concatenate")
def concatenate(c: Call) -> Node:
    rank = len(c.in_shapes[0])
    if c.layer.axis not in (-1, rank):
        raise Refuse(
            f"it concatenates along axis {c.layer.axis}: archc's concat joins channels "
            "(the last axis) only"
        )
    return c.node("concat")


@imports("Add")
def add(c: Call) -> Node:
    return c.node("add")


@imports("Multiply")
def multiply(c: Call) -> Node:
    return c.node("mul")


@imports("Identity")
def identity(c: Call) -> None:
    return None


# ---------------------------------------------------------------------------
# The walk
# ---------------------------------------------------------------------------

# why the layers archc never reads are refused, by class
NEVER = {
    "Lambda": "a Lambda layer runs arbitrary Python code, which archc does not read; "
    "write it with built-in layers",
    "TFSMLayer": "a SavedModel endpoint is opaque to archc",
}


@dataclass
class _Step:
    op: Any
    node: Any  # the Keras graph node (one call of `op`)
    fold: str | None = None  # a recognised pattern: hard_sigmoid, hard_swish
    fold_input: Any = None  # the pattern's input tensor
    absorbed: bool = False  # part of a pattern folded into a later step
    padding: tuple[int, int] | str | None = None  # folded from archc's `<layer>.pad`
    ceil: bool = False
    output: Any = None  # the tensor its node computes, where not its own (`X.crop`'s)


@dataclass
class _Walk:
    source: str
    problems: list[Problem] = field(default_factory=list)
    alias: dict[int, Any] = field(default_factory=dict)  # a tensor -> the tensor it is
    steps: list[_Step] = field(default_factory=list)
    seen: set = field(default_factory=set)
    uses: dict[int, list] = field(default_factory=dict)  # a layer -> its calls here
    consumers: dict[int, list[_Step]] = field(default_factory=dict)

    def resolve(self, t):
        while id(t) in self.alias:
            t = self.alias[id(t)]
        return t

    def visit(self, t) -> None:
        """Every call the tensor `t` depends on, in topological order (iteratively:
        DenseNet201 is deeper than Python's recursion limit)."""
        stack = [(self.resolve(t), False)]
        while stack:
            t, expanded = stack.pop()
            op, index, _ = t._keras_history
            key = (id(op), index)
            if expanded:
                if key not in self.seen:
                    self.seen.add(key)
                    self._record(op, op._inbound_nodes[index])
                continue
            if key in self.seen:
                continue
            node = op._inbound_nodes[index]
            if _is_model(op):  # a nested model: its graph, with its input aliased to ours
                self._nest(op, node)
                stack.append((self.resolve(t), False))
                continue
            stack.append((t, True))
            for x in reversed(node.input_tensors):
                stack.append((self.resolve(x), False))

    def _nest(self, model, node) -> None:
        if len(model.inputs) != 1 or len(model.outputs) != 1:
            self.problems.append(
                Problem(
                    model.name,
                    type(model).__name__,
                    "a nested model",
                    "a nested model with several inputs or outputs cannot be flattened",
                )
            )
        self.alias[id(model.inputs[0])] = node.input_tensors[0]
        for outer, inner in zip(node.output_tensors, model.outputs):
            self.alias[id(outer)] = inner

    def _record(self, op, node) -> None:
        step = _Step(op, node)
        self.steps.append(step)
        self.uses.setdefault(id(op), []).append(step)
        for x in node.input_tensors:
            self.consumers.setdefault(id(self.resolve(x)), []).append(step)


def _is_model(op) -> bool:
    """A nested functional or Sequential model (a subclassed one has no graph to
    flatten: it is a layer of a custom class)."""
    if not isinstance(op, _keras().Model):
        return False
    try:
        return bool(op.inputs) and bool(op.outputs)
    except (AttributeError, ValueError):
        return False


def _is_layer(op) -> bool:
    return isinstance(op, _keras().layers.Layer)


def _class(op) -> str:
    return type(op).__name__


def _valid_name(name: str, taken: set[str]) -> str:
    """The layer's name where it is a valid node name; else a close one."""
    from backends.names import problem

    base = re.sub(r"\W", "_", name) or "layer"
    if base[0].isdigit():
        base = "l" + base
    if problem("node", base) is not None:
        base += "_layer"
    out, k = base, 1
    while out in taken:
        k += 1
        out = f"{base}_{k}"
    taken.add(out)
    return out


def _scalar(v) -> float | None:
    return float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _binary(step: _Step) -> tuple[list, list[float]]:
    """An operation's tensor and scalar arguments."""
    args = list(step.node.arguments.args)
    tensors = [a for a in args if hasattr(a, "_keras_history")]
    scalars = [s for s in map(_scalar, args) if s is not None]
    return tensors, scalars


def _only_consumer(walk: _Walk, tensor, step: _Step) -> bool:
    return walk.consumers.get(id(walk.resolve(tensor)), []) == [step]


def _fold_patterns(walk: _Walk) -> None:
    """Mark MobileNetV3's hard sigmoid and the written-out hard swish (see the
    module's docstring): the pattern's last operation becomes the activation, the
    steps before it are absorbed."""
    producer = {}
    for step in walk.steps:
        for t in step.node.output_tensors:
            producer[id(walk.resolve(t))] = step
    for step in walk.steps:
        if _is_layer(step.op) or _class(step.op) != "Multiply":
            continue
        tensors, scalars = _binary(step)
        if len(tensors) == 1 and scalars == [1.0 / 6.0]:
            relu = producer.get(id(walk.resolve(tensors[0])))
            if relu is None or _class(relu.op) != "ReLU" or not _is_layer(relu.op):
                continue
            if (relu.op.max_value, relu.op.negative_slope, relu.op.threshold) != (6.0, 0.0, 0.0):
                continue
            plus = producer.get(id(walk.resolve(relu.node.input_tensors[0])))
            if plus is None or _is_layer(plus.op) or _class(plus.op) != "Add":
                continue
            inner, constants = _binary(plus)
            if len(inner) != 1 or constants != [3.0]:
                continue
            if not (
                _only_consumer(walk, plus.node.output_tensors[0], relu)
                and _only_consumer(walk, relu.node.output_tensors[0], step)
            ):
                continue
            plus.absorbed = relu.absorbed = True
            step.fold, step.fold_input = "hard_sigmoid", walk.resolve(inner[0])
    for step in walk.steps:
        if _is_layer(step.op) or _class(step.op) != "Multiply":
            continue
        tensors, scalars = _binary(step)
        if len(tensors) != 2 or scalars:
            continue
        for x, gate in (tensors, tensors[::-1]):
            hs = producer.get(id(walk.resolve(gate)))
            if (
                hs is not None
                and hs.fold == "hard_sigmoid"
                and hs.fold_input is walk.resolve(x)
                and _only_consumer(walk, gate, step)
            ):
                hs.absorbed = True
                step.fold, step.fold_input = "hard_swish", walk.resolve(x)
                break


# archc's generated explicit padding (backends/keras/generator.py): the layer
# `X.pad` before the layer `X`, which pads `valid`: zeros before a convolution or
# an average pooling, archc's -inf NegInfPadding2D before a max pooling
PADDED = {
    "ZeroPadding2D": {
        "Conv2D",
        "DepthwiseConv2D",
        "SeparableConv2D",
        "AveragePooling2D",
        "archc>CeilAveragePooling2D",
    },
    "archc>NegInfPadding2D": {"MaxPooling2D"},
}


def _padding_class(op) -> str:
    """A built-in layer's class, or an archc helper's registered name."""
    if type(op).__module__.startswith("keras.src."):
        return _class(op)
    return _keras().saving.get_registered_name(type(op))


def _fold_padding(walk: _Walk) -> None:
    """Fold archc's own explicit padding into the layer it pads: exactly the
    generator's pattern, name and structure both (the padding layer is named
    `X.pad`, X reads only it and is its only reader, X pads `valid`, the padding
    is symmetric; for a max pooling, its -inf overhang is the one PyTorch's ceil
    mode gives). A transposed convolution's is the crop `X.crop` after a `valid` X
    (symmetric, X's only reader; Keras's output padding 0 is then archc's default,
    None, as the PyTorch importer reads it). A ZeroPadding2D or Cropping2D of any
    other name or place stays a layer, as in backends/pytorch/importer.py's rule
    for `_pad`."""
    from archc.ir.shapes import ShapeError, ceil_window_output

    for step in walk.steps:
        op = step.op
        if not _is_layer(op) or not op.name.endswith(".pad") or step.absorbed:
            continue
        allowed = PADDED.get(_padding_class(op))
        if allowed is None or len(step.node.output_tensors) != 1:
            continue
        readers = walk.consumers.get(id(walk.resolve(step.node.output_tensors[0])), [])
        if len(readers) != 1:
            continue
        x = readers[0]
        if (
            not _is_layer(x.op)
            or x.op.name + ".pad" != op.name
            or _padding_class(x.op) not in allowed
            or len(walk.uses[id(x.op)]) != 1
            or len(x.node.input_tensors) != 1
            or getattr(x.op, "padding", "valid") != "valid"
            or getattr(op, "data_format", "channels_last") != "channels_last"
        ):
            continue
        (top, bottom), (left, right) = op.padding
        ceil = (bottom, right) != (top, left)
        if ceil:  # PyTorch's ceil mode: the overhang past the bottom and right
            if _class(x.op) != "MaxPooling2D" or bottom < top or right < left:
                continue
            (h, w, _), (oh, ow, _) = (
                _shape(step.node.input_tensors[0]),
                _shape(x.node.output_tensors[0]),
            )
            kernel, stride = _pair(x.op.pool_size), _pair(x.op.strides)
            try:
                made = (
                    ceil_window_output(h, kernel[0], stride[0], (top, top)),
                    ceil_window_output(w, kernel[1], stride[1], (left, left)),
                )
            except ShapeError:
                continue
            overhang = (
                max((oh - 1) * stride[0] + kernel[0] - h - 2 * top, 0),
                max((ow - 1) * stride[1] + kernel[1] - w - 2 * left, 0),
            )
            if made != (oh, ow) or overhang != (bottom - top, right - left):
                continue
        elif (top, left) == (0, 0):
            continue
        step.absorbed = True
        x.fold_input = walk.resolve(step.node.input_tensors[0])
        x.padding = "valid" if (top, left) == (0, 0) else (top, left)
        x.ceil = ceil
    producer = {id(walk.resolve(t)): s for s in walk.steps for t in s.node.output_tensors}
    for step in walk.steps:  # a transposed convolution's explicit padding: `X.crop` after X
        op = step.op
        if (
            not _is_layer(op)
            or not op.name.endswith(".crop")
            or _padding_class(op) != "Cropping2D"
            or len(step.node.input_tensors) != 1
            or getattr(op, "data_format", "channels_last") != "channels_last"
        ):
            continue
        x = producer.get(id(walk.resolve(step.node.input_tensors[0])))
        (top, bottom), (left, right) = op.cropping
        if (
            x is None
            or not _is_layer(x.op)
            or x.op.name + ".crop" != op.name
            or _padding_class(x.op) != "Conv2DTranspose"
            or len(walk.uses[id(x.op)]) != 1
            or x.op.padding != "valid"
            or walk.consumers.get(id(walk.resolve(x.node.output_tensors[0])), []) != [step]
            or (top, left) != (bottom, right)
            or (top, left) == (0, 0)
        ):
            continue
        step.absorbed = True
        x.padding, x.output = (top, left), walk.resolve(step.node.output_tensors[0])


def _call_order(walk: _Walk) -> list[_Step]:
    """The steps in the order the source model called its layers (a generated
    model's: its spec's order), as far as Keras records it: each layer's calls on
    a tensor are listed in call order (the producer's `_outbound_nodes`). The
    reverse postorder of a walk from the input along the readers, each tensor's
    readers taken last-called first, gives back that order for archc's branches
    and skip connections (a U-Net's `@enc1 Crop(88)` after the decoder it joins),
    where the walk back from the output places a layer at its input's first
    reader. Readers Keras did not list (a nested model's) follow in walk order;
    should the walk from the input not reach every step, the walk's order stays."""
    index = {id(step): k for k, step in enumerate(walk.steps)}

    def readers(step: _Step) -> list[_Step]:
        called = {id(n): k for k, n in enumerate(getattr(step.op, "_outbound_nodes", []))}
        found = {
            id(r): r
            for t in step.node.output_tensors
            for r in walk.consumers.get(id(walk.resolve(t)), [])
        }
        order = sorted(
            found.values(), key=lambda r: (called.get(id(r.node), len(called)), index[id(r)])
        )
        return order[::-1]

    visited: set[int] = set()
    post: list[_Step] = []
    for root in walk.steps[::-1]:
        if root.node.input_tensors or id(root) in visited:  # from the input(s) only
            continue
        visited.add(id(root))
        stack = [(root, iter(readers(root)))]
        while stack:
            step, pending = stack[-1]
            following = next((r for r in pending if id(r) not in visited), None)
            if following is None:
                post.append(step)
                stack.pop()
            else:
                visited.add(id(following))
                stack.append((following, iter(readers(following))))
    return post[::-1] if len(post) == len(walk.steps) else walk.steps


def _shape(t) -> tuple:
    return tuple(t.shape[1:])


def import_keras(model, source: str) -> Imported:
    """The model's IR (inferred) and weights, or ImportFailure with every problem."""
    from archc.diagnostics import Diagnostics, Sources, SpecError
    from archc.passes.infer import infer

    walk = _Walk(source)
    try:
        inputs, outputs = list(model.inputs), list(model.outputs)
    except (AttributeError, ValueError) as e:
        raise ImportFailure(
            source,
            [],
            f"the model is not a built functional or Sequential model ({e}); "
            "subclassed models have no graph archc can read",
        ) from None
    cls = _class(model)
    if len(inputs) != 1:
        walk.problems.append(
            Problem(
                model.name,
                cls,
                f"its inputs {', '.join(t.name for t in inputs)}",
                f"it has {len(inputs)} inputs; an archc model has one",
            )
        )
    if len(outputs) != 1:
        walk.problems.append(
            Problem(
                model.name,
                cls,
                f"its outputs {', '.join(t.name for t in outputs)}",
                f"it has {len(outputs)} outputs; an archc model has one",
            )
        )
    for t in outputs:
        walk.visit(t)
    walk.steps = _call_order(walk)
    _fold_patterns(walk)
    _fold_padding(walk)

    taken: set[str] = set()
    names: dict[int, str] = {}  # a tensor -> the IR node that computes it
    nodes: list[Node] = []
    calls: dict[str, tuple[Call, _Step]] = {}  # IR node -> how it was made
    checks: list[tuple[str, tuple]] = []  # IR node -> Keras's output shape

    def where(step: _Step) -> str:
        ins = [names.get(id(walk.resolve(x)), "?") for x in step.node.input_tensors]
        outs = [
            s.op.name
            for t in step.node.output_tensors
            for s in walk.consumers.get(id(walk.resolve(t)), [])
        ]
        text = f"reads {', '.join(ins)}" if ins else "the model's input"
        return text + (f", read by {', '.join(outs)}" if outs else ", the model's output")

    def refuse(step: _Step, why: str) -> None:
        walk.problems.append(Problem(step.op.name, _class(step.op), where(step), why))
        outs = [*step.node.output_tensors, *([step.output] if step.output is not None else [])]
        for t in outs:  # downstream layers are still converted
            names[id(walk.resolve(t))] = step.op.name

    for step in walk.steps:
        op, node = step.op, step.node
        out = step.output if step.output is not None else walk.resolve(node.output_tensors[0])
        if step.absorbed:
            continue
        if _is_layer(op) and len(walk.uses[id(op)]) > 1:
            if walk.uses[id(op)][0] is step:
                refuse(
                    step,
                    f"the layer is called {len(walk.uses[id(op)])} times (shared weights); "
                    "archc's nodes each have their own",
                )
            else:
                for t in node.output_tensors:
                    names[id(walk.resolve(t))] = op.name
            continue
        if _class(op) == "InputLayer":
            shape = _shape(out)
            if any(d is None for d in shape):
                refuse(step, f"its shape {shape} has an unknown size; archc's shapes are fixed")
                continue
            if len(shape) not in (1, 3):
                refuse(step, f"its shape {shape}: archc's input is H x W x C or a vector")
                continue
            name = _valid_name(op.name, taken)
            nodes.append(KINDS["input"](name=name, shape=tuple(int(d) for d in shape)))
            names[id(out)] = name
            checks.append((name, shape))
            continue
        ins = [walk.resolve(x) for x in node.input_tensors]
        if step.fold_input is not None:
            ins = [step.fold_input]
        in_shapes = [_shape(x) for x in ins]
        if any(d is None for s in (*in_shapes, _shape(out)) for d in s):
            refuse(step, "its shape has an unknown (None) size; archc's shapes are fixed")
            continue
        if len(node.output_tensors) != 1:
            refuse(step, f"it has {len(node.output_tensors)} outputs; archc's layers have one")
            continue
        name = _valid_name(op.name, taken)
        call = Call(op, name, tuple(names[id(x)] for x in ins), in_shapes, _shape(out))
        if step.padding is not None:
            call.padding = None if step.padding == "valid" else step.padding
            call.ceil = step.ceil
        try:
            if step.fold:
                made = call.node("activation", fn=step.fold)
            elif not _is_layer(op):
                tensors, scalars = _binary(step)
                if _class(op) == "Add" and len(tensors) == 2 and not scalars:
                    made = call.node("add")
                else:
                    raise Refuse(
                        "an operation on tensors outside a layer; archc recognises only "
                        "x + y of two tensors, MobileNetV3's ReLU(6)(x + 3) * (1/6) and "
                        "x * hard_sigmoid(x): write it with layers"
                    )
            elif _class(op) in NEVER:
                raise Refuse(NEVER[_class(op)])
            elif _archc_helper(op) is not None:
                made = _archc_helper(op)(call)
            elif _class(op) not in CONVERTERS or not type(op).__module__.startswith("keras.src."):
                raise Refuse(
                    "a custom layer class: archc reads Keras's built-in layers only "
                    "(write it with built-in layers, or add an archc layer kind)"
                )
            else:
                made = CONVERTERS[_class(op)](call)
        except Refuse as e:
            taken.discard(name)
            refuse(step, str(e))
            continue
        if made is None:  # the identity
            names[id(out)] = call.inputs[0]
            taken.discard(name)
            continue
        nodes.append(made)
        names[id(out)] = name
        calls[name] = (call, step)
        checks.append((name, _shape(out)))
    if walk.problems:
        raise ImportFailure(source, walk.problems)

    ir = Model(
        name=_valid_name(model.name, set()),
        source=source,
        input_shape=nodes[0].shape,
        nodes=tuple(nodes),
        output=names[id(walk.resolve(outputs[0]))],
    )
    try:
        ir = infer(ir, Diagnostics(Sources()))
    except SpecError as e:
        raise ImportFailure(
            source, [], f"archc's inference refused the imported graph (archc's bug): {e}"
        ) from None
    wrong = [
        f"`{n}`: archc {ir.node(n).out_shape}, Keras {shape}"
        for n, shape in checks
        if ir.node(n).out_shape != shape
    ]
    if wrong:
        raise ImportFailure(
            source, [], "archc's shapes differ from Keras's (archc's bug): " + "; ".join(wrong)
        )
    return Imported(ir, _weights(ir, calls, source), source, "keras")


def _weights(ir: Model, calls: dict, source: str) -> dict:
    """Each node's Keras tensors in the roles its kind declares."""
    import numpy as np

    out = {}
    for n in ir.nodes:
        roles = n.weights(list(n.in_shapes))
        if not roles:
            continue
        call, step = calls[n.name]
        values = call.layer.get_weights() if _is_layer(step.op) else []
        if len(values) != len(roles):
            raise ImportFailure(
                source,
                [],
                f"`{n.name}` ({_class(step.op)}) has {len(values)} tensors where archc's "
                f"`{n.kind}` has {len(roles)} (archc's bug)",
            )
        for w, v in zip(roles, values):
            v = np.asarray(v)
            if call.reshape_weights:
                v = v.reshape(w.shape)
            out[f"{n.name}/{w.role}"] = v.reshape(-1) if w.flat else v
    return out
