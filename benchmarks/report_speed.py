"""Wall time of a fresh `archc report specs/<net>.cnn` process against a fresh
process that builds keras.applications.<Net>(weights=None) and prints its
summary: the question "what does this net cost?" answered with and without a
framework, for VGG16, ResNet152 and EfficientNet-B0.

Measured side by side: each round runs every command once, in an order that
rotates from round to round (so that neither side always goes first), and a
same-command control (the archc report run twice per round, as "archc" and
"archc again") shows the noise: its ratio should be 1.0, and how far it strays
is how far any other ratio can be trusted. Medians, min and max are printed,
with the ratio of the medians and the spread of the per-round ratios.

    python benchmarks/report_speed.py [--rounds 7] [--nets vgg16 resnet152 efficientnet_b0]

Goal (issue "archc core"): archc at least 15x faster than Keras on VGG16, and
under 0.3 s.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
# spec -> keras.applications class
NETS = {"vgg16": "VGG16", "resnet152": "ResNet152", "efficientnet_b0": "EfficientNetB0"}
KERAS = (
    "import os; os.environ['TF_CPP_MIN_LOG_LEVEL']='3'\n"
    "import keras\n"
    "keras.applications.{cls}(weights=None).summary()\n"
)


def timed(cmd: list[str]) -> float:
    t = time.perf_counter()
    r = subprocess.run(
        cmd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=False,
    )
    elapsed = time.perf_counter() - t
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}")
    return elapsed


def measure(commands: dict[str, list[str]], rounds: int) -> dict[str, list[float]]:
    """Seconds per command and round; round i starts at command i (rotating order)."""
    for cmd in commands.values():  # warm the file cache and archc's grammar cache
        timed(cmd)
    names = list(commands)
    times: dict[str, list[float]] = {n: [] for n in names}
    for i in range(rounds):
        for name in names[i % len(names) :] + names[: i % len(names)]:
            times[name].append(timed(commands[name]))
    return times


def ratio_line(label: str, num: list[float], den: list[float]) -> str:
    per_round = sorted(a / b for a, b in zip(num, den))
    return (
        f"  {label:<38} {statistics.median(num) / statistics.median(den):6.2f}x "
        f"(per round: min {per_round[0]:.2f}, median {statistics.median(per_round):.2f}, "
        f"max {per_round[-1]:.2f})"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--nets", nargs="+", choices=tuple(NETS), default=list(NETS))
    args = p.parse_args()
    print(
        f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, "
        f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} at start"
    )
    for net in args.nets:
        archc = [sys.executable, "-m", "archc", "report", f"specs/{net}.cnn"]
        commands = {
            "archc": archc,
            "keras": [sys.executable, "-c", KERAS.format(cls=NETS[net])],
            "archc again": archc,
            "bare interpreter": [sys.executable, "-c", "pass"],
        }
        times = measure(commands, args.rounds)
        print(f"\n{net}: {args.rounds} rounds, order rotating")
        for name, t in times.items():
            label = {
                "archc": f"archc report {net}",
                "keras": f"keras {NETS[net]} summary",
                "archc again": f"archc report {net} (again)",
            }.get(name, name)
            print(
                f"  {label:<38} median {statistics.median(t):.3f} s  "
                f"(min {min(t):.3f}, max {max(t):.3f})"
            )
        print(ratio_line("keras / archc", times["keras"], times["archc"]))
        print(ratio_line("archc again / archc (noise)", times["archc again"], times["archc"]))
        if net == "vgg16":
            ma = statistics.median(times["archc"])
            print(
                f"  goals: keras/archc >= 15x, archc < 0.3 s: "
                f"{'met' if ma < 0.3 else 'NOT met'} ({ma:.3f} s)"
            )
    print(f"\nload average {' '.join(f'{x:.2f}' for x in os.getloadavg())} at the end")


if __name__ == "__main__":
    main()
