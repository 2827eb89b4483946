"""Loading generated modules and comparing the models they build with the IR."""

from __future__ import annotations

import pathlib

from backends.runtime import load_module

ROOT = pathlib.Path(__file__).resolve().parent.parent
GENERATED = ROOT / "generated"


def keras_model(model_ir, folder: pathlib.Path = GENERATED / "keras"):
    module = load_module(folder / f"{model_ir.name}.py", f"archc_gen_keras_{model_ir.name}")
    return module, getattr(module, f"build_{model_ir.name}")()


def torch_model(model_ir, folder: pathlib.Path = GENERATED / "torch"):
    from backends.pytorch.generator import model_class_name

    module = load_module(folder / f"{model_ir.name}.py", f"archc_gen_torch_{model_ir.name}")
    return module, getattr(module, model_class_name(model_ir))()
