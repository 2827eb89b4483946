"""How long `archc diagram` takes: layout + SVG in-process for ResNet152 and
DenseNet121 (the model compiled once, outside the timing), and the whole command in
a fresh process (`archc diagram specs/resnet152.cnn -o x.svg`, Python start-up and
compile included).

Measured side by side: each round times every net once, in an order reversed from
round to round, plus a same-net control (the first net again, as "<net> again"):
its ratio to the first should be 1.0, and how far it strays is how far the timings
can be trusted on this machine. Medians, min and max are printed.

    python benchmarks/diagram_speed.py [--rounds 9] [--nets resnet152 densenet121]

Goal (issue 16): `archc diagram` of ResNet152 in under a second, whole command.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

from _common import ROOT  # also puts the checkout on sys.path

from archc import diagram
from archc.pipeline import compile_spec


def alternate(runs: dict, rounds: int) -> dict[str, list[float]]:
    """Seconds per call of each callable, timed in turn, the order reversed every
    other round."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for i in range(rounds):
        for name in list(runs)[:: 1 if i % 2 == 0 else -1]:
            t = time.perf_counter()
            runs[name]()
            times[name].append(time.perf_counter() - t)
    return times


def line(name: str, seconds: list[float]) -> str:
    s = sorted(seconds)
    return (
        f"  {name:<26} median {statistics.median(s) * 1000:8.1f} ms "
        f"(min {s[0] * 1000:.1f}, max {s[-1] * 1000:.1f})"
    )


def ratio(label: str, num: list[float], den: list[float]) -> str:
    return f"  control: {label:<24} {statistics.median(num) / statistics.median(den):.2f}x"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=9)
    p.add_argument("--nets", nargs="+", default=["resnet152", "densenet121"])
    args = p.parse_args()

    models = {net: compile_spec(str(ROOT / "specs" / f"{net}.cnn")) for net in args.nets}
    first = args.nets[0]
    runs = {net: (lambda m=m: diagram.svg(m)) for net, m in models.items()}
    runs[f"{first} again"] = runs[first]
    for run in runs.values():  # warm up
        run()
    times = alternate(runs, args.rounds)
    print(f"layout + SVG, in-process ({args.rounds} rounds):")
    for net, m in models.items():
        print(line(f"{net} ({len(m.nodes)} nodes)", times[net]))
    print(line(f"{first} again", times[f"{first} again"]))
    print(ratio(f"{first} again / {first}", times[f"{first} again"], times[first]))

    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "x.svg")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        cmd = [sys.executable, "-m", "archc", "diagram", f"specs/{first}.cnn", "-o", out, "-q"]

        def command() -> None:
            subprocess.run(cmd, cwd=ROOT, env=env, check=True)

        command()  # warm the file cache
        whole = alternate({"archc diagram": command, "archc diagram again": command}, args.rounds)
    print(f"whole command, fresh process: archc diagram specs/{first}.cnn -o x.svg")
    print(line("archc diagram", whole["archc diagram"]))
    print(line("archc diagram again", whole["archc diagram again"]))
    print(ratio("again / first", whole["archc diagram again"], whole["archc diagram"]))


if __name__ == "__main__":
    main()
