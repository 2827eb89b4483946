"""Reports of an inferred IR: a text table like Keras's `model.summary()` (better:
grouped by block, with MACs and receptive fields), Markdown, and JSON."""

from __future__ import annotations

import json

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


def _rf(node) -> str:
    if node.rf is None:
        return "-"
    (h, w), (jh, jw) = node.rf.size, node.rf.jump
    size = str(h) if h == w else f"{h}x{w}"
    jump = str(jh) if jh == jw else f"{jh}x{jw}"
    return f"{size} /{jump}"


def _kind(node, model: Model | None = None) -> str:
    args = node.describe()
    kind = f"{node.kind}({args})" if args else node.kind
    skip = model._skips.get(node.name) if model is not None else None
    return f"{kind} ← @{skip}" if skip else kind  # it reads a tensor through `@name`


def rows(model: Model) -> list[dict]:
    """One dict per table row: block headers (`header` True) and nodes, in order."""
    headers = {b.path: b for b in model.blocks}
    out: list[dict] = []
    open_path = ""
    subtotal: dict[str, int] = {}
    for n in model.nodes:
        parts = n.scope.split(".") if n.scope else []
        for i in range(len(parts)):
            p = ".".join(parts[: i + 1])
            subtotal[p] = subtotal.get(p, 0) + n.params
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
                out.append(
                    {
                        "header": True,
                        "depth": i,
                        "name": new[i],
                        "label": label,
                        "params": subtotal.get(path, 0),
                    }
                )
            open_path = n.scope
        depth = len(n.scope.split(".")) if n.scope else 0
        out.append({"header": False, "depth": depth, "node": n})
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


def text(model: Model) -> str:
    table = []
    for r in rows(model):
        indent = "  " * r["depth"]
        if r["header"]:
            table.append((f"{indent}{r['name']}", r["label"], "", f"{r['params']:,}", "", "", True))
        else:
            n = r["node"]
            local = n.name.rsplit(".", 1)[-1]
            table.append(
                (
                    f"{indent}{local}",
                    _kind(n, model),
                    describe(n.out_shape),
                    f"{n.params:,}",
                    _si(n.macs) if n.macs else "-",
                    _rf(n),
                    False,
                )
            )
    head = ("Layer", "Kind (arguments)", "Output (HxWxC)", "Params", "MACs", "RF /jump")
    widths = [max(len(head[i]), *(len(t[i]) for t in table)) for i in range(6)]
    widths[1] = min(widths[1], 48)

    def fmt(cells) -> str:
        kind = cells[1] if len(cells[1]) <= widths[1] else cells[1][: widths[1] - 1] + "…"
        return "  ".join(
            [
                cells[0].ljust(widths[0]),
                kind.ljust(widths[1]),
                cells[2].rjust(widths[2]),
                cells[3].rjust(widths[3]),
                cells[4].rjust(widths[4]),
                cells[5].rjust(widths[5]),
            ]
        ).rstrip()

    rule = "=" * len(fmt(head))
    lines = [f'Model "{model.name}"  (from {model.source})', rule, fmt(head), rule]
    for t in table:
        line = fmt(t)
        lines.append(line)
    t = totals(model)
    lines += [
        rule,
        f"Total params:         {t['params']:,} ({_bytes(t['weights_bytes_float32'])} float32)",
        f"Trainable params:     {t['trainable']:,}",
        f"Non-trainable params: {t['nontrainable']:,}",
        (
            f"Total MACs:           {t['macs']:,} ({_si(t['macs'])}); "
            f"FLOPs = 2 x MACs: {t['flops']:,} ({_si(t['flops'])})"
        ),
        *(
            f"{'MACs counted as:' if i == 0 else '':<22}{kind}: {rule}"
            for i, (kind, rule) in enumerate(t["macs_rules"].items())
        ),
        f"Activations (batch 1, float32): {_bytes(t['activations_bytes_float32_batch1'])}",
        f"Input {describe(model.input_shape)} -> output {describe(model.output_shape)}",
    ]
    return "\n".join(lines)


def markdown(model: Model) -> str:
    lines = [
        f"### {model.name}",
        "",
        "| Layer | Kind (arguments) | Output | Params | MACs | RF |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for r in rows(model):
        pad = "&nbsp;" * (2 * r["depth"])
        if r["header"]:
            lines.append(f"| {pad}**{r['name']}** | {r['label']} | | {r['params']:,} | | |")
        else:
            n = r["node"]
            local = n.name.rsplit(".", 1)[-1]
            lines.append(
                f"| {pad}{local} | {_kind(n, model).replace('|', '/')} | "
                f"{describe(n.out_shape)} | {n.params:,} | {n.macs:,} | {_rf(n)} |"
            )
    t = totals(model)
    lines += [
        "",
        (
            f"Total params: {t['params']:,} (trainable {t['trainable']:,}, "
            f"non-trainable {t['nontrainable']:,}); MACs: {t['macs']:,} "
            f"(FLOPs = 2 x MACs: {t['flops']:,})."
        ),
        *(f"MACs of `{kind}` are counted as {rule}." for kind, rule in t["macs_rules"].items()),
    ]
    return "\n".join(lines)


def as_json(model: Model) -> str:
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
            }
        )
    return json.dumps(
        {"model": model.name, "source": model.source, "totals": totals(model), "nodes": nodes},
        indent=2,
    )
