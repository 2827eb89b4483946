"""CPU inference throughput (images/s) of the course ResNet18 for CIFAR-10
(specs/resnet18.cnn, 32 x 32 x 3): the ONNX model archc writes, run by onnxruntime,
against the generated PyTorch model (generated/torch/resnet18.py) in eager mode, in
one process, the same weights in both, rounds alternating their order.

    python benchmarks/onnx_throughput.py [--rounds 7] [--steps 10] [--batch 32] [--threads N]

A second onnxruntime session of the same model and a second instance of the PyTorch
model are timed as controls: their ratios to the first show the noise of the
measurement. Both runtimes use the same number of threads (default: torch's). The
machine's load average is printed before and after: other work on the machine skews
both sides, not necessarily equally.
"""

from __future__ import annotations

import argparse
import os

import numpy as np
import onnxruntime as ort
import torch
from _common import ROOT, alternate, load_generated

from archc.pipeline import compile_spec
from backends import transfer
from backends.onnx.generator import GENERATOR, random_weights


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    ir = compile_spec(str(ROOT / "specs" / "resnet18.cnn"))
    weights = random_weights(ir)
    proto = GENERATOR.generate(ir, weights=weights)

    def session():
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        options.inter_op_num_threads = 1
        # onnxruntime's idle threads spin by default, taking the cores from whatever
        # runs next (the PyTorch model, in this benchmark): off, for a fair comparison
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return ort.InferenceSession(proto, options, providers=["CPUExecutionProvider"])

    cls = load_generated("torch", "resnet18").Resnet18
    models = [cls().eval(), cls().eval()]
    for m in models:
        transfer.set_torch_weights(ir, m, weights)
    x = np.random.default_rng(0).normal(size=(args.batch, 3, 32, 32)).astype(np.float32)
    xt = torch.from_numpy(x)
    sessions = [session(), session()]
    with torch.no_grad():
        ref = models[0](xt).numpy()
    got = sessions[0].run(None, {"input": x})[0]
    diff = float(np.abs(got - ref).max()) / float(np.abs(ref).max())
    assert diff <= 1e-5, diff  # the same function, or the timing means nothing

    def ort_step(s):
        return lambda: s.run(None, {"input": x})

    def torch_step(m):
        def step():
            with torch.no_grad():
                m(xt)

        return step

    runs = {
        "onnxruntime": ort_step(sessions[0]),
        "onnxruntime (control)": ort_step(sessions[1]),
        "torch eager": torch_step(models[0]),
        "torch eager (control)": torch_step(models[1]),
    }
    for run in runs.values():  # warm up
        for _ in range(3):
            run()
    print(
        f"resnet18 (CIFAR 32 x 32), batch {args.batch}, {args.threads} thread(s), "
        f"onnxruntime {ort.__version__}, torch {torch.__version__}; "
        f"max relative difference {diff:.2g}; load average {load()} at start"
    )
    rates = alternate(runs, args.rounds, args.steps, args.batch)
    for name, r in rates.items():
        print(f"{name:<24} {r:10.1f} images/s")
    print(
        f"ratio onnxruntime / torch eager: {rates['onnxruntime'] / rates['torch eager']:.3f}; "
        f"controls: onnxruntime {rates['onnxruntime (control)'] / rates['onnxruntime']:.3f}, "
        f"torch {rates['torch eager (control)'] / rates['torch eager']:.3f}; "
        f"load average {load()} at end"
    )


if __name__ == "__main__":
    main()
