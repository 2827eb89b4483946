"""IR graph -> inferred IR graph: every node's shapes, parameters, MACs and
receptive field, from each layer kind's own rules (archc/ir/kinds.py).

A shape conflict is reported at the node's source location with both shapes and
a hint; nodes downstream of a failed node are skipped, so independent conflicts
in one spec are all reported at once.
"""

from __future__ import annotations

from archc.diagnostics import Diagnostics
from archc.ir import Model
from archc.ir.kinds import RF
from archc.ir.shapes import ShapeError, describe
from archc.language.syntax import Span


def node_span(node, diags: Diagnostics) -> Span | None:
    """Where a node is written, the caret under its call's name."""
    if node.loc is None:
        return None
    span = Span(node.loc.file, node.loc.line, node.loc.col, node.loc.line, node.loc.col + 1)
    line = diags.sources.line(span)
    if line is not None:  # underline the call's name
        rest = line[node.loc.col - 1 :]
        width = len(rest) - len(
            rest.lstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")
        )
        span = Span(span.file, span.line, span.col, span.line, span.col + max(1, width))
    return span


def _branch_notes(model: Model, node, ins) -> tuple[str, ...]:
    """Where each input of a merge comes from: the tensor that ends the branch and
    the tensor the branch starts from (the tensor before the merge, or the one a
    reference `@name` goes back to), each with its place in the source. A block
    instance or named group is shown by its name and where it is written."""
    starts = model._branches.get(node.name)
    if starts is None or len(starts) != len(ins):
        return ()
    nodes = {n.name: n for n in model.nodes}
    last: dict[str, str] = {}  # scope -> its last node (its output)
    for n in model.nodes:
        parts = n.scope.split(".") if n.scope else []
        for k in range(1, len(parts) + 1):
            last[".".join(parts[:k])] = n.name
    instances = {b.path: b for b in model.blocks}

    def shown(name: str) -> str:
        n = nodes[name]
        where = n.loc
        parts = n.scope.split(".") if n.scope else []
        for k in range(1, len(parts) + 1):  # the outermost instance it is the output of
            path = ".".join(parts[:k])
            if last.get(path) == name and path in instances:
                name, where = path, instances[path].loc
                break
        return f"`{name}` ({where.file}:{where.line}:{where.col})" if where else f"`{name}`"

    notes = []
    for k, (end, shape, (start, ref)) in enumerate(zip(node.inputs, ins, starts), 1):
        origin = ref or f"from {shown(start)}"
        if end == start:
            notes.append(
                f"branch {k} ({describe(shape)}) is {shown(end)}" + (f", {ref}" if ref else "")
            )
        else:
            notes.append(f"branch {k} ({describe(shape)}) ends at {shown(end)}, {origin}")
    return tuple(notes)


def infer(model: Model, diags: Diagnostics) -> Model:
    shapes: dict[str, tuple[int, ...] | None] = {}
    rfs: dict[str, RF | None] = {}
    done = []
    for node in model.nodes:
        ins = [shapes.get(i) for i in node.inputs]
        if any(s is None for s in ins):
            shapes[node.name] = None  # downstream of an error already reported
            continue
        try:
            out = node.infer(ins)
        except ShapeError as e:
            span = node_span(node, diags)
            diags.error(
                "E401",
                f"shapes do not fit at `{node.name}` ({node.kind}): {e.message}",
                span,
                received="input " + ", ".join(describe(s) for s in ins),
                hint=e.hint,
                notes=_branch_notes(model, node, ins) if len(ins) > 1 else (),
            )
            shapes[node.name] = None
            continue
        trainable, nontrainable, macs = node.count(ins, out)
        # the receptive-field rule may read the node's shapes (a resize's ratio)
        node = node.model_copy(update={"in_shapes": tuple(ins), "out_shape": out})
        in_rfs = [rfs.get(i) for i in node.inputs]
        # a field that already covers the whole input stays so (None) downstream
        rf = None if any(r is None for r in in_rfs) else node.receptive_field(in_rfs)
        shapes[node.name] = out
        rfs[node.name] = rf
        done.append(
            node.model_copy(
                update={
                    "trainable": trainable,
                    "nontrainable": nontrainable,
                    "macs": macs,
                    "rf": rf,
                }
            )
        )
    diags.check()
    return model.model_copy(update={"nodes": tuple(done)})
