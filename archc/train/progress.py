"""What a run shows while an epoch goes on: a live bar or periodic lines."""

from __future__ import annotations

import sys
import time

import numpy as np


class Progress:
    """The progress of one epoch on stderr: on a terminal a live bar (rich) with
    steps, loss, accuracy, images/s, elapsed time and ETA; elsewhere (a log file, a
    pipe) a plain line every `interval` seconds. Then one summary line per epoch.
    Epochs are counted from 1, as history.csv and curves.png count them."""

    def __init__(
        self,
        epoch: int,
        epochs: int,
        steps: int,
        stream=None,
        enabled: bool = True,
        start_step: int = 0,
        interval: float = 30.0,
    ):
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
        bar = Bar(
            TextColumn("epoch {task.fields[epoch]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn(
                "loss {task.fields[loss]}  acc {task.fields[acc]}  {task.fields[rate]} img/s"
            ),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=Console(file=self.stream),
            transient=True,
            refresh_per_second=10,
        )
        self.task = bar.add_task(
            "",
            total=self.steps,
            completed=self.first,
            epoch=f"{self.epoch + 1}/{self.epochs}",
            loss="-",
            acc="-",
            rate="-",
        )
        bar.start()
        return bar

    def _figures(self, done: int, sums: np.ndarray, images: int, now: float) -> dict:
        elapsed = now - self.start
        n = max(sums[2], 1)
        rate = images / elapsed if elapsed > 0 else 0.0
        per_step = elapsed / (done - self.first) if done > self.first else None
        eta = per_step * (self.steps - done) if per_step is not None else None
        return {
            "loss": f"{sums[0] / n:.4f}",
            "acc": f"{sums[1] / n:.4f}",
            "rate": f"{rate:,.0f}",
            "eta": eta,
        }

    def update(self, step: int, sums: np.ndarray, images: int, force: bool = False) -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if self.bar is not None:
            f = self._figures(step + 1, sums, images, now)
            self.bar.update(
                self.task, completed=step + 1, loss=f["loss"], acc=f["acc"], rate=f["rate"]
            )
            return
        if force or now - self.last_line >= self.interval:
            self.last_line = now
            self.stream.write(self.line(step + 1, sums, images, now) + "\n")
            self.stream.flush()

    def line(self, done: int, sums: np.ndarray, images: int, now: float) -> str:
        """The plain progress line (output that is not a terminal)."""
        f = self._figures(done, sums, images, now)
        eta = "-" if f["eta"] is None else _clock(f["eta"])
        return (
            f"epoch {self.epoch + 1}/{self.epochs}  step {done}/{self.steps} "
            f"({100 * done // max(self.steps, 1)}%)  loss {f['loss']}  acc {f['acc']}  "
            f"{f['rate']} img/s  {_clock(now - self.start)} elapsed  ETA {eta}"
        )

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
