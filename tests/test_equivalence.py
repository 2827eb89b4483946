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
from pathlib import Path

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
    reason="needs keras and torch",
)

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
    m = re.search(r"^(input|输入:)\s*(\d+)\*(\d+)\*(\d+)", text, flags=re.MULTILINE)
    if m and int(m.group(2)) > 64:
        # the usual sizes first; then any size from 32 up (the original U-Net, with
        # valid convolutions and fixed crops, builds only at 16k + 188)
        for size in (64, 96, 128, 160, *range(32, 257)):
            small = text[: m.start()] + f"{m.group(1)} {size}*{size}*{m.group(4)}" + text[m.end() :]
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
    "batch norm gamma, beta, moving statistics, epsilon, momentum": "input 4*4*3\nB(eps: 0.01, momentum: 0.8) Flatten B",
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
        transfer.set_torch_weights(ir, tmodel, {k: v for k, v in weights.items() if k != "b1/beta"})
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

    ir = compile_str(
        "model bn\ninput 6*6*3\nC(4*3*3, s1, same) B(momentum: 0.9) A(relu)\nGAP Dense(2)\n",
        name="bn.cnn",
    )
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
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "archc",
            "equiv",
            str(SPECS / "mnist_fc.cnn"),
            "--direction",
            "torch2keras",
            "--nodes",
        ],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0, r.stderr
    assert "mnist_fc: torch2keras, float64" in r.stdout and ": ok" in r.stdout
    assert "no node diverges" in r.stdout


# ---- a comparison must be able to fail (issue 12, items 5 to 7) -----------------------

REPROS = Path(__file__).parent / "repros"


def _repro(name):
    return compile_spec(str(REPROS / name))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("direction", ["keras2torch", "torch2keras"])
def test_an_output_the_input_never_reaches_fails(dtype, direction):
    """equiv_vacuous.cnn: the convolution sees only zero padding. With every bias
    random the output is a constant, the same for every input: no evidence."""
    ir = _repro("equiv_vacuous.cnn")
    result = equiv.check(ir, dtype=dtype, direction=direction, nodes=True)
    assert not result.ok
    assert result.failures == ["the output is the same for every input of the batch"]
    text = equiv.report(ir, result)
    assert text.splitlines()[-1] == (
        "equiv_vacuous: FAILED: the output is the same for every input of the batch"
    )
    assert [n.name for n in result.nodes if n.degenerate] == ["c1", "flatten"]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_an_all_zero_output_fails(dtype):
    ir = compile_str(
        "model zeros\ninput 2*2*1\nZeroPad(1)\nC(3*1*1, s3, nobias)\nFlatten\n", name="zeros.cnn"
    )
    result = equiv.check(ir, dtype=dtype)
    assert result.scale == 0.0 and not result.ok
    assert result.failures == ["the output is all zero"]
    assert "relative undefined (the reference is all zero)" in equiv.report(ir, result)


def test_an_output_the_same_for_every_unit_fails(monkeypatch):
    """Two Dense units with one input and tied weights: the comparison could not see a
    permutation of the outputs."""
    ir = compile_str(
        "model tied\ninput 3\nDense(1, bias: no)\nDense(2, bias: no)\n", name="tied.cnn"
    )
    kmodel, tmodel = _models(ir)
    layer = kmodel.get_layer("f2")
    original = equiv.randomize

    def tie(ir_, weights, seed, kernels="glorot"):  # every unit of f2 gets the same weight
        w = original(ir_, weights, seed, kernels)
        w["f2/kernel"] = np.full_like(w["f2/kernel"], 0.7)
        return w

    monkeypatch.setattr(equiv, "randomize", tie)
    result = equiv.check(ir, models=(kmodel, tmodel))
    assert layer.get_weights()[0].tolist() == [[0.7, 0.7]]
    assert result.failures == ["the output is the same value for every output"]


def test_degenerate_and_non_finite_comparisons():
    zeros = np.zeros((2, 3))
    varying = np.array([[0.0, 1.0, 2.0], [1.0, 0.0, 3.0]])
    assert equiv._problems(zeros, zeros, 0.0, True) == (None, "is all zero")
    assert equiv._problems(np.ones((2, 3)), np.ones((2, 3)), 1e-9, True) == (
        None,
        "is the same for every input of the batch",
    )
    # varying by no more than the allowed difference is the same as not varying
    assert (
        equiv._problems(1 + 1e-10 * varying, varying, 1e-9, True)[1]
        == "is the same for every input of the batch"
    )
    assert equiv._problems(varying, varying, 1e-9, True) == (None, None)
    assert equiv._problems(varying, np.where(varying > 2, np.nan, varying), 1e-9, True) == (
        "has NaN or infinite values in PyTorch",
        None,
    )
    assert equiv._problems(np.where(varying > 2, np.inf, varying), varying, 1e-9, True) == (
        "has NaN or infinite values in Keras",
        None,
    )


def test_a_non_finite_node_is_named():
    ir = compile_str("model nan\ninput 6\nDense(4)\nDense(3)\n", name="nan.cnn")
    hook = (
        "self.f1 = nn.Linear(6, 4)\n        self.f1.register_forward_hook("
        "lambda module, args, out: out * float('nan'))"
    )
    models = _models(ir, lambda src: src.replace("self.f1 = nn.Linear(6, 4)", hook))
    result = equiv.check(ir, models=models, nodes=True)
    assert not result.ok and result.first_divergence.name == "f1"
    assert "node `f1` has NaN or infinite values in PyTorch" in result.failures


@pytest.mark.parametrize("direction", ["keras2torch", "torch2keras"])
def test_biases_are_tested_in_both_directions(direction):
    """A PyTorch build that drops a Dense bias is caught whichever build gets the
    random weights (Keras initialises biases to zero: keras2torch never saw this)."""
    ir = compile_str("model bias\ninput 6\nDense(4, relu)\nDense(3)\n", name="bias.cnn")
    models = _models(
        ir,
        lambda src: src.replace("self.f2(x)", "F.linear(x, self.f2.weight)").replace(
            "from torch import nn", "import torch.nn.functional as F\nfrom torch import nn"
        ),
    )
    result = equiv.check(ir, models=models, direction=direction)
    assert not result.ok and result.failures[0].startswith("the outputs differ by")


def test_every_parameter_and_statistic_is_randomised():
    ir = compile_str(TRAPS, name="traps.cnn")
    kmodel, tmodel = build_keras(ir, "float64"), build_torch(ir, "float64")
    initial = transfer.keras_weights(ir, kmodel)
    w = equiv.randomize(ir, initial, seed=5)
    assert w.keys() == initial.keys()
    roles = set()
    for key, value in w.items():
        roles.add(key.rsplit("/", 1)[1])
        assert value.dtype == initial[key].dtype, key
        assert len(np.unique(value)) == value.size, key  # no constant left, no repeats
        assert not np.array_equal(value, initial[key]), key
        if key.endswith("/moving_variance"):
            assert (value > 0).all()
    assert roles == {"kernel", "bias", "gamma", "beta", "moving_mean", "moving_variance", "alpha"}
    # seeded, and the same values whichever framework they start from
    again = equiv.randomize(ir, transfer.torch_weights(ir, tmodel), seed=5)
    assert all(np.array_equal(w[k], again[k]) for k in w)
    other = equiv.randomize(ir, initial, seed=6)
    assert not any(np.array_equal(w[k], other[k]) for k in w)


def test_a_diverging_node_fails_the_check():
    """The output passes (a softmax over pooled features hides a 1e-8 slope error),
    the node does not: one verdict, a failure naming the node."""
    ir = compile_str(
        "model hidden\ninput 8*8*3\nC(8*3*3, s1, same)\nLeakyReLU\nGAP Dense(10, softmax)\n",
        name="hidden.cnn",
    )
    models = _models(
        ir, lambda src: src.replace("negative_slope=0.30000001192092896", "negative_slope=0.3")
    )
    result = equiv.check(ir, models=models, nodes=True)
    assert result.diff <= result.allowed  # the output alone would pass
    assert not result.ok and result.first_divergence.name == "a1"
    text = equiv.report(ir, result)
    assert "first node to diverge: a1" in text
    assert text.splitlines()[-1].startswith("hidden: FAILED: node `a1` differs by")


def test_a_diverging_node_exits_non_zero():
    r = subprocess.run(
        [sys.executable, "-m", "archc", "equiv", str(REPROS / "equiv_vacuous.cnn"), "--nodes"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 1, r.stdout + r.stderr
    assert r.stdout.splitlines()[-1].startswith("equiv_vacuous: FAILED:")


@pytest.mark.parametrize(
    "args, message",
    [
        (["--batch", "0"], "argument --batch: must be between 2 and 4096, got 0"),
        (["--batch", "-3"], "argument --batch: must be between 2 and 4096, got -3"),
        (["--batch", "1"], "argument --batch: must be between 2 and 4096, got 1"),
        (["--batch", "two"], "argument --batch: expected a whole number, got two"),
        (["--seed", "-1"], "argument --seed: must be between 0 and 4294967295, got -1"),
        (["--seed", "1.5"], "argument --seed: expected a whole number, got 1.5"),
        (["--dtype", "float16"], "argument --dtype: invalid choice: 'float16'"),
        (["--direction", "both"], "argument --direction: invalid choice: 'both'"),
    ],
)
def test_equiv_arguments_are_validated(args, message):
    r = subprocess.run(
        [sys.executable, "-m", "archc", "equiv", str(SPECS / "mnist_fc.cnn"), *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 2
    assert message in r.stderr and "Traceback" not in r.stderr
    assert r.stdout == ""


def test_check_refuses_a_batch_of_one():
    with pytest.raises(ValueError, match="at least 2 inputs"):
        equiv.check(compile_spec(str(SPECS / "mnist_fc.cnn")), batch=1)


# ---- float64: what each framework computes (issue 12, item 9) ---------------------------


@pytest.mark.parametrize("direction", ["keras2torch", "torch2keras"])
def test_leaky_relu_default_slope_is_exact(direction):
    ir = _repro("leaky_default_head.cnn")
    result = equiv.check(ir, direction=direction, nodes=True)
    assert result.ok and result.diff <= 1e-15 * result.scale, equiv.report(ir, result)


def test_keras_applies_the_leaky_relu_slope_as_float32():
    """The premise of the PyTorch build's slope (0.3 -> 0.30000001192092896): Keras
    3.15 on TensorFlow, float64 model, x = -1. A Keras that changes this fails here."""
    import keras
    import torch

    from backends.runtime import keras_dtype

    with keras_dtype("float64"):
        for slope in (0.3, 0.1, 0.01, 0.25):
            y = float(
                np.asarray(keras.layers.LeakyReLU(negative_slope=slope)(np.array([[-1.0]])))[0, 0]
            )
            assert y == -float(np.float32(slope))
    torch_source = compile_and_generate_torch(_repro("leaky_default_head.cnn"))
    assert "nn.LeakyReLU(negative_slope=0.30000001192092896)" in torch_source
    assert torch.nn.LeakyReLU(0.30000001192092896)(
        torch.tensor([-1.0], dtype=torch.float64)
    ).item() == -float(np.float32(0.3))


def compile_and_generate_torch(ir):
    from backends.pytorch.generator import generate

    return generate(ir)


def test_keras_gelu_uses_a_float32_constant():
    """The cause of KNOWN_INEXACT["gelu"]: TensorFlow's float64 GELU is
    0.5 x erfc(-x c) with c = 1/sqrt(2) rounded to float32; erfc itself is exact."""
    import math

    import keras

    x = np.linspace(-6, 6, 20001)
    keras_gelu = np.asarray(keras.activations.gelu(x))
    c32 = float(np.float32(1 / math.sqrt(2)))
    emulated = np.array([0.5 * v * math.erfc(-v * c32) for v in x])
    exact = np.array([0.5 * v * math.erfc(-v / math.sqrt(2)) for v in x])
    assert np.abs(keras_gelu - emulated).max() <= 1e-15
    worst = np.abs(keras_gelu - exact).max()
    assert 4.9e-9 < worst <= equiv.KNOWN_INEXACT["gelu"].bound


@pytest.mark.parametrize("direction", ["keras2torch", "torch2keras"])
def test_gelu_is_reported_as_known_inexactness(direction):
    ir = _repro("gelu_head.cnn")
    result = equiv.check(ir, direction=direction, nodes=True)
    assert result.ok, equiv.report(ir, result)
    (known,) = result.known
    assert known.fn == "gelu" and known.nodes == ["a1"]
    assert 1e-9 < known.measured <= known.inexact.bound  # measured, and beyond 1e-9
    assert result.diff <= result.allowed and result.tolerance == 1e-9  # not loosened
    text = equiv.report(ir, result)
    assert (
        "known float64 inexactness: gelu at a1\n  cause: Keras (TensorFlow) computes "
        "GELU with 1/sqrt(2) rounded to float32\n" in text
    )
    assert (
        f"on this model's inputs: {known.measured:.3g} relative, within the known "
        "bound 5.1e-09" in text
    )
    assert text.splitlines()[-1] == "gelu_head: ok"


def test_gelu_beyond_its_known_bound_fails(monkeypatch):
    ir = compile_str(
        "model fused_gelu\ninput 6*6*3\nC(4*3*3, s1, same, gelu)\nGAP Dense(3)\n",
        name="fused_gelu.cnn",
    )
    tight = equiv.Inexact(equiv.KNOWN_INEXACT["gelu"].cause, 1e-12, "for this test")
    monkeypatch.setitem(equiv.KNOWN_INEXACT, "gelu", tight)
    result = equiv.check(ir)
    assert result.diff <= result.allowed  # the output compares exactly ...
    assert not result.ok  # ... but PyTorch's GELU is beyond the stated bound
    assert result.failures[0].startswith("gelu at c1 differs by")


ACTIVATION_CASES = [
    "relu",
    "relu6",
    "sigmoid",
    "hard_sigmoid",
    "tanh",
    "linear",
    "elu",
    "elu, 0.1",
    "elu, 0.3",
    "selu",
    "gelu",
    "gelu_tanh",
    "silu",
    "softplus",
    "hard_swish",
    "mish",
    "softmax",
    "leaky_relu",
    "leaky_relu, 0.1",
    "leaky_relu, 0.01",
    "prelu",
]


@pytest.mark.parametrize("direction", ["keras2torch", "torch2keras"])
@pytest.mark.parametrize("fn", ACTIVATION_CASES)
def test_every_activation_float64(fn, direction):
    """Every activation archc supports, as a node and (where it can be) fused."""
    from archc.ir.kinds import ACTIVATIONS, FUSABLE

    assert {c.split(",")[0] for c in ACTIVATION_CASES} == set(ACTIVATIONS)
    fused = f"C(6*3*3, s1, same, {fn})\n" if fn in FUSABLE else ""
    ir = compile_str(
        f"model act\ninput 6*6*3\nC(6*3*3, s1, same)\nA({fn})\n{fused}Flatten Dense(4)\n",
        name="act.cnn",
    )
    result = equiv.check(ir, direction=direction, nodes=True, batch=3)
    assert result.ok, equiv.report(ir, result)
    assert result.diff <= 1e-13 * max(1.0, result.scale), equiv.report(ir, result)


# ---- softmax heads and logits in the PyTorch build (issue 12, item 13) ------------------


@pytest.mark.parametrize(
    "spec",
    [
        "mnist_fc.cnn",  # softmax fused into the last Dense
        "textbook_cifar10.cnn",
    ],
)  # a softmax node, A(softmax)
def test_logits_switch_gives_the_scores_before_the_softmax(spec):
    import torch

    from backends.pytorch import train

    ir = compile_spec(str(SPECS / spec))
    model = build_torch(ir, "float64").eval()
    assert "nn.CrossEntropyLoss applies" in type(model).__doc__
    transfer.set_torch_weights(
        ir, model, equiv.randomize(ir, transfer.torch_weights(ir, model), seed=2)
    )
    x = torch.from_numpy(np.random.default_rng(3).normal(size=(8, *model.input_shape)))
    y = torch.from_numpy(np.random.default_rng(4).integers(0, ir.output_shape[-1], 8))
    with torch.no_grad():
        probabilities = model(x)
        model.logits = True
        scores = model(x)
    assert not torch.allclose(scores, probabilities)
    assert torch.equal(torch.softmax(scores, dim=1), probabilities)  # bit for bit
    logits_model = type(model)(logits=True).double()
    logits_model.load_state_dict(model.state_dict())  # the same state_dict keys
    assert torch.equal(logits_model.eval()(x), scores)
    for smoothing in (0.0, 0.1):
        idiom = torch.nn.CrossEntropyLoss(label_smoothing=smoothing)(scores, y)
        runner = train.crossentropy(probabilities, y, True, smoothing).mean()
        assert abs(idiom.item() - runner.item()) <= 1e-6 * idiom.item()


def test_no_logits_switch_without_a_softmax_head():
    import inspect

    ir = compile_str("model plain\ninput 6\nDense(4, relu)\nDense(3)\n", name="plain.cnn")
    cls = type(build_torch(ir))
    assert "logits" not in inspect.signature(cls).parameters
    assert "softmax" not in cls.__doc__


def test_a_node_named_logits_is_refused_beside_the_switch():
    from backends.common import BackendError
    from backends.pytorch.generator import generate

    ir = compile_str(
        "model lg\ninput 8*8*3\n{ C(4*3*3, s1, same) B } as logits\nGAP Dense(2, softmax)\n",
        name="lg.cnn",
    )
    with pytest.raises(BackendError, match="`logits` switch"):
        generate(ir)
