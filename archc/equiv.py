"""`archc equiv`: one spec, two frameworks, the same function.

Builds the generated Keras and PyTorch models of a spec, gives the source
framework's model random weights with non-trivial batch-norm statistics and
PReLU slopes, copies them to the other by node name (backends/transfer.py),
runs the same random inputs in inference mode and compares the outputs.

Tolerances: float64, max|diff| <= 1e-9 * max(1, max|ref|); float32,
max|diff| <= 1e-4 * max|ref|. (Element-wise relative error is not usable:
logits near zero.) With `nodes=True` every node with a module in both builds is
compared too, and the first one that diverges is reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from archc.ir import Model

TOLERANCE = {"float64": 1e-9, "float32": 1e-4}


@dataclass
class NodeDiff:
    name: str
    diff: float
    scale: float


@dataclass
class Result:
    diff: float
    scale: float
    tolerance: float
    dtype: str
    direction: str
    nodes: list[NodeDiff] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.diff <= self.tolerance * self.scale

    @property
    def first_divergence(self) -> NodeDiff | None:
        for n in self.nodes:
            if n.diff > self.tolerance * max(1.0, n.scale):
                return n
        return None


def randomize(ir: Model, weights: dict, seed: int) -> dict:
    """Batch-norm statistics and PReLU slopes away from their trivial initial values."""
    import numpy as np

    rng = np.random.default_rng(seed)
    out = dict(weights)
    for key, v in weights.items():
        role = key.rsplit("/", 1)[1]
        if role == "moving_variance":
            out[key] = rng.uniform(0.5, 2.0, v.shape).astype(v.dtype)
        elif role == "moving_mean" or role == "beta":
            out[key] = rng.normal(0, 0.1, v.shape).astype(v.dtype)
        elif role == "gamma":
            out[key] = rng.uniform(0.5, 1.5, v.shape).astype(v.dtype)
        elif role == "alpha":
            out[key] = rng.uniform(0.05, 0.3, v.shape).astype(v.dtype)
    return out


def check(ir: Model, dtype: str = "float64", batch: int = 2, seed: int = 0,
          direction: str = "keras2torch", nodes: bool = False, models=None) -> Result:
    import keras
    import numpy as np
    import torch

    from backends import transfer
    from backends.runtime import build_keras, build_torch

    keras.utils.set_random_seed(seed)
    torch.manual_seed(seed)
    kmodel, tmodel = models or (build_keras(ir, dtype), build_torch(ir, dtype))
    tmodel.eval()
    if direction == "keras2torch":
        transfer.set_keras_weights(ir, kmodel, randomize(ir, transfer.keras_weights(ir, kmodel),
                                                         seed))
        transfer.keras_to_torch(ir, kmodel, tmodel)
    elif direction == "torch2keras":
        transfer.set_torch_weights(ir, tmodel, randomize(ir, transfer.torch_weights(ir, tmodel),
                                                         seed))
        transfer.torch_to_keras(ir, tmodel, kmodel)
    else:
        raise ValueError(f"unknown direction {direction!r}")
    x = np.random.default_rng(seed + 1).normal(size=(batch, *ir.input_shape)).astype(dtype)
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy() if x.ndim == 4 else x)
    seen: dict[str, np.ndarray] = {}
    handles = []
    comparable = [n for n in ir.nodes if _comparable(n)]
    if nodes:
        modules = dict(tmodel.named_modules())
        for n in comparable:
            handles.append(modules[n.name].register_forward_hook(
                lambda m, i, o, name=n.name: seen.__setitem__(name, o.detach().numpy())))
    with torch.no_grad():
        out = tmodel(xt).numpy()
    if out.ndim == 4:  # a feature map: N x C x H x W -> N x H x W x C
        out = out.transpose(0, 2, 3, 1)
    for h in handles:
        h.remove()
    if nodes:
        probe = keras.Model(kmodel.inputs, [kmodel.get_layer(n.name).output for n in comparable])
        refs = probe(x, training=False)
        refs = refs if isinstance(refs, (list, tuple)) else [refs]
    ref = np.asarray(kmodel(x, training=False))
    diff = float(np.abs(out - ref).max())
    scale = float(max(1.0, np.abs(ref).max())) if dtype == "float64" else \
        float(np.abs(ref).max())
    result = Result(diff, scale, TOLERANCE[dtype], dtype, direction)
    if nodes:
        for n, r in zip(comparable, refs):
            r = np.asarray(r)
            t = seen[n.name]
            if t.ndim == 4:
                t = t.transpose(0, 2, 3, 1)
            t = t.reshape(r.shape)
            result.nodes.append(NodeDiff(n.name, float(np.abs(t - r).max()),
                                         float(np.abs(r).max())))
    return result


def _comparable(n) -> bool:
    """Nodes whose PyTorch module outputs what the Keras layer outputs."""
    if n.kind in ("input", "concat", "add"):
        return False
    return not getattr(n, "activation", None)  # fused: torch applies it after the module


def report(ir: Model, r: Result) -> str:
    rel = r.diff / r.scale if r.scale else float("inf")
    verdict = "ok" if r.ok else "DIFFERENT"
    lines = [f"{ir.name}: {r.direction}, {r.dtype}: max|diff| {r.diff:.3g}, output scale "
             f"{r.scale:.3g}, relative {rel:.3g} (tolerance {r.tolerance:g}): {verdict}"]
    if r.nodes:
        width = max(len(n.name) for n in r.nodes)
        for n in r.nodes:
            lines.append(f"  {n.name:<{width}}  max|diff| {n.diff:.3g}  (scale {n.scale:.3g})")
        first = r.first_divergence
        lines.append(f"first node to diverge: {first.name}" if first else
                     "no node diverges")
    return "\n".join(lines)
