"""Reports of an inferred IR: a text table like Keras's `model.summary()` (better:
grouped by block, with MACs and receptive fields), Markdown, and JSON."""

from __future__ import annotations

import json
from typing import NamedTuple

from archc import memory
from archc.ir import Model
from archc.ir.shapes import describe


def _si(n: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n:g}"


def _bytes(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.2f} {unit}"
    return f"{n} B"


def _rf(rf) -> str:
    if rf is None:
        return "-"  # the whole input
    (h, w), (jh, jw) = rf.size, rf.jump
    size = str(h) if h == w else f"{h}x{w}"
    jump = str(jh) if jh == jw else f"{jh}x{jw}"
    return f"{size} /{jump}"


def _kind(node, model: Model | None = None) -> str:
    args = node.describe()
    kind = f"{node.kind}({args})" if args else node.kind
    skip = model._skips.get(node.name) if model is not None else None
    return f"{kind} ← @{skip}" if skip else kind  # it reads a tensor through `@name`


class Wiring:
    """Where each node and block instance reads from, named as the table shows it."""

    def __init__(self, model: Model):
        self.last: dict[str, str] = {}  # instance path -> its last node (its output)
        self.first: dict[str, int] = {}  # instance path -> the index of its first node
        self.external: dict[str, list[str]] = {}  # instance path -> what it reads from outside
        self.before: dict[str, str | None] = {}  # node -> the node listed before it
        self.instances = {b.path for b in model.blocks}
        prev = None
        for i, n in enumerate(model.nodes):
            self.before[n.name] = prev
            prev = n.name
            parts = n.scope.split(".") if n.scope else []
            for k in range(1, len(parts) + 1):
                path = ".".join(parts[:k])
                self.last[path] = n.name
                self.first.setdefault(path, i)
                ext = self.external.setdefault(path, [])
                for name in n.inputs:
                    if not _inside(name, path) and name not in ext:
                        ext.append(name)
        self.order = [n.name for n in model.nodes]

    def shown(self, name: str, scope: str) -> str:
        """`name` as a reader in `scope` sees it: the outermost block instance it is
        the output of (outside the reader's own blocks), by its path relative to
        `scope` where it is inside it."""
        parts = name.split(".")
        for k in range(1, len(parts)):
            path = ".".join(parts[:k])
            if self.last.get(path) == name and path in self.instances and not _inside(scope, path):
                name = path
                break
        if scope and name.startswith(scope + "."):
            return name[len(scope) + 1 :]
        return f"/{name}" if scope else name  # from the top, outside the reader's block

    def node_inputs(self, node) -> list[str]:
        """The inputs of `node` unless it reads only the node listed before it."""
        if list(node.inputs) == [self.before[node.name]] or not node.inputs:
            return []
        return [self.shown(i, node.scope) for i in node.inputs]

    def block_inputs(self, path: str) -> list[str]:
        """What instance `path` reads from outside, unless only the node before it."""
        ext = self.external.get(path, [])
        first = self.first[path]
        before = self.order[first - 1] if first else None
        if ext == [before]:
            return []
        parent = path.rsplit(".", 1)[0] if "." in path else ""
        return [self.shown(i, parent) for i in ext]


def _inside(name: str, path: str) -> bool:
    return name == path or name.startswith(path + ".")


def rows(model: Model, depth: int | None = None) -> list[dict]:
    """One dict per table row: block headers (`header` True) and nodes, in order.
    Every row has its depth, local name, `label` (kind and arguments), output shape,
    params, MACs, receptive field (`rf`: the node's, or the block output's) and
    `inputs` (where it reads from where that is not the row before it). With
    `depth`, blocks deeper than it are collapsed to their header row (0: the
    top-level rows only)."""
    headers = {b.path: b for b in model.blocks}
    wiring = Wiring(model)
    nodes = {n.name: n for n in model.nodes}
    out: list[dict] = []
    open_path = ""
    subtotal: dict[str, list[int]] = {}
    for n in model.nodes:
        parts = n.scope.split(".") if n.scope else []
        for i in range(len(parts)):
            p = ".".join(parts[: i + 1])
            t = subtotal.setdefault(p, [0, 0])
            t[0] += n.params
            t[1] += n.macs
    shown_by_header: list[str] | None = None
    for n in model.nodes:
        if n.scope != open_path:
            old = open_path.split(".") if open_path else []
            new = n.scope.split(".") if n.scope else []
            common = 0
            while common < min(len(old), len(new)) and old[common] == new[common]:
                common += 1
            for i in range(common, len(new)):
                path = ".".join(new[: i + 1])
                b = headers.get(path)
                label = ""
                if b is not None and b.block:
                    args = ", ".join(f"{k}={_arg(v)}" for k, v in b.args.items())
                    label = f"{b.block}({args})"
                last = nodes[wiring.last[path]]
                shown_by_header = wiring.block_inputs(path)
                if depth is None or i <= depth:
                    out.append(
                        {
                            "header": True,
                            "depth": i,
                            "name": new[i],
                            "path": path,
                            "label": label,
                            "out_shape": last.out_shape,
                            "params": subtotal[path][0],
                            "macs": subtotal[path][1],
                            "rf": last.rf,
                            "inputs": shown_by_header,
                        }
                    )
            open_path = n.scope
        level = len(n.scope.split(".")) if n.scope else 0
        ins = wiring.node_inputs(n)
        first_of_block = n.scope and wiring.order[wiring.first[n.scope]] == n.name
        if first_of_block and shown_by_header is not None and ins == shown_by_header:
            ins = []  # its block's header row says it
        shown_by_header = None
        if depth is None or level <= depth:
            out.append(
                {
                    "header": False,
                    "depth": level,
                    "name": n.name.rsplit(".", 1)[-1],
                    "path": n.name,
                    "label": _kind(n, model),
                    "out_shape": n.out_shape,
                    "params": n.params,
                    "macs": n.macs,
                    "rf": n.rf,
                    "inputs": ins,
                    "node": n,
                }
            )
    return out


def _arg(v) -> str:
    if isinstance(v, list):
        return "[" + ",".join(_arg(x) for x in v) + "]"
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def macs_rules(model: Model) -> dict[str, str]:
    """How the MACs of each kind in the model are counted (kinds that count none
    are left out), in the order the kinds first appear."""
    rules: dict[str, str] = {}
    for n in model.nodes:
        if type(n).macs_rule:
            rules.setdefault(n.kind, type(n).macs_rule)
    return rules


def totals(model: Model) -> dict:
    return {
        "params": model.params,
        "trainable": model.trainable,
        "nontrainable": model.nontrainable,
        "macs": model.macs,
        "flops": 2 * model.macs,  # a multiply-accumulate is two floating-point operations
        "macs_rules": macs_rules(model),
        "weights_bytes_float32": model.params * 4,
        "activations_bytes_float32_batch1": model.activation_elements * 4,
        "input": list(model.input_shape),
        "output": list(model.output_shape),
    }


class MemoryChoice(NamedTuple):
    """The batch, dtype and optimizer of the memory figures, and where each came
    from (the command line, the spec's train section, or archc's default)."""

    batch: int
    dtype: str
    optimizer: str
    sources: dict[str, str]


def memory_choice(
    model: Model, batch: int | None = None, dtype: str | None = None, optimizer: str | None = None
) -> MemoryChoice:
    """The command line's choice, else the spec's train section's, else batch 1,
    float32 and Adam; `sources` says which, and the report prints it."""
    train = model.training
    sources = {}
    if batch is not None:
        sources["batch"] = "--batch"
    elif train is not None and train.batch_size is not None:
        batch, sources["batch"] = train.batch_size, "the spec's train section"
    else:
        batch, sources["batch"] = 1, "default; --batch to change"
    sources["dtype"] = "--dtype" if dtype is not None else "default; --dtype to change"
    dtype = dtype or "float32"
    if optimizer is not None:
        sources["optimizer"] = "--optimizer"
    elif train is not None and train.optimizer is not None:
        o = train.optimizer
        optimizer = o.name
        if o.name == "sgd" and o.momentum:
            optimizer = "sgd_momentum"
        sources["optimizer"] = "the spec's train section"
    else:
        optimizer, sources["optimizer"] = "adam", "default; --optimizer to change"
    return MemoryChoice(batch, dtype, optimizer, sources)


def _memory_lines(model: Model, choice: MemoryChoice) -> list[tuple[str, str]]:
    m = memory.estimate(model, choice.batch, choice.dtype, choice.optimizer)
    src = choice.sources
    mixed = choice.dtype != "float32"
    lines = [
        (
            "Memory for",
            f"batch {m.batch} ({src['batch']}), {m.dtype} ({src['dtype']})"
            + (", mixed precision: float32 master weights and optimizer state" if mixed else ""),
        ),
        ("  parameters", f"{_bytes(m.parameters)} (float32, trainable and not)"),
    ]
    if mixed:
        lines.append(
            ("  low-precision copy", f"{_bytes(m.low_precision_weights)} ({m.dtype}, trainable)")
        )
    lines += [
        ("  gradients", f"{_bytes(m.gradients)} (float32)"),
        (
            "  optimizer state",
            (
                f"{_bytes(m.optimizer_state)} ({memory.OPTIMIZER_TEXT[m.optimizer]}; "
                f"{src['optimizer']})"
            ),
        ),
        ("  activations kept", f"{_bytes(m.activations)} (for the backward pass)"),
        ("  training total", _bytes(m.training)),
        (
            "  inference peak",
            (
                f"{_bytes(m.inference)} ({_bytes(m.inference_peak)} activations alive at "
                f"once + {_bytes(m.inference_weights)} weights, {m.dtype})"
            ),
        ),
    ]
    return lines


def _training_text(model: Model) -> str | None:
    """The spec's `train` section, as `optimizer sgd (momentum 0.9), lr 0.1, ...`."""
    if model.training is None:
        return None
    parts = []
    for key, value in model.training.model_dump(exclude_none=True, mode="json").items():
        if isinstance(value, dict):
            head = value.pop("name", None) or value.pop("kind", "")
            inner = ", ".join(f"{k} {_arg(v)}" for k, v in value.items())
            value = f"{head} ({inner})" if inner else head
        else:
            value = _arg(value)
        parts.append(f"{key.replace('_', ' ')} {value}")
    return ", ".join(parts)


def _summary(model: Model, choice: MemoryChoice) -> list[tuple[str | None, str]]:
    """The lines after the table, as (label, value), for text and Markdown alike
    ("": a further value of the label above; None: a line of its own)."""
    t = totals(model)
    lines = [
        ("Total params", f"{t['params']:,} ({_bytes(t['weights_bytes_float32'])} float32)"),
        ("Trainable params", f"{t['trainable']:,}"),
        ("Non-trainable params", f"{t['nontrainable']:,}"),
        (
            "Total MACs",
            (
                f"{t['macs']:,} ({_si(t['macs'])}); FLOPs = 2 x MACs: {t['flops']:,} "
                f"({_si(t['flops'])})"
            ),
        ),
        *(
            ("MACs counted as" if i == 0 else "", f"{kind}: {rule}")
            for i, (kind, rule) in enumerate(t["macs_rules"].items())
        ),
        *_memory_lines(model, choice),
    ]
    train = _training_text(model)
    if train is not None:
        lines.append(("Train section", train))
    lines.append(
        (None, f"Input {describe(model.input_shape)} -> output {describe(model.output_shape)}")
    )
    return lines


HEAD = ("Layer", "Kind (arguments)", "Output (HxWxC)", "Params", "MACs", "RF /jump", "Inputs")


def _cells(r: dict) -> tuple[str, ...]:
    return (
        r["name"],
        r["label"],
        describe(r["out_shape"]),
        f"{r['params']:,}",
        _si(r["macs"]) if r["macs"] else "-",
        _rf(r["rf"]),
        ", ".join(r["inputs"]),
    )


def text(model: Model, depth: int | None = None, choice: MemoryChoice | None = None) -> str:
    choice = choice or memory_choice(model)
    table = []
    for r in rows(model, depth):
        cells = _cells(r)
        table.append(("  " * r["depth"] + cells[0], *cells[1:]))
    widths = [max(len(HEAD[i]), *(len(t[i]) for t in table)) for i in range(len(HEAD))]
    right = (False, False, True, True, True, True, False)

    def fmt(cells) -> str:
        return "  ".join(
            c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right)
        ).rstrip()

    rule = "=" * len(fmt(HEAD))
    lines = [f'Model "{model.name}"  (from {model.source})', rule, fmt(HEAD), rule]
    lines += [fmt(t) for t in table]
    lines.append(rule)
    summary = _summary(model, choice)
    label_width = 1 + max(len(label or "") for label, _ in summary)
    for label, value in summary:
        if label is None:
            lines.append(value)
        else:
            lines.append(f"{label + ':' if label else '':<{label_width}} {value}")
    return "\n".join(lines)


def _md(cell: str) -> str:
    return cell.replace("|", "\\|")


def markdown(model: Model, depth: int | None = None, choice: MemoryChoice | None = None) -> str:
    choice = choice or memory_choice(model)
    lines = [
        f"### {model.name}",
        "",
        "| Layer | Kind (arguments) | Output | Params | MACs | RF | Inputs |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for r in rows(model, depth):
        pad = "&nbsp;" * (2 * r["depth"])
        name, label, shape, params, _, rf, ins = (_md(c) for c in _cells(r))
        macs = f"{r['macs']:,}" if r["macs"] else "-"
        name = f"**{name}**" if r["header"] else name
        lines.append(f"| {pad}{name} | {label} | {shape} | {params} | {macs} | {rf} | {ins} |")
    lines.append("")
    for label, value in _summary(model, choice):
        if label is None:
            lines.append(f"- {_md(value)}")
        elif not label:
            lines.append(f"  {_md(value)}")
        else:
            indent = "  " if label.startswith("  ") else ""
            lines.append(f"{indent}- {label.strip()}: {_md(value)}")
    return "\n".join(lines)


def as_json(model: Model, choice: MemoryChoice | None = None) -> str:
    choice = choice or memory_choice(model)
    m = memory.estimate(model, choice.batch, choice.dtype, choice.optimizer)
    nodes = []
    for n in model.nodes:
        nodes.append(
            {
                "name": n.name,
                "kind": n.kind,
                "scope": n.scope,
                "arguments": n.describe(),
                "inputs": list(n.inputs),
                "output_shape": list(n.out_shape),
                "params": n.params,
                "trainable": n.trainable,
                "nontrainable": n.nontrainable,
                "macs": n.macs,
                "receptive_field": None if n.rf is None else n.rf.model_dump(mode="json"),
                "kept_bytes": m.kept_by_node[n.name],
            }
        )
    wiring = Wiring(model)
    blocks = [
        {
            "path": b.path,
            "block": b.block,
            "args": b.args,
            "inputs": wiring.external.get(b.path, []),
            "output": wiring.last.get(b.path),
        }
        for b in model.blocks
    ]
    return json.dumps(
        {
            "model": model.name,
            "source": model.source,
            "totals": totals(model),
            "memory": {**m.as_dict(), "sources": choice.sources},
            "training": None
            if model.training is None
            else model.training.model_dump(exclude_none=True, mode="json"),
            "blocks": blocks,
            "nodes": nodes,
        },
        indent=2,
    )
