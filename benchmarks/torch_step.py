"""Forward+backward throughput (images/s) of the generated course ResNet18
(generated/torch/resnet18.py) against a hand-written PyTorch ResNet18 of the same
architecture, in one process, rounds alternating, eager and torch.compile.

The hand-written model computes the same function as the Keras spec: its
stride-2 3x3 convolutions pad (0, 1) as Keras `same` does on even inputs.
A second hand-written model with the usual symmetric padding=1 (a different
function, torchvision's habit) is timed too, to show what Keras's uneven
padding costs.

    python benchmarks/torch_step.py [--rounds 5] [--steps 10] [--batch 32] [--no-compile]
                                    [--bf16] [--channels-last]

A second instance of the generated model is timed as a control: its ratio to the
first shows the noise of the measurement.

Goal (issue "PyTorch backend"): generated / hand-written >= 0.98.
"""

from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F
from _common import alternate, load_generated
from torch import nn


class Block(nn.Module):
    def __init__(self, cin, cout, stride, keras_pad):
        super().__init__()
        self.stride, self.keras_pad = stride, keras_pad and stride == 2
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 0 if self.keras_pad else 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout, eps=1e-3, momentum=0.01)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout, eps=1e-3, momentum=0.01)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(
                nn.Conv2d(cin, cout, 1, stride, bias=False),
                nn.BatchNorm2d(cout, eps=1e-3, momentum=0.01),
            )

    def forward(self, x):
        y = F.pad(x, (0, 1, 0, 1)) if self.keras_pad else x
        y = torch.relu(self.bn1(self.conv1(y)))
        y = self.bn2(self.conv2(y))
        return torch.relu(y + (x if self.down is None else self.down(x)))


class HandResNet18(nn.Module):
    def __init__(self, keras_pad=True):
        super().__init__()
        self.conv = nn.Conv2d(3, 64, 3, 1, 1, bias=False)
        self.bn = nn.BatchNorm2d(64, eps=1e-3, momentum=0.01)
        blocks, cin = [], 64
        for cout, stride in (
            (64, 1),
            (64, 1),
            (128, 2),
            (128, 1),
            (256, 2),
            (256, 1),
            (512, 2),
            (512, 1),
        ):
            blocks.append(Block(cin, cout, stride, keras_pad))
            cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(512, 10)

    def forward(self, x):
        x = self.blocks(torch.relu(self.bn(self.conv(x))))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def step_fn(model, x, y, bf16=False):
    def step():
        model.zero_grad(set_to_none=True)
        with torch.autocast(x.device.type, torch.bfloat16, enabled=bf16):
            loss = F.cross_entropy(model(x), y)
        loss.backward()

    return step


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--no-compile", action="store_true")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast (as the runner on a GPU)")
    p.add_argument("--channels-last", action="store_true", help="channels-last memory format")
    args = p.parse_args()
    torch.manual_seed(0)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    x = torch.randn(args.batch, 3, 32, 32, device=device).to(memory_format=fmt)
    y = torch.randint(0, 10, (args.batch,), device=device)
    generated = load_generated("torch", "resnet18").Resnet18
    models = {
        "generated": generated(),
        "generated (control)": generated(),
        "hand (same fn)": HandResNet18(keras_pad=True),
        "hand (pad=1)": HandResNet18(keras_pad=False),
    }
    counts = {sum(q.numel() for q in m.parameters()) for m in models.values()}
    assert len(counts) == 1, counts
    sync = torch.cuda.synchronize if device == "cuda" else None
    if device == "cuda":
        torch.backends.cudnn.benchmark = True
    print(
        f"device: {device}, batch {args.batch}, torch {torch.__version__}, "
        f"bf16 {args.bf16}, channels-last {args.channels_last}"
    )
    modes = [("eager", lambda m: m)]
    if not args.no_compile:
        modes.append(("compile", torch.compile))
    for mode, wrap in modes:
        steps = {}
        for name, m in models.items():
            m = wrap(m.to(device, memory_format=fmt).train())
            step = step_fn(m, x, y, args.bf16)
            for _ in range(3):  # warm up (and compile)
                step()
            steps[name] = step
        rates = alternate(steps, args.rounds, args.steps, args.batch, sync)
        for name, r in rates.items():
            print(f"{mode:<8} {name:<20} {r:10.1f} images/s")
        ratio = rates["generated"] / rates["hand (same fn)"]
        print(
            f"{mode:<8} ratio generated / hand-written (same function): {ratio:.3f} "
            f"(goal >= 0.98: {'met' if ratio >= 0.98 else 'NOT met'}); control "
            f"generated / generated: {rates['generated (control)'] / rates['generated']:.3f}; "
            f"cost of Keras's uneven padding: "
            f"{rates['hand (pad=1)'] / rates['hand (same fn)']:.3f}x"
        )


if __name__ == "__main__":
    main()
