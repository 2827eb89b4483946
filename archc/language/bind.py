"""Binding: how a layer call's arguments become an IR kind's fields.

`C(64*3*3, s2, same, relu)` is text; `Conv2D(filters=64, kernel=(3, 3), stride=(2, 2),
padding="same", activation="relu")` is IR (archc/ir/kinds.py). Each binder below is
registered with `@binds(Kind, spellings..., options=...)`: the spellings the language
accepts for the kind, the labelled options it takes (`stride:`, `步长:`; the label
synonyms are archc/language/values.LABELS), and the function that reads the call's
arguments through an `ArgReader` and returns the nodes the call makes (usually one;
`Dense(..., dropout: 0.2)` makes two, `B(No)` none). An argument a binder does not
take is the user's error, reported by `ArgReader.finish()`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from archc.diagnostics import did_you_mean
from archc.ir.kinds import (
    ACTIVATIONS,
    DEFAULT_ALPHA,
    FUSABLE,
    INITIALIZERS,
    LRN,
    Activation,
    Add,
    BatchNorm,
    ChannelShuffle,
    ChannelSplit,
    Concat,
    Conv2D,
    Conv2DTranspose,
    Crop,
    Dense,
    DepthwiseConv2D,
    Dropout,
    DropPath,
    Flatten,
    GlobalPool,
    GroupNorm,
    Input,
    LayerNorm,
    LayerScale,
    Mul,
    Node,
    Normalization,
    Pair,
    Pool,
    Rescaling,
    Reshape,
    Resize,
    SeparableConv2D,
    Upsample,
    ZeroPad,
)
from archc.language.values import ArgReader, Sym, Tagged, show

Made = list[tuple[type[Node], dict]]  # the nodes a call makes: kind and fields


class Binder(NamedTuple):
    kind: type[Node]  # the kind the call makes (its title names it in messages)
    spellings: tuple[str, ...]
    options: tuple[str, ...]
    bind: Callable[[ArgReader, str], Made]


SPELLINGS: dict[str, Binder] = {}  # every spelling of every layer kind
BINDERS: dict[str, Binder] = {}  # by IR kind; input, concat and add are syntax, not calls


def binds(kind: type[Node], *spellings: str, options: tuple[str, ...] = ()):
    def register(fn: Callable[[ArgReader, str], Made]) -> Callable[[ArgReader, str], Made]:
        b = Binder(kind, spellings, options, fn)
        for s in spellings:
            if s in SPELLINGS:
                raise TypeError(f"`{s}` spells two layer kinds")
            SPELLINGS[s] = b
        BINDERS[kind.model_fields["kind"].default] = b
        return fn

    return register


# Each kind's speller, next to its binder: the call text that binds back to exactly
# the node's fields (archc/language/decompile.py prints specs with them). Every field
# that differs from the binder's default is written; a field the language cannot
# write is an error, never left out.
Speller = Callable[[Node], str]
SPELLERS: dict[str, Speller] = {}  # by IR kind, every kind in KINDS


def spells(kind: type[Node]):
    def register(fn: Speller) -> Speller:
        name = kind.model_fields["kind"].default
        if name in SPELLERS:
            raise TypeError(f"two spellers for `{name}`")
        SPELLERS[name] = fn
        return fn

    return register


def spell(node: Node) -> str:
    """The call text of `node` (for a merge, its keyword; for the input, its line)."""
    return SPELLERS[node.kind](node)


def _call(name: str, args: list[str]) -> str:
    return f"{name}({', '.join(args)})" if args else name


def _num(x: float) -> str:
    """A number as the language reads it back exactly (repr is the shortest
    text that gives the same float)."""
    if isinstance(x, bool):
        raise TypeError(f"{x!r} is not a number")
    if isinstance(x, int):
        return str(x)
    text = repr(float(x))
    if text in ("inf", "-inf", "nan"):
        raise ValueError(f"{text} cannot be written in a spec")
    return text


def _tag(tag: str, p: tuple[int, ...]) -> str:
    """`s2`, `s(2,1)`, `p1`, `p(1,0)`."""
    return f"{tag}{p[0]}" if p[0] == p[-1] else f"{tag}({p[0]},{p[1]})"


def _int_or_list(p: tuple[int, ...]) -> str:
    return str(p[0]) if len(set(p)) == 1 else f"[{', '.join(str(v) for v in p)}]"


def _padding_text(padding) -> str | None:
    if padding == "valid":
        return None
    return padding if isinstance(padding, str) else _tag("p", padding)


def _sides(pad: tuple[int, int, int, int]) -> str:
    """(top, bottom, left, right) as ZeroPad and Crop take them: 1, 2 or 4 values."""
    t, b, left, right = pad
    if t == b == left == right:
        return str(t)
    if t == b and left == right:
        return f"{t}, {left}"
    return f"{t}, {b}, {left}, {right}"


def _spell_weights_options(n: Node) -> list[str]:
    out = []
    if n.init is not None:
        out.append(f"init: {n.init}")
    if n.bias_init is not None:
        bias = n.bias_init
        out.append(f"bias_init: {bias if isinstance(bias, str) else _num(bias)}")
    if getattr(n, "l2", None) is not None:
        out.append(f"l2: {_num(n.l2)}")
    return out


def _spell_conv_args(n: Node, filters: bool) -> list[str]:
    """What every convolution writes: `64*3*3` (or `3*3`), `s2`, padding, `nobias`,
    the fused activation, dilation and the weight options."""
    kh, kw = n.kernel
    args = [f"{n.filters}*{kh}*{kw}" if filters else f"{kh}*{kw}"]
    if n.stride != (1, 1):
        args.append(_tag("s", n.stride))
    if (pad := _padding_text(n.padding)) is not None:
        args.append(pad)
    if not n.use_bias:
        args.append("nobias")
    if n.activation is not None:
        args.append(n.activation)
    if getattr(n, "dilation", (1, 1)) != (1, 1):
        args.append(f"dilation: {_int_or_list(n.dilation)}")
    return args + _spell_weights_options(n)


@spells(Input)
def spell_input(n: Input) -> str:
    return "input " + "*".join(str(d) for d in n.shape)


@spells(Concat)
def spell_concat(n: Concat) -> str:
    return "concat"


@spells(Add)
def spell_add(n: Add) -> str:
    return "add"


@spells(Mul)
def spell_mul(n: Mul) -> str:
    return "mul"


def layer_list() -> str:
    """The layer kinds as the language writes them first: `C, B, LRN, A, ...`."""
    return ", ".join(b.spellings[0] for b in BINDERS.values())


# ---------------------------------------------------------------------------
# Names archc knows it does not have
# ---------------------------------------------------------------------------

ACTIVATION_ALIASES = {
    "swish": "silu",
    "leakyrelu": "leaky_relu",
    "lrelu": "leaky_relu",
    "identity": "linear",
    "none": "linear",
    "hardsigmoid": "hard_sigmoid",
    "relu_6": "relu6",
    "hard_silu": "hard_swish",
    "hardswish": "hard_swish",
}
# Activations of Keras or PyTorch that archc does not have. They are named as what
# they are, never "corrected" into a supported function close in letters
# (`hard_swish` is not `hard_sigmoid`, `celu` not `elu`).
UNSUPPORTED_ACTIVATIONS = {
    "celu": "CELU",
    "glu": "GLU",
    "softsign": "softsign",
    "log_softmax": "log-softmax",
    "logsoftmax": "log-softmax",
    "exponential": "exponential",
    "hard_tanh": "hard tanh",
    "hardtanh": "hard tanh",
    "tanhshrink": "tanh shrink",
    "tanh_shrink": "tanh shrink",
    "softshrink": "soft shrink",
    "hardshrink": "hard shrink",
    "rrelu": "randomized leaky ReLU",
    "log_sigmoid": "log-sigmoid",
    "logsigmoid": "log-sigmoid",
    "sparse_plus": "sparse plus",
    "squareplus": "squareplus",
    "threshold": "threshold",
    "softmin": "softmin",
    "sparsemax": "sparsemax",
}
# Layers of Keras or PyTorch that archc does not have (lower case), named as what
# they are rather than "corrected" into a different layer (`Cropping2D` is not
# `Conv2D`, `Conv1D` not `Conv2D`).
UNSUPPORTED_LAYERS = {
    **dict.fromkeys(("cropping1d", "cropping3d"), "the only cropping is `Crop` (2-D)"),
    **dict.fromkeys(("conv1d", "conv3d"), "1-D and 3-D convolutions are not supported"),
    **dict.fromkeys(
        ("upsampling1d", "upsampling3d"),
        "the only upsampling is `Up` (2-D) and `Resize`",
    ),
    **dict.fromkeys(
        ("instancenorm2d", "instancenormalization", "unitnormalization"),
        "the normalisations are `B`, `LN`, `GN` and `LRN`",
    ),
    **dict.fromkeys(
        ("permute", "repeatvector", "unflatten"), "the reshapings are `Flatten` and `Reshape`"
    ),
    **dict.fromkeys(
        ("multiply", "subtract", "average", "maximum", "minimum", "dot"),
        "the merges are `concat { a | b }`, `add { a | b }` and `mul { a | b }`",
    ),
    **dict.fromkeys(
        (
            "embedding",
            "lstm",
            "gru",
            "simplernn",
            "rnn",
            "attention",
            "multiheadattention",
            "transformer",
        ),
        "sequence layers are not supported",
    ),
    **dict.fromkeys(
        (
            "maxpool1d",
            "maxpooling1d",
            "avgpool1d",
            "averagepooling1d",
            "maxpool3d",
            "maxpooling3d",
            "avgpool3d",
            "averagepooling3d",
            "globalaveragepooling1d",
            "globalmaxpooling1d",
        ),
        "1-D and 3-D pooling are not supported",
    ),
    **dict.fromkeys(
        ("spatialdropout2d", "alphadropout", "gaussiandropout", "gaussiannoise", "dropout2d"),
        "the only dropout is `D(rate)`",
    ),
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
    suggestion = did_you_mean(name, list(SPELLINGS) + list(blocks))
    return f"did you mean `{suggestion}`?" if suggestion else None


# ---------------------------------------------------------------------------
# Argument helpers shared by the binders
# ---------------------------------------------------------------------------

YES = ("Yes", "yes", "Y", "True", "true", "on")
NO = ("None", "none", "No", "no", "N", "False", "false", "off")


def _pair(r: ArgReader, value: Any, what: str, span) -> Pair:
    if isinstance(value, bool):
        raise r.fail(f"{what} must be an integer", span, received=show(value))
    if isinstance(value, int) and value >= 1:
        return value, value
    if isinstance(value, Tagged) and value.tag == "stride" and what == "stride":
        value = value.value
    if (
        isinstance(value, tuple)
        and len(value) in (1, 2)
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in value)
    ):
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
    raise r.fail(
        "padding must be `same`, `valid`, or explicit zeros such as `p1`",
        span,
        received=show(value),
        code="E307",
    )


def _activation_name(r: ArgReader, value: Any, span, fusable_only: bool) -> str:
    name = value.name if isinstance(value, Sym) else None
    if name is not None:
        name = ACTIVATION_ALIASES.get(name.lower(), name.lower())
    allowed = FUSABLE if fusable_only else ACTIVATIONS
    if name in allowed:
        return name
    written = value.name if isinstance(value, Sym) else show(value)
    hint = did_you_mean(written, allowed)
    if fusable_only and name in ACTIVATIONS:
        hint_text = f"write `{name}` as its own layer: `A({name})`"
    elif name in UNSUPPORTED_ACTIVATIONS:
        raise r.fail(
            f"archc does not support the {UNSUPPORTED_ACTIVATIONS[name]} activation `{written}`",
            span,
            code="E307",
            expected=", ".join(allowed),
        )
    else:
        hint_text = f"did you mean `{hint}`?" if hint else None
    raise r.fail(
        f"unknown activation `{written}`",
        span,
        code="E307",
        expected=", ".join(allowed),
        hint=hint_text,
    )


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


def _labelled_stride_and_padding(r: ArgReader, f: dict) -> None:
    """`stride: 2` and `padding: same`, as Conv and Pool take them (once each)."""
    if (a := r.take("stride")) is not None:
        _once(r, f, "stride", _pair(r, r.value(a.value), "stride", a.span), a.span)
    if (a := r.take("padding")) is not None:
        _once(r, f, "padding", _padding_value(r, r.value(a.value), a.span), a.span)


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
# The binders, one per kind
# ---------------------------------------------------------------------------


@spells(Rescaling)
def spell_rescaling(n: Rescaling) -> str:
    args = [f"scale: {_num(n.scale)}"]
    if n.offset != 0.0:
        args.append(f"offset: {_num(n.offset)}")
    return _call("Rescaling", args)


@binds(Rescaling, "Rescaling", options=("scale", "offset"))
def bind_rescaling(r: ArgReader, spelled: str) -> Made:
    a = r.next_pos() or r.take("scale")
    if a is None:
        raise r.fail("`Rescaling` needs its scale: `Rescaling(1/255)`", code="E303")
    f: dict = {"scale": r.number(a.value, "the scale")}
    if (a := r.next_pos() or r.take("offset")) is not None:
        f["offset"] = r.number(a.value, "the offset")
    r.finish()
    return [(Rescaling, f)]


@spells(Normalization)
def spell_normalization(n: Normalization) -> str:
    args = []
    if n.mean is not None:
        args.append(f"mean: [{', '.join(_num(v) for v in n.mean)}]")
    if n.variance is not None:
        args.append(f"variance: [{', '.join(_num(v) for v in n.variance)}]")
    return _call("Normalization", args)


@binds(Normalization, "Normalization", options=("mean", "variance"))
def bind_normalization(r: ArgReader, spelled: str) -> Made:
    f: dict = {}
    for key in ("mean", "variance"):
        if (a := r.take(key)) is not None:
            v = r.value(a.value)
            v = v if isinstance(v, tuple) else (v,)
            if not v or not all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v):
                raise r.fail(
                    f"the {key} is a number or a list of numbers, one per channel",
                    a.span,
                    code="E307",
                    received=show(r.value(a.value)),
                )
            if key == "variance" and any(x < 0 for x in v):
                raise r.fail("a variance cannot be negative", a.span, code="E307")
            f[key] = tuple(float(x) for x in v)
    if ("mean" in f) != ("variance" in f):
        raise r.fail(
            "`Normalization` takes both `mean:` and `variance:`, or neither "
            "(then they are weights, loaded like batch norm's statistics)",
            code="E303",
        )
    r.finish()
    return [(Normalization, f)]


CONV_OPTIONS = (
    "kernel",
    "filters",
    "stride",
    "padding",
    "dilation",
    "bias",
    "activation",
    "init",
    "bias_init",
    "l2",
)


class ConvForm(NamedTuple):
    """How messages write a convolution kind's call."""

    form: str  # `C(filters*kh*kw, ...)`
    example: str  # `C(6*5*5, s1, same)`
    first: str  # `the filters and kernel come first: ...`


def _conv_fields(r: ArgReader, kind: type[Node], how: ConvForm, filters: bool = True) -> dict:
    """The arguments every convolution takes: `filters*kh*kw` (or `kh*kw` without
    filters), a stride `s2`, padding `same`/`valid`/`p1`, `nobias`, a fused
    activation, and their labelled forms, dilation and the weight options."""
    f: dict = {}
    first = r.next_pos()
    kernel = r.take("kernel")
    nfilters = r.take("filters") if filters else None
    if kernel is not None and first is not None:
        r.pos.insert(0, first)  # the first positional is then an option
        first = None
    kexpr = kernel.value if kernel is not None else first.value if first is not None else None
    if kexpr is None:
        raise r.fail(
            f"{kind.title} needs its kernel: `{how.form}`",
            code="E303",
            hint=f"for example `{how.example}`",
        )
    if nfilters is not None or not filters:
        if nfilters is not None:
            f["filters"] = r.positive_int(nfilters.value, "the number of filters")
        k = r.dims(kexpr, (1, 2), "kernel size kh*kw")
        f["kernel"] = (k[0], k[-1])
    else:
        n, kh, kw = r.dims(kexpr, (3,), "filters*kh*kw")
        f["filters"], f["kernel"] = n, (kh, kw)
    for a in list(r.pos):
        v = r.value(a.value)
        if isinstance(v, Tagged) and v.tag == "stride":
            _once(r, f, "stride", _pair(r, v, "stride", a.span), a.span)
        elif (
            isinstance(v, Tagged)
            and v.tag == "pad"
            or (isinstance(v, Sym) and v.name.lower() in ("same", "valid"))
        ):
            _once(r, f, "padding", _padding_value(r, v, a.span), a.span)
        elif isinstance(v, Sym) and v.name in ("nobias", "no_bias"):
            _once(r, f, "use_bias", False, a.span)
        elif (
            isinstance(v, Sym)
            and ACTIVATION_ALIASES.get(v.name.lower(), v.name.lower()) in ACTIVATIONS
        ):
            _once(r, f, "activation", _activation_name(r, v, a.span, True), a.span)
        elif isinstance(v, Sym) and v.name.lower() in UNSUPPORTED_ACTIVATIONS:
            _activation_name(r, v, a.span, True)  # says it is not supported
        elif isinstance(v, Sym):
            choices = ("same", "valid", "nobias") + FUSABLE
            guess = did_you_mean(v.name, choices)
            raise r.fail(
                f"{kind.title} has no option `{v.name}`",
                a.span,
                code="E307",
                expected="a stride `s2`, padding `same`/`valid`/`p1`, `nobias`, "
                "or an activation such as `relu`",
                hint=f"did you mean `{guess}`?" if guess else None,
            )
        else:
            raise r.fail(
                f"{kind.title} does not understand `{show(v)}` here",
                a.span,
                code="E301",
                expected="a stride `s2`, padding `same`/`valid`/`p1`, `nobias`, or an activation",
                hint=how.first,
            )
        r.pos.remove(a)
    _labelled_stride_and_padding(r, f)
    if (a := r.take("dilation")) is not None:
        f["dilation"] = _pair(r, r.value(a.value), "dilation", a.span)
    if (a := r.take("bias")) is not None:
        v = r.value(a.value)
        f["use_bias"] = _yes_no(r, v, a.span)
    if (a := r.take("activation")) is not None:
        _once(r, f, "activation", _activation_name(r, r.value(a.value), a.span, True), a.span)
    f.update(_weights_options(r))
    if f.get("dilation", (1, 1)) != (1, 1) and f.get("stride", (1, 1)) != (1, 1):
        raise r.fail(
            "a convolution cannot have both a stride and a dilation above 1",
            hint="Keras's Conv2D refuses strides > 1 together with "
            "dilation_rate > 1 (PyTorch accepts it), and the spec must build "
            "in both",
        )
    return f


CONV_FORMS = {
    "C": ConvForm(
        "C(filters*kh*kw, ...)",
        "C(6*5*5, s1, same)",
        "the filters and kernel come first: `C(64*3*3, s1, same)`",
    ),
    "DW": ConvForm(
        "DW(kh*kw, ...)", "DW(3*3, s1, same)", "the kernel comes first: `DW(3*3, s1, same)`"
    ),
    "SC": ConvForm(
        "SC(filters*kh*kw, ...)",
        "SC(64*3*3, s1, same)",
        "the filters and kernel come first: `SC(64*3*3, s1, same)`",
    ),
    "CT": ConvForm(
        "CT(filters*kh*kw, ...)",
        "CT(64*3*3, s2, same)",
        "the filters and kernel come first: `CT(64*3*3, s2, same)`",
    ),
}


def _multiplier(r: ArgReader, f: dict) -> None:
    if (a := r.take("multiplier")) is not None:
        f["multiplier"] = r.positive_int(a.value, "the depth multiplier")


def _equal_strides(r: ArgReader, kind: type[Node], f: dict) -> None:
    stride = f.get("stride", (1, 1))
    if stride[0] != stride[1]:
        raise r.fail(
            f"{kind.title} needs the same stride along height and width, not {stride}",
            hint="TensorFlow's depthwise convolution (Keras's DepthwiseConv2D and "
            "SeparableConv2D) supports equal strides only, and the spec must build in both",
        )


@spells(Conv2D)
def spell_conv(n: Conv2D) -> str:
    args = _spell_conv_args(n, filters=True)
    if n.groups != 1:
        args.append(f"groups: {n.groups}")
    return _call("C", args)


@binds(Conv2D, "C", "Conv", "Conv2D", options=(*CONV_OPTIONS, "groups"))
def bind_conv(r: ArgReader, spelled: str) -> Made:
    f = _conv_fields(r, Conv2D, CONV_FORMS["C"])
    if (a := r.take("groups")) is not None:
        f["groups"] = r.positive_int(a.value, "the number of groups")
    r.finish()
    return [(Conv2D, f)]


@spells(DepthwiseConv2D)
def spell_depthwise(n: DepthwiseConv2D) -> str:
    args = _spell_conv_args(n, filters=False)
    if n.multiplier != 1:
        args.append(f"multiplier: {n.multiplier}")
    return _call("DW", args)


@binds(
    DepthwiseConv2D,
    "DW",
    "DWConv",
    "DepthwiseConv2D",
    options=tuple(o for o in CONV_OPTIONS if o != "filters") + ("multiplier",),
)
def bind_depthwise(r: ArgReader, spelled: str) -> Made:
    f = _conv_fields(r, DepthwiseConv2D, CONV_FORMS["DW"], filters=False)
    _multiplier(r, f)
    _equal_strides(r, DepthwiseConv2D, f)
    r.finish()
    return [(DepthwiseConv2D, f)]


@spells(SeparableConv2D)
def spell_separable(n: SeparableConv2D) -> str:
    args = _spell_conv_args(n, filters=True)
    if n.multiplier != 1:
        args.append(f"multiplier: {n.multiplier}")
    return _call("SC", args)


@binds(
    SeparableConv2D,
    "SC",
    "SepConv",
    "SeparableConv2D",
    options=(*(o for o in CONV_OPTIONS if o != "l2"), "multiplier"),
)
def bind_separable(r: ArgReader, spelled: str) -> Made:
    f = _conv_fields(r, SeparableConv2D, CONV_FORMS["SC"])
    _multiplier(r, f)
    _equal_strides(r, SeparableConv2D, f)
    r.finish()
    return [(SeparableConv2D, f)]


@spells(Conv2DTranspose)
def spell_transposed(n: Conv2DTranspose) -> str:
    args = _spell_conv_args(n, filters=True)
    if n.output_padding is not None:
        args.append(f"output_padding: {_int_or_list(n.output_padding)}")
    return _call("CT", args)


@binds(
    Conv2DTranspose,
    "CT",
    "ConvT",
    "Conv2DTranspose",
    "ConvTranspose2d",
    "deconv",
    options=(*CONV_OPTIONS, "output_padding"),
)
def bind_transposed(r: ArgReader, spelled: str) -> Made:
    if (a := r.take("dilation")) is not None:
        raise r.fail(
            f"a {Conv2DTranspose.title} cannot be dilated",
            a.span,
            code="E307",
            hint="Keras's Conv2DTranspose (TensorFlow on the CPU) does not run dilation "
            "rates above 1, and the spec must build in both",
        )
    f = _conv_fields(r, Conv2DTranspose, CONV_FORMS["CT"])
    if (a := r.take("output_padding")) is not None:
        v = r.value(a.value)
        if isinstance(v, int) and not isinstance(v, bool) and v >= 0:
            f["output_padding"] = (v, v)
        elif (
            isinstance(v, tuple)
            and len(v) in (1, 2)
            and all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in v)
        ):
            f["output_padding"] = (v[0], v[-1])
        else:
            raise r.fail(
                "output padding must be a non-negative integer or two of them",
                a.span,
                code="E307",
                received=show(v),
            )
    r.finish()
    return [(Conv2DTranspose, f)]


@spells(BatchNorm)
def spell_batchnorm(n: BatchNorm) -> str:
    args = []
    if n.momentum != 0.99:
        args.append(f"momentum: {_num(n.momentum)}")
    if n.epsilon != 1e-3:
        args.append(f"epsilon: {_num(n.epsilon)}")
    if not n.scale:
        args.append("scale: no")
    return _call("B", args)


@binds(
    BatchNorm,
    "B",
    "BN",
    "BatchNorm",
    "BatchNormalization",
    options=("epsilon", "momentum", "scale"),
)
def bind_batchnorm(r: ArgReader, spelled: str) -> Made:
    present = True
    a = r.next_pos()
    if a is not None:
        present = _yes_no(r, r.value(a.value), a.span)
    # `B (Yes, LRN*)`: the slides' footnote that the course used BN where the
    # paper used LRN. It is informative; the layer is a batch norm.
    f = _epsilon(r)
    if (m := r.take("momentum")) is not None:
        f["momentum"] = r.number(m.value, "momentum", lo=0.0, hi=1.0)
    if (sc := r.take("scale")) is not None:  # `scale: no`: Keras's scale=False
        f["scale"] = _yes_no(r, r.value(sc.value), sc.span)
    r.finish()
    return [(BatchNorm, f)] if present else []


def _epsilon(r: ArgReader) -> dict:
    """`epsilon: 1e-6` (positive), as the normalisations take it."""
    if (e := r.take("epsilon")) is None:
        return {}
    eps = r.number(e.value, "epsilon", lo=0.0)
    if eps <= 0:
        raise r.fail("epsilon must be positive", e.span)
    return {"epsilon": eps}


@spells(LayerNorm)
def spell_layernorm(n: LayerNorm) -> str:
    return _call("LN", [f"epsilon: {_num(n.epsilon)}"] if n.epsilon != 1e-3 else [])


@binds(LayerNorm, "LN", "LayerNorm", "LayerNormalization", options=("epsilon",))
def bind_layernorm(r: ArgReader, spelled: str) -> Made:
    f = _epsilon(r)
    r.finish()
    return [(LayerNorm, f)]


@spells(GroupNorm)
def spell_groupnorm(n: GroupNorm) -> str:
    eps = [f"epsilon: {_num(n.epsilon)}"] if n.epsilon != 1e-3 else []
    return _call("GN", [str(n.groups), *eps])


@binds(GroupNorm, "GN", "GroupNorm", "GroupNormalization", options=("groups", "epsilon"))
def bind_groupnorm(r: ArgReader, spelled: str) -> Made:
    a = r.next_pos() or r.take("groups")
    if a is None:
        raise r.fail("`GN` needs the number of groups: `GN(32)`", code="E303")
    f = {"groups": r.positive_int(a.value, "the number of groups"), **_epsilon(r)}
    r.finish()
    return [(GroupNorm, f)]


@spells(LayerScale)
def spell_layerscale(n: LayerScale) -> str:
    return _call("Scale", [_num(n.init)])


@binds(LayerScale, "Scale", "LayerScale", options=("init",))
def bind_layerscale(r: ArgReader, spelled: str) -> Made:
    a = r.next_pos() or r.take("init")
    init = 1e-6 if a is None else r.number(a.value, "the initial scale")
    r.finish()
    return [(LayerScale, {"init": init})]


@spells(LRN)
def spell_lrn(n: LRN) -> str:
    args = [str(n.depth)] if n.depth != 5 else []
    for key, default in (("alpha", 1e-4), ("beta", 0.75), ("bias_k", 2.0)):
        if getattr(n, key) != default:
            args.append(f"{key}: {_num(getattr(n, key))}")
    return _call("LRN", args)


@binds(LRN, "LRN", options=("depth", "alpha", "beta", "bias_k", "kernel"))
def bind_lrn(r: ArgReader, spelled: str) -> Made:
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
    return [(LRN, f)]


@spells(Activation)
def spell_activation(n: Activation) -> str:
    if n.alpha is None or n.fn not in DEFAULT_ALPHA:
        if n.alpha is not None:
            raise ValueError(f"`{n.fn}` takes no alpha (the node has {n.alpha})")
        if n.fn in DEFAULT_ALPHA:
            raise ValueError(f"`{n.fn}` without its alpha cannot be written")
        return f"A({n.fn})"
    if n.alpha == DEFAULT_ALPHA[n.fn]:
        return f"A({n.fn})"
    return f"A({n.fn}, {_num(n.alpha)})"


@binds(
    Activation,
    "A",
    "Activation",
    "ReLU",
    "PReLU",
    "LeakyReLU",
    "Softmax",
    options=("activation", "alpha"),
)
def bind_activation(r: ArgReader, spelled: str) -> Made:
    fixed = {"ReLU": "relu", "PReLU": "prelu", "LeakyReLU": "leaky_relu", "Softmax": "softmax"}.get(
        spelled
    )
    f: dict = {}
    if fixed is not None:
        f["fn"] = fixed
    else:
        a = r.next_pos() or r.take("activation")
        if a is None:
            raise r.fail(
                "`A` needs the activation: `A(relu)`", code="E303", expected=", ".join(ACTIVATIONS)
            )
        v = r.value(a.value)
        if isinstance(v, Sym) and v.name in NO:
            r.finish()
            return []
        f["fn"] = _activation_name(r, v, a.span, False)
    alpha = r.next_pos() or r.take("alpha")
    if alpha is not None:
        if f["fn"] not in ("leaky_relu", "elu"):
            raise r.fail(
                f"`{f['fn']}` takes no alpha",
                alpha.span,
                code="E301",
                hint="only leaky_relu (slope) and elu take one",
            )
        f["alpha"] = r.number(alpha.value, "alpha", lo=0.0)
    elif f["fn"] in DEFAULT_ALPHA:
        f["alpha"] = DEFAULT_ALPHA[f["fn"]]
    r.finish()
    return [(Activation, f)]


@spells(Pool)
def spell_pool(n: Pool) -> str:
    kh, kw = n.kernel
    args = [n.op, str(kh) if kh == kw else f"{kh}*{kw}"]
    args.append(str(n.stride[0]) if n.stride[0] == n.stride[1] else _tag("s", n.stride))
    if (pad := _padding_text(n.padding)) is not None:
        args.append(pad)
    if n.ceil:
        args.append("ceil")
    return _call("P", args)


@binds(
    Pool,
    "P",
    "Pool",
    "MaxPool",
    "AvgPool",
    "MaxPool2D",
    "AvgPool2D",
    options=("kernel", "stride", "padding", "ceil"),
)
def bind_pool(r: ArgReader, spelled: str) -> Made:
    op = {"MaxPool": "max", "MaxPool2D": "max", "AvgPool": "avg", "AvgPool2D": "avg"}.get(spelled)
    if op is None:
        a = r.next_pos()
        if a is None:
            raise r.fail(
                "`P` needs the kind of pooling: `P(max, 2, 2)`",
                code="E303",
                expected="max, avg, gavg, gmax",
            )
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
        raise r.fail(f"{Pool.title} needs its kernel size: `P({op}, 2, 2)`", code="E303")
    k = r.dims(kexpr, (1, 2), "kernel size k or kh*kw")
    f["kernel"] = (k[0], k[-1])
    for a in list(r.pos):
        v = r.value(a.value)
        if (
            isinstance(v, Tagged)
            and v.tag == "stride"
            or (isinstance(v, int) and not isinstance(v, bool) and "stride" not in f)
        ):
            _once(r, f, "stride", _pair(r, v, "stride", a.span), a.span)
        elif isinstance(v, Sym) and v.name in ("ceil", "ceil_mode"):
            _once(r, f, "ceil", True, a.span)
        elif isinstance(v, (Sym, Tagged)):
            _once(r, f, "padding", _padding_value(r, v, a.span), a.span)
        else:
            raise r.fail(
                f"{Pool.title} does not understand `{show(v)}` here",
                a.span,
                code="E301",
                expected="stride, then padding",
            )
        r.pos.remove(a)
    _labelled_stride_and_padding(r, f)
    if (a := r.take("ceil")) is not None:
        _once(r, f, "ceil", _yes_no(r, r.value(a.value), a.span), a.span)
    if f.get("ceil") and f.get("padding") == "same":
        raise r.fail(
            "`ceil` pooling needs valid or explicit padding, not `same`",
            code="E307",
            hint="`same` pooling already rounds up: ceil(n / stride); `ceil` is "
            "PyTorch's ceil_mode, for valid (`P(max, 3, 2, ceil)`) or explicit padding",
        )
    f.setdefault("stride", f["kernel"])
    r.finish()
    return [(Pool, f)]


@spells(GlobalPool)
def spell_global_pool(n: GlobalPool) -> str:
    return _call("GAP" if n.op == "avg" else "GMP", ["keepdims"] if n.keepdims else [])


@binds(GlobalPool, "GAP", "GMP", "GlobalAvgPool", "GlobalMaxPool", options=("keepdims",))
def bind_global_pool(r: ArgReader, spelled: str) -> Made:
    f: dict = {"op": "max" if spelled in ("GMP", "GlobalMaxPool") else "avg"}
    if (a := r.next_pos()) is not None:
        v = r.value(a.value)
        if not (isinstance(v, Sym) and v.name == "keepdims"):
            raise r.fail(
                f"{GlobalPool.title} takes only `keepdims`",
                a.span,
                code="E307",
                received=show(v),
                hint="`GAP(keepdims)` keeps a 1 x 1 x C map",
            )
        f["keepdims"] = True
    if (a := r.take("keepdims")) is not None:
        _once(r, f, "keepdims", _yes_no(r, r.value(a.value), a.span), a.span)
    r.finish()
    return [(GlobalPool, f)]


INTERPOLATIONS = ("nearest", "bilinear")


def _interpolation(r: ArgReader, f: dict, positional: list) -> None:
    """`bilinear` as a positional argument or `interpolation: bilinear`, once."""
    for a in positional:
        _once(r, f, "interpolation", r.symbol(a.value, "interpolation", INTERPOLATIONS), a.span)
    if (a := r.take("interpolation")) is not None:
        _once(r, f, "interpolation", r.symbol(a.value, "interpolation", INTERPOLATIONS), a.span)


@spells(Upsample)
def spell_upsample(n: Upsample) -> str:
    args = [_int_or_list(n.factor)]
    if n.interpolation != "nearest":
        args.append(n.interpolation)
    return _call("Up", args)


@binds(Upsample, "Up", "UpSampling2D", options=("kernel", "interpolation"))
def bind_upsample(r: ArgReader, spelled: str) -> Made:
    f: dict = {}
    rest = []
    while (a := r.next_pos()) is not None:
        v = r.value(a.value)
        if isinstance(v, int) and "factor" in f:
            raise r.fail(
                "the upsampling factor is given twice",
                a.span,
                code="E306",
                hint="per-axis factors are written as a list: `Up([2, 3])`",
            )
        if isinstance(v, Sym) or "factor" in f:
            rest.append(a)
        else:
            f["factor"] = _pair(r, v, "the upsampling factor", a.span)
    if (a := r.take("kernel")) is not None:  # `size:`, Keras's name for the factors
        _once(r, f, "factor", _pair(r, r.value(a.value), "the upsampling factor", a.span), a.span)
    _interpolation(r, f, rest)
    f.setdefault("factor", (2, 2))  # Keras's default
    r.finish()
    return [(Upsample, f)]


@spells(Resize)
def spell_resize(n: Resize) -> str:
    args = [str(n.size[0]), str(n.size[1])]
    if n.interpolation != "bilinear":
        args.append(n.interpolation)
    return _call("Resize", args)


@binds(Resize, "Resize", "Resizing", options=("height", "width", "interpolation"))
def bind_resize(r: ArgReader, spelled: str) -> Made:
    sizes, rest = [], []
    while (a := r.next_pos()) is not None:
        if isinstance(r.value(a.value), Sym):
            rest.append(a)
        else:
            sizes.append(r.positive_int(a.value, "the output height and width"))
    for key in ("height", "width"):
        if (a := r.take(key)) is not None:
            sizes.append(r.positive_int(a.value, f"the output {key}"))
    if len(sizes) != 2:
        raise r.fail(
            f"`{spelled}` needs the output height and width: `Resize(64, 64)`",
            code="E303",
            received=f"{len(sizes)} size(s)",
        )
    f: dict = {"size": tuple(sizes)}
    _interpolation(r, f, rest)
    r.finish()
    return [(Resize, f)]


@spells(Dropout)
def spell_dropout(n: Dropout) -> str:
    return f"D({_num(n.rate)})"


@binds(Dropout, "D", "Dropout", options=("rate",))
def bind_dropout(r: ArgReader, spelled: str) -> Made:
    a = r.next_pos() or r.take("rate")
    if a is None:
        raise r.fail("`D` needs the dropout rate: `D(0.2)`", code="E303")
    v = r.value(a.value)
    r.finish()
    if isinstance(v, Sym) and v.name in NO:
        return []
    return [(Dropout, {"rate": r.number(a.value, "the dropout rate", 0.0, 1.0, hi_open=True)})]


@spells(DropPath)
def spell_droppath(n: DropPath) -> str:
    return f"DP({_num(n.rate)})"


@binds(DropPath, "DP", "DropPath", "StochasticDepth", options=("rate",))
def bind_droppath(r: ArgReader, spelled: str) -> Made:
    a = r.next_pos() or r.take("rate")
    if a is None:
        raise r.fail("`DP` needs the drop rate: `DP(0.2)`", code="E303")
    v = r.value(a.value)
    r.finish()
    if isinstance(v, Sym) and v.name in NO:
        return []
    return [(DropPath, {"rate": r.number(a.value, "the drop rate", 0.0, 1.0, hi_open=True)})]


@spells(Flatten)
def spell_flatten(n: Flatten) -> str:
    return "Flatten"


@binds(Flatten, "Flatten")
def bind_flatten(r: ArgReader, spelled: str) -> Made:
    r.finish()
    return [(Flatten, {})]


@spells(Reshape)
def spell_reshape(n: Reshape) -> str:
    return _call("Reshape", [str(d) for d in n.shape])


@binds(Reshape, "Reshape")
def bind_reshape(r: ArgReader, spelled: str) -> Made:
    dims = []
    while (a := r.next_pos()) is not None:
        dims.append(r.positive_int(a.value, "a target dimension"))
    r.finish()
    if len(dims) not in (1, 3):
        raise r.fail(
            "`Reshape` takes the target shape: H, W, C (`Reshape(1, 1, 64)`) or a length",
            code="E303",
            received=f"{len(dims)} values",
        )
    return [(Reshape, {"shape": tuple(dims)})]


@spells(ZeroPad)
def spell_zeropad(n: ZeroPad) -> str:
    return f"ZeroPad({_sides(n.pad)})"


@binds(ZeroPad, "ZeroPad", "ZP", "ZeroPadding2D")
def bind_zeropad(r: ArgReader, spelled: str) -> Made:
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
        raise r.fail(
            "`ZeroPad` takes 1 (all sides), 2 (height, width) or 4 "
            "(top, bottom, left, right) integers",
            code="E303",
            received=f"{len(vals)} values",
        )
    return [(ZeroPad, {"pad": pad})]


@spells(Crop)
def spell_crop(n: Crop) -> str:
    return f"Crop({_sides(n.crop)})"


@binds(Crop, "Crop", "Cropping2D")
def bind_crop(r: ArgReader, spelled: str) -> Made:
    vals = []
    while (a := r.next_pos()) is not None:
        vals.append(r.positive_int(a.value, "cropping", allow_zero=True))
    r.finish()
    if len(vals) == 1:
        crop = (vals[0],) * 4
    elif len(vals) == 2:
        crop = (vals[0], vals[0], vals[1], vals[1])
    elif len(vals) == 4:
        crop = tuple(vals)
    else:
        raise r.fail(
            f"`{spelled}` takes 1 (all sides), 2 (height, width) or 4 "
            "(top, bottom, left, right) integers",
            code="E303",
            received=f"{len(vals)} values",
        )
    return [(Crop, {"crop": crop})]


@spells(Dense)
def spell_dense(n: Dense) -> str:
    args = [str(n.units)]
    if n.activation is not None:
        args.append(n.activation)
    if not n.use_bias:
        args.append("nobias")
    return _call("Dense", args + _spell_weights_options(n))


@binds(
    Dense,
    "Dense",
    "FC",
    "Linear",
    options=("units", "activation", "dropout", "bias", "init", "bias_init", "l2"),
)
def bind_dense(r: ArgReader, spelled: str) -> Made:
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
        _once(r, f, "activation", _activation_name(r, r.value(act.value), act.span, True), act.span)
    if (b := r.take("bias")) is not None:
        _once(r, f, "use_bias", _yes_no(r, r.value(b.value), b.span), b.span)
    f.update(_weights_options(r))
    out: Made = [(Dense, f)]
    # The slides' long form `Dense (神经元: 128, 激活: relu, Dropout: 0.2)`
    # is a Dense followed by a Dropout.
    if (d := r.take("dropout")) is not None:
        v = r.value(d.value)
        if not (isinstance(v, Sym) and v.name in NO):
            out.append(
                (Dropout, {"rate": r.number(d.value, "the dropout rate", 0.0, 1.0, hi_open=True)})
            )
    r.finish()
    return out


# Channel shuffle and split (ShuffleNet), next to the merges they work with


@spells(ChannelShuffle)
def spell_shuffle(n: ChannelShuffle) -> str:
    return f"Shuffle({n.groups})"


@binds(ChannelShuffle, "Shuffle", "ChannelShuffle", options=("groups",))
def bind_shuffle(r: ArgReader, spelled: str) -> Made:
    a = r.next_pos() or r.take("groups")
    if a is None:
        raise r.fail(f"`{spelled}` needs the number of groups: `Shuffle(2)`", code="E303")
    groups = r.positive_int(a.value, "the number of groups")
    r.finish()
    return [(ChannelShuffle, {"groups": groups})]


@spells(ChannelSplit)
def spell_split(n: ChannelSplit) -> str:
    return f"Split({n.parts}, {n.take})"


@binds(ChannelSplit, "Split", "ChannelSplit", options=("parts", "take"))
def bind_split(r: ArgReader, spelled: str) -> Made:
    parts = r.next_pos() or r.take("parts")
    take = r.next_pos() or r.take("take")
    if parts is None or take is None:
        raise r.fail(
            f"`{spelled}` needs the number of parts and the part to take (from 0): "
            "`Split(2, 0)` is the first half of the channels",
            code="E303",
        )
    f = {
        "parts": r.positive_int(parts.value, "the number of parts"),
        "take": r.positive_int(take.value, "the part to take", allow_zero=True),
    }
    if f["take"] >= f["parts"]:
        raise r.fail(
            f"there is no part {f['take']} of {f['parts']} (parts are counted from 0)",
            take.span,
            received=str(f["take"]),
            expected=f"0 to {f['parts'] - 1}",
        )
    r.finish()
    return [(ChannelSplit, f)]
