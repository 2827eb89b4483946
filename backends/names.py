"""Every name a spec declares, in the form it takes in each backend's module.

A spec declares four kinds of names: the model's, blocks', block parameters' and
nodes' (`as` aliases, and the names archc gives block instances). Each backend
states, next to its generator (backends/<backend>/names.py), the forms a kind
takes in its module (`forms`) and the names its module already uses in each form
(`RESERVED`, `PREFIXES`). This module is what the compiler asks, while it reads
the names where they are declared; it imports no framework.

Forms: `module` (a module-level function or class), `parameter` (of a generated
function or `__init__`, and a keyword at its calls), `variable` (a local variable
of a generated function) and `attribute` (of a generated class).
"""

from __future__ import annotations

import builtins
import importlib
import keyword
from dataclasses import dataclass

_BACKENDS = ("backends.keras.names", "backends.pytorch.names")
KINDS = ("model", "block", "parameter", "node")

# Python's own names: a derived name (`Class` -> `class`, `true` -> `True`, `Float`
# -> `float`) must not be a keyword or shadow a builtin in any form.
PYTHON = {
    **{k: "a Python keyword" for k in keyword.kwlist + keyword.softkwlist},
    **{b: "a Python builtin" for b in dir(builtins) if not b.startswith("_")},
}


@dataclass(frozen=True)
class Derived:
    framework: str
    form: str
    text: str
    what: str  # `the Keras function `layers``


def backends() -> list:
    return [importlib.import_module(m) for m in _BACKENDS]


def derived(kind: str, name: str) -> list[Derived]:
    """Every form `name`, declared as a `kind`, takes in the generated modules."""
    out = []
    for b in backends():
        for form, text, what in b.forms(kind, name):
            out.append(Derived(b.FRAMEWORK, form, text, what))
    return out


def reserved(framework_module, form: str) -> dict[str, str]:
    """The names a backend's module uses in `form`, with why."""
    return {**PYTHON, **framework_module.RESERVED.get(form, {})}


NOUNS = {
    "model": "the model",
    "block": "the block",
    "parameter": "the parameter",
    "node": "the layer",
}


def problem(kind: str, name: str) -> str | None:
    """Why a declared name cannot be used by some backend, as a hint; or None."""
    for b in backends():
        for form, text, what in b.forms(kind, name):
            why = reserved(b, form).get(text)
            if why is None:
                for prefix, reason in getattr(b, "PREFIXES", {}).get(form, {}).items():
                    if text.startswith(prefix):
                        return f"rename {NOUNS[kind]}; `{name}` becomes {what}, and {reason}"
                continue
            if keyword.iskeyword(text) or keyword.issoftkeyword(text):
                return f"rename {NOUNS[kind]}; `{name}` becomes {what}, a Python keyword"
            return f"rename {NOUNS[kind]}; `{name}` becomes {what}, which would shadow {why}"
    return None


def derived_node_names(name: str) -> dict[str, str]:
    """The names other than `name` that a node called `name` also takes in some
    generated module, each with what it is there (PyTorch's `self.<name>_pad`, the
    padding helper of the layer): another node of one of these names in the same
    scope would meet it."""
    out: dict[str, str] = {}
    for m in backends():
        for form, text, what in m.forms("node", name):
            if text != name:
                out.setdefault(text, what)
    return out


def collision(kind_a: str, a: str, kind_b: str, b: str) -> str | None:
    """Why two declared names collide in some backend's module (the same text in
    forms that meet in one scope, as the backend's CLASHES say), as a hint; or None."""
    for m in backends():
        for fa, ta, wa in m.forms(kind_a, a):
            for fb, tb, wb in m.forms(kind_b, b):
                if ta == tb and ((fa, fb) in m.CLASHES or (fb, fa) in m.CLASHES):
                    return (
                        f"rename {NOUNS[kind_a]}; `{a}` becomes {wa}, which would "
                        f"shadow {wb} that `{b}` becomes"
                    )
    return None
