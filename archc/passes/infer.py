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
            span = None
            if node.loc is not None:
                span = Span(
                    node.loc.file, node.loc.line, node.loc.col, node.loc.line, node.loc.col + 1
                )
                line = diags.sources.line(span)
                if line is not None:  # underline the call's name
                    rest = line[node.loc.col - 1 :]
                    width = len(rest) - len(
                        rest.lstrip(
                            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_"
                        )
                    )
                    span = Span(span.file, span.line, span.col, span.line, span.col + max(1, width))
            diags.error(
                "E401",
                f"shapes do not fit at `{node.name}` ({node.kind}): {e.message}",
                span,
                received="input " + ", ".join(describe(s) for s in ins),
                hint=e.hint,
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
