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


def alternate(runs: dict, rounds: int, steps: int, batch: int, sync=None) -> dict[str, float]:
    """Median images/s of each callable, timed in turn, `steps` calls per round, the
    order reversed every other round. `sync` (e.g. torch.cuda.synchronize) is called
    before and after each timed stretch, so that asynchronous device work counts."""
    rates = {name: [] for name in runs}
    sync = sync or (lambda: None)
    for i in range(rounds):
        for name in list(runs)[:: 1 if i % 2 == 0 else -1]:
            step = runs[name]
            sync()
            t = time.perf_counter()
            for _ in range(steps):
                step()
            sync()
            rates[name].append(steps * batch / (time.perf_counter() - t))
    return {name: statistics.median(r) for name, r in rates.items()}
