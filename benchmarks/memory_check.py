"""archc's memory estimate (archc/memory.py) beside what CUDA allocates.

For each spec: the generated PyTorch model on the GPU, Adam, one warm-up step (so
that the optimizer state exists and cuDNN has chosen its algorithms), then one
measured training step:

- activations: torch.cuda.memory_allocated() after the forward pass minus before
  it (gradients set to None first), i.e. every tensor the forward pass leaves
  alive: what autograd saved, plus the model's output;
- training peak: torch.cuda.max_memory_allocated() over the whole step (forward,
  backward, optimizer step), against the estimate's training total (parameters,
  gradients, optimizer state, activations kept);
- inference peak: max_memory_allocated() over a no_grad forward pass in eval mode,
  against the estimate's inference total (weights and the most activations alive
  at once).

With `--dtype bfloat16` (or float16) the step runs under torch.autocast, the
estimate in the matching mixed-precision mode. Prints "no CUDA" and exits 0 where
CUDA is absent.

    python benchmarks/memory_check.py [--dtype float32|bfloat16|float16]
"""

from __future__ import annotations

import argparse
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

CASES = [  # spec, input override (None: the spec's), batch
    ("course_lenet5.cnn", None, 256),
    ("resnet18.cnn", None, 128),
    ("course_inception10.cnn", None, 128),
    ("mobilenet_v2.cnn", None, 32),
    ("resnet50.cnn", None, 32),
    ("densenet121.cnn", None, 16),
    ("unet.cnn", None, 2),
]


def _mib(n: int) -> str:
    return f"{n / (1 << 20):9.1f}"


def _err(est: int, meas: int) -> str:
    return f"{(est - meas) / meas:+7.1%}" if meas else "      -"


def measure(model_ir, batch: int, dtype: str):
    import torch

    from backends.runtime import build_torch

    torch.manual_seed(0)
    dev = torch.device("cuda")
    net = build_torch(model_ir).to(dev).train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    h, w, c = model_ir.input_shape
    x = torch.randn(batch, c, h, w, device=dev)
    auto = (
        torch.autocast("cuda", dtype=getattr(torch, dtype))
        if dtype != "float32"
        else torch.autocast("cuda", enabled=False)
    )

    def step(net, opt, x):
        opt.zero_grad(set_to_none=True)
        before = torch.cuda.memory_allocated()
        with auto:
            y = net(x)
        after = torch.cuda.memory_allocated()
        y.float().sum().backward()
        opt.step()
        del y
        return after - before

    step(net, opt, x)  # warm-up: optimizer state, cuDNN algorithms
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    activations = step(net, opt, x)
    torch.cuda.synchronize()
    training = torch.cuda.max_memory_allocated()

    opt.zero_grad(set_to_none=True)
    opt.state.clear()  # the optimizer state is not part of inference
    net.eval()
    if dtype != "float32":
        net = net.to(getattr(torch, dtype))
    x = x.to(next(net.parameters()).dtype)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated() - x.nbytes  # weights (the input is counted as live)
    with torch.no_grad():
        net(x)
    torch.cuda.synchronize()
    inference = torch.cuda.max_memory_allocated()
    return activations, training, inference, base


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default="float32")
    args = p.parse_args()
    try:
        import torch
    except ImportError:
        print("no CUDA (torch is not installed)")
        return 0
    if not torch.cuda.is_available():
        print("no CUDA")
        return 0

    from archc import memory
    from archc.pipeline import compile_spec

    print(f"{torch.cuda.get_device_name()}, torch {torch.__version__}, {args.dtype}, Adam")
    print(
        f"{'spec':<24}{'batch':>6} | {'activations MiB: est':>21} {'meas':>9} {'err':>7} | "
        f"{'training MiB: est':>18} {'meas':>9} {'err':>7} | "
        f"{'inference MiB: est':>19} {'meas':>9} {'err':>7}"
    )
    for spec, shape, batch in CASES:
        ir = compile_spec(str(ROOT / "specs" / spec), input_shape=shape)
        est = memory.estimate(ir, batch, args.dtype, "adam")
        acts, train, infer, _ = measure(ir, batch, args.dtype)
        torch.cuda.empty_cache()
        print(
            f"{spec:<24}{batch:>6} | {_mib(est.activations):>21} {_mib(acts)} "
            f"{_err(est.activations, acts)} | {_mib(est.training):>18} {_mib(train)} "
            f"{_err(est.training, train)} | {_mib(est.inference):>19} {_mib(infer)} "
            f"{_err(est.inference, infer)}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
