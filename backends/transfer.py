"""Weights between the generated Keras and PyTorch models of one spec, matched by
IR node name (never by position), through one neutral form: a dict from
"<node>/<role>" to a NumPy array in Keras's layout.

Each layer kind declares its tensors (`weights()` in archc/ir/kinds.py): the role,
the PyTorch attribute (a dotted path for a submodule's tensor), the permutation
from the neutral layout to PyTorch's and the reshape after it (a depthwise kernel),
and whether the neutral form stores it flattened (PReLU's alpha). Nothing here
knows a kind. A missing, extra or mis-shaped tensor is an error naming the node.

`save_weights` / `load_weights` store that dict as a NumPy .npz archive read
with allow_pickle=False: archc never unpickles a weight file.
"""

from __future__ import annotations

from archc.ir import Model
from archc.ir.kinds import Weight


class TransferError(Exception):
    pass


def _weighted(ir: Model) -> list[tuple[object, tuple[Weight, ...]]]:
    out = []
    for n in ir.nodes:
        ws = n.weights(list(n.in_shapes))
        if sum(w.size for w in ws) != n.params:
            raise TransferError(
                f"`{n.name}`: the tensors of `{n.kind}` do not add up to its {n.params} parameters"
            )
        if ws:
            out.append((n, ws))
    return out


def _tensor(module, path: str):
    """The tensor at attribute path `path` (`weight`, `pointwise.weight`)."""
    for part in path.split("."):
        module = getattr(module, part)
    return module


def _to_keras_layout(w: Weight, a):
    """PyTorch's tensor -> the neutral form."""
    if w.torch_shape is not None:  # unfold to the permuted neutral shape first
        a = a.reshape(tuple(w.shape[i] for i in w.to_torch))
    if w.to_torch is not None:
        inverse = sorted(range(len(w.to_torch)), key=w.to_torch.__getitem__)
        a = a.transpose(inverse)
    return a.reshape(-1) if w.flat else a


def _to_torch_layout(w: Weight, a):
    """The neutral form -> PyTorch's tensor."""
    if w.flat:
        return a.reshape(-1)
    if w.to_torch is not None:
        a = a.transpose(w.to_torch)
    return a.reshape(w.torch_shape) if w.torch_shape is not None else a


def keras_weights(ir: Model, model) -> dict:
    import numpy as np

    layers = {layer.name: layer for layer in model.layers}
    out = {}
    for node, ws in _weighted(ir):
        if node.name not in layers:
            raise TransferError(f"`{node.name}` is missing from the Keras model")
        values = layers[node.name].get_weights()
        if len(values) != len(ws):
            raise TransferError(
                f"`{node.name}`: the Keras layer has {len(values)} tensors, "
                f"expected {len(ws)} ({', '.join(w.role for w in ws)})"
            )
        for w, v in zip(ws, values):
            v = np.asarray(v)
            out[f"{node.name}/{w.role}"] = v.reshape(-1) if w.flat else v
    return out


def torch_weights(ir: Model, model) -> dict:
    modules = dict(model.named_modules())
    out = {}
    for node, ws in _weighted(ir):
        if node.name not in modules:
            raise TransferError(f"`{node.name}` is missing from the PyTorch model")
        m = modules[node.name]
        for w in ws:
            t = _tensor(m, w.torch)
            out[f"{node.name}/{w.role}"] = _to_keras_layout(w, t.detach().cpu().numpy().copy())
    return out


def _check_keys(ir: Model, weights: dict) -> None:
    expected = {f"{n.name}/{w.role}" for n, ws in _weighted(ir) for w in ws}
    missing = sorted(expected - set(weights))
    extra = sorted(set(weights) - expected)
    if missing:
        raise TransferError(
            f"no weights for `{missing[0]}`"
            + (f" and {len(missing) - 1} more" if len(missing) > 1 else "")
        )
    if extra:
        raise TransferError(
            f"unexpected weights `{extra[0]}`"
            + (f" and {len(extra) - 1} more" if len(extra) > 1 else "")
        )


def set_keras_weights(ir: Model, model, weights: dict) -> None:
    import numpy as np

    _check_keys(ir, weights)
    layers = {layer.name: layer for layer in model.layers}
    for node, ws in _weighted(ir):
        layer = layers[node.name]
        current = layer.get_weights()
        new = []
        for w, cur in zip(ws, current):
            v = np.asarray(weights[f"{node.name}/{w.role}"])
            if w.flat:
                v = v.reshape(cur.shape)
            if v.shape != cur.shape:
                raise TransferError(
                    f"`{node.name}/{w.role}`: Keras has {cur.shape}, the weights have {v.shape}"
                )
            new.append(v.astype(cur.dtype))
        layer.set_weights(new)
        # a layer that derives constants from its weights (Normalization's
        # broadcast mean and variance) recomputes them, as Keras's loading does
        finalize = getattr(layer, "finalize_state", None)
        if finalize is not None:
            finalize()


def set_torch_weights(ir: Model, model, weights: dict) -> None:
    import numpy as np
    import torch

    _check_keys(ir, weights)
    modules = dict(model.named_modules())
    for node, ws in _weighted(ir):
        m = modules[node.name]
        for w in ws:
            target = _tensor(m, w.torch)
            v = _to_torch_layout(w, np.asarray(weights[f"{node.name}/{w.role}"]))
            if tuple(target.shape) != v.shape:
                raise TransferError(
                    f"`{node.name}/{w.role}`: PyTorch has {tuple(target.shape)}, "
                    f"the weights give {v.shape}"
                )
            with torch.no_grad():
                # ascontiguousarray makes a 0-d array (a count) 1-d: reshape it back
                contiguous = np.ascontiguousarray(v).reshape(v.shape)
                target.copy_(torch.from_numpy(contiguous).to(target.dtype))


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
