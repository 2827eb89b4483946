"""Copy weights from a generated Keras model to the generated PyTorch model of
the same spec, matched by IR node name (never by position).

Layouts: convolution kernels HWIO -> OIHW; dense kernels (in, out) -> (out, in)
(no permutation after Flatten: both builds flatten in channels-last order);
batch norm gamma, beta, moving mean and variance -> weight, bias, running_mean,
running_var; PReLU alphas (1, 1, C) or (C,) -> (C,). A missing, extra or
mis-shaped tensor is an error naming the node.
"""

from __future__ import annotations

from archc.ir import Model


class TransferError(Exception):
    pass


def keras_to_torch(ir: Model, keras_model, torch_model) -> int:
    """Copy every weight; returns the number of tensors copied."""
    import numpy as np
    import torch

    layers = {layer.name: layer for layer in keras_model.layers}
    modules = dict(torch_model.named_modules())
    copied = 0
    for node in ir.nodes:
        if node.params == 0:
            continue
        if node.name not in layers or node.name not in modules:
            raise TransferError(f"`{node.name}` is missing from the "
                                f"{'Keras' if node.name not in layers else 'PyTorch'} model")
        weights = [np.asarray(w) for w in layers[node.name].get_weights()]
        module = modules[node.name]
        if node.kind == "conv":
            pairs = [("weight", weights[0].transpose(3, 2, 0, 1))]
            pairs += [("bias", weights[1])] if node.use_bias else []
        elif node.kind == "dense":
            pairs = [("weight", weights[0].T)] + ([("bias", weights[1])] if node.use_bias else [])
        elif node.kind == "batchnorm":
            pairs = list(zip(("weight", "bias", "running_mean", "running_var"), weights))
        elif node.kind == "activation" and node.fn == "prelu":
            pairs = [("weight", weights[0].reshape(-1))]
        else:
            raise TransferError(f"`{node.name}`: no rule to copy the weights of `{node.kind}`")
        for attr, value in pairs:
            target = getattr(module, attr)
            if tuple(target.shape) != value.shape:
                raise TransferError(f"`{node.name}.{attr}`: PyTorch has {tuple(target.shape)}, "
                                    f"Keras gives {value.shape}")
            with torch.no_grad():
                target.copy_(torch.from_numpy(np.ascontiguousarray(value)).to(target.dtype))
            copied += 1
    return copied
