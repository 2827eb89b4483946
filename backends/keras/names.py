"""The names a generated Keras module uses for itself, and the forms a spec's
names take in it (read by backends/names.py; no framework is imported).

A spec's names reach the module as:
- the model name: the functions `build_<name>`, `compile_<name>` and
  `learning_rate_<name>`, and the keras.Model's `name=` string;
- a block name: the function `snake_case(name)` (`ConvBNRelu` -> `conv_bn_relu`);
- a block parameter: a parameter of that function and a keyword at its calls;
- a node name or `as` alias: a Keras layer `name=` string and, when its value
  must outlive the chain, a local variable of the function that computes it.

Keras layer names never become attributes (the build is functional), so the
members of keras.Model and keras.layers.Layer do not constrain them; a test
builds a model whose layers are named after such members.
"""

from __future__ import annotations

FRAMEWORK = "Keras"

# module-level names the module defines or imports (see templates/module.py.j2
# and generator.py: HELPERS)
MODULE = {
    "keras": "`import keras`",
    "layers": "`from keras import layers`",
    "ops": "`from keras import ops`",
    "LocalResponseNormalization": "archc's helper layer of that name",
    "NegInfPadding2D": "archc's helper layer of that name",
    "CeilAveragePooling2D": "archc's helper layer of that name",
    "BilinearResize2D": "archc's helper layer of that name",
    "ChannelShuffle": "archc's helper layer of that name",
    "ChannelSplit": "archc's helper layer of that name",
}

# names bound inside a generated function besides the spec's
PARAMETER = {
    "x": "the input argument of every block function",
    "name": "the layer-name prefix argument of every block function",
}
VARIABLE = {
    "x": "the running tensor of every generated function",
    "inputs": "the keras.Input of the build function",
    "name": "the layer-name prefix argument of every block function",
}

RESERVED = {
    "module": MODULE,
    "parameter": {**MODULE, **PARAMETER},
    "variable": {**MODULE, **VARIABLE},
}

# forms that meet in one scope: module-level functions are called from function
# bodies, whose parameters and local variables share one namespace
CLASHES = {
    ("module", "module"),
    ("module", "parameter"),
    ("module", "variable"),
    ("parameter", "variable"),
}


def forms(kind: str, name: str) -> list[tuple[str, str, str]]:
    """(form, text in the module, what it is there) for a declared name."""
    from archc.passes.expand import snake

    if kind == "model":
        return [
            ("module", f"{p}_{name}", f"the Keras function `{p}_{name}`")
            for p in ("build", "compile", "learning_rate")
        ]
    if kind == "block":
        s = snake(name)
        return [("module", s, f"the Keras function `{s}`")]
    if kind == "parameter":
        return [("parameter", name, f"the Keras function parameter `{name}`")]
    if kind == "node":
        return [("variable", name, f"the Keras local variable `{name}`")]
    raise AssertionError(kind)
