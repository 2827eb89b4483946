"""Helpers shared by the benchmarks: loading a generated module, timing rounds."""

from __future__ import annotations

import importlib.util
import pathlib
import statistics
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def load_generated(backend: str, name: str):
    path = ROOT / "generated" / backend / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"bench_{backend}_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def alternate(runs: dict, rounds: int, steps: int, batch: int) -> dict[str, float]:
    """Median images/s of each callable, timed in turn, `steps` calls per round."""
    rates = {name: [] for name in runs}
    for _ in range(rounds):
        for name, step in runs.items():
            t = time.perf_counter()
            for _ in range(steps):
                step()
            rates[name].append(steps * batch / (time.perf_counter() - t))
    return {name: statistics.median(r) for name, r in rates.items()}
