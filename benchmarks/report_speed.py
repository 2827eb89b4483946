"""Wall time of a fresh `archc report specs/vgg16.cnn` process against a fresh
process that builds keras.applications.VGG16(weights=None) and prints its
summary: the question "what does this net cost?" answered with and without a
framework. Rounds alternate (archc, keras, archc, ...) so that both see the
same machine; medians are printed with their ratio.

    python benchmarks/report_speed.py [--rounds 7]

Goal (issue "archc core"): archc at least 15x faster, and under 0.3 s.
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
SPEC = ROOT / "specs" / "vgg16.cnn"
KERAS = ("import os; os.environ['TF_CPP_MIN_LOG_LEVEL']='3'\n"
         "import keras\n"
         "keras.applications.VGG16(weights=None).summary()\n")


def timed(cmd: list[str]) -> float:
    t = time.perf_counter()
    r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    elapsed = time.perf_counter() - t
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}")
    return elapsed


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=7)
    args = p.parse_args()
    archc = [sys.executable, "-m", "archc", "report", str(SPEC)]
    keras = [sys.executable, "-c", KERAS]
    bare = [sys.executable, "-c", "pass"]
    timed(archc), timed(keras)  # warm the file cache and the grammar cache
    a, k, b = [], [], []
    for _ in range(args.rounds):
        a.append(timed(archc))
        k.append(timed(keras))
        b.append(timed(bare))
    ma, mk, mb = statistics.median(a), statistics.median(k), statistics.median(b)
    print(f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    print(f"archc report vgg16     median {ma:.3f} s  (min {min(a):.3f}, max {max(a):.3f})")
    print(f"keras VGG16 summary    median {mk:.3f} s  (min {min(k):.3f}, max {max(k):.3f})")
    print(f"bare interpreter       median {mb:.3f} s")
    print(f"ratio keras/archc: {mk / ma:.1f}x  (goal >= 15x; archc goal < 0.3 s: "
          f"{'met' if ma < 0.3 else 'NOT met'})")


if __name__ == "__main__":
    main()
