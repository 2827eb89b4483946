"""Every layer kind, in one place each.

A layer kind is one class. It is at once the IR node (an immutable pydantic
model whose fields are the layer's settings) and the home of everything archc
knows about it without a framework:

- `spellings`: how the .cnn language writes it (`C`, `Conv`, ...);
- `bind()`:    how a call's arguments become the node's fields;
- `infer()`:   its shape rule (pure arithmetic in archc/ir/shapes.py);
- `count()`:   its trainable / non-trainable parameters and multiply-accumulates,
               counted exactly as Keras counts them;
- `window()`:  its kernel and stride, for the receptive field.

Classes register themselves by `kind`; the language finds them by spelling
through `SPELLINGS`, the IR union is built from `KINDS`, and each backend keeps
a table from `kind` to its emitter (a test checks that none is missing).
Adding a layer kind means adding one class here and one emitter per backend.
"""


from typing import Any, ClassVar, Literal, Union

from pydantic import BaseModel, ConfigDict

from archc.ir.shapes import Shape, ShapeError, describe, window_output
from archc.language.values import ArgReader, Sym, Tagged, show

Pair = tuple[int, int]

KINDS: dict[str, type["Node"]] = {}
SPELLINGS: dict[str, type["Node"]] = {}

# Activations a Conv or Dense may carry fused (`Dense(10, softmax)`), all
# parameter-free; `A(...)` accepts these and the parameterised ones.
FUSABLE = ("relu", "relu6", "sigmoid", "hard_sigmoid", "tanh", "softmax", "linear",
           "elu", "selu", "gelu", "silu", "softplus")
ACTIVATIONS = FUSABLE + ("leaky_relu", "prelu")
ACTIVATION_ALIASES = {"swish": "silu", "leakyrelu": "leaky_relu", "lrelu": "leaky_relu",
                      "identity": "linear", "none": "linear", "hardsigmoid": "hard_sigmoid",
                      "relu_6": "relu6"}
# Activations of Keras or PyTorch that archc does not have. They are named as what
# they are, never "corrected" into a supported function close in letters
# (`hard_swish` is not `hard_sigmoid`, `celu` not `elu`).
UNSUPPORTED_ACTIVATIONS = {
    "hard_swish": "hard swish", "hardswish": "hard swish", "hard_silu": "hard swish",
    "mish": "mish", "celu": "CELU", "glu": "GLU", "softsign": "softsign",
    "log_softmax": "log-softmax", "logsoftmax": "log-softmax", "exponential": "exponential",
    "hard_tanh": "hard tanh", "hardtanh": "hard tanh", "tanhshrink": "tanh shrink",
    "tanh_shrink": "tanh shrink", "softshrink": "soft shrink", "hardshrink": "hard shrink",
    "rrelu": "randomized leaky ReLU", "log_sigmoid": "log-sigmoid", "logsigmoid": "log-sigmoid",
    "sparse_plus": "sparse plus", "squareplus": "squareplus", "threshold": "threshold",
    "softmin": "softmin", "sparsemax": "sparsemax",
}
# Layers of Keras or PyTorch that archc does not have (lower case), named as what
# they are rather than "corrected" into a different layer (`Cropping2D` is not
# `Conv2D`, `Conv1D` not `Conv2D`).
UNSUPPORTED_LAYERS = {
    **dict.fromkeys(("cropping1d", "cropping2d", "cropping3d"), "cropping is not supported"),
    **dict.fromkeys(("conv1d", "conv3d"), "1-D and 3-D convolutions are not supported"),
    **dict.fromkeys(("conv2dtranspose", "convtranspose2d", "deconv", "deconv2d"),
                    "transposed convolutions are not supported"),
    **dict.fromkeys(("depthwiseconv2d", "separableconv2d"),
                    "depthwise and separable convolutions are not supported"),
    **dict.fromkeys(("upsampling2d", "upsample", "upsamplingnearest2d",
                     "upsamplingbilinear2d", "resizing"), "upsampling is not supported"),
    **dict.fromkeys(("layernormalization", "layernorm", "groupnormalization", "groupnorm",
                     "instancenorm2d", "unitnormalization"),
                    "the only normalisations are `B` and `LRN`"),
    **dict.fromkeys(("reshape", "permute", "repeatvector", "unflatten"), "the only reshaping is `Flatten`"),
    **dict.fromkeys(("multiply", "subtract", "average", "maximum", "minimum", "dot"),
                    "the merges are `concat { a | b }` and `add { a | b }`"),
    **dict.fromkeys(("embedding", "lstm", "gru", "simplernn", "rnn", "attention",
                     "multiheadattention", "transformer"), "sequence layers are not supported"),
    **dict.fromkeys(("maxpool1d", "maxpooling1d", "avgpool1d", "averagepooling1d",
                     "maxpool3d", "maxpooling3d", "avgpool3d", "averagepooling3d",
                     "globalaveragepooling1d", "globalmaxpooling1d"),
                    "1-D and 3-D pooling are not supported"),
    **dict.fromkeys(("spatialdropout2d", "alphadropout", "gaussiandropout",
                     "gaussiannoise", "dropout2d"), "the only dropout is `D(rate)`"),
}


def unknown_layer_hint(name: str, blocks) -> str | None:
    """What to say about a call of an unknown layer `name`: what it is if archc
    knows it under another form or knows it is missing, else a misspelling of a
    layer or block, else None."""
    low = name.lower()
    act = ACTIVATION_ALIASES.get(low, low)
    if act in ACTIVATIONS:
        return f"activations are written `A({act})`"
    if act in UNSUPPORTED_ACTIVATIONS:
        return f"archc does not support the {UNSUPPORTED_ACTIVATIONS[act]} activation"
    if low in UNSUPPORTED_LAYERS:
        return f"archc has no `{name}` ({UNSUPPORTED_LAYERS[low]})"
    from archc.diagnostics import did_you_mean

    suggestion = did_you_mean(name, list(SPELLINGS) + list(blocks))
    return f"did you mean `{suggestion}`?" if suggestion else None
# Keras's defaults for the activations that take a parameter.
DEFAULT_ALPHA = {"leaky_relu": 0.3, "elu": 1.0}
YES = ("Yes", "yes", "Y", "True", "true", "on")
NO = ("None", "none", "No", "no", "N", "False", "false", "off")


class Loc(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)
    file: str
    line: int
    col: int


class RF(BaseModel):
    """Receptive field of one output cell on the input, and the input-pixel distance
    between neighbouring output cells (jump), per axis (height, width)."""

    model_config = ConfigDict(frozen=True, defer_build=True)
    size: Pair
    jump: Pair


class Node(BaseModel):
    """Fields common to every IR node. Shapes and counts are filled in by inference."""

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

    spellings: ClassVar[tuple[str, ...]] = ()
    prefix: ClassVar[str] = "n"
    title: ClassVar[str] = "layer"
    options: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def __pydantic_init_subclass__(cls, **kw: Any) -> None:
        kind = cls.model_fields["kind"].default
        if isinstance(kind, str) and kind:
            KINDS[kind] = cls
            for s in cls.spellings:
                SPELLINGS[s] = cls

    # -- language
    @classmethod
    def bind(cls, r: ArgReader, spelled: str) -> list[tuple[type["Node"], dict]]:
        r.finish()
        return [(cls, {})]

    # -- rules
    def infer(self, ins: list[Shape]) -> Shape:
        return ins[0]

    def count(self, ins: list[Shape], out: Shape) -> tuple[int, int, int]:
        """(trainable, non-trainable, MACs)."""
        return 0, 0, 0

    def window(self) -> tuple[Pair, Pair] | None | Literal["global"]:
        """(effective kernel, stride) for the receptive field; None: unchanged."""
        return None

    def describe(self) -> str:
        return ""

    @property
    def params(self) -> int:
        return self.trainable + self.nontrainable


def _spatial(node: Node, ins: list[Shape]) -> Shape:
    (x,) = ins
    if len(x) != 3:
        raise ShapeError(
            f"{node.title} needs a feature map (H x W x C), but its input is {describe(x)}",
            hint="spatial layers must come before `Flatten` or global pooling")
    return x


def _pair(r: ArgReader, value: Any, what: str, span) -> Pair:
    if isinstance(value, bool):
        raise r.fail(f"{what} must be an integer", span, received=show(value))
    if isinstance(value, int) and value >= 1:
        return value, value
    if isinstance(value, Tagged) and value.tag == "stride" and what == "stride":
        value = value.value
    if isinstance(value, tuple) and len(value) in (1, 2) and all(
            isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value):
        return (value[0], value[-1])
    raise r.fail(f"{what} must be a positive integer or two of them", span, received=show(value))


def _padding_value(r: ArgReader, value: Any, span) -> str | Pair:
    if isinstance(value, Sym) and value.name.lower() in ("same", "valid"):
        return value.name.lower()
    if isinstance(value, Tagged) and value.tag == "pad":
        v = value.value
        return (v[0], v[-1])
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return (value, value)
    raise r.fail("padding must be `same`, `valid`, or explicit zeros such as `p1`", span,
                 received=show(value), code="E307")


def _activation_name(r: ArgReader, value: Any, span, fusable_only: bool) -> str:
    name = value.name if isinstance(value, Sym) else None
    if name is not None:
        name = ACTIVATION_ALIASES.get(name.lower(), name.lower())
    allowed = FUSABLE if fusable_only else ACTIVATIONS
    if name in allowed:
        return name
    from archc.diagnostics import did_you_mean

    written = value.name if isinstance(value, Sym) else show(value)
    hint = did_you_mean(written, allowed)
    if fusable_only and name in ACTIVATIONS:
        hint_text = f"write `{name}` as its own layer: `A({name})`"
    elif name in UNSUPPORTED_ACTIVATIONS:
        raise r.fail(f"archc does not support the {UNSUPPORTED_ACTIVATIONS[name]} activation "
                     f"`{written}`", span, code="E307", expected=", ".join(allowed))
    else:
        hint_text = f"did you mean `{hint}`?" if hint else None
    raise r.fail(f"unknown activation `{written}`", span, code="E307",
                 expected=", ".join(allowed), hint=hint_text)


def _weights_options(r: ArgReader) -> dict:
    """Initialisers and L2 weight decay, shared by Conv and Dense."""
    out: dict = {}
    if (a := r.take("init")) is not None:
        out["init"] = r.symbol(a.value, "initializer", INITIALIZERS)
    if (a := r.take("bias_init")) is not None:
        v = r.value(a.value)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            out["bias_init"] = float(v)
        else:
            out["bias_init"] = r.symbol(a.value, "initializer", INITIALIZERS)
    if (a := r.take("l2")) is not None:
        out["l2"] = r.number(a.value, "L2 weight decay", lo=0.0)
    return out


INITIALIZERS = ("glorot_uniform", "glorot_normal", "he_normal", "he_uniform",
                "lecun_normal", "lecun_uniform", "zeros", "ones", "orthogonal")


# ---------------------------------------------------------------------------
# Input
# ---------------------------------------------------------------------------


class Input(Node):
    kind: Literal["input"] = "input"
    shape: tuple[int, ...]
    prefix: ClassVar[str] = "input"
    title: ClassVar[str] = "input"

    def infer(self, ins: list[Shape]) -> Shape:
        return self.shape

    def describe(self) -> str:
        return describe(self.shape)


# ---------------------------------------------------------------------------
# Convolution
# ---------------------------------------------------------------------------


class Conv2D(Node):
    """2-D convolution. Output size per axis: see `archc.ir.shapes.window_output`."""

    kind: Literal["conv"] = "conv"
    filters: int
    kernel: Pair
    stride: Pair = (1, 1)
    padding: Literal["same", "valid"] | Pair = "valid"
    dilation: Pair = (1, 1)
    use_bias: bool = True
    activation: str | None = None
    init: str | None = None
    bias_init: float | str | None = None
    l2: float | None = None

    spellings: ClassVar[tuple[str, ...]] = ("C", "Conv", "Conv2D")
    prefix: ClassVar[str] = "c"
    title: ClassVar[str] = "convolution `C`"
    options: ClassVar[tuple[str, ...]] = ("kernel", "filters", "stride", "padding", "dilation",
                                          "bias", "activation", "init", "bias_init", "l2")

    @classmethod
    def bind(cls, r: ArgReader, spelled: str) -> list[tuple[type[Node], dict]]:
        f: dict = {}
        first = r.next_pos()
        kernel = r.take("kernel")
        filters = r.take("filters")
        if kernel is not None and first is not None:
            r.pos.insert(0, first)  # the first positional is then an option
            first = None
        kexpr = kernel.value if kernel is not None else first.value if first is not None else None
        if kexpr is None:
            raise r.fail(f"{cls.title} needs its kernel: `C(filters*kh*kw, ...)`",
                         code="E303", hint="for example `C(6*5*5, s1, same)`")
        if filters is not None:
            f["filters"] = r.positive_int(filters.value, "the number of filters")
            k = r.dims(kexpr, (1, 2), "kernel size kh*kw")
            f["kernel"] = (k[0], k[-1])
        else:
            n, kh, kw = r.dims(kexpr, (3,), "filters*kh*kw")
            f["filters"], f["kernel"] = n, (kh, kw)
        for a in list(r.pos):
            v = r.value(a.value)
            if isinstance(v, Tagged) and v.tag == "stride":
                _once(r, f, "stride", _pair(r, v, "stride", a.span), a.span)
            elif isinstance(v, Tagged) and v.tag == "pad" or (
                    isinstance(v, Sym) and v.name.lower() in ("same", "valid")):
                _once(r, f, "padding", _padding_value(r, v, a.span), a.span)
            elif isinstance(v, Sym) and v.name in ("nobias", "no_bias"):
                _once(r, f, "use_bias", False, a.span)
            elif isinstance(v, Sym) and ACTIVATION_ALIASES.get(v.name.lower(),
                                                               v.name.lower()) in ACTIVATIONS:
                _once(r, f, "activation", _activation_name(r, v, a.span, True), a.span)
            elif isinstance(v, Sym) and v.name.lower() in UNSUPPORTED_ACTIVATIONS:
                _activation_name(r, v, a.span, True)  # says it is not supported
            elif isinstance(v, Sym):
                from archc.diagnostics import did_you_mean

                choices = ("same", "valid", "nobias") + FUSABLE
                guess = did_you_mean(v.name, choices)
                raise r.fail(f"{cls.title} has no option `{v.name}`", a.span, code="E307",
                             expected="a stride `s2`, padding `same`/`valid`/`p1`, `nobias`, "
                             "or an activation such as `relu`",
                             hint=f"did you mean `{guess}`?" if guess else None)
            else:
                raise r.fail(f"{cls.title} does not understand `{show(v)}` here", a.span,
                             code="E301", expected="a stride `s2`, padding `same`/`valid`/`p1`, "
                             "`nobias`, or an activation",
                             hint="the filters and kernel come first: `C(64*3*3, s1, same)`")
            r.pos.remove(a)
        if (a := r.take("stride")) is not None:
            _once(r, f, "stride", _pair(r, r.value(a.value), "stride", a.span), a.span)
        if (a := r.take("padding")) is not None:
            _once(r, f, "padding", _padding_value(r, r.value(a.value), a.span), a.span)
        if (a := r.take("dilation")) is not None:
            f["dilation"] = _pair(r, r.value(a.value), "dilation", a.span)
        if (a := r.take("bias")) is not None:
            v = r.value(a.value)
            f["use_bias"] = _yes_no(r, v, a.span)
        if (a := r.take("activation")) is not None:
            _once(r, f, "activation", _activation_name(r, r.value(a.value), a.span, True), a.span)
        f.update(_weights_options(r))
        if f.get("dilation", (1, 1)) != (1, 1) and f.get("stride", (1, 1)) != (1, 1):
            raise r.fail("a convolution cannot have both a stride and a dilation above 1",
                         hint="Keras's Conv2D refuses strides > 1 together with "
                         "dilation_rate > 1 (PyTorch accepts it), and the spec must build "
                         "in both")
        r.finish()
        return [(cls, f)]

    def _pads(self) -> tuple[str | Pair, str | Pair]:
        if isinstance(self.padding, str):
            return self.padding, self.padding
        ph, pw = self.padding
        return (ph, ph), (pw, pw)

    def infer(self, ins: list[Shape]) -> Shape:
        h, w, _ = _spatial(self, ins)
        ph, pw = self._pads()
        return (window_output(h, self.kernel[0], self.stride[0], ph, self.dilation[0]),
                window_output(w, self.kernel[1], self.stride[1], pw, self.dilation[1]),
                self.filters)

    def count(self, ins: list[Shape], out: Shape) -> tuple[int, int, int]:
        cin = ins[0][2]
        kh, kw = self.kernel
        weights = kh * kw * cin * self.filters
        bias = self.filters if self.use_bias else 0
        return weights + bias, 0, out[0] * out[1] * self.filters * kh * kw * cin

    def window(self):
        kh = self.dilation[0] * (self.kernel[0] - 1) + 1
        kw = self.dilation[1] * (self.kernel[1] - 1) + 1
        return (kh, kw), self.stride

    def describe(self) -> str:
        parts = [f"{self.filters}*{self.kernel[0]}*{self.kernel[1]}", _stride_text(self.stride),
                 _pad_text(self.padding)]
        if self.dilation != (1, 1):
            parts.append(f"dilation {_hw(self.dilation)}")
        if not self.use_bias:
            parts.append("nobias")
        if self.activation:
            parts.append(self.activation)
        return ", ".join(parts)


def _hw(p: Pair) -> str:
    return str(p[0]) if p[0] == p[1] else f"({p[0]},{p[1]})"


def _stride_text(s: Pair) -> str:
    return f"s{_hw(s)}"


def _pad_text(p: str | Pair) -> str:
    return p if isinstance(p, str) else f"p{_hw(p)}"


def _once(r: ArgReader, f: dict, key: str, value: Any, span) -> None:
    if key in f:
        raise r.fail(f"{key.replace('_', ' ')} is given twice", span, code="E306")
    f[key] = value


def _yes_no(r: ArgReader, v: Any, span) -> bool:
    if isinstance(v, Sym) and v.name in YES:
        return True
    if isinstance(v, Sym) and v.name in NO:
        return False
    if isinstance(v, int) and not isinstance(v, bool) and v in (0, 1):
        return bool(v)
    raise r.fail("expected yes or no", span, received=show(v), code="E307")


# ---------------------------------------------------------------------------
# Normalisation
# ---------------------------------------------------------------------------


class BatchNorm(Node):
    """Batch normalisation over the last axis. Keras conventions: epsilon 1e-3,
    moving-average momentum 0.99. Parameters: gamma and beta trainable, moving
    mean and variance non-trainable (2C + 2C, as Keras counts them)."""

    kind: Literal["batchnorm"] = "batchnorm"
    epsilon: float = 1e-3
    momentum: float = 0.99

    spellings: ClassVar[tuple[str, ...]] = ("B", "BN", "BatchNorm", "BatchNormalization")
    prefix: ClassVar[str] = "b"
    title: ClassVar[str] = "batch norm `B`"
    options: ClassVar[tuple[str, ...]] = ("epsilon", "momentum")

    @classmethod
    def bind(cls, r: ArgReader, spelled: str) -> list[tuple[type[Node], dict]]:
        present = True
        a = r.next_pos()
        if a is not None:
            present = _yes_no(r, r.value(a.value), a.span)
        # `B (Yes, LRN*)`: the slides' footnote that the course used BN where the
        # paper used LRN. It is informative; the layer is a batch norm.
        f: dict = {}
        if (e := r.take("epsilon")) is not None:
            f["epsilon"] = r.number(e.value, "epsilon", lo=0.0)
            if f["epsilon"] <= 0:
                raise r.fail("epsilon must be positive", e.span)
        if (m := r.take("momentum")) is not None:
            f["momentum"] = r.number(m.value, "momentum", lo=0.0, hi=1.0)
        r.finish()
        return [(cls, f)] if present else []

    def count(self, ins: list[Shape], out: Shape) -> tuple[int, int, int]:
        c = ins[0][-1]
        return 2 * c, 2 * c, 0

    def describe(self) -> str:
        parts = []
        if self.epsilon != 1e-3:
            parts.append(f"eps {self.epsilon:g}")
        if self.momentum != 0.99:
            parts.append(f"momentum {self.momentum:g}")
        return ", ".join(parts)


class LRN(Node):
    """Local response normalisation as in the AlexNet paper:
    b_c = a_c / (k + alpha * sum_{c' within depth/2 of c} a_c'^2) ** beta.
    `alpha` multiplies the plain sum (TensorFlow's convention; PyTorch divides
    its alpha by the window size, which the torch backend accounts for)."""

    kind: Literal["lrn"] = "lrn"
    depth: int = 5
    alpha: float = 1e-4
    beta: float = 0.75
    bias_k: float = 2.0

    spellings: ClassVar[tuple[str, ...]] = ("LRN",)
    prefix: ClassVar[str] = "lrn"
    title: ClassVar[str] = "local response normalisation `LRN`"
    options: ClassVar[tuple[str, ...]] = ("depth", "alpha", "beta", "bias_k", "kernel")

    @classmethod
    def bind(cls, r: ArgReader, spelled: str) -> list[tuple[type[Node], dict]]:
        f: dict = {}
        a = r.next_pos()
        if a is not None:
            v = r.value(a.value)
            if isinstance(v, Sym):
                if not _yes_no(r, v, a.span):
                    r.finish()
                    return []
            else:
                f["depth"] = r.positive_int(a.value, "the LRN window (depth)")
        for key in ("depth", "kernel"):
            if (a := r.take(key)) is not None:
                _once(r, f, "depth", r.positive_int(a.value, "the LRN window (depth)"), a.span)
        if f.get("depth", 5) % 2 == 0:
            raise r.fail("the LRN window must be odd (it is centred on each channel)")
        if (a := r.take("alpha")) is not None:
            f["alpha"] = r.number(a.value, "alpha", lo=0.0)
        if (a := r.take("beta")) is not None:
            f["beta"] = r.number(a.value, "beta", lo=0.0)
        if (a := r.take("bias_k")) is not None:
            f["bias_k"] = r.number(a.value, "k", lo=0.0)
        r.finish()
        return [(cls, f)]

    def infer(self, ins: list[Shape]) -> Shape:
        return _spatial(self, ins)

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

    spellings: ClassVar[tuple[str, ...]] = ("A", "Activation", "ReLU", "PReLU", "LeakyReLU",
                                            "Softmax")
    prefix: ClassVar[str] = "a"
    title: ClassVar[str] = "activation `A`"
    options: ClassVar[tuple[str, ...]] = ("activation", "alpha")

    @classmethod
    def bind(cls, r: ArgReader, spelled: str) -> list[tuple[type[Node], dict]]:
        fixed = {"ReLU": "relu", "PReLU": "prelu", "LeakyReLU": "leaky_relu",
                 "Softmax": "softmax"}.get(spelled)
        f: dict = {}
        if fixed is not None:
            f["fn"] = fixed
        else:
            a = r.next_pos() or r.take("activation")
            if a is None:
                raise r.fail("`A` needs the activation: `A(relu)`", code="E303",
                             expected=", ".join(ACTIVATIONS))
            v = r.value(a.value)
            if isinstance(v, Sym) and v.name in NO:
                r.finish()
                return []
            f["fn"] = _activation_name(r, v, a.span, False)
        alpha = r.next_pos() or r.take("alpha")
        if alpha is not None:
            if f["fn"] not in ("leaky_relu", "elu"):
                raise r.fail(f"`{f['fn']}` takes no alpha", alpha.span, code="E301",
                             hint="only leaky_relu (slope) and elu take one")
            f["alpha"] = r.number(alpha.value, "alpha", lo=0.0)
        elif f["fn"] in DEFAULT_ALPHA:
            f["alpha"] = DEFAULT_ALPHA[f["fn"]]
        r.finish()
        return [(cls, f)]

    def count(self, ins: list[Shape], out: Shape) -> tuple[int, int, int]:
        if self.fn == "prelu":
            return ins[0][-1], 0, 0
        return 0, 0, 0

    def describe(self) -> str:
        return self.fn + (f", {self.alpha:g}" if self.alpha is not None else "")


# ---------------------------------------------------------------------------
# Pooling
# ---------------------------------------------------------------------------


class Pool(Node):
    """Max or average pooling. Stride defaults to the kernel (Keras). `same`
    max pooling ignores padded cells; `same` average pooling divides by the
    number of real cells; explicit padding is PyTorch's (-inf for max)."""

    kind: Literal["pool"] = "pool"
    op: Literal["max", "avg"]
    kernel: Pair
    stride: Pair
    padding: Literal["same", "valid"] | Pair = "valid"

    spellings: ClassVar[tuple[str, ...]] = ("P", "Pool", "MaxPool", "AvgPool", "MaxPool2D",
                                            "AvgPool2D")
    prefix: ClassVar[str] = "p"
    title: ClassVar[str] = "pooling `P`"
    options: ClassVar[tuple[str, ...]] = ("kernel", "stride", "padding")

    @classmethod
    def bind(cls, r: ArgReader, spelled: str) -> list[tuple[type[Node], dict]]:
        op = {"MaxPool": "max", "MaxPool2D": "max", "AvgPool": "avg", "AvgPool2D": "avg"}.get(
            spelled)
        if op is None:
            a = r.next_pos()
            if a is None:
                raise r.fail("`P` needs the kind of pooling: `P(max, 2, 2)`", code="E303",
                             expected="max, avg, gavg, gmax")
            v = r.value(a.value)
            if isinstance(v, Sym) and v.name in NO:
                r.finish()
                return []
            op = r.symbol(a.value, "pooling", ("max", "avg", "gavg", "gmax"))
            if op in ("gavg", "gmax"):
                r.finish()
                return [(GlobalPool, {"op": op[1:]})]
        f: dict = {"op": op}
        kexpr = None
        a = r.next_pos()
        if a is not None:
            v = r.value(a.value)
            if isinstance(v, (Tagged, Sym)):
                r.pos.insert(0, a)
            else:
                kexpr = a.value
        if (k := r.take("kernel")) is not None:
            if kexpr is not None:
                raise r.fail("the pooling kernel is given twice", k.span, code="E306")
            kexpr = k.value
        if kexpr is None:
            raise r.fail(f"{cls.title} needs its kernel size: `P({op}, 2, 2)`", code="E303")
        k = r.dims(kexpr, (1, 2), "kernel size k or kh*kw")
        f["kernel"] = (k[0], k[-1])
        for a in list(r.pos):
            v = r.value(a.value)
            if isinstance(v, Tagged) and v.tag == "stride" or (
                    isinstance(v, int) and not isinstance(v, bool) and "stride" not in f):
                _once(r, f, "stride", _pair(r, v, "stride", a.span), a.span)
            elif isinstance(v, (Sym, Tagged)):
                _once(r, f, "padding", _padding_value(r, v, a.span), a.span)
            else:
                raise r.fail(f"{cls.title} does not understand `{show(v)}` here", a.span,
                             code="E301", expected="stride, then padding")
            r.pos.remove(a)
        if (a := r.take("stride")) is not None:
            _once(r, f, "stride", _pair(r, r.value(a.value), "stride", a.span), a.span)
        if (a := r.take("padding")) is not None:
            _once(r, f, "padding", _padding_value(r, r.value(a.value), a.span), a.span)
        f.setdefault("stride", f["kernel"])
        r.finish()
        return [(cls, f)]

    def infer(self, ins: list[Shape]) -> Shape:
        h, w, c = _spatial(self, ins)
        if isinstance(self.padding, str):
            ph = pw = self.padding
        else:
            if self.padding[0] * 2 > self.kernel[0] or self.padding[1] * 2 > self.kernel[1]:
                raise ShapeError("explicit pooling padding must be at most half the kernel",
                                 hint="PyTorch refuses larger padding for pooling")
            ph, pw = (self.padding[0],) * 2, (self.padding[1],) * 2
        return (window_output(h, self.kernel[0], self.stride[0], ph),
                window_output(w, self.kernel[1], self.stride[1], pw), c)

    def window(self):
        return self.kernel, self.stride

    def describe(self) -> str:
        return (f"{self.op}, {self.kernel[0]}*{self.kernel[1]}, {_stride_text(self.stride)}, "
                f"{_pad_text(self.padding)}")


class GlobalPool(Node):
    kind: Literal["globalpool"] = "globalpool"
    op: Literal["max", "avg"]

    spellings: ClassVar[tuple[str, ...]] = ("GAP", "GMP", "GlobalAvgPool", "GlobalMaxPool")
    prefix: ClassVar[str] = "p"
    title: ClassVar[str] = "global pooling"

    @classmethod
    def bind(cls, r: ArgReader, spelled: str) -> list[tuple[type[Node], dict]]:
        r.finish()
        return [(cls, {"op": "max" if spelled in ("GMP", "GlobalMaxPool") else "avg"})]

    def infer(self, ins: list[Shape]) -> Shape:
        return (_spatial(self, ins)[2],)

    def window(self):
        return "global"

    def describe(self) -> str:
        return f"global {self.op}"


# ---------------------------------------------------------------------------
# Regularisation and reshaping
# ---------------------------------------------------------------------------


class Dropout(Node):
    kind: Literal["dropout"] = "dropout"
    rate: float

    spellings: ClassVar[tuple[str, ...]] = ("D", "Dropout")
    prefix: ClassVar[str] = "d"
    title: ClassVar[str] = "dropout `D`"
    options: ClassVar[tuple[str, ...]] = ("rate",)

    @classmethod
    def bind(cls, r: ArgReader, spelled: str) -> list[tuple[type[Node], dict]]:
        a = r.next_pos() or r.take("rate")
        if a is None:
            raise r.fail("`D` needs the dropout rate: `D(0.2)`", code="E303")
        v = r.value(a.value)
        r.finish()
        if isinstance(v, Sym) and v.name in NO:
            return []
        return [(cls, {"rate": r.number(a.value, "the dropout rate", 0.0, 1.0, hi_open=True)})]

    def describe(self) -> str:
        return f"{self.rate:g}"


class Flatten(Node):
    """Flattens H x W x C in channels-last (Keras) order."""

    kind: Literal["flatten"] = "flatten"
    spellings: ClassVar[tuple[str, ...]] = ("Flatten",)
    prefix: ClassVar[str] = "flatten"
    title: ClassVar[str] = "`Flatten`"

    def infer(self, ins: list[Shape]) -> Shape:
        n = 1
        for d in ins[0]:
            n *= d
        return (n,)

    def window(self):
        return "global"


class ZeroPad(Node):
    """Explicit zero padding (top, bottom, left, right)."""

    kind: Literal["zeropad"] = "zeropad"
    pad: tuple[int, int, int, int]

    spellings: ClassVar[tuple[str, ...]] = ("ZeroPad", "ZP", "ZeroPadding2D")
    prefix: ClassVar[str] = "zp"
    title: ClassVar[str] = "zero padding `ZeroPad`"

    @classmethod
    def bind(cls, r: ArgReader, spelled: str) -> list[tuple[type[Node], dict]]:
        vals = []
        while (a := r.next_pos()) is not None:
            vals.append(r.positive_int(a.value, "padding", allow_zero=True))
        r.finish()
        if len(vals) == 1:
            pad = (vals[0],) * 4
        elif len(vals) == 2:
            pad = (vals[0], vals[0], vals[1], vals[1])
        elif len(vals) == 4:
            pad = tuple(vals)
        else:
            raise r.fail("`ZeroPad` takes 1 (all sides), 2 (height, width) or 4 "
                         "(top, bottom, left, right) integers", code="E303",
                         received=f"{len(vals)} values")
        return [(cls, {"pad": pad})]

    def infer(self, ins: list[Shape]) -> Shape:
        h, w, c = _spatial(self, ins)
        t, b, left, right = self.pad
        return (h + t + b, w + left + right, c)

    def window(self):
        return (1, 1), (1, 1)

    def describe(self) -> str:
        return "top {}, bottom {}, left {}, right {}".format(*self.pad)


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

    spellings: ClassVar[tuple[str, ...]] = ("Dense", "FC", "Linear")
    prefix: ClassVar[str] = "f"
    title: ClassVar[str] = "`Dense`"
    options: ClassVar[tuple[str, ...]] = ("units", "activation", "dropout", "bias", "init",
                                          "bias_init", "l2")

    @classmethod
    def bind(cls, r: ArgReader, spelled: str) -> list[tuple[type[Node], dict]]:
        a = r.next_pos() or r.take("units")
        if a is None:
            raise r.fail("`Dense` needs its number of units: `Dense(128, relu)`", code="E303")
        f: dict = {"units": r.positive_int(a.value, "the number of units")}
        for p in list(r.pos):  # `nobias` and the activation, in either order, as `C(...)`
            v = r.value(p.value)
            if isinstance(v, Sym) and v.name in ("nobias", "no_bias"):
                r.pos.remove(p)
                _once(r, f, "use_bias", False, p.span)
            elif "activation" not in f:
                r.pos.remove(p)
                f["activation"] = _activation_name(r, v, p.span, True)
        if (act := r.take("activation")) is not None:
            _once(r, f, "activation", _activation_name(r, r.value(act.value), act.span, True),
                  act.span)
        if (b := r.take("bias")) is not None:
            _once(r, f, "use_bias", _yes_no(r, r.value(b.value), b.span), b.span)
        f.update(_weights_options(r))
        out: list[tuple[type[Node], dict]] = [(cls, f)]
        # The slides' long form `Dense (神经元: 128, 激活: relu, Dropout: 0.2)`
        # is a Dense followed by a Dropout.
        if (d := r.take("dropout")) is not None:
            v = r.value(d.value)
            if not (isinstance(v, Sym) and v.name in NO):
                out.append((Dropout, {"rate": r.number(d.value, "the dropout rate", 0.0, 1.0,
                                                        hi_open=True)}))
        r.finish()
        return out

    def infer(self, ins: list[Shape]) -> Shape:
        (x,) = ins
        if len(x) != 1:
            raise ShapeError(f"`Dense` needs a vector, but its input is {describe(x)}",
                             hint="insert `Flatten` (or global pooling `GAP`) before it")
        return (self.units,)

    def count(self, ins: list[Shape], out: Shape) -> tuple[int, int, int]:
        n = ins[0][0]
        return n * self.units + (self.units if self.use_bias else 0), 0, n * self.units

    def window(self):
        return "global"

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


class Concat(Node):
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
                    hint="give every branch the same strides and `same` padding")
            return (ins[0][0], ins[0][1], sum(s[2] for s in ins))
        if ranks == {1}:
            return (sum(s[0] for s in ins),)
        raise ShapeError("concat cannot join " + ", ".join(describe(s) for s in ins))

    def window(self):
        return None


class Add(Node):
    """Element-wise sum (residual connection); every input must have one shape."""

    kind: Literal["add"] = "add"
    prefix: ClassVar[str] = "add"
    title: ClassVar[str] = "`add`"

    def infer(self, ins: list[Shape]) -> Shape:
        if len(set(ins)) != 1:
            hint = "add a projection on the shortcut, e.g. `C(ch*1*1, s2) B`"
            if all(len(s) == 3 for s in ins) and len({s[:2] for s in ins}) == 1:
                hint = "the channels differ: add a 1x1 projection `C(ch*1*1, s1) B` on the shortcut"
            raise ShapeError("add needs every branch to have the same shape, but they are "
                             + " and ".join(describe(s) for s in ins), hint=hint)
        return ins[0]


AnyNode = Union[tuple(KINDS.values())]  # type: ignore[valid-type]
