"""Loading generated modules and comparing the models they build with the IR."""

from __future__ import annotations

import importlib.util
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
GENERATED = ROOT / "generated"


def load_module(path: pathlib.Path, name: str):
    """Import a generated file under a private module name."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def keras_model(model_ir, folder: pathlib.Path = GENERATED / "keras"):
    module = load_module(folder / f"{model_ir.name}.py", f"archc_gen_keras_{model_ir.name}")
    return module, getattr(module, f"build_{model_ir.name}")()


def torch_model(model_ir, folder: pathlib.Path = GENERATED / "torch"):
    from backends.pytorch.generator import model_class_name

    module = load_module(folder / f"{model_ir.name}.py", f"archc_gen_torch_{model_ir.name}")
    return module, getattr(module, model_class_name(model_ir))()
