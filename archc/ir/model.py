"""The IR: an immutable, typed graph of layer nodes (archc/ir/kinds.py).

`Model` is what every later stage reads: the report, the JSON dump (`archc ir
--json`, loaded back equal), and the backends. Nodes are listed in topological
order; each names its inputs. Block structure is kept: every node records the
block-instance path it belongs to (`scope`), and `blocks` lists the instances
with the block's name and arguments, so a generator can emit one class per block.
"""

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, PlainValidator, PrivateAttr, SerializeAsAny

from archc.ir.kinds import KINDS, Loc, Node
from archc.ir.training import TrainingConfig


def _node(value: Any) -> Node:
    """A node of whichever kind it names, looked up in `KINDS` when the value is
    read (so a kind registered after this module is imported is an IR kind too)."""
    if isinstance(value, Node):
        return value
    if not isinstance(value, dict) or value.get("kind") not in KINDS:
        kind = value.get("kind") if isinstance(value, dict) else type(value).__name__
        raise ValueError(f"unknown layer kind {kind!r} (known: {', '.join(sorted(KINDS))})")
    return KINDS[value["kind"]].model_validate(value)


IRNode = Annotated[SerializeAsAny[Node], PlainValidator(_node)]
ArgValue = bool | int | float | str | list[bool | int | float | str]


class BlockParam(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)
    name: str
    default: str | None = None  # the default as written, e.g. "3" or "ch*4"


class BlockDefinition(BaseModel):
    model_config = ConfigDict(frozen=True, defer_build=True)
    name: str
    params: tuple[BlockParam, ...]
    loc: Loc
    # the arithmetic its body writes with its parameters, as written (`4*filters`):
    # generated code computes a value from the parameters the same way
    exprs: tuple[str, ...] = ()


class BlockInstance(BaseModel):
    """One expansion of a block: `path` is the scope its nodes carry."""

    model_config = ConfigDict(frozen=True, defer_build=True)
    path: str
    block: str
    args: dict[str, ArgValue]
    loc: Loc | None = None


class Model(BaseModel):
    # The schema of the whole-graph union is built on first use (JSON load and
    # dump), not at import: `archc report` never needs it.
    model_config = ConfigDict(frozen=True, extra="forbid", defer_build=True)

    name: str
    source: str
    input_shape: tuple[int, ...]
    nodes: tuple[IRNode, ...]
    output: str
    blocks: tuple[BlockInstance, ...] = ()
    block_defs: tuple[BlockDefinition, ...] = ()
    training: TrainingConfig | None = None
    # How each merge's branches were written, for the diagnostics of inference
    # only (not a field: not in the JSON form): merge node -> per branch, the
    # tensor it starts from and, where it starts at a reference `@name`, a
    # sentence saying where the reference and the name are written.
    _branches: dict[str, tuple[tuple[str, str | None], ...]] = PrivateAttr(default_factory=dict)
    # The nodes that read a tensor through a reference `@name` -> that name, as
    # the report shows them (`conv(...) ← @enc1`); also not in the JSON form.
    _skips: dict[str, str] = PrivateAttr(default_factory=dict)

    def __eq__(self, other: object) -> bool:
        """The same graph: the private notes above (which the JSON form leaves out)
        are not compared, so a model loaded back from JSON equals the compiled one."""
        if not isinstance(other, Model):
            return NotImplemented
        return self.__dict__ == other.__dict__

    def node(self, name: str):
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.node(self.output).out_shape

    @property
    def trainable(self) -> int:
        return sum(n.trainable for n in self.nodes)

    @property
    def nontrainable(self) -> int:
        return sum(n.nontrainable for n in self.nodes)

    @property
    def params(self) -> int:
        return self.trainable + self.nontrainable

    @property
    def macs(self) -> int:
        return sum(n.macs for n in self.nodes)

    @property
    def activation_elements(self) -> int:
        """Elements of every node's output for batch 1 (input excluded)."""
        total = 0
        for n in self.nodes:
            if n.kind == "input":
                continue
            size = 1
            for d in n.out_shape:
                size *= d
            total += size
        return total


def same_graph(a: Model, b: Model) -> list[str]:
    """The differences between two inferred graphs, ignoring node names, scopes,
    locations and block metadata: the same nodes in the same order, of the same
    kind with the same fields, reading the same inputs (by position), with the
    same shapes and counts. An empty list: the same graph."""
    out: list[str] = []
    if a.input_shape != b.input_shape:
        out.append(f"input {a.input_shape} != {b.input_shape}")
    if len(a.nodes) != len(b.nodes):
        out.append(f"{len(a.nodes)} nodes != {len(b.nodes)} nodes")
    pos_a = {n.name: i for i, n in enumerate(a.nodes)}
    pos_b = {n.name: i for i, n in enumerate(b.nodes)}
    if pos_a.get(a.output) != pos_b.get(b.output):
        out.append(f"the output is node {pos_a.get(a.output)} != {pos_b.get(b.output)}")
    ignored = {"name", "inputs", "scope", "loc"}
    for i, (x, y) in enumerate(zip(a.nodes, b.nodes, strict=False)):
        where = f"node {i} (`{x.name}` / `{y.name}`)"
        if x.kind != y.kind:
            out.append(f"{where}: kind {x.kind} != {y.kind}")
            continue
        ins_x = tuple(pos_a.get(n) for n in x.inputs)
        ins_y = tuple(pos_b.get(n) for n in y.inputs)
        if ins_x != ins_y:
            out.append(f"{where}: reads nodes {ins_x} != {ins_y}")
        fx, fy = x.model_dump(exclude=ignored), y.model_dump(exclude=ignored)
        for key in sorted(fx.keys() | fy.keys()):
            if fx.get(key) != fy.get(key):
                out.append(f"{where}: {key} {fx.get(key)!r} != {fy.get(key)!r}")
    return out
