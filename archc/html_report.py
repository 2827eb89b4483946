"""`archc report --html`: the report as one self-contained HTML page.

The page holds the totals and memory figures, the diagram (inline SVG from
archc/diagram.py: an overview with blocks folded, and every layer), the layer
table of archc/report.py (`rows()`, `totals()` and its summary lines: the counts
are the report's, not recomputed here) with per-layer bars of parameters, MACs
and activation memory, and the spec's source (and its includes) with each layer
linked to its row and back. Everything is inline (no network access to view it);
every piece of text is escaped; the bytes depend on the model, the sources and
the options only. Without JavaScript the page reads in full; the script folds
blocks (those nested deeper than `depth` start folded), opens the blocks around
a row that a link or a diagram box leads to, and switches the diagram between
fitting the width and its actual size.
"""

from __future__ import annotations

import re
from html import escape

from archc import memory, report
from archc.ir import Model
from archc.ir.shapes import describe


def page(
    model: Model,
    spec_text: str,
    included: dict[str, str] | None = None,
    choice: report.MemoryChoice | None = None,
    depth: int = 0,
) -> str:
    """The page for `model`, compiled from `spec_text` (the file `model.source`).
    `included` maps the files the spec includes (as its nodes' locations name
    them) to their text: the layers written there link to them too; layers in a
    file not given have no source link. `choice`: the batch, dtype and optimizer
    of the memory figures (report.memory_choice's when None). Blocks nested
    deeper than `depth` start folded (0: only the top-level rows show)."""
    sources = {model.source: spec_text, **dict(sorted((included or {}).items()))}
    files = {path: f"s{i}" for i, path in enumerate(sources)}
    table = rows_of(model, files)
    targets: dict[str, list[tuple[str, str]]] = {}  # source anchor -> rows (id, path)
    for r in table:
        if r["anchor"]:
            targets.setdefault(r["anchor"], []).append((r["id"], r["path"]))
    return _PAGE.format(
        name=_e(model.name),
        subtitle=_subtitle(model),
        totals=_totals(model, choice or report.memory_choice(model)),
        diagram=_diagram(model),
        depth=depth,
        table=_table(table),
        sources="\n".join(
            _source_html(path, text, files[path], targets) for path, text in sources.items()
        ),
        style=_STYLE,
        script=_SCRIPT,
    )


def included_files(model: Model) -> list[str]:
    """The files besides `model.source` that its layers and blocks are written in
    (its includes), sorted: `page` links their layers when given their text."""
    locs = [n.loc for n in model.nodes] + [b.loc for b in model.blocks]
    return sorted({loc.file for loc in locs if loc is not None} - {model.source})


def _e(text: object) -> str:
    return escape(str(text), quote=True)


def _anchor(loc, files: dict[str, str]) -> str:
    """The id of a source position in the page ("" when its file is not shown)."""
    if loc is None or loc.file not in files:
        return ""
    return f"{files[loc.file]}-{loc.line}-{loc.col}"


def _activation_bytes(node) -> int:
    """Its output at batch 1 in float32, as `Model.activation_elements` counts it
    (the input is not an activation)."""
    if node.kind == "input":
        return 0
    size = 1
    for d in node.out_shape:
        size *= d
    return 4 * size


def rows_of(model: Model, files: dict[str, str]) -> list[dict]:
    """The rows of report.rows() (every row, every block), each with its element
    id, the block path around it (`scope`), its source position and that
    position's anchor in the page."""
    locs = {b.path: b.loc for b in model.blocks}
    out = []
    for r in report.rows(model):
        if r["header"]:
            scope, loc, row_id = r["path"].rpartition(".")[0], locs.get(r["path"]), "blk-"
        else:
            scope, loc, row_id = r["node"].scope, r["node"].loc, "row-"
        out.append(
            {
                **r,
                "id": row_id + r["path"],
                "scope": scope,
                "loc": loc,
                "anchor": _anchor(loc, files),
            }
        )
    return out


def _subtitle(model: Model) -> str:
    layers = sum(1 for n in model.nodes if n.kind != "input")
    return (
        f"from <code>{_e(model.source)}</code> · input {_e(describe(model.input_shape))}"
        f" → output {_e(describe(model.output_shape))} · {layers:,} layers"
    )


def _totals(model: Model, choice: report.MemoryChoice) -> str:
    """Cards for the headline totals, then every line the text report prints
    after its table (memory and the train section included)."""
    t = report.totals(model)
    m = memory.estimate(model, choice.batch, choice.dtype, choice.optimizer)
    items = [
        ("Parameters", f"{t['params']:,}", f"{t['trainable']:,} trainable"),
        ("MACs", report._si(t["macs"]), f"{t['macs']:,}; FLOPs = 2 × MACs"),
        (
            "Activations",
            report._bytes(t["activations_bytes_float32_batch1"]),
            "every layer's output, batch 1, float32",
        ),
        (
            "Training memory",
            report._bytes(m.training),
            f"batch {m.batch}, {m.dtype}, {memory.OPTIMIZER_TEXT[m.optimizer].split(':')[0]}",
        ),
        ("Inference peak", report._bytes(m.inference), f"batch {m.batch}, {m.dtype}"),
    ]
    cards = "\n".join(
        f'<div class="card"><dt>{_e(k)}</dt><dd>{_e(v)}</dd>'
        + (f'<dd class="note">{_e(note)}</dd>' if note else "")
        + "</div>"
        for k, v, note in items
    )
    lines = []
    for label, value in report._summary(model, choice):
        if label is None:
            lines.append(f'<tr><td colspan="2">{_e(value)}</td></tr>')
        else:
            indent = ' class="sub"' if label.startswith(" ") else ""
            lines.append(f"<tr><th{indent}>{_e(label.strip())}</th><td>{_e(value)}</td></tr>")
    return (
        f'<dl class="totals">\n{cards}\n</dl>\n<details class="summary-table">'
        "<summary>Totals, memory and training, as <code>archc report</code> prints them"
        f"</summary>\n<table>\n{chr(10).join(lines)}\n</table></details>"
    )


# The overview is the most detailed folding whose drawing is at most this wide
# (pixels at actual size): it then fits a laptop screen unscaled.
OVERVIEW_WIDTH = 1400


def _diagram(model: Model) -> str:
    """The diagram twice when the model has blocks: an overview, the blocks
    nested deeper than some level folded to one box each (open), and every layer
    (folded away). The overview's element ids are prefixed `o-`, so that no id is
    in the page twice."""
    from archc import diagram

    full = _svg(diagram.svg(model))
    if not model.blocks:
        return f'<div class="diagram fit">\n{full}\n</div>'
    levels = 1 + max(b.path.count(".") for b in model.blocks)  # depth None: all open
    depth, drawing = 0, diagram.layout(model, 0)
    for d in range(1, levels):
        deeper = diagram.layout(model, d)
        if deeper.width > OVERVIEW_WIDTH:
            break
        depth, drawing = d, deeper
    overview = _svg(diagram.render_svg(drawing))
    overview = re.sub(r'(<[^>]*\s)id="', r'\1id="o-', overview).replace("url(#", "url(#o-")
    folded = {0: "every block", 1: "blocks inside blocks"}.get(
        depth, f"blocks nested {depth} deep or more"
    )
    return (
        f'<details class="view" open><summary>Overview: {folded} drawn as one box'
        f'</summary>\n<div class="diagram fit">\n{overview}\n</div></details>\n'
        '<details class="view"><summary>Every layer</summary>\n'
        f'<div class="diagram fit">\n{full}\n</div></details>'
    )


def _svg(text: str) -> str:
    """SVG text as an element of the page (no XML declaration)."""
    if text.startswith("<?xml"):
        text = text[text.index("?>") + 2 :].lstrip()
    return text


def _bar(value: int, largest: int, text: str, exact: str) -> str:
    width = 100 * value / largest if largest else 0
    return (
        f'<td class="num" title="{_e(exact)}"><span class="v">{_e(text)}</span>'
        f'<span class="bar"><span style="width:{width:.2f}%"></span></span></td>'
    )


def _table(table: list[dict]) -> str:
    nodes = [r["node"] for r in table if not r["header"]]
    most_params = max((n.params for n in nodes), default=0)
    most_macs = max((n.macs for n in nodes), default=0)
    most_bytes = max((_activation_bytes(n) for n in nodes), default=0)
    out = []
    for r in table:
        attrs = (
            f'id="{_e(r["id"])}" data-scope="{_e(r["scope"])}" data-loc="{_e(r["anchor"])}"'
            f' style="--d:{r["depth"]}"'
        )
        head = _e(r["name"])
        if r["header"]:
            attrs = f'class="blk" {attrs} data-path="{_e(r["path"])}"'
            head = (
                f'<button type="button" class="tog" aria-expanded="true"'
                f' title="fold or unfold {_e(r["path"])}"></button>{head}'
            )
        else:
            attrs = f'class="node" {attrs}'
        cells = [
            f'<th scope="row" title="{_e(r["path"])}">{head}</th>',
            f'<td class="kind">{_e(r["label"])}</td>',
            f'<td class="shape">{_e(describe(r["out_shape"]))}</td>',
        ]
        params, macs = f"{r['params']:,}", report._si(r["macs"]) if r["macs"] else "-"
        if r["header"]:  # a block's totals: no bar (the bars compare layers)
            cells += [
                f'<td class="num" title="{params} parameters">{params}</td>',
                f'<td class="num" title="{r["macs"]:,} MACs">{macs}</td>',
                '<td class="num"></td>',
            ]
        else:
            act = _activation_bytes(r["node"])
            cells += [
                _bar(r["params"], most_params, params, f"{params} parameters"),
                _bar(r["macs"], most_macs, macs, f"{r['macs']:,} MACs"),
                _bar(
                    act,
                    most_bytes,
                    report._bytes(act) if act else "-",
                    f"{act:,} bytes (output, batch 1, float32)",
                ),
            ]
        cells += [
            f'<td class="num rf">{_e(report._rf(r["rf"]))}</td>',
            f'<td class="inputs">{_e(", ".join(r["inputs"]))}</td>',
            _source_link(r),
        ]
        out.append(f"<tr {attrs}>{''.join(cells)}</tr>")
    return "\n".join(out)


def _source_link(r: dict) -> str:
    loc = r["loc"]
    if loc is None:
        return '<td class="src"></td>'
    where = f"{loc.file}:{loc.line}:{loc.col}"
    if not r["anchor"]:
        return f'<td class="src" title="{_e(where)}">{loc.line}:{loc.col}</td>'
    return (
        f'<td class="src"><a href="#{_e(r["anchor"])}" title="{_e(where)}">'
        f"{loc.line}:{loc.col}</a></td>"
    )


def _extent(line: str, start: int) -> int:
    """Where the call written at `start` ends on its line: its name, and its
    parenthesised arguments when they close on the same line."""
    end = start
    while end < len(line) and (line[end].isalnum() or line[end] in "_"):
        end += 1
    if end == start:
        return min(start + 1, len(line))
    if end < len(line) and line[end] == "(":
        depth = 0
        for i in range(end, len(line)):
            depth += {"(": 1, ")": -1}.get(line[i], 0)
            if depth == 0:
                return i + 1
    return end


def _source_html(path: str, text: str, fid: str, targets: dict) -> str:
    lines = text.splitlines()
    marks: dict[int, list[int]] = {}  # line -> columns of the calls written there
    for anchor in targets:
        f, line, col = anchor.rsplit("-", 2)
        if f == fid and 1 <= int(line) <= len(lines):
            marks.setdefault(int(line), []).append(int(col))
    out = []
    for i, line in enumerate(lines, 1):
        cols = sorted(c for c in marks.get(i, ()) if c - 1 < max(len(line), 1))
        pieces, at = [], 0
        for j, col in enumerate(cols):
            start = col - 1
            end = _extent(line, start)
            if j + 1 < len(cols):
                end = min(end, cols[j + 1] - 1)
            anchor = f"{fid}-{i}-{col}"
            rows = targets[anchor]
            first_id = rows[0][0]
            title = rows[0][1] if len(rows) == 1 else f"{len(rows)} rows: {rows[0][1]}, …"
            pieces.append(_e(line[at:start]))
            pieces.append(
                f'<a class="loc" id="{_e(anchor)}" href="#{_e(first_id)}" title="{_e(title)}">'
                f"{_e(line[start:end])}</a>"
            )
            at = end
        pieces.append(_e(line[at:]))
        out.append(
            f'<span class="line" id="{fid}-L{i}"><span class="ln">{i}</span>{"".join(pieces)}</span>'
        )
    body = "\n".join(out)
    return (
        f'<figure class="source"><figcaption><code>{_e(path)}</code></figcaption>'
        f"<pre><code>{body}\n</code></pre></figure>"
    )


_PAGE = """<!DOCTYPE html>
<html lang="en" class="nojs">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="archc report --html">
<title>{name} · archc report</title>
<style>
{style}</style>
</head>
<body>
<header>
<h1>{name}</h1>
<p class="subtitle">{subtitle}</p>
<nav><a href="#diagram">Diagram</a> · <a href="#layers">Layers</a> · <a href="#source">Source</a></nav>
</header>
<main>
<section id="totals" aria-label="Totals">
{totals}
</section>
<section id="diagram">
<h2>Diagram</h2>
<p class="controls"><button type="button" id="diagram-size">Actual size</button>
<span class="hint">Click a layer or a block to see its row.</span></p>
{diagram}
</section>
<div class="split">
<section id="layers">
<h2>Layers</h2>
<p class="controls"><button type="button" id="expand-all">Expand all blocks</button>
<button type="button" id="collapse-all">Collapse all blocks</button>
<span class="hint">Bars: each layer against the largest layer's parameters, MACs and output memory.</span></p>
<table data-depth="{depth}">
<thead><tr><th scope="col">Layer</th><th scope="col">Kind (arguments)</th>
<th scope="col">Output (H×W×C)</th><th scope="col">Params</th><th scope="col">MACs</th>
<th scope="col">Output memory</th><th scope="col">RF /jump</th><th scope="col">Inputs</th>
<th scope="col">Source</th></tr></thead>
<tbody>
{table}
</tbody>
</table>
</section>
<section id="source">
<h2>Source</h2>
{sources}
</section>
</div>
</main>
<script>
{script}</script>
</body>
</html>
"""

_STYLE = """\
:root { --ink: #1d2330; --muted: #5d6678; --rule: #dde1e8; --band: #f5f7fa;
  --accent: #2b5fd9; --params: #3f7fd8; --macs: #d9822b; --mem: #3aa17e; --hit: #fff3bf; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #fff;
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
    sans-serif; }
header, main { padding: 0 24px; }
header { padding-top: 18px; border-bottom: 1px solid var(--rule); }
h1 { margin: 0; font-size: 26px; }
h2 { font-size: 19px; margin: 22px 0 10px; }
.subtitle { margin: 2px 0 6px; color: var(--muted); }
nav { margin-bottom: 12px; }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
code, pre, td.kind, td.shape, td.num, td.src, td.inputs, tbody th {
  font-family: ui-monospace, "SFMono-Regular", "DejaVu Sans Mono", Menlo, Consolas, monospace;
  font-size: 13px; }
.totals { display: flex; flex-wrap: wrap; gap: 12px; margin: 16px 0 8px; }
.card { border: 1px solid var(--rule); border-radius: 8px; padding: 8px 14px; min-width: 150px;
  background: var(--band); }
.card dt { color: var(--muted); font-size: 12px; text-transform: uppercase;
  letter-spacing: .04em; }
.card dd { margin: 0; font-size: 20px; font-variant-numeric: tabular-nums; }
.card dd.note { font-size: 12px; color: var(--muted); }
.diagram { overflow: auto; max-height: 80vh; border: 1px solid var(--rule); border-radius: 8px;
  padding: 8px; }
.diagram svg { display: block; margin: 0 auto; }
.diagram.fit svg { max-width: 100%; height: auto; }
.view { margin-bottom: 8px; }
.view > summary { cursor: pointer; color: var(--muted); font-size: 14px; margin-bottom: 4px; }
.js .diagram g.node, .js .diagram g[id^="b-"] { cursor: pointer; }
.summary-table { font-size: 13px; margin: 4px 0; }
.summary-table table { width: auto; margin-top: 6px; }
.summary-table th, .summary-table td { border: 0; padding: 1px 12px 1px 0; white-space: normal;
  font-family: inherit; font-size: 13px; }
.summary-table th { color: var(--muted); white-space: nowrap; }
.summary-table th.sub { padding-left: 1.2em; }
td.inputs { white-space: normal; color: var(--muted); min-width: 8em; }
.split { display: grid; grid-template-columns: minmax(0, 1fr); gap: 24px; }
@media (min-width: 1500px) {
  .split { grid-template-columns: minmax(0, 1fr) minmax(340px, 32%); }
  #source { position: sticky; top: 0; align-self: start; max-height: 100vh; overflow: auto; }
}
.controls { margin: 0 0 8px; }
.controls button { font: inherit; font-size: 13px; }
.hint { color: var(--muted); font-size: 13px; margin-left: 8px; }
table { border-collapse: collapse; width: 100%; }
thead th { position: sticky; top: 0; background: #fff; text-align: left; font-size: 12px;
  color: var(--muted); border-bottom: 2px solid var(--rule); padding: 4px 8px; z-index: 1; }
td, tbody th { padding: 2px 8px; border-bottom: 1px solid var(--rule); vertical-align: top;
  text-align: left; font-weight: normal; white-space: nowrap; }
tbody th { padding-left: calc(8px + var(--d) * 18px); }
tr.blk { background: var(--band); }
tr.blk th, tr.blk td.kind, tr.blk .v { font-weight: 600; }
td.kind { white-space: normal; min-width: 16em; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.bar { display: block; height: 4px; background: var(--rule); border-radius: 2px;
  margin-top: 1px; min-width: 5em; }
.bar > span { display: block; height: 4px; border-radius: 2px; }
td:nth-child(4) .bar > span { background: var(--params); }
td:nth-child(5) .bar > span { background: var(--macs); }
td:nth-child(6) .bar > span { background: var(--mem); }
tr:target, tr.hit { background: var(--hit); }
tbody tr, a.loc, .source, section { scroll-margin-top: 3em; }  /* clear of the sticky head */
.tog { border: 0; background: none; cursor: pointer; padding: 0 4px 0 0; font: inherit;
  color: var(--accent); width: 1.4em; text-align: left; }
.tog::before { content: "▾"; }
.tog[aria-expanded=false]::before { content: "▸"; }
.nojs .tog, .nojs .controls button, .nojs #diagram .hint { display: none; }
.source { margin: 0 0 16px; }
.source figcaption { color: var(--muted); font-size: 13px; margin-bottom: 4px; }
.source pre { margin: 0; padding: 8px 0; background: var(--band); border: 1px solid var(--rule);
  border-radius: 8px; overflow-x: auto; line-height: 1.45; }
.ln { display: inline-block; width: 3.5em; padding-right: 1em; text-align: right;
  color: #9aa3b2; user-select: none; }
a.loc { border-bottom: 1px dotted var(--accent); }
a.loc:target, .line:target { background: var(--hit); }
"""

# Collapsible blocks: a row shows when every block around it is open. Blocks
# nested deeper than the table's data-depth start closed; following a link (or
# clicking a box of the diagram) opens the blocks around its target (for a
# source position, around every row written there). Without this script every
# row shows and the diagram fits the width.
_SCRIPT = """\
(function () {
  "use strict";
  document.documentElement.className = "js";
  var rows = Array.prototype.slice.call(document.querySelectorAll("#layers tbody tr"));
  var open = {};
  function around(scope) {
    var out = [], parts = scope ? scope.split(".") : [];
    for (var i = 1; i <= parts.length; i++) out.push(parts.slice(0, i).join("."));
    return out;
  }
  function apply() {
    rows.forEach(function (row) {
      row.hidden = !around(row.dataset.scope).every(function (p) { return open[p]; });
      if (row.dataset.path !== undefined) {
        row.querySelector(".tog").setAttribute(
          "aria-expanded", open[row.dataset.path] ? "true" : "false");
      }
    });
  }
  function setAll(value) {
    rows.forEach(function (row) {
      if (row.dataset.path !== undefined) open[row.dataset.path] = value;
    });
    apply();
  }
  function reveal(row) {
    around(row.dataset.scope).forEach(function (p) { open[p] = true; });
  }
  function follow(id) {
    var target = document.getElementById(id);
    if (!target) return;
    rows.forEach(function (row) { row.classList.remove("hit"); });
    if (target.classList.contains("loc")) {
      rows.forEach(function (row) {
        if (row.dataset.loc === id) { reveal(row); row.classList.add("hit"); }
      });
    } else if (target.dataset.scope !== undefined) {
      reveal(target);
    }
    apply();
  }
  document.addEventListener("click", function (event) {
    var box = event.target.closest(".diagram g[id]");
    var named = box && /^(?:o-)?([nb])-(.*)$/.exec(box.id);
    if (named) {
      var row = (named[1] === "n" ? "row-" : "blk-") + named[2];
      if (document.getElementById(row)) {
        follow(row);
        location.hash = row;
      }
      return;
    }
    var tog = event.target.closest(".tog");
    if (tog) {
      var path = tog.closest("tr").dataset.path;
      open[path] = !open[path];
      apply();
      return;
    }
    var link = event.target.closest("a[href^='#']");
    if (link) follow(link.classList.contains("loc") ? link.id : link.getAttribute("href").slice(1));
  });
  document.getElementById("expand-all").addEventListener("click", function () { setAll(true); });
  document.getElementById("collapse-all").addEventListener("click", function () { setAll(false); });
  var frames = document.querySelectorAll(".diagram"), size = document.getElementById("diagram-size");
  size.addEventListener("click", function () {
    var fit = size.textContent !== "Actual size";
    frames.forEach(function (f) { f.classList.toggle("fit", fit); });
    size.textContent = fit ? "Actual size" : "Fit to width";
  });
  var depth = Number(document.querySelector("#layers table").dataset.depth);
  rows.forEach(function (row) {
    var path = row.dataset.path;
    if (path !== undefined) open[path] = path.split(".").length <= depth;
  });
  apply();
  if (location.hash) follow(decodeURIComponent(location.hash.slice(1)));
})();
"""
