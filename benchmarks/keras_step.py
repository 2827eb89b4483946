"""Training-step throughput (images/s) of the generated course ResNet18
(generated/keras/resnet18.py) against the seed's own hand-written Keras class
for it (seed 000, class ResNet18, transcribed in tests/references/keras_refs.py),
in one process, rounds alternating. Same optimizer, loss, batch and data.

The seed's class declares `call(self, inputs)` without `training`. Under Keras 3
its batch norms then run in inference mode inside train_on_batch: they use the
moving statistics and never update them, a cheaper step that does not train
the network as written. The fair baseline is the seed's class with `training`
accepted (its one change); the unmodified class is timed too, for the record.

    python benchmarks/keras_step.py [--rounds 5] [--steps 10] [--batch 32]

Goal (issue "Keras backend"): generated / hand-written >= 0.98.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from _common import alternate, load_generated


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--batch", type=int, default=32)
    args = p.parse_args()

    import keras
    import numpy as np

    from tests.references.keras_refs import ResNet18

    class ResNet18Training(ResNet18):
        def call(self, inputs, training=None):  # lets Keras pass training to the BNs
            return super().call(inputs)

    keras.utils.set_random_seed(0)
    x = np.random.default_rng(0).normal(size=(args.batch, 32, 32, 3)).astype("float32")
    y = np.random.default_rng(1).integers(0, 10, size=(args.batch,))
    generated = load_generated("keras", "resnet18").build_resnet18()
    seed = ResNet18Training([2, 2, 2, 2])
    as_printed = ResNet18([2, 2, 2, 2])
    models = {"generated": generated, "seed class": seed, "as printed": as_printed}
    for m in models.values():
        m(x[:1])
        m.compile(
            optimizer=keras.optimizers.Adam(0.001),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        )
        for _ in range(3):  # trace and warm up
            m.train_on_batch(x, y)
    assert len({m.count_params() for m in models.values()}) == 1
    before = keras.ops.convert_to_numpy(as_printed.b1.moving_mean)
    as_printed.train_on_batch(x, y)
    frozen = np.allclose(before, keras.ops.convert_to_numpy(as_printed.b1.moving_mean))
    rates = alternate(
        {name: (lambda m=m: m.train_on_batch(x, y)) for name, m in models.items()},
        args.rounds,
        args.steps,
        args.batch,
    )
    for name, r in rates.items():
        print(f"{name:<12} {r:8.1f} images/s")
    print(
        f"(the class as printed {'never updates' if frozen else 'updates'} its batch-norm "
        "statistics when trained under Keras 3)"
    )
    ratio = rates["generated"] / rates["seed class"]
    print(
        f"ratio generated / seed class: {ratio:.3f} (goal >= 0.98: "
        f"{'met' if ratio >= 0.98 else 'NOT met'})"
    )


if __name__ == "__main__":
    main()
