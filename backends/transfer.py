"""Weights between the generated Keras and PyTorch models of one spec, matched by
IR node name (never by position), through one neutral form: a dict from
"<node>/<role>" to a NumPy array in Keras's layout.

Roles and layouts (Keras <-> PyTorch):
- conv:      kernel (kh, kw, in, out) <-> weight (out, in, kh, kw); bias
- dense:     kernel (in, out) <-> weight (out, in); bias. No permutation after
             Flatten: both builds flatten in channels-last order.
- batchnorm: gamma, beta, moving_mean, moving_variance <-> weight, bias,
             running_mean, running_var
- prelu:     alpha (1, 1, C) or (C,) <-> weight (C,)
A missing, extra or mis-shaped tensor is an error naming the node.

`save_weights` / `load_weights` store that dict as a NumPy .npz archive read
with allow_pickle=False: archc never unpickles a weight file.
"""

from __future__ import annotations

from archc.ir import Model

ROLES = {
    "conv": ("kernel", "bias"),
    "dense": ("kernel", "bias"),
    "batchnorm": ("gamma", "beta", "moving_mean", "moving_variance"),
    "prelu": ("alpha",),
}
TORCH_ATTR = {"kernel": "weight", "bias": "bias", "gamma": "weight", "beta": "bias",
              "moving_mean": "running_mean", "moving_variance": "running_var",
              "alpha": "weight"}


class TransferError(Exception):
    pass


def _roles(node) -> tuple[str, ...]:
    if node.kind in ("conv", "dense"):
        return ("kernel", "bias") if node.use_bias else ("kernel",)
    if node.kind == "batchnorm":
        return ROLES["batchnorm"]
    if node.kind == "activation" and node.fn == "prelu":
        return ROLES["prelu"]
    if node.params:
        raise TransferError(f"`{node.name}`: no rule for the weights of `{node.kind}`")
    return ()


def _weighted(ir: Model):
    return [(n, _roles(n)) for n in ir.nodes if n.params]


def _to_keras_layout(node, role, a):
    if role == "kernel" and node.kind == "conv":
        return a.transpose(2, 3, 1, 0)
    if role == "kernel" and node.kind == "dense":
        return a.T
    return a


def _to_torch_layout(node, role, a):
    if role == "kernel" and node.kind == "conv":
        return a.transpose(3, 2, 0, 1)
    if role == "kernel" and node.kind == "dense":
        return a.T
    if role == "alpha":
        return a.reshape(-1)
    return a


def keras_weights(ir: Model, model) -> dict:
    import numpy as np

    layers = {layer.name: layer for layer in model.layers}
    out = {}
    for node, roles in _weighted(ir):
        if node.name not in layers:
            raise TransferError(f"`{node.name}` is missing from the Keras model")
        values = layers[node.name].get_weights()
        if len(values) != len(roles):
            raise TransferError(f"`{node.name}`: the Keras layer has {len(values)} tensors, "
                                f"expected {len(roles)} ({', '.join(roles)})")
        for role, v in zip(roles, values):
            v = np.asarray(v)
            out[f"{node.name}/{role}"] = v.reshape(-1) if role == "alpha" else v
    return out


def torch_weights(ir: Model, model) -> dict:
    modules = dict(model.named_modules())
    out = {}
    for node, roles in _weighted(ir):
        if node.name not in modules:
            raise TransferError(f"`{node.name}` is missing from the PyTorch model")
        m = modules[node.name]
        for role in roles:
            t = getattr(m, TORCH_ATTR[role])
            out[f"{node.name}/{role}"] = _to_keras_layout(node, role,
                                                          t.detach().cpu().numpy().copy())
    return out


def _check_keys(ir: Model, weights: dict) -> None:
    expected = {f"{n.name}/{r}" for n, roles in _weighted(ir) for r in roles}
    missing = sorted(expected - set(weights))
    extra = sorted(set(weights) - expected)
    if missing:
        raise TransferError(f"no weights for `{missing[0]}`"
                            + (f" and {len(missing) - 1} more" if len(missing) > 1 else ""))
    if extra:
        raise TransferError(f"unexpected weights `{extra[0]}`"
                            + (f" and {len(extra) - 1} more" if len(extra) > 1 else ""))


def set_keras_weights(ir: Model, model, weights: dict) -> None:
    import numpy as np

    _check_keys(ir, weights)
    layers = {layer.name: layer for layer in model.layers}
    for node, roles in _weighted(ir):
        layer = layers[node.name]
        current = layer.get_weights()
        new = []
        for role, cur in zip(roles, current):
            v = np.asarray(weights[f"{node.name}/{role}"]).reshape(cur.shape) \
                if role == "alpha" else np.asarray(weights[f"{node.name}/{role}"])
            if v.shape != cur.shape:
                raise TransferError(f"`{node.name}/{role}`: Keras has {cur.shape}, "
                                    f"the weights have {v.shape}")
            new.append(v.astype(cur.dtype))
        layer.set_weights(new)


def set_torch_weights(ir: Model, model, weights: dict) -> None:
    import numpy as np
    import torch

    _check_keys(ir, weights)
    modules = dict(model.named_modules())
    for node, roles in _weighted(ir):
        m = modules[node.name]
        for role in roles:
            target = getattr(m, TORCH_ATTR[role])
            v = _to_torch_layout(node, role, np.asarray(weights[f"{node.name}/{role}"]))
            if tuple(target.shape) != v.shape:
                raise TransferError(f"`{node.name}/{role}`: PyTorch has {tuple(target.shape)}, "
                                    f"the weights give {v.shape}")
            with torch.no_grad():
                target.copy_(torch.from_numpy(np.ascontiguousarray(v)).to(target.dtype))


def keras_to_torch(ir: Model, keras_model, torch_model) -> int:
    weights = keras_weights(ir, keras_model)
    set_torch_weights(ir, torch_model, weights)
    return len(weights)


def torch_to_keras(ir: Model, torch_model, keras_model) -> int:
    weights = torch_weights(ir, torch_model)
    set_keras_weights(ir, keras_model, weights)
    return len(weights)


def save_weights(path: str, weights: dict) -> None:
    """An .npz archive of plain arrays keyed by `<node>/<role>` (Keras layout)."""
    import numpy as np

    with open(path, "wb") as f:
        np.savez(f, **weights)


def load_weights(path: str) -> dict:
    import numpy as np

    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}
