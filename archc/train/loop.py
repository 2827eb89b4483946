"""The run: everything about training that does not depend on the framework. A
backend supplies a `Trainer` (backends/<name>/train.py); this loop drives it the
same way for both:

    settings  = archc.train.settings.resolve       command line > spec > defaults
    data      = archc.data.load + fit_to_spec      one reader per file format
    for epoch:  learning rate (archc.train.schedule)  the same sequence on both backends
                trainer.train_epoch(batches)       batches depend only on (seed, epoch)
                metrics of trainer.predict(test)   loss / top-1 / top-5 (archc.train.metrics)
                history.json / .csv / curves.png, checkpoints (atomic, best and last)
    export      weights-last.npz and weights-best.npz (by IR node; the last and the best
                epoch's) and weights.txt (the seeds' text dump, last epoch)

Exit status of a run: 0 done, 1 failed (data, settings), 3 non-finite loss,
130 / 143 interrupted by SIGINT / SIGTERM (a checkpoint is saved; --resume continues).
"""

from __future__ import annotations

import math
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from archc import data as D
from archc.ir import Model
from archc.train.checkpoints import (
    BEST_WEIGHTS,
    CHECKPOINT_FORMAT,
    LAST_WEIGHTS,
    RunState,
    check_fresh,
    export,
    resume_state,
    write_weights,
)
from archc.train.errors import EXIT_NONFINITE, EXIT_OK, EXIT_SIGNAL, NonFiniteLoss
from archc.train.files import rotate_in, write_text
from archc.train.history import CurvesPlot, write_history
from archc.train.metrics import evaluate
from archc.train.progress import Progress
from archc.train.schedule import LearningRate
from archc.train.settings import Settings
from archc.train.signals import StopFlag


class Trainer(Protocol):
    """The backend's part of a run."""

    backend: str  # "torch" | "keras", as --backend names it
    rank: int
    world: int

    def describe(self) -> str: ...
    def set_learning_rate(self, lr: float) -> None: ...
    def train_epoch(self, data: D.Epoch, report: Reporter, stop: StopFlag) -> None: ...
    def predict(self, x: np.ndarray, batch_size: int) -> np.ndarray: ...
    def weights(self) -> dict[str, np.ndarray]: ...  # by "<node>/<role>", Keras layout
    def set_weights(self, weights: dict[str, np.ndarray]) -> None: ...
    def finite(self) -> bool: ...
    def save_checkpoint(self, path: str, meta: dict) -> None: ...
    def load_checkpoint(self, path: str) -> dict: ...
    def close(self) -> None: ...


# report(step, [loss_sum, correct, count], stop_requested) -> stop?
Reporter = Callable[[int, np.ndarray, bool], bool]


@dataclass
class RunResult:
    status: int
    history: list
    message: str = ""
    warnings: list = field(default_factory=list)


class _EpochReport:
    """The Reporter of one epoch: adds each step's sums, stops on a non-finite
    loss, moves the bar, and tells `on_step`."""

    def __init__(
        self,
        epoch: int,
        sums: np.ndarray,
        step: int,
        bar: Progress,
        on_step: Callable[[int, int], None] | None,
    ):
        self.epoch, self.sums, self.bar, self.on_step = epoch, sums, bar, on_step
        self.images_before = int(sums[2])
        self.step_done = step  # steps of the epoch done

    def __call__(self, step: int, delta: np.ndarray, stop_requested: bool) -> bool:
        sums = self.sums
        sums[:] += delta
        self.step_done = step + 1
        if not math.isfinite(sums[0]):
            raise NonFiniteLoss(
                f"the training loss became {sums[0] / max(sums[2], 1)} "
                f"at epoch {self.epoch + 1}, step {step + 1}"
            )
        self.bar.update(step, sums, int(sums[2]) - self.images_before)
        if self.on_step:
            self.on_step(self.epoch, step)
        return stop_requested


def train(
    ir: Model,
    settings: Settings,
    dataset: D.Dataset,
    trainer: Trainer,
    run_dir: str,
    resume: bool = False,
    log: Callable[[str], None] | None = None,
    stop: StopFlag | None = None,
    progress: bool = True,
    on_step: Callable[[int, int], None] | None = None,
    alert: Callable[[str], None] | None = None,
) -> RunResult:
    """Train `trainer` on `dataset` with `settings`, writing everything to `run_dir`.

    `log` takes what a run says along the way; `alert` (default: `log`) its errors,
    warnings and stops, which a quiet run still shows. `on_step(epoch, step)` is
    called after each reported step (tests use it to interrupt a run at an exact
    step, the way a signal would)."""
    main = trainer.rank == 0
    log = log if (log and main) else (lambda s: None)
    alert = alert if (alert and main) else log
    ckpt_dir = os.path.join(run_dir, "checkpoints")
    last_path = os.path.join(ckpt_dir, "last.ckpt")
    best_path = os.path.join(ckpt_dir, "best.ckpt")
    schedule = LearningRate(settings)
    state = RunState()
    if resume:
        state = resume_state(trainer, settings, last_path, log)
        schedule.load_state_dict(state.schedule)
    elif main:
        check_fresh(run_dir)
    if main:
        os.makedirs(ckpt_dir, exist_ok=True)
        write_text(
            os.path.join(run_dir, "settings.json"), settings.model_dump_json(indent=1) + "\n"
        )
    x, y = dataset.x_train, dataset.y_train
    if settings.limit:
        x, y = x[: settings.limit], y[: settings.limit]
    steps = D.steps_per_epoch(len(x), settings.batch_size)
    stop = stop if stop is not None else StopFlag()
    curves = CurvesPlot(run_dir, f"{ir.name} on {dataset.name} ({settings.backend})")

    def ended(result: RunResult) -> RunResult:
        """However a run ends, curves.png shows every epoch done."""
        if main:
            curves.update(state.history, final=True)
        return result

    def save(path: str) -> bool:
        if not main:
            return True
        if not trainer.finite():
            alert(f"not writing {path}: the weights are not finite")
            return False
        meta = {
            "format": CHECKPOINT_FORMAT,
            "settings": settings.model_dump(mode="json"),
            "state": state.__dict__,
        }
        rotate_in(path, lambda tmp: trainer.save_checkpoint(tmp, meta))
        return True

    for epoch in range(state.epoch, settings.epochs):
        lr = schedule.at(epoch)
        trainer.set_learning_rate(lr)
        bar = Progress(
            epoch, settings.epochs, steps, enabled=progress and main, start_step=state.step
        )
        report = _EpochReport(epoch, np.array(state.sums, np.float64), state.step, bar, on_step)
        sums = report.sums
        epoch_start = time.perf_counter()
        seconds_before = state.seconds
        data = D.Epoch(
            x,
            y,
            settings.batch_size,
            settings.seed,
            epoch,
            start_step=state.step,
            augment=settings.augment,
            shard=(trainer.rank, trainer.world),
        )
        try:
            trainer.train_epoch(data, report, stop)
        except NonFiniteLoss as e:
            bar.finish("")
            alert(
                f"error: {e}. Stopped; no checkpoint was written after it (the last good one "
                f"is {last_path if os.path.exists(last_path) else 'none'}). Lower the "
                f"learning rate or check the data."
            )
            return ended(RunResult(EXIT_NONFINITE, state.history, str(e)))
        train_seconds = time.perf_counter() - epoch_start
        if stop:
            state.step, state.sums = report.step_done, sums.tolist()
            state.seconds = seconds_before + train_seconds
            state.schedule = schedule.state_dict()
            saved = save(last_path)
            name = signal.Signals(stop.signum).name
            bar.finish("")
            alert(
                f"{name}: stopped at epoch {epoch + 1}, step {state.step}/{steps}; "
                + (
                    f"checkpoint saved to {last_path}. Continue with --resume."
                    if saved
                    else "no checkpoint saved."
                )
            )
            return ended(RunResult(EXIT_SIGNAL.get(stop.signum, 130), state.history))
        if not trainer.finite():  # a loss can stay finite over NaN weights (clipped outputs)
            bar.finish("")
            msg = f"the weights became non-finite during epoch {epoch + 1}"
            alert(
                f"error: {msg}. Stopped; no checkpoint was written after it. Lower the "
                f"learning rate or check the data."
            )
            return ended(RunResult(EXIT_NONFINITE, state.history, msg))
        n = max(sums[2], 1)
        val = evaluate(ir, trainer, dataset, settings.batch_size)
        seconds = seconds_before + train_seconds
        row = {
            "epoch": epoch + 1,
            "lr": lr,
            "loss": float(sums[0] / n),
            "accuracy": float(sums[1] / n),
            "val_loss": val["loss"],
            "val_accuracy": val["accuracy"],
            "val_top5": val["top5"],
            "seconds": round(seconds, 3),
            "images_per_second": round(
                float(sums[2] - report.images_before) / max(train_seconds, 1e-9), 1
            ),
        }
        bar.finish(
            f"epoch {epoch + 1}/{settings.epochs}  lr {lr:.3g}  loss {row['loss']:.4f}  "
            f"acc {row['accuracy']:.4f}  val_loss {row['val_loss']:.4f}  "
            f"val_acc {row['val_accuracy']:.4f}  val_top5 {row['val_top5']:.4f}  "
            f"{seconds:.1f}s  {row['images_per_second']:,.0f} img/s"
        )
        schedule.end_epoch(row)
        state.history.append(row)
        state.epoch, state.step, state.sums, state.seconds = epoch + 1, 0, [0.0, 0.0, 0.0], 0.0
        state.schedule = schedule.state_dict()
        improved = state.best is None or row["val_accuracy"] > state.best
        if improved:
            state.best, state.best_epoch = row["val_accuracy"], row["epoch"]
        if main:
            write_history(run_dir, state.history)
            curves.update(state.history)
            save(last_path)
            if improved and save(best_path):
                write_weights(os.path.join(run_dir, BEST_WEIGHTS), trainer.weights())
        if stop:  # a signal during validation: the epoch is complete and saved
            alert(
                f"{signal.Signals(stop.signum).name}: stopped after epoch {epoch + 1}; "
                f"continue with --resume."
            )
            return ended(RunResult(EXIT_SIGNAL.get(stop.signum, 130), state.history))
    warnings = []
    steps_run = steps * len(state.history)
    if state.history and (w := batchnorm_warning(ir, state.history[-1], steps_run)):
        alert(w)
        warnings.append(w)
    if main:
        export(run_dir, trainer.weights())
        last = state.history[-1]["epoch"] if state.history else 0
        log(
            f"weights: {os.path.join(run_dir, LAST_WEIGHTS)} (epoch {last}, the last) and "
            f"{BEST_WEIGHTS} (epoch {state.best_epoch or 0}, the best validation "
            f"accuracy); archc's format, by node, loads into either backend; weights.txt (the "
            f"seeds' text dump) holds the last epoch's"
        )
    return ended(RunResult(EXIT_OK, state.history, warnings=warnings))


# The moving statistics of batch norm start at mean 0, variance 1 and forget that
# start as momentum ** steps; they are taken as converged when under 1% is left.
BN_START_LEFT = 0.01
BN_GAP = 0.02  # validation accuracy this far below training accuracy is "far below"


def batchnorm_warning(ir: Model, row: dict, steps_run: int) -> str | None:
    """A warning when validation is far below training and the model's batch-norm
    moving statistics cannot have converged in the steps run (Keras's momentum 0.99
    needs about 460 steps; a short run on a small data set has fewer), else None."""
    momenta = [n.momentum for n in ir.nodes if n.kind == "batchnorm"]
    if not momenta or row["accuracy"] - row["val_accuracy"] < BN_GAP:
        return None
    m = max(momenta)  # the slowest to converge
    left = m**steps_run
    if left <= BN_START_LEFT:
        return None
    need = _steps_to_converge(m)
    # the largest momentum of two decimals that converges in the steps run, at most 0.9
    fit = min(0.9, math.floor(100 * BN_START_LEFT ** (1 / max(steps_run, 1))) / 100)
    fix = (
        f"`B(momentum: {fit:g})` in the spec (it converges in {_steps_to_converge(fit)} steps)"
        if fit > 0
        else "more training steps"
    )
    return (
        f"warning: validation accuracy {row['val_accuracy']:.4f} is far below training "
        f"accuracy {row['accuracy']:.4f}, and the batch-norm moving statistics cannot have "
        f"converged: with momentum {m:g} they still hold {left:.1%} of their starting values "
        f"after the {steps_run} training steps of this run (under {BN_START_LEFT:.0%} takes "
        f"{need} steps). Validation and inference use those statistics, so the model "
        f"predicts worse than it trained. Fix: {fix}, or train for more steps (--epochs, a "
        f"smaller --batch-size). See 'Batch norm on short runs' in docs/training.md."
    )


def _steps_to_converge(momentum: float) -> int:
    """Steps after which under BN_START_LEFT of the starting statistics is left."""
    if momentum <= 0:
        return 1
    return math.ceil(math.log(BN_START_LEFT) / math.log(momentum))
