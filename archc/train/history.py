"""history.json / history.csv and the curves (curves.png) of a run."""

from __future__ import annotations

import csv
import json
import os
import time

from archc.train.files import atomic_write, write_text

HISTORY_FIELDS = (
    "epoch",
    "lr",
    "loss",
    "accuracy",
    "val_loss",
    "val_accuracy",
    "val_top5",
    "seconds",
    "images_per_second",
)


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
