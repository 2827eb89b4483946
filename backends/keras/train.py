"""The Keras side of the shared runner (archc/train/loop.py): `model.fit` over the
generated model, one epoch per call, with a callback that sets nothing of its own
but reports each batch to the runner (progress, non-finite loss, signals) and
stops the fit when the runner says so.

- On GPU: the mixed_bfloat16 policy (unless --precision fp32) and XLA
  (jit_compile="auto", Keras's default, compiles where the model allows).
- Several GPUs: tf.distribute.MirroredStrategy; several machines:
  MultiWorkerMirroredStrategy when TF_CONFIG is set. The model is built and
  compiled in the strategy's scope; fit splits each global batch over replicas.
- Checkpoints are .npz archives (allow_pickle=False) of the model's and the
  optimizer's variables by path, with the runner's state as JSON.
"""

from __future__ import annotations

import json
import os

import numpy as np

from archc.data import as_float
from archc.ir import Model
from archc.train.errors import RunError
from archc.train.metrics import outputs_probabilities
from archc.train.recipe import KERAS_KERNELS, Recipe, keras_kernel_l2, keras_optimizer
from archc.train.settings import Settings
from backends import transfer
from backends.runtime import load_source


def _tensorflow(device: str):
    from archc.extras import import_framework

    tf = import_framework("tensorflow")  # quietly, unless `-v` imported it already

    gpus = tf.config.list_physical_devices("GPU")
    if device == "cpu" and gpus:
        tf.config.set_visible_devices([], "GPU")
        gpus = []
    if device == "cuda" and not gpus:
        raise RunError("--device cuda: TensorFlow sees no GPU here")
    return tf, gpus


def _is_chief(tf_config: dict) -> bool:
    """The worker that logs and writes files: the `chief` task if the cluster has
    one, else worker 0 (TensorFlow's own convention)."""
    task = tf_config.get("task", {})
    if "chief" in tf_config.get("cluster", {}):
        return task.get("type") == "chief"
    return task.get("type", "worker") == "worker" and int(task.get("index", 0)) == 0


def apply_weight_decay(keras, model, recipe: Recipe) -> None:
    """The recipe's L2 penalty on every conv and dense kernel without an `l2` of its
    own, as the generated compile helper sets it (archc/train/recipe.py)."""
    c = keras_kernel_l2(recipe)
    if not c:
        return
    for v in model.trainable_variables:
        if v.name in KERAS_KERNELS and v.regularizer is None:
            v.regularizer = keras.regularizers.L2(c)


def make_optimizer(keras, model, recipe: Recipe):
    """The recipe's optimizer, as the generated compile helper builds it; AdamW
    decays the kernels only."""
    call = keras_optimizer(recipe)
    optimizer = getattr(keras.optimizers, call.cls)(**dict(call.kwargs))
    if recipe.decoupled:
        optimizer.exclude_from_weight_decay(
            var_list=[v for v in model.trainable_variables if v.name not in KERAS_KERNELS]
        )
    return optimizer


class KerasTrainer:
    backend = "keras"

    def __init__(self, ir: Model, settings: Settings):
        tf, gpus = _tensorflow(settings.device)
        import keras

        from backends.keras.generator import generate

        self.keras, self.tf = keras, tf
        self.settings, self.ir = settings, ir
        self.gpu = bool(gpus)
        self.rank, self.world = 0, 1
        if "TF_CONFIG" in os.environ:
            self.strategy = tf.distribute.MultiWorkerMirroredStrategy()
            self.rank = 0 if _is_chief(json.loads(os.environ["TF_CONFIG"])) else 1
        elif len(gpus) > 1:
            self.strategy = tf.distribute.MirroredStrategy()
        else:
            self.strategy = tf.distribute.get_strategy()  # the default: one device
        if settings.precision == "bf16" and not self.gpu:
            raise RunError("--precision bf16 is for GPUs; on CPU the runner trains in float32")
        self.mixed = self.gpu and settings.precision in ("auto", "bf16")
        keras.mixed_precision.set_global_policy("mixed_bfloat16" if self.mixed else "float32")
        keras.utils.set_random_seed(settings.seed)
        module = load_source(generate(ir), f"archc_keras_train_{ir.name}")
        with self.strategy.scope():
            self.model = getattr(module, f"build_{ir.name}")()
            apply_weight_decay(keras, self.model, settings)
            self.model.compile(
                optimizer=make_optimizer(keras, self.model, settings),
                loss=self._loss(),
                metrics=["accuracy"],
                jit_compile="auto",
            )
        self.probabilities = outputs_probabilities(ir)

    def _loss(self):
        losses = self.keras.losses
        logits = not outputs_probabilities(self.ir)
        if self.settings.label_smoothing:  # only the one-hot loss smooths
            return losses.CategoricalCrossentropy(
                from_logits=logits, label_smoothing=self.settings.label_smoothing
            )
        return losses.SparseCategoricalCrossentropy(from_logits=logits)

    def describe(self) -> str:
        parts = [
            f"Keras {self.keras.__version__} (TensorFlow {self.tf.__version__}) on "
            + (f"{len(self.tf.config.list_logical_devices('GPU'))} GPU(s)" if self.gpu else "CPU")
        ]
        if self.mixed:
            parts.append("mixed_bfloat16")
        if self.strategy.num_replicas_in_sync > 1 or "TF_CONFIG" in os.environ:
            parts.append(f"{type(self.strategy).__name__} x{self.strategy.num_replicas_in_sync}")
        return ", ".join(parts)

    def set_learning_rate(self, lr: float) -> None:
        self.model.optimizer.learning_rate.assign(lr)

    def train_epoch(self, data, report, stop) -> None:
        keras = self.keras
        steps = data.steps - data.start_step
        if steps <= 0:
            return
        classes = self.ir.output_shape[-1]
        smooth = bool(self.settings.label_smoothing)
        seen_by_batch = [0]  # examples in batches 0..i-1 (Keras may read ahead of the steps)

        def batches():
            for _, x, y, _ in data.batches():
                seen_by_batch.append(seen_by_batch[-1] + len(y))
                yield x, (np.eye(classes, dtype=np.float32)[y] if smooth else y)

        seen = [0, 0.0, 0.0]  # examples, loss sum, correct so far in this fit

        class Report(keras.callbacks.Callback):
            def on_train_batch_end(cb, batch, logs=None):
                n = seen_by_batch[batch + 1]
                loss_sum, correct = logs["loss"] * n, logs["accuracy"] * n
                delta = np.array([loss_sum - seen[1], correct - seen[2], n - seen[0]])
                seen[:] = [n, loss_sum, correct]
                if report(data.start_step + batch, delta, bool(stop)):
                    cb.model.stop_training = True

        self.model.fit(
            batches(),
            steps_per_epoch=steps,
            epochs=1,
            verbose=0,
            callbacks=[Report()],
            shuffle=False,
        )

    def predict(self, x: np.ndarray, batch_size: int) -> np.ndarray:
        out = self.model.predict(as_float(x), batch_size=max(batch_size, 256), verbose=0)
        return np.asarray(out, dtype=np.float32)

    def weights(self) -> dict[str, np.ndarray]:
        return transfer.keras_weights(self.ir, self.model)

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        transfer.set_keras_weights(self.ir, self.model, weights)

    def finite(self) -> bool:
        return all(
            np.isfinite(np.asarray(v)).all()
            for v in self.model.variables
            if np.issubdtype(np.asarray(v).dtype, np.floating)
        )

    def _variables(self):
        optimizer = self.model.optimizer
        if not optimizer.built:
            optimizer.build(self.model.trainable_variables)
        return {"model": list(self.model.variables), "optimizer": list(optimizer.variables)}

    def save_checkpoint(self, path: str, meta: dict) -> None:
        arrays = {"meta": np.frombuffer(json.dumps(meta).encode(), np.uint8)}
        for group, variables in self._variables().items():
            arrays[f"{group}/paths"] = np.array([v.path for v in variables])
            for i, v in enumerate(variables):
                arrays[f"{group}/{i}"] = np.asarray(v)
        with open(path, "wb") as f:
            np.savez(f, **arrays)

    def load_checkpoint(self, path: str) -> dict:
        with np.load(path, allow_pickle=False) as z:
            for group, variables in self._variables().items():
                # Keras numbers unnamed objects (seed generators) per process: the
                # paths may differ in those numbers, never in count or shapes
                shapes = [z[f"{group}/{i}"].shape for i in range(len(z[f"{group}/paths"]))]
                if shapes != [tuple(v.shape) for v in variables]:
                    raise RunError(f"{path}: its {group} variables are not this model's")
                for i, v in enumerate(variables):
                    v.assign(z[f"{group}/{i}"])
            return json.loads(z["meta"].tobytes().decode())

    def close(self) -> None:
        pass
