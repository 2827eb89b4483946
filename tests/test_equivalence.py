"""Cross-backend equivalence: weights move between the Keras and PyTorch builds
of a spec by node name, and the two compute the same function.

Every spec passes in float64 in both directions. ImageNet-sized specs run on a
smaller input where their shapes still work (the function is the same
architecture; only the sizes of the maps and of the first Dense change), to keep
CI time sane. TRAPS gathers the semantics that converters get wrong.
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys

import numpy as np
import pytest

from archc import equiv
from archc.diagnostics import SpecError
from archc.pipeline import compile_spec
from backends import transfer
from backends.runtime import build_keras, build_torch, load_source
from tests.helpers import SPECS, compile_str
from tests.test_specs import ALL_SPECS

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("keras") is None or importlib.util.find_spec("torch") is None,
    reason="needs keras and torch")

TRAPS = """
model traps
input 15*15*3
C(8*4*4, s2, same) A(leaky_relu, 0.25)
P(avg, 3, 2, same)
C(8*3*3, s1, same) A(prelu)
P(max, 2, 2, same) B A(elu, 0.5) LRN(3, alpha: 0.01)
concat { C(4*1*1) | P(avg, 3, 1, same) | ZeroPad(0, 1, 1, 0) C(2*2*2, valid) }
add { C(14*1*1, s1, same, nobias) B(eps: 0.00001, momentum: 0.9) | identity }
P(max, 3, 1, p1) C(6*3*3, s1, p1)
Flatten Dense(7, tanh) Dense(5) A(softmax)
"""


def reduced(spec: str):
    """The spec, on a smaller input where its shapes still work."""
    path = SPECS / spec
    text = path.read_text(encoding="utf-8")
    m = re.search(r"^(input|输入:)\s*(\d+)\*(\d+)\*(\d+)", text, flags=re.M)
    if m and int(m.group(2)) > 64:
        for size in (64, 96, 128, 160):
            small = text[:m.start()] + f"{m.group(1)} {size}*{size}*{m.group(4)}" + text[m.end():]
            try:
                return compile_spec(str(path), small)
            except SpecError:
                continue
    return compile_spec(str(path))


@pytest.mark.parametrize("direction", ["keras2torch", "torch2keras"])
@pytest.mark.parametrize("spec", ALL_SPECS)
def test_every_spec_float64(spec, direction):
    ir = reduced(spec)
    result = equiv.check(ir, dtype="float64", direction=direction)
    assert result.ok, equiv.report(ir, result)


@pytest.mark.parametrize("direction", ["keras2torch", "torch2keras"])
def test_the_traps(direction):
    ir = compile_str(TRAPS, name="traps.cnn")
    result = equiv.check(ir, dtype="float64", direction=direction, batch=3, nodes=True)
    assert result.ok and result.first_divergence is None, equiv.report(ir, result)
    assert len(result.nodes) >= 15  # the per-node comparison is not empty


MAPPINGS = {
    "conv kernel HWIO <-> OIHW, non-square": "input 7*9*2\nC(3*2*3, s1, valid) C(2*3*1, s2, same)",
    "dense (in, out) <-> (out, in)": "input 10\nDense(4) Dense(3, tanh)",
    "first Dense after Flatten of a conv stack": "input 3*4*5\nC(6*1*1) Flatten Dense(3)",
    "batch norm gamma, beta, moving statistics, epsilon, momentum":
        "input 4*4*3\nB(eps: 0.01, momentum: 0.8) Flatten B",
    "PReLU, one slope per channel, shared over H and W": "input 4*4*3\nA(prelu) Flatten A(prelu)",
    "LRN": "input 4*4*7\nLRN(5) LRN(3, alpha: 0.5, beta: 0.5, bias_k: 1)",
    "layers without bias": "input 5*5*2\nC(3*3*3, nobias) Flatten Dense(3, bias: no)",
}


@pytest.mark.parametrize("direction", ["keras2torch", "torch2keras"])
@pytest.mark.parametrize("mapping", list(MAPPINGS))
def test_each_mapping(mapping, direction):
    ir = compile_str("model mapping\n" + MAPPINGS[mapping], name="mapping.cnn")
    result = equiv.check(ir, dtype="float64", direction=direction, nodes=True)
    assert result.ok and result.first_divergence is None, equiv.report(ir, result)


@pytest.mark.parametrize("spec", ["resnet18.cnn", "course_inception10.cnn", "mnist_fc.cnn"])
def test_float32(spec):
    ir = compile_spec(str(SPECS / spec))
    result = equiv.check(ir, dtype="float32", direction="torch2keras")
    assert result.ok, equiv.report(ir, result)


# ---- the check can fail --------------------------------------------------------


def _models(ir, torch_source_edit=None):
    kmodel = build_keras(ir, "float64")
    if torch_source_edit is None:
        tmodel = build_torch(ir, "float64")
    else:
        from backends.pytorch.generator import generate, model_class_name

        source = torch_source_edit(generate(ir))
        module = load_source(source, f"edited_{ir.name}")
        tmodel = getattr(module, model_class_name(ir))().double()
    return kmodel, tmodel


def test_wrong_flatten_order_is_caught():
    ir = compile_str(TRAPS, name="traps.cnn")
    models = _models(ir, lambda src: src.replace(".permute(0, 2, 3, 1)", ""))
    result = equiv.check(ir, models=models, nodes=True)
    assert not result.ok
    assert result.first_divergence.name == "flatten"  # the elements come out in another order


def test_wrong_batch_norm_epsilon_is_caught():
    ir = compile_str(TRAPS, name="traps.cnn")
    kmodel, tmodel = _models(ir)
    tmodel.b1.eps = 1e-5  # torch's default; the spec (Keras) says 1e-3
    result = equiv.check(ir, models=(kmodel, tmodel), nodes=True)
    assert not result.ok and result.first_divergence.name == "b1"


def test_symmetric_padding_is_caught():
    ir = compile_str(TRAPS, name="traps.cnn")
    kmodel, tmodel = _models(ir)
    assert tmodel.c1_pad.padding == (1, 2, 1, 2)  # Keras: the odd zero bottom/right
    tmodel.c1_pad.padding = (2, 1, 2, 1)
    result = equiv.check(ir, models=(kmodel, tmodel), nodes=True)
    assert not result.ok and result.first_divergence.name == "c1"


# ---- weights -----------------------------------------------------------------------


def test_round_trip_keras_torch_keras_is_exact():
    ir = compile_str(TRAPS, name="traps.cnn")
    k1, t = build_keras(ir), build_torch(ir)
    w1 = equiv.randomize(ir, transfer.keras_weights(ir, k1), seed=3)
    transfer.set_keras_weights(ir, k1, w1)
    transfer.keras_to_torch(ir, k1, t)
    k2 = build_keras(ir)
    transfer.torch_to_keras(ir, t, k2)
    w2 = transfer.keras_weights(ir, k2)
    assert w1.keys() == w2.keys()
    for key in w1:
        assert np.array_equal(w1[key], w2[key]), key


def test_weight_file_moves_between_backends(tmp_path):
    ir = compile_spec(str(SPECS / "course_baseline.cnn"))
    kmodel, tmodel = build_keras(ir), build_torch(ir).eval()
    path = tmp_path / "weights.npz"
    transfer.save_weights(str(path), transfer.keras_weights(ir, kmodel))
    transfer.set_torch_weights(ir, tmodel, transfer.load_weights(str(path)))
    x = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype("float32")
    import torch

    with torch.no_grad():
        out = tmodel(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).numpy()
    np.testing.assert_allclose(out, np.asarray(kmodel(x, training=False)), atol=1e-5)


def test_weight_files_are_never_unpickled(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, **{"c1/kernel": np.array([object()], dtype=object)})
    with pytest.raises(ValueError, match="allow_pickle"):
        transfer.load_weights(str(path))


def test_missing_extra_and_misshaped_weights_name_the_node():
    ir = compile_spec(str(SPECS / "course_baseline.cnn"))
    tmodel = build_torch(ir)
    weights = transfer.torch_weights(ir, tmodel)
    with pytest.raises(transfer.TransferError, match="no weights for `b1/beta`"):
        transfer.set_torch_weights(ir, tmodel, {k: v for k, v in weights.items()
                                                if k != "b1/beta"})
    with pytest.raises(transfer.TransferError, match="unexpected weights `zz/kernel`"):
        transfer.set_torch_weights(ir, tmodel, {**weights, "zz/kernel": weights["c1/kernel"]})
    with pytest.raises(transfer.TransferError, match="`c1/kernel`"):
        transfer.set_torch_weights(ir, tmodel, {**weights, "c1/kernel": weights["c1/kernel"].T})


# ---- batch norm in training mode -----------------------------------------------------


def test_batch_norm_training_step_matches():
    """One forward pass in training mode on both builds: the same output, and the
    same updated moving statistics once Keras's biased batch variance is set
    against torch's unbiased one: torch's running_var moves by (1 - m) * var * n/(n-1)
    where Keras's moves by (1 - m) * var, n = batch x H x W."""
    import torch

    ir = compile_str("model bn\ninput 6*6*3\nC(4*3*3, s1, same) B(momentum: 0.9) A(relu)\n"
                     "GAP Dense(2)\n", name="bn.cnn")
    kmodel, tmodel = build_keras(ir, "float64"), build_torch(ir, "float64")
    transfer.keras_to_torch(ir, kmodel, tmodel)
    x = np.random.default_rng(0).normal(size=(4, 6, 6, 3))
    tmodel.train()
    out_t = tmodel(torch.from_numpy(x.transpose(0, 3, 1, 2).copy())).detach().numpy()
    out_k = np.asarray(kmodel(x, training=True))
    np.testing.assert_allclose(out_t, out_k, atol=1e-12)
    layer = kmodel.get_layer("b1")
    mean_k = np.asarray(layer.moving_mean)
    var_k = np.asarray(layer.moving_variance)
    np.testing.assert_allclose(tmodel.b1.running_mean.numpy(), mean_k, atol=1e-12)
    n = 4 * 6 * 6
    m = 0.9
    batch_var_k = (var_k - m * 1.0) / (1 - m)  # moving variance started at 1
    expected_t = m * 1.0 + (1 - m) * batch_var_k * n / (n - 1)
    np.testing.assert_allclose(tmodel.b1.running_var.numpy(), expected_t, atol=1e-12)


def test_equiv_command():
    r = subprocess.run([sys.executable, "-m", "archc", "equiv", str(SPECS / "mnist_fc.cnn"),
                        "--direction", "torch2keras", "--nodes"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "mnist_fc: torch2keras, float64" in r.stdout and ": ok" in r.stdout
    assert "no node diverges" in r.stdout
