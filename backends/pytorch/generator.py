"""IR -> PyTorch source (channels-first nn.Modules).

The module computes the same function as the Keras build of the spec, not only
the same shapes:

- Keras `same` padding is computed from the static input size; when it is
  symmetric the layer's own `padding=` is used (no cost), otherwise the odd zero
  goes to the bottom/right through an explicit nn.ZeroPad2d, as Keras does.
- `same` max pooling ignores padded cells (PyTorch pads with -inf); `same`
  average pooling divides by the real cells (count_include_pad=False, or the
  SamePool2d helper when the padding is uneven).
- Batch norm: torch momentum = 1 - Keras momentum; epsilon as the spec says
  (Keras's default 1e-3, not torch's 1e-5).
- Flatten flattens in Keras's channels-last order (it permutes to N x H x W x C
  first), so a Dense kernel is the same matrix in both builds, transposed.
- LRN: torch divides alpha by the window, so alpha * depth is passed; PReLU's
  zero initial slope is written out.
- LeakyReLU: Keras (TensorFlow's leaky_relu) takes its slope as a float32
  attribute, even in a float64 model, so the slope written out is the spec's
  rounded to float32 (0.3 -> 0.30000001192092896): the same function in float64,
  not only in float32. Rescaling's scale and offset likewise (Keras casts them
  through float32); Normalization's given statistics are float32 tensors in both.
- Layer norm over a feature map permutes to channels-last (the LayerNorm2d
  helper); `mul` broadcasts a gate N x C x 1 x 1 over H and W; Reshape keeps
  Keras's channels-last order; drop path is a DropPath helper (per sample, scaled
  by 1/(1 - p), as Keras's Dropout with noise_shape=(None, 1, 1, 1)).
"""

from __future__ import annotations

import struct
from collections import OrderedDict
from pathlib import Path
from typing import ClassVar

from archc.ir import Model
from archc.ir.kinds import Node
from archc.ir.shapes import describe, same_padding
from backends import recipe_source
from backends.common import (
    ArgDefault,
    BackendError,
    Body,
    Chain,
    Emitter,
    Expr,
    Fn,
    Generator,
    Infix,
    Instance,
    Item,
    Lowered,
    Op,
    Render,
    Unit,
    call,
    camel,
    child_args,
    lit,
    op_source,
    unit_doc,
)

NAME = "torch"
FRAMEWORK = "PyTorch"

ACT = {  # activation fused into a conv or dense -> (function, its further arguments)
    "relu": ("torch.relu", ()),
    "relu6": ("F.relu6", ()),
    "sigmoid": ("torch.sigmoid", ()),
    "hard_sigmoid": ("F.hardsigmoid", ()),
    "tanh": ("torch.tanh", ()),
    "softmax": ("torch.softmax", ("dim=1",)),
    "elu": ("F.elu", ()),
    "selu": ("F.selu", ()),
    "gelu": ("F.gelu", ()),
    "silu": ("F.silu", ()),
    "softplus": ("F.softplus", ()),
    "hard_swish": ("F.hardswish", ()),
    "mish": ("F.mish", ()),
}
ACT_MODULE = {
    "relu": "nn.ReLU",
    "relu6": "nn.ReLU6",
    "sigmoid": "nn.Sigmoid",
    "hard_sigmoid": "nn.Hardsigmoid",
    "tanh": "nn.Tanh",
    "linear": "nn.Identity",
    "selu": "nn.SELU",
    "gelu": "nn.GELU",
    "silu": "nn.SiLU",
    "softplus": "nn.Softplus",
    "hard_swish": "nn.Hardswish",
    "mish": "nn.Mish",
}

_NO_SCALE = '''class BatchNorm{d}NoScale(nn.BatchNorm{d}):
    """Keras BatchNormalization(scale=False): a learned shift, no learned scale."""

    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        super().__init__(num_features, eps=eps, momentum=momentum, affine=False)
        self.bias = nn.Parameter(torch.zeros(num_features))'''

HELPERS = {
    "BatchNorm2dNoScale": _NO_SCALE.format(d="2d"),
    "BatchNorm1dNoScale": _NO_SCALE.format(d="1d"),
    "Rescaling": '''class Rescaling(nn.Module):
    """Keras's Rescaling: x * scale + offset."""

    def __init__(self, scale, offset=0.0):
        super().__init__()
        self.scale, self.offset = scale, offset

    def forward(self, x):
        return x * self.scale + self.offset''',
    "Normalization": '''class Normalization(nn.Module):
    """Keras's Normalization over channels: (x - mean) / max(sqrt(variance), 1e-7).
    Given statistics are constants; otherwise they are buffers loaded like batch
    norm's, with Keras's sample `count`."""

    def __init__(self, channels, mean=None, variance=None):
        super().__init__()
        given = mean is not None
        mean = torch.zeros(channels) if mean is None else torch.tensor(mean).expand(channels)
        var = torch.ones(channels) if variance is None else torch.tensor(variance).expand(channels)
        self.register_buffer("mean", mean.clone(), persistent=not given)
        self.register_buffer("variance", var.clone(), persistent=not given)
        if not given:
            self.register_buffer("count", torch.zeros((), dtype=torch.int64))

    def forward(self, x):
        shape = (-1, 1, 1) if x.dim() == 4 else (-1,)
        std = torch.clamp(self.variance.sqrt(), min=1e-7)
        return (x - self.mean.view(shape)) / std.view(shape)''',
    "LayerNorm2d": '''class LayerNorm2d(nn.LayerNorm):
    """Layer norm over the channels of each cell of an N x C x H x W map
    (Keras's LayerNormalization(axis=-1); torchvision's ConvNeXt LayerNorm2d)."""

    def forward(self, x):
        x = x.permute(0, 2, 3, 1)
        x = F.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)''',
    "LayerScale": '''class LayerScale(nn.Module):
    """x * gamma: one learnable scale per channel, starting at `init` (ConvNeXt)."""

    def __init__(self, channels, init=1e-6):
        super().__init__()
        self.gamma = nn.Parameter(torch.full((channels,), init))

    def forward(self, x):
        return x * (self.gamma.view(-1, 1, 1) if x.dim() == 4 else self.gamma)''',
    "DropPath": '''class DropPath(nn.Module):
    """Stochastic depth: in training each sample is zeroed with probability p and
    the kept ones are scaled by 1/(1 - p), as Keras's Dropout(p, noise_shape=(None,
    1, 1, 1)) does; the identity in evaluation."""

    def __init__(self, p):
        super().__init__()
        self.p = p

    def forward(self, x):
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * mask / keep''',
    "Reshape": '''class Reshape(nn.Module):
    """Keras's Reshape: the values in channels-last order, in the target shape
    (H x W x C, given channels-last, or a vector)."""

    def __init__(self, shape):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x):
        if x.dim() == 4:
            x = x.permute(0, 2, 3, 1)
        x = x.reshape(x.shape[0], *self.shape)
        return x.permute(0, 3, 1, 2) if x.dim() == 4 else x''',
    "SamePool2d": '''class SamePool2d(nn.Module):
    """Keras `same` pooling with uneven padding (the odd cell at the bottom/right):
    max pooling ignores the padding, average pooling divides by the real cells."""

    def __init__(self, kind, kernel_size, stride, padding):
        super().__init__()
        self.kind, self.kernel_size, self.stride = kind, kernel_size, stride
        self.padding = padding  # (left, right, top, bottom), as F.pad takes it

    def forward(self, x):
        if self.kind == "max":
            padded = F.pad(x, self.padding, value=float("-inf"))
            return F.max_pool2d(padded, self.kernel_size, self.stride)
        total = F.avg_pool2d(F.pad(x, self.padding), self.kernel_size, self.stride)
        ones = F.pad(torch.ones_like(x[:, :1]), self.padding)
        return total / F.avg_pool2d(ones, self.kernel_size, self.stride)''',
    "Crop2d": '''class Crop2d(nn.Module):
    """Keras's Cropping2D: drops rows and columns at the edges."""

    def __init__(self, top, bottom, left, right):
        super().__init__()
        self.top, self.bottom, self.left, self.right = top, bottom, left, right

    def forward(self, x):
        height, width = x.shape[2], x.shape[3]
        return x[:, :, self.top : height - self.bottom, self.left : width - self.right]''',
    "ChannelSplit": '''class ChannelSplit(nn.Module):
    """Part `take` (from 0) of the channels cut into `parts` equal parts."""

    def __init__(self, parts, take):
        super().__init__()
        self.parts, self.take = parts, take

    def forward(self, x):
        return x.chunk(self.parts, dim=1)[self.take]''',
    "SeparableConv2d": '''class SeparableConv2d(nn.Module):
    """Keras's SeparableConv2D: a depthwise convolution (`multiplier` kernels per
    input channel, no bias), then a 1x1 pointwise convolution with the bias."""

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size,
        stride=1,
        padding=0,
        dilation=1,
        multiplier=1,
        bias=True,
    ):
        super().__init__()
        mid = in_channels * multiplier
        self.depthwise = nn.Conv2d(
            in_channels,
            mid,
            kernel_size,
            stride,
            padding,
            dilation,
            groups=in_channels,
            bias=False,
        )
        self.pointwise = nn.Conv2d(mid, out_channels, 1, bias=bias)

    def forward(self, x):
        return self.pointwise(self.depthwise(x))''',
    "CroppedConvTranspose2d": '''class CroppedConvTranspose2d(nn.ConvTranspose2d):
    """nn.ConvTranspose2d, then its last `crop` = (rows, columns) dropped: where
    Keras's transposed convolution loses one cell more at the end than at the
    start, which PyTorch's symmetric padding cannot say."""

    def __init__(self, *args, crop, **kwargs):
        super().__init__(*args, **kwargs)
        self.crop = crop

    def forward(self, x):
        x = super().forward(x)
        return x[:, :, : x.shape[2] - self.crop[0], : x.shape[3] - self.crop[1]]''',
}


def _hw(pair):
    return pair[0] if pair[0] == pair[1] else tuple(pair)


def _same(n: Node, kernel, stride, dilation=(1, 1)):
    """((top, bottom), (left, right)) zeros of Keras `same` for this node's input."""
    h, w = n.in_shapes[0][0], n.in_shapes[0][1]
    return (
        same_padding(h, kernel[0], stride[0], dilation[0]),
        same_padding(w, kernel[1], stride[1], dilation[1]),
    )


CHAIN = Chain()  # the ops in order on the input


def _activation(name: str | None, inner: Expr = CHAIN) -> Expr:
    """The inner expression with a fused activation applied (`linear`: none)."""
    if not name or name == "linear":
        return inner
    func, extra = ACT[name]
    return Fn(func, inner, extra)


EMITTERS: dict[str, Emitter] = {}  # IR node kind -> its emitter, entered by @lowers
lowers = Generator.registry(EMITTERS)


@lowers("rescaling")
def lower_rescaling(n: Node, r: Render) -> Lowered:
    r.helpers.add("Rescaling")
    # Keras casts scale and offset through float32 (tf.cast of a Python float), even
    # in a float64 model: the values written are those (see the docstring)
    return Lowered(
        [
            Op(
                "Rescaling",
                [_float32(n.scale)],
                OrderedDict(offset=_float32(n.offset)),
                {"offset": 0.0},
            )
        ]
    )


@lowers("normalization")
def lower_normalization(n: Node, r: Render) -> Lowered:
    kw = OrderedDict()
    if n.mean is not None:
        kw.update(mean=list(n.mean), variance=list(n.variance))
    r.helpers.add("Normalization")
    return Lowered([Op("Normalization", [n.in_shapes[0][-1]], kw, channels_arg=0)])


def _window_padding(n: Node, ops: list[Op]):
    """The layer's `padding=` for Keras's `same` (symmetric), `valid` or explicit
    zeros; uneven `same` padding becomes an nn.ZeroPad2d before the layer."""
    if n.padding == "same":
        (t, b), (left, right) = _same(n, n.kernel, n.stride, n.dilation)
        if t == b and left == right:
            return _hw((t, left))
        ops.append(Op("nn.ZeroPad2d", [(left, right, t, b)], attr="_pad"))
        return 0
    if n.padding == "valid":
        return 0
    return _hw(n.padding)


@lowers("conv")
def lower_conv(n: Node, r: Render) -> Lowered:
    cin = n.in_shapes[0][-1]
    ops = []
    padding = _window_padding(n, ops)
    ops.append(
        Op(
            "nn.Conv2d",
            [cin, n.filters, _hw(n.kernel)],
            OrderedDict(
                stride=_hw(n.stride),
                padding=padding,
                dilation=_hw(n.dilation),
                groups=n.groups,
                bias=n.use_bias,
            ),
            {"stride": 1, "padding": 0, "dilation": 1, "groups": 1, "bias": True},
            channels_arg=0,
        )
    )
    return Lowered(ops, _activation(n.activation))


@lowers("depthwise")
def lower_depthwise(n: Node, r: Render) -> Lowered:
    """nn.Conv2d with one group per input channel; output channel c * multiplier + k
    comes from input channel c, as in Keras."""
    cin = n.in_shapes[0][-1]
    ops = []
    padding = _window_padding(n, ops)
    ops.append(
        Op(
            "nn.Conv2d",
            [cin, cin * n.multiplier, _hw(n.kernel)],
            OrderedDict(
                stride=_hw(n.stride),
                padding=padding,
                dilation=_hw(n.dilation),
                groups=cin,
                bias=n.use_bias,
            ),
            {"stride": 1, "padding": 0, "dilation": 1, "bias": True},
        )
    )
    return Lowered(ops, _activation(n.activation))


@lowers("separable")
def lower_separable(n: Node, r: Render) -> Lowered:
    r.helpers.add("SeparableConv2d")
    ops = []
    padding = _window_padding(n, ops)
    ops.append(
        Op(
            "SeparableConv2d",
            [n.in_shapes[0][-1], n.filters, _hw(n.kernel)],
            OrderedDict(
                stride=_hw(n.stride),
                padding=padding,
                dilation=_hw(n.dilation),
                multiplier=n.multiplier,
                bias=n.use_bias,
            ),
            {"stride": 1, "padding": 0, "dilation": 1, "multiplier": 1, "bias": True},
            channels_arg=0,
        )
    )
    return Lowered(ops, _activation(n.activation))


@lowers("transposed")
def lower_transposed(n: Node, r: Render) -> Lowered:
    """nn.ConvTranspose2d cropping what Keras crops at the start (`padding=`) and
    giving Keras's length by `output_padding`, or, where Keras crops one cell more
    at the end, the CroppedConvTranspose2d helper that drops it (see
    archc.ir.kinds.transpose_axis)."""
    ph, pw = n.plan([tuple(n.in_shapes[0])])
    kw = OrderedDict(
        stride=_hw(n.stride),
        padding=_hw((ph.crop, pw.crop)),
        output_padding=_hw((ph.output_padding, pw.output_padding)),
        bias=n.use_bias,
    )
    cls = "nn.ConvTranspose2d"
    if ph.trim or pw.trim:
        r.helpers.add("CroppedConvTranspose2d")
        cls = "CroppedConvTranspose2d"
        kw["crop"] = (ph.trim, pw.trim)
    op = Op(
        cls,
        [n.in_shapes[0][-1], n.filters, _hw(n.kernel)],
        kw,
        {"stride": 1, "padding": 0, "output_padding": 0, "bias": True},
        channels_arg=0,
    )
    return Lowered([op], _activation(n.activation))


@lowers("dense")
def lower_dense(n: Node, r: Render) -> Lowered:
    op = Op(
        "nn.Linear",
        [n.in_shapes[0][0], n.units],
        OrderedDict(bias=n.use_bias),
        {"bias": True},
        channels_arg=0,
    )
    return Lowered([op], _activation(n.activation))


@lowers("batchnorm")
def lower_batchnorm(n: Node, r: Render) -> Lowered:
    dims = "2d" if len(n.in_shapes[0]) == 3 else "1d"
    cls = f"nn.BatchNorm{dims}"
    if not n.scale:
        cls = f"BatchNorm{dims}NoScale"
        r.helpers.add(cls)
    return Lowered(
        [
            Op(
                cls,
                [n.in_shapes[0][-1]],
                OrderedDict(eps=n.epsilon, momentum=round(1 - n.momentum, 12)),
                {"eps": 1e-5, "momentum": 0.1},
                channels_arg=0,
            )
        ]
    )


@lowers("layernorm")
def lower_layernorm(n: Node, r: Render) -> Lowered:
    cls = "nn.LayerNorm"
    if len(n.in_shapes[0]) == 3:  # over the channels of each cell
        r.helpers.add("LayerNorm2d")
        cls = "LayerNorm2d"
    return Lowered(
        [
            Op(
                cls,
                [n.in_shapes[0][-1]],
                OrderedDict(eps=n.epsilon),
                {"eps": 1e-5},
                channels_arg=0,
            )
        ]
    )


@lowers("groupnorm")
def lower_groupnorm(n: Node, r: Render) -> Lowered:
    return Lowered(
        [
            Op(
                "nn.GroupNorm",
                [n.groups, n.in_shapes[0][-1]],
                OrderedDict(eps=n.epsilon),
                {"eps": 1e-5},
                channels_arg=1,
            )
        ]
    )


@lowers("layerscale")
def lower_layerscale(n: Node, r: Render) -> Lowered:
    r.helpers.add("LayerScale")
    return Lowered([Op("LayerScale", [n.in_shapes[0][-1], n.init], channels_arg=0)])


@lowers("lrn")
def lower_lrn(n: Node, r: Render) -> Lowered:
    return Lowered(
        [
            Op(
                "nn.LocalResponseNorm",
                [n.depth],
                OrderedDict(alpha=round(n.alpha * n.depth, 15), beta=n.beta, k=n.bias_k),
                {"alpha": 1e-4, "beta": 0.75, "k": 1.0},
            )
        ]
    )


def _float32(value: float) -> float:
    """`value` rounded to the nearest float32, as a Python float."""
    return struct.unpack("<f", struct.pack("<f", value))[0]


@lowers("activation")
def lower_activation(n: Node, r: Render) -> Lowered:
    if n.fn == "leaky_relu":  # the slope Keras applies: float32 (see the docstring)
        op = Op(
            "nn.LeakyReLU",
            [],
            OrderedDict(negative_slope=_float32(n.alpha)),
            {"negative_slope": 0.01},
        )
    elif n.fn == "elu":
        op = Op("nn.ELU", [], OrderedDict(alpha=n.alpha), {"alpha": 1.0})
    elif n.fn == "prelu":
        op = Op("nn.PReLU", [n.in_shapes[0][-1]], OrderedDict(init=0.0), {}, channels_arg=0)
    elif n.fn == "softmax":
        op = Op("nn.Softmax", [], OrderedDict(dim=1), {})
    elif n.fn == "gelu_tanh":
        op = Op("nn.GELU", [], OrderedDict(approximate="tanh"), {})
    else:
        op = Op(ACT_MODULE[n.fn])
    return Lowered([op])


@lowers("pool")
def lower_pool(n: Node, r: Render) -> Lowered:
    kind = "Max" if n.op == "max" else "Avg"
    kw = OrderedDict(stride=_hw(n.stride), padding=0)
    defaults = {"stride": ArgDefault(0), "padding": 0}
    if n.padding == "same":
        (t, b), (left, right) = _same(n, n.kernel, n.stride)
        if t != b or left != right:
            r.helpers.add("SamePool2d")
            return Lowered(
                [Op("SamePool2d", [n.op, _hw(n.kernel), _hw(n.stride), (left, right, t, b)])]
            )
        kw["padding"] = _hw((t, left))
        if n.op == "avg":  # Keras divides by the real cells
            kw["count_include_pad"] = (t, left) == (0, 0)
            defaults["count_include_pad"] = True
    elif n.padding != "valid":
        kw["padding"] = _hw(n.padding)  # PyTorch's own rule: -inf for max, zeros counted
    kw["ceil_mode"] = n.ceil
    defaults["ceil_mode"] = False
    return Lowered([Op(f"nn.{kind}Pool2d", [_hw(n.kernel)], kw, defaults)])


@lowers("globalpool")
def lower_globalpool(n: Node, r: Render) -> Lowered:
    cls = "nn.AdaptiveMaxPool2d" if n.op == "max" else "nn.AdaptiveAvgPool2d"
    if n.keepdims:  # N x C x 1 x 1: Keras's 1 x 1 x C
        return Lowered([Op(cls, [1])])
    return Lowered([Op(cls, [1])], Fn("torch.flatten", Chain(), ("1",)))


@lowers("upsample")
def lower_upsample(n: Node, r: Render) -> Lowered:
    kw = OrderedDict(scale_factor=_hw(n.factor), mode=n.interpolation)
    if n.interpolation == "bilinear":
        kw["align_corners"] = False  # half-pixel centres, as Keras
    return Lowered([Op("nn.Upsample", [], kw, {"mode": "nearest"})])


@lowers("resize")
def lower_resize(n: Node, r: Render) -> Lowered:
    # Keras's nearest takes the cell under each output centre: torch's nearest-exact
    kw = OrderedDict(size=n.size, mode="nearest-exact")
    if n.interpolation == "bilinear":
        kw["mode"] = "bilinear"
        kw["align_corners"] = False
    return Lowered([Op("nn.Upsample", [], kw)])


@lowers("dropout")
def lower_dropout(n: Node, r: Render) -> Lowered:
    return Lowered([Op("nn.Dropout", [n.rate])])


@lowers("droppath")
def lower_droppath(n: Node, r: Render) -> Lowered:
    r.helpers.add("DropPath")
    return Lowered([Op("DropPath", [n.rate])])


@lowers("flatten")
def lower_flatten(n: Node, r: Render) -> Lowered:
    if len(n.in_shapes[0]) == 3:  # Keras's channels-last order
        return Lowered([Op("nn.Flatten")], Chain(method=".permute(0, 2, 3, 1)"))
    return Lowered([Op("nn.Flatten")])


@lowers("reshape")
def lower_reshape(n: Node, r: Render) -> Lowered:
    src, dst = n.in_shapes[0], n.shape
    if len(src) == 1 and len(dst) == 3 and dst[:2] == (1, 1):  # N x C -> N x C x 1 x 1
        return Lowered([Op("nn.Unflatten", [1, (dst[2], 1, 1)])])
    if len(src) == 3 and src[:2] == (1, 1) and len(dst) == 1:  # N x C x 1 x 1 -> N x C
        return Lowered([Op("nn.Flatten")])
    r.helpers.add("Reshape")
    return Lowered([Op("Reshape", [tuple(dst)])])


@lowers("zeropad")
def lower_zeropad(n: Node, r: Render) -> Lowered:
    t, b, left, right = n.pad
    return Lowered([Op("nn.ZeroPad2d", [(left, right, t, b)])])


@lowers("crop")
def lower_crop(n: Node, r: Render) -> Lowered:
    r.helpers.add("Crop2d")
    return Lowered([Op("Crop2d", list(n.crop))])


@lowers("concat")
def lower_concat(n: Node, r: Render) -> Lowered:
    return Lowered([], Fn("torch.cat", Chain(listed=True), ("dim=1",)))


@lowers("shuffle")
def lower_shuffle(n: Node, r: Render) -> Lowered:
    return Lowered([Op("nn.ChannelShuffle", [n.groups])])


@lowers("split")
def lower_split(n: Node, r: Render) -> Lowered:
    r.helpers.add("ChannelSplit")
    return Lowered([Op("ChannelSplit", [n.parts, n.take])])


@lowers("add")
def lower_add(n: Node, r: Render) -> Lowered:
    return Lowered([], Infix("+"))


@lowers("mul")
def lower_mul(n: Node, r: Render) -> Lowered:
    return Lowered([], Infix("*"))  # N x C x 1 x 1 broadcasts over H and W


def _init_lines(inst: Instance, unit: Unit | None, indent: int) -> list[str]:
    out = []
    seen = set()
    for k, item in enumerate(inst.items):
        if item.child is not None:
            attrs = [item.local]
            out.append(
                call(
                    item.child.unit.class_name,
                    child_args(item, k, unit),
                    indent,
                    prefix=f"self.{item.local} = ",
                )
            )
        else:
            attrs = []
            for j, op in enumerate(item.lowered.ops):
                func, args = op_source(op, k, j, unit)
                attr = item.local + op.attr
                attrs.append(attr)
                out.append(call(func, args, indent, prefix=f"self.{attr} = "))
        for a in attrs:
            if a in seen:
                raise BackendError(f"two modules would both be named `{a}`")
            seen.add(a)
    return out


def _softmax_tail(root: Instance) -> Item | None:
    """The model's last statement when it applies a softmax (a softmax node, or one
    fused into a conv or dense), else None."""
    item = root.items[-1]
    n = item.node
    if (
        item.child is None
        and n is not None
        and (
            (n.kind == "activation" and n.fn == "softmax")
            or getattr(n, "activation", None) == "softmax"
        )
    ):
        return item
    return None


def _expr(item: Item, expr: Expr, ins: list[str]) -> str:
    return expr.render([f"self.{item.local}{op.attr}" for op in item.lowered.ops], ins)


def _forward_lines(inst: Instance, indent: int, logits: bool = False) -> list[str]:
    """The forward's statements; with `logits` (the model ends in a softmax), the last
    returns the scores before the softmax when self.logits is set."""
    out = []
    body = Body(inst.items, inst.items[-1].local)
    pad = " " * indent
    for k, item in enumerate(inst.items):
        ins, var = body.assign(k)
        if item.child is not None:
            out.append(f"{pad}{var} = self.{item.local}({ins[0]})")
            continue
        if logits and k == len(inst.items) - 1:
            if item.node.kind == "activation":  # nn.Softmax of the previous value
                scores, probabilities = ins[0], _expr(item, item.lowered.expr, ins)
            else:  # fused: the conv or dense without its softmax
                softmax = item.lowered.expr
                assert isinstance(softmax, Fn) and softmax.func == ACT["softmax"][0], softmax
                out.append(f"{pad}{var} = {_expr(item, softmax.inner, ins)}")
                scores = var
                probabilities = Fn(softmax.func, Chain(), softmax.extra).render([], [var])
            out += [
                f"{pad}if self.logits:",
                f"{pad}    return {scores}",
                f"{pad}return {probabilities}",
            ]
            continue
        out.append(f"{pad}{var} = {_expr(item, item.lowered.expr, ins)}")
    return out


def _class(unit: Unit) -> str:
    inst = unit.instances[0]
    doc = unit_doc(unit)
    lines = [
        f"class {unit.class_name}(nn.Module):",
        f'    """{doc}"""',
        "",
        call("def __init__", ["self", *unit.params], 4, suffix=":"),
        "        super().__init__()",
    ]
    lines += _init_lines(inst, unit, 8)
    lines += ["", "    def forward(self, x):"]
    lines += _forward_lines(inst, 8)
    lines.append("        return x")
    return "\n".join(lines)


def model_class_name(model: Model) -> str:
    return camel(model.name)


def _model_class(model: Model, root: Instance) -> str:
    chw = (
        (model.input_shape[2], model.input_shape[0], model.input_shape[1])
        if len(model.input_shape) == 3
        else tuple(model.input_shape)
    )
    lines = [
        f"class {model_class_name(model)}(nn.Module):",
        (
            f'    """The `{model.name}` network. forward() takes N x {" x ".join(map(str, chw))}'
            f" (channels first);"
        ),
        f'    the spec writes its input {describe(model.input_shape)} (H x W x C)."""'
        if len(model.input_shape) == 3
        else f'    the spec writes its input as a vector of {model.input_shape[0]}."""',
        "",
        f"    input_shape = {lit(chw)}",
        "",
        "    def __init__(self):",
        "        super().__init__()",
    ]
    logits = _softmax_tail(root) is not None
    if logits:
        if any(item.local == "logits" for item in root.items):
            raise BackendError(
                "a node or block named `logits` would hide the model's "
                "`logits` switch (its output ends in a softmax): rename it"
            )
        lines[2] = lines[2][:-3]  # the docstring goes on
        lines[3:3] = SOFTMAX_DOC
        lines[-2:] = [
            "    def __init__(self, logits=False):",
            "        super().__init__()",
            "        self.logits = logits",
        ]
    lines += _init_lines(root, None, 8)
    lines += ["", "    def forward(self, x):"]
    lines += _forward_lines(root, 8, logits)
    if not logits:
        lines.append("        return x")
    return "\n".join(lines)


# The model class's docstring, when the spec ends in a softmax.
SOFTMAX_DOC = [
    "",
    "    The spec ends in a softmax, so forward() returns probabilities, as the Keras",
    "    model does. PyTorch's losses take logits: nn.CrossEntropyLoss applies",
    "    log-softmax itself, so training on these outputs applies softmax twice.",
    "    Build the model with `logits=True` to get the scores before the softmax",
    "    (the same modules and state_dict; softmax(scores, dim=1) is forward()'s",
    '    default output)."""',
]


def _training(model: Model) -> str | None:
    """The recipe's make_optimizer (backends/recipe_source.py)."""
    return recipe_source.torch_training(model) if model.training is not None else None


class TorchGenerator(Generator):
    """IR -> a PyTorch module: an nn.Module per block variant, the model's class
    and `make_optimizer(model)`."""

    NAME = NAME
    FRAMEWORK = FRAMEWORK
    TEMPLATES = Path(__file__).parent / "templates"
    HELPERS = HELPERS
    IMPORTS = (
        ("import torch", ("torch",)),
        ("import torch.nn.functional as F", ("F",)),
        ("from torch import {}", ("nn",)),
    )
    IN_CHANNELS = True
    DEFINES = "classes or functions"
    LOWER: ClassVar[dict[str, Emitter]] = {**Generator.LOWER, **EMITTERS}

    def defined_names(self, model: Model, units: list[Unit]) -> list[str]:
        return [u.class_name for u in units] + [
            model_class_name(model),
            "make_optimizer",
            "learning_rate",
        ]

    unit_source = staticmethod(_class)
    model_source = staticmethod(_model_class)
    training_source = staticmethod(_training)

    def template_vars(self, model: Model) -> dict:
        return {"title": f"{model.name}: generated PyTorch model."}

    model_class_name = staticmethod(model_class_name)


GENERATOR = TorchGenerator()
generate = GENERATOR.generate
