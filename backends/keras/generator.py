"""IR -> Keras 3 source.

Each emitter below (`@lowers(kind)`) gives the Keras layers an IR node kind
becomes; `KerasGenerator` (backends/common.py's `Generator` with this table)
turns those into functions per block. Semantics
are Keras's own: `same` padding and pooling, channels-last Flatten, batch-norm
epsilon and momentum as the spec states them. Explicit (PyTorch-style) padding
becomes a ZeroPadding2D before the layer, or for max pooling a padding with
-inf (a registered layer below), so that the model computes what the spec says.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import ClassVar

from archc.ir import Model
from archc.ir.kinds import Node
from archc.ir.shapes import describe
from backends import recipe_source
from backends.common import (
    ArgDefault,
    Body,
    Chain,
    Emitter,
    Generator,
    Instance,
    Lowered,
    Op,
    Raw,
    Render,
    Unit,
    call,
    child_args,
    lit,
    op_source,
    unit_doc,
)

NAME = "keras"
FRAMEWORK = "Keras 3"

HELPERS = {
    "LocalResponseNormalization": '''@keras.saving.register_keras_serializable(package="archc")
class LocalResponseNormalization(layers.Layer):
    """AlexNet's LRN: x / (k + alpha * sum of x**2 over `depth` channels) ** beta."""

    def __init__(self, depth=5, alpha=1e-4, beta=0.75, k=2.0, **kwargs):
        super().__init__(**kwargs)
        self.depth, self.alpha, self.beta, self.k = depth, alpha, beta, k

    def call(self, x):
        half = self.depth // 2
        squared = ops.pad(ops.square(x), [[0, 0], [0, 0], [0, 0], [half, half]])
        channels = x.shape[-1]
        total = squared[..., 0:channels]
        for i in range(1, self.depth):
            total = total + squared[..., i : i + channels]
        return x / ops.power(self.k + self.alpha * total, self.beta)

    def get_config(self):
        config = super().get_config()
        config.update(depth=self.depth, alpha=self.alpha, beta=self.beta, k=self.k)
        return config''',
    "LayerScale": '''@keras.saving.register_keras_serializable(package="archc")
class LayerScale(layers.Layer):
    """x * gamma: one learnable scale per channel, starting at `init` (ConvNeXt)."""

    def __init__(self, init=1e-6, **kwargs):
        super().__init__(**kwargs)
        self.init = init

    def build(self, input_shape):
        self.gamma = self.add_weight(
            name="gamma",
            shape=(input_shape[-1],),
            initializer=keras.initializers.Constant(self.init),
        )

    def call(self, x):
        return x * self.gamma

    def get_config(self):
        config = super().get_config()
        config.update(init=self.init)
        return config''',
    "GeluTanh": '''@keras.saving.register_keras_serializable(package="archc")
class GeluTanh(layers.Layer):
    """GELU's tanh approximation (PyTorch's nn.GELU(approximate="tanh"))."""

    def call(self, x):
        return keras.activations.gelu(x, approximate=True)''',
    "NegInfPadding2D": '''@keras.saving.register_keras_serializable(package="archc")
class NegInfPadding2D(layers.Layer):
    """Pads height and width with -inf: max pooling then ignores the padding."""

    def __init__(self, padding, **kwargs):
        super().__init__(**kwargs)
        self.padding = tuple(tuple(side) for side in padding)

    def call(self, x):
        (top, bottom), (left, right) = self.padding
        pads = [[0, 0], [top, bottom], [left, right], [0, 0]]
        return ops.pad(x, pads, constant_values=float("-inf"))

    def get_config(self):
        config = super().get_config()
        config.update(padding=self.padding)
        return config''',
    "CeilAveragePooling2D": '''@keras.saving.register_keras_serializable(package="archc")
class CeilAveragePooling2D(layers.Layer):
    """PyTorch's ceil_mode average pooling: the last window overhangs the bottom/right
    edge by `overhang` cells and is divided by the cells it covers inside."""

    def __init__(self, pool_size, strides, overhang, **kwargs):
        super().__init__(**kwargs)
        self.pool_size, self.strides = tuple(pool_size), tuple(strides)
        self.overhang = tuple(overhang)

    def call(self, x):
        pads = [[0, 0], [0, self.overhang[0]], [0, self.overhang[1]], [0, 0]]
        total = ops.average_pool(ops.pad(x, pads), self.pool_size, self.strides)
        ones = ops.pad(ops.ones_like(x[..., :1]), pads)
        return total / ops.average_pool(ones, self.pool_size, self.strides)

    def get_config(self):
        config = super().get_config()
        config.update(pool_size=self.pool_size, strides=self.strides, overhang=self.overhang)
        return config''',
    "BilinearResize2D": '''@keras.saving.register_keras_serializable(package="archc")
class BilinearResize2D(layers.Layer):
    """Bilinear resizing to `size` (height, width) with half-pixel centres and no
    antialiasing: what Keras's `Resizing` and `UpSampling2D(interpolation="bilinear")`
    compute, here in the input's dtype (TensorFlow's kernel computes in float32)."""

    def __init__(self, size, **kwargs):
        super().__init__(**kwargs)
        self.size = tuple(size)

    def call(self, x):
        return self._resize(self._resize(x, 1, self.size[0]), 2, self.size[1])

    def _resize(self, x, axis, size):
        cells = x.shape[axis]
        if cells == size:
            return x
        low, high, weight = [], [], []
        for i in range(size):
            centre = max((i + 0.5) * (cells / size) - 0.5, 0.0)
            j = int(centre)
            low.append(j)
            high.append(min(j + 1, cells - 1))
            weight.append(centre - j)
        shape = [1, 1, 1, 1]
        shape[axis] = size
        weight = ops.reshape(ops.convert_to_tensor(weight, dtype=x.dtype), shape)
        return ops.take(x, low, axis=axis) * (1 - weight) + ops.take(x, high, axis=axis) * weight

    def get_config(self):
        config = super().get_config()
        config.update(size=self.size)
        return config''',
    "ChannelShuffle": '''@keras.saving.register_keras_serializable(package="archc")
class ChannelShuffle(layers.Layer):
    """ShuffleNet's channel shuffle: the channels as `groups` groups, interleaved
    (torchvision's channel_shuffle, channels-last)."""

    def __init__(self, groups, **kwargs):
        super().__init__(**kwargs)
        self.groups = groups

    def call(self, x):
        h, w, c = x.shape[1:]
        x = ops.reshape(x, (-1, h, w, self.groups, c // self.groups))
        return ops.reshape(ops.swapaxes(x, 3, 4), (-1, h, w, c))

    def get_config(self):
        config = super().get_config()
        config.update(groups=self.groups)
        return config''',
    "ChannelSplit": '''@keras.saving.register_keras_serializable(package="archc")
class ChannelSplit(layers.Layer):
    """Part `take` (from 0) of the channels cut into `parts` equal parts."""

    def __init__(self, parts, take, **kwargs):
        super().__init__(**kwargs)
        self.parts, self.take = parts, take

    def call(self, x):
        size = x.shape[-1] // self.parts
        return x[..., self.take * size : (self.take + 1) * size]

    def get_config(self):
        config = super().get_config()
        config.update(parts=self.parts, take=self.take)
        return config''',
}


def _hw(pair: tuple[int, int]):
    """Keras accepts an int for a square size: write it so, as a person would."""
    return pair[0] if pair[0] == pair[1] else tuple(pair)


def _pads(p: tuple[int, int]):
    """(ph, pw) symmetric zeros -> ZeroPadding2D's argument."""
    return p[0] if p[0] == p[1] else tuple(p)


def _weights(n: Node) -> OrderedDict:
    kw: OrderedDict = OrderedDict()
    kw["kernel_initializer"] = n.init or "glorot_uniform"
    if isinstance(n.bias_init, float):
        kw["bias_initializer"] = Raw(f"keras.initializers.Constant({n.bias_init!r})")
    else:
        kw["bias_initializer"] = n.bias_init or "zeros"
    # only a layer's own `l2`: the spec-wide weight decay is the compile helper's,
    # on every kernel (backends/recipe_source.py)
    kw["kernel_regularizer"] = recipe_source.keras_kernel_regularizer(n)
    return kw


WEIGHT_DEFAULTS = {
    "kernel_initializer": "glorot_uniform",
    "bias_initializer": "zeros",
    "kernel_regularizer": None,
}


EMITTERS: dict[str, Emitter] = {}  # IR node kind -> its emitter, entered by @lowers
lowers = Generator.registry(EMITTERS)


@lowers("rescaling")
def lower_rescaling(n: Node, r: Render) -> Lowered:
    return Lowered(
        [Op("layers.Rescaling", [n.scale], OrderedDict(offset=n.offset), {"offset": 0.0})]
    )


@lowers("normalization")
def lower_normalization(n: Node, r: Render) -> Lowered:
    kw = OrderedDict()
    if n.mean is not None:
        kw.update(mean=list(n.mean), variance=list(n.variance))
    return Lowered([Op("layers.Normalization", [], kw)])


def _explicit_padding(n: Node, ops: list[Op]) -> str:
    """Keras's padding for a window kind: explicit zeros become a ZeroPadding2D
    before the layer, which then pads `valid`."""
    padding = n.padding
    if not isinstance(padding, str):
        if padding != (0, 0):
            ops.append(Op("layers.ZeroPadding2D", [_pads(padding)], attr=".pad"))
        padding = "valid"
    return padding


def _renamed(kw: OrderedDict, names: dict[str, str]) -> OrderedDict:
    """Weight options under another layer's names (`depthwise_initializer`)."""
    return OrderedDict((names.get(k, k), v) for k, v in kw.items())


@lowers("conv")
def lower_conv(n: Node, r: Render) -> Lowered:
    ops = []
    padding = _explicit_padding(n, ops)
    kw = OrderedDict(
        strides=_hw(n.stride),
        padding=padding,
        dilation_rate=_hw(n.dilation),
        groups=n.groups,
        use_bias=n.use_bias,
        activation=n.activation,
    )
    kw.update(_weights(n))
    ops.append(
        Op(
            "layers.Conv2D",
            [n.filters, _hw(n.kernel)],
            kw,
            {
                "strides": 1,
                "padding": "valid",
                "dilation_rate": 1,
                "groups": 1,
                "use_bias": True,
                "activation": None,
                **WEIGHT_DEFAULTS,
            },
        )
    )
    return Lowered(ops)


DEPTHWISE_NAMES = {
    "kernel_initializer": "depthwise_initializer",
    "kernel_regularizer": "depthwise_regularizer",
}


# the keywords DepthwiseConv2D and SeparableConv2D share, with Keras's defaults
DEPTHWISE_DEFAULTS = {
    "strides": 1,
    "padding": "valid",
    "depth_multiplier": 1,
    "dilation_rate": 1,
    "use_bias": True,
    "activation": None,
}


def _depthwise_keywords(n: Node, ops: list[Op]) -> OrderedDict:
    """The shared keywords of a depthwise or separable node (explicit padding
    becomes a ZeroPadding2D in `ops`)."""
    return OrderedDict(
        strides=_hw(n.stride),
        padding=_explicit_padding(n, ops),
        depth_multiplier=n.multiplier,
        dilation_rate=_hw(n.dilation),
        use_bias=n.use_bias,
        activation=n.activation,
    )


@lowers("depthwise")
def lower_depthwise(n: Node, r: Render) -> Lowered:
    ops = []
    kw = _depthwise_keywords(n, ops)
    kw.update(_renamed(_weights(n), DEPTHWISE_NAMES))
    defaults = {
        **DEPTHWISE_DEFAULTS,
        **_renamed(OrderedDict(WEIGHT_DEFAULTS), DEPTHWISE_NAMES),
    }
    ops.append(Op("layers.DepthwiseConv2D", [_hw(n.kernel)], kw, defaults))
    return Lowered(ops)


@lowers("separable")
def lower_separable(n: Node, r: Render) -> Lowered:
    ops = []
    kw = _depthwise_keywords(n, ops)
    weights = _weights(n)  # `init` applies to both kernels
    kw["depthwise_initializer"] = kw["pointwise_initializer"] = weights["kernel_initializer"]
    kw["bias_initializer"] = weights["bias_initializer"]
    defaults = {
        **DEPTHWISE_DEFAULTS,
        "depthwise_initializer": "glorot_uniform",
        "pointwise_initializer": "glorot_uniform",
        "bias_initializer": "zeros",
    }
    ops.append(Op("layers.SeparableConv2D", [n.filters, _hw(n.kernel)], kw, defaults))
    return Lowered(ops)


@lowers("transposed")
def lower_transposed(n: Node, r: Render) -> Lowered:
    """Keras's own semantics for `same` and `valid`. Explicit (PyTorch) padding p:
    the `valid` result with the output padding written out, then p cells cropped
    from each side (what PyTorch's padding does to a transposed convolution)."""
    padding, output_padding = n.padding, n.output_padding
    crop = None
    if not isinstance(padding, str):
        crop = padding if padding != (0, 0) else None
        padding, output_padding = "valid", output_padding or (0, 0)
    kw = OrderedDict(
        strides=_hw(n.stride),
        padding=padding,
        output_padding=None if output_padding is None else _hw(output_padding),
        use_bias=n.use_bias,
        activation=n.activation,
    )
    kw.update(_weights(n))
    defaults = {
        "strides": 1,
        "padding": "valid",
        "output_padding": None,
        "use_bias": True,
        "activation": None,
        **WEIGHT_DEFAULTS,
    }
    ops = [Op("layers.Conv2DTranspose", [n.filters, _hw(n.kernel)], kw, defaults)]
    if crop is not None:
        ops.append(Op("layers.Cropping2D", [_pads(crop)], attr=".crop"))
    return Lowered(ops)


@lowers("dense")
def lower_dense(n: Node, r: Render) -> Lowered:
    kw = OrderedDict(activation=n.activation, use_bias=n.use_bias)
    kw.update(_weights(n))
    return Lowered(
        [
            Op(
                "layers.Dense",
                [n.units],
                kw,
                {"activation": None, "use_bias": True, **WEIGHT_DEFAULTS},
            )
        ]
    )


@lowers("batchnorm")
def lower_batchnorm(n: Node, r: Render) -> Lowered:
    return Lowered(
        [
            Op(
                "layers.BatchNormalization",
                [],
                OrderedDict(epsilon=n.epsilon, momentum=n.momentum, scale=n.scale),
                {"epsilon": 0.001, "momentum": 0.99, "scale": True},
            )
        ]
    )


@lowers("layernorm")
def lower_layernorm(n: Node, r: Render) -> Lowered:
    return Lowered(
        [
            Op(
                "layers.LayerNormalization",
                [],
                OrderedDict(epsilon=n.epsilon),
                {"epsilon": 0.001},
            )
        ]
    )


@lowers("groupnorm")
def lower_groupnorm(n: Node, r: Render) -> Lowered:
    return Lowered(
        [
            Op(
                "layers.GroupNormalization",
                [],
                OrderedDict(groups=n.groups, epsilon=n.epsilon),
                {"epsilon": 0.001},
            )
        ]
    )


@lowers("layerscale")
def lower_layerscale(n: Node, r: Render) -> Lowered:
    r.helpers.add("LayerScale")
    return Lowered([Op("LayerScale", [n.init])])


@lowers("lrn")
def lower_lrn(n: Node, r: Render) -> Lowered:
    r.helpers.add("LocalResponseNormalization")
    return Lowered(
        [
            Op(
                "LocalResponseNormalization",
                [],
                OrderedDict(depth=n.depth, alpha=n.alpha, beta=n.beta, k=n.bias_k),
                {"depth": 5, "alpha": 1e-4, "beta": 0.75, "k": 2.0},
            )
        ]
    )


@lowers("activation")
def lower_activation(n: Node, r: Render) -> Lowered:
    if n.fn == "leaky_relu":
        return Lowered(
            [
                Op(
                    "layers.LeakyReLU",
                    [],
                    OrderedDict(negative_slope=n.alpha),
                    {"negative_slope": 0.3},
                )
            ]
        )
    if n.fn == "elu":
        return Lowered([Op("layers.ELU", [], OrderedDict(alpha=n.alpha), {"alpha": 1.0})])
    if n.fn == "prelu":
        shared = [1, 2] if len(n.in_shapes[0]) == 3 else None
        return Lowered(
            [Op("layers.PReLU", [], OrderedDict(shared_axes=shared), {"shared_axes": None})]
        )
    if n.fn == "gelu_tanh":
        r.helpers.add("GeluTanh")
        return Lowered([Op("GeluTanh")])
    return Lowered([Op("layers.Activation", [n.fn])])


@lowers("pool")
def lower_pool(n: Node, r: Render) -> Lowered:
    if n.ceil:
        return Lowered(_ceil_pool(n, r))
    cls = "layers.MaxPooling2D" if n.op == "max" else "layers.AveragePooling2D"
    ops = []
    padding = n.padding
    if not isinstance(padding, str):
        ph, pw = padding
        if (ph, pw) != (0, 0):
            if n.op == "max":
                r.helpers.add("NegInfPadding2D")
                ops.append(Op("NegInfPadding2D", [((ph, ph), (pw, pw))], attr=".pad"))
            else:  # PyTorch's average pooling counts the zeros (count_include_pad)
                ops.append(Op("layers.ZeroPadding2D", [_pads(padding)], attr=".pad"))
        padding = "valid"
    ops.append(
        Op(
            cls,
            [_hw(n.kernel)],
            OrderedDict(strides=_hw(n.stride), padding=padding),
            {"strides": ArgDefault(0), "padding": "valid"},
        )
    )
    return Lowered(ops)


def _ceil_pool(n: Node, r: Render) -> list[Op]:
    """PyTorch's ceil_mode: the last window's overhang past the padded input is
    -inf for max pooling; average pooling divides it by the cells inside."""
    ph, pw = (0, 0) if n.padding == "valid" else n.padding
    h, w = n.in_shapes[0][0], n.in_shapes[0][1]
    eh = max((n.out_shape[0] - 1) * n.stride[0] + n.kernel[0] - h - 2 * ph, 0)
    ew = max((n.out_shape[1] - 1) * n.stride[1] + n.kernel[1] - w - 2 * pw, 0)
    ops = []
    if n.op == "max":
        if (ph, pw, eh, ew) != (0, 0, 0, 0):
            r.helpers.add("NegInfPadding2D")
            ops.append(Op("NegInfPadding2D", [((ph, ph + eh), (pw, pw + ew))], attr=".pad"))
        ops.append(
            Op(
                "layers.MaxPooling2D",
                [_hw(n.kernel)],
                OrderedDict(strides=_hw(n.stride)),
                {"strides": ArgDefault(0)},
            )
        )
        return ops
    if (ph, pw) != (0, 0):  # PyTorch's average pooling counts the zeros (count_include_pad)
        ops.append(Op("layers.ZeroPadding2D", [_pads((ph, pw))], attr=".pad"))
    if (eh, ew) == (0, 0):
        ops.append(
            Op(
                "layers.AveragePooling2D",
                [_hw(n.kernel)],
                OrderedDict(strides=_hw(n.stride)),
                {"strides": ArgDefault(0)},
            )
        )
    else:
        r.helpers.add("CeilAveragePooling2D")
        kw = OrderedDict(strides=n.stride, overhang=(eh, ew))
        ops.append(Op("CeilAveragePooling2D", [n.kernel], kw))
    return ops


@lowers("globalpool")
def lower_globalpool(n: Node, r: Render) -> Lowered:
    cls = "layers.GlobalMaxPooling2D" if n.op == "max" else "layers.GlobalAveragePooling2D"
    return Lowered([Op(cls, [], OrderedDict(keepdims=n.keepdims), {"keepdims": False})])


@lowers("upsample")
def lower_upsample(n: Node, r: Render) -> Lowered:
    if n.interpolation == "bilinear":  # Keras's own computes in float32: see the helper
        r.helpers.add("BilinearResize2D")
        return Lowered([Op("BilinearResize2D", [tuple(n.out_shape[:2])])])
    return Lowered([Op("layers.UpSampling2D", [_hw(n.factor)])])


@lowers("resize")
def lower_resize(n: Node, r: Render) -> Lowered:
    if n.interpolation == "bilinear":
        r.helpers.add("BilinearResize2D")
        return Lowered([Op("BilinearResize2D", [n.size])])
    return Lowered([Op("layers.Resizing", [*n.size], OrderedDict(interpolation=n.interpolation))])


@lowers("dropout")
def lower_dropout(n: Node, r: Render) -> Lowered:
    return Lowered([Op("layers.Dropout", [n.rate])])


@lowers("droppath")
def lower_droppath(n: Node, r: Render) -> Lowered:
    """One draw per sample, kept ones scaled by 1/(1 - rate): keras.applications'
    stochastic depth."""
    noise = (None,) + (1,) * len(n.in_shapes[0])
    return Lowered([Op("layers.Dropout", [n.rate], OrderedDict(noise_shape=noise))])


@lowers("flatten")
def lower_flatten(n: Node, r: Render) -> Lowered:
    return Lowered([Op("layers.Flatten")])


@lowers("reshape")
def lower_reshape(n: Node, r: Render) -> Lowered:
    return Lowered([Op("layers.Reshape", [tuple(n.shape)])])


@lowers("zeropad")
def lower_zeropad(n: Node, r: Render) -> Lowered:
    t, b, left, right = n.pad
    arg = t if t == b == left == right else ((t, b), (left, right))
    return Lowered([Op("layers.ZeroPadding2D", [arg])])


@lowers("crop")
def lower_crop(n: Node, r: Render) -> Lowered:
    t, b, left, right = n.crop
    arg = t if t == b == left == right else ((t, b), (left, right))
    return Lowered([Op("layers.Cropping2D", [arg])])


@lowers("concat")
def lower_concat(n: Node, r: Render) -> Lowered:
    return Lowered([Op("layers.Concatenate")], Chain(listed=True))


@lowers("shuffle")
def lower_shuffle(n: Node, r: Render) -> Lowered:
    """A helper layer, not Reshape-Permute-Reshape: those layers need the map's
    height and width, which differ between the instances of a block (ShuffleNet's
    units), so a block function would take them as opaque parameters."""
    r.helpers.add("ChannelShuffle")
    return Lowered([Op("ChannelShuffle", [n.groups])])


@lowers("split")
def lower_split(n: Node, r: Render) -> Lowered:
    r.helpers.add("ChannelSplit")
    return Lowered([Op("ChannelSplit", [n.parts, n.take])])


@lowers("add")
def lower_add(n: Node, r: Render) -> Lowered:
    return Lowered([Op("layers.Add")], Chain(listed=True))


@lowers("mul")
def lower_mul(n: Node, r: Render) -> Lowered:
    return Lowered([Op("layers.Multiply")], Chain(listed=True))


def _layer_name(local: str, attr: str, in_block: bool) -> str:
    if in_block:
        return f'name=f"{{name}}.{local}{attr}"'
    return f"name={lit(local + attr)}"


def _statements(inst: Instance, unit: Unit | None, in_block: bool, indent: int) -> list[str]:
    out = []
    # a value is never held in a variable named like a function this body calls
    # (a named group `g` read later: `g_ = g(x, name="g")`, not `g = g(...)`)
    called = [item.child.unit.name for item in inst.items if item.child is not None]
    body = Body(inst.items, inst.items[-1].local, [*(unit.params if unit else ()), *called])
    for k, item in enumerate(inst.items):
        ins, var = body.assign(k)
        if item.child is not None:
            args = [ins[0], *child_args(item, k, unit), _layer_name(item.local, "", in_block)]
            out.append(call(item.child.unit.name, args, indent, prefix=f"{var} = "))
            continue
        current = ins
        for j, op in enumerate(item.lowered.ops):
            func, args = op_source(op, k, j, unit)
            args.append(_layer_name(item.local, op.attr, in_block))
            if j == len(item.lowered.ops) - 1 and item.lowered.expr == Chain(listed=True):
                suffix = f"([{', '.join(current)}])"
            else:
                suffix = f"({current[0]})"
            out.append(call(func, args, indent, suffix=suffix, prefix=f"{var} = "))
            current = [var]
    return out


def _function(unit: Unit) -> str:
    inst = unit.instances[0]
    doc = unit_doc(unit)
    signature = call(f"def {unit.name}", ["x", *unit.params, "*", "name"], 0, suffix=":")
    lines = [signature, f'    """{doc}"""']
    lines += _statements(inst, unit, True, 4)
    lines.append("    return x")
    return "\n".join(lines)


def _build(model: Model, root: Instance) -> str:
    shape = lit(tuple(model.input_shape))
    lines = [
        f"def build_{model.name}():",
        f'    """The `{model.name}` network; input {describe(model.input_shape)}."""',
        f'    inputs = keras.Input(shape={shape}, name="input")',
        "    x = inputs",
    ]
    lines += _statements(root, None, False, 4)
    lines.append(f"    return keras.Model(inputs, x, name={lit(model.name)})")
    return "\n".join(lines)


def _compile(model: Model) -> str | None:
    """The recipe's compile helper (backends/recipe_source.py)."""
    return recipe_source.keras_compile(model) if model.training is not None else None


class KerasGenerator(Generator):
    """IR -> a Keras 3 module: a function per block variant, `build_<model>()` and
    `compile_<model>(model)`."""

    NAME = NAME
    FRAMEWORK = FRAMEWORK
    TEMPLATES = Path(__file__).parent / "templates"
    HELPERS = HELPERS
    IMPORTS = (("import keras", ("keras",)), ("from keras import {}", ("layers", "ops")))
    LOWER: ClassVar[dict[str, Emitter]] = {**Generator.LOWER, **EMITTERS}

    def defined_names(self, model: Model, units: list[Unit]) -> list[str]:
        return [u.name for u in units] + [
            f"build_{model.name}",
            f"compile_{model.name}",
            f"learning_rate_{model.name}",
        ]

    unit_source = staticmethod(_function)
    model_source = staticmethod(_build)
    training_source = staticmethod(_compile)

    def template_vars(self, model: Model) -> dict:
        shape = describe(model.input_shape)
        return {
            "title": f"{model.name}: generated Keras model.",
            "model_name": model.name,
            "input_desc": shape + " (H x W x C)" if len(model.input_shape) == 3 else shape,
        }


GENERATOR = KerasGenerator()
generate = GENERATOR.generate
