"""Loading generated modules and building their models, for the equivalence
check and the tests. Imports a framework only when asked to build with it."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import tempfile

from archc.ir import Model


def load_module(path: str, name: str):
    """Import a generated file under a private module name."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def load_source(source: str, name: str):
    """Import generated source text (written to a temporary file first)."""
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, f"{name}.py")
        with open(path, "w", encoding="utf-8") as f:
            f.write(source)
        return load_module(path, name)


@contextlib.contextmanager
def keras_dtype(dtype: str):
    """Build Keras layers in `dtype`. set_floatx alone leaves layers in float32 and
    the dtype policy alone leaves keras.Input in float32: set both, then restore."""
    import keras

    floatx, policy = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx(dtype)
    keras.config.set_dtype_policy(dtype)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(policy)
        keras.config.set_floatx(floatx)


def build_keras(ir: Model, dtype: str = "float32"):
    from backends.keras.generator import generate

    module = load_source(generate(ir), f"archc_keras_{ir.name}")
    with keras_dtype(dtype):
        model = getattr(module, f"build_{ir.name}")()
    # integer weights (Normalization's sample count) are integers in any dtype
    if any(str(w.dtype) != dtype for w in model.weights if "int" not in str(w.dtype)):
        raise RuntimeError(f"Keras built some weights in another dtype than {dtype}")
    return model


def build_torch(ir: Model, dtype: str = "float32"):
    import torch

    from backends.pytorch.generator import generate, model_class_name

    module = load_source(generate(ir), f"archc_torch_{ir.name}")
    model = getattr(module, model_class_name(ir))()
    return model.to(getattr(torch, dtype))
