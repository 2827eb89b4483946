"""Training: `archc train` and `archc evaluate` on either backend.

    recipe.py       the one training recipe: spec + command line + DEFAULTS, resolved
    settings.py     a run's settings (the recipe and where it runs)
    schedule.py     the learning rate of every epoch
    loop.py         the run: epochs, validation, history, checkpoints, export
    checkpoints.py  checkpoints, resuming, exported weights
    history.py      history.json / .csv, curves.png
    progress.py     the live bar or periodic lines
    signals.py      SIGINT / SIGTERM (StopFlag)
    metrics.py      loss, top-1, top-5, confusion matrix
    files.py        atomic writes
    errors.py       RunError and the exit statuses

The backend's part lives in backends/<name>/train.py; `make_trainer` picks it.
This module imports nothing heavy: `archc build` loads archc.train.recipe alone.
"""

from __future__ import annotations

import importlib

TRAINERS = {
    "torch": ("backends.pytorch.train", "TorchTrainer"),
    "keras": ("backends.keras.train", "KerasTrainer"),
}


def make_trainer(backend: str, ir, settings):
    """The trainer of `backend` ("torch" or "keras") for IR model `ir`."""
    module, cls = TRAINERS[backend]
    return getattr(importlib.import_module(module), cls)(ir, settings)
