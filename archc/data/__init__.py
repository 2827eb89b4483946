"""Data sets for the training runners: one implementation, used by both backends.

One module per concern:
- names.py      the sets by name, what each needs, and `load` (no NumPy)
- dataset.py    the `Dataset` record and `DataError` (no NumPy)
- readers.py    the standard file formats (CIFAR-10, MNIST, Fashion-MNIST) and digits
- rendered.py   the sets rendered from a seed (shapes, colors, shapes_colors, synthetic)
- transforms.py float scaling, fitting a set to the spec (flatten, resize, channels),
                augmentation
- batching.py   an epoch's batches: order, augmentation and sharding from (seed, epoch)

The names below are this package's public API, loaded from their module on first use
(PEP 562), so that `import archc.data` (and `archc.data.names`, which the command line
imports to list the sets) loads no NumPy.
"""

from __future__ import annotations

import importlib

_HOME = {
    "names": ("NAMES", "NEEDS", "load"),
    "dataset": ("DataError", "Dataset"),
    "readers": (
        "CIFAR10_CLASSES",
        "FASHION_CLASSES",
        "search_dirs",
        "read_cifar_pickle",
        "read_cifar_binary",
        "load_cifar10",
        "read_idx",
        "load_mnist",
        "load_digits",
    ),
    "rendered": (
        "SHAPES",
        "COLORS",
        "COMBINED",
        "render_shape",
        "make_shapes",
        "make_colors",
        "make_shapes_colors",
        "make_synthetic",
    ),
    "transforms": ("as_float", "fit_to_spec", "convert_channels", "resize_bilinear", "augment"),
    "batching": ("Epoch", "epoch_order", "steps_per_epoch"),
}
_MODULE_OF = {name: module for module, names in _HOME.items() for name in names}

__all__ = list(_MODULE_OF)


def __getattr__(name: str):
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
