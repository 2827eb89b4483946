"""The Keras and PyTorch generators: complete, deterministic, safe, exact.

Every spec's generated module is imported and its model built; counts and the
output shape of every node must equal the IR's; one forward (and for torch,
backward) pass runs on a small batch.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import os
import pathlib
import subprocess
import sys

import pytest

from archc.ir.kinds import KINDS
from archc.pipeline import compile_spec
from backends import NAMES, get
from backends.common import BackendError, write_module
from tests.generated_models import GENERATED, keras_model, torch_model
from tests.helpers import SPECS, compile_str
from tests.test_specs import ALL_SPECS

ROOT = SPECS.parent
HAS_KERAS = importlib.util.find_spec("keras") is not None
HAS_TORCH = importlib.util.find_spec("torch") is not None


def _archc(*args, cwd=ROOT, env=None):
    return subprocess.run(
        [sys.executable, "-m", "archc", *args], capture_output=True, text=True, cwd=cwd, env=env
    )


# ---- completeness ----------------------------------------------------------


@pytest.mark.parametrize("backend", NAMES)
def test_every_ir_kind_has_an_emitter(backend):
    assert get(backend).missing_kinds == set()
    assert set(get(backend).LOWER) == set(KINDS)


@pytest.mark.parametrize("backend", NAMES)
def test_a_kind_without_emitter_is_a_clear_error(backend, monkeypatch):
    module = get(backend)
    monkeypatch.delitem(module.LOWER, "lrn")
    model = compile_str("input 8*8*3\nC(4*3*3)\nLRN\n", name="lrn_net.cnn")
    with pytest.raises(
        BackendError,
        match=r"cannot express `lrn1` of kind `lrn` "
        r"\(.*lrn_net.cnn:3\)",
    ):
        module.generate(model)


def test_generated_is_up_to_date():
    r = _archc("build", "--all", "--check")
    assert r.returncode == 0, r.stderr
    files = sorted(GENERATED.glob("*/*.py"))
    assert len(files) == 2 * len(ALL_SPECS)


def test_check_finds_a_stale_file(tmp_path):
    for backend in NAMES:
        r = _archc(
            "build",
            str(SPECS / "mnist_fc.cnn"),
            "--backend",
            backend,
            "-o",
            str(tmp_path / backend),
        )
        assert r.returncode == 0, r.stderr
    assert (
        _archc("build", str(SPECS / "mnist_fc.cnn"), "-o", str(tmp_path), "--check").returncode == 0
    )
    target = tmp_path / "keras" / "mnist_fc.py"
    target.write_text(target.read_text() + "# edited\n")
    r = _archc("build", str(SPECS / "mnist_fc.cnn"), "-o", str(tmp_path), "--check")
    assert r.returncode == 1 and "stale" in r.stderr


# ---- determinism -------------------------------------------------------------


def _digests(folder: pathlib.Path) -> dict[str, str]:
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.glob("**/*.py"))
    }


def test_byte_identical_whatever_hash_seed_and_directory(tmp_path):
    specs = [
        str(SPECS / s)
        for s in (
            "densenet121.cnn",
            "course_inception10.cnn",
            "book_googlenet.cnn",
            "resnet18_torchvision.cnn",
        )
    ]
    (tmp_path / "elsewhere").mkdir()
    a = _archc(
        "build", *specs, "-o", str(tmp_path / "a"), env={**os.environ, "PYTHONHASHSEED": "1"}
    )
    b = _archc(
        "build",
        *[os.path.relpath(s, tmp_path / "elsewhere") for s in specs],
        "-o",
        str(tmp_path / "b"),
        cwd=tmp_path / "elsewhere",
        env={**os.environ, "PYTHONHASHSEED": "4242"},
    )
    assert a.returncode == b.returncode == 0, a.stderr + b.stderr
    da, db = _digests(tmp_path / "a"), _digests(tmp_path / "b")
    assert da == db and len(da) == 8
    for p in (tmp_path / "a").glob("**/*.py"):
        text = p.read_text()
        assert str(tmp_path) not in text and str(ROOT) not in text


# ---- safety ------------------------------------------------------------------

FRAMEWORK_NAMES = {"keras", "layers", "ops", "torch", "nn", "F"}
PY_NAMES = {
    "super",
    "float",
    "range",
    "tuple",
    "min",
    "max",
    "self",
    "x",
    "name",
    "model",
    "epoch",
    "lr",
    "progress",
    "cosine",
    "optimizer",
    "scheduler",
    "schedule",
    "inputs",
    "config",
    "kwargs",
    "padded",
    "total",
    "ones",
    "squared",
    "channels",
    "half",
    "side",
    "pads",
    "top",
    "bottom",
    "left",
    "right",
    "i",
    "in_channels",
}
ALLOWED_STRINGS = {
    "same",
    "valid",
    "input",
    "accuracy",
    "max",
    "val_loss",
    "val_accuracy",
    "min",
    "archc",
    "abs",
    "he_normal",
    "glorot_uniform",
    "glorot_normal",
    "he_uniform",
    "lecun_normal",
    "lecun_uniform",
    "zeros",
    "ones",
    "orthogonal",
    "-inf",
} | {
    "relu",
    "relu6",
    "sigmoid",
    "hard_sigmoid",
    "tanh",
    "softmax",
    "linear",
    "elu",
    "selu",
    "gelu",
    "silu",
    "softplus",
}


def _generated_files():
    return sorted(GENERATED.glob("*/*.py"))


@pytest.mark.parametrize("path", _generated_files(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_generated_code_uses_only_framework_names(path):
    """Every name is the framework's, Python's own, or defined in the module from
    validated identifiers; every string is closed vocabulary or a node name."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    defined = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
            defined.add(node.name)
        elif isinstance(node, ast.arg):
            defined.add(node.arg)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            defined.add(node.id)
    ident = r"[A-Za-z_][A-Za-z0-9_]*"
    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
            assert all(m.split(".")[0] in ("keras", "torch") for m in mods), mods
        elif isinstance(node, ast.Name):
            assert node.id in FRAMEWORK_NAMES | PY_NAMES | defined, node.id
            assert node.id not in ("eval", "exec", "__import__", "open", "getattr", "compile")
        elif isinstance(node, ast.Attribute):
            assert not node.attr.startswith("__") or node.attr == "__init__", node.attr
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            value = node.value
            if _is_docstring(tree, node):
                continue
            import re

            assert value in ALLOWED_STRINGS or re.fullmatch(rf"\.?{ident}(\.{ident})*", value), (
                value
            )


def _is_docstring(tree, const) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and first.value is const:
                return True
    return False


def test_write_module_refuses_unsafe_targets(tmp_path):
    out = tmp_path / "out"
    write_module(str(out), "net", "# Generated by archc\n")
    assert (out / "net.py").read_text() == "# Generated by archc\n"
    assert [p.name for p in out.iterdir()] == ["net.py"]  # no temporary file left
    for bad in ("../evil", "a/b", "x.py", "", "1net", "net;rm"):
        with pytest.raises(BackendError):
            write_module(str(out), bad, "# Generated by archc\n")
    (out / "mine.py").write_text("print('my own code')\n")
    with pytest.raises(BackendError, match="not written by archc"):
        write_module(str(out), "mine", "# Generated by archc\n")
    assert (out / "mine.py").read_text() == "print('my own code')\n"
    victim = tmp_path / "victim.txt"
    victim.write_text("keep")
    (out / "link.py").symlink_to(victim)
    with pytest.raises(BackendError, match="symlink"):
        write_module(str(out), "link", "# Generated by archc\n")
    assert victim.read_text() == "keep"


def test_build_refuses_to_overwrite_a_foreign_file(tmp_path):
    (tmp_path / "mnist_fc.py").write_text("# my file\n")
    r = _archc("build", str(SPECS / "mnist_fc.cnn"), "--backend", "keras", "-o", str(tmp_path))
    assert r.returncode == 1 and "not written by archc" in r.stderr
    assert (tmp_path / "mnist_fc.py").read_text() == "# my file\n"


def test_clashing_definitions_are_refused():
    """Refused where the block is declared (E211), before any backend runs; the
    generators keep their own check as a backstop."""
    from backends.common import check_unique
    from tests.helpers import errors

    (d,) = errors(
        "model vgg\nblock BuildVgg() { C(1*1*1) }\ninput 4*4*1\nBuildVgg()\n", name="clash.cnn"
    )
    assert (d.code, d.span.line, d.span.col) == ("E211", 2, 7) and "build_vgg" in d.hint
    (d,) = errors("model vgg\nblock Vgg() { C(1*1*1) }\ninput 4*4*1\nVgg()\n", name="clash.cnn")
    assert (d.code, d.span.line, d.span.col) == ("E211", 2, 7) and "`Vgg`" in d.hint
    with pytest.raises(BackendError, match="`Vgg`"):
        check_unique(["Vgg", "Vgg"], "classes")


def test_generated_code_is_formatted():
    ruff = importlib.util.find_spec("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed")
    r = subprocess.run(
        [sys.executable, "-m", "ruff", "format", "--check", "generated"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert r.returncode == 0, r.stdout + r.stderr


def test_readme_main_job_builds(tmp_path):
    r = _archc("build", str(SPECS / "vgg16.cnn"), "--backend", "keras", "-o", str(tmp_path))
    assert r.returncode == 0, r.stderr
    assert "wrote" in r.stdout and "build_vgg16()" in r.stdout


# ---- the generated models, built -------------------------------------------


def _chw(shape):
    return (shape[2], shape[0], shape[1]) if len(shape) == 3 else tuple(shape)


@pytest.mark.keras
@pytest.mark.skipif(not HAS_KERAS, reason="keras is not installed")
@pytest.mark.parametrize("spec", ALL_SPECS)
def test_keras_model_matches_the_ir(spec):
    import numpy as np

    ir = compile_spec(str(SPECS / spec))
    _, model = keras_model(ir)
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    nontrainable = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
    assert (model.count_params(), trainable, nontrainable) == (
        ir.params,
        ir.trainable,
        ir.nontrainable,
    )
    by_name = {layer.name: layer for layer in model.layers}
    for node in ir.nodes:
        assert tuple(by_name[node.name].output.shape[1:]) == node.out_shape, node.name
    extra = set(by_name) - {n.name for n in ir.nodes}
    assert all(e.endswith(".pad") for e in extra), extra
    y = model(np.random.default_rng(0).normal(size=(2, *ir.input_shape)).astype("float32"))
    assert tuple(y.shape) == (2, *ir.output_shape)
    assert np.isfinite(np.asarray(y)).all()


@pytest.mark.keras
@pytest.mark.skipif(not HAS_KERAS, reason="keras is not installed")
@pytest.mark.parametrize(
    "spec", ["alexnet_original.cnn", "resnet18_torchvision.cnn", "course_inception10.cnn"]
)
def test_keras_model_saves_and_loads_in_safe_mode(spec, tmp_path):
    """No Lambda layers: custom layers (LRN, -inf padding) are registered classes."""
    import keras
    import numpy as np

    ir = compile_spec(str(SPECS / spec))
    _, model = keras_model(ir)
    path = tmp_path / "model.keras"
    model.save(path)
    again = keras.models.load_model(path, safe_mode=True)
    x = np.random.default_rng(1).normal(size=(1, *ir.input_shape)).astype("float32")
    np.testing.assert_allclose(np.asarray(model(x)), np.asarray(again(x)), rtol=1e-6, atol=1e-6)


@pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed")
@pytest.mark.parametrize("spec", ALL_SPECS)
def test_torch_model_matches_the_ir(spec):
    import torch

    ir = compile_spec(str(SPECS / spec))
    _, model = torch_model(ir)
    params = sum(p.numel() for p in model.parameters())
    # the non-trainable state the model saves: batch norm's running statistics and
    # Normalization's mean, variance and count (not given ones: those are constants,
    # not saved), less PyTorch's own batch counter, which Keras does not have
    trainable = {n for n, _ in model.named_parameters()}
    stats = sum(
        t.numel()
        for n, t in model.state_dict().items()
        if n not in trainable and not n.endswith("num_batches_tracked")
    )
    assert (params, stats) == (ir.trainable, ir.nontrainable)
    assert model.input_shape == _chw(ir.input_shape)
    seen = {}
    modules = dict(model.named_modules())
    for name, module in modules.items():
        if name:
            module.register_forward_hook(
                lambda m, i, o, name=name: seen.__setitem__(name, tuple(o.shape[1:]))
            )
    x = torch.randn(2, *model.input_shape)
    y = model(x)
    assert tuple(y.shape) == (2, *_chw(ir.output_shape))
    y.float().sum().backward()
    for node in ir.nodes:
        if node.name not in seen:
            continue
        want = _chw(node.out_shape)
        if node.kind == "globalpool":
            want = (want[0], 1, 1)  # the module's output before torch.flatten
        assert seen[node.name] == want, node.name
    block_paths = {b.path for b in ir.blocks}
    module_names = {n for n in modules if n}
    # merges are torch.cat, + and * in forward(), not modules
    merges = ("input", "concat", "add", "mul")
    missing = {n.name for n in ir.nodes if n.kind not in merges} - module_names
    assert not missing, missing
    assert block_paths <= module_names


@pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed")
@pytest.mark.parametrize("spec", ALL_SPECS)
def test_torch_export(spec):
    """torch.export traces the generated module without graph breaks."""
    import torch

    ir = compile_spec(str(SPECS / spec))
    _, model = torch_model(ir)
    model.eval()
    x = torch.randn(1, *model.input_shape)
    exported = torch.export.export(model, (x,))
    torch.testing.assert_close(exported.module()(x), model(x))


# ---- training recipes ----------------------------------------------------------


@pytest.mark.skipif(not (HAS_TORCH and HAS_KERAS), reason="needs torch and keras")
@pytest.mark.parametrize(
    "spec, expected",
    [
        # the book's LeNet-5 code: epoch <= 2 -> 5e-4, <= 5 -> 2e-4, <= 9 -> 5e-5, then 1e-5
        ("book_lenet5.cnn", [5e-4] * 3 + [2e-4] * 3 + [5e-5] * 4 + [1e-5] * 3),
        # GoogLeNet: 0.01 * 0.96 ** floor((1 + epoch) / 8)
        ("book_googlenet.cnn", [0.01 * 0.96 ** ((1 + e) // 8) for e in range(20)]),
    ],
)
def test_both_backends_follow_the_same_learning_rates(spec, expected):
    import torch

    ir = compile_spec(str(SPECS / spec))
    kmod, kmodel = keras_model(ir)
    tmod, tmodel = torch_model(ir)
    keras_rates = [getattr(kmod, f"learning_rate_{ir.name}")(e) for e in range(len(expected))]
    optimizer, scheduler = tmod.make_optimizer(tmodel)
    torch_rates = []
    for _ in expected:
        torch_rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert keras_rates == pytest.approx(expected, rel=1e-12)
    assert torch_rates == pytest.approx(expected, rel=1e-12)
    assert isinstance(optimizer, torch.optim.SGD)
    callbacks = kmod.__dict__[f"compile_{ir.name}"](kmodel)
    assert kmodel.optimizer.__class__.__name__ == "SGD"
    assert type(callbacks[0]).__name__ == "LearningRateScheduler"


@pytest.mark.skipif(not (HAS_TORCH and HAS_KERAS), reason="needs torch and keras")
def test_node_names_never_take_a_block_parameter(tmp_path):
    """`block Foo(c1)`: its first convolution (node `c1`) is held in `c1_`, not in a
    local `c1` that would overwrite the parameter in Foo's Keras function."""
    import numpy as np
    import torch

    from backends.runtime import load_source

    ir = compile_str(
        "input 8*8*1\nblock Foo(c1) { concat { C(c1*1*1) | C(c1*1*1) } }\nFoo(2) Foo(3)\n",
        name="param_local.cnn",
    )
    assert [n.name for n in ir.nodes][1:4] == ["foo1.c1", "foo1.c2", "foo1.cat1"]
    assert "    c1_ = layers.Conv2D(c1, 1" in get("keras").generate(ir)
    kmodel = load_source(get("keras").generate(ir), "archc_param_local_k").build_param_local()
    assert kmodel(np.zeros((1, 8, 8, 1), "float32")).shape == (1, 8, 8, 6)
    tmodel = load_source(get("torch").generate(ir), "archc_param_local_t").ParamLocal()
    assert tmodel(torch.zeros(1, 1, 8, 8)).shape == (1, 6, 8, 8)
