"""Shape arithmetic as small pure functions, each with its formula.

Shapes are channels-last tuples: (H, W, C) for feature maps, (N,) for vectors.
The rules follow Keras exactly for `same` and `valid`, and PyTorch for explicit
padding, so that a report never disagrees with what either framework builds.
"""

from __future__ import annotations

import math

Shape = tuple[int, ...]


class ShapeError(Exception):
    """A shape rule cannot be satisfied. `hint` says how the user might fix it."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint


def effective_kernel(k: int, dilation: int = 1) -> int:
    """The extent a dilated kernel covers: d*(k-1) + 1."""
    return dilation * (k - 1) + 1


def window_output(n: int, k: int, s: int, padding: str | tuple[int, int], dilation: int = 1) -> int:
    """Output length of a sliding window (convolution or pooling) along one axis.

    - `same`  (Keras): ceil(n / s)
    - `valid` (Keras): ceil((n - d*(k-1)) / s)  ==  floor((n - d*(k-1) - 1) / s) + 1
    - explicit (before, after) zero padding (PyTorch):
      floor((n + before + after - d*(k-1) - 1) / s) + 1

    Raises ShapeError when the result would be zero or negative.
    """
    dk = effective_kernel(k, dilation)
    if padding == "same":
        out = math.ceil(n / s)
    elif padding == "valid":
        out = (n - dk) // s + 1 if n >= dk else 0
    else:
        before, after = padding
        total = n + before + after
        out = (total - dk) // s + 1 if total >= dk else 0
    if out <= 0:
        raise ShapeError(
            f"a window of {dk} does not fit an input of {n}"
            + ("" if isinstance(padding, str) else f" padded by {padding[0]}+{padding[1]}"),
            hint="use `same` padding, a smaller kernel, or remove a downsampling step earlier",
        )
    return out


def ceil_window_output(n: int, k: int, s: int, padding: tuple[int, int]) -> int:
    """Output length of PyTorch's `ceil_mode` pooling along one axis, (before, after)
    padding: floor((n + before + after - k + s - 1) / s) + 1 (the quotient rounded
    down, also below zero), less one when the last window would start past the
    input and its left padding ((out - 1) * s >= n + before), PyTorch's rule. A
    window may be longer than the padded input (n = 1, k = 2: one output).
    Raises ShapeError when no window is left."""
    before, after = padding
    out = (n + before + after - k + s - 1) // s + 1
    if (out - 1) * s >= n + before:
        out -= 1
    if out <= 0:
        raise ShapeError(
            f"no window of {k} starts inside an input of {n}"
            + (f" padded by {before}+{after}" if before or after else ""),
            hint="use a smaller kernel, or remove a downsampling step earlier",
        )
    return out


def ceil_overhang(n: int, k: int, s: int, padding: tuple[int, int]) -> int:
    """How many cells the last `ceil_mode` window reaches past the padded input
    (0 when it does not): (out - 1) * s + k - (n + before + after)."""
    out = ceil_window_output(n, k, s, padding)
    return max((out - 1) * s + k - (n + padding[0] + padding[1]), 0)


def same_padding(n: int, k: int, s: int, dilation: int = 1) -> tuple[int, int]:
    """The (before, after) zeros Keras/TensorFlow `same` adds: the odd one goes after.

    total = max((ceil(n/s) - 1)*s + d*(k-1) + 1 - n, 0); before = total // 2.
    """
    out = math.ceil(n / s)
    total = max((out - 1) * s + effective_kernel(k, dilation) - n, 0)
    return total // 2, total - total // 2


def describe(shape: Shape | None) -> str:
    if shape is None:
        return "?"
    return " x ".join(str(d) for d in shape)
