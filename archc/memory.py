"""Memory of a model in training and inference, from the IR alone (no framework).

What is counted, in bytes, for a batch of `batch` samples:

- parameters: every parameter and statistic (trainable and not) in float32. For
  mixed precision (`bfloat16`, `float16`) these are the float32 master weights, and
  `low_precision_weights` adds a 2-byte copy of each trainable parameter (what
  autocast casts them to for the forward pass);
- gradients: one float32 value per trainable parameter;
- optimizer state, as torch.optim keeps it after a step: SGD none; SGD with
  momentum one float32 buffer per trainable parameter; Adam and AdamW two (first
  and second moments) plus a step count, one float32 scalar per trainable tensor;
  RMSprop (without momentum, not centred) one plus the step count;
- activations kept for the backward pass: the tensors each layer's kind says its
  backward keeps (`Node.kept`, archc/ir/kinds.py: what PyTorch's autograd saves for
  the generated code; nothing for the layers before the first one that learns,
  which autograd does not record), each distinct tensor once (a tensor kept by two layers, a
  layer's output that the next keeps as its input, is counted once; a view shares
  its input's memory), at 4 bytes per value for float32 and 2 for the low
  precisions (as if every layer ran in it; autocast keeps a few, softmax on a GPU,
  in float32); statistics and indices at their own size;
- the inference peak: the largest set of activations alive at once when the layers
  run in order, each tensor freed after its last reader (the input included, the
  output kept), in `dtype`, plus the weights in `dtype`.

Not counted: the framework's workspace (cuDNN, the allocator's rounding and
caching), the loss, the data pipeline, and temporaries inside one layer.
"""

from __future__ import annotations

from dataclasses import dataclass

from archc.ir import Model
from archc.ir.kinds import size

DTYPES = {"float32": 4, "bfloat16": 2, "float16": 2}
# optimizer -> (float32 values per trainable parameter, float32 scalars per trainable tensor)
OPTIMIZERS = {
    "sgd": (0, 0),
    "sgd_momentum": (1, 0),
    "adam": (2, 1),
    "adamw": (2, 1),
    "rmsprop": (1, 1),
}
OPTIMIZER_TEXT = {
    "sgd": "SGD: no state",
    "sgd_momentum": "SGD with momentum: one buffer per parameter",
    "adam": "Adam: two moments per parameter and a step count per tensor",
    "adamw": "AdamW: two moments per parameter and a step count per tensor",
    "rmsprop": "RMSprop: a mean square per parameter and a step count per tensor",
}


@dataclass(frozen=True)
class Memory:
    batch: int
    dtype: str
    optimizer: str
    parameters: int
    low_precision_weights: int
    gradients: int
    optimizer_state: int
    activations: int  # kept for the backward pass
    kept_by_node: dict[str, int]  # the bytes of `activations` each node keeps first
    inference_peak: int  # activations alive at once
    inference_weights: int

    @property
    def training(self) -> int:
        return (
            self.parameters
            + self.low_precision_weights
            + self.gradients
            + self.optimizer_state
            + self.activations
        )

    @property
    def inference(self) -> int:
        return self.inference_peak + self.inference_weights

    def as_dict(self) -> dict:
        return {
            "batch": self.batch,
            "dtype": self.dtype,
            "optimizer": self.optimizer,
            "parameters": self.parameters,
            "low_precision_weights": self.low_precision_weights,
            "gradients": self.gradients,
            "optimizer_state": self.optimizer_state,
            "activations_kept": self.activations,
            "training": self.training,
            "inference_peak_activations": self.inference_peak,
            "inference_weights": self.inference_weights,
            "inference": self.inference,
        }


def _storage(model: Model) -> dict[str, str]:
    """Each node -> the node whose memory its output is (itself, or for a view the
    tensor it views)."""
    base: dict[str, str] = {}
    for n in model.nodes:
        view = n.inputs and n.is_view(list(n.in_shapes))
        base[n.name] = base[n.inputs[0]] if view else n.name
    return base


def trainable_tensors(model: Model) -> int:
    """How many trainable parameter tensors the model has (Adam keeps a step count each)."""
    return sum(1 for n in model.nodes for w in n.weights(list(n.in_shapes)) if w.trainable)


def estimate(model: Model, batch: int, dtype: str, optimizer: str) -> Memory:
    """The memory of `model` (see the module's docstring for what is counted)."""
    if dtype not in DTYPES or optimizer not in OPTIMIZERS:
        raise ValueError(f"unknown dtype {dtype!r} or optimizer {optimizer!r}")
    act = DTYPES[dtype]
    nodes = {n.name: n for n in model.nodes}
    base = _storage(model)
    per_value, per_tensor = OPTIMIZERS[optimizer]

    kept: dict[object, int] = {}  # tensor -> bytes, each once
    by_node: dict[str, int] = {}
    learns: dict[str, bool] = {}  # whether a gradient flows back through the node
    for n in model.nodes:
        first = 0
        trains = any(w.trainable for w in n.weights(list(n.in_shapes)))
        learns[n.name] = trains or any(learns[i] for i in n.inputs)
        # autograd records nothing where no input needs a gradient and the layer has
        # no trainable parameters (layers before the first one that learns)
        items = n.kept(list(n.in_shapes), n.out_shape) if learns[n.name] else ()
        for k, item in enumerate(items):
            itemsize = act if item.itemsize is None else item.itemsize
            if item.tensor == "":
                key: object = (n.name, k)
                nbytes = item.elements * itemsize
            else:
                name = n.name if item.tensor == "out" else n.inputs[int(item.tensor[2:])]
                key = base[name]
                nbytes = size(nodes[key].out_shape) * itemsize
            if not item.per_sample:  # the same for any batch
                kept[key] = nbytes
                first += nbytes
            elif key not in kept:
                kept[key] = batch * nbytes
                first += batch * nbytes
        by_node[n.name] = first

    return Memory(
        batch=batch,
        dtype=dtype,
        optimizer=optimizer,
        parameters=4 * model.params,
        low_precision_weights=0 if dtype == "float32" else 2 * model.trainable,
        gradients=4 * model.trainable,
        optimizer_state=4 * (per_value * model.trainable + per_tensor * trainable_tensors(model)),
        activations=sum(kept.values()),
        kept_by_node=by_node,
        inference_peak=batch * act * _peak_elements(model, base),
        inference_weights=act * model.params,
    )


def _peak_elements(model: Model, base: dict[str, str]) -> int:
    """The most activation values alive at once, running the layers in order: a
    tensor lives from its layer until its last reader has run (the output to the end)."""
    sizes = {n.name: size(n.out_shape) for n in model.nodes}
    last: dict[str, int] = {}
    for i, n in enumerate(model.nodes):
        for name in n.inputs:
            last[base[name]] = i
    last[base[model.output]] = len(model.nodes)
    freed_at: dict[int, list[str]] = {}
    for name, i in last.items():
        freed_at.setdefault(i, []).append(name)
    live = peak = 0
    for i, n in enumerate(model.nodes):
        own = base[n.name] == n.name
        if own:
            live += sizes[n.name]
        peak = max(peak, live)
        if own and n.name not in last:
            live -= sizes[n.name]  # read by nothing
        for name in freed_at.get(i, ()):
            live -= sizes[name]
    return peak
