"""The memory estimate (archc/memory.py) against what PyTorch keeps.

Activations kept for the backward pass: the generated PyTorch model of a spec runs
one training-mode forward pass on the CPU under torch.autograd.graph.saved_tensors_hooks;
every tensor autograd saves is recorded once per storage (a view counts as the memory
it views), parameters and buffers left out. The estimate must equal that byte for
byte: the bound is 0, because each kind's `kept` rule names exactly the tensors
PyTorch's derivative formulas save for the code archc generates, and the estimate
dedupes shared tensors as autograd's storage sharing does. (The one rule known to
differ by device is dropout's mask: 1 byte per element from CUDA's fused kernel,
which the rule states, a float mask on the CPU; no spec here has an active dropout.)

Parameters, gradients and optimizer state: exact against a real torch.optim step.
"""

from __future__ import annotations

import pytest

from archc import memory
from archc.pipeline import compile_spec
from tests.helpers import HAS_TORCH, SPECS, compile_str

needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="needs torch")

# A spec that exercises most kinds' rules: uneven `same` padding (a padded copy),
# fused activations that keep their output or their input, separable, layer and
# group norm, LRN, PReLU, a squeeze-and-excitation product, pooling, bilinear
# upsampling and resizing, a transposed convolution, views (crop, split), shuffle,
# drop path, a flatten that copies (channels-last order); every kind but dropout.
ZOO = """model zoo
input 16*16*3
Rescaling(1/255)
Normalization(mean: [0.5, 0.4, 0.3], variance: [0.25, 0.2, 0.3])
Normalization
C(8*3*3, s2, same, silu)
DW(3*3, s1, same, relu6)
SC(8*3*3, s1, same, sigmoid)
LN
GN(2)
LRN(5, alpha: 0.0001, beta: 0.75, bias_k: 2)
A(prelu)
A(leaky_relu)
mul {
    identity
  | GAP(keepdims) C(2*1*1, s1, same, relu) C(8*1*1, s1, same, sigmoid)
}
Scale(init: 0.1)
mul { identity | GMP Reshape(1, 1, 8) C(8*1*1, s1, same, hard_sigmoid) }
P(avg, 3, 1, same)
P(max, 2, 2)
Up(2, bilinear)
Resize(6, 6, nearest)
Resize(8, 8, bilinear)
CT(4*3*3, s2, same, tanh)
Crop(1)
ZeroPad(1)
concat { Split(2, 0) C(2*3*3, s1, same) | Split(2, 1) A(gelu) }
Shuffle(2)
add { identity | C(4*1*1, s1, same) B }
DP(0.1)
Flatten
Dense(12, elu)
Dense(10, softmax)
"""

CASES = {
    "course_lenet5": (lambda: compile_spec(str(SPECS / "course_lenet5.cnn")), 3),
    "resnet18": (lambda: compile_spec(str(SPECS / "resnet18.cnn")), 2),
    "course_inception10": (lambda: compile_spec(str(SPECS / "course_inception10.cnn")), 4),
    "mobilenet_v2_64": (
        lambda: compile_spec(str(SPECS / "mobilenet_v2.cnn"), input_shape=(64, 64, 3)),
        2,
    ),
    "zoo": (lambda: compile_str(ZOO), 3),
}


def saved_bytes(model_ir, batch: int) -> int:
    """Bytes of the distinct tensors autograd saves in one training-mode forward
    pass of the generated PyTorch model (parameters and buffers left out)."""
    import torch

    from backends.runtime import build_torch

    torch.manual_seed(0)
    net = build_torch(model_ir).train()
    own = {t.untyped_storage().data_ptr() for t in (*net.parameters(), *net.buffers())}
    saved: dict[int, int] = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in own:
            saved[storage.data_ptr()] = storage.nbytes()
        return t

    shape = model_ir.input_shape
    x = torch.randn(batch, *((shape[2], shape[0], shape[1]) if len(shape) == 3 else shape))
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        net(x)
    return sum(saved.values())


@needs_torch
@pytest.mark.parametrize("case", sorted(CASES))
def test_activations_kept_equal_what_autograd_saves(case):
    make, batch = CASES[case]
    model = make()
    measured = saved_bytes(model, batch)
    estimate = memory.estimate(model, batch, "float32", "adam").activations
    assert estimate == measured, (case, estimate, measured, (estimate - measured) / measured)


@needs_torch
@pytest.mark.parametrize("optimizer", ["sgd", "sgd_momentum", "adam", "adamw", "rmsprop"], ids=str)
def test_parameters_gradients_and_optimizer_state_equal_torch_optim(optimizer):
    import torch

    from backends.runtime import build_torch

    model = compile_spec(str(SPECS / "course_inception10.cnn"))
    net = build_torch(model).train()
    make = {
        "sgd": lambda p: torch.optim.SGD(p, lr=0.1),
        "sgd_momentum": lambda p: torch.optim.SGD(p, lr=0.1, momentum=0.9),
        "adam": lambda p: torch.optim.Adam(p, lr=1e-3),
        "adamw": lambda p: torch.optim.AdamW(p, lr=1e-3),
        "rmsprop": lambda p: torch.optim.RMSprop(p, lr=1e-3),
    }[optimizer]
    opt = make(net.parameters())
    net(torch.randn(2, 3, 32, 32)).sum().backward()
    opt.step()
    est = memory.estimate(model, 2, "float32", optimizer)
    # PyTorch's batch norm also counts its batches (an int64 Keras does not have)
    stats = [b for n, b in net.named_buffers() if not n.endswith("num_batches_tracked")]
    assert est.parameters == sum(t.nbytes for t in (*net.parameters(), *stats))
    assert est.gradients == sum(p.grad.nbytes for p in net.parameters())
    state = sum(
        t.nbytes for s in opt.state.values() for t in s.values() if isinstance(t, torch.Tensor)
    )
    assert est.optimizer_state == state
    assert est.training == est.parameters + est.gradients + est.optimizer_state + est.activations


def test_mixed_precision_halves_activations_not_indices():
    """LeNet-5 at batch 2 keeps 114,544 bytes in float32 (measured above), of which
    the max-pooling indices (int64) are 2 x (6*14*14 + 16*5*5) x 8 = 25,216."""
    model = compile_spec(str(SPECS / "course_lenet5.cnn"))
    f32 = memory.estimate(model, 2, "float32", "sgd")
    bf16 = memory.estimate(model, 2, "bfloat16", "sgd")
    assert f32.activations == 114_544
    assert bf16.activations == (114_544 - 25_216) // 2 + 25_216
    assert bf16.parameters == f32.parameters == 4 * model.params  # float32 master weights
    assert bf16.low_precision_weights == 2 * model.trainable and f32.low_precision_weights == 0
    assert bf16.gradients == f32.gradients == 4 * model.trainable


def test_inference_peak_of_a_chain():
    # input 16, c1 64, p1 16, flatten 16 (a copy: channels-last order), f1 10 values:
    # the peak is while c1 runs (input and c1) or p1 runs (c1 and p1): 80 values
    model = compile_str("input 4*4*1\nC(4*3*3, s1, same)\nP(max, 2, 2)\nFlatten\nDense(10)")
    assert memory.estimate(model, 3, "float32", "sgd").inference_peak == 3 * 4 * 80
    assert memory.estimate(model, 3, "float16", "sgd").inference_peak == 3 * 2 * 80


def test_inference_peak_keeps_a_branch_input_alive_until_its_last_reader():
    # c1 (64 values) is read by both branches: alive until the second has run;
    # then a (32) + b (32) + c1 (64) = 128; then the concat (64) with a and b.
    model = compile_str(
        "input 4*4*1\nC(4*3*3, s1, same)\nconcat { C(2*1*1, s1, same) | C(2*1*1, s1, same) }"
    )
    assert memory.estimate(model, 1, "float32", "sgd").inference_peak == 4 * 128


def test_views_share_their_input_memory():
    # the crop is a slice of c1: a conv keeping it keeps c1's memory, counted once
    model = compile_str("input 6*6*1\nC(4*3*3, s1, same, relu)\nCrop(1)\nC(2*3*3, s1, same)")
    est = memory.estimate(model, 1, "float32", "sgd")
    # the input (36) kept by c1; c1's output (144) kept by its relu and, through the
    # crop, by c2: 180 values
    assert est.activations == 4 * (36 + 144)


@needs_torch
def test_dropout_keeps_a_byte_mask_on_cuda_and_a_float_mask_on_the_cpu():
    """The rule counts CUDA's fused kernel's bool mask; the CPU keeps a mask in the
    input's dtype, 3 bytes more per element: exactly that difference and no other."""
    model = compile_str("input 64\nDense(32, relu)\nD(0.5)\nDense(10)")
    batch = 3
    estimate = memory.estimate(model, batch, "float32", "sgd").activations
    assert saved_bytes(model, batch) - estimate == batch * 32 * (4 - 1)


@needs_torch
@pytest.mark.parametrize("case", ["resnet18", "mobilenet_v2_64"])
def test_mixed_precision_against_cpu_autocast(case):
    """Under torch.autocast (bfloat16, CPU) autograd saves the activations at 2 bytes
    and, per forward pass, the bfloat16 copies of the weights it casts: the estimate's
    activations plus its low-precision weights. The bound, 1%, is what the model
    leaves out by design: it copies every trainable parameter, while autocast casts
    the convolutions' and dense layers' weights, not batch norm's (measured:
    +0.1% ResNet-18, +0.5% MobileNetV2, never under)."""
    import torch

    make, batch = CASES[case]
    model = make()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        measured = saved_bytes(model, batch)
    est = memory.estimate(model, batch, "bfloat16", "adam")
    error = (est.activations + est.low_precision_weights - measured) / measured
    assert 0 <= error < 0.01, (case, error)
