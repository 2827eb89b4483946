"""The data sets archc renders itself, deterministically from a seed, needing no files:
`shapes`, `colors` and `shapes_colors` (the textbook's 28x28 geometric-shape, colour and
combined sets of seed 001) and `synthetic` (random images of the spec's shape).

Images are H x W x C uint8.
"""

from __future__ import annotations

import numpy as np

from archc.data.dataset import Dataset

SHAPES = ("line", "triangle", "diamond", "rectangle", "circle")
COLORS = {
    "red": (1.0, 0.0, 0.0),
    "green": (0.0, 1.0, 0.0),
    "blue": (0.0, 0.0, 1.0),
    "yellow": (1.0, 1.0, 0.0),
    "cyan": (0.0, 1.0, 1.0),
    "magenta": (1.0, 0.0, 1.0),
}
# the combined task of seed 001: three colours x three shapes, 600:100 per class
COMBINED = (("red", "blue", "green"), ("circle", "rectangle", "triangle"))


_SS = 4  # supersampling per axis: edges are anti-aliased, as a drawn image's are


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    c = (np.arange(size * _SS) + 0.5) / _SS
    return np.meshgrid(c, c, indexing="xy")


def render_shape(kind: str, rng: np.random.Generator, size: int = 28) -> np.ndarray:
    """One anti-aliased shape mask in [0, 1], size x size, at a random place and size."""
    X, Y = _grid(size)
    lo, hi = 3.0, size - 3.0
    if kind == "line":
        while True:
            (x0, y0), (x1, y1) = rng.uniform(lo, hi, (2, 2))
            if np.hypot(x1 - x0, y1 - y0) >= size * 0.4:
                break
        dx, dy = x1 - x0, y1 - y0
        t = np.clip(((X - x0) * dx + (Y - y0) * dy) / (dx * dx + dy * dy), 0, 1)
        width = rng.uniform(0.8, 1.6)
        mask = np.hypot(X - (x0 + t * dx), Y - (y0 + t * dy)) <= width / 2
    elif kind == "triangle":
        while True:
            p = rng.uniform(lo, hi, (3, 2))
            (ax, ay), (bx, by) = p[1] - p[0], p[2] - p[0]
            area = abs(ax * by - ay * bx) / 2
            sides = np.linalg.norm(p - np.roll(p, 1, axis=0), axis=1)
            if area >= 40 and sides.min() >= 8:
                break
        s = [
            (X - p[i, 0]) * (p[(i + 1) % 3, 1] - p[i, 1])
            - (Y - p[i, 1]) * (p[(i + 1) % 3, 0] - p[i, 0])
            for i in range(3)
        ]
        mask = ((s[0] >= 0) & (s[1] >= 0) & (s[2] >= 0)) | ((s[0] <= 0) & (s[1] <= 0) & (s[2] <= 0))
    else:
        rx, ry = rng.uniform(4, size / 2 - 3, 2)
        cx, cy = rng.uniform(lo + rx, hi - rx), rng.uniform(lo + ry, hi - ry)
        if kind == "diamond":
            mask = np.abs(X - cx) / rx + np.abs(Y - cy) / ry <= 1
        elif kind == "rectangle":
            mask = (np.abs(X - cx) <= rx) & (np.abs(Y - cy) <= ry)
        elif kind == "circle":
            r = min(rx, ry)
            mask = np.hypot(X - cx, Y - cy) <= r
        else:
            raise ValueError(kind)
    return mask.reshape(size, _SS, size, _SS).mean(axis=(1, 3))


def _to_uint8(img: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)


def _render_set(name, classes, draw, per_class_train, per_class_test, seed) -> Dataset:
    splits = []
    for split, n in ((0, per_class_train), (1, per_class_test)):
        rng = np.random.default_rng([seed, split, len(classes), 1])
        labels = np.repeat(np.arange(len(classes)), n)
        rng.shuffle(labels)
        images = np.stack([_to_uint8(draw(int(c), rng)) for c in labels])
        splits += [images, labels.astype(np.int64)]
    return Dataset(name, *splits, tuple(classes), f"rendered from seed {seed}")


def make_shapes(seed: int = 0, per_class_train: int = 600, per_class_test: int = 100) -> Dataset:
    """Seed 001's shape set: one white shape on black, 28x28x1, five classes."""

    def draw(c, rng):
        return (render_shape(SHAPES[c], rng) * rng.uniform(0.6, 1.0))[..., None]

    return _render_set("shapes", SHAPES, draw, per_class_train, per_class_test, seed)


def _colored(mask: np.ndarray, rgb, rng) -> np.ndarray:
    tint = np.clip(np.asarray(rgb) * rng.uniform(0.75, 1.0) + rng.uniform(0, 0.15, 3), 0, 1)
    return mask[..., None] * tint


def make_colors(seed: int = 0, per_class_train: int = 600, per_class_test: int = 100) -> Dataset:
    """Seed 001's colour set: a shape of any kind (thin lines to large blocks) in one
    of six colours on black, 28x28x3; the class is the colour."""
    names = tuple(COLORS)

    def draw(c, rng):
        return _colored(render_shape(SHAPES[rng.integers(len(SHAPES))], rng), COLORS[names[c]], rng)

    return _render_set("colors", names, draw, per_class_train, per_class_test, seed)


def make_shapes_colors(
    seed: int = 0, per_class_train: int = 600, per_class_test: int = 100
) -> Dataset:
    """Seed 001's combined task: {red, blue, green} x {circle, rectangle, triangle},
    nine classes `<colour>-<shape>`, 600:100 per class as its table gives."""
    colors, shapes = COMBINED
    classes = tuple(f"{c}-{s}" for c in colors for s in shapes)

    def draw(k, rng):
        c, s = divmod(k, len(shapes))
        return _colored(render_shape(shapes[s], rng), COLORS[colors[c]], rng)

    return _render_set("shapes_colors", classes, draw, per_class_train, per_class_test, seed)


def make_synthetic(
    shape: tuple[int, ...], classes: int, seed: int = 0, n_train: int = 1024, n_test: int = 256
) -> Dataset:
    """Random images of any shape with random labels: for smoke tests and throughput."""
    rng = np.random.default_rng([seed, 11])
    return Dataset(
        "synthetic",
        rng.integers(0, 256, (n_train, *shape), dtype=np.uint8),
        rng.integers(0, classes, n_train).astype(np.int64),
        rng.integers(0, 256, (n_test, *shape), dtype=np.uint8),
        rng.integers(0, classes, n_test).astype(np.int64),
        tuple(str(i) for i in range(classes)),
        "random",
    )
