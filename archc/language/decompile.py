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
2. repetition: the top-level items are cut into runs where the names' block
   prefix changes (Keras's `conv2_block1_`), or, without names, around each sum
   and concatenation; runs that share a structure (kinds, wiring, the fields
   that are not numbers) become instances of a `block` whose varying numbers are
   parameters named after their field (`filters`, `k`, `s`), a multiple of one
   written so (`4*filters`), identical unnamed instances in a row as `xN`;
3. names: a node's name is kept (`as NAME`) where the language accepts it as a
   name, an instance is named after its layers' common prefix, a name inside a
   block body is kept where it is the same in every instance; a tensor read by a
   reference is named (its own name, or `t1`, `t2`...).

The printed spec's nodes are the model's nodes in the same order, so the names
it compiles to map to the model's by position (`names`).

Each kind's call text is its speller in archc/language/bind.py, next to its binder.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from archc.ir import Model
from archc.ir.kinds import KINDS, Node
from archc.language.bind import SPELLERS, spell

MERGES = ("add", "concat", "mul")
BASE_FIELDS = set(Node.model_fields)
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


class Graph:
    """The node list with the indices the structure needs."""

    def __init__(self, model: Model):
        self.nodes = list(model.nodes)
        self.pos = {n.name: i for i, n in enumerate(self.nodes)}
        if self.nodes[0].kind != "input" or any(n.kind == "input" for n in self.nodes[1:]):
            raise ValueError("a model has exactly one input, its first node")
        if self.pos[model.output] != len(self.nodes) - 1:
            raise ValueError("the output must be the last node")
        self.ins = [tuple(self.pos[x] for x in n.inputs) for n in self.nodes]
        self.model_class = model_name(model.name).replace("_", "").lower()
        self.derived = derived_names(n.name for n in self.nodes)  # see `usable`
        self.users: list[list[int]] = [[] for _ in self.nodes]
        for i, ins in enumerate(self.ins):
            for j in ins:
                if j >= i:
                    raise ValueError(f"`{self.nodes[i].name}` reads a later node")
                if i not in self.users[j]:
                    self.users[j].append(i)
        # cut_after[i]: nothing before node i is read after it (only i's output is live)
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


def name_problem(name: str, kind: str = "node") -> str | None:
    """Why compiling would refuse `name` as a `kind` (node, model, block,
    parameter), or None. The printer asks the compiler's own rule (which asks the
    backends, backends/names.py) rather than restating it; it is imported when a
    spec is printed, so importing the language package still loads only the IR."""
    from archc.passes.expand import identifier_problem

    return identifier_problem(name, kind)


def model_name(name: str) -> str:
    text = re.sub(r"\W", "_", name.encode("ascii", "replace").decode()).strip("_") or "imported"
    if text[0].isdigit():
        text = "net_" + text
    for candidate in (text, f"{text}_net", "imported"):
        if name_problem(candidate, "model") is None:
            return candidate
    raise AssertionError(text)


# the functions the printer's block names become (`Residual2` -> `residual2`)
BLOCK_FUNCTIONS = re.compile(r"^(residual|mixed|gated|stage)[0-9]*$")


def usable(name: str, taken: set[str], derived: set[str]) -> bool:
    """`name` can be kept: the compiler accepts it, and it is not the name another
    node of its scope (one of `derived`'s owners, or a name the compiler makes up)
    also takes in generated code (`conv_pad`, PyTorch's padding helper of `conv`)."""
    return (
        name not in taken
        and not GENERATED.match(name)
        and not BLOCK_FUNCTIONS.match(name)
        and name not in ("flatten", "input")
        and name not in derived
        and not derived_from_generated(name)
        and name_problem(name) is None
    )


def derived_names(names) -> set[str]:
    """Every name other than their own that nodes called `names` take in generated
    code (backends/names.py, the compiler's rule for E211)."""
    from backends.names import derived_node_names

    return {text for name in names for text in derived_node_names(name)}


def derived_from_generated(name: str) -> bool:
    """`name` is what a node the compiler names (`c1`) also becomes (`c1_pad`)."""
    return any(
        GENERATED.match(name[:k]) and name in derived_names([name[:k]]) for k in range(1, len(name))
    )


# ---------------------------------------------------------------------------
# Repetition: runs of items that share a structure become block instances
# ---------------------------------------------------------------------------

BOUNDARY = re.compile(r"^(.*[_.])")
# a block parameter is named after the field it sets
PARAM_NAMES = {
    "filters": "filters",
    "units": "units",
    "kernel": "k",
    "stride": "s",
    "padding": "pad",
    "rate": "rate",
    "groups": "groups",
    "multiplier": "multiplier",
    "shape": "dim",
    "pad": "pad",
    "crop": "crop",
    "factor": "factor",
    "size": "size",
    "dilation": "dilation",
    "epsilon": "eps",
    "init": "scale",
}

# fields whose parameters may be written with each other's (`4*filters`,
# `Reshape(1, 1, filters)`): channel counts
FAMILIES = {"filters": "channels", "units": "channels", "shape": "channels"}


@dataclass
class Instance:
    block: BlockDef
    args: tuple
    items: list  # the items it stands for
    lo: int  # its nodes are lo..hi-1
    hi: int
    alias: str | None = None
    count: int = 1  # `xN`: this many identical instances in a row


@dataclass
class BlockDef:
    name: str
    params: list[str]
    items: list  # the first instance's items
    texts: dict[int, str]  # node of the first instance -> its call, with the parameters
    local: dict[int, str]  # node of the first instance -> its name in the body


def label(g: Graph, lo: int, hi: int, hidden: frozenset[int] = frozenset()) -> str:
    """The common prefix of the names of nodes lo..hi-1, up to its last `_` or `.`
    (a `hidden` node's name counts as empty: the spec will not keep it)."""
    names = [("" if i in hidden else g.nodes[i].name) for i in range(lo, hi)]
    first, last = min(names), max(names)
    k = 0
    while k < min(len(first), len(last)) and first[k] == last[k]:
        k += 1
    m = BOUNDARY.match(first[:k])
    return m.group(1) if m else ""


def span(items: list) -> tuple[int, int]:
    """The nodes a run of items makes: lo..hi-1 (the structure keeps their order)."""
    idx = [i for it in items for i in nodes_of(it)]
    return min(idx), max(idx) + 1


def nodes_of(item) -> list[int]:
    if isinstance(item, Layer):
        return [item.index]
    if isinstance(item, Merge):
        return [i for b in item.branches for it in b for i in nodes_of(it)] + [item.index]
    return []


def split_units(g: Graph, items: list, hidden: frozenset[int]) -> list[list]:
    """The top-level items cut into runs: where the names' block prefixes change
    (Keras's `conv2_block1_`, `block_3_`), or, where names say nothing, around
    each sum or concatenation (with the activations right after it: ResNet's
    `add { ... } A(relu)`). A reference stays with the item it leads to."""
    groups: list[list] = []  # items with their references
    pending: list = []
    for it in items:
        pending.append(it)
        if not isinstance(it, Ref):
            groups.append(pending)
            pending = []
    if pending:
        groups[-1].extend(pending)
    labels = [label(g, *span(grp), hidden) for grp in groups]
    units: list[list] = []
    for k, grp in enumerate(groups):
        if k == 0:
            units.append(list(grp))
            continue
        a, b = labels[k - 1], labels[k]
        if a and b:  # both named: a run ends where the common prefix is shorter
            m = BOUNDARY.match(os.path.commonprefix([a, b]))
            cut = len(m.group(1) if m else "") < min(len(a), len(b))
        elif a or b:
            cut = True
        else:  # nothing in the names: a sum or concatenation is a run of its own
            cut = (
                joins(g, grp[-1])
                or (joins(g, units[-1][-1]) and not isinstance(grp[-1], Layer))
                or (
                    isinstance(grp[-1], Layer)
                    and g.kind(grp[-1].index) != "activation"
                    and any(joins(g, it) for it in units[-1])
                )
            )
        if cut:
            units.append(list(grp))
        else:
            units[-1].extend(grp)
    return units


def joins(g: Graph, item) -> bool:
    """A sum or a concatenation: where a residual block, a dense layer or an
    Inception module ends (a product is a gate inside one: squeeze-excitation)."""
    return isinstance(item, Merge) and g.kind(item.index) in ("add", "concat")


def fields_of(node) -> list[str]:
    return [f for f in type(node).model_fields if f not in BASE_FIELDS]


def numeric(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def node_signature(g: Graph, i: int, lo: int):
    n = g.nodes[i]
    sig: list = [n.kind, tuple(j - lo if j >= lo else "in" for j in g.ins[i])]
    for f in fields_of(n):
        v = getattr(n, f)
        if numeric(v):
            sig.append((f, type(v).__name__))
        elif isinstance(v, tuple) and v and all(numeric(x) for x in v):
            sig.append((f, "tuple", len(v), tuple(type(x).__name__ for x in v)))
        else:
            sig.append((f, repr(v)))
    return tuple(sig)


def unit_signature(g: Graph, items: list, lo: int):
    out = []
    for it in items:
        if isinstance(it, Ref):
            out.append(("ref", it.index - lo if it.index >= lo else "out"))
        elif isinstance(it, Layer):
            out.append(node_signature(g, it.index, lo))
        else:
            branches = tuple(unit_signature(g, b, lo) for b in it.branches)
            out.append(("merge", node_signature(g, it.index, lo), branches))
    return tuple(out)


def blockable(g: Graph, items: list, lo: int, hi: int) -> bool:
    """A run can be a block: it starts from the tensor before it, reads nothing
    from outside but that, and only its last node is read after it."""
    if isinstance(items[0], Ref) or hi - lo < 2:
        return False
    for i in range(lo, hi - 1):
        if any(u >= hi for u in g.users[i]):
            return False
    refs_in: set[int] = set()
    refs(items, refs_in)
    if any(r < lo for r in refs_in):
        return False
    start = {j for i in range(lo, hi) for j in g.ins[i] if j < lo}
    return len(start) <= 1


def components(g: Graph, lo: int, hi: int) -> list[tuple[int, str, int, object]]:
    """(position, field, component, value) of every number the nodes lo..hi-1 hold."""
    out = []
    for i in range(lo, hi):
        n = g.nodes[i]
        for f in fields_of(n):
            v = getattr(n, f)
            if numeric(v):
                out.append((i - lo, f, -1, v))
            elif isinstance(v, tuple) and v and all(numeric(x) for x in v):
                out.extend((i - lo, f, k, x) for k, x in enumerate(v))
    return out


SENTINEL = 7_000_001  # a value no layer holds, replaced by a parameter in the text


def make_block(g: Graph, name: str, units: list[tuple[list, int, int]]) -> list[Instance]:
    """The block the runs `units` (items, lo, hi) are instances of: the numbers
    that vary become parameters (a multiple of an earlier one is written so)."""
    comps = [components(g, lo, hi) for _, lo, hi in units]
    params: list[str] = []
    vectors: list[tuple] = []
    families: list[str] = []
    exprs: dict[tuple, str] = {}  # (position, field, component) -> expression
    for k, (pos, f, c, _) in enumerate(comps[0]):
        vec = tuple(cs[k][3] for cs in comps)
        if len(set(vec)) == 1:
            continue
        family = FAMILIES.get(f, f)
        expr = None
        for p, pv, fam in zip(params, vectors, families, strict=True):
            if fam != family:
                continue
            if pv == vec:
                expr = p
                break
            if all(isinstance(x, int) for x in vec + pv):
                if all(q and v % q == 0 for v, q in zip(vec, pv, strict=True)):
                    ratios = {v // q for v, q in zip(vec, pv, strict=True)}
                    if len(ratios) == 1:
                        expr = f"{ratios.pop()}*{p}"
                        break
                if all(v and q % v == 0 for v, q in zip(vec, pv, strict=True)):
                    ratios = {q // v for v, q in zip(vec, pv, strict=True)}
                    if len(ratios) == 1:
                        expr = f"{p}//{ratios.pop()}"
                        break
        if expr is None:
            expr = fresh_param(PARAM_NAMES.get(f, f), params)
            params.append(expr)
            vectors.append(vec)
            families.append(family)
        exprs[(pos, f, c)] = expr
    items0, lo0, hi0 = units[0]
    texts = {i: templated(g.nodes[i], i - lo0, exprs) for i in range(lo0, hi0)}
    local = local_names(g, units, set(params))
    block = BlockDef(name, params, items0, texts, local)
    return [
        Instance(block, tuple(vec[k] for vec in vectors), items, lo, hi)
        for k, (items, lo, hi) in enumerate(units)
    ]


def fresh_param(family: str, params: list[str]) -> str:
    base = family if name_problem(family, "parameter") is None else "v"
    name, k = base, 1
    while name in params:
        k += 1
        name = f"{base}{k}"
    return name


def templated(node, pos: int, exprs: dict[tuple, str]) -> str:
    """The node's call with the parameters in place of the numbers they set."""
    update: dict = {}
    subs: dict[str, str] = {}
    for f in fields_of(node):
        v = getattr(node, f)
        if numeric(v) and (pos, f, -1) in exprs:
            update[f], text = sentinel(v, len(subs))
            subs[text] = exprs[(pos, f, -1)]
        elif isinstance(v, tuple) and any((pos, f, k) in exprs for k in range(len(v))):
            comps = list(v)
            for k, x in enumerate(v):
                if (pos, f, k) in exprs:
                    e = exprs[(pos, f, k)]
                    known = [t for t, ex in subs.items() if ex == e]
                    if known:
                        comps[k] = float(known[0]) if isinstance(x, float) else int(known[0])
                    else:
                        comps[k], text = sentinel(x, len(subs))
                        subs[text] = e
            update[f] = tuple(comps)
    text = spell(node.model_copy(update=update))
    for token, expr in sorted(subs.items(), key=lambda kv: -len(kv[0])):
        wrapped = f"({expr})" if not expr.isidentifier() else expr
        text = re.sub(rf"\b([sp]){re.escape(token)}\b", rf"\1({expr})", text)
        text = re.sub(rf"(?<![\w.]){re.escape(token)}(?![\w.])", wrapped, text)
    return text


def sentinel(value, k: int) -> tuple[int | float, str]:
    if isinstance(value, float):
        v = SENTINEL + k + 0.5
        return v, repr(v)
    return SENTINEL + k, str(SENTINEL + k)


def local_names(g: Graph, units: list[tuple[list, int, int]], params: set[str]) -> dict[int, str]:
    """Names kept inside a block body: the same for every instance once each
    instance's prefix is taken off (`expand`, `project_BN`)."""
    out: dict[int, str] = {}
    taken = set(params)
    _, lo0, hi0 = units[0]
    prefixes = [label(g, lo, hi) for _, lo, hi in units]
    candidates = []
    for p in range(hi0 - lo0):
        locals_ = set()
        for (_, lo, _), pre in zip(units, prefixes, strict=True):
            name = g.nodes[lo + p].name
            locals_.add(name[len(pre) :] if pre and name.startswith(pre) else name)
        candidates.append(locals_)
    derived = derived_names(set().union(*candidates))
    for p, locals_ in enumerate(candidates):
        if len(locals_) == 1:
            (local,) = locals_
            if local and usable(local, taken, derived):
                out[lo0 + p] = local
                taken.add(local)
    return out


def find_blocks(g: Graph, items: list) -> list:
    """The top-level items with repeated runs replaced by block instances. The
    runs are cut where the names change; a node left at the top level whose name
    the spec cannot keep gets a generated one, so its name is not counted, and
    the cut is made again until it holds (the printed spec is then cut the same
    way: printing is idempotent)."""
    hidden: frozenset[int] = frozenset()
    for _ in range(8):
        out = grouped(g, items, hidden)
        flat = [i for it in out if not isinstance(it, Instance) for i in nodes_of(it)]
        again = frozenset(i for i in flat if not usable(g.nodes[i].name, set(), g.derived))
        if again == hidden:
            break
        hidden = again
    return out


def grouped(g: Graph, items: list, hidden: frozenset[int]) -> list:
    units = split_units(g, items, hidden)
    spans = [span(u) for u in units]
    sigs = []
    for u, (lo, hi) in zip(units, spans, strict=True):
        sigs.append(unit_signature(g, u, lo) if blockable(g, u, lo, hi) else None)
    groups: dict = {}
    for k, sig in enumerate(sigs):
        if sig is not None:
            groups.setdefault(sig, []).append(k)
    made: dict[int, Instance] = {}
    taken: set[str] = set()
    for sig, ks in groups.items():
        if len(ks) < 2:
            continue
        name = block_name(g, units[ks[0]], taken)
        taken.add(name)
        insts = make_block(g, name, [(units[k], *spans[k]) for k in ks])
        for k, inst in zip(ks, insts, strict=True):
            made[k] = inst
    out: list = []
    for k, u in enumerate(units):
        out.extend([made[k]] if k in made else u)
    return out


def block_name(g: Graph, items: list, taken: set[str]) -> str:
    """`Residual`, `Mixed` (a concatenation), `Gated` (a product) or `Stage` (no
    kept name is one of their functions' names: `usable`)."""
    kinds = {g.kind(i) for it in items for i in nodes_of(it)}
    base = (
        "Residual"
        if "add" in kinds
        else "Mixed"
        if "concat" in kinds
        else "Gated"
        if "mul" in kinds
        else "Stage"
    )
    name, k = base, 1
    while (
        name in taken
        or name.lower() == g.model_class  # the model's PyTorch class, lower case
        or name_problem(name, "block") is not None
    ):
        k += 1
        name = f"{base}{k}"
    return name


# ---------------------------------------------------------------------------
# Printing
# ---------------------------------------------------------------------------


class Printer:
    def __init__(self, g: Graph, names: dict[int, str], texts: dict[int, str] | None = None):
        self.g = g
        self.names = names  # node -> the name written with `as`
        self.texts = texts or {}  # node -> its call, where not its speller's

    def call(self, i: int) -> str:
        return self.texts.get(i) or spell(self.g.nodes[i])

    def unit(self, item) -> str:
        if isinstance(item, Ref):
            return f"@{self.names[item.index]}" if item.index else "@input"
        if isinstance(item, Instance):
            args = ", ".join(_arg(a) for a in item.args)
            text = f"{item.block.name}({args})" if args else item.block.name
            if item.count > 1:
                text += f" x{item.count}"
            if item.alias:
                text += f" as {item.alias}"
            return text
        text = self.call(item.index) if isinstance(item, Layer) else self.merge_inline(item)
        if item.index in self.names:
            text += f" as {self.names[item.index]}"
        return text

    def merge_inline(self, m: Merge) -> str:
        kw = spell(self.g.nodes[m.index])
        return f"{kw} {{ " + " | ".join(" ".join(self.units(b)) for b in m.branches) + " }"

    def units(self, items: list) -> list[str]:
        return [self.unit(it) for it in items] or ["identity"]  # the tensor before the merge

    def lines(self, items: list, depth: int) -> list[str]:
        """Layers joined on lines up to WIDTH; a merge or an instance on its own line(s)."""
        pad = INDENT * depth
        out: list[str] = []
        line = ""
        for it in items:
            if isinstance(it, (Merge, Instance)):
                if line:
                    out.append(pad + line)
                    line = ""
                text = self.unit(it)
                if len(pad) + len(text) <= WIDTH or isinstance(it, Instance):
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


def _arg(v) -> str:
    return str(v) if isinstance(v, int) else repr(float(v))


def refs(items: list, into: set[int]) -> set[int]:
    for it in items:
        if isinstance(it, Ref):
            into.add(it.index)
        elif isinstance(it, Merge):
            for b in it.branches:
                refs(b, into)
        elif isinstance(it, Instance):
            refs(it.items, into)
    return into


def spec_text(model: Model, header: str = "") -> str:
    """The spec of `model`: `header` as `# ` comment lines, `model NAME`, `input`,
    the block definitions, the body."""
    missing = sorted({n.kind for n in model.nodes} - set(SPELLERS))
    if missing:
        raise ValueError(f"no speller for {', '.join(missing)}")
    g = Graph(model)
    items = find_blocks(g, structure(g, 0, 1, len(g.nodes)))
    top_refs = refs([it for it in items if not isinstance(it, Instance)], set())
    names = assign_names(g, items, top_refs)
    collapse(items)
    out = [f"# {line}".rstrip() for line in header.splitlines()]
    out += [f"model {model_name(model.name)}", spell(g.nodes[0]), ""]
    for block in dict.fromkeys(it.block.name for it in items if isinstance(it, Instance)):
        b = next(it.block for it in items if isinstance(it, Instance) and it.block.name == block)
        inner = refs(b.items, set())
        local = dict(b.local)
        k = 0
        for i in sorted(inner):
            if i not in local:
                k += 1
                while f"t{k}" in local.values() or f"t{k}" in b.params:
                    k += 1
                local[i] = f"t{k}"
        head = f"block {b.name}({', '.join(b.params)})" if b.params else f"block {b.name}"
        out.append(head + " {")
        out += Printer(g, local, b.texts).lines(b.items, 1)
        out += ["}", ""]
    out += Printer(g, names).lines(items, 0)
    return "\n".join(out) + "\n"


def collapse(items: list) -> None:
    """Consecutive instances of one block with the same arguments and no names:
    `Block(args) xN`."""
    k = 0
    while k < len(items):
        it = items[k]
        if isinstance(it, Instance) and it.alias is None:
            while (
                k + 1 < len(items)
                and isinstance(nxt := items[k + 1], Instance)
                and nxt.alias is None
                and nxt.block is it.block
                and nxt.args == it.args
            ):
                it.count += nxt.count
                del items[k + 1]
        k += 1


def generated_instance(name: str, blocks: set[str]) -> bool:
    """`residual2`: the name archc gives an instance of the block `Residual` (the
    printer's block names are one word and digits: their snake case is lower case)."""
    return any(re.fullmatch(rf"{re.escape(b.lower())}[0-9]+", name) for b in blocks)


def assign_names(g: Graph, items: list, referenced: set[int]) -> dict[int, str]:
    """Top-level names: each node's own where usable, each instance's prefix
    (`conv2_block1`), a made-up one (`t1`) for a tensor a reference reads whose
    own name is not usable."""
    names: dict[int, str] = {}
    taken: set[str] = {"input"}
    blocks = {it.block.name for it in items if isinstance(it, Instance)}
    for it in items:
        if isinstance(it, Instance):
            pre = label(g, it.lo, it.hi).rstrip("_.")
            if pre and usable(pre, taken, g.derived) and not generated_instance(pre, blocks):
                it.alias = pre
                taken.add(pre)
                names[it.hi - 1] = pre
            continue
        for i in nodes_of(it):
            if usable(g.nodes[i].name, taken, g.derived):
                names[i] = g.nodes[i].name
                taken.add(names[i])
    k = 0
    for i in sorted(referenced):
        if i == 0 or i in names:
            continue
        while True:
            k += 1
            if usable(f"t{k}", taken, g.derived):
                break
        names[i] = f"t{k}"
        taken.add(names[i])
        for it in items:
            if isinstance(it, Instance) and it.hi - 1 == i:
                it.alias = names[i]
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
