"""Training throughput (images/s) of the course ResNet18 (specs/resnet18.cnn) under
archc's shared runner, on each backend, and the runner's overhead against a
minimal hand-written loop over the same generated model, in one process, rounds
alternating.

- torch runner:   archc.train.loop.train for one epoch (batches from archc.data,
                  per-step reporting, NaN and signal checks, progress), as
                  `archc train` runs it; images/s of the training epoch.
- torch minimal:  for x, y in batches: loss(model(x), y).backward(); step()
                  over the same model, data and batch size.
- keras runner / keras fit: the runner's model.fit per epoch against a bare
                  model.fit on the same arrays.

    python benchmarks/train_throughput.py [--rounds 6] [--steps 6] [--batch 32]
                                          [--device auto|cpu|cuda] [--backends torch,keras]

Goal (issue "training runners"): torch runner / minimal >= 0.95 (overhead <= 5%),
compared best against best: on a shared 2-core CPU a round's rate moves by
+-10%, more than the overhead measured; the medians are printed too.
Data are random CIFAR-shaped images (synthetic): the figure is throughput only.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np
from _common import ROOT

sys.path.insert(0, str(ROOT))

from archc import data as D
from archc.pipeline import compile_spec
from archc.train import make_trainer
from archc.train.loop import train
from archc.train.settings import resolve


def run_epoch(ir, settings, dataset, trainer, whole: list) -> float:
    """The runner's own images/s of the training epoch; appends to `whole` the rate
    over the entire train() call (validation, history, curves, checkpoints,
    weight export included)."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as out:
        result = train(ir, settings, dataset, trainer, out, progress=False)
    whole.append(len(dataset.x_train) / (time.perf_counter() - start))
    return result.history[-1]["images_per_second"]


def torch_minimal(trainer, dataset, batch: int) -> float:
    import torch

    from backends.pytorch.train import crossentropy

    model, device = trainer.model, trainer.device
    model.train()
    optimizer = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    x_all = dataset.x_train.astype(np.float32) / 255
    start = time.perf_counter()
    for s in range(0, len(x_all), batch):
        x = torch.from_numpy(x_all[s : s + batch]).permute(0, 3, 1, 2).contiguous().to(device)
        y = torch.from_numpy(dataset.y_train[s : s + batch]).to(device)
        loss = crossentropy(model(x), y, probabilities=True).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return len(x_all) / (time.perf_counter() - start)


def keras_fit(trainer, dataset, batch: int) -> float:
    x = dataset.x_train.astype(np.float32) / 255
    start = time.perf_counter()
    trainer.model.fit(x, dataset.y_train, batch_size=batch, epochs=1, shuffle=False, verbose=0)
    return len(x) / (time.perf_counter() - start)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--rounds", type=int, default=6)
    p.add_argument("--steps", type=int, default=6, help="batches per timed epoch")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--device", default="auto")
    p.add_argument("--backends", default="torch,keras")
    args = p.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

    ir = compile_spec(str(ROOT / "specs" / "resnet18.cnn"))
    n = args.steps * args.batch
    dataset = D.make_synthetic((32, 32, 3), 10, n_train=n, n_test=args.batch)
    from archc.ir.training import Optimizer

    rows = []
    for backend in args.backends.split(","):
        settings = resolve(
            ir,
            backend,
            "synthetic",
            {
                "epochs": 1,
                "batch_size": args.batch,
                "lr": 1e-3,
                "optimizer": Optimizer(name="sgd", momentum=0.9),
                "schedule": {"kind": "constant"},
                "augment": False,
            },
            device=args.device,
        )
        trainer = make_trainer(backend, ir, settings)
        bare = torch_minimal if backend == "torch" else keras_fit
        bare_name = "minimal loop" if backend == "torch" else "bare model.fit"
        whole: list[float] = []
        run_epoch(ir, settings, dataset, trainer, [])  # warm-up: allocation, tracing
        bare(trainer, dataset, args.batch)
        rates = {"runner": [], bare_name: []}
        timed = {
            "runner": lambda settings=settings, trainer=trainer, whole=whole: run_epoch(
                ir, settings, dataset, trainer, whole
            ),
            bare_name: lambda bare=bare, trainer=trainer: bare(trainer, dataset, args.batch),
        }
        for r in range(args.rounds):  # alternate, and alternate which goes first
            for name in ("runner", bare_name) if r % 2 == 0 else (bare_name, "runner"):
                rates[name].append(timed[name]())
        rows.append(
            (backend, trainer.describe(), rates["runner"], bare_name, rates[bare_name], whole)
        )
        trainer.close()

    print(
        f"ResNet18 (specs/resnet18.cnn), 32x32x3, batch {args.batch}, {args.steps} steps per "
        f"epoch, {args.rounds} alternating rounds; best (median) images/s"
    )
    for backend, engine, ours, bare_name, theirs, whole in rows:
        print(f"{backend:6} {engine}")
        print(
            f"       runner {max(ours):7.1f} ({statistics.median(ours):.1f})   {bare_name} "
            f"{max(theirs):7.1f} ({statistics.median(theirs):.1f})   ratio of best "
            f"{max(ours) / max(theirs):.3f}, of medians "
            f"{statistics.median(ours) / statistics.median(theirs):.3f}"
        )
        print(
            f"       runner end to end (validation, files, export included) {max(whole):7.1f} "
            f"({statistics.median(whole):.1f})   ratio of best {max(whole) / max(theirs):.3f}"
        )
    torch_rows = [r for r in rows if r[0] == "torch"]
    if torch_rows:
        ratio = max(torch_rows[0][2]) / max(torch_rows[0][4])
        print(
            f"torch runner / minimal loop (best of {args.rounds}): {ratio:.3f} "
            f"(goal >= 0.95: {'met' if ratio >= 0.95 else 'NOT met'})"
        )


if __name__ == "__main__":
    main()
