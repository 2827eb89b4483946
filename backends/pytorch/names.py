"""The names a generated PyTorch module uses for itself, and the forms a spec's
names take in it (read by backends/names.py; torch is not imported).

A spec's names reach the module as:
- the model name: the nn.Module class `CamelCase(name)` (`vgg_16` -> `Vgg16`);
- a block name: the nn.Module class `CamelCase(name)`;
- a block parameter: a parameter of that class's `__init__` and a keyword at
  its construction;
- a node name or `as` alias: the submodule attribute `self.<name>` (and
  `self.<name>_pad` for a padding helper) and a local variable of `forward`.

`ATTRIBUTE` is nn.Module's own namespace (a test checks that it covers
`dir(torch.nn.Module)` of the installed torch) and archc's class attribute
`input_shape`; every attribute starting with `_` is refused as well, since
nn.Module keeps its private state there.
"""

from __future__ import annotations

FRAMEWORK = "PyTorch"

MODULE = {
    "torch": "`import torch`",
    "F": "`import torch.nn.functional as F`",
    "nn": "`from torch import nn`",
    "SamePool2d": "archc's helper module of that name",
    "Crop2d": "archc's helper module of that name",
    "ChannelSplit": "archc's helper module of that name",
    "make_optimizer": "archc's optimizer function",
    "learning_rate": "archc's learning-rate function",
}

PARAMETER = {
    "self": "the instance argument of `__init__`",
    "in_channels": "archc's input-channel argument of block classes",
}
VARIABLE = {
    "self": "the instance argument of `forward`",
    "x": "the running tensor of `forward`",
}

# dir(torch.nn.Module) and the attributes nn.Module.__init__ sets, without dunders
NN_MODULE = [
    "T_destination",
    "add_module",
    "apply",
    "bfloat16",
    "buffers",
    "call_super_init",
    "children",
    "compile",
    "cpu",
    "cuda",
    "double",
    "dump_patches",
    "eval",
    "extra_repr",
    "float",
    "forward",
    "get_buffer",
    "get_extra_state",
    "get_parameter",
    "get_submodule",
    "half",
    "ipu",
    "load_state_dict",
    "modules",
    "mtia",
    "named_buffers",
    "named_children",
    "named_modules",
    "named_parameters",
    "parameters",
    "register_backward_hook",
    "register_buffer",
    "register_forward_hook",
    "register_forward_pre_hook",
    "register_full_backward_hook",
    "register_full_backward_pre_hook",
    "register_load_state_dict_post_hook",
    "register_load_state_dict_pre_hook",
    "register_module",
    "register_parameter",
    "register_state_dict_post_hook",
    "register_state_dict_pre_hook",
    "requires_grad_",
    "set_extra_state",
    "set_submodule",
    "share_memory",
    "state_dict",
    "to",
    "to_empty",
    "train",
    "training",
    "type",
    "xpu",
    "zero_grad",
]

ATTRIBUTE = {
    **{n: "a member of torch.nn.Module" for n in NN_MODULE},
    "input_shape": "archc's class attribute giving the input shape",
}
ATTRIBUTE_PREFIXES = {"_": "nn.Module keeps its private state in `_` attributes"}

RESERVED = {
    "module": MODULE,
    "parameter": {**MODULE, **PARAMETER},
    "variable": {**MODULE, **VARIABLE},
    "attribute": ATTRIBUTE,
}
PREFIXES = {"attribute": ATTRIBUTE_PREFIXES}

# forms that meet in one scope: classes are built in `__init__`, beside its
# parameters; `forward`'s variables see neither
CLASHES = {("module", "module"), ("module", "parameter")}


def forms(kind: str, name: str) -> list[tuple[str, str, str]]:
    """(form, text in the module, what it is there) for a declared name."""
    from backends.common import camel

    if kind in ("model", "block"):
        c = camel(name)
        out = [("module", c, f"the PyTorch class `{c}`")]
        if kind == "block":  # its instances' default names: `self.<snake>1`, ...
            from archc.passes.expand import snake

            out.append(
                (
                    "attribute",
                    snake(name) + "1",
                    f"submodules `self.{snake(name)}1`, ... of its instances",
                )
            )
        return out
    if kind == "parameter":
        return [("parameter", name, f"the PyTorch `__init__` parameter `{name}`")]
    if kind == "node":
        return [
            ("attribute", name, f"the PyTorch submodule `self.{name}`"),
            ("attribute", f"{name}_pad", f"the PyTorch submodule `self.{name}_pad`"),
            ("variable", name, f"the PyTorch local variable `{name}`"),
        ]
    raise AssertionError(kind)
