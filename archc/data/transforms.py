"""What is done to images between reading and training: scaling to float
(`as_float`), fitting a data set to the spec's input and output (`fit_to_spec`:
flattening, bilinear resizing, grey <-> colour) and the CIFAR augmentation."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from archc.data.dataset import DataError, Dataset


def as_float(x: np.ndarray) -> np.ndarray:
    """A batch as float32 in [0, 1] (uint8 images are scaled by 1/255, as the seeds do)."""
    if x.dtype == np.uint8:
        return x.astype(np.float32) * np.float32(1 / 255)
    return x.astype(np.float32, copy=False)


# ---------------------------------------------------------------------------
# fitting a data set to a spec
# ---------------------------------------------------------------------------


def fit_to_spec(
    data: Dataset, input_shape: tuple[int, ...], classes: int, resize: bool = False
) -> Dataset:
    """Check (and with `resize`, adapt) a data set to the spec's input and output.

    A spec whose input is a vector of H*W*C takes the images flattened (the seeds'
    fully connected nets). With `resize`, images are resized bilinearly to the
    spec's H x W and converted grey <-> colour."""
    have, want = data.shape, tuple(input_shape)
    hw = "x".join(map(str, have))
    problems = []
    if len(data.classes) != classes:
        problems.append(
            f"the spec ends in {classes} outputs but {data.name} has "
            f"{len(data.classes)} classes: make the last layer "
            f"Dense({len(data.classes)}, softmax) or use another data set"
        )
    flatten = len(want) == 1 and want[0] == int(np.prod(have))
    if want != have and not flatten:
        if len(want) != 3:
            problems.append(
                f"the spec takes a vector of {want[0]}; {data.name} images are "
                f"{hw} ({int(np.prod(have))} values)"
            )
        elif not resize:
            problems.append(
                f"{data.name} images are {hw} (H x W x C) but the spec's input is "
                f"{'x'.join(map(str, want))}: pass --resize to resize them "
                f"(bilinear) and convert grey <-> colour, or use a spec made for "
                f"{hw} input"
            )
    if problems:
        raise DataError("\n".join(problems))
    if want == have:
        return data
    if flatten:
        return replace(
            data,
            x_train=data.x_train.reshape(len(data.x_train), -1),
            x_test=data.x_test.reshape(len(data.x_test), -1),
            notes=(*data.notes, f"flattened {hw} to {want[0]}"),
        )
    notes = list(data.notes)
    xs = []
    for x in (data.x_train, data.x_test):
        x = as_float(x)
        if x.shape[1:3] != want[:2]:
            x = resize_bilinear(x, want[0], want[1])
        x = convert_channels(x, want[2])
        xs.append(x)
    if have[:2] != want[:2]:
        notes.append(f"resized {have[0]}x{have[1]} to {want[0]}x{want[1]} (bilinear)")
    if have[2] != want[2]:
        notes.append(f"converted {have[2]} channel(s) to {want[2]}")
    return replace(data, x_train=xs[0], x_test=xs[1], notes=tuple(notes))


def convert_channels(x: np.ndarray, channels: int) -> np.ndarray:
    c = x.shape[-1]
    if c == channels:
        return x
    if c == 1:
        return np.repeat(x, channels, axis=-1)
    if channels == 1 and c == 3:  # ITU-R 601 luma, as PIL's "L" conversion
        return (x @ np.array([0.299, 0.587, 0.114], np.float32))[..., None]
    raise DataError(f"cannot convert {c} channels to {channels}")


def _axis_weights(n_in: int, n_out: int):
    # half-pixel centres (align_corners=False), as tf.image.resize and PIL do
    pos = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
    i0 = np.floor(pos).astype(np.int64)
    i1 = np.minimum(i0 + 1, n_in - 1)
    w = (pos - i0).astype(np.float32)
    return i0, i1, w


def resize_bilinear(x: np.ndarray, height: int, width: int, chunk: int = 4096) -> np.ndarray:
    """N x H x W x C float images resized to height x width (no antialiasing)."""
    y0, y1, wy = _axis_weights(x.shape[1], height)
    x0, x1, wx = _axis_weights(x.shape[2], width)
    out = np.empty((len(x), height, width, x.shape[3]), np.float32)
    wy, wx = wy[None, :, None, None], wx[None, None, :, None]
    for s in range(0, len(x), chunk):
        b = x[s : s + chunk]
        rows = b[:, y0] * (1 - wy) + b[:, y1] * wy
        out[s : s + chunk] = rows[:, :, x0] * (1 - wx) + rows[:, :, x1] * wx
    return out


def augment(x: np.ndarray, rng: np.random.Generator, pad: int = 4) -> np.ndarray:
    """The standard CIFAR augmentation: zero-pad by `pad`, random crop back, random
    horizontal flip. x: N x H x W x C."""
    n, h, w = x.shape[:3]
    padded = np.pad(x, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
    dy = rng.integers(0, 2 * pad + 1, n)
    dx = rng.integers(0, 2 * pad + 1, n)
    flip = rng.random(n) < 0.5
    out = np.empty_like(x)
    for i in range(n):
        crop = padded[i, dy[i] : dy[i] + h, dx[i] : dx[i] + w]
        out[i] = crop[:, ::-1] if flip[i] else crop
    return out
