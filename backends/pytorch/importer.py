"""PyTorch nn.Module -> archc IR with its weights (`archc import` of a PyTorch model).

The module is traced with torch.fx (`symbolic_trace`'s tracer: nothing but the
user's module runs), then run once on a zero input 1 x C x H x W in eval mode
with shape propagation (torch.fx.passes.shape_prop), so every tensor's shape is
known. Each graph node goes through one converter, found in one table
(`CONVERTERS`) by the module's class (`nn.Conv2d`), the function (`torch.cat`,
`F.relu`, `operator.add`) or the tensor method (`.mean`). A converter adds IR
nodes, passes its input on (`nn.Identity`, `.contiguous()`), or states a
`Problem`; every problem of the model is collected and raised as one
`ImportFailure`.

PyTorch's conventions, as archc writes them (the torchvision specs do the same):

- explicit symmetric padding stays explicit (`pN`) unless it is exactly Keras's
  `same` for that input; padding 0 is `valid`. The nn.ZeroPad2d archc's generated
  code writes before an uneven `same` convolution (`self.c1_pad` before
  `self.c1`) folds back into it; any other ZeroPad2d stays a layer. Max pooling's
  padding is -inf (Keras's `same` where it adds the same cells); average pooling's
  counts its zeros unless count_include_pad=False (then Keras's `same` or a problem).
- batch norm: Keras momentum = 1 - torch momentum; epsilon as given (1e-5).
- an activation module (`nn.ReLU()`) is a layer of its own; a functional one
  (`torch.relu(conv(x))`) on a convolution or linear layer that nothing else reads
  is fused into it (`C(..., relu)`), as the generated code writes them.
- global pooling then flatten (`torch.flatten(pool(x), 1)`, `.view(N, -1)`) is
  one `GAP`; `x.mean((2, 3))` is `GAP` too.
- archc's Flatten is channels-last (Keras's order): a torch flatten of a C x H x W
  map (H * W > 1) is imported as Flatten, and the Linear layer that reads it
  (through dropout or activations) gets its weight's columns permuted to that
  order, so the imported model computes the same function. Anything else reading
  the channels-first vector is a problem. A flatten of a 1 x 1 map without that
  permute is `Reshape(C)` (archc's Flatten always permutes first; its Reshape of
  a 1 x 1 x C map to C is a plain flatten), the inverse of each generated form.
- LocalResponseNorm: torch divides alpha by the window, archc does not.
- archc's own generated helper modules (`Crop2d`, `SamePool2d`, `ChannelSplit`,
  `BatchNorm2dNoScale`, ...) are read as the layers they were generated from.

Node names are the fx node names (the module's qualified name with dots as
underscores: `layer1.0.conv1` -> `layer1_0_conv1`), made valid spec names.
`node_outputs` gives every node's output as the module computes it, by those names.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from archc.diagnostics import Diagnostics, Sources, SpecError
from archc.ir import Model
from archc.ir.kinds import FUSABLE, KINDS
from archc.ir.shapes import same_padding
from backends.importing import Imported, ImportFailure, Problem
from backends.transfer import _tensor, _to_keras_layout

# ---------------------------------------------------------------------------
# The converter table
# ---------------------------------------------------------------------------

Converter = Callable[["_Import", Any, Any], None]
# key -> converter. Keys: "nn.Conv2d" (a module class of torch.nn, exactly that
# class), "archc.Crop2d" (a helper class of archc's generated PyTorch code, by its
# name), "F.relu" / "torch.cat" / "operator.add" (a function), ".mean" (a method).
CONVERTERS: dict[str, Converter] = {}


def converts(*keys: str):
    def enter(fn: Converter) -> Converter:
        for k in keys:
            if k in CONVERTERS:
                raise TypeError(f"two converters for {k}")
            CONVERTERS[k] = fn
        return fn

    return enter


def _function_key(target) -> str | None:
    """The table key of a call_function target, found by identity."""
    import torch
    import torch.nn.functional as F

    for prefix, namespace in (("F.", F), ("torch.", torch), ("operator.", operator)):
        name = getattr(target, "__name__", None)
        if name and getattr(namespace, name, None) is target:
            key = prefix + name
            if key in CONVERTERS:
                return key
    return None


def _function_name(target) -> str:
    mod = getattr(target, "__module__", None) or ""
    name = getattr(target, "__qualname__", None) or getattr(target, "__name__", repr(target))
    mod = {"_operator": "operator", "torch._C._nn": "F", "torch.nn.functional": "F"}.get(mod, mod)
    return f"{mod}.{name}" if mod else name


def _module_key(module) -> str:
    from torch import nn

    cls = type(module)
    if getattr(nn, cls.__name__, None) is cls:
        return f"nn.{cls.__name__}"
    return f"archc.{cls.__name__}"


# ---------------------------------------------------------------------------
# One import
# ---------------------------------------------------------------------------


@dataclass
class _IRNode:
    kind: str
    name: str
    inputs: list[str]
    fields: dict[str, Any]
    module: Any = None  # the torch module its tensors come from
    chw: tuple[int, int, int] | None = None  # a Linear reading a channels-first vector
    fx: Any = None  # the fx node it was made from
    dropped: bool = False  # fused into the next layer


@dataclass
class _Import:
    source: str
    gm: Any
    nodes: list[_IRNode] = field(default_factory=list)
    by_name: dict[str, _IRNode] = field(default_factory=dict)
    value: dict[str, str] = field(default_factory=dict)  # fx node name -> IR node name
    channels_last: dict[str, str] = field(default_factory=dict)  # permuted fx -> IR input
    chunks: dict[str, tuple[str, int]] = field(default_factory=dict)  # fx -> (IR input, parts)
    channels_first: dict[str, tuple[int, int, int]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    names: set[str] = field(default_factory=set)
    output: str | None = None
    done: set[str] = field(default_factory=set)  # fx nodes a converter already read
    order: dict[str, int] = field(default_factory=dict)  # fx node name -> its position

    # -- reading the fx graph ------------------------------------------------

    def shape(self, node) -> tuple[int, ...]:
        return tuple(node.meta["tensor_meta"].shape)

    def is_tensor(self, a) -> bool:
        return hasattr(a, "meta") and isinstance(a.meta.get("tensor_meta"), _tensor_meta_type())

    def arg(self, node, i: int, name: str, default=None):
        if len(node.args) > i:
            return node.args[i]
        return node.kwargs.get(name, default)

    def ir_input(self, fx_node) -> str:
        return self.value[fx_node.name]

    def producer(self, fx_node) -> _IRNode | None:
        """The IR node an fx tensor is, when nothing else reads that fx node."""
        ir = self.by_name.get(self.value.get(fx_node.name))
        if ir is None or ir.fx is not fx_node or len(fx_node.users) != 1:
            return None  # made elsewhere (an alias may have other readers), or read twice
        return ir

    # -- writing the IR ------------------------------------------------------

    def fresh(self, base: str) -> str:
        name = _valid_name(base)
        k = 1
        candidate = name
        while candidate in self.names:
            candidate = f"{name}_{k}"
            k += 1
        self.names.add(candidate)
        return candidate

    def add(self, node, kind: str, inputs: list[str], module=None, **fields) -> _IRNode:
        ir = _IRNode(kind, self.fresh(node.name), list(inputs), fields, module, fx=node)
        self.nodes.append(ir)
        self.by_name[ir.name] = ir
        self.value[node.name] = ir.name
        return ir

    def alias(self, node, fx_input) -> None:
        self.value[node.name] = self.value[fx_input.name]

    def problem(self, node, why: str) -> None:
        self.problems.append(Problem(_layer(node), _cls(self.gm, node), _where(node), why))


def _tensor_meta_type():
    from torch.fx.passes.shape_prop import TensorMetadata

    return TensorMetadata


def _flat(values):
    for v in values:
        if isinstance(v, (list, tuple)):
            yield from _flat(v)
        else:
            yield v


def _layer(node) -> str:
    return node.target if node.op == "call_module" else node.name


def _cls(gm, node) -> str:
    if node.op == "call_module":
        return type(gm.get_submodule(node.target)).__name__
    if node.op == "call_function":
        return _function_name(node.target)
    if node.op == "call_method":
        return f"Tensor.{node.target}"
    if node.op == "get_attr":
        return "a tensor attribute"
    return node.op


def _where(node) -> str:
    ins = [a.name for a in _flat(list(node.args) + list(node.kwargs.values())) if hasattr(a, "op")]
    outs = [u.name for u in node.users]
    return "reading {}, read by {}".format(
        ", ".join(f"`{n}`" for n in ins) or "nothing",
        ", ".join(f"`{n}`" for n in outs) or "nothing",
    )


def _valid_name(base: str) -> str:
    """A valid spec and generated-code name from an fx node name: no leading `_`
    (`_0` from nn.Sequential's child 0 becomes `layer0`), nothing a backend
    reserves (`x`, `forward`, ...: a `_layer` suffix)."""
    from backends.names import problem

    name = re.sub(r"\W", "_", base).lstrip("_")
    if not name or name[0].isdigit():
        name = "layer" + name
    if problem("node", name) is not None:
        name += "_layer"
    return name


def _pair(v) -> tuple[int, int]:
    if isinstance(v, (list, tuple)):
        return (int(v[0]), int(v[1])) if len(v) == 2 else (int(v[0]), int(v[0]))
    return (int(v), int(v))


def _hwc(shape: tuple[int, ...]) -> tuple[int, ...]:
    """torch's N x C x H x W (or N x F) -> archc's H x W x C (or F)."""
    return (shape[2], shape[3], shape[1]) if len(shape) == 4 else tuple(shape[1:])


def _same(in_shape, kernel, stride, dilation=(1, 1)):
    """Keras `same`'s ((top, bottom), (left, right)) zeros for an N x C x H x W input."""
    return (
        same_padding(in_shape[2], kernel[0], stride[0], dilation[0]),
        same_padding(in_shape[3], kernel[1], stride[1], dilation[1]),
    )


def _window_padding(pad: tuple[int, int], in_shape, kernel, stride, dilation=(1, 1)):
    """archc's padding for torch's symmetric `pad`: `valid` for none, `same` where it
    is exactly Keras's `same`, else explicit."""
    if pad == (0, 0):
        return "valid"
    (t, b), (left, right) = _same(in_shape, kernel, stride, dilation)
    if (t, left) == pad and t == b and left == right:
        return "same"
    return pad


def _fuse_zeropad(imp: _Import, node, x, kernel, stride, dilation=(1, 1)) -> str | None:
    """When `x` is the nn.ZeroPad2d archc's generated code puts before a `same`
    convolution with uneven zeros (`self.c1_pad` before `self.c1`), nothing else
    reads it and it adds exactly Keras's `same` zeros for its input, drop it: the
    layer reading it is `same` on the padding's input (returned). Else None."""
    pad = imp.producer(x)
    if pad is None or pad.kind != "zeropad" or pad.fx.op != "call_module":
        return None
    if node.op != "call_module" or pad.fx.target != node.target + "_pad":
        return None  # only archc's own `<layer>_pad`: a user's ZeroPad2d stays a layer
    src = pad.fx.args[0]
    (t, b), (left, right) = _same(imp.shape(src), kernel, stride, dilation)
    if tuple(pad.fields["pad"]) != (t, b, left, right):
        return None
    pad.dropped = True
    return pad.inputs[0]


# ---------------------------------------------------------------------------
# Converters: convolutions and dense
# ---------------------------------------------------------------------------


@converts("nn.Conv2d")
def conv2d(imp: _Import, node, m) -> None:
    (x,) = node.args
    if m.padding_mode != "zeros":
        return imp.problem(node, f"padding_mode={m.padding_mode!r}: archc pads with zeros only")
    kernel, stride, dilation = _pair(m.kernel_size), _pair(m.stride), _pair(m.dilation)
    src = imp.ir_input(x)
    if isinstance(m.padding, str):  # torch's "same" (stride 1) pads as Keras does
        padding = m.padding
    else:
        padding = _window_padding(_pair(m.padding), imp.shape(x), kernel, stride, dilation)
        if padding == "valid":
            fused = _fuse_zeropad(imp, node, x, kernel, stride, dilation)
            if fused is not None:
                src, padding = fused, "same"
    common = {"kernel": kernel, "stride": stride, "padding": padding, "dilation": dilation}
    common["use_bias"] = m.bias is not None
    cin, cout, groups = m.in_channels, m.out_channels, m.groups
    if groups > 1 and groups == cin:
        imp.add(node, "depthwise", [src], m, multiplier=cout // cin, **common)
    else:
        imp.add(node, "conv", [src], m, filters=cout, groups=groups, **common)


@converts("archc.SeparableConv2d")
def separable(imp: _Import, node, m) -> None:
    """archc's generated helper: a depthwise then a 1x1 pointwise convolution."""
    (x,) = node.args
    dw, pw = m.depthwise, m.pointwise
    kernel, stride, dilation = _pair(dw.kernel_size), _pair(dw.stride), _pair(dw.dilation)
    padding = _window_padding(_pair(dw.padding), imp.shape(x), kernel, stride, dilation)
    src = imp.ir_input(x)
    if padding == "valid":
        fused = _fuse_zeropad(imp, node, x, kernel, stride, dilation)
        if fused is not None:
            src, padding = fused, "same"
    imp.add(
        node,
        "separable",
        [src],
        m,
        filters=pw.out_channels,
        kernel=kernel,
        stride=stride,
        padding=padding,
        dilation=dilation,
        multiplier=dw.out_channels // dw.in_channels,
        use_bias=pw.bias is not None,
    )


@converts("nn.ConvTranspose2d", "archc.CroppedConvTranspose2d")
def conv_transpose2d(imp: _Import, node, m) -> None:
    """Keras's `valid` or `same` where it is the same layer, else PyTorch's explicit
    padding and output padding; archc's helper that also crops the end (`crop`) as
    the Keras layer (with output padding) it was generated from."""
    from archc.ir.kinds import TransposePlan, transpose_axis
    from archc.ir.shapes import ShapeError

    (x,) = node.args
    if m.padding_mode != "zeros" or m.groups != 1 or _pair(m.dilation) != (1, 1):
        return imp.problem(
            node,
            "archc's transposed convolution has zero padding, one group and no dilation",
        )
    kernel, stride = _pair(m.kernel_size), _pair(m.stride)
    pad, out_pad = _pair(m.padding), _pair(m.output_padding)
    trim = tuple(getattr(m, "crop", (0, 0)))
    n = imp.shape(x)[2:]
    want = [
        TransposePlan(
            (n[i] - 1) * stride[i] + kernel[i] - 2 * pad[i] + out_pad[i] - trim[i],
            pad[i],
            out_pad[i],
            trim[i],
        )
        for i in (0, 1)
    ]
    # Keras's plain spellings, then PyTorch's own, then Keras's with output padding
    candidates = [("valid", None), ("same", None)]
    if trim == (0, 0):
        candidates.append((pad, out_pad if out_pad != (0, 0) else None))
    ops = [(a, b) for a in range(stride[0]) for b in range(stride[1])]
    candidates += [(p, op) for p in ("valid", "same") for op in ops]
    for padding, output_padding in candidates:
        try:
            plans = [
                transpose_axis(
                    n[i],
                    kernel[i],
                    stride[i],
                    padding if isinstance(padding, str) else padding[i],
                    None if output_padding is None else output_padding[i],
                )
                for i in (0, 1)
            ]
        except ShapeError:
            continue
        if plans == want:
            break
    else:
        return imp.problem(node, "a transposed convolution cropped as no Keras layer crops")
    imp.add(
        node,
        "transposed",
        [imp.ir_input(x)],
        m,
        filters=m.out_channels,
        kernel=kernel,
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        use_bias=m.bias is not None,
    )


@converts("nn.Linear")
def linear(imp: _Import, node, m) -> None:
    (x,) = node.args
    if len(imp.shape(x)) != 2:
        return imp.problem(node, "a Linear layer on a feature map: archc's Dense reads a vector")
    ir = imp.add(
        node, "dense", [imp.ir_input(x)], m, units=m.out_features, use_bias=m.bias is not None
    )
    ir.chw = imp.channels_first.get(imp.ir_input(x))


# ---------------------------------------------------------------------------
# Normalisation
# ---------------------------------------------------------------------------


@converts(
    "nn.BatchNorm2d", "nn.BatchNorm1d", "archc.BatchNorm2dNoScale", "archc.BatchNorm1dNoScale"
)
def batchnorm(imp: _Import, node, m) -> None:
    (x,) = node.args
    if not m.track_running_stats or m.momentum is None:
        return imp.problem(
            node,
            "batch norm without running statistics or with a cumulative average (momentum=None)",
        )
    scale = not type(m).__name__.endswith("NoScale")  # archc's helper: beta, no gamma
    if not m.affine and scale:
        return imp.problem(node, "batch norm without gamma and beta (affine=False)")
    if len(imp.shape(x)) not in (2, 4) or imp.ir_input(x) in imp.channels_first:
        return imp.problem(node, "batch norm over anything but channels or a vector's features")
    imp.add(
        node,
        "batchnorm",
        [imp.ir_input(x)],
        m,
        epsilon=m.eps,
        momentum=round(1 - m.momentum, 12),
        scale=scale,
    )


@converts("nn.GroupNorm")
def groupnorm(imp: _Import, node, m) -> None:
    (x,) = node.args
    if not m.affine:
        return imp.problem(node, "group norm without gamma and beta (affine=False)")
    imp.add(node, "groupnorm", [imp.ir_input(x)], m, groups=m.num_groups, epsilon=m.eps)


@converts("archc.LayerNorm2d")
def layernorm2d(imp: _Import, node, m) -> None:
    (x,) = node.args
    imp.add(node, "layernorm", [imp.ir_input(x)], m, epsilon=m.eps)


@converts("nn.LayerNorm")
def layernorm(imp: _Import, node, m) -> None:
    (x,) = node.args
    shape = imp.shape(x)
    if len(shape) != 2 or tuple(m.normalized_shape) != (shape[1],) or not m.elementwise_affine:
        return imp.problem(
            node,
            "archc's layer norm normalises each cell's channels (or a vector) with gamma "
            "and beta; this one normalises other axes",
        )
    imp.add(node, "layernorm", [imp.ir_input(x)], m, epsilon=m.eps)


def float32_decimal(value: float) -> float:
    """A float32 value as the shortest decimal that rounds to it in float32 (the
    float32 of 0.3 -> 0.3), else `value` itself. For the constants both of archc's
    builds round to float32 anyway (Rescaling, LeakyReLU's slope, Normalization's
    given statistics, LayerScale's initial value: backends/pytorch/generator.py),
    so the function is the same, and a decimal a spec wrote comes back as written."""
    import struct

    def f32(x: float) -> float:
        return struct.unpack("<f", struct.pack("<f", x))[0]

    value = float(value)
    try:
        if f32(value) != value:
            return value
    except OverflowError:  # beyond float32's range
        return value
    for digits in range(1, 10):  # 9 significant digits tell every float32 apart
        shortest = float(f"{value:.{digits}g}")
        if f32(shortest) == value:
            return shortest
    return value


@converts("archc.LayerScale")
def layerscale(imp: _Import, node, m) -> None:
    """archc's helper: x * gamma per channel. `init` (what training from scratch
    starts at) is gamma's value where every channel has the same, else ConvNeXt's 1e-6."""
    values = {float32_decimal(v) for v in m.gamma.detach().cpu().reshape(-1)}
    init = values.pop() if len(values) == 1 else 1e-6
    imp.add(node, "layerscale", [imp.ir_input(node.args[0])], m, init=init)


@converts("archc.Normalization")
def normalization(imp: _Import, node, m) -> None:
    """archc's helper: given statistics are constants (buffers it does not save),
    else weights (mean, variance, count)."""
    if "mean" in m._non_persistent_buffers_set:
        mean = tuple(float32_decimal(v) for v in m.mean.reshape(-1))
        var = tuple(float32_decimal(v) for v in m.variance.reshape(-1))
        if len(set(mean)) == 1 and len(set(var)) == 1:  # one value for every channel
            mean, var = mean[:1], var[:1]
        imp.add(node, "normalization", [imp.ir_input(node.args[0])], mean=mean, variance=var)
    else:
        imp.add(node, "normalization", [imp.ir_input(node.args[0])], m)


@converts("nn.LocalResponseNorm")
def lrn(imp: _Import, node, m) -> None:
    (x,) = node.args
    # torch divides alpha by the window (size); archc's alpha multiplies the plain sum
    imp.add(
        node,
        "lrn",
        [imp.ir_input(x)],
        depth=m.size,
        alpha=m.alpha / m.size,
        beta=m.beta,
        bias_k=m.k,
    )


# ---------------------------------------------------------------------------
# Activations
# ---------------------------------------------------------------------------

# module class -> (archc activation, the module's attribute giving alpha, or None)
ACT_MODULES = {
    "nn.ReLU": "relu",
    "nn.ReLU6": "relu6",
    "nn.Sigmoid": "sigmoid",
    "nn.Hardsigmoid": "hard_sigmoid",
    "nn.Tanh": "tanh",
    "nn.SELU": "selu",
    "nn.SiLU": "silu",
    "nn.Softplus": "softplus",
    "nn.Hardswish": "hard_swish",
    "nn.Mish": "mish",
}
ACT_FUNCTIONS = {
    "torch.relu": "relu",
    "F.relu": "relu",
    ".relu": "relu",
    "F.relu6": "relu6",
    "torch.sigmoid": "sigmoid",
    "F.sigmoid": "sigmoid",
    ".sigmoid": "sigmoid",
    "F.hardsigmoid": "hard_sigmoid",
    "torch.tanh": "tanh",
    "F.tanh": "tanh",
    ".tanh": "tanh",
    "F.selu": "selu",
    "torch.selu": "selu",
    "F.silu": "silu",
    "F.hardswish": "hard_swish",
    "F.mish": "mish",
    "F.softplus": "softplus",
}


def _activation(imp: _Import, node, x, fn: str, alpha=None, module=None, fuse=False) -> None:
    """An activation layer; a functional one on a convolution or linear layer that
    nothing else reads is fused into it (`C(..., relu)`)."""
    src = imp.producer(x) if fuse else None
    fusable = ("conv", "depthwise", "separable", "transposed", "dense")
    if (
        src is not None
        and src.kind in fusable
        and src.fields.get("activation") is None
        and fn in FUSABLE
        and alpha is None
        and src.name not in imp.channels_first
    ):
        src.fields["activation"] = fn
        imp.value[node.name] = src.name
        return
    fields = {"fn": fn} if alpha is None else {"fn": fn, "alpha": alpha}
    ir = imp.add(node, "activation", [imp.ir_input(x)], module, **fields)
    chw = imp.channels_first.get(imp.ir_input(x))
    if chw is not None:  # elementwise: the vector keeps its order
        if fn == "prelu":
            return imp.problem(node, _CHANNELS_FIRST)
        imp.channels_first[ir.name] = chw


@converts(*ACT_MODULES)
def act_module(imp: _Import, node, m) -> None:
    if getattr(m, "beta", 1) != 1:  # nn.Softplus(beta): archc's softplus is log(1 + e^x)
        return imp.problem(node, f"softplus with beta={m.beta}: archc's softplus has beta 1")
    _activation(imp, node, node.args[0], ACT_MODULES[_module_key(m)], module=m)


@converts(*ACT_FUNCTIONS)
def act_function(imp: _Import, node, f) -> None:
    key = _function_key(f) if not isinstance(f, str) else "." + f
    if key == "F.softplus" and imp.arg(node, 1, "beta", 1) != 1:
        return imp.problem(node, "softplus with beta other than 1: archc's softplus has beta 1")
    _activation(imp, node, node.args[0], ACT_FUNCTIONS[key], fuse=True)


@converts("nn.LeakyReLU")
def leaky_relu(imp: _Import, node, m) -> None:
    slope = float32_decimal(m.negative_slope)
    _activation(imp, node, node.args[0], "leaky_relu", alpha=slope, module=m)


@converts("F.leaky_relu")
def leaky_relu_f(imp: _Import, node, f) -> None:
    slope = imp.arg(node, 1, "negative_slope", 0.01)
    _activation(imp, node, node.args[0], "leaky_relu", alpha=slope)


@converts("nn.ELU")
def elu(imp: _Import, node, m) -> None:
    _activation(imp, node, node.args[0], "elu", alpha=m.alpha, module=m)


@converts("F.elu")
def elu_f(imp: _Import, node, f) -> None:
    alpha = imp.arg(node, 1, "alpha", 1.0)
    _activation(imp, node, node.args[0], "elu", alpha=None if alpha == 1.0 else alpha, fuse=True)


@converts("nn.GELU")
def gelu(imp: _Import, node, m) -> None:
    fn = "gelu_tanh" if m.approximate == "tanh" else "gelu"
    _activation(imp, node, node.args[0], fn, module=m)


@converts("F.gelu")
def gelu_f(imp: _Import, node, f) -> None:
    fn = "gelu_tanh" if imp.arg(node, 1, "approximate", "none") == "tanh" else "gelu"
    _activation(imp, node, node.args[0], fn, fuse=True)


@converts("nn.PReLU")
def prelu(imp: _Import, node, m) -> None:
    (x,) = node.args
    shape = imp.shape(x)
    if m.num_parameters != shape[1] or m.num_parameters == 1 and shape[1] != 1:
        return imp.problem(
            node, "a PReLU slope shared by every channel: archc's PReLU has one per channel"
        )
    _activation(imp, node, x, "prelu", module=m)


def _softmax_dim_ok(imp: _Import, x, dim) -> bool:
    rank = len(imp.shape(x))
    return dim is not None and dim % rank == 1


@converts("nn.Softmax")
def softmax(imp: _Import, node, m) -> None:
    (x,) = node.args
    if not _softmax_dim_ok(imp, x, m.dim):
        return imp.problem(
            node, f"softmax over dim={m.dim}: archc's softmax is over the channels (dim=1)"
        )
    _activation(imp, node, x, "softmax", module=m)


@converts("torch.softmax", "F.softmax", ".softmax")
def softmax_f(imp: _Import, node, f) -> None:
    x = node.args[0]
    dim = imp.arg(node, 1, "dim")
    if not _softmax_dim_ok(imp, x, dim):
        return imp.problem(
            node, f"softmax over dim={dim}: archc's softmax is over the channels (dim=1)"
        )
    _activation(imp, node, x, "softmax", fuse=True)


# ---------------------------------------------------------------------------
# Pooling
# ---------------------------------------------------------------------------


def _pool(imp: _Import, node, x, op, kernel, stride, pad, ceil, count_include_pad=True) -> None:
    kernel = _pair(kernel)
    stride = kernel if stride is None or stride == [] or stride == () else _pair(stride)
    pad = _pair(pad)
    src = imp.ir_input(x)
    if pad == (0, 0):
        padding = "valid"
        # a zero padding before stays a layer: max pooling would let its zeros win
        # where Keras's `same` ignores the padding, average pooling counts them
    elif ceil:
        padding = pad
    else:
        padding = _window_padding(pad, imp.shape(x), kernel, stride)
    if op == "avg" and pad != (0, 0):
        if count_include_pad and padding == "same":
            padding = pad  # archc's explicit padding counts the zeros, as torch does here
        elif not count_include_pad and padding != "same":
            return imp.problem(
                node,
                "average pooling with padding that is not Keras's `same` and "
                "count_include_pad=False: archc's explicit padding counts the zeros",
            )
    imp.add(
        node, "pool", [src], op=op, kernel=kernel, stride=stride, padding=padding, ceil=bool(ceil)
    )


@converts("nn.MaxPool2d")
def maxpool(imp: _Import, node, m) -> None:
    if _pair(m.dilation) != (1, 1) or m.return_indices:
        return imp.problem(node, "max pooling with dilation or returned indices")
    _pool(imp, node, node.args[0], "max", m.kernel_size, m.stride, m.padding, m.ceil_mode)


@converts("nn.AvgPool2d")
def avgpool(imp: _Import, node, m) -> None:
    if m.divisor_override is not None:
        return imp.problem(node, "average pooling with divisor_override")
    _pool(
        imp,
        node,
        node.args[0],
        "avg",
        m.kernel_size,
        m.stride,
        m.padding,
        m.ceil_mode,
        m.count_include_pad,
    )


@converts("F.max_pool2d")
def maxpool_f(imp: _Import, node, f) -> None:
    def a(i, name, d=None):
        return imp.arg(node, i, name, d)

    if _pair(a(4, "dilation", 1)) != (1, 1) or a(6, "return_indices", False):
        return imp.problem(node, "max pooling with dilation or returned indices")
    _pool(
        imp,
        node,
        node.args[0],
        "max",
        a(1, "kernel_size"),
        a(2, "stride"),
        a(3, "padding", 0),
        a(5, "ceil_mode", False),
    )


@converts("F.avg_pool2d")
def avgpool_f(imp: _Import, node, f) -> None:
    def a(i, name, d=None):
        return imp.arg(node, i, name, d)

    if a(6, "divisor_override") is not None:
        return imp.problem(node, "average pooling with divisor_override")
    _pool(
        imp,
        node,
        node.args[0],
        "avg",
        a(1, "kernel_size"),
        a(2, "stride"),
        a(3, "padding", 0),
        a(4, "ceil_mode", False),
        a(5, "count_include_pad", True),
    )


@converts("archc.SamePool2d")
def same_pool(imp: _Import, node, m) -> None:
    (x,) = node.args
    kernel, stride = _pair(m.kernel_size), _pair(m.stride)
    (t, b), (left, right) = _same(imp.shape(x), kernel, stride)
    if tuple(m.padding) != (left, right, t, b):
        return imp.problem(node, "SamePool2d with other zeros than Keras's `same` adds")
    imp.add(
        node, "pool", [imp.ir_input(x)], op=m.kind, kernel=kernel, stride=stride, padding="same"
    )


def _adaptive(imp: _Import, node, x, op: str, size) -> None:
    h, w = imp.shape(x)[2:]
    oh, ow = _pair(size) if not (isinstance(size, (list, tuple)) and None in size) else (None, None)
    if (oh, ow) == (1, 1):
        imp.add(node, "globalpool", [imp.ir_input(x)], op=op, keepdims=True)
    elif oh and ow and h % oh == 0 and w % ow == 0:  # a plain pooling at this input
        k = (h // oh, w // ow)
        imp.add(node, "pool", [imp.ir_input(x)], op=op, kernel=k, stride=k, padding="valid")
    else:
        imp.problem(node, f"adaptive pooling to {size} from {h} x {w}: windows of unequal size")


@converts("nn.AdaptiveAvgPool2d", "nn.AdaptiveMaxPool2d")
def adaptive(imp: _Import, node, m) -> None:
    op = "avg" if "Avg" in type(m).__name__ else "max"
    _adaptive(imp, node, node.args[0], op, m.output_size)


@converts("F.adaptive_avg_pool2d", "F.adaptive_max_pool2d")
def adaptive_f(imp: _Import, node, f) -> None:
    op = "avg" if "avg" in f.__name__ else "max"
    _adaptive(imp, node, node.args[0], op, imp.arg(node, 1, "output_size"))


@converts(".mean", "torch.mean", ".amax", "torch.amax")
def mean(imp: _Import, node, f) -> None:
    x = node.args[0]
    dims = imp.arg(node, 1, "dim")
    keep = bool(imp.arg(node, 2, "keepdim", False))
    name = f if isinstance(f, str) else f.__name__
    if len(imp.shape(x)) != 4 or dims is None or {int(d) % 4 for d in _flat([dims])} != {2, 3}:
        return imp.problem(node, f"{name} over {dims}: archc pools over height and width only")
    op = "avg" if name == "mean" else "max"
    imp.add(node, "globalpool", [imp.ir_input(x)], op=op, keepdims=keep)


# ---------------------------------------------------------------------------
# Reshaping
# ---------------------------------------------------------------------------

_CHANNELS_FIRST = (
    "it reads a flattened C x H x W map in PyTorch's channels-first order; archc's "
    "Flatten is channels-last (Keras's): only a Linear layer (after dropout or "
    "activations) can take it, its weight's columns permuted"
)


def _flatten(imp: _Import, node, x) -> None:
    shape = imp.shape(x)
    if x.name in imp.channels_last:  # x.permute(0, 2, 3, 1) then flatten: archc's own
        return imp.add(node, "flatten", [imp.channels_last[x.name]])
    if len(shape) == 2:
        return imp.alias(node, x)
    _, c, h, w = shape
    pool = imp.producer(x)
    if pool is not None and pool.kind == "globalpool" and pool.fields["keepdims"]:
        pool.fields["keepdims"] = False  # GAP then flatten: one GAP
        imp.value[node.name] = pool.name
        return
    if h * w == 1:  # a 1 x 1 map's vector in either order: archc's Reshape(C) writes this
        return imp.add(node, "reshape", [imp.ir_input(x)], shape=(c,))
    ir = imp.add(node, "flatten", [imp.ir_input(x)])
    imp.channels_first[ir.name] = (c, h, w)


@converts("nn.Flatten")
def flatten_module(imp: _Import, node, m) -> None:
    if m.start_dim != 1 or m.end_dim != -1:
        return imp.problem(node, "a Flatten that keeps other axes than the batch")
    _flatten(imp, node, node.args[0])


@converts("torch.flatten", ".flatten")
def flatten_f(imp: _Import, node, f) -> None:
    x = node.args[0]
    start, end = imp.arg(node, 1, "start_dim", 0), imp.arg(node, 2, "end_dim", -1)
    if start != 1 or end != -1:
        return imp.problem(
            node, "a flatten that does not keep exactly the batch axis (start_dim=1)"
        )
    _flatten(imp, node, x)


@converts(".view", ".reshape", "torch.reshape")
def view(imp: _Import, node, f) -> None:
    x = node.args[0]
    src, dst = imp.shape(x), imp.shape(node)
    if src == dst:
        return imp.alias(node, x)
    if len(dst) == 2 and dst[0] == src[0]:
        return _flatten(imp, node, x)
    if len(src) == 2 and dst == (src[0], src[1], 1, 1):
        return imp.add(node, "reshape", [imp.ir_input(x)], shape=(1, 1, src[1]))
    if _shuffle(imp, node, x, src, dst):
        return
    imp.problem(
        node,
        f"a reshape from {tuple(src)} to {tuple(dst)}: archc reshapes only a "
        "map to a vector (flatten) or a vector to 1 x 1 x C",
    )


@converts("nn.Unflatten")
def unflatten(imp: _Import, node, m) -> None:
    x = node.args[0]
    src = imp.shape(x)
    if len(src) != 2 or m.dim != 1 or tuple(m.unflattened_size) != (src[1], 1, 1):
        return imp.problem(node, "an Unflatten other than a vector to C x 1 x 1")
    imp.add(node, "reshape", [imp.ir_input(x)], shape=(1, 1, src[1]))


def _shuffle(imp: _Import, node, x, src, dst) -> bool:
    """ShuffleNet's channel shuffle: view(N, g, C/g, H, W), transpose(1, 2),
    (contiguous), view back to N x C x H x W (or flatten(1, 2))."""
    if len(src) != 4 or len(dst) != 5 or dst[1] * dst[2] != src[1] or dst[3:] != src[2:]:
        return False
    users = list(node.users)
    if len(users) != 1 or users[0].op != "call_method" or users[0].target not in ("transpose",):
        return False
    t = users[0]
    if sorted(int(d) % 5 for d in t.args[1:3]) != [1, 2]:
        return False
    nxt = t
    while len(nxt.users) == 1 and next(iter(nxt.users)).target == "contiguous":
        nxt = next(iter(nxt.users))
    if len(nxt.users) != 1:
        return False
    back = next(iter(nxt.users))
    if back.target not in ("view", "reshape", "flatten", torch_flatten()) or imp.shape(back) != src:
        return False
    ir = imp.add(node, "shuffle", [imp.ir_input(x)], groups=dst[1])
    for passed in (t, *_chain(t, back)):
        imp.value[passed.name] = ir.name
    imp.done.update({t.name, back.name, *(n.name for n in _chain(t, back))})
    return True


def torch_flatten():
    import torch

    return torch.flatten


def _chain(start, end):
    out, n = [], start
    while n is not end:
        n = next(iter(n.users))
        out.append(n)
    return out


@converts(".permute")
def permute(imp: _Import, node, f) -> None:
    """Only x.permute(0, 2, 3, 1) read by a flatten alone: the channels-last
    flatten archc's Flatten is (the generated PyTorch code writes it so)."""
    x = node.args[0]
    dims = tuple(_flat(node.args[1:])) or tuple(_flat([node.kwargs.get("dims", ())]))
    users = list(node.users)
    flattens = ("flatten", torch_flatten(), "view", "reshape")
    reader = (
        _module_key(imp.gm.get_submodule(users[0].target))
        if users and users[0].op == "call_module"
        else None
    )
    if (
        dims == (0, 2, 3, 1)
        and len(users) == 1
        and (users[0].target in flattens or reader == "nn.Flatten")
        and len(imp.shape(users[0])) == 2
    ):
        imp.channels_last[node.name] = imp.ir_input(x)
        imp.value[node.name] = UNKNOWN  # nothing but the flatten reads it
        return
    imp.problem(node, f"a permutation of the axes to {dims}: archc keeps channels last")


@converts(".contiguous", "nn.Identity")
def identity(imp: _Import, node, target) -> None:
    imp.alias(node, node.args[0])


@converts("nn.Dropout", "F.dropout", "archc.DropPath")
def dropout(imp: _Import, node, target) -> None:
    """The identity at inference, a layer of archc's (`D(rate)`, `DP(rate)`) for training."""
    x = node.args[0]
    module = hasattr(target, "forward")
    rate = target.p if module else imp.arg(node, 1, "p", 0.5)
    kind = "droppath" if module and _module_key(target) == "archc.DropPath" else "dropout"
    ir = imp.add(node, kind, [imp.ir_input(x)], rate=rate)
    chw = imp.channels_first.get(imp.ir_input(x))
    if chw is not None:  # elementwise: the vector keeps its order
        imp.channels_first[ir.name] = chw


@converts("nn.ZeroPad2d")
def zeropad(imp: _Import, node, m) -> None:
    left, right, t, b = (m.padding,) * 4 if isinstance(m.padding, int) else m.padding
    _zeropad(imp, node, node.args[0], (left, right, t, b))


@converts("F.pad")
def pad_f(imp: _Import, node, f) -> None:
    pad = imp.arg(node, 1, "pad")
    mode, value = imp.arg(node, 2, "mode", "constant"), imp.arg(node, 3, "value", None)
    if mode != "constant" or value not in (None, 0, 0.0) or len(pad) != 4:
        return imp.problem(node, "padding other than zeros on height and width")
    _zeropad(imp, node, node.args[0], tuple(pad))


def _zeropad(imp, node, x, pad) -> None:
    left, right, t, b = pad
    if min(pad) < 0:
        return imp.problem(node, "negative padding (cropping): write it as Crop")
    imp.add(node, "zeropad", [imp.ir_input(x)], pad=(t, b, left, right))


@converts("archc.Rescaling")
def rescaling(imp: _Import, node, m) -> None:
    scale, offset = float32_decimal(m.scale), float32_decimal(m.offset)
    imp.add(node, "rescaling", [imp.ir_input(node.args[0])], scale=scale, offset=offset)


@converts("archc.Reshape")
def reshape_helper(imp: _Import, node, m) -> None:
    imp.add(node, "reshape", [imp.ir_input(node.args[0])], shape=tuple(m.shape))


@converts("archc.Crop2d")
def crop(imp: _Import, node, m) -> None:
    imp.add(node, "crop", [imp.ir_input(node.args[0])], crop=(m.top, m.bottom, m.left, m.right))


@converts("nn.Upsample", "nn.UpsamplingNearest2d", "F.interpolate")
def upsample(imp: _Import, node, target) -> None:
    x = node.args[0]
    if hasattr(target, "forward"):
        scale = target.scale_factor
        mode, align = target.mode, target.align_corners
        antialias = False
    else:
        scale = imp.arg(node, 2, "scale_factor")
        mode, align = imp.arg(node, 3, "mode", "nearest"), imp.arg(node, 4, "align_corners")
        antialias = imp.arg(node, 6, "antialias", False)
    (h, w), (oh, ow) = imp.shape(x)[2:], imp.shape(node)[2:]
    if align or antialias or mode not in ("nearest", "nearest-exact", "bilinear"):
        return imp.problem(
            node,
            f"{mode} resampling"
            + (" with align_corners" if align else "")
            + ": archc resamples nearest or bilinear with half-pixel centres",
        )
    whole = oh % h == 0 and ow % w == 0
    interpolation = "nearest" if mode.startswith("nearest") else "bilinear"
    if scale is not None and whole:
        imp.add(
            node,
            "upsample",
            [imp.ir_input(x)],
            factor=(oh // h, ow // w),
            interpolation=interpolation,
        )
    elif scale is not None:
        imp.problem(node, f"resampling by {scale}, not a whole factor: give the output size")
    elif mode == "nearest" and not whole:
        imp.problem(
            node,
            "nearest resampling by a ratio that is not a whole number (PyTorch's "
            "`nearest` is not Keras's): use mode='nearest-exact'",
        )
    else:
        imp.add(node, "resize", [imp.ir_input(x)], size=(oh, ow), interpolation=interpolation)


# ---------------------------------------------------------------------------
# Merges and channel operations
# ---------------------------------------------------------------------------


@converts("torch.cat", "torch.concat", "torch.concatenate")
def cat(imp: _Import, node, f) -> None:
    tensors = imp.arg(node, 0, "tensors")
    dim = imp.arg(node, 1, "dim", 0)
    rank = len(imp.shape(node))
    if int(dim) % rank != 1:
        return imp.problem(
            node, f"concatenation along dim={dim}: archc concatenates channels (dim=1)"
        )
    imp.add(node, "concat", [imp.ir_input(t) for t in tensors])


def _binary(imp: _Import, node, kind: str) -> None:
    a, b = node.args[0], node.args[1]
    if not (imp.is_tensor(a) and imp.is_tensor(b)) or node.kwargs.get("alpha", 1) != 1:
        return imp.problem(
            node, f"{kind} with a constant: archc's {kind} joins two tensors of the network"
        )
    imp.add(node, kind, [imp.ir_input(a), imp.ir_input(b)])


@converts("operator.add", "operator.iadd", "torch.add", ".add", ".add_")
def add(imp: _Import, node, f) -> None:
    _binary(imp, node, "add")


@converts("operator.mul", "operator.imul", "torch.mul", ".mul", ".mul_")
def mul(imp: _Import, node, f) -> None:
    _binary(imp, node, "mul")


@converts("nn.ChannelShuffle")
def channel_shuffle(imp: _Import, node, m) -> None:
    imp.add(node, "shuffle", [imp.ir_input(node.args[0])], groups=m.groups)


@converts("archc.ChannelSplit")
def channel_split(imp: _Import, node, m) -> None:
    imp.add(node, "split", [imp.ir_input(node.args[0])], parts=m.parts, take=m.take)


@converts(".chunk", "torch.chunk")
def chunk(imp: _Import, node, f) -> None:
    x = node.args[0]
    parts, dim = imp.arg(node, 1, "chunks"), imp.arg(node, 2, "dim", 0)
    if len(imp.shape(x)) != 4 or int(dim) % 4 != 1 or imp.shape(x)[1] % parts:
        return imp.problem(node, "a chunk that is not equal parts of the channels (dim=1)")
    imp.chunks[node.name] = (imp.ir_input(x), parts)


@converts("operator.getitem")
def getitem(imp: _Import, node, f) -> None:
    src, index = node.args
    if src.name in imp.chunks and isinstance(index, int):
        ir_in, parts = imp.chunks[src.name]
        imp.add(node, "split", [ir_in], parts=parts, take=index % parts)
        return
    imp.problem(node, "indexing or slicing a tensor: archc has channel split and Crop only")


# ---------------------------------------------------------------------------
# The driver
# ---------------------------------------------------------------------------


def _tracer():
    import torch.fx

    class Tracer(torch.fx.Tracer):
        """torch.fx's tracer; archc's own generated helper modules are leaves."""

        def is_leaf_module(self, m, qualname):
            if _module_key(m) in CONVERTERS and _module_key(m).startswith("archc."):
                return True
            return super().is_leaf_module(m, qualname)

    return Tracer()


def _trace(module, source: str):
    import torch.fx

    tracer = _tracer()
    try:
        graph = tracer.trace(module)
    except Exception as e:  # noqa: BLE001 -- any trace error is the user's model's
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ImportFailure(
            source,
            [],
            f"torch.fx cannot trace {type(module).__name__} (dynamic control flow, or "
            f"an operation on a traced tensor it cannot record): {type(e).__name__}: {first}",
        ) from None
    return torch.fx.GraphModule(tracer.root, graph, type(module).__name__)


def _propagate(gm, module, input_hwc, source: str) -> None:
    """Every node's tensor shape (node.meta["tensor_meta"]) from one run on zeros,
    in eval mode and without gradients; the modules' modes are restored after."""
    import torch
    from torch.fx.passes.shape_prop import ShapeProp

    h, w, c = input_hwc
    params = list(module.parameters()) + list(module.buffers())
    dtype = next((p.dtype for p in params if p.is_floating_point()), torch.float32)
    device = params[0].device if params else torch.device("cpu")
    modes = {m: m.training for m in module.modules()}
    current = {"node": None}

    class Recording(ShapeProp):
        def run_node(self, n):
            current["node"] = n
            return super().run_node(n)

    try:
        module.eval()
        with torch.no_grad():
            Recording(gm).propagate(torch.zeros(1, c, h, w, dtype=dtype, device=device))
    except Exception as e:  # noqa: BLE001 -- the user's forward raised
        text = str(e).strip().splitlines()
        first = next((t for t in text if t.strip() and not t.startswith("ShapeProp error")), "")
        n = current["node"]
        why = (
            f"it raised {type(e.__cause__ or e).__name__} on a zero input 1 x {c} x {h} x {w}"
            f" (N x C x H x W): {first}"
        )
        if n is None:
            raise ImportFailure(source, [], why) from None
        raise ImportFailure(source, [Problem(_layer(n), _cls(gm, n), _where(n), why)]) from None
    finally:
        for m, mode in modes.items():
            m.training = mode


def _live(gm) -> set[str]:
    """The fx nodes the output depends on."""
    out = next(n for n in gm.graph.nodes if n.op == "output")
    live, stack = set(), [out]
    while stack:
        n = stack.pop()
        if n.name in live:
            continue
        live.add(n.name)
        stack.extend(n.all_input_nodes)
    return live


def _model_name(module) -> str:
    name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", type(module).__name__).lower()
    from backends.names import problem

    name = re.sub(r"\W", "_", name).strip("_") or "model"
    name = name if not name[0].isdigit() else "model_" + name
    return name if problem("model", name) is None else name + "_model"


def import_torch(module, input_hwc: tuple[int, int, int], source: str) -> Imported:
    """An nn.Module as an archc IR with its weights, for an input H x W x C."""
    imp = _read(module, input_hwc, source)
    return _finish(imp, module, input_hwc, source)


def node_outputs(module, input_hwc: tuple[int, int, int], x) -> dict[str, Any]:
    """Every imported node's output as the module computes it on `x` (N x C x H x W),
    keyed by the node names `import_torch` gives (the same import, run again), as
    NumPy arrays in archc's layout (N x H x W x C; a flattened map in channels-last
    order), in the module's current mode: for a per-node comparison with another
    build. Each value is copied when its graph node runs, so an in-place
    operation after it (`nn.ReLU(inplace=True)`) does not change it, and a module
    called twice gives each call's output to its own node."""
    import torch
    import torch.fx

    imp = _read(module, input_hwc, "module")
    last = {imp.value[f.name]: f.name for f in imp.gm.graph.nodes if f.name in imp.value}
    wanted = {f: n for n, f in last.items() if n in imp.by_name and not imp.by_name[n].dropped}
    seen: dict[str, Any] = {}

    class Recording(torch.fx.Interpreter):
        def run_node(self, n):
            out = super().run_node(n)
            if n.name in wanted and isinstance(out, torch.Tensor):
                name, a = wanted[n.name], out.detach().cpu().clone().numpy()
                chw = imp.channels_first.get(name)
                if chw is not None:  # a flattened map in channels-last order, as archc's
                    a = a.reshape(len(a), *chw).transpose(0, 2, 3, 1).reshape(len(a), -1)
                seen[name] = a.transpose(0, 2, 3, 1) if a.ndim == 4 else a
            return out

    with torch.no_grad():
        Recording(imp.gm).run(x)
    return seen


def _read(module, input_hwc, source: str) -> _Import:
    """Trace, propagate shapes, convert every node the output depends on; every
    problem raised at once."""
    gm = _trace(module, source)
    live = _live(gm)
    inputs = [n for n in gm.graph.nodes if n.op == "placeholder" and n.name in live]
    if len(inputs) > 1:  # nothing to run it on: say so before running it
        why = "a second input: archc's models have one"
        raise ImportFailure(source, [Problem(n.name, "input", _where(n), why) for n in inputs[1:]])
    _propagate(gm, module, input_hwc, source)
    imp = _Import(source, gm)
    imp.order = {n.name: k for k, n in enumerate(gm.graph.nodes)}
    calls: dict[str, int] = {}
    for n in gm.graph.nodes:
        if n.op == "call_module" and n.name in live:
            calls[n.target] = calls.get(n.target, 0) + 1
    first = next((n for n in gm.graph.nodes if n.op == "placeholder"), None)
    for n in gm.graph.nodes:
        if n.name in live and n.name not in imp.done:
            _convert(imp, n, first, input_hwc, calls)
            if imp.is_tensor(n) and n.name not in imp.value:
                # a problem: later nodes read a stand-in, so their problems are found too
                imp.value[n.name] = UNKNOWN
    if imp.problems:
        raise ImportFailure(source, imp.problems)
    return imp


UNKNOWN = "?"  # the IR value of a tensor whose node is a problem


def _convert(imp: _Import, n, first, input_hwc, calls: dict[str, int]) -> None:
    """One fx node: the input, the output, or through its converter."""
    if n.op == "placeholder":
        if n is not first:
            return imp.problem(n, "a second input: archc's models have one")
        imp.names.add("input")
        imp.nodes.append(_IRNode("input", "input", [], {"shape": tuple(input_hwc)}, fx=n))
        imp.by_name["input"] = imp.nodes[-1]
        imp.value[n.name] = "input"
        return None
    if n.op == "output":
        result = n.args[0]
        if not imp.is_tensor(result):
            return imp.problem(
                n, "the model returns several values (or none): archc's models have one output"
            )
        imp.output = imp.value.get(result.name)
        if imp.output in imp.channels_first:
            imp.problem(n, _CHANNELS_FIRST)
        return None
    if n.op == "get_attr":
        return imp.problem(
            n, f"an in-graph constant (the tensor `{n.target}`): archc's layers hold every tensor"
        )
    if not imp.is_tensor(n) and not _is_chunk(n):
        shape_only = all(not imp.is_tensor(a) for a in n.all_input_nodes)
        if shape_only or n.target is getattr or (n.op == "call_method" and n.target == "size"):
            return None  # shape arithmetic (x.size(0), x.shape[2] - 1): read from the shapes
    target, key = _lookup(imp.gm, n)
    if key is None or key not in CONVERTERS:
        return imp.problem(n, "archc has no layer for it" + _hint(n))
    if n.op == "call_module" and calls.get(n.target, 0) > 1 and _has_weights(target):
        return imp.problem(
            n,
            f"the module is called {calls[n.target]} times with one set of "
            "weights: archc gives each layer its own",
        )
    mutated = _mutated(n, target)
    if mutated is not None:
        later = [
            u.name for u in mutated.users if u is not n and imp.order[u.name] > imp.order[n.name]
        ]
        if later:
            return imp.problem(
                n,
                f"it changes `{mutated.name}` in place, which {', '.join(f'`{u}`' for u in later)} "
                "then read(s): archc's layers compute new tensors (drop inplace=True)",
            )
    ins = [imp.value.get(a.name) for a in n.all_input_nodes]
    cf = [i for i in ins if i in imp.channels_first]
    before = len(imp.problems)
    try:
        CONVERTERS[key](imp, n, target)
    except AttributeError as e:  # a user's class that has only the name of archc's helper
        if not key.startswith("archc."):
            raise
        return imp.problem(n, f"not archc's generated helper of that name ({e})")
    if cf and key not in _ORDER_AWARE and len(imp.problems) == before:
        made = imp.value.get(n.name)
        if made is None or made not in imp.channels_first:
            imp.problem(n, _CHANNELS_FIRST)
    return None


# converters that handle a channels-first vector themselves
_ORDER_AWARE = {
    "nn.Linear",
    "nn.Dropout",
    "F.dropout",
    "archc.DropPath",
    ".contiguous",
    "nn.Identity",
    *ACT_MODULES,
    *ACT_FUNCTIONS,
    "nn.LeakyReLU",
    "F.leaky_relu",
    "nn.ELU",
    "F.elu",
    "nn.GELU",
    "F.gelu",
    "nn.Softmax",
    "torch.softmax",
    "F.softmax",
    ".softmax",
}


def _mutated(n, target):
    """The tensor an in-place operation writes into (`x.add_(y)`, `F.relu(x,
    inplace=True)`, `nn.ReLU(inplace=True)`), or None."""
    inplace = n.kwargs.get("inplace", False) is True
    if n.op == "call_method":
        inplace = inplace or (n.target.endswith("_") and not n.target.startswith("_"))
    elif n.op == "call_module":
        inplace = inplace or getattr(target, "inplace", False) is True
    first = n.args[0] if n.args else None
    return first if inplace and hasattr(first, "users") else None


def _has_weights(module) -> bool:
    return any(True for _ in module.parameters()) or any(True for _ in module.buffers())


def _is_chunk(n) -> bool:
    return (
        n.op in ("call_method", "call_function")
        and getattr(n.target, "__name__", n.target) == "chunk"
    )


def _hint(n) -> str:
    if n.op == "call_module":
        return " (a module archc does not know: write it with archc's layers, or leave it out)"
    return ""


def _lookup(gm, n):
    if n.op == "call_module":
        m = gm.get_submodule(n.target)
        return m, _module_key(m)
    if n.op == "call_function":
        return n.target, _function_key(n.target)
    if n.op == "call_method":
        return n.target, "." + n.target
    return None, None


def _finish(imp: _Import, module, input_hwc, source: str) -> Imported:
    nodes = [n for n in imp.nodes if not n.dropped]
    # a dropped zero padding: readers of its value read its input
    rename = {n.name: n.inputs[0] for n in imp.nodes if n.dropped}
    ir_nodes = []
    for n in nodes:
        inputs = tuple(rename.get(i, i) for i in n.inputs)
        ir_nodes.append(KINDS[n.kind](name=n.name, inputs=inputs, **n.fields))
    model = Model(
        name=_model_name(module),
        source=source,
        input_shape=tuple(input_hwc),
        nodes=tuple(ir_nodes),
        output=rename.get(imp.output, imp.output),
    )
    from archc.passes.infer import infer

    try:
        model = infer(model, Diagnostics(Sources()))
    except SpecError as e:
        raise ImportFailure(
            source, [], f"archc cannot infer the imported graph's shapes: {e}"
        ) from None
    # every IR node's shape against PyTorch's for the last fx node it stands for
    # (a fused activation, GAP then flatten): a difference is archc's bug, never silent
    last = {imp.value[f.name]: f for f in imp.gm.graph.nodes if f.name in imp.value}
    problems = []
    for n in nodes:
        f = last.get(n.name)
        if f is None or n.kind == "input" or not imp.is_tensor(f):
            continue
        out, torch_shape = model.node(n.name).out_shape, _hwc(imp.shape(f))
        if tuple(out) != torch_shape:
            why = f"archc computes {out} where PyTorch computes {torch_shape} (H x W x C)"
            problems.append(Problem(_layer(f), _cls(imp.gm, f), _where(f), why))
    if problems:
        raise ImportFailure(source, problems)
    return Imported(model, _weights(model, nodes), source, "torch")


def _weights(model: Model, nodes: list[_IRNode]) -> dict:
    out = {}
    for n in nodes:
        ir = model.node(n.name)
        for w in ir.weights(list(ir.in_shapes)):
            t = _tensor(n.module, w.torch).detach().cpu().numpy().copy()
            if n.chw is not None and w.role == "kernel":  # columns to channels-last order
                c, h, wd = n.chw
                t = t.reshape(t.shape[0], c, h, wd).transpose(0, 2, 3, 1).reshape(t.shape[0], -1)
            out[f"{n.name}/{w.role}"] = _to_keras_layout(w, t)
    return out
