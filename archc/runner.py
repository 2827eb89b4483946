"""The shared training runner: everything about a run that does not depend on the
framework. A backend supplies a `Trainer` (backends/<name>/train.py); this module
drives it the same way for both:

    settings  = resolve(ir, command line)          command line > spec > defaults
    data      = archc.data.load + fit_to_spec      one reader per file format
    for epoch:  learning rate from archc.schedule  the same sequence on both backends
                trainer.train_epoch(batches)       batches depend only on (seed, epoch)
                metrics of trainer.predict(test)   loss / top-1 / top-5 computed here
                history.json / .csv / curves.png, checkpoints (atomic, best and last)
    export      weights-last.npz and weights-best.npz (by IR node; the last and the best
                epoch's) and weights.txt (the seeds' text dump, last epoch)

Exit status of a run: 0 done, 1 failed (data, settings), 3 non-finite loss,
130 / 143 interrupted by SIGINT / SIGTERM (a checkpoint is saved; --resume continues).
"""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict

from archc import data as D
from archc.ir import Model
from archc.schedule import LearningRate
from archc.training import Optimizer, Schedule, TrainingConfig

EXIT_OK, EXIT_FAILED, EXIT_NONFINITE = 0, 1, 3
EXIT_SIGNAL = {signal.SIGINT: 130, signal.SIGTERM: 143}
DEFAULT_EPOCHS, DEFAULT_BATCH = 10, 32
CHECKPOINT_FORMAT = 1


class RunError(Exception):
    """A run cannot start or continue: the message says why and what to do."""


class NonFiniteLoss(Exception):
    pass


# ---------------------------------------------------------------------------
# settings: command line > the spec's train section > defaults
# ---------------------------------------------------------------------------


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    spec: str
    model: str
    backend: str
    data: str
    data_dir: str | None = None
    resize: bool = False
    limit: int | None = None
    epochs: int
    batch_size: int
    lr: float
    optimizer: Optimizer
    schedule: Schedule
    weight_decay: float
    label_smoothing: float
    augment: bool
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    compile: bool = False
    sources: dict[str, str] = {}  # setting -> "command line" | "spec" | "default"

    def describe(self) -> str:
        o = self.optimizer
        opt = o.name + (f"(momentum={o.momentum}{', nesterov' if o.nesterov else ''})"
                        if o.name == "sgd" and o.momentum else "")
        s = self.schedule
        sched = s.kind + "".join(
            f" {k}={v}" for k, v in s.model_dump().items() if k != "kind")
        rows = [("spec", f"{self.spec} ({self.model})"), ("backend", self.backend),
                ("data", self.data + (f" from {self.data_dir}" if self.data_dir else "")),
                ("epochs", self.epochs), ("batch_size", self.batch_size), ("lr", self.lr),
                ("optimizer", opt), ("schedule", sched), ("weight_decay", self.weight_decay),
                ("label_smoothing", self.label_smoothing), ("augment", self.augment),
                ("seed", self.seed), ("device", self.device), ("precision", self.precision)]
        out = []
        for key, value in rows:
            src = self.sources.get(key)
            out.append(f"  {key:<16}{value}" + (f"   [{src}]" if src else ""))
        return "\n".join(out)


TRAIN_KEYS = ("epochs", "batch_size", "optimizer", "lr", "schedule", "weight_decay",
              "label_smoothing", "augment")  # optimizer before lr: lr's default depends on it


def resolve(ir: Model, backend: str, data: str, overrides: dict[str, Any], **run: Any) -> Settings:
    """The effective settings. `overrides` holds the command line's training
    settings already validated (a partial TrainingConfig's fields); `run` the rest."""
    spec = ir.training or TrainingConfig()
    given_in_spec = ir.training.model_fields_set if ir.training else set()
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for key in TRAIN_KEYS:
        if key in overrides and overrides[key] is not None:
            values[key], sources[key] = overrides[key], "command line"
        elif key in given_in_spec and getattr(spec, key) is not None:
            values[key], sources[key] = getattr(spec, key), "spec"
        else:
            values[key], sources[key] = _default(key, values, spec), "default"
    return Settings(spec=ir.source, model=ir.name, backend=backend, data=data,
                    sources=sources, **values, **run)


def _default(key: str, values: dict, spec: TrainingConfig) -> Any:
    if key == "epochs":
        return DEFAULT_EPOCHS
    if key == "batch_size":
        return DEFAULT_BATCH
    if key == "lr":  # Keras's defaults: 0.01 for SGD, 0.001 for the adaptive ones
        return 0.01 if values["optimizer"].name == "sgd" else 0.001
    return getattr(spec, key)


# ---------------------------------------------------------------------------
# metrics, computed here for both backends
# ---------------------------------------------------------------------------


def outputs_probabilities(ir: Model) -> bool:
    """Whether the network ends in softmax (the seeds' nets) or gives logits."""
    node = ir.node(ir.output)
    fn = getattr(node, "fn", None) if node.kind == "activation" else getattr(node, "activation",
                                                                             None)
    return fn == "softmax"


def log_probabilities(outputs: np.ndarray, probabilities: bool) -> np.ndarray:
    out = outputs.astype(np.float64)
    if probabilities:  # Keras's crossentropy on probabilities: normalise, clip to 1e-7
        out = out / out.sum(axis=1, keepdims=True)
        return np.log(np.clip(out, 1e-7, 1 - 1e-7))
    out = out - out.max(axis=1, keepdims=True)
    return out - np.log(np.exp(out).sum(axis=1, keepdims=True))


def classification_metrics(outputs: np.ndarray, y: np.ndarray, probabilities: bool) -> dict:
    """Cross-entropy, top-1 and top-5 accuracy of outputs (N x classes) for labels y."""
    logp = log_probabilities(outputs, probabilities)
    loss = float(-logp[np.arange(len(y)), y].mean())
    k = min(5, outputs.shape[1])
    # the label's place in a stable ranking by score: a tie goes to the lower class
    # index, as argmax (and so Keras's accuracy) resolves it
    label_score = outputs[np.arange(len(y)), y][:, None]
    before = np.arange(outputs.shape[1])[None, :] < y[:, None]
    rank = (outputs > label_score).sum(axis=1) + ((outputs == label_score) & before).sum(axis=1)
    return {"loss": loss, "accuracy": float((rank == 0).mean()),
            "top5": float((rank < k).mean())}


def confusion_matrix(outputs: np.ndarray, y: np.ndarray, classes: int) -> np.ndarray:
    m = np.zeros((classes, classes), np.int64)
    np.add.at(m, (y, outputs.argmax(axis=1)), 1)
    return m


def render_confusion(m: np.ndarray, names: tuple[str, ...]) -> str:
    names = [n[:10] for n in names]
    w = max(6, max(len(n) for n in names) + 1, len(str(m.max())) + 1)
    head = " " * w + "".join(f"{n:>{w}}" for n in names)
    rows = [f"{n:>{w}}" + "".join(f"{v:>{w}}" for v in row) for n, row in zip(names, m)]
    return "rows: true class, columns: predicted\n" + "\n".join([head] + rows)


# ---------------------------------------------------------------------------
# the backend's part
# ---------------------------------------------------------------------------


class Trainer(Protocol):
    backend: str  # "torch" | "keras", as --backend names it
    rank: int
    world: int

    def describe(self) -> str: ...
    def set_learning_rate(self, lr: float) -> None: ...
    def train_epoch(self, data: D.Epoch, report: "Reporter", stop: "StopFlag") -> None: ...
    def predict(self, x: np.ndarray, batch_size: int) -> np.ndarray: ...
    def weights(self) -> dict[str, np.ndarray]: ...  # by "<node>/<role>", Keras layout
    def set_weights(self, weights: dict[str, np.ndarray]) -> None: ...
    def finite(self) -> bool: ...
    def save_checkpoint(self, path: str, meta: dict) -> None: ...
    def load_checkpoint(self, path: str) -> dict: ...
    def close(self) -> None: ...


# report(step, [loss_sum, correct, count], stop_requested) -> stop?
Reporter = Callable[[int, np.ndarray, bool], bool]


# ---------------------------------------------------------------------------
# files: atomic writes, checkpoints, history
# ---------------------------------------------------------------------------


def atomic_write(path: str, write: Callable[[str], None]) -> None:
    """write(tmp) then fsync and rename over `path`: a reader sees the old file or
    the new one, never half of one."""
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    _fsync_dir(os.path.dirname(path) or ".")


def _fsync_dir(d: str) -> None:
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_text(path: str, text: str) -> None:
    def write(tmp):
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)
    atomic_write(path, write)


def rotate_in(path: str, write: Callable[[str], None]) -> None:
    """Replace checkpoint `path`, keeping the one it replaces as `<path>.prev`."""
    tmp = f"{path}.new"
    atomic_write(tmp, write)
    if os.path.exists(path):
        os.replace(path, path + ".prev")
    os.replace(tmp, path)
    _fsync_dir(os.path.dirname(path) or ".")


def write_weights_txt(f, weights: dict[str, np.ndarray]) -> None:
    """The seeds' weights.txt: for each tensor its name, its shape, then its values,
    one row of the last axis per line ("%.9g" gives a float32 back exactly), and a
    blank line. np.savetxt, not str(array): 11 M values take seconds, not hours."""
    for name in sorted(weights):
        w = np.asarray(weights[name])
        f.write(f"{name}\n{tuple(w.shape)}\n")
        np.savetxt(f, w.reshape(-1, w.shape[-1]) if w.ndim else w.reshape(1, 1), fmt="%.9g")
        f.write("\n")


HISTORY_FIELDS = ("epoch", "lr", "loss", "accuracy", "val_loss", "val_accuracy", "val_top5",
                  "seconds", "images_per_second")


def write_history(run_dir: str, history: list[dict]) -> None:
    write_text(os.path.join(run_dir, "history.json"), json.dumps(history, indent=1) + "\n")

    def write_csv(tmp):
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            w = csv.DictWriter(f, HISTORY_FIELDS, extrasaction="ignore")
            w.writeheader()
            w.writerows(history)
    atomic_write(os.path.join(run_dir, "history.csv"), write_csv)


def plot_history(run_dir: str, history: list[dict], title: str) -> str | None:
    """Write curves.png (nothing without matplotlib)."""
    fig = curves_figure(history, title)
    if fig is None:
        return None
    path = os.path.join(run_dir, "curves.png")
    atomic_write(path, lambda tmp: fig.savefig(tmp, format="png", dpi=100))
    return path


def curves_figure(history: list[dict], title: str):
    """The seeds' two panels: training/validation accuracy, and loss, per epoch
    (history's epochs, counted from 1 as the console counts them)."""
    try:
        import matplotlib
        matplotlib.use("Agg", force=True)
        from matplotlib.figure import Figure
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        return None
    epochs = [h["epoch"] for h in history]
    fig = Figure(figsize=(10, 4))
    for i, (metric, label) in enumerate((("accuracy", "Accuracy"), ("loss", "Loss"))):
        ax = fig.add_subplot(1, 2, i + 1)
        ax.plot(epochs, [h[metric] for h in history], label=f"Training {label}")
        ax.plot(epochs, [h[f"val_{metric}"] for h in history], label=f"Validation {label}")
        ax.set_title(f"Training and Validation {label}")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # whole epochs only
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    return fig


class CurvesPlot:
    """curves.png, drawn at most every `interval` seconds during a run (the first
    time `interval` seconds after its start) and always at its end. A draw costs
    0.15 to 0.5 s (the first imports matplotlib): after every epoch it was 3.2 s
    of an 8-epoch digits run of 7 s."""

    def __init__(self, run_dir: str, title: str, interval: float = 10.0):
        self.run_dir, self.title, self.interval = run_dir, title, interval
        self.drawn_at = time.monotonic()  # the clock at the last draw (or the start)
        self.drawn = 0  # history rows in the last drawing
        self.draws = 0

    def update(self, history: list[dict], final: bool = False) -> None:
        if not history or (final and self.drawn == len(history)):
            return
        if not final and time.monotonic() - self.drawn_at < self.interval:
            return
        plot_history(self.run_dir, history, self.title)
        self.drawn_at, self.drawn, self.draws = time.monotonic(), len(history), self.draws + 1


# ---------------------------------------------------------------------------
# progress
# ---------------------------------------------------------------------------


class Progress:
    """The progress of one epoch on stderr: on a terminal a live bar (rich) with
    steps, loss, accuracy, images/s, elapsed time and ETA; elsewhere (a log file, a
    pipe) a plain line every `interval` seconds. Then one summary line per epoch.
    Epochs are counted from 1, as history.csv and curves.png count them."""

    def __init__(self, epoch: int, epochs: int, steps: int, stream=None, enabled: bool = True,
                 start_step: int = 0, interval: float = 30.0):
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.epoch, self.epochs, self.steps = epoch, epochs, steps
        self.first = start_step  # steps done before this process (a resumed epoch)
        self.start = time.perf_counter()
        self.interval = interval
        self.last_line = self.start
        self.bar = self._rich() if enabled and _isatty(self.stream) else None

    def _rich(self):
        try:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )
            from rich.progress import Progress as Bar
        except ImportError:  # rich is in the `train` extra; without it, plain lines
            return None
        bar = Bar(TextColumn("epoch {task.fields[epoch]}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("loss {task.fields[loss]}  acc {task.fields[acc]}  "
                             "{task.fields[rate]} img/s"),
                  TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                  console=Console(file=self.stream), transient=True, refresh_per_second=10)
        self.task = bar.add_task("", total=self.steps, completed=self.first,
                                 epoch=f"{self.epoch + 1}/{self.epochs}", loss="-", acc="-",
                                 rate="-")
        bar.start()
        return bar

    def _figures(self, done: int, sums: np.ndarray, images: int, now: float) -> dict:
        elapsed = now - self.start
        n = max(sums[2], 1)
        rate = images / elapsed if elapsed > 0 else 0.0
        per_step = elapsed / (done - self.first) if done > self.first else None
        eta = per_step * (self.steps - done) if per_step is not None else None
        return {"loss": f"{sums[0] / n:.4f}", "acc": f"{sums[1] / n:.4f}",
                "rate": f"{rate:,.0f}", "eta": eta}

    def update(self, step: int, sums: np.ndarray, images: int, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if self.bar is not None:
            f = self._figures(step + 1, sums, images, now)
            self.bar.update(self.task, completed=step + 1, loss=f["loss"], acc=f["acc"],
                            rate=f["rate"])
            return
        if force or now - self.last_line >= self.interval:
            self.last_line = now
            self.stream.write(self.line(step + 1, sums, images, now) + "\n")
            self.stream.flush()

    def line(self, done: int, sums: np.ndarray, images: int, now: float) -> str:
        """The plain progress line (output that is not a terminal)."""
        f = self._figures(done, sums, images, now)
        eta = "-" if f["eta"] is None else _clock(f["eta"])
        return (f"epoch {self.epoch + 1}/{self.epochs}  step {done}/{self.steps} "
                f"({100 * done // max(self.steps, 1)}%)  loss {f['loss']}  acc {f['acc']}  "
                f"{f['rate']} img/s  {_clock(now - self.start)} elapsed  ETA {eta}")

    def finish(self, text: str) -> None:
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
        if self.enabled and text:
            self.stream.write(text + "\n")
            self.stream.flush()


def _isatty(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _clock(seconds: float) -> str:
    seconds = round(seconds)
    h, rest = divmod(seconds, 3600)
    return (f"{h}:" if h else "") + f"{rest // 60:0{2 if h else 1}d}:{rest % 60:02d}"


# ---------------------------------------------------------------------------
# signals
# ---------------------------------------------------------------------------


class StopFlag:
    """Set by SIGINT/SIGTERM (or a test): the run stops after the current step,
    saves a checkpoint and exits with 128 + the signal's number."""

    def __init__(self):
        self.signum: int | None = None
        self._old: dict = {}

    def __bool__(self) -> bool:
        return self.signum is not None

    def request(self, signum: int = signal.SIGINT) -> None:
        if self.signum is None:
            self.signum = signum

    def __enter__(self):
        for s in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[s] = signal.signal(s, lambda num, frame: self.request(num))
            except ValueError:  # not the main thread: leave signals alone
                pass
        return self

    def __exit__(self, *exc):
        for s, handler in self._old.items():
            signal.signal(s, handler)


# ---------------------------------------------------------------------------
# the run
# ---------------------------------------------------------------------------


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


@dataclass
class RunResult:
    status: int
    history: list
    message: str = ""
    warnings: list = field(default_factory=list)


def train(ir: Model, settings: Settings, dataset: D.Dataset, trainer: Trainer, run_dir: str,
          resume: bool = False, log: Callable[[str], None] | None = None,
          stop: StopFlag | None = None, progress: bool = True,
          on_step: Callable[[int, int], None] | None = None,
          alert: Callable[[str], None] | None = None) -> RunResult:
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
    schedule = LearningRate(TrainingConfig(schedule=settings.schedule), settings.lr,
                            settings.epochs)
    state = RunState()
    if resume:
        state = _resume(trainer, settings, last_path, log)
        schedule.load_state_dict(state.schedule)
    elif main:
        _check_fresh(run_dir)
    if main:
        os.makedirs(ckpt_dir, exist_ok=True)
        write_text(os.path.join(run_dir, "settings.json"),
                   settings.model_dump_json(indent=1) + "\n")
    x, y = dataset.x_train, dataset.y_train
    if settings.limit:
        x, y = x[:settings.limit], y[:settings.limit]
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
        meta = {"format": CHECKPOINT_FORMAT, "settings": settings.model_dump(mode="json"),
                "state": state.__dict__}
        rotate_in(path, lambda tmp: trainer.save_checkpoint(tmp, meta))
        return True

    for epoch in range(state.epoch, settings.epochs):
        lr = schedule.at(epoch)
        trainer.set_learning_rate(lr)
        bar = Progress(epoch, settings.epochs, steps, enabled=progress and main,
                       start_step=state.step)
        sums = np.array(state.sums, np.float64)
        epoch_start = time.perf_counter()
        seconds_before = state.seconds
        images_before = int(sums[2])
        step_done = [state.step]

        def report(step: int, delta: np.ndarray, stop_requested: bool) -> bool:
            sums[:] += delta
            step_done[0] = step + 1
            if not math.isfinite(sums[0]):
                raise NonFiniteLoss(f"the training loss became {sums[0] / max(sums[2], 1)} "
                                    f"at epoch {epoch + 1}, step {step + 1}")
            bar.update(step, sums, int(sums[2]) - images_before)
            if on_step:
                on_step(epoch, step)
            return stop_requested

        data = D.Epoch(x, y, settings.batch_size, settings.seed, epoch, start_step=state.step,
                       augment=settings.augment, shard=(trainer.rank, trainer.world))
        try:
            trainer.train_epoch(data, report, stop)
        except NonFiniteLoss as e:
            bar.finish("")
            alert(f"error: {e}. Stopped; no checkpoint was written after it (the last good one "
                f"is {last_path if os.path.exists(last_path) else 'none'}). Lower the "
                f"learning rate or check the data.")
            return ended(RunResult(EXIT_NONFINITE, state.history, str(e)))
        train_seconds = time.perf_counter() - epoch_start
        if stop:
            state.step, state.sums = step_done[0], sums.tolist()
            state.seconds = seconds_before + train_seconds
            state.schedule = schedule.state_dict()
            saved = save(last_path)
            name = signal.Signals(stop.signum).name
            bar.finish("")
            alert(f"{name}: stopped at epoch {epoch + 1}, step {state.step}/{steps}; "
                + (f"checkpoint saved to {last_path}. Continue with --resume."
                   if saved else "no checkpoint saved."))
            return ended(RunResult(EXIT_SIGNAL.get(stop.signum, 130), state.history))
        if not trainer.finite():  # a loss can stay finite over NaN weights (clipped outputs)
            bar.finish("")
            msg = f"the weights became non-finite during epoch {epoch + 1}"
            alert(f"error: {msg}. Stopped; no checkpoint was written after it. Lower the "
                f"learning rate or check the data.")
            return ended(RunResult(EXIT_NONFINITE, state.history, msg))
        n = max(sums[2], 1)
        val = evaluate(ir, trainer, dataset, settings.batch_size)
        seconds = seconds_before + train_seconds
        row = {"epoch": epoch + 1, "lr": lr, "loss": float(sums[0] / n),
               "accuracy": float(sums[1] / n),
               "val_loss": val["loss"], "val_accuracy": val["accuracy"],
               "val_top5": val["top5"], "seconds": round(seconds, 3),
               "images_per_second": round(float(sums[2] - images_before)
                                          / max(train_seconds, 1e-9), 1)}
        bar.finish(f"epoch {epoch + 1}/{settings.epochs}  lr {lr:.3g}  loss {row['loss']:.4f}  "
                   f"acc {row['accuracy']:.4f}  val_loss {row['val_loss']:.4f}  "
                   f"val_acc {row['val_accuracy']:.4f}  val_top5 {row['val_top5']:.4f}  "
                   f"{seconds:.1f}s  {row['images_per_second']:,.0f} img/s")
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
            alert(f"{signal.Signals(stop.signum).name}: stopped after epoch {epoch + 1}; "
                f"continue with --resume.")
            return ended(RunResult(EXIT_SIGNAL.get(stop.signum, 130), state.history))
    warnings = []
    steps_run = steps * len(state.history)
    if state.history and (w := batchnorm_warning(ir, state.history[-1], steps_run)):
        alert(w)
        warnings.append(w)
    if main:
        export(run_dir, trainer.weights())
        last = state.history[-1]["epoch"] if state.history else 0
        log(f"weights: {os.path.join(run_dir, LAST_WEIGHTS)} (epoch {last}, the last) and "
            f"{BEST_WEIGHTS} (epoch {state.best_epoch or 0}, the best validation "
            f"accuracy); archc's format, by node, loads into either backend; weights.txt (the "
            f"seeds' text dump) holds the last epoch's")
    return ended(RunResult(EXIT_OK, state.history, warnings=warnings))


# Exported weights, named so that one cannot be taken for the other. The run's
# best.ckpt / last.ckpt hold the same weights plus the optimizer's state.
LAST_WEIGHTS, BEST_WEIGHTS = "weights-last.npz", "weights-best.npz"

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
    left = m ** steps_run
    if left <= BN_START_LEFT:
        return None
    need = _steps_to_converge(m)
    # the largest momentum of two decimals that converges in the steps run, at most 0.9
    fit = min(0.9, math.floor(100 * BN_START_LEFT ** (1 / max(steps_run, 1))) / 100)
    fix = f"`B(momentum: {fit:g})` in the spec (it converges in {_steps_to_converge(fit)} steps)" \
        if fit > 0 else "more training steps"
    return (f"warning: validation accuracy {row['val_accuracy']:.4f} is far below training "
            f"accuracy {row['accuracy']:.4f}, and the batch-norm moving statistics cannot have "
            f"converged: with momentum {m:g} they still hold {left:.1%} of their starting values "
            f"after the {steps_run} training steps of this run (under {BN_START_LEFT:.0%} takes "
            f"{need} steps). Validation and inference use those statistics, so the model "
            f"predicts worse than it trained. Fix: {fix}, or train for more steps (--epochs, a "
            f"smaller --batch-size). See 'Batch norm on short runs' in docs/training.md.")


def _steps_to_converge(momentum: float) -> int:
    """Steps after which under BN_START_LEFT of the starting statistics is left."""
    if momentum <= 0:
        return 1
    return math.ceil(math.log(BN_START_LEFT) / math.log(momentum))


def write_weights(path: str, weights: dict[str, np.ndarray]) -> None:
    from backends.transfer import save_weights

    atomic_write(path, lambda tmp: save_weights(tmp, weights))


def export(run_dir: str, weights: dict[str, np.ndarray]) -> None:
    write_weights(os.path.join(run_dir, LAST_WEIGHTS), weights)

    def write_txt(tmp):
        with open(tmp, "w", encoding="utf-8") as f:
            write_weights_txt(f, weights)
    atomic_write(os.path.join(run_dir, "weights.txt"), write_txt)


def _check_fresh(run_dir: str) -> None:
    if os.path.exists(os.path.join(run_dir, "checkpoints", "last.ckpt")):
        raise RunError(f"{run_dir} already holds a run: continue it with --resume, or "
                       f"choose another --out")


def _resume(trainer: Trainer, settings: Settings, path: str, log) -> RunState:
    errors = []
    for candidate in (path, path + ".prev"):
        if not os.path.exists(candidate):
            continue
        try:
            meta = trainer.load_checkpoint(candidate)
        except Exception as e:  # a damaged file: fall back to the previous one
            errors.append(f"{candidate}: {e}")
            continue
        if meta.get("format") != CHECKPOINT_FORMAT:
            raise RunError(f"{candidate}: checkpoint format {meta.get('format')} is not "
                           f"{CHECKPOINT_FORMAT}")
        _same_settings(meta["settings"], settings, candidate)
        state = RunState(**meta["state"])
        log(f"resuming from {candidate}: epoch {state.epoch + 1}, step {state.step}")
        return state
    raise RunError("nothing to resume: " + ("; ".join(errors) if errors else
                                            f"no checkpoint at {path}"))


# settings a resumed run may change: how long it goes on, and where it runs (the
# option help of --resume and docs/training.md say the same; a test holds them to it)
MAY_CHANGE = ("epochs", "device", "data_dir", "compile")


def _same_settings(saved: dict, now: Settings, path: str) -> None:
    current = now.model_dump(mode="json")
    changed = [k for k in current
               if k not in MAY_CHANGE and k != "sources" and saved.get(k) != current[k]]
    if changed:
        diffs = ", ".join(f"{k}: {saved.get(k)!r} -> {current[k]!r}" for k in changed)
        options = [f"--{k.replace('_', '-')}" for k in MAY_CHANGE]
        raise RunError(f"{path} was written with other settings ({diffs}); resume with the "
                       f"same settings (only {', '.join(options[:-1])} and {options[-1]} "
                       f"may change)")


# ---------------------------------------------------------------------------
# evaluation of saved weights
# ---------------------------------------------------------------------------


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


def load_checkpoint_weights(path: str, ir: Model, trainer: Trainer,
                            make_trainer: Callable[[str], Trainer]) -> dict:
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
    except Exception as e:  # a checkpoint of another model, or a damaged file
        raise RunError(f"cannot load {path} into {ir.name}: {str(e).splitlines()[0]}") from None
    if own is not trainer:
        trainer.set_weights(own.weights())
        own.close()
    return meta


def evaluate(ir: Model, trainer: Trainer, dataset: D.Dataset, batch_size: int) -> dict:
    outputs = trainer.predict(dataset.x_test, batch_size)
    result = classification_metrics(outputs, dataset.y_test, outputs_probabilities(ir))
    result["examples"] = len(dataset.y_test)
    result["confusion"] = confusion_matrix(outputs, dataset.y_test, len(dataset.classes))
    return result
