"""IR -> an ONNX model, written with the `onnx` package's helpers (no framework is
traced): channels-first (N x C x H x W), node by node, with Keras's semantics
spelled out in the graph.

Names. Every IR node becomes one main ONNX node named as the IR node; the value
the IR node outputs is named as the IR node too. A node that needs more than one
ONNX operator (a fused activation, Flatten's transpose, global pooling's flatten)
names its helper nodes and values `<ir name>/<part>` (`c1/relu`), and its
tensors `<ir name>/<role>` (`c1/kernel`, archc's weight-file key): an IR name
never holds a `/`, so no helper can meet a user's name. Every name is data in
the protobuf (never code), and a repeated name is refused.

Semantics, as the PyTorch build spells them (backends/pytorch/generator.py):
- `same` padding: Keras's zeros, the odd one at the bottom/right, as explicit
  `pads` [top, left, bottom, right] on Conv, MaxPool and AveragePool;
- `same` max pooling ignores padded cells (ONNX MaxPool never takes a padded
  cell); `same` average pooling divides by the real cells (count_include_pad=0);
  explicit pooling padding is PyTorch's (max: ignored; average: zeros counted);
- batch norm: inference form with the spec's epsilon (Keras's 1e-3 by default);
- Flatten in Keras's channels-last order: Transpose to N x H x W x C first;
- LRN: ONNX divides alpha by the window (as PyTorch does): alpha * depth is written;
- LeakyReLU: the slope Keras applies, rounded to float32 (an ONNX float attribute);
- PReLU: one slope per channel, shape C x 1 x 1 (C for a vector);
- softmax over the channels (axis 1); dropout and drop path are the identity
  at inference;
- the newer kinds as the PyTorch build computes them: depthwise = Conv with one
  group per channel; separable = `<node>/depthwise` then the pointwise Conv;
  the transposed convolution's Keras crop as asymmetric `pads`; layer norm over
  the channels (Transpose, LayerNormalization, Transpose); group norm as
  Reshape + InstanceNormalization + Reshape, then gamma and beta; ceil pooling
  as PyTorch's end padding; Resize (half-pixel bilinear; nearest as
  nn.Upsample's floor or `nearest-exact`); Reshape in Keras's channels-last
  order; channel shuffle as Reshape-Transpose-Reshape; Rescaling and given
  Normalization statistics rounded to float32, as Keras applies them.

Weights: from archc's weight file (`<node>/<role>` in Keras's layout, as
`archc train` exports it), permuted to PyTorch's layout by each kind's declared
`to_torch`; without one, seeded random values (archc.equiv.randomize, seed 0). The
model's metadata says which, with the spec, archc's version and the layouts.

The generator checks its own output before returning it: onnx.checker with
full_check, and strict shape inference whose shapes must equal the IR's for
every node (the inferred shapes are kept in the model, so netron shows them).
"""

from __future__ import annotations

import hashlib
import math
import os
import re
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

from archc import __version__
from archc.ir import Model
from archc.ir.kinds import KINDS, Node
from archc.ir.shapes import same_padding
from backends.common import BackendError, Generator, spec_label

NAME = "onnx"
FRAMEWORK = "ONNX"
DEFAULT_OPSET = 21  # onnxruntime >= 1.20, onnx >= 1.16; TensorRT and OpenVINO read it
MIN_OPSET = 13  # Softmax over one axis, Clip and Pad with tensor inputs
DTYPES = ("float32", "float64")
PRODUCER = "archc"
RANDOM_SEED = 0
MAX_BYTES = 2**31 - 1  # one protobuf: larger models would need external data


def written_by_archc(head: bytes) -> bool:
    """Whether a file's first bytes are an ONNX model archc wrote: the serialised
    ModelProto starts with ir_version (field 1) and producer_name (field 2)."""
    return re.match(rb"\x08[\x01-\x7f]\x12\x05archc", head) is not None


# ---------------------------------------------------------------------------
# the graph being built
# ---------------------------------------------------------------------------


@dataclass
class Graph:
    """The ONNX nodes and tensors of one model, in the IR's order."""

    model: Model
    dtype: str
    opset: int
    weights: dict[str, Any]  # "<node>/<role>" -> array, Keras's layout
    nodes: list = field(default_factory=list)
    initializers: list = field(default_factory=list)
    node_names: set[str] = field(default_factory=set)
    values: set[str] = field(default_factory=set)
    nbytes: int = 0  # the tensors' data
    # IR node -> the value the PyTorch build's module of that node outputs (its
    # output before a fused activation): what `archc equiv --nodes` compares
    module_outputs: dict[str, str] = field(default_factory=dict)
    # values whose shape the graph states (N x C x H x W) where shape inference
    # cannot carry the symbolic batch through (Resize's output)
    stated: dict[str, list] = field(default_factory=dict)

    def _value(self, name: str) -> str:
        if name in self.values:
            raise BackendError(f"two ONNX values would both be named `{name}`")
        self.values.add(name)
        return name

    def op(self, op_type: str, inputs: list[str], output: str, name: str, **attrs) -> str:
        """One ONNX node `name` computing `output` from `inputs`."""
        from onnx import helper

        if name in self.node_names:
            raise BackendError(f"two ONNX nodes would both be named `{name}`")
        self.node_names.add(name)
        self.nodes.append(helper.make_node(op_type, inputs, [self._value(output)], name, **attrs))
        return output

    def tensor(self, name: str, array) -> str:
        """An initializer `name` holding `array` as it is (its dtype kept)."""
        from onnx import numpy_helper

        self.initializers.append(numpy_helper.from_array(array, self._value(name)))
        self.nbytes += array.nbytes
        return name

    def const(self, n: Node, part: str, values, dtype: str | None = None) -> str:
        """A constant `<node>/<part>` in the model's float type (or `dtype`)."""
        import numpy as np

        return self.tensor(f"{n.name}/{part}", np.asarray(values, dtype=dtype or self.dtype))

    def weight(self, n: Node, role: str, shape: tuple[int, ...] | None = None) -> str:
        """The node's tensor `role` in PyTorch's layout (or reshaped to `shape`)."""
        import numpy as np

        from backends.transfer import _to_torch_layout

        (w,) = [w for w in n.weights(list(n.in_shapes)) if w.role == role]
        a = _to_torch_layout(w, np.asarray(self.weights[f"{n.name}/{role}"]))
        if shape is not None:
            a = a.reshape(shape)
        return self.tensor(f"{n.name}/{role}", np.ascontiguousarray(a, dtype=self.dtype))

    def input(self, n: Node, k: int = 0) -> str:
        return n.inputs[k]


Emitter = Callable[[Node, Graph], None]
EMITTERS: dict[str, Emitter] = {}  # IR node kind -> its emitter, entered by @lowers
lowers = Generator.registry(EMITTERS)


def _hw(pair) -> list[int]:
    return [int(pair[0]), int(pair[1])]


def _pads(n: Node, kernel, stride, dilation=(1, 1)) -> list[int]:
    """ONNX pads [top, left, bottom, right] for the node's padding."""
    if n.padding == "same":
        h, w = n.in_shapes[0][0], n.in_shapes[0][1]
        (t, b) = same_padding(h, kernel[0], stride[0], dilation[0])
        (left, right) = same_padding(w, kernel[1], stride[1], dilation[1])
        return [t, left, b, right]
    if n.padding == "valid":
        return [0, 0, 0, 0]
    ph, pw = n.padding
    return [ph, pw, ph, pw]


def _activation(g: Graph, n: Node, fn: str, alpha: float | None, x: str, out: str, name: str):
    """`fn` on `x` as ONNX nodes; the last is `name` and computes `out`; helper
    nodes are `<name>/<part>`."""
    if fn == "relu":
        g.op("Relu", [x], out, name)
    elif fn == "relu6":
        zero, six = g.const(n, "min", 0.0), g.const(n, "max", 6.0)
        g.op("Clip", [x, zero, six], out, name)
    elif fn == "sigmoid":
        g.op("Sigmoid", [x], out, name)
    elif fn == "hard_sigmoid":  # Keras 3 and PyTorch: relu6(x + 3) / 6
        g.op("HardSigmoid", [x], out, name, alpha=1.0 / 6.0, beta=0.5)
    elif fn == "tanh":
        g.op("Tanh", [x], out, name)
    elif fn == "softmax":  # the channels: the last axis of Keras's layout
        g.op("Softmax", [x], out, name, axis=1)
    elif fn == "linear":
        g.op("Identity", [x], out, name)
    elif fn == "elu":
        g.op("Elu", [x], out, name, alpha=1.0 if alpha is None else float(alpha))
    elif fn == "selu":
        g.op("Selu", [x], out, name)
    elif fn == "gelu":  # exact (erf) GELU, Keras's and PyTorch's default
        if g.opset >= 20:
            g.op("Gelu", [x], out, name)
        else:  # 0.5 * x * (1 + erf(x / sqrt(2)))
            root2, one, half = (
                g.const(n, "sqrt2", 2.0**0.5),
                g.const(n, "one", 1.0),
                g.const(n, "half", 0.5),
            )
            s = g.op("Div", [x, root2], f"{name}/scaled", f"{name}/scaled")
            e = g.op("Erf", [s], f"{name}/erf", f"{name}/erf")
            p = g.op("Add", [e, one], f"{name}/erf_plus_1", f"{name}/erf_plus_1")
            h = g.op("Mul", [x, half], f"{name}/half_x", f"{name}/half_x")
            g.op("Mul", [h, p], out, name)
    elif fn == "gelu_tanh":  # GELU's tanh approximation (PyTorch approximate="tanh")
        if g.opset >= 20:
            g.op("Gelu", [x], out, name, approximate="tanh")
        else:  # 0.5 * x * (1 + tanh(sqrt(2 / pi) * (x + 0.044715 * x^3)))
            k, c, one, half = (
                g.const(n, "cube_coefficient", 0.044715),
                g.const(n, "sqrt_2_over_pi", (2.0 / math.pi) ** 0.5),
                g.const(n, "one", 1.0),
                g.const(n, "half", 0.5),
            )
            sq = g.op("Mul", [x, x], f"{name}/square", f"{name}/square")
            cube = g.op("Mul", [sq, x], f"{name}/cube", f"{name}/cube")
            kc = g.op("Mul", [cube, k], f"{name}/scaled_cube", f"{name}/scaled_cube")
            inner = g.op("Add", [x, kc], f"{name}/inner", f"{name}/inner")
            arg = g.op("Mul", [inner, c], f"{name}/argument", f"{name}/argument")
            t = g.op("Tanh", [arg], f"{name}/tanh", f"{name}/tanh")
            p = g.op("Add", [t, one], f"{name}/tanh_plus_1", f"{name}/tanh_plus_1")
            h = g.op("Mul", [x, half], f"{name}/half_x", f"{name}/half_x")
            g.op("Mul", [h, p], out, name)
    elif fn == "hard_swish":  # x * relu6(x + 3) / 6, Keras's and PyTorch's
        if g.opset >= 14:
            g.op("HardSwish", [x], out, name)
        else:
            s = g.op(
                "HardSigmoid",
                [x],
                f"{name}/hard_sigmoid",
                f"{name}/hard_sigmoid",
                alpha=1.0 / 6.0,
                beta=0.5,
            )
            g.op("Mul", [x, s], out, name)
    elif fn == "mish":  # x * tanh(softplus(x))
        if g.opset >= 18:
            g.op("Mish", [x], out, name)
        else:
            sp = g.op("Softplus", [x], f"{name}/softplus", f"{name}/softplus")
            t = g.op("Tanh", [sp], f"{name}/tanh", f"{name}/tanh")
            g.op("Mul", [x, t], out, name)
    elif fn == "silu":  # x * sigmoid(x)
        s = g.op("Sigmoid", [x], f"{name}/sigmoid", f"{name}/sigmoid")
        g.op("Mul", [x, s], out, name)
    elif fn == "softplus":
        g.op("Softplus", [x], out, name)
    elif fn == "leaky_relu":  # the float32 slope Keras applies (and the torch build writes)
        g.op("LeakyRelu", [x], out, name, alpha=float(alpha))
    elif fn == "prelu":
        shape = (n.in_shapes[0][-1], 1, 1) if len(n.in_shapes[0]) == 3 else None
        g.op("PRelu", [x, g.weight(n, "alpha", shape)], out, name)
    else:
        where = f" ({n.loc.file}:{n.loc.line})" if n.loc else ""
        raise BackendError(f"the ONNX backend has no lowering of the activation `{fn}`{where}")


def _fused(g: Graph, n: Node, op_type: str, inputs: list[str], **attrs) -> None:
    """The node's main operator, named as the node, then its fused activation."""
    act = getattr(n, "activation", None)
    if not act or act == "linear":  # `linear`: no activation (as the PyTorch build)
        g.op(op_type, inputs, n.name, n.name, **attrs)
        g.module_outputs[n.name] = n.name
        return
    pre = g.op(op_type, inputs, f"{n.name}/{op_type.lower()}", n.name, **attrs)
    g.module_outputs[n.name] = pre
    _activation(g, n, act, None, pre, n.name, f"{n.name}/{act}")


def _single(g: Graph, n: Node, op_type: str, inputs: list[str], **attrs) -> None:
    g.op(op_type, inputs, n.name, n.name, **attrs)
    g.module_outputs[n.name] = n.name


def _float32(value: float) -> float:
    """`value` rounded to the nearest float32, as a Python float (what Keras applies)."""
    return struct.unpack("<f", struct.pack("<f", value))[0]


def _per_channel(n: Node) -> tuple[int, ...]:
    """The shape that broadcasts one value per channel over the node's input:
    C x 1 x 1 for a feature map, C for a vector."""
    c = n.in_shapes[0][-1]
    return (c, 1, 1) if len(n.in_shapes[0]) == 3 else (c,)


def _ints(g: Graph, n: Node, part: str, values) -> str:
    return g.const(n, part, list(values), dtype="int64")


@lowers("rescaling")
def lower_rescaling(n: Node, g: Graph) -> None:
    # Keras casts scale and offset through float32, even in a float64 model
    scale = g.const(n, "scale", _float32(n.scale))
    scaled = g.op("Mul", [g.input(n), scale], f"{n.name}/scaled", f"{n.name}/scaled")
    _single(g, n, "Add", [scaled, g.const(n, "offset", _float32(n.offset))])


@lowers("normalization")
def lower_normalization(n: Node, g: Graph) -> None:
    """(x - mean) / max(sqrt(variance), 1e-7), per channel: the statistics are the
    node's weights, or its given values rounded to float32 (as both builds hold them)."""
    import numpy as np

    shape = _per_channel(n)
    if n.mean is None:
        mean, var = g.weight(n, "mean", shape), g.weight(n, "variance", shape)
    else:
        c = n.in_shapes[0][-1]
        given = [
            np.broadcast_to(np.asarray(v, dtype="float32"), (c,)).reshape(shape)
            for v in (n.mean, n.variance)
        ]
        mean, var = g.const(n, "mean", given[0]), g.const(n, "variance", given[1])
    centred = g.op("Sub", [g.input(n), mean], f"{n.name}/centred", f"{n.name}/centred")
    root = g.op("Sqrt", [var], f"{n.name}/sqrt", f"{n.name}/sqrt")
    std = g.op("Max", [root, g.const(n, "epsilon", 1e-7)], f"{n.name}/std", f"{n.name}/std")
    _single(g, n, "Div", [centred, std])


@lowers("conv")
def lower_conv(n: Node, g: Graph) -> None:
    inputs = [g.input(n), g.weight(n, "kernel")]
    if n.use_bias:
        inputs.append(g.weight(n, "bias"))
    _fused(
        g,
        n,
        "Conv",
        inputs,
        kernel_shape=_hw(n.kernel),
        strides=_hw(n.stride),
        dilations=_hw(n.dilation),
        pads=_pads(n, n.kernel, n.stride, n.dilation),
        group=int(n.groups),
    )


@lowers("depthwise")
def lower_depthwise(n: Node, g: Graph) -> None:
    """Conv with one group per input channel (output channel c * multiplier + k
    from input channel c, as in Keras); the kernel C*multiplier x 1 x kh x kw."""
    inputs = [g.input(n), g.weight(n, "kernel")]
    if n.use_bias:
        inputs.append(g.weight(n, "bias"))
    _fused(
        g,
        n,
        "Conv",
        inputs,
        kernel_shape=_hw(n.kernel),
        strides=_hw(n.stride),
        dilations=_hw(n.dilation),
        pads=_pads(n, n.kernel, n.stride, n.dilation),
        group=int(n.in_shapes[0][-1]),
    )


@lowers("separable")
def lower_separable(n: Node, g: Graph) -> None:
    """Two Convs, as Keras's SeparableConv2D: `<node>/depthwise` (one group per
    input channel, the padding, no bias), then the 1x1 pointwise one, named as the
    node, with the bias (and the fused activation after it)."""
    c = int(n.in_shapes[0][-1])
    depthwise = g.op(
        "Conv",
        [g.input(n), g.weight(n, "depthwise_kernel")],
        f"{n.name}/depthwise",
        f"{n.name}/depthwise",
        kernel_shape=_hw(n.kernel),
        strides=_hw(n.stride),
        dilations=_hw(n.dilation),
        pads=_pads(n, n.kernel, n.stride, n.dilation),
        group=c,
    )
    inputs = [depthwise, g.weight(n, "pointwise_kernel")]
    if n.use_bias:
        inputs.append(g.weight(n, "bias"))
    _fused(g, n, "Conv", inputs, kernel_shape=[1, 1])


@lowers("transposed")
def lower_transposed(n: Node, g: Graph) -> None:
    """ConvTranspose with Keras's alignment (archc.ir.kinds.transpose_axis): `pads`
    crops what Keras crops at the start, and at the end the same plus the cells
    Keras loses there beyond it (the PyTorch build's CroppedConvTranspose2d crop);
    `output_padding` gives Keras's length where it is longer."""
    ph, pw = n.plan([tuple(n.in_shapes[0])])
    inputs = [g.input(n), g.weight(n, "kernel")]  # C_in x C_out x kh x kw
    if n.use_bias:
        inputs.append(g.weight(n, "bias"))
    _fused(
        g,
        n,
        "ConvTranspose",
        inputs,
        kernel_shape=_hw(n.kernel),
        strides=_hw(n.stride),
        pads=[ph.crop, pw.crop, ph.crop + ph.trim, pw.crop + pw.trim],
        output_padding=[ph.output_padding, pw.output_padding],
    )


@lowers("dense")
def lower_dense(n: Node, g: Graph) -> None:
    inputs = [g.input(n), g.weight(n, "kernel")]  # PyTorch's out x in: B transposed
    if n.use_bias:
        inputs.append(g.weight(n, "bias"))
    _fused(g, n, "Gemm", inputs, transB=1)


@lowers("batchnorm")
def lower_batchnorm(n: Node, g: Graph) -> None:
    import numpy as np

    if n.scale:
        gamma = g.weight(n, "gamma")
    else:  # Keras's scale=False: no gamma, ones in its place
        gamma = g.const(n, "unit_scale", np.ones(n.in_shapes[0][-1]))
    roles = ("beta", "moving_mean", "moving_variance")
    inputs = [g.input(n), gamma, *(g.weight(n, r) for r in roles)]
    _single(g, n, "BatchNormalization", inputs, epsilon=float(n.epsilon))


@lowers("layernorm")
def lower_layernorm(n: Node, g: Graph) -> None:
    """Over the channels of each cell (Keras's axis -1): a feature map is
    transposed to N x H x W x C and back around LayerNormalization (opset 17);
    below opset 17 it is written out with ReduceMean over the channel axis."""
    x, spatial = g.input(n), len(n.in_shapes[0]) == 3
    if g.opset < 17:
        shape = _per_channel(n)
        gamma, beta = g.weight(n, "gamma", shape), g.weight(n, "beta", shape)
        mean = g.op("ReduceMean", [x], f"{n.name}/mean", f"{n.name}/mean", axes=[1])
        centred = g.op("Sub", [x, mean], f"{n.name}/centred", f"{n.name}/centred")
        sq = g.op("Mul", [centred, centred], f"{n.name}/square", f"{n.name}/square")
        var = g.op("ReduceMean", [sq], f"{n.name}/variance", f"{n.name}/variance", axes=[1])
        eps = g.const(n, "epsilon", n.epsilon)
        shifted = g.op("Add", [var, eps], f"{n.name}/variance_eps", f"{n.name}/variance_eps")
        std = g.op("Sqrt", [shifted], f"{n.name}/std", f"{n.name}/std")
        normed = g.op("Div", [centred, std], f"{n.name}/normalized", f"{n.name}/normalized")
        scaled = g.op("Mul", [normed, gamma], f"{n.name}/scaled", f"{n.name}/scaled")
        _single(g, n, "Add", [scaled, beta])
        return
    gamma, beta = g.weight(n, "gamma"), g.weight(n, "beta")
    if not spatial:
        _single(g, n, "LayerNormalization", [x, gamma, beta], axis=-1, epsilon=float(n.epsilon))
        return
    x = g.op("Transpose", [x], f"{n.name}/nhwc", f"{n.name}/nhwc", perm=[0, 2, 3, 1])
    normed = g.op(
        "LayerNormalization",
        [x, gamma, beta],
        f"{n.name}/norm",
        f"{n.name}/norm",
        axis=-1,
        epsilon=float(n.epsilon),
    )
    _single(g, n, "Transpose", [normed], perm=[0, 3, 1, 2])


@lowers("groupnorm")
def lower_groupnorm(n: Node, g: Graph) -> None:
    """PyTorch's nn.GroupNorm: N x C x H x W seen as N x groups x (C/groups * H * W),
    each row normalised (InstanceNormalization, unit scale, zero shift), reshaped
    back, then gamma and beta per channel."""
    import numpy as np

    h, w, c = (int(d) for d in n.in_shapes[0])
    rows = g.op(
        "Reshape",
        [g.input(n), _ints(g, n, "grouped_shape", [0, n.groups, -1])],
        f"{n.name}/grouped",
        f"{n.name}/grouped",
    )
    normed = g.op(
        "InstanceNormalization",
        [
            rows,
            g.const(n, "unit_scale", np.ones(n.groups)),
            g.const(n, "zero_shift", np.zeros(n.groups)),
        ],
        f"{n.name}/normalized",
        f"{n.name}/normalized",
        epsilon=float(n.epsilon),
    )
    back = g.op(
        "Reshape",
        [normed, _ints(g, n, "shape", [0, c, h, w])],
        f"{n.name}/ungrouped",
        f"{n.name}/ungrouped",
    )
    scaled = g.op(
        "Mul", [back, g.weight(n, "gamma", (c, 1, 1))], f"{n.name}/scaled", f"{n.name}/scaled"
    )
    _single(g, n, "Add", [scaled, g.weight(n, "beta", (c, 1, 1))])


@lowers("layerscale")
def lower_layerscale(n: Node, g: Graph) -> None:
    _single(g, n, "Mul", [g.input(n), g.weight(n, "gamma", _per_channel(n))])


@lowers("lrn")
def lower_lrn(n: Node, g: Graph) -> None:
    # ONNX (like PyTorch) divides alpha by the window; archc's alpha multiplies the sum
    _single(
        g,
        n,
        "LRN",
        [g.input(n)],
        size=int(n.depth),
        alpha=float(n.alpha * n.depth),
        beta=float(n.beta),
        bias=float(n.bias_k),
    )


@lowers("activation")
def lower_activation(n: Node, g: Graph) -> None:
    _activation(g, n, n.fn, n.alpha, g.input(n), n.name, n.name)
    g.module_outputs[n.name] = n.name


@lowers("pool")
def lower_pool(n: Node, g: Graph) -> None:
    attrs = {
        "kernel_shape": _hw(n.kernel),
        "strides": _hw(n.stride),
        "pads": _pads(n, n.kernel, n.stride),
    }
    if n.op == "avg":  # `same`: the real cells; explicit padding: PyTorch counts the zeros
        attrs["count_include_pad"] = 0 if n.padding in ("same", "valid") else 1
    x = g.input(n)
    if n.ceil:
        x = _ceil_pads(n, g, attrs)
    _single(g, n, "MaxPool" if n.op == "max" else "AveragePool", [x], **attrs)


def _ceil_pads(n: Node, g: Graph, attrs: dict) -> str:
    """PyTorch's ceil_mode as explicit end padding (ONNX's ceil_mode keeps a last
    window that starts in the right padding, which PyTorch drops): on an axis
    where PyTorch's output is one longer than the floor rule's, the end is padded
    so that the last window fits, by the overhang. Max pooling ignores padded
    cells; average pooling divides an overhanging window by its cells inside the
    padded input, as PyTorch does: explicit padding becomes zeros (`Pad`) the
    pooling counts, the overhang padding it does not count. Returns the input."""
    p = [0, 0] if n.padding == "valid" else list(n.padding)
    ends = []
    for axis in range(2):
        h, k, s = n.in_shapes[0][axis], n.kernel[axis], n.stride[axis]
        out = n.out_shape[axis]
        floor_out = (h + 2 * p[axis] - k) // s + 1
        ends.append(p[axis] if out == floor_out else (out - 1) * s + k - h - p[axis])
    attrs["pads"] = [p[0], p[1], ends[0], ends[1]]
    if n.op == "max" or p == [0, 0]:
        if n.op == "avg":
            attrs["count_include_pad"] = 0
        return g.input(n)
    pads = _ints(g, n, "pads", [0, 0, p[0], p[1], 0, 0, p[0], p[1]])
    x = g.op("Pad", [g.input(n), pads], f"{n.name}/padded", f"{n.name}/padded")
    attrs["pads"] = [0, 0, ends[0] - p[0], ends[1] - p[1]]
    attrs["count_include_pad"] = 0
    return x


@lowers("globalpool")
def lower_globalpool(n: Node, g: Graph) -> None:
    op_type = "GlobalMaxPool" if n.op == "max" else "GlobalAveragePool"
    if n.keepdims:  # N x C x 1 x 1: Keras's 1 x 1 x C
        _single(g, n, op_type, [g.input(n)])
        return
    pooled = g.op(op_type, [g.input(n)], f"{n.name}/pool", n.name)  # N x C x 1 x 1
    g.module_outputs[n.name] = pooled
    g.op("Flatten", [pooled], n.name, f"{n.name}/flatten", axis=1)


@lowers("upsample")
def lower_upsample(n: Node, g: Graph) -> None:
    """Resize by the integer factors: nearest repeats each cell (PyTorch's
    nn.Upsample nearest: source floor(dst / factor), `asymmetric` + `floor`);
    bilinear with half-pixel centres, no antialiasing (align_corners=False)."""
    attrs = {"mode": "nearest", "coordinate_transformation_mode": "asymmetric"}
    attrs["nearest_mode"] = "floor"
    if n.interpolation == "bilinear":
        attrs = {"mode": "linear", "coordinate_transformation_mode": "half_pixel"}
    _resize(n, g, attrs)


@lowers("resize")
def lower_resize(n: Node, g: Graph) -> None:
    """Resize to the size, half-pixel centres: nearest takes the cell under each
    output centre (PyTorch's nearest-exact: floor((dst + 0.5) * in / out), which is
    half_pixel + round_prefer_ceil), bilinear interpolates without antialiasing.
    """
    attrs = {"mode": "nearest", "coordinate_transformation_mode": "half_pixel"}
    attrs["nearest_mode"] = "round_prefer_ceil"
    if n.interpolation == "bilinear":
        attrs = {"mode": "linear", "coordinate_transformation_mode": "half_pixel"}
    _resize(n, g, attrs)


def _resize(n: Node, g: Graph, attrs: dict) -> None:
    """Resize to the IR's height and width: `sizes` of axes 2 and 3 (opset 18)."""
    if g.opset < 18:
        raise BackendError(
            f"`{n.name}` is a Resize of two axes, which ONNX names from opset 18 on "
            f"(this model asks for opset {g.opset}){_where(n)}"
        )
    sizes = _ints(g, n, "sizes", n.out_shape[:2])
    _single(g, n, "Resize", [g.input(n), "", "", sizes], axes=[2, 3], **attrs)
    g.stated[n.name] = _nchw(n.out_shape)  # inference leaves the batch unknown


@lowers("dropout")
def lower_dropout(n: Node, g: Graph) -> None:
    _single(g, n, "Identity", [g.input(n)])  # the identity at inference


@lowers("droppath")
def lower_droppath(n: Node, g: Graph) -> None:
    _single(g, n, "Identity", [g.input(n)])  # the identity at inference


@lowers("flatten")
def lower_flatten(n: Node, g: Graph) -> None:
    x = g.input(n)
    if len(n.in_shapes[0]) == 3:  # Keras's channels-last order
        x = g.op("Transpose", [x], f"{n.name}/nhwc", f"{n.name}/nhwc", perm=[0, 2, 3, 1])
    _single(g, n, "Flatten", [x], axis=1)


@lowers("reshape")
def lower_reshape(n: Node, g: Graph) -> None:
    """Keras's Reshape, in channels-last order: a feature map is transposed to
    N x H x W x C first, and a feature-map result back to N x C x H x W."""
    x = g.input(n)
    if len(n.in_shapes[0]) == 3:
        x = g.op("Transpose", [x], f"{n.name}/nhwc", f"{n.name}/nhwc", perm=[0, 2, 3, 1])
    shape = _ints(g, n, "shape", [0, *n.shape])  # 0: the batch, as it is
    if len(n.shape) != 3:
        _single(g, n, "Reshape", [x, shape])
        return
    y = g.op("Reshape", [x, shape], f"{n.name}/reshaped", f"{n.name}/reshaped")
    _single(g, n, "Transpose", [y], perm=[0, 3, 1, 2])


@lowers("zeropad")
def lower_zeropad(n: Node, g: Graph) -> None:
    t, b, left, right = n.pad
    pads = g.const(n, "pads", [0, 0, t, left, 0, 0, b, right], dtype="int64")
    _single(g, n, "Pad", [g.input(n), pads])


@lowers("crop")
def lower_crop(n: Node, g: Graph) -> None:
    t, b, left, right = n.crop
    h, w = n.in_shapes[0][0], n.in_shapes[0][1]
    starts, ends = _ints(g, n, "starts", [t, left]), _ints(g, n, "ends", [h - b, w - right])
    _single(g, n, "Slice", [g.input(n), starts, ends, _ints(g, n, "axes", [2, 3])])


@lowers("concat")
def lower_concat(n: Node, g: Graph) -> None:
    g.op("Concat", list(n.inputs), n.name, n.name, axis=1)


@lowers("shuffle")
def lower_shuffle(n: Node, g: Graph) -> None:
    """torch's channel_shuffle: N x groups x C/groups x H x W, the two channel axes
    swapped, reshaped back."""
    h, w, c = (int(d) for d in n.in_shapes[0])
    grouped = g.op(
        "Reshape",
        [g.input(n), _ints(g, n, "grouped_shape", [0, n.groups, c // n.groups, h, w])],
        f"{n.name}/grouped",
        f"{n.name}/grouped",
    )
    swapped = g.op(
        "Transpose", [grouped], f"{n.name}/swapped", f"{n.name}/swapped", perm=[0, 2, 1, 3, 4]
    )
    _single(g, n, "Reshape", [swapped, _ints(g, n, "shape", [0, c, h, w])])


@lowers("split")
def lower_split(n: Node, g: Graph) -> None:
    part = n.in_shapes[0][-1] // n.parts
    starts, ends = (
        _ints(g, n, "starts", [n.take * part]),
        _ints(g, n, "ends", [(n.take + 1) * part]),
    )
    _single(g, n, "Slice", [g.input(n), starts, ends, _ints(g, n, "axes", [1])])


@lowers("add")
def lower_add(n: Node, g: Graph) -> None:
    g.op("Add" if len(n.inputs) == 2 else "Sum", list(n.inputs), n.name, n.name)


@lowers("mul")
def lower_mul(n: Node, g: Graph) -> None:
    """Mul, broadcasting a N x C x 1 x 1 gate over H and W; three or more inputs are
    multiplied in order (`<node>/product<i>`, the last named as the node)."""
    x = n.inputs[0]
    for i, y in enumerate(n.inputs[1:-1], start=1):
        x = g.op("Mul", [x, y], f"{n.name}/product{i}", f"{n.name}/product{i}")
    g.op("Mul", [x, n.inputs[-1]], n.name, n.name)


# ---------------------------------------------------------------------------
# weights
# ---------------------------------------------------------------------------


def _declared(ir: Model) -> dict[str, tuple[int, ...]]:
    """Every tensor's key and its shape in archc's weight file (Keras's layout)."""
    out = {}
    for n in ir.nodes:
        for w in n.weights(list(n.in_shapes)):
            out[f"{n.name}/{w.role}"] = (w.size,) if w.flat else w.shape
    return out


def read_weights(ir: Model, path: str) -> dict:
    """archc's weight file (an .npz `archc train` exports, or a run folder: its best
    epoch's), checked against the spec: every tensor, no other, each its shape."""
    import numpy as np

    from archc.train.checkpoints import BEST_WEIGHTS
    from backends.transfer import load_weights

    if os.path.isdir(path):
        path = os.path.join(path, BEST_WEIGHTS)
    try:
        weights = load_weights(path)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise BackendError(
            f"cannot read the weights {path}: {e} (expected archc's weights .npz, which "
            f"`archc train` exports as weights-best.npz / weights-last.npz; a checkpoint "
            f"(.ckpt) is a framework's file)"
        ) from None
    declared = _declared(ir)
    missing = sorted(set(declared) - set(weights))
    extra = sorted(set(weights) - set(declared))
    if missing or extra:
        which = f"no `{missing[0]}`" if missing else f"an unexpected `{extra[0]}`"
        raise BackendError(f"the weights {path} do not fit `{ir.name}`: {which}")
    for key, shape in declared.items():
        if tuple(np.shape(weights[key])) != tuple(shape):
            raise BackendError(
                f"the weights {path} do not fit `{ir.name}`: `{key}` is "
                f"{tuple(np.shape(weights[key]))}, the spec's is {tuple(shape)}"
            )
    return weights


def random_weights(ir: Model, seed: int = RANDOM_SEED, kernels: str = "glorot") -> dict:
    """Seeded random values for every tensor (archc.equiv.randomize's rules)."""
    import numpy as np

    from archc.equiv import randomize

    zeros = {k: np.zeros(s) for k, s in _declared(ir).items()}
    return randomize(ir, zeros, seed, kernels)


def _file_digest(path: str) -> str:
    if os.path.isdir(path):
        from archc.train.checkpoints import BEST_WEIGHTS

        path = os.path.join(path, BEST_WEIGHTS)
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return f"{os.path.basename(path)} (sha256 {h.hexdigest()})"


# ---------------------------------------------------------------------------
# the model
# ---------------------------------------------------------------------------


def _nchw(shape: tuple[int, ...]) -> list:
    """An IR shape (channels-last, no batch) as ONNX's, with the symbolic batch."""
    dims = (shape[2], shape[0], shape[1]) if len(shape) == 3 else tuple(shape)
    return ["N", *(int(d) for d in dims)]


def _where(n: Node) -> str:
    return f" ({n.loc.file}:{n.loc.line})" if n.loc else ""


class OnnxGenerator:
    """IR -> ONNX model bytes. `LOWER` is the table from IR kind to emitter
    (the input is the graph's input)."""

    NAME = NAME
    FRAMEWORK = FRAMEWORK
    LOWER: ClassVar[dict[str, Emitter | None]] = {"input": None, **EMITTERS}

    @property
    def missing_kinds(self) -> set[str]:
        """IR node kinds this backend has no emitter for (a test keeps it empty)."""
        return set(KINDS) - set(self.LOWER)

    def build(
        self,
        model: Model,
        weights: str | dict | None = None,
        opset: int | None = None,
        dtype: str | None = None,
        expose: bool = False,
    ):
        """The checked onnx.ModelProto. `weights`: archc's weight file (a path) or
        its dict, else seeded random values; `expose`: every IR node's value (and
        the value of its PyTorch module) is a graph output too, for `archc equiv
        --nodes` (such a model is a checking aid, not what `archc build` writes)."""
        return self.build_exposed(model, weights, opset, dtype, expose)[0]

    def build_exposed(
        self,
        model: Model,
        weights: str | dict | None = None,
        opset: int | None = None,
        dtype: str | None = None,
        expose: bool = True,
    ):
        """(the checked model, each IR node's value that its PyTorch module outputs:
        before a fused activation, and global pooling's N x C x 1 x 1)."""
        import onnx
        from onnx import TensorProto, helper

        opset = DEFAULT_OPSET if opset is None else int(opset)
        dtype = dtype or "float32"
        if dtype not in DTYPES:
            raise BackendError(f"the ONNX backend writes float32 or float64, not {dtype}")
        newest = onnx.defs.onnx_opset_version()
        if not MIN_OPSET <= opset <= newest:
            raise BackendError(
                f"opset {opset} is outside what the ONNX backend writes "
                f"({MIN_OPSET} to {newest}, the newest this onnx {onnx.__version__} knows)"
            )
        for n in model.nodes:
            if n.kind not in self.LOWER:
                raise BackendError(
                    f"the ONNX backend cannot express `{n.name}` of kind `{n.kind}`{_where(n)}"
                )
        if isinstance(weights, str):
            told = "from " + _file_digest(weights)
            values = read_weights(model, weights)
        elif weights is not None:
            told, values = "given", weights
        else:
            told = (
                f"random (archc.equiv.randomize, seed {RANDOM_SEED}): not trained; "
                "build with --weights FILE for trained weights"
            )
            values = random_weights(model)
        elem = TensorProto.FLOAT if dtype == "float32" else TensorProto.DOUBLE
        g = Graph(model, dtype, opset, values)
        first = model.nodes[0]
        inputs = [helper.make_tensor_value_info(first.name, elem, _nchw(first.out_shape))]
        g.values.add(first.name)
        for n in model.nodes[1:]:
            self.LOWER[n.kind](n, g)
        outputs = [helper.make_tensor_value_info(model.output, elem, _nchw(model.output_shape))]
        exposed = []
        if expose:
            for n in model.nodes[1:]:
                exposed += [n.name, g.module_outputs.get(n.name, n.name)]
            exposed = [v for v in dict.fromkeys(exposed) if v != model.output]
        graph = helper.make_graph(
            g.nodes,
            model.name,
            inputs,
            outputs,
            initializer=g.initializers,
            value_info=[helper.make_tensor_value_info(v, elem, d) for v, d in g.stated.items()],
            doc_string=f"{model.name}, generated by archc {__version__} from {spec_label(model)}",
        )
        imports = [helper.make_opsetid("", opset)]
        proto = helper.make_model(
            graph,
            opset_imports=imports,
            ir_version=helper.find_min_ir_version_for(imports),
            producer_name=PRODUCER,
            producer_version=__version__,
            doc_string=(
                f"The `{model.name}` network of {spec_label(model)}, written by archc from "
                "its IR (no framework traced). Channels first: the input is N x C x H x W; "
                "the spec writes H x W x C."
            ),
        )
        helper.set_model_props(
            proto,
            {
                "archc.version": __version__,
                "archc.spec": spec_label(model),
                "archc.model": model.name,
                "archc.weights": told,
                "archc.dtype": dtype,
                "archc.layout": "N x C x H x W (channels first); Flatten flattens in "
                "Keras's channels-last order",
            },
        )
        if g.nbytes > MAX_BYTES:
            raise BackendError(
                f"`{model.name}`'s tensors take {g.nbytes:,} bytes, above what one ONNX "
                "file (a protobuf) holds: 2 GiB"
            )
        return self._checked(model, proto, exposed), g.module_outputs

    def _checked(self, model: Model, proto, exposed: list[str]):
        """The model with its inferred shapes, after the checker and strict shape
        inference; an inferred shape that differs from the IR's is an error."""
        import onnx

        try:
            inferred = onnx.shape_inference.infer_shapes(proto, check_type=True, strict_mode=True)
            onnx.checker.check_model(inferred, full_check=True)
        except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as e:
            raise BackendError(f"the ONNX model of `{model.name}` does not check: {e}") from e
        shapes = inferred_shapes(inferred)
        for n in model.nodes[1:]:
            want = _nchw(n.out_shape)
            if shapes.get(n.name) != want:
                raise BackendError(
                    f"ONNX infers {shapes.get(n.name)} for `{n.name}`, the IR {want}{_where(n)}"
                )
        if exposed:  # graph outputs too, with the shapes inference gives them
            infos = {v.name: v for v in inferred.graph.value_info}
            inferred.graph.output.extend(infos[v] for v in exposed)
            keep = [v for v in inferred.graph.value_info if v.name not in set(exposed)]
            del inferred.graph.value_info[:]
            inferred.graph.value_info.extend(keep)
        return inferred

    def generate(self, model: Model, weights=None, opset=None, dtype=None) -> bytes:
        """The model's ONNX file: the same bytes for the same spec and options."""
        return self.build(model, weights, opset, dtype).SerializeToString(deterministic=True)


def inferred_shapes(proto) -> dict[str, list]:
    """Each value's shape as shape inference states it (symbolic dims by name)."""
    out = {}
    for v in [*proto.graph.input, *proto.graph.value_info, *proto.graph.output]:
        t = v.type.tensor_type
        if t.HasField("shape"):
            out[v.name] = [
                d.dim_param if d.HasField("dim_param") else d.dim_value for d in t.shape.dim
            ]
    return out


def summary(model: Model) -> str:
    """What the file offers: its input and output, named and shaped."""
    shape = " x ".join(map(str, _nchw(model.input_shape)))
    out = " x ".join(map(str, _nchw(model.output_shape)))
    return f"input `{model.nodes[0].name}` {shape} -> output `{model.output}` {out}"


GENERATOR = OnnxGenerator()
generate = GENERATOR.generate
