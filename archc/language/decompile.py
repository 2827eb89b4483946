"""Printing an inferred IR Model as the .cnn spec a careful person would write.

`spec_text(model)` is the inverse of compiling: `compile(spec_text(m))` has the
same graph as `m` (archc/ir/model.py `same_graph`: the same nodes in the same
order, kinds, fields, inputs and shapes; only names may differ), and printing is
idempotent. It reads the bare graph only (the node list and its inputs; the
block metadata and scopes of a compiled spec are ignored), so it works the same
on a model an importer built from Keras or PyTorch:

1. structure: the nodes are read in order into chains of layers, merges whose
   branches are series-parallel (`add { ... | ... }`, each branch's layers in the
   order the graph lists them), and references `@name` where a tensor is read
   out of that order (U-Net's skips, DenseNet's concatenations);
2. repetition: runs between single-tensor cut points that share a structural
   signature become `block` definitions whose varying fields are parameters;
3. names: a node's name is kept (`as NAME`) where the language accepts it as a
   name; a tensor read by a reference is named (its own name, or `t1`, `t2`...).

Each kind's call text is its speller in archc/language/bind.py, next to its binder.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from archc.ir import Model
from archc.ir.kinds import KINDS
from archc.language.bind import SPELLERS, spell

MERGES = ("add", "concat", "mul")
WIDTH = 100  # a line of layers is wrapped before this many characters
INDENT = "    "
# the names archc generates (c1, bottleneck1.c2, flatten): printed they would
# clash with the names the compiler gives other nodes
PREFIXES = "|".join(sorted({k.prefix for k in KINDS.values()}, key=len, reverse=True))
GENERATED = re.compile(rf"^({PREFIXES})[0-9]+$")


# ---------------------------------------------------------------------------
# The structure: items of a sequence
# ---------------------------------------------------------------------------


@dataclass
class Layer:
    index: int  # the node


@dataclass
class Ref:
    index: int  # `@name`: continue from this node's output


@dataclass
class Merge:
    index: int  # the merge node
    branches: list[list] = field(default_factory=list)  # each a list of items


Item = Layer | Ref | Merge


class Graph:
    """The node list with the indices the structure needs."""

    def __init__(self, model: Model):
        self.model = model
        self.nodes = list(model.nodes)
        self.pos = {n.name: i for i, n in enumerate(self.nodes)}
        if self.nodes[0].kind != "input" or any(n.kind == "input" for n in self.nodes[1:]):
            raise ValueError("a model has exactly one input, its first node")
        if self.pos[model.output] != len(self.nodes) - 1:
            raise ValueError("the output must be the last node")
        self.ins = [tuple(self.pos[x] for x in n.inputs) for n in self.nodes]
        self.users: list[list[int]] = [[] for _ in self.nodes]
        for i, ins in enumerate(self.ins):
            for j in ins:
                if j >= i:
                    raise ValueError(f"`{self.nodes[i].name}` reads a later node")
                if i not in self.users[j]:
                    self.users[j].append(i)
        # cut[i]: the first index >= i after which only node `index`'s output is live
        last = [max(u) if u else i for i, u in enumerate(self.users)]
        self.cut_after = []
        reach = -1
        for i in range(len(self.nodes)):
            self.cut_after.append(reach <= i)
            reach = max(reach, last[i])

    def kind(self, i: int) -> str:
        return self.nodes[i].kind


def structure(g: Graph, start: int, lo: int, hi: int) -> list:
    """The items that make nodes lo..hi-1 in order, starting from node `start`'s
    output (as series-parallel as the order allows; references elsewhere)."""
    items: list = []
    cur = start
    i = lo
    while i < hi:
        chained = g.kind(i) not in MERGES and g.ins[i] == (cur,)
        if not chained or len(g.users[cur]) > 1:
            made = merge_region(g, cur, i, hi)
            if made is not None:
                items.append(made)
                cur = made.index
                i = made.index + 1
                continue
        if g.kind(i) in MERGES:
            items.append(Merge(i, [[] if j == cur else [Ref(j)] for j in g.ins[i]]))
        else:
            if g.ins[i] != (cur,):
                items.append(Ref(g.ins[i][0]))
            items.append(Layer(i))
        cur = i
        i += 1
    return items


def merge_region(g: Graph, cur: int, lo: int, hi: int) -> Merge | None:
    """A merge whose branches are nodes lo..m-1 in order, each from `cur`."""
    for m in range(lo, hi):
        if g.kind(m) in MERGES:
            branches = branch_spans(g, cur, lo, m)
            if branches is not None:
                return Merge(
                    m,
                    [[] if span is None else structure(g, cur, *span) for span in branches],
                )
        if m > lo and g.cut_after[m]:
            break  # nothing from before `m` reaches past it but m itself
    return None


def branch_spans(g: Graph, cur: int, lo: int, m: int) -> list | None:
    """Per input of merge `m`: None (the tensor before the merge) or the span of
    nodes (a, b) that makes it; None if they do not cover lo..m-1 in order, or a
    branch reads another's nodes."""
    spans: list = []
    at = lo
    for j in g.ins[m]:
        if j == cur:
            spans.append(None)
            continue
        if not at <= j < m:
            return None
        spans.append((at, j + 1))
        at = j + 1
    if at != m:
        return None
    for span in spans:
        if span is None:
            continue
        a, b = span
        for k in range(a, b):
            if any(lo <= j < a for j in g.ins[k]) or any(b <= u < m for u in g.users[k]):
                return None  # reads or is read by another branch: not visible there
    return spans


# ---------------------------------------------------------------------------
# Names
# ---------------------------------------------------------------------------


def name_problem(name: str) -> str | None:
    """Why the compiler would refuse `name` for a layer (its own rule), or None."""
    from archc.passes.expand import identifier_problem  # the compiler's one rule

    return identifier_problem(name, "node")


def model_name(name: str) -> str:
    text = re.sub(r"\W", "_", name.encode("ascii", "replace").decode()).strip("_") or "imported"
    if text[0].isdigit():
        text = "net_" + text
    for candidate in (text, f"{text}_net", "imported"):
        from archc.passes.expand import identifier_problem

        if identifier_problem(candidate, "model") is None:
            return candidate
    raise AssertionError(text)


def usable(name: str, taken: set[str]) -> bool:
    return (
        name not in taken
        and not GENERATED.match(name)
        and name not in ("flatten", "input")
        and name_problem(name) is None
    )


# ---------------------------------------------------------------------------
# Printing
# ---------------------------------------------------------------------------


class Printer:
    def __init__(self, g: Graph, names: dict[int, str]):
        self.g = g
        self.names = names  # node -> the name written with `as`

    def unit(self, item) -> str:
        if isinstance(item, Ref):
            return f"@{self.names[item.index]}" if item.index else "@input"
        text = spell(self.g.nodes[item.index]) if isinstance(item, Layer) else ""
        if isinstance(item, Merge):
            text = self.merge_inline(item)
        if item.index in self.names:
            text += f" as {self.names[item.index]}"
        return text

    def merge_inline(self, m: Merge) -> str:
        kw = spell(self.g.nodes[m.index])
        return f"{kw} {{ " + " | ".join(" ".join(self.units(b)) for b in m.branches) + " }"

    def units(self, items: list) -> list[str]:
        return [self.unit(it) for it in items] or ["identity"]  # the tensor before the merge

    def lines(self, items: list, depth: int) -> list[str]:
        """Layers joined on lines up to WIDTH; a merge on its own line(s)."""
        pad = INDENT * depth
        out: list[str] = []
        line = ""
        for it in items:
            if isinstance(it, Merge):
                if line:
                    out.append(pad + line)
                    line = ""
                text = self.unit(it)
                if len(pad) + len(text) <= WIDTH and "\n" not in text:
                    out.append(pad + text)
                else:
                    out.extend(self.merge_block(it, depth))
                continue
            text = self.unit(it)
            if line and len(pad) + len(line) + 1 + len(text) > WIDTH:
                out.append(pad + line)
                line = ""
            line = f"{line} {text}" if line else text
        if line:
            out.append(pad + line)
        return out

    def merge_block(self, m: Merge, depth: int) -> list[str]:
        pad = INDENT * depth
        out = [pad + spell(self.g.nodes[m.index]) + " {"]
        for k, branch in enumerate(m.branches):
            body = self.lines(branch, depth + 1) or [pad + INDENT + "identity"]
            if k:
                first = body[0]
                body[0] = pad + "  | " + first[len(pad) + len(INDENT) :]
            out.extend(body)
        close = pad + "}"
        if m.index in self.names:
            close += f" as {self.names[m.index]}"
        out.append(close)
        return out


def refs(items: list, into: set[int]) -> set[int]:
    for it in items:
        if isinstance(it, Ref):
            into.add(it.index)
        elif isinstance(it, Merge):
            for b in it.branches:
                refs(b, into)
    return into


def spec_text(model: Model, header: str = "") -> str:
    """The spec of `model`: `header` as `# ` comment lines, `model NAME`, `input`,
    the block definitions, the body."""
    missing = sorted({n.kind for n in model.nodes} - set(SPELLERS))
    if missing:
        raise ValueError(f"no speller for {', '.join(missing)}")
    g = Graph(model)
    items = structure(g, 0, 1, len(g.nodes))
    names = assign_names(g, refs(items, set()))
    p = Printer(g, names)
    out = [f"# {line}".rstrip() for line in header.splitlines()]
    out += [f"model {model_name(model.name)}", spell(g.nodes[0]), ""]
    out += p.lines(items, 0)
    return "\n".join(out) + "\n"


def assign_names(g: Graph, referenced: set[int]) -> dict[int, str]:
    """Each node's own name where it is usable; a made-up one (`t1`) for a tensor a
    reference reads whose own name is not."""
    names: dict[int, str] = {}
    taken: set[str] = {"input"}
    for i, n in enumerate(g.nodes[1:], 1):
        if usable(n.name, taken):
            names[i] = n.name
            taken.add(n.name)
    k = 0
    for i in sorted(referenced):
        if i == 0 or i in names:
            continue
        while True:
            k += 1
            if usable(f"t{k}", taken):
                break
        names[i] = f"t{k}"
        taken.add(names[i])
    return names


# ---------------------------------------------------------------------------
# Mapping the names of two models with the same graph
# ---------------------------------------------------------------------------


def names(model_from_spec: Model, imported: Model) -> dict[str, str]:
    """Each imported node's name -> the name the printed spec compiles it to. The
    two graphs list the same nodes in the same order (same_graph), so the mapping
    is by position."""
    from archc.ir.model import same_graph

    diffs = same_graph(model_from_spec, imported)
    if diffs:
        raise ValueError("the graphs differ: " + "; ".join(diffs[:3]))
    return {b.name: a.name for a, b in zip(model_from_spec.nodes, imported.nodes, strict=True)}
