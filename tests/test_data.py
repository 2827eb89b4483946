"""The training runners' data sets: readers for the real file formats (on files the
tests write in those formats), the rendered textbook sets, fitting data to a spec,
batches and augmentation."""

from __future__ import annotations

import gzip
import io
import os
import pickle
import struct
import tarfile

import numpy as np
import pytest

from archc import data as D


def _images(n, shape, seed):
    return np.random.default_rng(seed).integers(0, 256, (n, *shape), dtype=np.uint8)


# ---- CIFAR-10 ------------------------------------------------------------------


def _cifar_rows(images):  # N x 32 x 32 x 3 -> N x 3072 (R plane, G plane, B plane)
    return images.transpose(0, 3, 1, 2).reshape(len(images), 3072)


def _cifar_python_batch(images, labels, protocol=2) -> bytes:
    # what the real files hold: a dict with bytes keys (Python 2's str), uint8 data
    d = {
        b"batch_label": b"training batch 1 of 5",
        b"labels": [int(v) for v in labels],
        b"data": _cifar_rows(images),
        b"filenames": [b"x.png"] * len(labels),
    }
    return pickle.dumps(d, protocol=protocol)


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_cifar_pickles_of_any_protocol(protocol):
    x = _images(3, (32, 32, 3), 0)
    got, labels = D.read_cifar_pickle(_cifar_python_batch(x, [1, 2, 3], protocol), "b")
    np.testing.assert_array_equal(got, x)
    assert labels.tolist() == [1, 2, 3]


def _write_cifar(root, fmt, per_batch=4):
    """Six batches in `fmt` ("py" or "bin") under root; returns the expected arrays."""
    folder = root / ("cifar-10-batches-py" if fmt == "py" else "cifar-10-batches-bin")
    folder.mkdir(parents=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    xs, ys = [], []
    for i, name in enumerate(names):
        x = _images(per_batch, (32, 32, 3), i)
        y = (np.arange(per_batch) + i) % 10
        xs.append(x)
        ys.append(y)
        if fmt == "py":
            (folder / name).write_bytes(_cifar_python_batch(x, y))
        else:
            rec = np.concatenate([y[:, None].astype(np.uint8), _cifar_rows(x)], axis=1)
            (folder / f"{name}.bin").write_bytes(rec.tobytes())
    return folder, np.concatenate(xs[:5]), np.concatenate(ys[:5]), xs[5], ys[5]


@pytest.mark.parametrize("fmt", ["py", "bin"])
def test_cifar10_reads_both_real_formats(tmp_path, fmt):
    _, x, y, xt, yt = _write_cifar(tmp_path, fmt)
    d = D.load("cifar10", str(tmp_path))
    assert d.x_train.shape == (20, 32, 32, 3) and d.x_train.dtype == np.uint8
    np.testing.assert_array_equal(d.x_train, x)
    np.testing.assert_array_equal(d.y_train, y)
    np.testing.assert_array_equal(d.x_test, xt)
    np.testing.assert_array_equal(d.y_test, yt)
    assert d.classes[0] == "airplane" and len(d.classes) == 10


def test_cifar10_reads_the_archive_without_extracting(tmp_path):
    folder, x, _, _, _ = _write_cifar(tmp_path / "src", "py")
    with tarfile.open(tmp_path / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(folder, arcname="cifar-10-batches-py")
    d = D.load("cifar10", str(tmp_path))
    np.testing.assert_array_equal(d.x_train, x)
    assert d.source.endswith("cifar-10-python.tar.gz")
    assert not (tmp_path / "cifar-10-batches-py").exists()


def test_cifar10_is_found_in_the_keras_cache(tmp_path, monkeypatch):
    _write_cifar(tmp_path / "datasets", "py")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    assert D.load("cifar10").source == str(tmp_path / "datasets" / "cifar-10-batches-py")


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_the_cifar_unpickler_refuses_anything_but_arrays(tmp_path):
    blob = pickle.dumps({b"data": _Evil(), b"labels": [0]}, protocol=2)
    with pytest.raises(D.DataError, match="refusing to load"):
        D.read_cifar_pickle(blob, "data_batch_1")
    blob = pickle.dumps(
        {b"data": np.zeros((1, 3072), np.uint8), b"labels": [0], b"x": io.BytesIO()}, protocol=2
    )
    with pytest.raises(D.DataError, match="refusing to load"):
        D.read_cifar_pickle(blob, "data_batch_1")


def test_cifar_errors_are_the_users(tmp_path):
    with pytest.raises(D.DataError, match="not a whole number of 3073-byte records"):
        D.read_cifar_binary(b"\0" * 3000, "data_batch_1.bin")
    blob = pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]})
    with pytest.raises(D.DataError, match="N x 3072"):
        D.read_cifar_pickle(blob, "test_batch")
    with pytest.raises(D.DataError, match="labels must be 0..9"):
        D.read_cifar_binary(bytes([12]) + bytes(3072), "test_batch.bin")


def test_a_missing_data_set_says_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    with pytest.raises(D.DataError) as e:
        D.load("cifar10", str(tmp_path / "mine"))
    msg = str(e.value)
    assert "cifar-10-batches-py" in msg and str(tmp_path / "mine") in msg
    assert str(tmp_path / "keras" / "datasets") in msg and "--data-dir" in msg


# ---- MNIST / Fashion-MNIST --------------------------------------------------------


def _idx(array: np.ndarray) -> bytes:
    return (
        b"\0\0\x08"
        + bytes([array.ndim])
        + struct.pack(f">{array.ndim}I", *array.shape)
        + array.astype(np.uint8).tobytes()
    )


def _write_idx_set(folder, n=6, gz=True):
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte": _images(n, (28, 28), 1),
        "train-labels-idx1-ubyte": np.arange(n) % 10,
        "t10k-images-idx3-ubyte": _images(n // 2, (28, 28), 2),
        "t10k-labels-idx1-ubyte": (np.arange(n // 2) + 3) % 10,
    }
    for name, a in arrays.items():
        blob = _idx(a)
        (folder / (name + (".gz" if gz else ""))).write_bytes(gzip.compress(blob) if gz else blob)
    return arrays


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_reads_idx_files(tmp_path, gz):
    arrays = _write_idx_set(tmp_path, gz=gz)
    d = D.load("mnist", str(tmp_path))
    assert d.x_train.shape == (6, 28, 28, 1) and d.x_test.shape == (3, 28, 28, 1)
    np.testing.assert_array_equal(d.x_train[..., 0], arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(d.y_test, arrays["t10k-labels-idx1-ubyte"])


def test_fashion_mnist_is_found_in_its_keras_cache_folder(tmp_path, monkeypatch):
    _write_idx_set(tmp_path / "datasets" / "fashion-mnist")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    d = D.load("fashion_mnist")
    assert d.classes[-1] == "ankle boot" and d.x_train.shape == (6, 28, 28, 1)


def test_mnist_reads_keras_npz(tmp_path):
    x = _images(4, (28, 28), 3)
    np.savez(
        tmp_path / "mnist.npz", x_train=x, y_train=np.arange(4), x_test=x[:2], y_test=np.arange(2)
    )
    d = D.load("mnist", str(tmp_path))
    np.testing.assert_array_equal(d.x_train[..., 0], x)


def test_idx_errors_are_the_users():
    with pytest.raises(D.DataError, match="bad magic"):
        D.read_idx(b"\x01\x02\x08\x01", "f")
    with pytest.raises(D.DataError, match="not unsigned bytes"):
        D.read_idx(b"\0\0\x0d\x01\0\0\0\x01abcd", "f")
    with pytest.raises(D.DataError, match="the file has 3"):
        D.read_idx(_idx(np.zeros((2, 2)))[:-1], "f")
    with pytest.raises(D.DataError, match="broken gzip"):
        D.read_idx(b"\x1f\x8b\x08\0garbage", "f")


# ---- built-in sets ------------------------------------------------------------------


def test_digits_is_scikit_learns_split_per_class():
    d = D.load("digits")
    assert d.shape == (8, 8, 1) and len(d.x_train) + len(d.x_test) == 1797
    assert 0.0 <= d.x_train.min() and d.x_train.max() == 1.0
    assert set(np.bincount(d.y_test)) <= {35, 36, 37}  # 20% of each class


@pytest.mark.parametrize(
    "name, shape, classes",
    [("shapes", (28, 28, 1), 5), ("colors", (28, 28, 3), 6), ("shapes_colors", (28, 28, 3), 9)],
)
def test_rendered_sets_are_the_textbooks_and_deterministic(name, shape, classes):
    a = D.load(name, seed=3)
    assert a.shape == shape and len(a.classes) == classes
    assert len(a.x_train) == 600 * classes and len(a.x_test) == 100 * classes  # 600:100
    np.testing.assert_array_equal(np.bincount(a.y_train), [600] * classes)
    make = {
        "shapes": D.make_shapes,
        "colors": D.make_colors,
        "shapes_colors": D.make_shapes_colors,
    }[name]
    b, c = make(3, 20, 5), make(3, 20, 5)
    np.testing.assert_array_equal(b.x_train, c.x_train)
    np.testing.assert_array_equal(b.y_test, c.y_test)
    assert not np.array_equal(b.x_train, make(4, 20, 5).x_train)
    assert a.x_train.max() > 150 and (a.x_train > 0).mean() < 0.6  # a shape on black


def test_rendered_shapes_differ_by_class():
    # the mean image of each class is distinct: lines cover little, rectangles much
    d = D.make_shapes(per_class_train=50, per_class_test=1)
    cover = [(d.x_train[d.y_train == c] > 127).mean() for c in range(5)]
    assert cover[D.SHAPES.index("line")] < min(cover[1:]) / 3
    colors = D.make_colors(per_class_train=20, per_class_test=1)
    red = colors.x_train[colors.y_train == list(D.COLORS).index("red")].astype(float)
    assert red[..., 0].sum() > 4 * red[..., 1].sum()


def test_synthetic_takes_the_specs_shape():
    d = D.load("synthetic", shape=(5, 7, 2), classes=3)
    assert d.shape == (5, 7, 2) and d.y_train.max() <= 2 and len(d.classes) == 3


# ---- fitting data to a spec --------------------------------------------------------------


def test_a_data_set_that_does_not_fit_says_how():
    d = D.make_synthetic((28, 28, 1), 10, n_train=4, n_test=2)
    with pytest.raises(
        D.DataError,
        match=r"28x28x1 \(H x W x C\) but the spec's input is "
        r"32x32x3: pass --resize",
    ):
        D.fit_to_spec(d, (32, 32, 3), 10)
    with pytest.raises(D.DataError, match=r"ends in 5 outputs but synthetic has 10 classes"):
        D.fit_to_spec(d, (28, 28, 1), 5)
    with pytest.raises(D.DataError, match="vector of 100"):
        D.fit_to_spec(d, (100,), 10)


def test_resize_and_channels_and_flatten():
    d = D.make_synthetic((28, 28, 1), 10, n_train=4, n_test=2)
    r = D.fit_to_spec(d, (32, 32, 3), 10, resize=True)
    assert r.x_train.shape == (4, 32, 32, 3) and r.x_train.dtype == np.float32
    np.testing.assert_array_equal(r.x_train[..., 0], r.x_train[..., 2])
    assert any("resized 28x28 to 32x32" in n for n in r.notes)
    flat = D.fit_to_spec(d, (784,), 10)
    np.testing.assert_array_equal(flat.x_train[1], d.x_train[1].reshape(-1))


def test_bilinear_resize_matches_tensorflow():
    tf = pytest.importorskip("tensorflow")
    x = np.random.default_rng(0).random((2, 8, 8, 1)).astype(np.float32)
    for size in ((28, 28), (5, 11)):
        ours = D.resize_bilinear(x, *size)
        theirs = tf.image.resize(x, size, method="bilinear", antialias=False).numpy()
        np.testing.assert_allclose(ours, theirs, atol=1e-6)


def test_grey_from_colour_is_luma():
    x = np.array([[[[1.0, 0.0, 0.0]]]], np.float32)
    assert D.convert_channels(x, 1)[0, 0, 0, 0] == pytest.approx(0.299)


# ---- batches ---------------------------------------------------------------------


def test_an_epoch_depends_only_on_seed_and_epoch_and_resumes_mid_way():
    x = np.arange(10 * 4 * 4 * 1, dtype=np.uint8).reshape(10, 4, 4, 1)
    y = np.arange(10)
    whole = list(D.Epoch(x, y, 3, seed=1, epoch=2, augment=True).batches())
    again = list(D.Epoch(x, y, 3, seed=1, epoch=2, augment=True).batches())
    later = list(D.Epoch(x, y, 3, seed=1, epoch=2, start_step=2, augment=True).batches())
    assert [b[0] for b in whole] == [0, 1, 2, 3] and [len(b[2]) for b in whole] == [3, 3, 3, 1]
    for a, b in zip(whole, again):
        np.testing.assert_array_equal(a[1], b[1])
    for a, b in zip(whole[2:], later):
        assert a[0] == b[0]
        np.testing.assert_array_equal(a[1], b[1])
    other = list(D.Epoch(x, y, 3, seed=1, epoch=3).batches())
    assert not all(np.array_equal(a[2], b[2]) for a, b in zip(whole, other))
    assert sorted(np.concatenate([b[2] for b in whole])) == list(range(10))


def test_shards_split_each_global_batch():
    x = np.zeros((10, 2, 2, 1), np.uint8)
    y = np.arange(10)
    full = list(D.Epoch(x, y, 4, seed=0, epoch=0).batches())
    parts = [list(D.Epoch(x, y, 4, seed=0, epoch=0, shard=(r, 2)).batches()) for r in (0, 1)]
    for step, batch in enumerate(full):
        joined = np.concatenate([parts[0][step][2], parts[1][step][2]])
        np.testing.assert_array_equal(joined, batch[2])
        assert parts[0][step][3] == parts[1][step][3] == len(batch[2])  # the global size
    idx = [list(D.Epoch(x, y, 4, seed=0, epoch=0, shard=(r, 2)).indices()) for r in (0, 1)]
    np.testing.assert_array_equal(y[idx[1][0][1]], parts[1][0][2])


def test_augmentation_is_pad_crop_and_flip():
    x = np.arange(2 * 6 * 6 * 1, dtype=np.float32).reshape(2, 6, 6, 1) + 1
    seen_flip = seen_shift = False
    for seed in range(20):
        out = D.augment(x, np.random.default_rng(seed), pad=2)
        assert out.shape == x.shape
        for i in range(2):
            img = out[i, ..., 0]
            nz = img[img > 0]
            assert set(nz.tolist()) <= set(x[i, ..., 0].ravel().tolist())  # pixels or zeros
            seen_flip |= bool(np.any(np.diff(img[3][img[3] > 0]) < 0))
            seen_shift |= bool((img == 0).any())
    assert seen_flip and seen_shift


# ---- the package: one module per concern, one public API, no NumPy until needed ----------

MODULES = ("names", "dataset", "readers", "rendered", "transforms", "batching")


def test_the_package_api_is_every_public_name_of_its_modules():
    """`archc.data.X` is the object its module defines, and a public name added to a
    module is part of the API (or the facade would drift from the modules)."""
    import importlib
    import inspect

    defined = {}
    for name in MODULES:
        module = importlib.import_module(f"archc.data.{name}")
        assert (module.__doc__ or "").strip(), f"archc/data/{name}.py states no concern"
        for attr, value in vars(module).items():
            own = getattr(value, "__module__", module.__name__) == module.__name__
            if (
                not attr.startswith("_")
                and own
                and not inspect.ismodule(value)
                and attr not in ("annotations", "TYPE_CHECKING")
            ):
                defined[attr] = value
    assert sorted(D.__all__) == sorted(defined)
    for attr, value in defined.items():
        assert getattr(D, attr) is value, attr
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        D.nothing  # noqa: B018


def test_names_and_the_error_load_no_numpy():
    """The command line lists the sets and catches DataError on archc's own dependencies:
    as where NumPy is not installed, importing it fails, and these must still work."""
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['numpy'] = None\n"
        "import archc.data as D\n"
        "from archc.data.names import NAMES, NEEDS\n"
        "from archc.data import DataError, Dataset\n"
        "assert D.NAMES == NAMES and 'digits' in NEEDS and issubclass(DataError, Exception)\n"
        "try:\n"
        "    D.load('nope')\n"
        "except ImportError:\n"
        "    print('numpy needed')\n"
    )
    env = {**os.environ, "PYTHONPATH": os.path.dirname(os.path.dirname(__file__))}
    r = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        timeout=120,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout == "numpy needed\n"  # loading a set is where NumPy comes in
