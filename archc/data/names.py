"""The data sets `archc train` and `archc evaluate` know, by name: the list the command
line offers, the modules a set needs beyond NumPy, and `load`, which hands a name to its
reader (archc/data/readers.py) or renderer (archc/data/rendered.py). Imports no NumPy
until a set is loaded, so that the command line can list the names without it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from archc.data.dataset import DataError

if TYPE_CHECKING:
    from archc.data.dataset import Dataset

NAMES = (
    "cifar10",
    "mnist",
    "fashion_mnist",
    "digits",
    "shapes",
    "colors",
    "shapes_colors",
    "synthetic",
)

# the modules a set needs beyond NumPy (digits is scikit-learn's bundled set)
NEEDS = {"digits": ("sklearn",)}


def load(
    name: str,
    data_dir: str | None = None,
    seed: int = 0,
    shape: tuple[int, ...] | None = None,
    classes: int | None = None,
) -> Dataset:
    """A data set by name. `synthetic` takes the spec's input `shape` and `classes`."""
    from archc.data import readers, rendered

    if name == "cifar10":
        return readers.load_cifar10(data_dir)
    if name in ("mnist", "fashion_mnist"):
        return readers.load_mnist(data_dir, fashion=name == "fashion_mnist")
    if name == "digits":
        return readers.load_digits(seed)
    if name == "shapes":
        return rendered.make_shapes(seed)
    if name == "colors":
        return rendered.make_colors(seed)
    if name == "shapes_colors":
        return rendered.make_shapes_colors(seed)
    if name == "synthetic":
        if shape is None or classes is None:
            raise DataError("synthetic data takes its shape and classes from the spec")
        return rendered.make_synthetic(tuple(shape), classes, seed)
    raise DataError(f"unknown data set `{name}`; choose one of {', '.join(NAMES)}")
