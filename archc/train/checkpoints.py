"""Checkpoints (atomic, best and last, each keeping the one it replaces as .prev),
resuming a run from them, and the weights a run exports (by IR node).

A checkpoint holds the model, the optimizer, the run's state (RunState) and
settings; `--resume` continues only with the same settings (MAY_CHANGE aside)."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from archc.ir import Model
from archc.train.errors import RunError
from archc.train.files import atomic_write
from archc.train.settings import Settings

if TYPE_CHECKING:
    from archc.train.loop import Trainer

# 2: the settings hold the whole resolved recipe (archc/train/recipe.py)
CHECKPOINT_FORMAT = 2


@dataclass
class RunState:
    """Where a run is: saved in every checkpoint, restored by --resume."""

    epoch: int = 0
    step: int = 0  # batches of `epoch` already done
    sums: list = field(default_factory=lambda: [0.0, 0.0, 0.0])  # loss*n, correct, n so far
    seconds: float = 0.0  # training time spent in `epoch` so far
    history: list = field(default_factory=list)
    best: float | None = None  # best validation accuracy
    best_epoch: int | None = None  # its epoch (counted from 1, as in history)
    schedule: dict = field(default_factory=dict)


# Exported weights, named so that one cannot be taken for the other. The run's
# best.ckpt / last.ckpt hold the same weights plus the optimizer's state.
LAST_WEIGHTS, BEST_WEIGHTS = "weights-last.npz", "weights-best.npz"


def write_weights_txt(f, weights: dict[str, np.ndarray]) -> None:
    """The seeds' weights.txt: for each tensor its name, its shape, then its values,
    one row of the last axis per line ("%.9g" gives a float32 back exactly), and a
    blank line. np.savetxt, not str(array): 11 M values take seconds, not hours."""
    for name in sorted(weights):
        w = np.asarray(weights[name])
        f.write(f"{name}\n{tuple(w.shape)}\n")
        np.savetxt(f, w.reshape(-1, w.shape[-1]) if w.ndim else w.reshape(1, 1), fmt="%.9g")
        f.write("\n")


def write_weights(path: str, weights: dict[str, np.ndarray]) -> None:
    from backends.transfer import save_weights

    atomic_write(path, lambda tmp: save_weights(tmp, weights))


def export(run_dir: str, weights: dict[str, np.ndarray]) -> None:
    write_weights(os.path.join(run_dir, LAST_WEIGHTS), weights)

    def write_txt(tmp):
        with open(tmp, "w", encoding="utf-8") as f:
            write_weights_txt(f, weights)

    atomic_write(os.path.join(run_dir, "weights.txt"), write_txt)


def check_fresh(run_dir: str) -> None:
    if os.path.exists(os.path.join(run_dir, "checkpoints", "last.ckpt")):
        raise RunError(
            f"{run_dir} already holds a run: continue it with --resume, or choose another --out"
        )


def resume_state(trainer: Trainer, settings: Settings, path: str, log) -> RunState:
    errors = []
    for candidate in (path, path + ".prev"):
        if not os.path.exists(candidate):
            continue
        try:
            meta = trainer.load_checkpoint(candidate)
        except Exception as e:  # noqa: BLE001 (a damaged file, whatever the error: fall back)
            errors.append(f"{candidate}: {e}")
            continue
        if meta.get("format") != CHECKPOINT_FORMAT:
            raise RunError(
                f"{candidate}: checkpoint format {meta.get('format')} is not {CHECKPOINT_FORMAT}"
            )
        same_settings(meta["settings"], settings, candidate)
        state = RunState(**meta["state"])
        log(f"resuming from {candidate}: epoch {state.epoch + 1}, step {state.step}")
        return state
    raise RunError(
        "nothing to resume: " + ("; ".join(errors) if errors else f"no checkpoint at {path}")
    )


# settings a resumed run may change: how long it goes on, and where it runs (the
# option help of --resume and docs/training.md say the same; a test holds them to it)
MAY_CHANGE = ("epochs", "device", "data_dir", "compile")


def same_settings(saved: dict, now: Settings, path: str) -> None:
    current = now.model_dump(mode="json")
    changed = [
        k for k in current if k not in MAY_CHANGE and k != "sources" and saved.get(k) != current[k]
    ]
    if changed:
        diffs = ", ".join(f"{k}: {saved.get(k)!r} -> {current[k]!r}" for k in changed)
        options = [f"--{k.replace('_', '-')}" for k in MAY_CHANGE]
        raise RunError(
            f"{path} was written with other settings ({diffs}); resume with the "
            f"same settings (only {', '.join(options[:-1])} and {options[-1]} "
            f"may change)"
        )


def checkpoint_backend(path: str) -> str | None:
    """The backend that wrote checkpoint `path` ("torch" or "keras"), read from the
    file's layout without importing a framework; None for anything else (such as
    archc's weights .npz). Both are zip archives: Keras's holds `meta.npy` beside its
    variables, torch.save's a pickle at `<archive>/data.pkl`."""
    import zipfile

    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except (OSError, zipfile.BadZipFile):
        return None
    if "meta.npy" in names and "model/paths.npy" in names:
        return "keras"
    if any(n.endswith("/data.pkl") for n in names):
        return "torch"
    return None


def load_checkpoint_weights(
    path: str, ir: Model, trainer: Trainer, make_trainer: Callable[[str], Trainer]
) -> dict:
    """Load the model weights of checkpoint `path` into `trainer`, whichever backend
    wrote it (the other one's goes through a trainer of its own and the weights by
    node). Returns the checkpoint's metadata."""
    backend = checkpoint_backend(path)
    if backend is None:
        raise RunError(f"{path} is not an archc checkpoint")
    own = trainer if backend == trainer.backend else make_trainer(backend)
    try:
        meta = own.load_checkpoint(path)
    except RunError:
        raise
    except Exception as e:  # noqa: BLE001 (another model's checkpoint, or a damaged file)
        raise RunError(f"cannot load {path} into {ir.name}: {str(e).splitlines()[0]}") from None
    if own is not trainer:
        trainer.set_weights(own.weights())
        own.close()
    return meta
