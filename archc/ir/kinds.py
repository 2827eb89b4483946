"""Every layer kind of the IR, one class each: its fields and its rules.

A kind is an immutable pydantic model whose fields are the layer's settings. It
states everything archc knows about the layer without a framework, as methods that
every concrete kind must define (a kind that leaves one out fails at import, in
`Node.__pydantic_init_subclass__`, naming what is missing):

- `infer(ins)`            its shape rule (arithmetic in archc/ir/shapes.py);
- `count(ins, out)`       trainable and non-trainable parameters and multiply-
                          accumulates, as a `Cost`, counted exactly as Keras counts;
- `receptive_field(ins)`  how the receptive field and the jump between neighbouring
                          cells propagate (exact fractions: an upsampling kind halves
                          the jump);
- `weights(ins)`          its tensors: the neutral role name (Keras's), the PyTorch
                          attribute, the layout permutation, trainable or not. Weight
                          transfer (backends/transfer.py) reads only this.
- `kept(ins, out)`        the tensors its backward pass keeps in training, as
                          PyTorch's autograd saves them for the generated code (the
                          memory estimate, archc/memory.py, reads only this).

Rules shared by several kinds are mixins named for what they state (`Pointwise`,
`NoWeights`), so every rule of a kind is written in its class or named by it.

Kinds register themselves by `kind` in `KINDS`; the IR union is built from it, the
language binds calls to kinds in archc/language/bind.py, and each backend keeps a
table from `kind` to its emitter. tests/test_kinds.py holds one row per kind and
fails for a kind without one. This module imports neither lark nor archc.language.
"""

from __future__ import annotations

from abc import abstractmethod
from fractions import Fraction
from typing import Annotated, Any, ClassVar, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, PlainSerializer, PlainValidator

from archc.ir.shapes import (
    Shape,
    ShapeError,
    ceil_window_output,
    describe,
    effective_kernel,
    window_output,
)

Pair = tuple[int, int]

KINDS: dict[str, type[Node]] = {}

# Activations a Conv or Dense may carry fused (`Dense(10, softmax)`), all
# parameter-free; the activation kind takes these and the parameterised ones.
FUSABLE = (
    "relu",
    "relu6",
    "sigmoid",
    "hard_sigmoid",
    "tanh",
    "softmax",
    "linear",
    "elu",
    "selu",
    "gelu",
    "silu",
    "softplus",
    "hard_swish",
    "mish",
)
# gelu_tanh (GELU's tanh approximation) has no activation string in Keras: it is
# a layer of its own, never fused.
ACTIVATIONS = FUSABLE + ("leaky_relu", "prelu", "gelu_tanh")
# Keras's defaults for the activations that take a parameter.
DEFAULT_ALPHA = {"leaky_relu": 0.3, "elu": 1.0}
INITIALIZERS = (
    "glorot_uniform",
    "glorot_normal",
    "he_normal",
    "he_uniform",
    "lecun_normal",
    "lecun_uniform",
    "zeros",
    "ones",
    "orthogonal",
)


class Loc(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)
    file: str
    line: int
    col: int


# ---------------------------------------------------------------------------
# Rule vocabulary: costs, weights, receptive fields
# ---------------------------------------------------------------------------


class Cost(NamedTuple):
    trainable: int
    nontrainable: int
    macs: int


FREE = Cost(0, 0, 0)


class Weight(NamedTuple):
    """One tensor of a layer. `shape` is in the neutral layout (Keras's);
    `to_torch` permutes it to PyTorch's (None: the same layout); `torch_shape`
    reshapes the permuted tensor where PyTorch folds two axes into one (a
    depthwise kernel (kh, kw, C, K) is (C*K, 1, kh, kw) there; None: no reshape);
    `flat`: the neutral form stores it flattened (PReLU's alpha is (1, 1, C) in
    Keras). `torch` is the attribute path on the node's module (`pointwise.weight`
    for a tensor of a submodule)."""

    role: str
    torch: str
    shape: tuple[int, ...]
    trainable: bool = True
    to_torch: tuple[int, ...] | None = None
    flat: bool = False
    torch_shape: tuple[int, ...] | None = None

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


def _fraction(v: Any) -> Fraction:
    if isinstance(v, bool):
        # ValueError, not TypeError: pydantic reports only the former as invalid input
        raise ValueError("a receptive-field length is a number")  # noqa: TRY004
    return Fraction(v)


def _rational_json(f: Fraction) -> int | str:
    return f.numerator if f.denominator == 1 else f"{f.numerator}/{f.denominator}"


# An exact rational: 3, or "1/2" in JSON.
Rational = Annotated[Fraction, PlainValidator(_fraction), PlainSerializer(_rational_json)]


class RF(BaseModel):
    """Receptive field of one output cell on the input, and the input-pixel distance
    between neighbouring output cells (jump), per axis (height, width). Both are
    exact fractions: after an upsampling by 2 the jump is 1/2."""

    model_config = ConfigDict(frozen=True, defer_build=True)
    size: tuple[Rational, Rational]
    jump: tuple[Rational, Rational]

    @classmethod
    def of(cls, size, jump) -> RF:
        return cls.model_construct(
            size=tuple(Fraction(v) for v in size), jump=tuple(Fraction(v) for v in jump)
        )


RFs = list[RF]  # the receptive fields of a node's inputs (never None: see infer)


class Kept(NamedTuple):
    """One tensor a layer's backward pass keeps in training, as PyTorch's autograd
    saves it for the generated code. `tensor`: "in0", "in1", ... (that input) or
    "out" (the output), shared with every other layer that keeps the same tensor;
    "" a tensor of the layer's own (a padded copy, statistics, pooling indices, a
    mask). `elements` per sample (`per_sample` False: for the whole batch, as
    batch norm's statistics per channel); `itemsize` bytes per element, None for
    the activations' dtype (float32, or the low precision of mixed precision)."""

    tensor: str
    elements: int
    itemsize: int | None = None
    per_sample: bool = True


def size(shape: Shape) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


# activations whose PyTorch backward keeps their output; every other one keeps its input
KEEPS_OUTPUT = ("relu", "sigmoid", "tanh", "softmax")


def kept_activation(fn: str | None, out: Shape, source: str = "out") -> tuple[Kept, ...]:
    """What an activation `fn` (fused or its own layer) keeps: its output (relu,
    sigmoid, tanh, softmax), nothing (linear), else its input, which is `source`
    ("" when it is a fused layer's pre-activation result, a tensor of its own)."""
    if not fn or fn == "linear":
        return ()
    if fn in KEEPS_OUTPUT:
        return (Kept("out", size(out)),)
    return (Kept(source, size(out)),)


def kept_window_input(node: Node, ins: list[Shape]) -> Kept:
    """A convolution's or pooling's input as its backward keeps it: the input, or
    where Keras's `same` padding is uneven (the generated code pads with
    nn.ZeroPad2d or F.pad first), the padded copy, a tensor of its own."""
    from archc.ir.shapes import same_padding

    h, w, c = ins[0]
    if node.padding == "same":
        dil = getattr(node, "dilation", (1, 1))
        (t, b) = same_padding(h, node.kernel[0], node.stride[0], dil[0])
        (left, right) = same_padding(w, node.kernel[1], node.stride[1], dil[1])
        if t != b or left != right:
            return Kept("", (h + t + b) * (w + left + right) * c)
    return Kept("in0", h * w * c)


def rf_window(ins: RFs, kernel: Pair, stride: Pair) -> RF:
    """A sliding window of (effective) `kernel` and `stride`: each output cell sees
    kernel-1 more input cells, each `jump` apart; neighbours are `stride` cells apart."""
    (r,) = ins
    return RF.of(
        (r.size[0] + (kernel[0] - 1) * r.jump[0], r.size[1] + (kernel[1] - 1) * r.jump[1]),
        (r.jump[0] * stride[0], r.jump[1] * stride[1]),
    )


def rf_merge(ins: RFs) -> RF:
    """Branches joined cell by cell: the widest field and the coarsest jump."""
    if len(ins) == 1:
        return ins[0]
    return RF.of(
        tuple(max(r.size[i] for r in ins) for i in range(2)),
        tuple(max(r.jump[i] for r in ins) for i in range(2)),
    )


# ---------------------------------------------------------------------------
# The base and the shared rule sets
# ---------------------------------------------------------------------------


class Node(BaseModel):
    """Fields common to every IR node. Shapes and counts are filled in by inference
    (archc/passes/infer.py) from the kind's rules."""

    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    kind: str
    name: str
    inputs: tuple[str, ...] = ()
    scope: str = ""
    loc: Loc | None = None
    # -- filled in by archc.passes.infer
    in_shapes: tuple[tuple[int, ...], ...] = ()
    out_shape: tuple[int, ...] = ()
    trainable: int = 0
    nontrainable: int = 0
    macs: int = 0
    rf: RF | None = None

    prefix: ClassVar[str] = "n"  # generated node names: c1, c2, ...
    title: ClassVar[str] = "layer"  # how messages name it
    # How `count` counts the multiply-accumulates, as the report and docs state it;
    # "" for the kinds that count none (tests/test_kinds.py checks the two agree).
    macs_rule: ClassVar[str] = ""

    @classmethod
    def __pydantic_init_subclass__(cls, **kw: Any) -> None:
        kind = cls.model_fields["kind"].default
        if not (isinstance(kind, str) and kind):
            return  # a base or a mixin, not a kind
        missing = sorted(getattr(cls, "__abstractmethods__", ()))
        if missing:
            raise TypeError(
                f"layer kind `{kind}` ({cls.__name__}) does not state its "
                f"{', '.join(missing)} rule(s): define them, or name the mixin "
                "that states them (see archc/ir/kinds.py)"
            )
        if kind in KINDS:
            raise TypeError(f"layer kind `{kind}` is defined twice")
        KINDS[kind] = cls

    @abstractmethod
    def infer(self, ins: list[Shape]) -> Shape:
        """The output shape for input shapes `ins`; ShapeError if they do not fit."""

    @abstractmethod
    def count(self, ins: list[Shape], out: Shape) -> Cost:
        """(trainable, non-trainable, MACs) for these shapes."""

    @abstractmethod
    def receptive_field(self, ins: RFs) -> RF | None:
        """The output's receptive field from the inputs'; None once it covers the
        whole input (Flatten, global pooling, Dense). Inference fills `in_shapes`
        and `out_shape` before it calls this (a resize reads its ratio from them)."""

    @abstractmethod
    def weights(self, ins: list[Shape]) -> tuple[Weight, ...]:
        """The layer's tensors for input shapes `ins`, in Keras's order."""

    @abstractmethod
    def kept(self, ins: list[Shape], out: Shape) -> tuple[Kept, ...]:
        """The tensors its backward pass keeps in training (see `Kept`), as PyTorch's
        autograd saves them for the generated code (parameters not included)."""

    def is_view(self, ins: list[Shape]) -> bool:
        """Whether the generated PyTorch code's output is a view of the input's memory
        (a slice, a reshape without a copy) rather than a tensor of its own."""
        return False

    def describe(self) -> str:
        return ""

    @property
    def params(self) -> int:
        return self.trainable + self.nontrainable


class NoWeights:
    """States: no tensors, no parameters. (Its `count` leaves the MACs at 0 as
    well: archc counts multiply-accumulates of convolutions and dense layers only,
    as the seeds and Keras-based tools do.)"""

    def count(self, ins: list[Shape], out: Shape) -> Cost:
        return FREE

    def weights(self, ins: list[Shape]) -> tuple[Weight, ...]:
        return ()


class Pointwise(NoWeights):
    """States: the output has the input's shape, each output cell depends on its own
    input cell only (the receptive field and jump pass through), no parameters."""

    def infer(self, ins: list[Shape]) -> Shape:
        return ins[0]

    def receptive_field(self, ins: RFs) -> RF | None:
        return ins[0]


def _spatial(node: Node, ins: list[Shape]) -> Shape:
    (x,) = ins
    if len(x) != 3:
        raise ShapeError(
            f"{node.title} needs a feature map (H x W x C), but its input is {describe(x)}",
            hint="spatial layers must come before `Flatten` or global pooling",
        )
    return x


# ---------------------------------------------------------------------------
# Input
# ---------------------------------------------------------------------------


class Input(NoWeights, Node):
    kind: Literal["input"] = "input"
    shape: tuple[int, ...]
    prefix: ClassVar[str] = "input"
    title: ClassVar[str] = "input"

    def infer(self, ins: list[Shape]) -> Shape:
        return self.shape

    def receptive_field(self, ins: RFs) -> RF | None:
        """One pixel, one pixel apart; a vector input has no spatial field."""
        return RF.of((1, 1), (1, 1)) if len(self.shape) == 3 else None

    def kept(self, ins: list[Shape], out: Shape) -> tuple[Kept, ...]:
        return ()  # the data (kept by the layers that read it)

    def describe(self) -> str:
        return describe(self.shape)


# ---------------------------------------------------------------------------
# Preprocessing (the input layers keras.applications models carry)
# ---------------------------------------------------------------------------


class Rescaling(Pointwise, Node):
    """x * scale + offset (Keras `Rescaling`): no parameters."""

    kind: Literal["rescaling"] = "rescaling"
    scale: float
    offset: float = 0.0

    prefix: ClassVar[str] = "rescale"
    title: ClassVar[str] = "`Rescaling`"

    def kept(self, ins: list[Shape], out: Shape) -> tuple[Kept, ...]:
        return ()  # times and plus a number: nothing

    def describe(self) -> str:
        return f"* {self.scale:g}" + (f" + {self.offset:g}" if self.offset else "")


class Normalization(Node):
    """Keras `Normalization(axis=-1)`: (x - mean) / max(sqrt(variance), 1e-7) per
    channel (1e-7 is Keras's backend epsilon, the rule of its `call`). Given
    `mean` and `variance`, they are constants and Keras counts no parameters;
    without them they are non-trainable weights, with Keras's scalar `count`
    (2C + 1, as Keras counts them), loaded like batch norm's statistics."""

    kind: Literal["normalization"] = "normalization"
    mean: tuple[float, ...] | None = None
    variance: tuple[float, ...] | None = None

    prefix: ClassVar[str] = "norm"
    title: ClassVar[str] = "`Normalization`"

    def infer(self, ins: list[Shape]) -> Shape:
        c = ins[0][-1]
        for name in ("mean", "variance"):
            given = getattr(self, name)
            if given is not None and len(given) not in (1, c):
                raise ShapeError(
                    f"`Normalization` has {len(given)} {name} values for {c} channels",
                    hint="give one value per channel, or one for all",
                )
        return ins[0]

    def count(self, ins: list[Shape], out: Shape) -> Cost:
        return FREE if self.mean is not None else Cost(0, 2 * ins[0][-1] + 1, 0)

    def receptive_field(self, ins: RFs) -> RF | None:
        return ins[0]  # per-channel affine: each cell on its own

    def kept(self, ins: list[Shape], out: Shape) -> tuple[Kept, ...]:
        return (Kept("", ins[0][-1], 4, per_sample=False),)  # the divisor, per channel

    def weights(self, ins: list[Shape]) -> tuple[Weight, ...]:
        if self.mean is not None:
            return ()
        c = (ins[0][-1],)
        return (
            Weight("mean", "mean", c, trainable=False),
            Weight("variance", "variance", c, trainable=False),
            Weight("count", "count", (), trainable=False),
        )

    def describe(self) -> str:
        if self.mean is None:
            return "statistics as weights"
        return "mean {}, variance {}".format(
            ", ".join(f"{v:g}" for v in self.mean), ", ".join(f"{v:g}" for v in self.variance)
        )


# ---------------------------------------------------------------------------
# Convolution
# ---------------------------------------------------------------------------


def _window(node: Node, h: int, w: int) -> tuple[int, int]:
    """Output height and width of a sliding-window kind with `kernel`, `stride`,
    `padding` (`same`, `valid`, or explicit symmetric zeros) and `dilation`."""
    if isinstance(node.padding, str):
        ph = pw = node.padding
    else:
        ph, pw = (node.padding[0],) * 2, (node.padding[1],) * 2
    return (
        window_output(h, node.kernel[0], node.stride[0], ph, node.dilation[0]),
        window_output(w, node.kernel[1], node.stride[1], pw, node.dilation[1]),
    )


def _dilated(node: Node) -> Pair:
    return (
        effective_kernel(node.kernel[0], node.dilation[0]),
        effective_kernel(node.kernel[1], node.dilation[1]),
    )


class Conv2D(Node):
    """2-D convolution. Output size per axis: see `archc.ir.shapes.window_output`.

    `groups` splits the input and output channels into that many groups, each
    convolved on its own (ResNeXt, AlexNet's two towers): the kernel is
    (kh, kw, C_in/groups, C_out) and parameters and MACs are divided by groups
    (MACs: H_out * W_out * C_out * kh * kw * C_in / groups)."""

    kind: Literal["conv"] = "conv"
    filters: int
    kernel: Pair
    stride: Pair = (1, 1)
    padding: Literal["same", "valid"] | Pair = "valid"
    dilation: Pair = (1, 1)
    groups: int = 1
    use_bias: bool = True
    activation: str | None = None
    init: str | None = None
    bias_init: float | str | None = None
    l2: float | None = None

    prefix: ClassVar[str] = "c"
    macs_rule: ClassVar[str] = "H_out * W_out * C_out * kh * kw * C_in / groups"
    title: ClassVar[str] = "convolution `C`"

    def infer(self, ins: list[Shape]) -> Shape:
        h, w, c = _spatial(self, ins)
        if c % self.groups or self.filters % self.groups:
            raise ShapeError(
                f"{self.groups} groups must divide both the input channels ({c}) "
                f"and the filters ({self.filters})",
                hint="choose `groups:` to divide both channel counts",
            )
        return (*_window(self, h, w), self.filters)

    def count(self, ins: list[Shape], out: Shape) -> Cost:
        cin = ins[0][2] // self.groups
        kh, kw = self.kernel
        weights = kh * kw * cin * self.filters
        bias = self.filters if self.use_bias else 0
        return Cost(weights + bias, 0, out[0] * out[1] * self.filters * kh * kw * cin)

    def receptive_field(self, ins: RFs) -> RF | None:
        return rf_window(ins, _dilated(self), self.stride)

    def weights(self, ins: list[Shape]) -> tuple[Weight, ...]:
        cin = ins[0][2] // self.groups
        kernel = Weight(
            "kernel", "weight", (*self.kernel, cin, self.filters), to_torch=(3, 2, 0, 1)
        )
        return (kernel, Weight("bias", "bias", (self.filters,))) if self.use_bias else (kernel,)

    def kept(self, ins: list[Shape], out: Shape) -> tuple[Kept, ...]:
        return (kept_window_input(self, ins), *kept_activation(self.activation, out, ""))

    def describe(self) -> str:
        return _window_text(self, f"{self.filters}*", dilation=self.dilation, groups=self.groups)


class DepthwiseConv2D(Node):
    """Depthwise 2-D convolution (Keras `DepthwiseConv2D`; PyTorch `nn.Conv2d` with
    groups = C_in and C_in * multiplier outputs): each input channel is convolved
    with its own `multiplier` kernels; output channel c * multiplier + k comes from
    input channel c. Kernel (kh, kw, C, multiplier) in Keras, (C * multiplier, 1,
    kh, kw) in PyTorch (a permutation and a reshape). Output size per axis as
    `Conv2D`. MACs: H_out * W_out * C * multiplier * kh * kw (a convolution with
    groups = C)."""

    kind: Literal["depthwise"] = "depthwise"
    kernel: Pair
    stride: Pair = (1, 1)
    padding: Literal["same", "valid"] | Pair = "valid"
    multiplier: int = 1
    dilation: Pair = (1, 1)
    use_bias: bool = True
    activation: str | None = None
    init: str | None = None
    bias_init: float | str | None = None
    l2: float | None = None

    prefix: ClassVar[str] = "dw"
    macs_rule: ClassVar[str] = (
        "H_out * W_out * C_in * multiplier * kh * kw (one kernel per output channel)"
    )
    title: ClassVar[str] = "depthwise convolution `DW`"

    def infer(self, ins: list[Shape]) -> Shape:
        h, w, c = _spatial(self, ins)
        return (*_window(self, h, w), c * self.multiplier)

    def count(self, ins: list[Shape], out: Shape) -> Cost:
        kh, kw = self.kernel
        cout = out[2]
        bias = cout if self.use_bias else 0
        return Cost(kh * kw * cout + bias, 0, out[0] * out[1] * cout * kh * kw)

    def receptive_field(self, ins: RFs) -> RF | None:
        return rf_window(ins, _dilated(self), self.stride)

    def weights(self, ins: list[Shape]) -> tuple[Weight, ...]:
        c, k = ins[0][2], self.multiplier
        kernel = Weight(
            "kernel",
            "weight",
            (*self.kernel, c, k),
            to_torch=(2, 3, 0, 1),
            torch_shape=(c * k, 1, *self.kernel),
        )
        return (kernel, Weight("bias", "bias", (c * k,))) if self.use_bias else (kernel,)

    def kept(self, ins: list[Shape], out: Shape) -> tuple[Kept, ...]:
        return (kept_window_input(self, ins), *kept_activation(self.activation, out, ""))

    def describe(self) -> str:
        return _window_text(self, "", multiplier=self.multiplier, dilation=self.dilation)


class SeparableConv2D(Node):
    """Depthwise separable 2-D convolution (Keras `SeparableConv2D`): a depthwise
    convolution (`multiplier` kernels per input channel, no bias) then a 1x1
    pointwise convolution to `filters` channels with the one bias, nothing in
    between. Tensors in Keras's order: depthwise_kernel (kh, kw, C, multiplier),
    pointwise_kernel (1, 1, C * multiplier, filters), bias. MACs: the depthwise
    part's H_out * W_out * C * multiplier * kh * kw plus the pointwise part's
    H_out * W_out * C * multiplier * filters. No `l2` of its own: PyTorch's
    per-layer weight decay names one weight per layer (the spec-wide weight decay
    covers both kernels in both builds)."""

    kind: Literal["separable"] = "separable"
    filters: int
    kernel: Pair
    stride: Pair = (1, 1)
    padding: Literal["same", "valid"] | Pair = "valid"
    multiplier: int = 1
    dilation: Pair = (1, 1)
    use_bias: bool = True
    activation: str | None = None
    init: str | None = None
    bias_init: float | str | None = None

    prefix: ClassVar[str] = "sc"
    macs_rule: ClassVar[str] = (
        "depthwise H_out * W_out * C_in * multiplier * kh * kw + pointwise H_out * W_out * C_in * multiplier * C_out"
    )
    title: ClassVar[str] = "separable convolution `SC`"

    def infer(self, ins: list[Shape]) -> Shape:
        h, w, _ = _spatial(self, ins)
        return (*_window(self, h, w), self.filters)

    def count(self, ins: list[Shape], out: Shape) -> Cost:
        kh, kw = self.kernel
        mid = ins[0][2] * self.multiplier
        params = kh * kw * mid + mid * self.filters + (self.filters if self.use_bias else 0)
        cells = out[0] * out[1]
        return Cost(params, 0, cells * mid * kh * kw + cells * mid * self.filters)

    def receptive_field(self, ins: RFs) -> RF | None:
        return rf_window(ins, _dilated(self), self.stride)

    def weights(self, ins: list[Shape]) -> tuple[Weight, ...]:
        c, k = ins[0][2], self.multiplier
        ws = (
            Weight(
                "depthwise_kernel",
                "depthwise.weight",
                (*self.kernel, c, k),
                to_torch=(2, 3, 0, 1),
                torch_shape=(c * k, 1, *self.kernel),
            ),
            Weight(
                "pointwise_kernel",
                "pointwise.weight",
                (1, 1, c * k, self.filters),
                to_torch=(3, 2, 0, 1),
            ),
        )
        return (*ws, Weight("bias", "pointwise.bias", (self.filters,))) if self.use_bias else ws

    def kept(self, ins: list[Shape], out: Shape) -> tuple[Kept, ...]:
        """The depthwise part keeps its input, the pointwise part the depthwise
        result (a tensor of its own)."""
        mid = Kept("", out[0] * out[1] * ins[0][2] * self.multiplier)
        return (kept_window_input(self, ins), mid, *kept_activation(self.activation, out, ""))

    def describe(self) -> str:
        return _window_text(
            self, f"{self.filters}*", multiplier=self.multiplier, dilation=self.dilation
        )


class TransposePlan(NamedTuple):
    """One axis of a transposed convolution, as TensorFlow computes it: the full
    result has (n - 1) * s + k cells (zeros beyond it where the output is longer);
    the output is `size` cells of it from `crop` on. PyTorch writes the same as
    padding=`crop` plus `output_padding` (when 0 <= it < stride), or, when the
    full result loses more at the end than at the start, padding=`crop` then
    `trim` cells cut from the end."""

    size: int
    crop: int
    output_padding: int
    trim: int


def transpose_axis(n: int, k: int, s: int, padding: str | int, output_padding: int | None):
    """Keras's (TensorFlow backend's) transposed convolution along one axis.

    Output length (keras.src.backend.common.backend_utils):
    - `valid`: (n - 1) * s + k + op, op defaulting to max(s - k, 0);
    - `same`: n * s without output_padding, else (n - 1) * s + k % 2 + op;
    - explicit symmetric zeros p (PyTorch's): (n - 1) * s + k - 2p + op (op default 0).
    The output is the gradient of a convolution of that output length with that
    padding: `same` crops max((n - 1) * s + k - L, 0) // 2 cells at the start (the
    odd one goes to the end, as TensorFlow pads), `valid` none, explicit p cells.
    Raises ShapeError where Keras or PyTorch refuse the combination."""
    if output_padding is not None and output_padding >= s:
        raise ShapeError(
            f"output padding {output_padding} must be less than the stride {s}",
            hint="Keras and PyTorch both refuse output_padding >= stride",
        )
    full = (n - 1) * s + k
    if padding == "valid":
        size = full + (max(k, s) - k if output_padding is None else output_padding)
        crop = 0
    elif padding == "same":
        size = n * s if output_padding is None else (n - 1) * s + k % 2 + output_padding
        if -(-size // s) != n:
            raise ShapeError(
                f"`same` padding with output padding {output_padding} gives {size} cells, "
                f"which a stride-{s} convolution does not map back to {n}",
                hint="with an even kernel, `same` needs an output padding of at least 1",
            )
        crop = max(full - size, 0) // 2
    else:
        size = full - 2 * padding + (output_padding or 0)
        crop = padding
    if size <= 0:
        raise ShapeError(
            f"a transposed convolution of {n} cells padded by {padding} leaves no output",
            hint="use less padding",
        )
    extra = size - (full - 2 * crop)  # PyTorch's output_padding, if it is one
    if 0 <= extra < s:
        return TransposePlan(size, crop, extra, 0)
    return TransposePlan(size, crop, 0, -extra)


class Conv2DTranspose(Node):
    """Transposed 2-D convolution (Keras `Conv2DTranspose`, PyTorch
    `nn.ConvTranspose2d`), with Keras's (TensorFlow backend's) output size and
    alignment: see `transpose_axis`. `output_padding` is Keras's argument (None:
    Keras's default size); with explicit padding it is PyTorch's (default 0).
    Kernel (kh, kw, C_out, C_in) in Keras, (C_in, C_out, kh, kw) in PyTorch.
    MACs are counted per input pixel: H_in * W_in * kh * kw * C_in * C_out.
    Receptive field: neighbouring output cells are jump / stride apart on the
    input; one output cell depends on at most ceil(k / stride) input cells per
    axis."""

    kind: Literal["transposed"] = "transposed"
    filters: int
    kernel: Pair
    stride: Pair = (1, 1)
    padding: Literal["same", "valid"] | Pair = "valid"
    output_padding: Pair | None = None
    use_bias: bool = True
    activation: str | None = None
    init: str | None = None
    bias_init: float | str | None = None
    l2: float | None = None

    prefix: ClassVar[str] = "ct"
    macs_rule: ClassVar[str] = "H_in * W_in * kh * kw * C_in * C_out (per input pixel)"
    title: ClassVar[str] = "transposed convolution `CT`"

    def plan(self, ins: list[Shape]) -> tuple[TransposePlan, TransposePlan]:
        h, w, _ = _spatial(self, ins)
        pads = (self.padding,) * 2 if isinstance(self.padding, str) else self.padding
        ops = (None, None) if self.output_padding is None else self.output_padding
        return (
            transpose_axis(h, self.kernel[0], self.stride[0], pads[0], ops[0]),
            transpose_axis(w, self.kernel[1], self.stride[1], pads[1], ops[1]),
        )

    def infer(self, ins: list[Shape]) -> Shape:
        ph, pw = self.plan(ins)
        return (ph.size, pw.size, self.filters)

    def count(self, ins: list[Shape], out: Shape) -> Cost:
        h, w, cin = ins[0]
        kh, kw = self.kernel
        weights = kh * kw * cin * self.filters
        bias = self.filters if self.use_bias else 0
        return Cost(weights + bias, 0, h * w * kh * kw * cin * self.filters)

    def receptive_field(self, ins: RFs) -> RF | None:
        (r,) = ins
        span = [-(-k // s) - 1 for k, s in zip(self.kernel, self.stride)]
        return RF.of(
            (r.size[0] + span[0] * r.jump[0], r.size[1] + span[1] * r.jump[1]),
            (r.jump[0] / self.stride[0], r.jump[1] / self.stride[1]),
        )

    def weights(self, ins: list[Shape]) -> tuple[Weight, ...]:
        kernel = Weight(
            "kernel", "weight", (*self.kernel, self.filters, ins[0][2]), to_torch=(3, 2, 0, 1)
        )
        return (kernel, Weight("bias", "bias", (self.filters,))) if self.use_bias else (kernel,)

    def kept(self, ins: list[Shape], out: Shape) -> tuple[Kept, ...]:
        return (Kept("in0", size(ins[0])), *kept_activation(self.activation, out, ""))

    def describe(self) -> str:
        return _window_text(self, f"{self.filters}*", output_padding=self.output_padding)


def _hw(p: Pair) -> str:
    return str(p[0]) if p[0] == p[1] else f"({p[0]},{p[1]})"


_DEFAULT_OPTION = {"multiplier": 1, "dilation": (1, 1), "groups": 1, "output_padding": None}


def _window_text(node: Node, head: str, **options: Any) -> str:
    """How the report writes a convolution kind: `64*3*3, s2, same`, then each
    option not at its default (`multiplier 2`, `dilation 2`, `groups 32`,
    `output padding 1`), `nobias` and the fused activation."""
    parts = [f"{head}{node.kernel[0]}*{node.kernel[1]}", _stride_text(node.stride)]
    parts.append(_pad_text(node.padding))
    for name, value in options.items():
        if value != _DEFAULT_OPTION[name]:
            shown = _hw(value) if isinstance(value, tuple) else value
            parts.append(f"{name.replace('_', ' ')} {shown}")
    if not node.use_bias:
        parts.append("nobias")
    if node.activation:
        parts.append(node.activation)
    return ", ".join(parts)


def _stride_text(s: Pair) -> str:
    return f"s{_hw(s)}"


def _pad_text(p: str | Pair) -> str:
    return p if isinstance(p, str) else f"p{_hw(p)}"


# ---------------------------------------------------------------------------
# Normalisation
# ---------------------------------------------------------------------------


class BatchNorm(Node):
    """Batch normalisation over the last axis. Keras conventions: epsilon 1e-3,
    moving-average momentum 0.99. Parameters: gamma and beta trainable, moving
    mean and variance non-trainable (2C + 2C, as Keras counts them). `scale=False`
    is Keras's BatchNormalization(scale=False) (Inception v3): no gamma, so C + 2C."""

    kind: Literal["batchnorm"] = "batchnorm"
    epsilon: float = 1e-3
    momentum: float = 0.99
    scale: bool = True

    prefix: ClassVar[str] = "b"
    title: ClassVar[str] = "batch norm `B`"

    def infer(self, ins: list[Shape]) -> Shape:
        return ins[0]

    def count(self, ins: list[Shape], out: Shape) -> Cost:
        c = ins[0][-1]
        return Cost((2 if self.scale else 1) * c, 2 * c, 0)

    def receptive_field(self, ins: RFs) -> RF | None:
        return ins[0]  # per-channel affine at inference: each cell on its own

    def weights(self, ins: list[Shape]) -> tuple[Weight, ...]:
        c = (ins[0][-1],)
        gamma = (Weight("gamma", "weight", c),) if self.scale else ()
        return (
            *gamma,
            Weight("beta", "bias", c),
            Weight("moving_mean", "running_mean", c, trainable=False),
            Weight("moving_variance", "running_var", c, trainable=False),
        )

    def kept(self, ins: list[Shape], out: Shape) -> tuple[Kept, ...]:
        """Its input and the batch's mean and inverse deviation per channel (float32)."""
        return (Kept("in0", size(ins[0])), Kept("", 2 * ins[0][-1], 4, per_sample=False))

    def describe(self) -> str:
        parts = [] if self.scale else ["no scale"]
        if self.epsilon != 1e-3:
            parts.append(f"eps {self.epsilon:g}")
        if self.momentum != 0.99:
            parts.append(f"momentum {self.momentum:g}")
        return ", ".join(parts)


class LayerNorm(Node):
    """Layer normalisation over the channels of each cell (Keras
    `LayerNormalization(axis=-1)`; ConvNeXt's). Keras's default epsilon 1e-3
    (PyTorch's is 1e-5; ConvNeXt passes 1e-6). gamma and beta trainable (2C)."""

    kind: Literal["layernorm"] = "layernorm"
    epsilon: float = 1e-3

    prefix: ClassVar[str] = "ln"
    title: ClassVar[str] = "layer norm `LN`"

    def infer(self, ins: list[Shape]) -> Shape:
        return ins[0]

    def count(self, ins: list[Shape], out: Shape) -> Cost:
        return Cost(2 * ins[0][-1], 0, 0)

    def receptive_field(self, ins: RFs) -> RF | None:
        return ins[0]  # statistics over one cell's channels: each cell on its own

    def weights(self, ins: list[Shape]) -> tuple[Weight, ...]:
        c = (ins[0][-1],)
        return (Weight("gamma", "weight", c), Weight("beta", "bias", c))

    def kept(self, ins: list[Shape], out: Shape) -> tuple[Kept, ...]:
        """Its input and a mean and inverse deviation per cell (float32)."""
        return (Kept("in0", size(ins[0])), Kept("", 2 * size(ins[0][:-1]), 4))

    def describe(self) -> str:
        return f"eps {self.epsilon:g}" if self.epsilon != 1e-3 else ""


class GroupNorm(Node):
    """Group normalisation: the channels in `groups` groups of consecutive
    channels, each normalised over height, width and its channels (Keras
    `GroupNormalization(groups, epsilon)`, PyTorch `nn.GroupNorm(groups, C, eps)`).
    Keras's default epsilon 1e-3 (PyTorch's 1e-5). gamma and beta trainable (2C)."""

    kind: Literal["groupnorm"] = "groupnorm"
    groups: int
    epsilon: float = 1e-3

    prefix: ClassVar[str] = "gn"
    title: ClassVar[str] = "group norm `GN`"

    def infer(self, ins: list[Shape]) -> Shape:
        x = _spatial(self, ins)
        if x[2] % self.groups:
            raise ShapeError(
                f"group norm splits {x[2]} channels into {self.groups} groups: "
                f"{self.groups} does not divide {x[2]}",
                hint="the number of groups must divide the channels",
            )
        return x

    def count(self, ins: list[Shape], out: Shape) -> Cost:
        return Cost(2 * ins[0][-1], 0, 0)

    def receptive_field(self, ins: RFs) -> RF | None:
        return None  # the statistics read the whole map: every cell sees all of it

    def weights(self, ins: list[Shape]) -> tuple[Weight, ...]:
        c = (ins[0][-1],)
        return (Weight("gamma", "weight", c), Weight("beta", "bias", c))

    def kept(self, ins: list[Shape], out: Shape) -> tuple[Kept, ...]:
        """Its input and a mean and inverse deviation per group (float32)."""
        return (Kept("in0", size(ins[0])), Kept("", 2 * self.groups, 4))

    def describe(self) -> str:
        return f"{self.groups} groups" + (f", eps {self.epsilon:g}" if self.epsilon != 1e-3 else "")


class LayerScale(Node):
    """A learnable scale per channel, x * gamma (ConvNeXt's layer scale;
    keras.applications ConvNeXt's `LayerScale`): gamma (C,) trainable, starting at
    `init` (ConvNeXt: 1e-6)."""

    kind: Literal["layerscale"] = "layerscale"
    init: float

    prefix: ClassVar[str] = "scale"
    title: ClassVar[str] = "layer scale `Scale`"

    def infer(self, ins: list[Shape]) -> Shape:
        return ins[0]

    def count(self, ins: list[Shape], out: Shape) -> Cost:
        return Cost(ins[0][-1], 0, 0)

    def receptive_field(self, ins: RFs) -> RF | None:
        return ins[0]

    def weights(self, ins: list[Shape]) -> tuple[Weight, ...]:
        return (Weight("gamma", "gamma", (ins[0][-1],)),)

    def kept(self, ins: list[Shape], out: Shape) -> tuple[Kept, ...]:
        return (Kept("in0", size(ins[0])),)  # x * gamma: gamma's gradient reads x

    def describe(self) -> str:
        return f"init {self.init:g}"


class LRN(NoWeights, Node):
    """Local response normalisation as in the AlexNet paper:
    b_c = a_c / (k + alpha * sum_{c' within depth/2 of c} a_c'^2) ** beta.
    `alpha` multiplies the plain sum (TensorFlow's convention; PyTorch divides
    its alpha by the window size, which the torch backend accounts for)."""

    kind: Literal["lrn"] = "lrn"
    depth: int = 5
    alpha: float = 1e-4
    beta: float = 0.75
    bias_k: float = 2.0

    prefix: ClassVar[str] = "lrn"
    title: ClassVar[str] = "local response normalisation `LRN`"

    def infer(self, ins: list[Shape]) -> Shape:
        return _spatial(self, ins)

    def receptive_field(self, ins: RFs) -> RF | None:
        return ins[0]  # across channels only: the spatial field is unchanged

    def kept(self, ins: list[Shape], out: Shape) -> tuple[Kept, ...]:
        """F.local_response_norm: its input, the channel-padded squares (average
        pooled), and the divisor before and after its power."""
        h, w, c = ins[0]
        return (
            Kept("in0", h * w * c),
            Kept("", h * w * (c + self.depth - 1)),
            Kept("", h * w * c),
            Kept("", h * w * c),
        )

    def describe(self) -> str:
        return f"n={self.depth}, alpha={self.alpha:g}, beta={self.beta:g}, k={self.bias_k:g}"


# ---------------------------------------------------------------------------
# Activation
# ---------------------------------------------------------------------------


class Activation(Node):
    """An activation. `alpha` is the negative slope of leaky_relu (Keras default
    0.3) or the alpha of elu (1.0). prelu learns one slope per channel, shared
    over height and width (Keras `PReLU(shared_axes=[1, 2])`)."""

    kind: Literal["activation"] = "activation"
    fn: str
    alpha: float | None = None

    prefix: ClassVar[str] = "a"
    title: ClassVar[str] = "activation `A`"

    def infer(self, ins: list[Shape]) -> Shape:
        return ins[0]

    def count(self, ins: list[Shape], out: Shape) -> Cost:
        return Cost(ins[0][-1], 0, 0) if self.fn == "prelu" else FREE

    def receptive_field(self, ins: RFs) -> RF | None:
        return ins[0]  # softmax over the last axis mixes channels, not cells

    def weights(self, ins: list[Shape]) -> tuple[Weight, ...]:
        if self.fn != "prelu":
            return ()
        shape = (1, 1, ins[0][-1]) if len(ins[0]) == 3 else (ins[0][-1],)
        return (Weight("alpha", "weight", shape, flat=True),)

    def kept(self, ins: list[Shape], out: Shape) -> tuple[Kept, ...]:
        return kept_activation(self.fn, out, "in0")

    def describe(self) -> str:
        return self.fn + (f", {self.alpha:g}" if self.alpha is not None else "")


# ---------------------------------------------------------------------------
# Pooling
# ---------------------------------------------------------------------------


class Pool(NoWeights, Node):
    """Max or average pooling. Stride defaults to the kernel (Keras). `same`
    max pooling ignores padded cells; `same` average pooling divides by the
    number of real cells; explicit padding is PyTorch's (-inf for max).

    `ceil` is PyTorch's `ceil_mode` (valid or explicit padding only): the output
    length is rounded up, so a last window may overhang the bottom/right edge,
    unless it would start past the input and its left padding (PyTorch's rule;
    `archc.ir.shapes.ceil_window_output`). Max pooling ignores the overhang;
    average pooling divides the overhanging window by the cells it covers inside
    the padded input (PyTorch counts explicit padding, not the overhang)."""

    kind: Literal["pool"] = "pool"
    op: Literal["max", "avg"]
    kernel: Pair
    stride: Pair
    padding: Literal["same", "valid"] | Pair = "valid"
    ceil: bool = False

    prefix: ClassVar[str] = "p"
    title: ClassVar[str] = "pooling `P`"

    def infer(self, ins: list[Shape]) -> Shape:
        h, w, c = _spatial(self, ins)
        if isinstance(self.padding, str):
            ph = pw = self.padding
        else:
            if self.padding[0] * 2 > self.kernel[0] or self.padding[1] * 2 > self.kernel[1]:
                raise ShapeError(
                    "explicit pooling padding must be at most half the kernel",
                    hint="PyTorch refuses larger padding for pooling",
                )
            ph, pw = (self.padding[0],) * 2, (self.padding[1],) * 2
        if self.ceil:
            if ph == "same":
                raise ShapeError(
                    "`ceil` pooling needs valid or explicit padding",
                    hint="`same` pooling already rounds up: ceil(n / stride)",
                )
            ph, pw = ((0, 0), (0, 0)) if ph == "valid" else (ph, pw)
            return (
                ceil_window_output(h, self.kernel[0], self.stride[0], ph),
                ceil_window_output(w, self.kernel[1], self.stride[1], pw),
                c,
            )
        return (
            window_output(h, self.kernel[0], self.stride[0], ph),
            window_output(w, self.kernel[1], self.stride[1], pw),
            c,
        )

    def receptive_field(self, ins: RFs) -> RF | None:
        return rf_window(ins, self.kernel, self.stride)

    def kept(self, ins: list[Shape], out: Shape) -> tuple[Kept, ...]:
        """Its (padded) input; max pooling also the index of each maximum (int64)."""
        x = kept_window_input(self, ins)
        return (x, Kept("", size(out), 8)) if self.op == "max" else (x,)

    def describe(self) -> str:
        return (
            f"{self.op}, {self.kernel[0]}*{self.kernel[1]}, {_stride_text(self.stride)}, "
            f"{_pad_text(self.padding)}" + (", ceil" if self.ceil else "")
        )


class GlobalPool(NoWeights, Node):
    """Global pooling to a vector of C, or with `keepdims` to a 1 x 1 x C map
    (Keras `keepdims=True`; what squeeze-and-excitation multiplies back)."""

    kind: Literal["globalpool"] = "globalpool"
    op: Literal["max", "avg"]
    keepdims: bool = False

    prefix: ClassVar[str] = "p"
    title: ClassVar[str] = "global pooling"

    def infer(self, ins: list[Shape]) -> Shape:
        c = _spatial(self, ins)[2]
        return (1, 1, c) if self.keepdims else (c,)

    def receptive_field(self, ins: RFs) -> RF | None:
        return None  # every cell: the whole input

    def kept(self, ins: list[Shape], out: Shape) -> tuple[Kept, ...]:
        """Average: nothing (a mean keeps only sizes); max: its input and the index
        of each maximum (int64)."""
        if self.op == "avg":
            return ()
        return (Kept("in0", size(ins[0])), Kept("", ins[0][-1], 8))

    def describe(self) -> str:
        return f"global {self.op}" + (", keepdims" if self.keepdims else "")


# ---------------------------------------------------------------------------
# Resampling
# ---------------------------------------------------------------------------

Interpolation = Literal["nearest", "bilinear"]


def _rf_resample(r: RF, ratio: tuple[Fraction, Fraction], interpolation: str) -> RF:
    """An output cell at `ratio` = out/in cells per input cell. Nearest copies one
    input cell; bilinear (half-pixel centres, no antialiasing, up or down) mixes
    the 2 neighbouring input cells per axis, so it sees one more cell (one more
    jump) on each axis that is resampled. Neighbours are jump / ratio apart."""
    size = []
    for i in range(2):
        grow = interpolation == "bilinear" and ratio[i] != 1
        size.append(r.size[i] + r.jump[i] if grow else r.size[i])
    return RF.of(size, (r.jump[0] / ratio[0], r.jump[1] / ratio[1]))


class Upsample(NoWeights, Node):
    """Upsampling by an integer factor per axis (Keras `UpSampling2D`). Nearest
    repeats each cell; bilinear interpolates with half-pixel centres (PyTorch's
    align_corners=False), as Keras does. No parameters, no MACs (archc counts
    those of convolutions and dense layers only)."""

    kind: Literal["upsample"] = "upsample"
    factor: Pair
    interpolation: Interpolation = "nearest"

    prefix: ClassVar[str] = "up"
    title: ClassVar[str] = "upsampling `Up`"

    def infer(self, ins: list[Shape]) -> Shape:
        h, w, c = _spatial(self, ins)
        return (h * self.factor[0], w * self.factor[1], c)

    def receptive_field(self, ins: RFs) -> RF | None:
        return _rf_resample(
            ins[0], (Fraction(self.factor[0]), Fraction(self.factor[1])), self.interpolation
        )

    def kept(self, ins: list[Shape], out: Shape) -> tuple[Kept, ...]:
        return ()  # interpolation's backward needs only the sizes

    def describe(self) -> str:
        return f"x{_hw(self.factor)}, {self.interpolation}"


class Resize(NoWeights, Node):
    """Resizing to a fixed height and width (Keras `Resizing`, antialias and
    crop_to_aspect_ratio off; PyTorch `F.interpolate(size=...)`), by any ratio,
    up or down. Nearest takes the input cell under each output cell's centre
    (half-pixel centres: PyTorch's `nearest-exact`); bilinear interpolates the
    two nearest cells per axis with half-pixel centres (align_corners=False),
    without antialiasing when it shrinks."""

    kind: Literal["resize"] = "resize"
    size: Pair
    interpolation: Interpolation = "bilinear"

    prefix: ClassVar[str] = "rs"
    title: ClassVar[str] = "resizing `Resize`"

    def infer(self, ins: list[Shape]) -> Shape:
        _, _, c = _spatial(self, ins)
        return (self.size[0], self.size[1], c)

    def receptive_field(self, ins: RFs) -> RF | None:
        """The ratio out/in per axis from the node's shapes (infer fills them first):
        neighbouring outputs are jump * in / out apart."""
        (h, w, _), (oh, ow, _) = self.in_shapes[0], self.out_shape
        return _rf_resample(ins[0], (Fraction(oh, h), Fraction(ow, w)), self.interpolation)

    def kept(self, ins: list[Shape], out: Shape) -> tuple[Kept, ...]:
        return ()  # interpolation's backward needs only the sizes

    def describe(self) -> str:
        return f"{self.size[0]}*{self.size[1]}, {self.interpolation}"


# ---------------------------------------------------------------------------
# Regularisation and reshaping
# ---------------------------------------------------------------------------


class Dropout(Pointwise, Node):
    """Dropout: the identity at inference, so a pointwise kind."""

    kind: Literal["dropout"] = "dropout"
    rate: float

    prefix: ClassVar[str] = "d"
    title: ClassVar[str] = "dropout `D`"

    def kept(self, ins: list[Shape], out: Shape) -> tuple[Kept, ...]:
        """Its mask, one byte per element (the bool mask of `native_dropout`, which
        PyTorch uses on a GPU; on the CPU it keeps a mask in the input's dtype)."""
        return (Kept("", size(out), 1),)

    def describe(self) -> str:
        return f"{self.rate:g}"


class DropPath(Pointwise, Node):
    """Stochastic depth (drop path): the identity at inference. In training each
    sample's whole tensor is zeroed with probability `rate` and the kept ones are
    scaled by 1/(1 - rate), in both builds (Keras `Dropout(rate, noise_shape=(None,
    1, 1, 1))` as keras.applications EfficientNet writes it; torchvision's
    `StochasticDepth(rate, "row")`)."""

    kind: Literal["droppath"] = "droppath"
    rate: float

    prefix: ClassVar[str] = "dp"
    title: ClassVar[str] = "drop path `DP`"

    def kept(self, ins: list[Shape], out: Shape) -> tuple[Kept, ...]:
        return (Kept("", 1),)  # x * mask: the mask, one value per sample

    def describe(self) -> str:
        return f"{self.rate:g}"


class Flatten(NoWeights, Node):
    """Flattens H x W x C in channels-last (Keras) order."""

    kind: Literal["flatten"] = "flatten"
    prefix: ClassVar[str] = "flatten"
    title: ClassVar[str] = "`Flatten`"

    def infer(self, ins: list[Shape]) -> Shape:
        n = 1
        for d in ins[0]:
            n *= d
        return (n,)

    def receptive_field(self, ins: RFs) -> RF | None:
        return None  # a vector: no spatial field after it

    def kept(self, ins: list[Shape], out: Shape) -> tuple[Kept, ...]:
        return ()

    def is_view(self, ins: list[Shape]) -> bool:
        """Keras's channels-last order is a permute then a flatten: a copy, unless
        the map is 1 x 1 (or already a vector)."""
        return len(ins[0]) == 1 or ins[0][0] * ins[0][1] == 1


class Reshape(NoWeights, Node):
    """Keras `Reshape`: the same values in channels-last order, in the target
    shape (H x W x C or a vector)."""

    kind: Literal["reshape"] = "reshape"
    shape: tuple[int, ...]

    prefix: ClassVar[str] = "reshape"
    title: ClassVar[str] = "`Reshape`"

    def infer(self, ins: list[Shape]) -> Shape:
        size = target = 1
        for d in ins[0]:
            size *= d
        for d in self.shape:
            target *= d
        if size != target:
            raise ShapeError(
                f"`Reshape` to {describe(self.shape)} needs {target} values, "
                f"but its input {describe(ins[0])} has {size}",
            )
        return self.shape

    def receptive_field(self, ins: RFs) -> RF | None:
        return None  # cells move: no field is kept

    def kept(self, ins: list[Shape], out: Shape) -> tuple[Kept, ...]:
        return ()

    def is_view(self, ins: list[Shape]) -> bool:
        """A copy only where a map of more than one cell is read in channels-last order."""
        return len(ins[0]) == 1 or ins[0][0] * ins[0][1] == 1

    def describe(self) -> str:
        return describe(self.shape)


class ZeroPad(NoWeights, Node):
    """Explicit zero padding (top, bottom, left, right)."""

    kind: Literal["zeropad"] = "zeropad"
    pad: tuple[int, int, int, int]

    prefix: ClassVar[str] = "zp"
    title: ClassVar[str] = "zero padding `ZeroPad`"

    def infer(self, ins: list[Shape]) -> Shape:
        h, w, c = _spatial(self, ins)
        t, b, left, right = self.pad
        return (h + t + b, w + left + right, c)

    def receptive_field(self, ins: RFs) -> RF | None:
        return ins[0]  # shifts the grid; each cell still sees one input cell (or a zero)

    def kept(self, ins: list[Shape], out: Shape) -> tuple[Kept, ...]:
        return ()

    def describe(self) -> str:
        return "top {}, bottom {}, left {}, right {}".format(*self.pad)


class Crop(NoWeights, Node):
    """Cropping (top, bottom, left, right) cells off the edges (Keras `Cropping2D`;
    U-Net's skips into valid convolutions)."""

    kind: Literal["crop"] = "crop"
    crop: tuple[int, int, int, int]

    prefix: ClassVar[str] = "crop"
    title: ClassVar[str] = "cropping `Crop`"

    def infer(self, ins: list[Shape]) -> Shape:
        h, w, c = _spatial(self, ins)
        t, b, left, right = self.crop
        if t + b >= h or left + right >= w:
            raise ShapeError(
                f"cropping {t}+{b} rows and {left}+{right} columns leaves nothing of "
                f"{describe(ins[0])}",
                hint="crop less, or crop before an earlier downsampling step",
            )
        return (h - t - b, w - left - right, c)

    def receptive_field(self, ins: RFs) -> RF | None:
        return ins[0]  # drops cells; each remaining cell is its input cell

    def kept(self, ins: list[Shape], out: Shape) -> tuple[Kept, ...]:
        return ()

    def is_view(self, ins: list[Shape]) -> bool:
        return True  # a slice

    def describe(self) -> str:
        return "top {}, bottom {}, left {}, right {}".format(*self.crop)


# ---------------------------------------------------------------------------
# Dense
# ---------------------------------------------------------------------------


class Dense(Node):
    kind: Literal["dense"] = "dense"
    units: int
    activation: str | None = None
    use_bias: bool = True
    init: str | None = None
    bias_init: float | str | None = None
    l2: float | None = None

    prefix: ClassVar[str] = "f"
    macs_rule: ClassVar[str] = "inputs * units"
    title: ClassVar[str] = "`Dense`"

    def infer(self, ins: list[Shape]) -> Shape:
        (x,) = ins
        if len(x) != 1:
            raise ShapeError(
                f"`Dense` needs a vector, but its input is {describe(x)}",
                hint="insert `Flatten` (or global pooling `GAP`) before it",
            )
        return (self.units,)

    def count(self, ins: list[Shape], out: Shape) -> Cost:
        n = ins[0][0]
        return Cost(n * self.units + (self.units if self.use_bias else 0), 0, n * self.units)

    def receptive_field(self, ins: RFs) -> RF | None:
        return None  # reads a vector

    def weights(self, ins: list[Shape]) -> tuple[Weight, ...]:
        kernel = Weight("kernel", "weight", (ins[0][0], self.units), to_torch=(1, 0))
        return (kernel, Weight("bias", "bias", (self.units,))) if self.use_bias else (kernel,)

    def kept(self, ins: list[Shape], out: Shape) -> tuple[Kept, ...]:
        return (Kept("in0", size(ins[0])), *kept_activation(self.activation, out, ""))

    def describe(self) -> str:
        parts = [str(self.units)]
        if self.activation:
            parts.append(self.activation)
        if not self.use_bias:
            parts.append("nobias")
        return ", ".join(parts)


# ---------------------------------------------------------------------------
# Merges (written as `concat { a | b }` and `add { a | b }`)
# ---------------------------------------------------------------------------


class Concat(NoWeights, Node):
    """Concatenation along channels; every input must share H and W."""

    kind: Literal["concat"] = "concat"
    prefix: ClassVar[str] = "cat"
    title: ClassVar[str] = "`concat`"

    def infer(self, ins: list[Shape]) -> Shape:
        ranks = {len(s) for s in ins}
        if ranks == {3}:
            hw = {s[:2] for s in ins}
            if len(hw) != 1:
                raise ShapeError(
                    "concat needs every branch to have the same height and width, but they are "
                    + ", ".join(describe(s) for s in ins),
                    hint="give every branch the same strides and `same` padding",
                )
            return (ins[0][0], ins[0][1], sum(s[2] for s in ins))
        if ranks == {1}:
            return (sum(s[0] for s in ins),)
        raise ShapeError("concat cannot join " + ", ".join(describe(s) for s in ins))

    def receptive_field(self, ins: RFs) -> RF | None:
        return rf_merge(ins)

    def kept(self, ins: list[Shape], out: Shape) -> tuple[Kept, ...]:
        return ()


def _channel_groups(node: Node, ins: list[Shape], groups: int, what: str) -> Shape:
    x = _spatial(node, ins)
    if x[2] % groups:
        raise ShapeError(
            f"{node.title} needs the channels ({x[2]}) to be a multiple of {what} ({groups})",
            hint="give the layer before it a multiple of that many channels",
        )
    return x


class ChannelShuffle(NoWeights, Node):
    """ShuffleNet's channel shuffle: the channels, seen as `groups` groups of C/g,
    are interleaved (channel i*(C/g) + j goes to j*g + i), as torchvision's
    channel_shuffle does in channels-first and its channels-last form (reshape to
    g x C/g, swap, reshape back) in Keras's helper layer `ChannelShuffle`."""

    kind: Literal["shuffle"] = "shuffle"
    groups: int

    prefix: ClassVar[str] = "shuffle"
    title: ClassVar[str] = "channel shuffle `Shuffle`"

    def infer(self, ins: list[Shape]) -> Shape:
        return _channel_groups(self, ins, self.groups, "the groups")

    def receptive_field(self, ins: RFs) -> RF | None:
        return ins[0]  # moves channels, not cells

    def kept(self, ins: list[Shape], out: Shape) -> tuple[Kept, ...]:
        return ()

    def describe(self) -> str:
        return f"{self.groups} groups"


class ChannelSplit(NoWeights, Node):
    """Part `take` (from 0) of the channels cut into `parts` equal parts, in order
    (ShuffleNet v2's split: torch `x.chunk(parts, dim=1)[take]`). A branch that
    starts with `Split(2, 1)` reads the second half."""

    kind: Literal["split"] = "split"
    parts: int
    take: int

    prefix: ClassVar[str] = "split"
    title: ClassVar[str] = "channel split `Split`"

    def infer(self, ins: list[Shape]) -> Shape:
        h, w, c = _channel_groups(self, ins, self.parts, "the parts")
        return (h, w, c // self.parts)

    def receptive_field(self, ins: RFs) -> RF | None:
        return ins[0]  # selects channels, not cells

    def kept(self, ins: list[Shape], out: Shape) -> tuple[Kept, ...]:
        return ()

    def is_view(self, ins: list[Shape]) -> bool:
        return True  # a chunk of the input

    def describe(self) -> str:
        return f"part {self.take} of {self.parts}"


class Add(NoWeights, Node):
    """Element-wise sum (residual connection); every input must have one shape."""

    kind: Literal["add"] = "add"
    prefix: ClassVar[str] = "add"
    title: ClassVar[str] = "`add`"

    def infer(self, ins: list[Shape]) -> Shape:
        if len(set(ins)) != 1:
            hint = "add a projection on the shortcut, e.g. `C(ch*1*1, s2) B`"
            if all(len(s) == 3 for s in ins) and len({s[:2] for s in ins}) == 1:
                hint = "the channels differ: add a 1x1 projection `C(ch*1*1, s1) B` on the shortcut"
            raise ShapeError(
                "add needs every branch to have the same shape, but they are "
                + " and ".join(describe(s) for s in ins),
                hint=hint,
            )
        return ins[0]

    def receptive_field(self, ins: RFs) -> RF | None:
        return rf_merge(ins)

    def kept(self, ins: list[Shape], out: Shape) -> tuple[Kept, ...]:
        return ()


class Mul(NoWeights, Node):
    """Element-wise product (squeeze-and-excitation's gate). Every branch has one
    shape, or a 1 x 1 x C branch scales an H x W x C one channel by channel (Keras
    `Multiply` and PyTorch `*` broadcast it alike). A vector of C against a feature
    map is refused: write `GAP(keepdims)` or `Reshape(1, 1, C)` as Keras's own nets
    do."""

    kind: Literal["mul"] = "mul"
    prefix: ClassVar[str] = "mul"
    title: ClassVar[str] = "`mul`"

    def infer(self, ins: list[Shape]) -> Shape:
        full = {s for s in ins if not (len(s) == 3 and s[:2] == (1, 1))}
        if len(set(ins)) == 1:
            return ins[0]
        if len(full) == 1 and all(len(s) == 3 for s in ins):
            (out,) = full
            if all(s[2] == out[2] for s in ins):
                return out
        hint = "a gate is 1 x 1 x C: write `GAP(keepdims)` or `Reshape(1, 1, C)`"
        if {len(s) for s in ins} == {3} and len({s[2] for s in ins}) > 1:
            hint = "the channels differ: the gate needs as many channels as the map"
        raise ShapeError(
            "mul needs every branch to have one shape, or 1 x 1 x C against H x W x C, "
            "but they are " + " and ".join(describe(s) for s in ins),
            hint=hint,
        )

    def receptive_field(self, ins: RFs) -> RF | None:
        return rf_merge(ins)

    def kept(self, ins: list[Shape], out: Shape) -> tuple[Kept, ...]:
        return tuple(Kept(f"in{k}", size(x)) for k, x in enumerate(ins))  # each factor
