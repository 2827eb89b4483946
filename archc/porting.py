"""`archc import`: an existing model -> a readable spec and its weights, verified.

    load the source -> import it (backends/keras/importer.py, backends/pytorch/importer.py)
    -> print the spec (archc/language/decompile.py) -> compile the printed spec and
    check it is the imported graph (`same_graph`) -> re-key the weights to the
    spec's node names -> [--check: run the source model and the spec's build in
    the other framework, float64, same weights, same input] -> write both files.

A source is a `.keras` file (Keras's safe mode: no Lambda or custom code is run),
`keras.applications.NAME` (built with weights=None, or loaded from a weights
file), or `module:callable` (a module on sys.path or a path/to/file.py; the
callable, called without arguments, returns a keras.Model or a torch nn.Module).
Every failure is an `ImportFailure` (backends/importing.py): the command prints
it, exits 1 and writes nothing. A printed spec that does not compile back to the
imported graph is archc's bug, and said so.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from dataclasses import dataclass
from typing import Any

from archc.ir import Model
from backends.importing import Imported, ImportFailure


@dataclass
class Ported:
    source: str
    framework: str  # the source's: "keras" or "torch"
    original: Any  # the source model
    imported: Imported
    spec: str  # the printed spec
    model: Model  # the printed spec, compiled
    weights: dict  # keyed by the compiled spec's node names
    renamed: dict[str, str]  # imported node name -> the spec's


# ---------------------------------------------------------------------------
# Loading a source
# ---------------------------------------------------------------------------

APPLICATIONS = "keras.applications."


def load(source: str, input_hwc: tuple[int, int, int] | None, source_weights: str | None):
    """(the model, its framework), as the source defines it (its own dtype: the
    weights written are the source's values; --check compares float64 copies)."""
    if source.startswith(APPLICATIONS):
        return _application(source, input_hwc, source_weights), "keras"
    if source_weights is not None:
        raise ImportFailure(source, [], "--source-weights applies to keras.applications.NAME only")
    if source.endswith(".keras") and ":" not in source:
        return _keras_file(source), "keras"
    if ":" in source:
        return _callable(source)
    raise ImportFailure(
        source,
        [],
        "not a source archc reads: give a .keras file, keras.applications.NAME, "
        "or module:callable (a module name or path/to/file.py, and a function in it)",
    )


def _application(source, input_hwc, source_weights):
    import keras

    name = source[len(APPLICATIONS) :]
    build = getattr(keras.applications, name, None)
    if not name.isidentifier() or not callable(build) or name[0].islower():
        known = sorted(n for n in dir(keras.applications) if n[:1].isupper())
        raise ImportFailure(
            source, [], f"keras.applications has no model {name!r} (it has {', '.join(known)})"
        )
    kwargs: dict[str, Any] = {"weights": None}
    if input_hwc is not None:
        kwargs["input_shape"] = input_hwc
    try:
        model = build(**kwargs)
        if source_weights is not None:
            model.load_weights(source_weights)
    except Exception as e:  # noqa: BLE001 (Keras's own message says what is wrong)
        raise ImportFailure(source, [], f"Keras could not build it: {_first_line(e)}") from None
    return model


def _keras_file(path: str):
    import keras

    if not os.path.isfile(path):
        raise ImportFailure(path, [], "no such file")
    problems = _unreadable_layers(path)
    if problems:
        raise ImportFailure(path, problems)
    try:
        model = keras.saving.load_model(path, safe_mode=True, compile=False)
    except Exception as e:  # noqa: BLE001 (a damaged file raises anything; Keras says what)
        raise ImportFailure(
            path, [], f"Keras could not load it (safe mode): {_first_line(e)}"
        ) from None
    return model


def _unreadable_layers(path: str) -> list:
    """The Lambda layers and custom layer classes of a .keras file, read from its
    config.json (JSON: data, nothing is run) before Keras loads it, so that each is
    named with its class and neighbours rather than by the loader's first error."""
    import json
    import zipfile

    from backends.importing import Problem

    try:
        with zipfile.ZipFile(path) as z:
            config = json.loads(z.read("config.json"))
    except (zipfile.BadZipFile, KeyError, ValueError, OSError) as e:
        raise ImportFailure(
            path, [], f"Keras could not load it: not a .keras archive ({_first_line(e)})"
        ) from None
    layers = []

    def collect(conf) -> None:
        for layer in (conf.get("config") or {}).get("layers", []) or []:
            layers.append(layer)
            if isinstance(layer.get("config"), dict) and "layers" in layer["config"]:
                collect(layer)

    def sources(value) -> list[str]:
        if isinstance(value, dict):
            history = (value.get("config") or {}).get("keras_history")
            if value.get("class_name") == "__keras_tensor__" and history:
                return [history[0]]
            return [n for v in value.values() for n in sources(v)]
        if isinstance(value, list):
            return [n for v in value for n in sources(v)]
        return []

    collect(config)
    reads = {
        (layer.get("config") or {}).get("name"): sources(layer.get("inbound_nodes", []))
        for layer in layers
    }
    problems = []
    for layer in layers:
        cls, name = layer.get("class_name", "?"), (layer.get("config") or {}).get("name", "?")
        module = layer.get("module") or ""
        if cls == "Lambda":
            why = "a Lambda layer runs arbitrary Python code, which archc does not read"
        elif not module.startswith("keras") or layer.get("registered_name") not in (None, cls):
            why = (
                f"a custom layer class (from {module or 'an unnamed module'}): archc reads "
                "Keras's built-in layers only; write it with built-in layers"
            )
        else:
            continue
        ins = ", ".join(reads.get(name, [])) or "the model's input"
        outs = ", ".join(n for n, r in reads.items() if name in r) or "the model's output"
        problems.append(Problem(name, cls, f"reads {ins}, read by {outs}", why))
    return problems


def _as_float64(model):
    """A copy of a Keras model with its layers in float64 and the same weights (its
    config, data, with every dtype float64, rebuilt from Keras's own classes)."""
    import keras

    def rewrite(value):
        if isinstance(value, dict):
            if value.get("class_name") == "DTypePolicy":
                return {**value, "config": {**value["config"], "name": "float64"}}
            return {k: ("float64" if k == "dtype" and v == "float32" else rewrite(v))
                    for k, v in value.items()}  # fmt: skip
        if isinstance(value, list):
            return [rewrite(v) for v in value]
        return value

    clone = type(model).from_config(rewrite(model.get_config()))
    clone.set_weights([keras.ops.convert_to_numpy(w).astype("float64") if "float" in str(w.dtype)
                       else w for w in model.get_weights()])  # fmt: skip
    for layer in clone.layers:  # Normalization derives its constants from its weights
        if hasattr(layer, "finalize_state") and type(layer).__name__ == "Normalization":
            layer.finalize_state()
    return clone


def _callable(source: str):
    where, _, attr = source.rpartition(":")
    if where.endswith(".py") or os.sep in where:
        if not os.path.isfile(where):
            raise ImportFailure(source, [], f"no such file {where}")
        spec = importlib.util.spec_from_file_location("archc_import_source", os.path.abspath(where))
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module  # as an import would (dataclasses look it up)
        loader = spec.loader
    else:
        try:
            found = importlib.util.find_spec(where)
        except (ImportError, ValueError):
            found = None
        if found is None:
            raise ImportFailure(source, [], f"no module named {where!r} on sys.path")
        module = None
        loader = None
    try:
        if loader is None:
            module = importlib.import_module(where)
        else:
            loader.exec_module(module)
    except Exception as e:  # noqa: BLE001 (the user's module may raise anything)
        raise ImportFailure(
            source, [], f"importing {where} raised {type(e).__name__}: {_first_line(e)}"
        ) from None
    fn = getattr(module, attr, None)
    if not callable(fn):
        raise ImportFailure(source, [], f"{where} has no callable {attr!r}")
    try:
        obj = fn()
    except Exception as e:  # noqa: BLE001 (the user's callable may raise anything)
        raise ImportFailure(
            source, [], f"{attr}() raised {type(e).__name__}: {_first_line(e)}"
        ) from None
    keras = sys.modules.get("keras")
    torch = sys.modules.get("torch")
    if keras is not None and isinstance(obj, keras.Model):
        return obj, "keras"
    if torch is not None and isinstance(obj, torch.nn.Module):
        return obj, "torch"
    raise ImportFailure(
        source, [], f"{attr}() returned a {type(obj).__name__}, not a keras.Model or nn.Module"
    )


def _first_line(e: Exception) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0]


# ---------------------------------------------------------------------------
# Importing, printing, verifying
# ---------------------------------------------------------------------------


def port(
    source: str,
    input_hwc: tuple[int, int, int] | None = None,
    name: str | None = None,
    source_weights: str | None = None,
    spec_path: str = "<imported>",
) -> Ported:
    original, framework = load(source, input_hwc, source_weights)
    if framework == "keras":
        from backends.keras.importer import import_keras

        imported = import_keras(original, source)
    else:
        if input_hwc is None:
            raise ImportFailure(source, [], "a PyTorch module needs --input HxWxC")
        from backends.pytorch.importer import import_torch

        imported = import_torch(original, input_hwc, source)
    return printed(imported, original, name, spec_path)


def printed(imported: Imported, original, name: str | None, spec_path: str) -> Ported:
    """The spec of an imported model, compiled back and checked to be that graph."""
    from archc.diagnostics import SpecError
    from archc.ir.model import same_graph
    from archc.language.decompile import names, spec_text
    from archc.pipeline import compile_text

    ir = imported.model
    if name is not None:
        ir = ir.model_copy(update={"name": name})
    header = (
        f"Imported by `archc import` from {imported.source} ({imported.framework}): "
        f"{ir.params:,} parameters, {ir.nontrainable:,} of them non-trainable."
    )
    bug = "archc printed a spec that is not the imported graph (archc's bug, please report it)"
    text = spec_text(ir, header)
    try:
        compiled = compile_text(text, name=ir.name, path=spec_path)
    except SpecError as e:
        raise ImportFailure(imported.source, [], f"{bug}:\n{e.render()}") from None
    diffs = same_graph(compiled, ir)
    if diffs:
        raise ImportFailure(imported.source, [], f"{bug}: " + "; ".join(diffs[:5]))
    renamed = names(compiled, ir)
    weights = {}
    for key, value in imported.weights.items():
        node, role = key.rsplit("/", 1)
        weights[f"{renamed[node]}/{role}"] = value
    return Ported(imported.source, imported.framework, original, imported, text, compiled,
                  weights, renamed)  # fmt: skip


def write(ported: Ported, spec_path: str, weights_path: str | None) -> None:
    """Both files, each atomically (the spec last: it names the weights' nodes)."""
    from archc.train.files import atomic_write, write_text
    from backends.transfer import save_weights

    if weights_path is not None:
        atomic_write(weights_path, lambda tmp: save_weights(tmp, ported.weights))
    write_text(spec_path, ported.spec)


# ---------------------------------------------------------------------------
# --check: the source model against the spec's build in the other framework
# ---------------------------------------------------------------------------


def check(ported: Ported, batch: int = 2, seed: int = 0):
    """A float64 copy of the source model against the compiled spec built in the
    other framework in float64 with the weights `archc import` writes, on the same
    random inputs (archc/equiv.py's `raw_inputs`): the output and every node that
    has an output in both (by name), as `archc equiv --nodes` compares them.
    Returns an archc.equiv.Result."""
    import copy

    import numpy as np
    import torch

    from archc import equiv
    from backends import transfer
    from backends.runtime import build_keras, build_torch

    ir = ported.model
    x = equiv.raw_inputs(ir, np.random.default_rng(seed + 1).normal(size=(batch, *ir.input_shape)))
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy() if x.ndim == 4 else x)
    spec_name = {v: k for k, v in ported.renamed.items()}  # spec node -> source name
    comparable = [n.name for n in ir.nodes if equiv._comparable(n)]
    measured: dict[str, float] = {}
    if ported.framework == "keras":
        direction = "keras2torch"
        other = build_torch(ir, "float64").eval()
        transfer.set_torch_weights(ir, other, ported.weights)
        with torch.no_grad(), equiv._keras_functions(ir, "float64", measured):
            out, seen = _torch_run(other, xt, {n: n for n in comparable})
        source = _as_float64(ported.original)
        ref, refs = _keras_run(source, x, {n: spec_name[n] for n in comparable})
    else:
        direction = "torch2keras"
        other = build_keras(ir, "float64")
        transfer.set_keras_weights(ir, other, ported.weights)
        from backends.pytorch.importer import node_outputs

        source = copy.deepcopy(ported.original).double().eval()
        with torch.no_grad():
            ref = _nhwc(source(xt).numpy())
            by_import = node_outputs(source, ir.input_shape, xt)
        refs = {n: by_import[spec_name[n]] for n in comparable if spec_name[n] in by_import}
        out, seen = _keras_run(other, x, {n: n for n in refs})
    diff = float(np.abs(out - ref).max())
    scale = float(np.abs(ref).max())
    result = equiv.Result(diff, scale, equiv.TOLERANCE["float64"], "float64", direction,
                          equiv.allowed(scale, "float64"))  # fmt: skip
    problem, degenerate = equiv._problems(ref, out, result.allowed, whole_output=True)
    result.problems = [p for p in (problem, degenerate) if p]
    for n in comparable:
        if n not in refs or n not in seen:
            continue
        r, t = refs[n], seen[n].reshape(refs[n].shape)
        s = float(np.abs(r).max())
        a = equiv.allowed(s, "float64")
        problem, degenerate = equiv._problems(r, t, a, whole_output=False)
        result.nodes.append(
            equiv.NodeDiff(n, float(np.abs(t - r).max()), s, a, problem, degenerate)
        )
    for fn, size in measured.items():
        result.known.append(
            equiv.KnownDiff(fn, equiv._activations(ir, fn), equiv.KNOWN_INEXACT[fn], size)
        )
    return result


def _torch_run(model, xt, wanted: dict[str, str]):
    """The output (NHWC) and, per node, the output of module wanted[node]."""
    seen = {}
    modules = dict(model.named_modules())
    handles = [
        modules[q].register_forward_hook(
            lambda m, i, o, n=n: seen.__setitem__(n, _nhwc(o.detach().numpy()))
        )
        for n, q in wanted.items()
        if q in modules
    ]
    try:
        out = _nhwc(model(xt).numpy())
    finally:
        for h in handles:
            h.remove()
    return out, seen


def _nhwc(a):
    return a.transpose(0, 2, 3, 1) if a.ndim == 4 else a


def _keras_run(model, x, wanted: dict[str, str]):
    """The output and, per node, the output of the top-level layer wanted[node]."""
    import keras
    import numpy as np

    layers = {layer.name: layer for layer in model.layers}
    have = {n: layers[q] for n, q in wanted.items() if q in layers}
    out = np.asarray(model(x, training=False))
    if not have:
        return out, {}
    probe = keras.Model(model.inputs[0], [layer.output for layer in have.values()])
    values = probe(x, training=False)
    values = values if isinstance(values, (list, tuple)) else [values]
    return out, {n: np.asarray(v) for n, v in zip(have, values)}
