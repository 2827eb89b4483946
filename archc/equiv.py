"""`archc equiv`: one spec, two frameworks, the same function.

Builds the generated Keras and PyTorch models of a spec, gives the source
framework's model random values for every parameter and statistic (kernels,
biases, batch-norm gamma, beta and moving statistics, PReLU slopes; seeded, the
same values in both directions), copies them to the other by node name
(backends/transfer.py), runs the same random inputs in inference mode and
compares the outputs (inputs N(0, 1) after the model's own input `Rescaling`,
if it has one: `raw_inputs`).

Tolerances: float64, max|diff| <= 1e-9 * max(1, max|ref|); float32,
max|diff| <= 1e-4 * max|ref|. (Element-wise relative error is not usable:
logits near zero.) That allowed difference is also the resolution of the check.

A comparison is evidence only when it can fail, so these are failures, each
with its reason:
- the output has a NaN or an infinity (in either build);
- the reference output is all zero, or the same for every input of the batch
  (the random inputs do not reach it), or, with more than one output value per
  input, the same for every output (a permutation of the outputs would pass):
  "the same" meaning within the allowed difference, since a build that ignored
  its input would pass a comparison whose reference varies by less.

With `nodes=True` every node with a module in both builds is compared too, by
the same rule: a node beyond the tolerance, or with a NaN or an infinity, fails
the check, and the first such node is reported. A node whose reference is all
zero or the same for every input of the batch (a ReLU that is zero everywhere)
is marked degenerate: it is no evidence about that node, but not a failure,
because the output (which must vary) is checked.

Known inexactness of a framework in float64 (KNOWN_INEXACT) is never absorbed
by the tolerance: while the check runs, PyTorch's function for that kind is
replaced by Keras's own (so everything else is still compared at 1e-9), and
PyTorch's function is compared with Keras's on the very inputs the model gives
it, against the stated, measured bound of that kind only; the report names the
nodes, the cause and the measured size.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any

from archc.ir import Model

TOLERANCE = {"float64": 1e-9, "float32": 1e-4}


@dataclass(frozen=True)
class Inexact:
    """A function a framework computes inexactly in float64."""

    cause: str
    bound: float  # max|PyTorch - Keras| / max(1, max|Keras|), measured, with its margin
    measured: str  # how the bound was measured
    torch: str = ""  # PyTorch's function, torch.nn.functional.<torch> ("": the same name)
    # the keyword of that function that selects this one, its value and its default
    # (F.gelu computes gelu and gelu_tanh, told apart by `approximate`)
    selects: tuple[str, Any, Any] | None = None
    keras: tuple[str, tuple[tuple[str, Any], ...]] | None = None  # Keras's name and kwargs

    def torch_name(self, fn: str) -> str:
        return self.torch or fn

    def keras_function(self, fn: str):
        import functools

        import keras

        name, kwargs = self.keras or (fn, ())
        return functools.partial(keras.activations.get(name), **dict(kwargs))

    def is_call(self, kwargs: dict) -> bool:
        if self.selects is None:
            return True
        key, value, default = self.selects
        return kwargs.get(key, default) == value


KNOWN_INEXACT: dict[str, Inexact] = {
    # tf.nn.gelu computes 0.5 * x * erfc(-x * cast(0.7071067811865476, float64)): the
    # Python constant becomes a float32 tensor before the cast, so 1/sqrt(2) is off by
    # 1.2e-8 relative; the error peaks at |x| = sqrt(2) (0.415 * 1.2e-8 = 5.03e-9).
    # TensorFlow's erf and erfc themselves are exact to 1.3e-15.
    "gelu": Inexact(
        cause="Keras (TensorFlow) computes GELU with 1/sqrt(2) rounded to float32",
        bound=5.1e-9,
        measured="5.02e-9 at x = -1.414 over 600,000 points in [-40, 40] "
        "(analytic maximum 5.03e-9)",
        selects=("approximate", "none", "none"),
    ),
    # tf.nn.gelu(approximate=True) casts its 0.044715 through float32 (off by 3.5e-8
    # relative); its 0.7978845608028654 (sqrt(2/pi)) is exact.
    "gelu_tanh": Inexact(
        cause="Keras (TensorFlow) computes GELU's tanh approximation with its "
        "coefficient 0.044715 rounded to float32",
        bound=9.1e-10,
        measured="9.00e-10 at x = -1.843 over 600,001 points in [-40, 40]",
        torch="gelu",
        selects=("approximate", "tanh", "none"),
        keras=("gelu", (("approximate", True),)),
    ),
}


@dataclass
class NodeDiff:
    name: str
    diff: float
    scale: float  # max|ref|
    allowed: float  # the largest difference that passes
    problem: str | None = None  # non-finite values: a failure
    degenerate: str | None = None  # the reference cannot show this node's function

    @property
    def diverges(self) -> bool:
        return self.problem is not None or not self.diff <= self.allowed


@dataclass
class KnownDiff:
    fn: str
    nodes: list[str]
    inexact: Inexact
    measured: float  # max|PyTorch - Keras| / max(1, max|Keras|) on this model's inputs

    @property
    def ok(self) -> bool:
        return self.measured <= self.inexact.bound


@dataclass
class Result:
    diff: float
    scale: float
    tolerance: float
    dtype: str
    direction: str
    allowed: float = 0.0
    problems: list[str] = field(default_factory=list)  # why the output proves nothing
    kernels: str = "glorot"  # how the random kernels were drawn (KERNEL_RULES)
    nodes: list[NodeDiff] = field(default_factory=list)
    known: list[KnownDiff] = field(default_factory=list)

    @property
    def first_divergence(self) -> NodeDiff | None:
        return next((n for n in self.nodes if n.diverges), None)

    @property
    def failures(self) -> list[str]:
        """Every reason the check fails; empty when it passes."""
        out = [f"the output {p}" for p in self.problems]
        if not self.diff <= self.allowed:
            out.append(
                f"the outputs differ by {self.diff:.3g}, above the allowed {self.allowed:.3g}"
            )
        for n in self.nodes:
            if n.problem:
                out.append(f"node `{n.name}` {n.problem}")
            elif n.diverges:
                out.append(
                    f"node `{n.name}` differs by {n.diff:.3g}, above the allowed {n.allowed:.3g}"
                )
        for k in self.known:
            if not k.ok:
                out.append(
                    f"{k.fn} at {', '.join(k.nodes)} differs by {k.measured:.3g}, above "
                    f"its known bound {k.inexact.bound:g}"
                )
        return out

    @property
    def ok(self) -> bool:
        return not self.failures


def allowed(scale: float, dtype: str) -> float:
    """The largest max|diff| that passes, for a reference with max|ref| = scale."""
    return TOLERANCE[dtype] * (max(1.0, scale) if dtype == "float64" else scale)


SAME_FOR_EVERY_INPUT = "is the same for every input of the batch"

# How `randomize` draws kernels. Batch norm with random moving statistics does not
# renormalise at inference, so the signal's size drifts by a factor per layer that
# depends on the kernels' scale: with Glorot's the inputs of EfficientNet-B0 no longer
# reach its output (it is the same for every input to 1e-18), with He's the residual
# sums of a ResNet50 grow until its softmax is one-hot for every input. `check` draws
# Glorot's first and He's when Glorot's leaves the output the same for every input.
KERNEL_RULES = {
    "glorot": "Glorot-uniform, +-sqrt(6 / (fan-in + fan-out))",
    "he": "He-uniform, +-sqrt(6 / fan-in)",
}


def randomize(ir: Model, weights: dict, seed: int, kernels: str = "glorot") -> dict:
    """Every parameter and statistic at a seeded random value (the values depend only
    on the seed and the keys, not on either framework's initialisation): kernels
    (depthwise and pointwise ones too) by KERNEL_RULES[kernels], biases uniform in
    +-1/sqrt(fan-in) (PyTorch's default), batch-norm gamma, beta, moving mean and
    (positive) moving variance and PReLU slopes away from their trivial initial
    values. A role without a rule is an error: nothing may keep a framework's
    initial value unnoticed.

    A depthwise kernel (kh, kw, C, multiplier) convolves each channel on its own, so
    its fans are those of one channel's convolution, kh*kw in and kh*kw*multiplier
    out (as PyTorch counts a grouped convolution's), not Keras's kh*kw*C in: with
    Keras's, each depthwise layer would scale the signal's variance by about 2/C,
    and after a dozen of them (MobileNet) every input gives the same output, which
    no comparison can tell from a build that ignores its input."""
    import numpy as np

    if kernels not in KERNEL_RULES:
        raise ValueError(f"unknown kernel rule {kernels!r}")
    rng = np.random.default_rng(seed)
    depthwise = {n.name for n in ir.nodes if n.kind == "depthwise"}
    out = {}
    for key, v in weights.items():
        node, role = key.rsplit("/", 1)
        shape = np.shape(v)
        if role in ("kernel", "depthwise_kernel", "pointwise_kernel"):
            receptive = int(np.prod(shape[:-2])) if len(shape) > 2 else 1
            per_channel = role == "depthwise_kernel" or node in depthwise
            fan_in = receptive * (1 if per_channel else shape[-2])
            fans = fan_in + receptive * shape[-1] if kernels == "glorot" else fan_in
            limit = np.sqrt(6.0 / fans)
            value = rng.uniform(-limit, limit, shape)
        elif role == "bias":  # a separable convolution's bias follows its pointwise kernel
            kernel = np.shape(
                weights.get(f"{node}/kernel", weights.get(f"{node}/pointwise_kernel"))
            )
            limit = 1.0 / np.sqrt(np.prod(kernel[:-1]))
            value = rng.uniform(-limit, limit, shape)
        elif role == "moving_variance":
            value = rng.uniform(0.5, 2.0, shape)
        elif role in ("moving_mean", "beta"):
            value = rng.normal(0, 0.1, shape)
        elif role == "gamma":
            value = rng.uniform(0.5, 1.5, shape)
        elif role == "alpha":
            value = rng.uniform(0.05, 0.3, shape)
        elif role == "mean":
            value = rng.normal(0, 0.5, shape)
        elif role == "variance":
            value = rng.uniform(0.5, 2.0, shape)
        elif role == "count":
            value = rng.integers(1, 1000, shape)
        else:
            raise ValueError(f"no rule to randomise `{key}`")
        out[key] = value.astype(np.asarray(v).dtype)
    return out


def raw_inputs(ir: Model, z):
    """The random inputs `z` (about N(0, 1)) as the model's input expects them: where
    every reader of the input is the same `Rescaling` (keras.applications' pixel
    preprocessing, x * scale + offset), the values it maps to `z`, so that the
    rescaled inputs differ as much as `z` does (N(0, 1) pixels rescaled by 1/127.5
    would vary by about 0.008, which a deep random network does not carry to its
    output); otherwise `z` itself."""
    inputs = {n.name for n in ir.nodes if n.kind == "input"}
    readers = [n for n in ir.nodes if inputs & set(n.inputs)]
    if readers and all(n.kind == "rescaling" and n.scale for n in readers):
        first = readers[0]
        if all((n.scale, n.offset) == (first.scale, first.offset) for n in readers):
            return (z - first.offset) / first.scale
    return z


def _problems(
    ref,
    other,
    allowed_diff: float,
    whole_output: bool,
    names: tuple[str, str] = ("Keras", "PyTorch"),
) -> tuple[str | None, str | None]:
    """(a failure, a degeneracy) of one comparison, each None when there is none;
    `names`: the reference's and the other build's."""
    import numpy as np

    if not np.isfinite(ref).all():
        return f"has NaN or infinite values in {names[0]}", None
    if not np.isfinite(other).all():
        return f"has NaN or infinite values in {names[1]}", None
    flat = ref.reshape(ref.shape[0], -1)
    if not np.any(flat):
        return None, "is all zero"
    if not float((flat.max(axis=0) - flat.min(axis=0)).max()) > allowed_diff:
        return None, SAME_FOR_EVERY_INPUT
    if (
        whole_output
        and flat.shape[1] > 1
        and not float((flat.max(axis=1) - flat.min(axis=1)).max()) > allowed_diff
    ):
        return None, "is the same value for every output"
    return None, None


def _activations(ir: Model, fn: str) -> list[str]:
    return [
        n.name
        for n in ir.nodes
        if getattr(n, "fn", None) == fn or getattr(n, "activation", None) == fn
    ]


@contextlib.contextmanager
def _keras_functions(ir: Model, dtype: str, measured: dict):
    """While the check runs, PyTorch's functional form of each known-inexact activation
    of the model (nn modules call it too) returns Keras's result on the same input;
    measured[fn] gets the largest relative difference of PyTorch's own result."""
    import numpy as np
    import torch
    import torch.nn.functional as F

    by_torch: dict[str, list[str]] = {}  # PyTorch's function -> the model's inexact ones
    for fn, inexact in KNOWN_INEXACT.items() if dtype == "float64" else ():
        if _activations(ir, fn):
            by_torch.setdefault(inexact.torch_name(fn), []).append(fn)
            measured[fn] = 0.0
    patched = {}
    for name, fns in by_torch.items():
        original = getattr(F, name)

        def substitute(x, *args, _original=original, _fns=tuple(fns), **kwargs):
            own = _original(x, *args, **kwargs)
            fn = next((f for f in _fns if KNOWN_INEXACT[f].is_call(kwargs)), None)
            if fn is None:  # a variant the model does not have: PyTorch's own
                return own
            ref = np.asarray(KNOWN_INEXACT[fn].keras_function(fn)(x.detach().numpy()))
            scale = max(1.0, float(np.abs(ref).max(initial=0.0)))
            diff = float(np.abs(own.detach().numpy() - ref).max(initial=0.0))
            measured[fn] = max(measured[fn], diff / scale)
            return torch.from_numpy(np.array(ref, copy=True)).to(x.dtype)

        patched[name] = original
        setattr(F, name, substitute)
    try:
        yield
    finally:
        for fn, original in patched.items():
            setattr(F, fn, original)


def check(
    ir: Model,
    dtype: str = "float64",
    batch: int = 2,
    seed: int = 0,
    direction: str = "keras2torch",
    nodes: bool = False,
    models=None,
) -> Result:
    """The comparison with Glorot's random kernels; with He's if under Glorot's the
    output is the same for every input (and so proves nothing). Nothing else is
    retried: a difference above the tolerance is the answer."""
    from backends.runtime import build_keras, build_torch

    if batch < 2:
        raise ValueError(
            "the batch must hold at least 2 inputs: one input cannot show that "
            "the output depends on the input"
        )
    models = models or (build_keras(ir, dtype), build_torch(ir, dtype))
    result = _check(ir, dtype, batch, seed, direction, nodes, models, "glorot")
    if result.problems == [SAME_FOR_EVERY_INPUT]:
        result = _check(ir, dtype, batch, seed, direction, nodes, models, "he")
    return result


def _check(ir: Model, dtype, batch, seed, direction, nodes, models, kernels) -> Result:
    import keras
    import numpy as np
    import torch

    from backends import transfer

    keras.utils.set_random_seed(seed)
    torch.manual_seed(seed)
    kmodel, tmodel = models
    tmodel.eval()
    if direction == "keras2torch":
        transfer.set_keras_weights(
            ir, kmodel, randomize(ir, transfer.keras_weights(ir, kmodel), seed, kernels)
        )
        transfer.keras_to_torch(ir, kmodel, tmodel)
    elif direction == "torch2keras":
        transfer.set_torch_weights(
            ir, tmodel, randomize(ir, transfer.torch_weights(ir, tmodel), seed, kernels)
        )
        transfer.torch_to_keras(ir, tmodel, kmodel)
    else:
        raise ValueError(f"unknown direction {direction!r}")
    x = raw_inputs(ir, np.random.default_rng(seed + 1).normal(size=(batch, *ir.input_shape)))
    x = x.astype(dtype)
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy() if x.ndim == 4 else x)
    seen: dict[str, np.ndarray] = {}
    handles = []
    comparable = [n for n in ir.nodes if _comparable(n)]
    if nodes:
        modules = dict(tmodel.named_modules())
        for n in comparable:
            handles.append(
                modules[n.name].register_forward_hook(
                    lambda m, i, o, name=n.name: seen.__setitem__(name, o.detach().numpy())
                )
            )
    measured: dict[str, float] = {}
    with torch.no_grad(), _keras_functions(ir, dtype, measured):
        out = tmodel(xt).numpy()
    if out.ndim == 4:  # a feature map: N x C x H x W -> N x H x W x C
        out = out.transpose(0, 2, 3, 1)
    for h in handles:
        h.remove()
    if nodes and comparable:  # a Keras model needs at least one output
        probe = keras.Model(kmodel.input, [kmodel.get_layer(n.name).output for n in comparable])
        refs = probe(x, training=False)
        refs = refs if isinstance(refs, (list, tuple)) else [refs]
    ref = np.asarray(kmodel(x, training=False))
    diff = float(np.abs(out - ref).max())
    scale = float(np.abs(ref).max())
    result = Result(diff, scale, TOLERANCE[dtype], dtype, direction, allowed(scale, dtype))
    result.kernels = kernels
    problem, degenerate = _problems(ref, out, result.allowed, whole_output=True)
    result.problems = [p for p in (problem, degenerate) if p]
    if nodes and comparable:
        for n, r in zip(comparable, refs):
            r = np.asarray(r)
            t = seen[n.name]
            if t.ndim == 4:
                t = t.transpose(0, 2, 3, 1)
            t = t.reshape(r.shape)
            s = float(np.abs(r).max())
            a = allowed(s, dtype)
            problem, degenerate = _problems(r, t, a, whole_output=False)
            result.nodes.append(
                NodeDiff(n.name, float(np.abs(t - r).max()), s, a, problem, degenerate)
            )
    for fn, size in measured.items():
        result.known.append(KnownDiff(fn, _activations(ir, fn), KNOWN_INEXACT[fn], size))
    return result


# ---------------------------------------------------------------------------
# the ONNX model in onnxruntime against the PyTorch and Keras builds
# ---------------------------------------------------------------------------

# onnxruntime's CPU provider has no float64 kernel for Conv, pooling, LRN and several
# activations: a model using one is compared in float32, at 1e-5 of the output scale
ONNX_TOLERANCE = {"float64": 1e-9, "float32": 1e-5}


def onnx_allowed(scale: float, dtype: str) -> float:
    """The largest max|diff| of onnxruntime's output that passes."""
    tol = ONNX_TOLERANCE[dtype]
    return tol * (max(1.0, scale) if dtype == "float64" else scale)


def runs_in_float64(proto) -> bool:
    """Whether onnxruntime's CPU provider has a float64 kernel for every node of the
    model: asked of a copy whose tensors are float64 graph inputs (no data copied)."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    def double(t):
        return TensorProto.DOUBLE if t == TensorProto.FLOAT else t

    g = proto.graph
    inputs = [helper.make_tensor_value_info(v.name, TensorProto.DOUBLE, None) for v in g.input] + [
        helper.make_tensor_value_info(t.name, double(t.data_type), list(t.dims))
        for t in g.initializer
    ]
    outputs = [helper.make_tensor_value_info(v.name, TensorProto.DOUBLE, None) for v in g.output]
    probe = helper.make_model(
        helper.make_graph(list(g.node), g.name, inputs, outputs),
        opset_imports=list(proto.opset_import),
        ir_version=proto.ir_version,
    )
    options = ort.SessionOptions()
    options.log_severity_level = 3
    try:
        ort.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime's NotImplemented: no float64 kernel for a node
        if type(e).__name__ == "NotImplemented":
            return False
        raise
    return True


def onnx_session(ir: Model, weights: dict, nodes: bool, opset: int | None = None):
    """(an onnxruntime session of the ONNX model, its float type, the values its
    PyTorch modules output): float64 when onnxruntime's CPU provider runs every
    operator in float64, else float32."""
    import onnxruntime as ort

    from backends.onnx.generator import GENERATOR

    proto, modules = GENERATOR.build_exposed(ir, weights, opset, "float32", expose=nodes)
    dtype = "float32"
    if runs_in_float64(proto):
        dtype = "float64"
        proto, modules = GENERATOR.build_exposed(ir, weights, opset, dtype, expose=nodes)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(
        proto.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )
    return session, dtype, modules


# kinds the PyTorch build writes as an expression, not a module of their own
NO_MODULE = ("input", "concat", "add", "mul")


def check_onnx(
    ir: Model,
    batch: int = 2,
    seed: int = 0,
    nodes: bool = False,
    against_keras: bool = True,
    opset: int | None = None,
) -> list[Result]:
    """The ONNX model of `ir` run by onnxruntime against the PyTorch build (float64)
    and, with `against_keras`, the Keras build (float64), all three with the same
    seeded random weights: one Result per comparison. With `nodes`, every node with
    a PyTorch module is compared with onnxruntime's value of it (exposed as an extra
    graph output), by the same rule as the output. Random kernels as `check` draws
    them: Glorot's, He's where Glorot's leave the output the same for every input."""
    if batch < 2:
        raise ValueError(
            "the batch must hold at least 2 inputs: one input cannot show that "
            "the output depends on the input"
        )
    results = _check_onnx(ir, batch, seed, nodes, against_keras, opset, "glorot")
    if results[0].problems == [SAME_FOR_EVERY_INPUT]:
        results = _check_onnx(ir, batch, seed, nodes, against_keras, opset, "he")
    return results


def _check_onnx(ir, batch, seed, nodes, against_keras, opset, kernels) -> list[Result]:
    import numpy as np
    import torch

    from backends import transfer
    from backends.onnx.generator import random_weights
    from backends.runtime import build_keras, build_torch

    torch.manual_seed(seed)
    weights = random_weights(ir, seed, kernels)
    tmodel = build_torch(ir, "float64")
    tmodel.eval()
    transfer.set_torch_weights(ir, tmodel, weights)
    session, dtype, module_outputs = onnx_session(ir, weights, nodes, opset)
    x = raw_inputs(ir, np.random.default_rng(seed + 1).normal(size=(batch, *ir.input_shape)))
    x_first = x.transpose(0, 3, 1, 2).copy() if x.ndim == 4 else x
    wanted = [o.name for o in session.get_outputs()]
    got = dict(zip(wanted, session.run(None, {ir.nodes[0].name: x_first.astype(dtype)})))
    seen: dict[str, np.ndarray] = {}
    handles = []
    comparable = [n for n in ir.nodes if n.kind not in NO_MODULE] if nodes else []
    modules = dict(tmodel.named_modules())
    for n in comparable:
        handles.append(
            modules[n.name].register_forward_hook(
                lambda m, i, o, name=n.name: seen.__setitem__(name, o.detach().numpy())
            )
        )
    with torch.no_grad():
        ref = tmodel(torch.from_numpy(x_first)).numpy()
    for h in handles:
        h.remove()
    out = got[ir.output].astype("float64")
    results = [_compare(ref, out, dtype, "onnxruntime against PyTorch", ("PyTorch", "ONNX"))]
    for n in comparable:
        r = seen[n.name]
        o = got[module_outputs[n.name]].astype("float64").reshape(r.shape)
        s = float(np.abs(r).max())
        a = onnx_allowed(s, dtype)
        problem, degenerate = _problems(r, o, a, False, ("PyTorch", "ONNX"))
        results[0].nodes.append(
            NodeDiff(n.name, float(np.abs(o - r).max()), s, a, problem, degenerate)
        )
    if against_keras:
        import keras

        keras.utils.set_random_seed(seed)
        kmodel = build_keras(ir, "float64")
        transfer.set_keras_weights(ir, kmodel, weights)
        kref = np.asarray(kmodel(x, training=False))
        out_last = out.transpose(0, 2, 3, 1) if out.ndim == 4 else out
        results.append(
            _compare(kref, out_last, dtype, "onnxruntime against Keras", ("Keras", "ONNX"))
        )
    for r in results:
        r.kernels = kernels
    return results


def _compare(ref, out, dtype: str, direction: str, names: tuple[str, str]) -> Result:
    import numpy as np

    diff = float(np.abs(out - ref).max())
    scale = float(np.abs(ref).max())
    r = Result(diff, scale, ONNX_TOLERANCE[dtype], dtype, direction, onnx_allowed(scale, dtype))
    problem, degenerate = _problems(ref, out, r.allowed, True, names)
    r.problems = [p for p in (problem, degenerate) if p]
    return r


def _comparable(n) -> bool:
    """Nodes whose PyTorch module outputs what the Keras layer outputs."""
    if n.kind in ("input", "concat", "add", "mul"):
        return False
    if n.kind == "transposed" and not isinstance(n.padding, str):
        return False  # Keras crops PyTorch's padding after the layer (Cropping2D)
    return not getattr(n, "activation", None)  # fused: torch applies it after the module


def report(ir: Model, r: Result) -> str:
    rel = f"{r.diff / r.scale:.3g}" if r.scale else "undefined (the reference is all zero)"
    lines = [
        (
            f"{ir.name}: {r.direction}, {r.dtype}: max|diff| {r.diff:.3g}, output scale "
            f"{r.scale:.3g}, relative {rel} (tolerance {r.tolerance:g})"
        )
    ]
    if r.kernels != "glorot":
        lines.append(
            f"  random kernels: {KERNEL_RULES[r.kernels]} (with Glorot's the output "
            "was the same for every input)"
        )
    if r.nodes:
        width = max(len(n.name) for n in r.nodes)
        for n in r.nodes:
            note = (
                "  " + n.problem.upper()
                if n.problem
                else "  DIVERGES"
                if n.diverges
                else f"  degenerate: the reference {n.degenerate}"
                if n.degenerate
                else ""
            )
            lines.append(
                f"  {n.name:<{width}}  max|diff| {n.diff:.3g}  (scale {n.scale:.3g}){note}"
            )
        first = r.first_divergence
        lines.append(f"first node to diverge: {first.name}" if first else "no node diverges")
        degenerate = [n.name for n in r.nodes if n.degenerate and not n.diverges]
        if degenerate:
            lines.append(
                f"{len(degenerate)} degenerate node(s), no evidence about themselves "
                f"(not a failure: the output is checked): {', '.join(degenerate)}"
            )
    for k in r.known:
        lines += [
            f"known float64 inexactness: {k.fn} at {', '.join(k.nodes)}",
            f"  cause: {k.inexact.cause}",
            (
                f"  PyTorch's {k.fn} against Keras's on this model's inputs: {k.measured:.3g} "
                f"relative, {'within' if k.ok else 'BEYOND'} the known bound "
                f"{k.inexact.bound:g} (measured {k.inexact.measured})"
            ),
            (
                f"  the comparisons above use Keras's {k.fn} in the PyTorch build: the rest "
                f"is held to {r.tolerance:g}"
            ),
        ]
    failures = r.failures
    lines.append(f"{ir.name}: ok" if not failures else f"{ir.name}: FAILED: " + "; ".join(failures))
    return "\n".join(lines)
