"""Parse + expand + infer time for generated specs of 100, 1,000 and 10,000
layers, in two shapes: every layer written out (the parser's worst case), and
residual blocks called one per layer group (the expander's). Prints the time
per layer, which is flat when compilation is linear.

    python benchmarks/compile_scaling.py [--repeat 5]

Goal (issue "archc core"): linear, and 10,000 layers in under 1 s.
"""

from __future__ import annotations

import argparse
import statistics
import time

from archc.pipeline import compile_spec

BLOCK = "block R(c) { add { C(c*3*3, s1, same) B A(relu) | identity } }\n"


def written_out(n: int) -> str:
    return "input 32*32*8\n" + "C(8*3*3, s1, same) B A(relu)\n" * (n // 3)


def blocks(n: int) -> str:
    return BLOCK + "input 32*32*8\n" + "R(8)\n" * (n // 4)


def measure(text: str, repeat: int) -> tuple[float, int]:
    times, nodes = [], 0
    for _ in range(repeat):
        t = time.perf_counter()
        model = compile_spec("generated.cnn", text)
        times.append(time.perf_counter() - t)
        nodes = len(model.nodes) - 1
    return statistics.median(times), nodes


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeat", type=int, default=5)
    args = p.parse_args()
    compile_spec("generated.cnn", written_out(30))  # load the grammar once
    print(f"{'shape':<12} {'layers':>7} {'median s':>9} {'us/layer':>9}")
    worst = {}
    for name, make in (("written-out", written_out), ("blocks", blocks)):
        per = []
        for n in (100, 1_000, 10_000):
            t, nodes = measure(make(n), args.repeat)
            per.append(t / nodes)
            worst[(name, n)] = t
            print(f"{name:<12} {nodes:>7} {t:>9.3f} {1e6 * t / nodes:>9.1f}")
        print(
            f"{name:<12} per-layer cost at 10,000 / at 100: {per[2] / per[0]:.2f} "
            "(1.0 is perfectly linear)"
        )
    slowest = max(t for (_, n), t in worst.items() if n == 10_000)
    print(
        f"10,000 layers: {slowest:.3f} s at most (goal < 1 s: "
        f"{'met' if slowest < 1 else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
