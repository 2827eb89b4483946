"""One training recipe (archc/train/recipe.py): resolved once, with every default
stated in one table; the generated Keras compile helper, the generated PyTorch
make_optimizer, the generated learning_rate functions and `archc train`'s live
optimizers and rates all agree, over the whole table of optimizers and settings."""

from __future__ import annotations

import inspect
import subprocess
import sys

import numpy as np
import pytest

from archc.ir.training import TrainingConfig
from archc.language.train_section import parse_settings
from archc.train import recipe as R
from archc.train.schedule import LearningRate
from tests.helpers import HAS_KERAS, HAS_TORCH, compile_str

if HAS_TORCH:
    import torch
if HAS_KERAS:
    import keras

needs_both = pytest.mark.skipif(not (HAS_TORCH and HAS_KERAS), reason="needs torch and keras")

# conv with bias, batch norm, PReLU, dense: every kind of parameter a decay rule sorts
NET = """model rnet
input 6*6*1
C(2*3*3) B A(prelu) C(2*3*3{l2}) A(relu)
Flatten
Dense(3, softmax)
"""  # nodes c1 b1 a1 c2 a2 flatten f1


def spec(train: str, l2: str = "") -> str:
    return NET.format(l2=l2) + "train { " + train + " }\n"


# ---- the defaults ---------------------------------------------------------------------


def _recipe(**given: str):
    """The recipe of a train section holding `given` (as the spec writes them)."""
    return R.resolve(TrainingConfig(**parse_settings(given)))


def test_every_default_comes_from_the_one_table():
    r = R.resolve(None)
    assert (r.epochs, r.batch_size, r.optimizer.name, r.lr) == (10, 32, "adam", 0.001)
    assert r.schedule.kind == "constant" and r.weight_decay == 0.0
    assert (r.optimizer.beta_1, r.optimizer.beta_2, r.optimizer.epsilon) == (0.9, 0.999, 1e-7)
    assert (r.loss, r.from_logits, r.label_smoothing, r.augment) == (
        "sparse_categorical_crossentropy",
        False,
        0.0,
        False,
    )
    assert all(v == "default" for v in r.sources.values())
    # a default that depends on the optimizer: Keras's values, one table for both backends
    assert _recipe(optimizer="sgd").lr == 0.01
    assert _recipe(optimizer="rmsprop").lr == 0.001
    assert _recipe(optimizer="adamw").weight_decay == 0.004
    assert _recipe(optimizer="adam").weight_decay == 0.0
    plateau = _recipe(schedule="plateau").schedule
    assert (plateau.factor, plateau.patience, plateau.min_lr, plateau.monitor) == (
        0.1,
        10,
        0.0,
        "val_loss",
    )
    assert _recipe(schedule="step(rate=0.5, every=2)").schedule.offset == 0
    one = R.resolve(
        TrainingConfig(lr=0.02, schedule=parse_settings({"schedule": "onecycle"})["schedule"])
    )
    assert (one.schedule.max_lr, one.schedule.pct_start) == (0.2, 0.3)


def test_command_line_beats_spec_beats_defaults():
    ir = compile_str(spec("optimizer: sgd lr: 0.05 weight_decay: 0.001"))
    r = R.recipe_of(ir, parse_settings({"optimizer": "adamw", "epochs": "3"}))
    assert (r.optimizer.name, r.lr, r.weight_decay, r.epochs) == ("adamw", 0.05, 0.001, 3)
    assert (r.sources["optimizer"], r.sources["lr"], r.sources["batch_size"]) == (
        "command line",
        "spec",
        "default",
    )


def test_adamw_with_a_layers_own_l2_is_refused_with_the_reason():
    from backends.common import BackendError
    from backends.pytorch.generator import generate

    ir = compile_str(spec("optimizer: adamw", l2=", l2: 0.001"))
    with pytest.raises(R.RecipeError, match="AdamW"):
        R.recipe_of(ir)
    with pytest.raises(BackendError, match="AdamW"):
        generate(ir)


def test_the_recipe_and_the_generators_need_no_numpy_nor_framework():
    code = (
        "import sys, archc.train.recipe, archc.train.schedule, backends.recipe_source, "
        "backends.keras.generator, backends.pytorch.generator, archc.cli; "
        "print(sorted(m for m in ('numpy', 'torch', 'keras', 'tensorflow') "
        "if m in sys.modules))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "[]"


def test_the_generated_schedule_writes_no_zero_offset():
    from backends.keras.generator import generate

    text = generate(compile_str(spec("lr: 0.1 schedule: step(rate=0.5, every=3)")))
    assert "return 0.1 * 0.5 ** (epoch // 3)" in text and "+ 0" not in text
    text = generate(compile_str(spec("lr: 0.1 schedule: step(rate=0.5, every=3, offset=1)")))
    assert "return 0.1 * 0.5 ** ((epoch + 1) // 3)" in text


@needs_both
def test_omitted_arguments_are_the_frameworks_own_defaults():
    """Generated text leaves out an argument only where the framework's default is
    the recipe's value: the tables of framework defaults are the real ones."""
    for table, module in ((R.KERAS_DEFAULTS, keras.optimizers), (R.TORCH_DEFAULTS, torch.optim)):
        for cls, defaults in table.items():
            params = inspect.signature(getattr(module, cls)).parameters
            for name, value in defaults.items():
                assert params[name].default == value, (cls, name)


# ---- the whole table: generated code == archc train, per backend ------------------------

CASES = [
    "optimizer: sgd",
    "optimizer: sgd lr: 0.05",
    "optimizer: sgd(momentum=0.9)",
    "optimizer: sgd(momentum=0.9, nesterov=true) lr: 0.1 weight_decay: 0.0005",
    "optimizer: sgd(nesterov=true)",
    "optimizer: adam",
    "optimizer: adam lr: 0.003",
    "optimizer: adam(beta_1=0.8, beta_2=0.99, epsilon=1e-5) weight_decay: 0.001",
    "optimizer: adam(epsilon=1e-8)",
    "optimizer: adamw",
    "optimizer: adamw lr: 0.002 weight_decay: 0.05",
    "optimizer: adamw(beta_2=0.98) weight_decay: 0",
    "optimizer: rmsprop",
    "optimizer: rmsprop(epsilon=1e-6) lr: 0.01 weight_decay: 0.0001",
    "weight_decay: 0.002",
    "",
    "optimizer: sgd(momentum=0.9) schedule: step(rate=0.5, every=2)",
    "optimizer: sgd lr: 0.1 schedule: step(rate=0.1, every=3, offset=1) epochs: 9",
    "schedule: piecewise(boundaries=[2, 4], values=[0.1, 0.01, 0.001])",
    "lr: 0.01 schedule: cosine",
    "lr: 0.01 schedule: cosine(min_lr=0.001) epochs: 7",
    "optimizer: sgd schedule: onecycle",
    "lr: 0.01 schedule: onecycle(max_lr=0.05, pct_start=0.25) epochs: 12",
    "optimizer: sgd(momentum=0.9) schedule: plateau",
    "schedule: plateau(factor=0.5, patience=2, min_lr=0.0002, monitor=val_accuracy)",
]
LAYER_L2 = [
    ("optimizer: sgd(momentum=0.9) weight_decay: 0.0005", ", l2: 0.002"),
    ("optimizer: adam", ", l2: 0.001"),
    ("optimizer: rmsprop weight_decay: 0.01", ", l2: 0"),
]
# validation losses that make plateau(patience=10) reduce once, patience=2 several times
LOSSES = [2.0, 1.5] + [1.6] * 12 + [1.0] + [1.2] * 15


def _settings(ir, backend):
    from archc.train.settings import resolve

    return resolve(ir, backend, "digits", {}, device="cpu")


def _keras_state(model):
    """What decides a Keras step besides the data: the optimizer's configuration,
    each kernel's regularizer, and which variables AdamW decays."""
    opt = model.optimizer
    config = {k: v for k, v in opt.get_config().items() if k != "name"}
    regularizers = {
        layer.name: layer.kernel.regularizer.get_config()["l2"]
        for layer in model.layers
        if getattr(layer, "kernel", None) is not None and layer.kernel.regularizer
    }
    decayed = (
        sorted(v.path for v in model.trainable_variables if opt._use_weight_decay(v))
        if opt.weight_decay
        else []
    )
    return type(opt).__name__, config, regularizers, decayed


def _torch_state(model, optimizer):
    """The optimizer's class, its initial rate and the hyper-parameters of each
    parameter, by name."""
    group_of = {id(p): g for g in optimizer.param_groups for p in g["params"]}
    # the rate in force is the schedule's business (compared epoch by epoch below)
    per_param = {
        name: {k: v for k, v in group_of[id(p)].items() if k not in ("params", "lr", "initial_lr")}
        for name, p in model.named_parameters()
    }
    return type(optimizer).__name__, optimizer.defaults["lr"], per_param


def _keras_rates(module, model, callbacks, r, n):
    """The learning rate of each epoch as the generated Keras code sets it."""
    rates = []
    for cb in callbacks:
        cb.set_model(model)
        cb.on_train_begin()
    for epoch in range(n):
        for cb in callbacks:
            if hasattr(cb, "schedule"):  # LearningRateScheduler
                cb.on_epoch_begin(epoch)
        rates.append(float(np.asarray(model.optimizer.learning_rate)))
        logs = {"val_loss": LOSSES[epoch], "val_accuracy": -LOSSES[epoch]}
        for cb in callbacks:
            if not hasattr(cb, "schedule"):
                cb.on_epoch_end(epoch, logs)
    return rates


def _torch_rates(optimizer, scheduler, r, n):
    rates = []
    for epoch in range(n):
        rates.append(optimizer.param_groups[0]["lr"])
        if scheduler is None:
            continue
        if r.schedule.kind == "plateau":
            loss = LOSSES[epoch]
            scheduler.step(loss if r.schedule.monitor == "val_loss" else -loss)
        else:
            optimizer.step()
            scheduler.step()
    return rates


def _runner_rates(r, n):
    ours, rates = LearningRate(r), []
    for epoch in range(n):
        rates.append(ours.at(epoch))
        ours.end_epoch({"val_loss": LOSSES[epoch], "val_accuracy": -LOSSES[epoch]})
    return rates


@needs_both
@pytest.mark.parametrize("train, l2", [(c, "") for c in CASES] + LAYER_L2)
def test_generated_code_and_archc_train_build_the_same_optimizer_and_rates(train, l2):
    from backends.keras.generator import generate as keras_source
    from backends.keras.train import KerasTrainer
    from backends.pytorch.generator import generate as torch_source
    from backends.pytorch.generator import model_class_name
    from backends.pytorch.train import TorchTrainer
    from backends.runtime import load_source

    ir = compile_str(spec(train, l2))
    r = R.recipe_of(ir)
    n = len(LOSSES)  # past the last epoch too: the formulas hold their end value
    tag = abs(hash((train, l2)))

    kmod = load_source(keras_source(ir), f"recipe_k_{tag}")
    kmodel = kmod.build_rnet()
    callbacks = kmod.compile_rnet(kmodel)
    generated_k = _keras_state(kmodel)
    live_k = _keras_state(KerasTrainer(ir, _settings(ir, "keras")).model)
    assert generated_k == live_k

    tmod = load_source(torch_source(ir), f"recipe_t_{tag}")
    tmodel = getattr(tmod, model_class_name(ir))()
    optimizer, scheduler = tmod.make_optimizer(tmodel)
    trainer = TorchTrainer(ir, _settings(ir, "torch"))
    assert _torch_state(tmodel, optimizer) == _torch_state(trainer.model, trainer.optimizer)

    # the translation between the two, as archc/train/recipe.py states it
    cls, config, regularizers, decayed = generated_k
    _, lr, per_param = _torch_state(tmodel, optimizer)
    assert cls == type(optimizer).__name__
    kernel = per_param["c1.weight"]
    assert config["learning_rate"] == pytest.approx(lr, rel=1e-6) and lr == r.lr
    if cls == "SGD":
        assert (config["momentum"], kernel["momentum"]) == (r.optimizer.momentum,) * 2
        assert kernel["nesterov"] == (config["nesterov"] and config["momentum"] > 0)
    elif cls in ("Adam", "AdamW"):
        assert kernel["betas"] == (config["beta_1"], config["beta_2"])
        assert kernel["eps"] == config["epsilon"]
    else:
        assert (kernel["alpha"], kernel["eps"]) == (config["rho"], config["epsilon"])
    own = {"c2.weight": 2 * ir.node("c2").l2} if l2 else {}
    for name, hyper in per_param.items():
        layer = name.rsplit(".", 1)[0]
        is_kernel = name.endswith("weight") and name.split(".")[0] in ("c1", "c2", "f1")
        if cls == "AdamW":  # decoupled: the optimizer decays the kernels, nothing else
            assert hyper["weight_decay"] == (r.weight_decay if is_kernel else 0.0), name
            assert ("kernel" in "".join(decayed)) == bool(r.weight_decay)
            assert all(p.endswith("kernel") for p in decayed)
            assert not regularizers
        else:  # coupled: Keras's L2 coefficient c is PyTorch's weight_decay 2c
            expected = own.get(name, r.weight_decay if is_kernel else 0.0)
            assert hyper["weight_decay"] == pytest.approx(expected), name
            if is_kernel:
                assert 2 * regularizers.get(layer, 0.0) == pytest.approx(expected), name

    rates = _runner_rates(r, n)
    assert _keras_rates(kmod, kmodel, callbacks, r, n) == pytest.approx(rates, rel=1e-6)
    assert _torch_rates(optimizer, scheduler, r, n) == pytest.approx(rates, rel=1e-6)  # float32 cos
    if r.schedule.kind == "plateau":
        assert min(rates) < rates[0]  # the losses above do make it reduce


# ---- regularisation: in the compile helper, numerically today's per-layer form ------------


@needs_both
def test_the_compile_helpers_l2_is_the_per_layer_l2_it_replaces():
    """The spec-wide weight decay, set on every kernel by compile_<model>, gives the
    same loss and the same SGD step as `kernel_regularizer=L2(wd / 2)` on every
    conv and dense layer of the build (the form the generator wrote before); a
    layer's own `l2` stays on that layer."""
    from backends.keras.generator import generate
    from backends.runtime import load_source

    ir = compile_str(spec("optimizer: sgd lr: 0.1 weight_decay: 0.02", l2=", l2: 0.003"))
    text = generate(ir)
    assert text.count("kernel_regularizer=") == 1  # c2's own, on c2 only
    assert "kernel_regularizer=keras.regularizers.L2(0.003)" in text
    module = load_source(text, "recipe_l2_new")
    new = module.build_rnet()
    module.compile_rnet(new)

    keras.utils.set_random_seed(1)
    old = module.build_rnet()  # the same build, with the old per-layer regularizers
    config = old.get_config()
    for layer in config["layers"]:
        c = layer["config"]
        if layer["class_name"] in ("Conv2D", "Dense") and c.get("kernel_regularizer") is None:
            c["kernel_regularizer"] = keras.regularizers.serialize(keras.regularizers.L2(0.01))
    old = keras.Model.from_config(config)
    old.set_weights(new.get_weights())
    old.compile(
        optimizer=keras.optimizers.SGD(learning_rate=0.1),
        loss=keras.losses.SparseCategoricalCrossentropy(),
        metrics=["accuracy"],
    )
    assert float(sum(new.losses)) == pytest.approx(float(sum(old.losses)), rel=1e-6)
    assert float(sum(new.losses)) > 0
    rng = np.random.default_rng(0)
    x, y = rng.random((8, 6, 6, 1), dtype=np.float32), rng.integers(0, 3, 8)
    loss_new = new.train_on_batch(x, y)[0]
    loss_old = old.train_on_batch(x, y)[0]
    assert loss_new == pytest.approx(loss_old, rel=1e-6)
    for a, b in zip(new.get_weights(), old.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


@needs_both
@pytest.mark.parametrize(
    "train",
    [
        "optimizer: sgd lr: 0.5 weight_decay: 0.05",
        "optimizer: adamw(epsilon=1e-12) lr: 0.05 weight_decay: 0.5",
    ],
)
def test_a_decayed_step_is_the_same_on_both_backends(train):
    """One step from the same weights on the same batch: PyTorch's kernel-only
    weight_decay is Keras's L2 (sgd), and both AdamWs decay the kernels alike. (A
    tiny epsilon: the frameworks place Adam's epsilon differently, which at the
    first step moves a weight with a small gradient by 1e-4 relative; see
    archc/train/recipe.py.)"""
    from backends import transfer
    from backends.keras.generator import generate as keras_source
    from backends.pytorch.generator import generate as torch_source
    from backends.pytorch.generator import model_class_name
    from backends.pytorch.train import crossentropy
    from backends.runtime import load_source

    # no batch norm: the bias before it has a gradient of rounding noise only, which
    # Adam's normalisation would blow up into steps of either sign
    text = spec(train, l2=", l2: 0.01" if "sgd" in train else "").replace(
        " B A(prelu)", " A(prelu)"
    )
    ir = compile_str(text)
    kmod = load_source(keras_source(ir), f"recipe_step_k_{abs(hash(train))}")
    kmodel = kmod.build_rnet()
    kmod.compile_rnet(kmodel)
    tmod = load_source(torch_source(ir), f"recipe_step_t_{abs(hash(train))}")
    tmodel = getattr(tmod, model_class_name(ir))()
    transfer.keras_to_torch(ir, kmodel, tmodel)
    optimizer, _ = tmod.make_optimizer(tmodel)
    rng = np.random.default_rng(0)
    x, y = rng.random((8, 6, 6, 1), dtype=np.float32), rng.integers(0, 3, 8)
    kmodel.train_on_batch(x, y)
    tmodel.train()
    out = tmodel(torch.from_numpy(x).permute(0, 3, 1, 2).contiguous())
    loss = crossentropy(out, torch.from_numpy(y), True).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    after_k, after_t = transfer.keras_weights(ir, kmodel), transfer.torch_weights(ir, tmodel)
    moved = 0
    for key in after_k:
        np.testing.assert_allclose(after_t[key], after_k[key], rtol=1e-4, atol=1e-6, err_msg=key)
        moved += key.endswith("kernel")
    assert moved == 3
