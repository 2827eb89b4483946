"""Readers for the data sets that exist outside archc, never a download:
- CIFAR-10, python version: `cifar-10-batches-py/` (or `cifar-10-python.tar.gz`),
  pickles read by an unpickler that admits only the NumPy array constructors
  those files use;
- CIFAR-10, binary version: `cifar-10-batches-bin/` (or `cifar-10-binary.tar.gz`);
- MNIST and Fashion-MNIST: the four IDX files, gzipped or not, or Keras's
  `mnist.npz` (read with allow_pickle=False);
- `digits`: scikit-learn's bundled 8x8 digits.
Files are looked up in `--data-dir` (and `<dir>/<set>/`), then in Keras's cache
(`$KERAS_HOME/datasets` or `~/.keras/datasets`).

Images are H x W x C, uint8 (MNIST, CIFAR-10) or float32 in [0, 1] (digits).
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
import struct
import tarfile

import numpy as np

from archc.data.dataset import DataError, Dataset

CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
FASHION_CLASSES = (
    "t-shirt",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle boot",
)


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
    return DataError(
        f"{name}: no data files found. Looked for {wanted} in:\n{where}\n"
        f"Download them on a machine with internet access and put them in one "
        f"of these folders (or pass --data-dir DIR)."
    )


# ---------------------------------------------------------------------------
# CIFAR-10
# ---------------------------------------------------------------------------


class _ArraysOnly(pickle.Unpickler):
    """Admits only what CIFAR-10's python pickles contain: dicts, lists, bytes,
    ints and NumPy arrays, as Python 2 wrote them or Python 3 re-saves them
    (`_codecs.encode` is how protocol 2 spells bytes; `_frombuffer`, how NumPy
    pickles arrays at protocol 5). Any other callable (os.system, builtins.eval,
    ...) is refused."""

    ALLOWED = frozenset(
        {
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy.core.numeric", "_frombuffer"),
            ("numpy._core.numeric", "_frombuffer"),
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
            ("_codecs", "encode"),
        }
    )

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
    (
        "cifar-10-batches-py",
        "cifar-10-python.tar.gz",
        tuple(f"data_batch_{i}" for i in range(1, 6)),
        "test_batch",
        read_cifar_pickle,
    ),
    (
        "cifar-10-batches-bin",
        "cifar-10-binary.tar.gz",
        tuple(f"data_batch_{i}.bin" for i in range(1, 6)),
        "test_batch.bin",
        read_cifar_binary,
    ),
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
            return Dataset(
                "cifar10",
                np.concatenate([p[0] for p in parts]),
                np.concatenate([p[1] for p in parts]),
                x_test,
                y_test,
                CIFAR10_CLASSES,
                source,
            )
    raise _missing(
        "cifar10",
        "cifar-10-batches-py/ (data_batch_1..5, test_batch), "
        "cifar-10-python.tar.gz, cifar-10-batches-bin/ or cifar-10-binary.tar.gz",
        dirs,
    )


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
    dims = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
    body = data[4 + 4 * ndim :]
    if len(body) != int(np.prod(dims)):
        raise DataError(
            f"{what}: header says {'x'.join(map(str, dims))} = {int(np.prod(dims))} "
            f"bytes, the file has {len(body)}"
        )
    return np.frombuffer(body, np.uint8).reshape(dims)


_IDX = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}


def _idx_path(d: str, stem: str) -> str | None:
    for name in (
        stem,
        stem + ".gz",
        stem.replace("-idx", ".idx"),
        stem.replace("-idx", ".idx") + ".gz",
    ):
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
                    arr = {
                        "train_x": z["x_train"],
                        "train_y": z["y_train"],
                        "test_x": z["x_test"],
                        "test_y": z["y_test"],
                    }
            except (KeyError, ValueError, OSError) as e:
                raise DataError(f"{npz}: not Keras's mnist.npz ({e})") from None
            return _mnist_dataset(name, arr, classes, npz)
    raise _missing(
        name,
        "train-images-idx3-ubyte, train-labels-idx1-ubyte, "
        "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (each may end in .gz)"
        + ("" if fashion else " or Keras's mnist.npz"),
        dirs,
    )


def _mnist_dataset(name, arr, classes, source) -> Dataset:
    for split in ("train", "test"):
        x, y = arr[f"{split}_x"], arr[f"{split}_y"]
        if x.ndim != 3 or y.ndim != 1 or len(x) != len(y):
            raise DataError(
                f"{source}: {split} images are {x.shape} and labels {y.shape}; "
                f"expected N x 28 x 28 and N"
            )
    return Dataset(
        name,
        arr["train_x"][..., None].astype(np.uint8),
        _labels(arr["train_y"], 10, source),
        arr["test_x"][..., None].astype(np.uint8),
        _labels(arr["test_y"], 10, source),
        classes,
        source,
    )


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
    return Dataset(
        "digits",
        x[train],
        y[train],
        x[test],
        y[test],
        tuple(str(i) for i in range(10)),
        "scikit-learn",
    )


def _stratified_split(y: np.ndarray, test_fraction: float, seed: int):
    rng = np.random.default_rng([seed, 7])
    train, test = [], []
    for c in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == c))
        k = round(len(idx) * test_fraction)
        test.append(idx[:k])
        train.append(idx[k:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(test))
