"""The record every reader and renderer returns (`Dataset`) and the one error the data
package raises (`DataError`). Imports no NumPy, so that the command line can catch
`DataError` and the names of the sets can be listed without it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np


class DataError(Exception):
    """A data set is missing, malformed or does not fit the spec: the user's to fix."""


@dataclass(frozen=True)
class Dataset:
    name: str
    x_train: np.ndarray  # N x H x W x C, uint8 or float32
    y_train: np.ndarray  # N, int64
    x_test: np.ndarray
    y_test: np.ndarray
    classes: tuple[str, ...]
    source: str = ""  # where it was read from, for the run's record
    notes: tuple[str, ...] = field(default=())

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    def describe(self) -> str:
        return (
            f"{self.name}: {len(self.x_train):,} train / {len(self.x_test):,} test, "
            f"{'x'.join(map(str, self.shape))}, {len(self.classes)} classes"
            + (f" ({self.source})" if self.source else "")
        )
