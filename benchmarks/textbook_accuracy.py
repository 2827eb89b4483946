"""The textbook's (seed 001) shape and colour classifiers, trained by `archc train`'s
runner on the rendered sets, on each backend and several seeds, beside the
accuracy the textbook reports.

    python benchmarks/textbook_accuracy.py [--seeds 0,1,2] [--backends torch,keras]
                                           [--epochs 20] [--lr 0.005]

Recipe: Adam, cosine schedule from --lr to 0, batch 32 (the textbook gives none).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

from _common import ROOT

sys.path.insert(0, str(ROOT))

from archc import data as D
from archc.pipeline import compile_spec
from archc.train import make_trainer
from archc.train.loop import train
from archc.train.settings import resolve

EXPERIMENTS = (("textbook_shape.cnn", "shapes", 0.96), ("textbook_color.cnn", "colors", 0.963))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--backends", default="torch,keras")
    p.add_argument("--epochs", type=int, default=20)
    p.add_argument("--lr", type=float, default=0.005)
    args = p.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    seeds = [int(s) for s in args.seeds.split(",")]
    print(
        f"{'spec':22} {'data':7} {'backend':7} {'textbook':>8}  final test accuracy per seed "
        f"{seeds}"
    )
    for spec, name, book in EXPERIMENTS:
        ir = compile_spec(str(ROOT / "specs" / spec))
        for backend in args.backends.split(","):
            finals = []
            for seed in seeds:
                settings = resolve(
                    ir,
                    backend,
                    name,
                    {"epochs": args.epochs, "lr": args.lr, "schedule": {"kind": "cosine"}},
                    seed=seed,
                )
                dataset = D.load(name, seed=seed)
                trainer = make_trainer(backend, ir, settings)
                with tempfile.TemporaryDirectory() as out:
                    result = train(ir, settings, dataset, trainer, out, progress=False)
                finals.append(result.history[-1]["val_accuracy"])
            print(
                f"{spec:22} {name:7} {backend:7} {book:8.1%}  "
                + "  ".join(f"{f:.1%}" for f in finals),
                flush=True,
            )


if __name__ == "__main__":
    main()
