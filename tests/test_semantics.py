"""The PyTorch build computes the same function as the Keras build, in float64:
weights are copied Keras -> PyTorch by node name and the outputs compared with
max|diff| <= 1e-9 * max(1, max|ref|). The specs chosen cover the traps: stride-2
`same` convolutions on even inputs (uneven padding), `same` max and average
pooling with uneven padding, explicit (PyTorch) padding, LRN, leaky ReLU, PReLU,
ELU, batch norm with non-trivial statistics, concat, add, Flatten into Dense.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from archc.pipeline import compile_spec
from backends import get
from backends.transfer import keras_to_torch
from tests.generated_models import load_module
from tests.helpers import SPECS, compile_str

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("keras") is None or importlib.util.find_spec("torch") is None,
    reason="needs keras and torch")

TRAPS = """
model traps
input 15*15*3
C(8*4*4, s2, same) A(leaky_relu, 0.1)
P(avg, 3, 2, same)
C(8*3*3, s1, same) A(prelu)
P(max, 2, 2, same) B A(elu, 0.7) LRN(3, alpha: 0.01)
concat { C(4*1*1) | P(avg, 3, 1, same) | ZeroPad(0, 1, 1, 0) C(2*2*2, valid) }
add { C(14*1*1, s1, same, nobias) B(eps: 0.00001, momentum: 0.9) | identity }
P(max, 3, 2, p1) C(6*3*3, s2, p1)
Flatten Dense(7, tanh) Dense(5) A(softmax)
"""


def _build_pair(ir, tmp_path):
    import keras
    import torch

    # set_floatx alone leaves layers in float32, and the policy alone leaves the
    # Input in float32: set both, and check the kernels below.
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")
    try:
        paths = {}
        for backend in ("keras", "torch"):
            path = tmp_path / f"{backend}_{ir.name}.py"
            path.write_text(get(backend).generate(ir))
            paths[backend] = path
        kmod = load_module(paths["keras"], f"sem_keras_{ir.name}")
        kmodel = getattr(kmod, f"build_{ir.name}")()
        tmod = load_module(paths["torch"], f"sem_torch_{ir.name}")
        from backends.pytorch.generator import model_class_name

        tmodel = getattr(tmod, model_class_name(ir))().double().eval()
    finally:
        keras.config.set_dtype_policy("float32")
        keras.config.set_floatx("float32")
    rng = np.random.default_rng(7)
    for layer in kmodel.layers:  # non-trivial batch-norm statistics and PReLU slopes
        if type(layer).__name__ == "BatchNormalization":
            g, b, m, v = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 1.5, g.shape), rng.normal(0, 0.1, b.shape),
                               rng.normal(0, 0.1, m.shape), rng.uniform(0.5, 2.0, v.shape)])
        if type(layer).__name__ == "PReLU":
            layer.set_weights([rng.uniform(0.05, 0.3, w.shape) for w in layer.get_weights()])
    assert all(str(w.dtype) == "float64" for w in kmodel.weights)
    assert all(p.dtype == torch.float64 for p in tmodel.parameters())
    keras_to_torch(ir, kmodel, tmodel)
    return kmodel, tmodel


def _compare(ir, kmodel, tmodel, batch=2):
    import torch

    x = np.random.default_rng(3).normal(size=(batch, *ir.input_shape))
    ref = np.asarray(kmodel(x, training=False))
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy() if x.ndim == 4 else x)
    with torch.no_grad():
        out = tmodel(xt).numpy()
    return np.abs(out - ref).max(), max(1.0, np.abs(ref).max())


@pytest.mark.parametrize("spec", ["course_baseline.cnn", "resnet18.cnn", "course_inception10.cnn",
                                  "googlenet.cnn", "densenet121.cnn", "resnet50_torchvision.cnn",
                                  "textbook_shape.cnn", "textbook_cifar10.cnn", "mnist_fc.cnn"])
def test_same_function_float64(spec, tmp_path):
    ir = compile_spec(str(SPECS / spec))
    kmodel, tmodel = _build_pair(ir, tmp_path)
    diff, scale = _compare(ir, kmodel, tmodel)
    assert diff <= 1e-9 * scale, (diff, scale)


def test_same_function_on_the_traps(tmp_path):
    ir = compile_str(TRAPS, name="traps.cnn")
    kmodel, tmodel = _build_pair(ir, tmp_path)
    diff, scale = _compare(ir, kmodel, tmodel, batch=3)
    assert diff <= 1e-9 * scale, (diff, scale)


def test_the_check_catches_a_wrong_semantics(tmp_path):
    """Not a check that cannot fail: symmetric padding where Keras pads unevenly,
    or torch's default epsilon, changes the output far beyond the tolerance."""
    ir = compile_str(TRAPS, name="traps.cnn")
    kmodel, tmodel = _build_pair(ir, tmp_path)
    tmodel.b1.eps = 1e-5  # the spec (Keras) says 1e-3
    diff, scale = _compare(ir, kmodel, tmodel)
    assert diff > 1e-6 * scale
    kmodel, tmodel = _build_pair(ir, tmp_path)
    tmodel.c1_pad.padding = (1, 1, 1, 1)  # Keras puts the odd zero at the bottom/right
    try:
        diff, scale = _compare(ir, kmodel, tmodel)
    except RuntimeError:  # the shapes no longer fit at all
        return
    assert diff > 1e-6 * scale
