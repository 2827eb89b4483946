"""Forward+backward throughput (images/s) of the generated torchvision MobileNetV2
(generated/torch/mobilenet_v2_torchvision.py) against a hand-written PyTorch
MobileNetV2 of the same function, in one process, rounds alternating, eager and
torch.compile.

The hand-written model is written the way torchvision's mobilenetv2.py writes it:
an `InvertedResidual` module holding an nn.Sequential and a `use_res_connect` flag,
ReLU6(inplace=True), features -> adaptive average pooling -> dropout -> linear.
Before timing, the script proves that it computes the generated model's function:
the generated model's parameters and batch-norm statistics (set to random values)
are copied into it tensor by tensor, in order, every pair of shapes equal, and the
two outputs on one input in float64 (inference mode) must agree to 1e-9 relative
to the output's scale (and vary across the batch); otherwise no ratio is reported.

    python benchmarks/mobilenet_v2_step.py [--rounds 5] [--steps 1] [--batch 16]
                                           [--size 128] [--no-compile]

A second instance of the generated model is timed as a control: its ratio to the
first shows the noise of the measurement. The machine's load (`uptime`) is
printed before and after.

Goal (issue 14): generated / hand-written >= 0.98.
"""

from __future__ import annotations

import argparse
import subprocess

import torch
import torch.nn.functional as F
from _common import alternate, load_generated
from torch import nn

# t (expansion), c (output channels), n (blocks), s (stride of the first block)
SETTING = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
]


def conv_bn_relu6(inp, oup, kernel, stride=1, groups=1):
    return [
        nn.Conv2d(inp, oup, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(oup),
        nn.ReLU6(inplace=True),
    ]


class InvertedResidual(nn.Module):
    def __init__(self, inp, oup, stride, expand_ratio):
        super().__init__()
        hidden = inp * expand_ratio
        self.use_res_connect = stride == 1 and inp == oup
        layers = conv_bn_relu6(inp, hidden, 1) if expand_ratio != 1 else []
        layers += conv_bn_relu6(hidden, hidden, 3, stride, groups=hidden)
        layers += [nn.Conv2d(hidden, oup, 1, bias=False), nn.BatchNorm2d(oup)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res_connect else self.conv(x)


class HandMobileNetV2(nn.Module):
    def __init__(self, num_classes=1000):
        super().__init__()
        features = conv_bn_relu6(3, 32, 3, 2)
        inp = 32
        for t, c, n, s in SETTING:
            for i in range(n):
                features.append(InvertedResidual(inp, c, s if i == 0 else 1, t))
                inp = c
        features += conv_bn_relu6(inp, 1280, 1)
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))

    def forward(self, x):
        x = self.features(x)
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.classifier(x)


def prove_same_function(generated: nn.Module, hand: nn.Module, size: int) -> float:
    """Copy the generated model's tensors (randomised first, so that batch norm is not
    the identity and the output varies with the input well beyond the tolerance) into the hand-written one in order, and compare outputs in float64.
    Returns max|diff|; raises SystemExit when the two differ."""
    gen = generated.double().eval()
    ref = hand.double().eval()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, t in gen.state_dict().items():
            if name.endswith("num_batches_tracked"):
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g, dtype=t.dtype) * 1.5 + 0.5)
            elif name.endswith(("running_mean", ".bias")):
                t.copy_(torch.randn(t.shape, generator=g, dtype=t.dtype) * 0.1)
            elif t.dim() == 1:  # batch-norm gamma
                t.copy_(torch.rand(t.shape, generator=g, dtype=t.dtype) + 0.5)
            else:  # a kernel: He-normal over its fan-in, so the signal keeps its scale
                std = (2.0 / t[0].numel()) ** 0.5
                t.copy_(torch.randn(t.shape, generator=g, dtype=t.dtype) * std)
    theirs, ours = gen.state_dict(), ref.state_dict()
    if len(theirs) != len(ours):
        raise SystemExit(f"refused: {len(theirs)} tensors generated, {len(ours)} hand-written")
    copied = {}
    for (gname, gt), (hname, ht) in zip(theirs.items(), ours.items()):
        if gt.shape != ht.shape:
            raise SystemExit(
                f"refused: generated {gname} {tuple(gt.shape)} meets hand-written "
                f"{hname} {tuple(ht.shape)}"
            )
        copied[hname] = gt.clone()
    ref.load_state_dict(copied)
    x = torch.randn(2, 3, size, size, generator=g, dtype=torch.float64)
    with torch.no_grad():
        a, b = gen(x), ref(x)
    diff = float((a - b).abs().max())
    allowed = 1e-9 * max(1.0, float(a.abs().max()))
    spread = float((a[0] - a[1]).abs().max())
    if not diff <= allowed or not spread > allowed:
        raise SystemExit(
            f"refused: the hand-written model does not compute the generated one's "
            f"function (max|diff| {diff:.3g}, allowed {allowed:.3g}, spread across the "
            f"batch {spread:.3g}): no ratio is reported"
        )
    gen.float().train()
    ref.float().train()
    return diff


def step_fn(model, x, y):
    def step():
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()

    return step


def uptime() -> str:
    try:
        return subprocess.run(
            ["uptime"], check=False, capture_output=True, text=True
        ).stdout.strip()
    except OSError as e:
        return f"(uptime: {e})"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=1)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--size", type=int, default=128, help="input height and width")
    p.add_argument("--no-compile", action="store_true")
    args = p.parse_args()
    torch.manual_seed(0)
    generated = load_generated("torch", "mobilenet_v2_torchvision").MobilenetV2Torchvision
    models = {
        "generated": generated(),
        "generated (control)": generated(),
        "hand-written": HandMobileNetV2(),
    }
    counts = {name: sum(q.numel() for q in m.parameters()) for name, m in models.items()}
    assert len(set(counts.values())) == 1, counts
    diff = prove_same_function(generated(), HandMobileNetV2(), args.size)
    print(f"load before: {uptime()}")
    print(
        f"device: cpu ({torch.get_num_threads()} threads), batch {args.batch} at "
        f"{args.size}x{args.size}, {args.steps} steps a round, {args.rounds} rounds, "
        f"torch {torch.__version__}; {counts['generated']:,} parameters each; same "
        f"function: float64 max|diff| {diff:.3g}"
    )
    x = torch.randn(args.batch, 3, args.size, args.size)
    y = torch.randint(0, 1000, (args.batch,))
    modes = [("eager", lambda m: m)]
    if not args.no_compile:
        modes.append(("compile", torch.compile))
    for mode, wrap in modes:
        steps = {}
        for name, m in models.items():
            step = step_fn(wrap(m.train()), x, y)
            for _ in range(2):  # warm up (and compile)
                step()
            steps[name] = step
        rates = alternate(steps, args.rounds, args.steps, args.batch)
        for name, r in rates.items():
            print(f"{mode:<8} {name:<20} {r:10.1f} images/s")
        ratio = rates["generated"] / rates["hand-written"]
        print(
            f"{mode:<8} ratio generated / hand-written (same function): {ratio:.3f} "
            f"(goal >= 0.98: {'met' if ratio >= 0.98 else 'NOT met'}); control "
            f"generated (control) / generated: "
            f"{rates['generated (control)'] / rates['generated']:.3f}"
        )
    print(f"load after: {uptime()}")


if __name__ == "__main__":
    main()
