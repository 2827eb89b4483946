"""Batches: an epoch's order and augmentation depend only on (seed, epoch), so an
interrupted epoch resumes on the batches it would have seen; `shard` splits each
global batch between data-parallel ranks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from archc.data.transforms import as_float, augment


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch, 0]).permutation(n)


@dataclass(frozen=True)
class Epoch:
    """One epoch's batches. Their order and augmentation depend only on (seed, epoch),
    so an interrupted epoch resumed at `start_step` sees the batches it would have.

    `shard=(rank, world)` gives rank's part of each global batch (contiguous, sizes
    differing by at most one), for data-parallel training."""

    x: np.ndarray
    y: np.ndarray
    batch_size: int
    seed: int
    epoch: int
    start_step: int = 0
    augment: bool = False
    shard: tuple[int, int] = (0, 1)

    @property
    def steps(self) -> int:
        return steps_per_epoch(len(self.x), self.batch_size)

    def _global_batches(self):
        """(step, the global batch's indices into x) per step."""
        order = epoch_order(len(self.x), self.seed, self.epoch)
        for step in range(self.start_step, self.steps):
            yield step, order[step * self.batch_size : (step + 1) * self.batch_size]

    def _mine(self, n: int) -> slice:
        """This rank's contiguous part of a global batch of n."""
        rank, world = self.shard
        return slice(rank * n // world, (rank + 1) * n // world) if world > 1 else slice(0, n)

    def indices(self):
        """(step, this rank's indices into x, the global batch's size) per step."""
        for step, idx in self._global_batches():
            yield step, idx[self._mine(len(idx))], len(idx)

    def batches(self):
        """(step, float32 images, int64 labels, the global batch's size) per step."""
        for step, idx in self._global_batches():
            xb, yb = self.x[idx], self.y[idx]
            if self.augment:  # the whole global batch, so that each rank's crops are the same
                xb = augment(xb, np.random.default_rng([self.seed, self.epoch, 1, step]))
            mine = self._mine(len(idx))
            yield step, as_float(xb[mine]), yb[mine], len(idx)


def steps_per_epoch(n: int, batch_size: int) -> int:
    return -(-n // batch_size)
