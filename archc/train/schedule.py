"""The learning rate of every epoch, computed once for both backends.

The runners never hand a schedule to Keras's or PyTorch's scheduler classes: at
the start of each epoch they set the rate this object gives, so the two backends
follow the identical sequence by construction. The formulas are those of the
generated `learning_rate(epoch)` functions (backends/recipe_source.py writes them
from the same recipe; tests check that both agree, spec by spec and over the
table of schedules).
"""

from __future__ import annotations

import math

from archc.train.recipe import Recipe


class LearningRate:
    def __init__(self, recipe: Recipe):
        self.schedule = recipe.schedule  # every parameter set (archc.train.recipe)
        self.lr0 = recipe.lr
        self.epochs = recipe.epochs
        self.current = recipe.lr  # plateau: the rate now in force
        self.best: float | None = None
        self.wait = 0

    def at(self, epoch: int) -> float:
        """The rate for epoch `epoch` (from 0)."""
        s, lr0 = self.schedule, self.lr0
        if s.kind == "constant":
            return lr0
        if s.kind == "plateau":
            return self.current
        if s.kind == "piecewise":
            for boundary, value in zip(s.boundaries, s.values):
                if epoch < boundary:
                    return value
            return s.values[-1]
        if s.kind == "step":
            return lr0 * s.rate ** ((epoch + s.offset) // s.every)
        if s.kind == "cosine":
            progress = min(epoch / self.epochs, 1.0)
            return s.min_lr + (lr0 - s.min_lr) * 0.5 * (1 + math.cos(math.pi * progress))
        if s.kind == "onecycle":  # by epoch: warm up for pct_start, then anneal
            peak = s.max_lr
            warm = max(1, round(s.pct_start * self.epochs))
            if epoch < warm:
                return lr0 + (peak - lr0) * epoch / warm
            progress = min((epoch - warm) / max(self.epochs - warm, 1), 1.0)
            return peak * (1 - progress) + lr0 / 1e4 * progress
        raise AssertionError(s.kind)

    def end_epoch(self, metrics: dict[str, float]) -> None:
        """Reduce-on-plateau, with Keras's ReduceLROnPlateau rules (min_delta 1e-4,
        no cooldown): after `patience` epochs without improvement of the monitored
        validation metric, multiply the rate by `factor`, not below `min_lr`."""
        s = self.schedule
        if s.kind != "plateau":
            return
        value = metrics[s.monitor]
        sign = 1.0 if s.monitor == "val_loss" else -1.0  # smaller is better after the sign
        if self.best is None or sign * value < sign * self.best - 1e-4:
            self.best, self.wait = value, 0
            return
        self.wait += 1
        if self.wait >= s.patience:
            if self.current > s.min_lr:
                self.current = max(self.current * s.factor, s.min_lr)
            self.wait = 0

    def state_dict(self) -> dict:
        return {"current": self.current, "best": self.best, "wait": self.wait}

    def load_state_dict(self, state: dict) -> None:
        self.current, self.best, self.wait = state["current"], state["best"], state["wait"]
