"""Float64 exactness of every activation archc supports: the function the Keras
build computes (Keras on TensorFlow) against the one the PyTorch build computes,
on 400,001 evenly spaced points in [-40, 40] and 200,000 draws of N(0, 3^2).
Printed: max |PyTorch - Keras| / max(1, |Keras|), the measure `archc equiv`
uses, and where it peaks. The figures in docs/backends.md come from this.

    python benchmarks/activation_exactness.py
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main() -> None:
    import keras
    import numpy as np
    import torch
    from torch import nn

    from archc.ir.kinds import ACTIVATIONS
    from backends.pytorch.generator import _float32
    from backends.runtime import keras_dtype

    x = np.concatenate(
        [np.linspace(-40, 40, 400001), np.random.default_rng(0).normal(0, 3, 200000)]
    )
    xt = torch.from_numpy(x)
    with keras_dtype("float64"):
        cases = {  # name: (Keras layer as the Keras build writes it, PyTorch module as the
            #              PyTorch build writes it)
            "leaky_relu 0.3 (default)": (
                keras.layers.LeakyReLU(negative_slope=0.3),
                nn.LeakyReLU(_float32(0.3)),
            ),
            "leaky_relu 0.1": (
                keras.layers.LeakyReLU(negative_slope=0.1),
                nn.LeakyReLU(_float32(0.1)),
            ),
            "leaky_relu 0.3, slope not rounded": (
                keras.layers.LeakyReLU(negative_slope=0.3),
                nn.LeakyReLU(0.3),
            ),
            "elu 0.1": (keras.layers.ELU(alpha=0.1), nn.ELU(alpha=0.1)),
            "elu 0.3": (keras.layers.ELU(alpha=0.3), nn.ELU(alpha=0.3)),
            "prelu": (keras.layers.PReLU(), None),
            "softmax (10 classes)": (keras.layers.Activation("softmax"), None),
        }
        modules = {
            "relu": nn.ReLU(),
            "relu6": nn.ReLU6(),
            "sigmoid": nn.Sigmoid(),
            "hard_sigmoid": nn.Hardsigmoid(),
            "tanh": nn.Tanh(),
            "linear": nn.Identity(),
            "elu": nn.ELU(),
            "selu": nn.SELU(),
            "gelu": nn.GELU(),
            "silu": nn.SiLU(),
            "softplus": nn.Softplus(),
        }
        for fn, module in modules.items():
            cases[fn] = (keras.layers.Activation(fn), module)
        assert {c.split()[0] for c in cases} == set(ACTIVATIONS)
        for name, (layer, module) in sorted(cases.items()):
            if name == "prelu":
                layer.build((1, x.size))
                slopes = np.random.default_rng(1).uniform(0.05, 0.3, x.size)
                layer.set_weights([slopes])
                ref = np.asarray(layer(x[None]))[0]
                prelu = nn.PReLU(x.size).double()
                with torch.no_grad():
                    prelu.weight.copy_(torch.from_numpy(slopes))
                    out = prelu(xt[None])[0].numpy()
                where = x
            elif name.startswith("softmax"):
                logits = x[: x.size // 10 * 10].reshape(-1, 10) / 4
                ref = np.asarray(layer(logits)).ravel()
                out = torch.softmax(torch.from_numpy(logits), dim=1).numpy().ravel()
                where = logits.ravel()
            else:
                ref = np.asarray(layer(x[None]))[0]
                with torch.no_grad():
                    out = module(xt).numpy()
                where = x
            rel = np.abs(out - ref) / np.maximum(1.0, np.abs(ref))
            i = int(rel.argmax())
            print(f"{name:36s} {rel.max():9.3g}" + (f"  at x = {where[i]:.6g}" if rel[i] else ""))


if __name__ == "__main__":
    main()
