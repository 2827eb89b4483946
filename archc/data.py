"""Data sets for the training runners: one implementation, used by both backends.

Readers for the real file formats, never a download:
- CIFAR-10, python version: `cifar-10-batches-py/` (or `cifar-10-python.tar.gz`),
  pickles read by an unpickler that admits only the NumPy array constructors
  those files use;
- CIFAR-10, binary version: `cifar-10-batches-bin/` (or `cifar-10-binary.tar.gz`);
- MNIST and Fashion-MNIST: the four IDX files, gzipped or not, or Keras's
  `mnist.npz` (read with allow_pickle=False).
Files are looked up in `--data-dir` (and `<dir>/<set>/`), then in Keras's cache
(`$KERAS_HOME/datasets` or `~/.keras/datasets`).

Built-in sets that need no files: `digits` (scikit-learn's bundled 8x8 digits),
`shapes`, `colors` and `shapes_colors` (the textbook's 28x28 geometric-shape,
colour and combined sets, seed 001, rendered deterministically from a seed), and
`synthetic` (random images of the spec's shape).

Images are H x W x C, uint8 (scaled by 1/255 when batched) or float32 in [0, 1].
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
import struct
import tarfile
from dataclasses import dataclass, field, replace

import numpy as np

from archc.datasets import NAMES

CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck")
FASHION_CLASSES = ("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt",
                   "sneaker", "bag", "ankle boot")
SHAPES = ("line", "triangle", "diamond", "rectangle", "circle")
COLORS = {"red": (1.0, 0.0, 0.0), "green": (0.0, 1.0, 0.0), "blue": (0.0, 0.0, 1.0),
          "yellow": (1.0, 1.0, 0.0), "cyan": (0.0, 1.0, 1.0), "magenta": (1.0, 0.0, 1.0)}
# the combined task of seed 001: three colours x three shapes, 600:100 per class
COMBINED = (("red", "blue", "green"), ("circle", "rectangle", "triangle"))


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
        return (f"{self.name}: {len(self.x_train):,} train / {len(self.x_test):,} test, "
                f"{'x'.join(map(str, self.shape))}, {len(self.classes)} classes"
                + (f" ({self.source})" if self.source else ""))


def as_float(x: np.ndarray) -> np.ndarray:
    """A batch as float32 in [0, 1] (uint8 images are scaled by 1/255, as the seeds do)."""
    if x.dtype == np.uint8:
        return x.astype(np.float32) * np.float32(1 / 255)
    return x.astype(np.float32, copy=False)


# ---------------------------------------------------------------------------
# where files are looked for
# ---------------------------------------------------------------------------


def search_dirs(data_dir: str | None, subdirs: tuple[str, ...]) -> list[str]:
    keras_home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    roots = ([data_dir] if data_dir else []) + [os.path.join(keras_home, "datasets")]
    out = []
    for root in roots:
        for sub in ("",) + subdirs:
            d = os.path.join(root, sub) if sub else root
            if d not in out:
                out.append(d)
    return out


def _missing(name: str, wanted: str, dirs: list[str]) -> DataError:
    where = "\n".join(f"  {d}" for d in dirs)
    return DataError(f"{name}: no data files found. Looked for {wanted} in:\n{where}\n"
                     f"Download them on a machine with internet access and put them in one "
                     f"of these folders (or pass --data-dir DIR).")


# ---------------------------------------------------------------------------
# CIFAR-10
# ---------------------------------------------------------------------------


class _ArraysOnly(pickle.Unpickler):
    """Admits only what CIFAR-10's python pickles contain: dicts, lists, bytes,
    ints and NumPy arrays, as Python 2 wrote them or Python 3 re-saves them
    (`_codecs.encode` is how protocol 2 spells bytes; `_frombuffer`, how NumPy
    pickles arrays at protocol 5). Any other callable (os.system, builtins.eval,
    ...) is refused."""

    ALLOWED = frozenset({("numpy.core.multiarray", "_reconstruct"),
                         ("numpy._core.multiarray", "_reconstruct"),
                         ("numpy.core.numeric", "_frombuffer"),
                         ("numpy._core.numeric", "_frombuffer"),
                         ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")})

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a data file")


def read_cifar_pickle(data: bytes, what: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        d = _ArraysOnly(io.BytesIO(data), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as e:
        raise DataError(f"{what}: not a CIFAR-10 python batch ({e})") from None
    if not isinstance(d, dict):
        raise DataError(f"{what}: not a CIFAR-10 python batch (a {type(d).__name__})")
    x = d.get(b"data", d.get("data"))
    y = d.get(b"labels", d.get("labels"))
    x = np.asarray(x) if x is not None else None
    if x is None or y is None or x.ndim != 2 or x.shape[1] != 3072 or len(y) != len(x):
        raise DataError(f"{what}: a CIFAR-10 batch has `data` (N x 3072) and N `labels`")
    return _cifar_images(x.astype(np.uint8, copy=False)), _labels(y, 10, what)


def read_cifar_binary(data: bytes, what: str) -> tuple[np.ndarray, np.ndarray]:
    if len(data) % 3073:
        raise DataError(f"{what}: {len(data)} bytes is not a whole number of 3073-byte records")
    rec = np.frombuffer(data, np.uint8).reshape(-1, 3073)
    return _cifar_images(rec[:, 1:]), _labels(rec[:, 0], 10, what)


def _cifar_images(rows: np.ndarray) -> np.ndarray:
    # each row: 1024 red, 1024 green, 1024 blue values, row-major 32 x 32
    return np.ascontiguousarray(rows.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))


def _labels(y, classes: int, what: str) -> np.ndarray:
    y = np.asarray(y, dtype=np.int64).reshape(-1)
    if y.size and (y.min() < 0 or y.max() >= classes):
        raise DataError(f"{what}: labels must be 0..{classes - 1}, found {y.min()}..{y.max()}")
    return y


_CIFAR_LAYOUTS = (  # (folder, archive, train files, test file, reader)
    ("cifar-10-batches-py", "cifar-10-python.tar.gz",
     tuple(f"data_batch_{i}" for i in range(1, 6)), "test_batch", read_cifar_pickle),
    ("cifar-10-batches-bin", "cifar-10-binary.tar.gz",
     tuple(f"data_batch_{i}.bin" for i in range(1, 6)), "test_batch.bin", read_cifar_binary),
)


def load_cifar10(data_dir: str | None) -> Dataset:
    dirs = search_dirs(data_dir, ("cifar10", "cifar-10"))
    for d in dirs:
        for folder, archive, train_files, test_file, reader in _CIFAR_LAYOUTS:
            files = train_files + (test_file,)
            base = os.path.join(d, folder)
            if all(os.path.isfile(os.path.join(base, f)) for f in files):
                blobs = {f: _read(os.path.join(base, f)) for f in files}
                source = base
            elif os.path.isfile(os.path.join(d, archive)):
                blobs = _from_tar(os.path.join(d, archive), folder, files)
                source = os.path.join(d, archive)
            else:
                continue
            parts = [reader(blobs[f], f) for f in train_files]
            x_test, y_test = reader(blobs[test_file], test_file)
            return Dataset("cifar10", np.concatenate([p[0] for p in parts]),
                           np.concatenate([p[1] for p in parts]), x_test, y_test,
                           CIFAR10_CLASSES, source)
    raise _missing("cifar10", "cifar-10-batches-py/ (data_batch_1..5, test_batch), "
                   "cifar-10-python.tar.gz, cifar-10-batches-bin/ or cifar-10-binary.tar.gz", dirs)


def _read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _from_tar(path: str, folder: str, files: tuple[str, ...]) -> dict[str, bytes]:
    out = {}
    try:
        with tarfile.open(path, "r:*") as tar:
            for f in files:
                member = tar.extractfile(f"{folder}/{f}")  # read in memory; nothing extracted
                if member is None:
                    raise KeyError(f)
                out[f] = member.read()
    except (tarfile.TarError, KeyError, OSError, EOFError) as e:
        raise DataError(f"{path}: not a complete CIFAR-10 archive ({e})") from None
    return out


# ---------------------------------------------------------------------------
# MNIST / Fashion-MNIST
# ---------------------------------------------------------------------------


def read_idx(data: bytes, what: str) -> np.ndarray:
    """An IDX file (ubyte only, as MNIST uses), gzipped or not."""
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as e:
            raise DataError(f"{what}: broken gzip data ({e})") from None
    if len(data) < 4 or data[:2] != b"\0\0":
        raise DataError(f"{what}: not an IDX file (bad magic number)")
    if data[2] != 0x08:
        raise DataError(f"{what}: IDX type 0x{data[2]:02x} is not unsigned bytes")
    ndim = data[3]
    if not 1 <= ndim <= 4 or len(data) < 4 + 4 * ndim:
        raise DataError(f"{what}: IDX header is truncated or has {ndim} dimensions")
    dims = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    body = data[4 + 4 * ndim:]
    if len(body) != int(np.prod(dims)):
        raise DataError(f"{what}: header says {'x'.join(map(str, dims))} = {int(np.prod(dims))} "
                        f"bytes, the file has {len(body)}")
    return np.frombuffer(body, np.uint8).reshape(dims)


_IDX = {"train_x": "train-images-idx3-ubyte", "train_y": "train-labels-idx1-ubyte",
        "test_x": "t10k-images-idx3-ubyte", "test_y": "t10k-labels-idx1-ubyte"}


def _idx_path(d: str, stem: str) -> str | None:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"),
                 stem.replace("-idx", ".idx") + ".gz"):
        p = os.path.join(d, name)
        if os.path.isfile(p):
            return p
    return None


def load_mnist(data_dir: str | None, fashion: bool = False) -> Dataset:
    name = "fashion_mnist" if fashion else "mnist"
    subdirs = ("fashion-mnist", "fashion_mnist") if fashion else ("mnist", "MNIST/raw")
    dirs = search_dirs(data_dir, subdirs)
    classes = FASHION_CLASSES if fashion else tuple(str(i) for i in range(10))
    for d in dirs:
        paths = {k: _idx_path(d, stem) for k, stem in _IDX.items()}
        if all(paths.values()):
            arr = {k: read_idx(_read(p), os.path.basename(p)) for k, p in paths.items()}
            return _mnist_dataset(name, arr, classes, d)
        npz = os.path.join(d, "mnist.npz")
        if not fashion and os.path.isfile(npz):
            try:
                with np.load(npz, allow_pickle=False) as z:
                    arr = {"train_x": z["x_train"], "train_y": z["y_train"],
                           "test_x": z["x_test"], "test_y": z["y_test"]}
            except (KeyError, ValueError, OSError) as e:
                raise DataError(f"{npz}: not Keras's mnist.npz ({e})") from None
            return _mnist_dataset(name, arr, classes, npz)
    raise _missing(name, "train-images-idx3-ubyte, train-labels-idx1-ubyte, "
                   "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (each may end in .gz)"
                   + ("" if fashion else " or Keras's mnist.npz"), dirs)


def _mnist_dataset(name, arr, classes, source) -> Dataset:
    for split in ("train", "test"):
        x, y = arr[f"{split}_x"], arr[f"{split}_y"]
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise DataError(f"{source}: {split} images are {x.shape} and labels {y.shape}; "
                            f"expected N x 28 x 28 and N")
    return Dataset(name, arr["train_x"][..., None].astype(np.uint8),
                   _labels(arr["train_y"], 10, source), arr["test_x"][..., None].astype(np.uint8),
                   _labels(arr["test_y"], 10, source), classes, source)


# ---------------------------------------------------------------------------
# built-in sets
# ---------------------------------------------------------------------------


def load_digits(seed: int = 0) -> Dataset:
    """scikit-learn's 1,797 8x8 digits (values 0..16), split 80/20 per class."""
    try:
        from sklearn.datasets import load_digits as sk_digits
    except ImportError:
        from archc.extras import MissingPackage

        raise DataError(f"digits: {MissingPackage('train --data digits', ['sklearn'])}") from None
    d = sk_digits()
    x = (d.images / 16.0).astype(np.float32)[..., None]
    y = d.target.astype(np.int64)
    train, test = _stratified_split(y, 0.2, seed)
    return Dataset("digits", x[train], y[train], x[test], y[test],
                   tuple(str(i) for i in range(10)), "scikit-learn")


def _stratified_split(y: np.ndarray, test_fraction: float, seed: int):
    rng = np.random.default_rng([seed, 7])
    train, test = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        k = round(len(idx) * test_fraction)
        test.append(idx[:k])
        train.append(idx[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))


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
        s = [(X - p[i, 0]) * (p[(i + 1) % 3, 1] - p[i, 1])
             - (Y - p[i, 1]) * (p[(i + 1) % 3, 0] - p[i, 0]) for i in range(3)]
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
        return _colored(render_shape(SHAPES[rng.integers(len(SHAPES))], rng),
                        COLORS[names[c]], rng)
    return _render_set("colors", names, draw, per_class_train, per_class_test, seed)


def make_shapes_colors(seed: int = 0, per_class_train: int = 600,
                       per_class_test: int = 100) -> Dataset:
    """Seed 001's combined task: {red, blue, green} x {circle, rectangle, triangle},
    nine classes `<colour>-<shape>`, 600:100 per class as its table gives."""
    colors, shapes = COMBINED
    classes = tuple(f"{c}-{s}" for c in colors for s in shapes)

    def draw(k, rng):
        c, s = divmod(k, len(shapes))
        return _colored(render_shape(shapes[s], rng), COLORS[colors[c]], rng)
    return _render_set("shapes_colors", classes, draw, per_class_train, per_class_test, seed)


def make_synthetic(shape: tuple[int, ...], classes: int, seed: int = 0, n_train: int = 1024,
                   n_test: int = 256) -> Dataset:
    """Random images of any shape with random labels: for smoke tests and throughput."""
    rng = np.random.default_rng([seed, 11])
    return Dataset("synthetic", rng.integers(0, 256, (n_train, *shape), dtype=np.uint8),
                   rng.integers(0, classes, n_train).astype(np.int64),
                   rng.integers(0, 256, (n_test, *shape), dtype=np.uint8),
                   rng.integers(0, classes, n_test).astype(np.int64),
                   tuple(str(i) for i in range(classes)), "random")


def load(name: str, data_dir: str | None = None, seed: int = 0,
         shape: tuple[int, ...] | None = None, classes: int | None = None) -> Dataset:
    """A data set by name. `synthetic` takes the spec's input `shape` and `classes`."""
    if name == "cifar10":
        return load_cifar10(data_dir)
    if name in ("mnist", "fashion_mnist"):
        return load_mnist(data_dir, fashion=name == "fashion_mnist")
    if name == "digits":
        return load_digits(seed)
    if name == "shapes":
        return make_shapes(seed)
    if name == "colors":
        return make_colors(seed)
    if name == "shapes_colors":
        return make_shapes_colors(seed)
    if name == "synthetic":
        if shape is None or classes is None:
            raise DataError("synthetic data takes its shape and classes from the spec")
        return make_synthetic(tuple(shape), classes, seed)
    raise DataError(f"unknown data set `{name}`; choose one of {', '.join(NAMES)}")


# ---------------------------------------------------------------------------
# fitting a data set to a spec
# ---------------------------------------------------------------------------


def fit_to_spec(data: Dataset, input_shape: tuple[int, ...], classes: int,
                resize: bool = False) -> Dataset:
    """Check (and with `resize`, adapt) a data set to the spec's input and output.

    A spec whose input is a vector of H*W*C takes the images flattened (the seeds'
    fully connected nets). With `resize`, images are resized bilinearly to the
    spec's H x W and converted grey <-> colour."""
    have, want = data.shape, tuple(input_shape)
    hw = "x".join(map(str, have))
    problems = []
    if len(data.classes) != classes:
        problems.append(f"the spec ends in {classes} outputs but {data.name} has "
                        f"{len(data.classes)} classes: make the last layer "
                        f"Dense({len(data.classes)}, softmax) or use another data set")
    flatten = len(want) == 1 and want[0] == int(np.prod(have))
    if want != have and not flatten:
        if len(want) != 3:
            problems.append(f"the spec takes a vector of {want[0]}; {data.name} images are "
                            f"{hw} ({int(np.prod(have))} values)")
        elif not resize:
            problems.append(f"{data.name} images are {hw} (H x W x C) but the spec's input is "
                            f"{'x'.join(map(str, want))}: pass --resize to resize them "
                            f"(bilinear) and convert grey <-> colour, or use a spec made for "
                            f"{hw} input")
    if problems:
        raise DataError("\n".join(problems))
    if want == have:
        return data
    if flatten:
        return replace(data, x_train=data.x_train.reshape(len(data.x_train), -1),
                       x_test=data.x_test.reshape(len(data.x_test), -1),
                       notes=(*data.notes, f"flattened {hw} to {want[0]}"))
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
        b = x[s:s + chunk]
        rows = b[:, y0] * (1 - wy) + b[:, y1] * wy
        out[s:s + chunk] = rows[:, :, x0] * (1 - wx) + rows[:, :, x1] * wx
    return out


# ---------------------------------------------------------------------------
# batches: the order and augmentation of an epoch depend only on (seed, epoch)
# ---------------------------------------------------------------------------


def epoch_order(n: int, seed: int, epoch: int) -> np.ndarray:
    return np.random.default_rng([seed, epoch, 0]).permutation(n)


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
        crop = padded[i, dy[i]:dy[i] + h, dx[i]:dx[i] + w]
        out[i] = crop[:, ::-1] if flip[i] else crop
    return out


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
            yield step, order[step * self.batch_size:(step + 1) * self.batch_size]

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
