"""`archc build` iterates the backend descriptors of backends/registry.py: what it writes,
where, and what it prints are the registry's, so a backend added there (and only there) is
generated, checked and offered by `--backend`."""

from __future__ import annotations

import os
import sys
import types

import pytest

from archc import extras
from archc.cli import main
from backends import registry
from backends.common import HEADER_MARK
from tests.helpers import SPECS
from tests.test_specs import ALL_SPECS

ROOT = SPECS.parent
SPEC = str(SPECS / "mnist_fc.cnn")


def _build(capsys, *args) -> tuple[int, str, str]:
    rc = main(["build", *args])
    out, err = capsys.readouterr()
    return rc, out, err


def test_build_prints_each_file_and_what_to_call(tmp_path, capsys):
    rc, out, err = _build(capsys, SPEC, "-o", str(tmp_path))
    assert rc == 0, err
    assert out == (
        f"wrote {tmp_path / 'keras' / 'mnist_fc.py'}  (build_mnist_fc())\n"
        f"wrote {tmp_path / 'torch' / 'mnist_fc.py'}  (MnistFc())\n"
    )
    rc, out, err = _build(capsys, SPEC, "--backend", "torch", "-o", str(tmp_path / "one"))
    assert (rc, out) == (0, f"wrote {tmp_path / 'one' / 'mnist_fc.py'}  (MnistFc())\n"), err
    rc, out, err = _build(capsys, SPEC, "-o", str(tmp_path), "--check")
    assert (rc, out, err) == (0, "up to date: 2 generated files\n", "")


def test_build_all_check_is_up_to_date(capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    rc, out, err = _build(capsys, "--all", "--check")
    assert (rc, err) == (0, "")
    assert out == f"up to date: {len(registry.SOURCES) * len(ALL_SPECS)} generated files\n"


def test_check_all_into_a_folder_finds_files_no_spec_generates(tmp_path, capsys, monkeypatch):
    """With -o DIR and both backends, the files are in DIR/<folder>/, and that is where
    --check looks for orphans too."""
    specs = tmp_path / "specs"
    specs.mkdir()
    (specs / "mnist_fc.cnn").write_text((SPECS / "mnist_fc.cnn").read_text())
    monkeypatch.chdir(tmp_path)
    out_dir = tmp_path / "out"
    assert _build(capsys, "--all", "-o", str(out_dir))[0] == 0
    assert _build(capsys, "--all", "-o", str(out_dir), "--check")[:2] == (
        0,
        "up to date: 2 generated files\n",
    )
    orphan = out_dir / "torch" / "gone.py"
    orphan.write_text("# an old model\n")
    rc, _, err = _build(capsys, "--all", "-o", str(out_dir), "--check")
    assert rc == 1
    assert err.splitlines()[0] == f"stale: {orphan} (no spec generates it)"


def _echo_backend(monkeypatch):
    """A third backend, declared only in the registry: its generator writes the model's
    name and input shape."""
    gen = types.ModuleType("echo_generator")
    gen.generate = lambda model: (
        f"{HEADER_MARK}\nNAME = {model.name!r}\nSHAPE = {tuple(model.input_shape)!r}\n"
    )
    monkeypatch.setitem(sys.modules, "echo_generator", gen)
    echo = registry.Backend(
        "echo",
        "echo_generator",
        "echoes",
        ".py",
        lambda generator, model: f"NAME  # {generator.__name__}",
    )
    monkeypatch.setattr(registry, "BACKENDS", (*registry.BACKENDS, echo))
    return echo


def test_a_backend_declared_in_the_registry_is_built_and_checked(tmp_path, capsys, monkeypatch):
    _echo_backend(monkeypatch)
    rc, out, err = _build(capsys, SPEC, "-o", str(tmp_path))
    assert rc == 0, err
    target = tmp_path / "echoes" / "mnist_fc.py"
    assert out.splitlines()[-1] == f"wrote {target}  (NAME  # echo_generator)"
    assert target.read_text() == f"{HEADER_MARK}\nNAME = 'mnist_fc'\nSHAPE = (28, 28, 1)\n"
    assert sorted(os.listdir(tmp_path)) == ["echoes", "keras", "torch"]

    rc, out, err = _build(capsys, SPEC, "--backend", "echo", "-o", str(tmp_path / "alone"))
    assert rc == 0 and os.listdir(tmp_path / "alone") == ["mnist_fc.py"], err
    rc, out, _ = _build(capsys, SPEC, "-o", str(tmp_path), "--check")
    assert (rc, out) == (0, "up to date: 3 generated files\n")
    target.write_text(target.read_text() + "# edited\n")
    rc, _, err = _build(capsys, SPEC, "-o", str(tmp_path), "--check")
    assert rc == 1 and f"stale: {target}\n" in err


def test_the_registry_names_the_backends_the_rest_of_archc_uses():
    import backends

    assert backends.NAMES == tuple(b.name for b in registry.BACKENDS) == ("keras", "torch", "onnx")
    # `--backend all` (and `archc build --all`) builds the committed source backends only
    assert backends.SOURCES == ("keras", "torch")
    assert [b.name for b in registry.selected("all")] == ["keras", "torch"]
    assert [b.name for b in registry.selected("onnx")] == ["onnx"]
    for backend in registry.BACKENDS:
        assert backends.get(backend.name) is backend.module().GENERATOR
        assert callable(backend.module().generate)


@pytest.mark.parametrize("backend", registry.BACKENDS, ids=lambda b: b.name)
def test_each_backend_writes_where_its_descriptor_says(backend, tmp_path):
    from tests.helpers import compile_str

    if extras.missing(backend.needs):
        pytest.skip(f"needs {', '.join(backend.needs)}")
    model = compile_str((SPECS / "mnist_fc.cnn").read_text(), "mnist_fc.cnn")
    data = backend.generate(model)
    path = backend.write(str(tmp_path), model, data)
    assert path == backend.target(str(tmp_path), model)
    with open(path, "rb") as f:
        assert f.read() == data
    assert path.endswith(backend.suffix) and isinstance(data, bytes)
