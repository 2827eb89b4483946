"""A diagram of an inferred IR: one layout, drawn as SVG (text) or PNG (Pillow).

The layout is computed here, in pure Python, from the graph alone (no Graphviz, no
font metrics of the system):

- a container (the model, or a block instance) holds units: its own nodes and its
  child blocks, each child block framed (a rounded rectangle titled with the instance
  name and the block call) or, below `depth`, collapsed to one box;
- units stack top to bottom, each as high up as its inputs allow; the units of a
  container stand in lanes (columns), so the branches of a merge stand side by side
  and meet at the merge; a unit continues the lane of its input where it can;
- an edge that has to pass units on its way down (a residual shortcut, a U-Net
  `@name` skip) gets a lane of its own and is drawn dashed;
- every tensor's shape (H x W x C) is written once, just below the unit that makes it;
- a long model is wrapped into columns at the points where only one edge runs.

Text widths come from a fixed per-character table (`text_width`), coordinates are
integers and everything is walked in the graph's order, so identical input gives
identical bytes. Every node is an element whose `id` is `n-` and its name, with a
`<title>` (shown on hover).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from xml.sax.saxutils import escape, quoteattr

from archc.ir import Model

# ---------------------------------------------------------------------------
# Text
# ---------------------------------------------------------------------------

FONT_FAMILY = "Helvetica, Arial, sans-serif"
# Advance widths in em of a Helvetica-like sans (the PNG writer's font, Pillow's
# bundled Aileron, measured): characters not listed take DEFAULT_EM.
_EM = {
    **dict.fromkeys("0123456789#$+<=>^", 0.58),
    **dict.fromkeys("abceghknopqsuvxyz", 0.58),
    **dict.fromkeys("fijlrt", 0.33),
    **dict.fromkeys("mw", 0.85),
    **dict.fromkeys("ABCDEFGHJKLNOPQRSTUVXYZ", 0.72),
    **dict.fromkeys("MW", 0.95),
    **dict.fromkeys("I!|'`.,:;", 0.27),
    **dict.fromkeys('()[]{}/\\-"', 0.34),
    " ": 0.25,
    "*": 0.55,
    "_": 0.55,
    "@": 0.9,
    "%": 0.8,
    "&": 0.7,
    "?": 0.55,
    "~": 0.6,
    "\u00b7": 0.25,  # middle dot
}
DEFAULT_EM = 1.0  # anything else (CJK, symbols): a full em
BOLD = 1.08


def text_width(text: str, size: int, bold: bool = False) -> int:
    """The width in pixels of `text` at font `size`, from the fixed table."""
    em = sum(_EM.get(c, DEFAULT_EM) for c in text)
    return math.ceil(em * size * (BOLD if bold else 1.0))


# ---------------------------------------------------------------------------
# Kind families and colours
# ---------------------------------------------------------------------------

# family -> (legend label, fill, stroke, the kinds in it); every kind of
# archc.ir.kinds.KINDS is in exactly one family (tests/test_diagram.py checks it).
FAMILIES: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    "input": ("input / preprocessing", "#ffffff", "#444444", ("input", "rescaling", "normalization")),
    "conv": ("convolution", "#dbe9fb", "#4a78b5", ("conv", "depthwise", "separable", "transposed")),
    "norm": ("normalization", "#fdf1c4", "#b0922a", ("batchnorm", "layernorm", "groupnorm", "layerscale", "lrn")),
    "activation": ("activation", "#dcf2da", "#4f994b", ("activation",)),
    "pool": ("pool / resize", "#ebdff7", "#7d5aa6", ("pool", "globalpool", "upsample", "resize")),
    "merge": ("merge", "#fde2d0", "#c0692b", ("concat", "add", "mul")),
    "dense": ("dense", "#f8d8df", "#b5485e", ("dense",)),
    "shape": ("reshape / pad / crop", "#ececec", "#777777", ("flatten", "reshape", "zeropad", "crop", "shuffle", "split")),
    "dropout": ("dropout", "#f6f6f6", "#a0a0a0", ("dropout", "droppath")),
}  # fmt: skip
BLOCK_FAMILY = ("block (collapsed)", "#f4ead6", "#8a6d3b")
DASHED = ("shortcut / skip", "", "")  # a legend entry drawn as a dashed edge
FAMILY_OF = {kind: fam for fam, (_, _, _, kinds) in FAMILIES.items() for kind in kinds}
# A kind registered outside archc.ir.kinds (a test's throwaway kind) is drawn in this
# family's grey; archc's own kinds are all listed above (tested).
UNLISTED = "shape"
FRAME_FILL = ("#f8f8fa", "#eeeff3")  # alternating with the nesting depth
FRAME_STROKE = "#9a9cab"
EDGE = "#555555"
LABEL = "#5b5b5b"

# ---------------------------------------------------------------------------
# Geometry (pixels)
# ---------------------------------------------------------------------------

SIZE_KIND = 11  # the box's first line: kind(arguments), bold
SIZE_NAME = 10  # its second line: name, parameters
SIZE_LABEL = 9  # shapes on the edges
SIZE_TITLE = 11  # frame titles
PAD_X = 8
BOX_H = 34
MIN_W = 124
GAP = 30  # vertical, between units
HGAP = 18  # horizontal, between lanes
CORRIDOR = 10  # the width of a lane that carries only an edge
HEADER = 20  # a frame's title band
ENTRY = 14  # below a frame's title band: where its input fans out
FRAME_PAD = 10
COLUMN_GAP = 48
MARGIN = 16
MAX_SINGLE_COLUMN = 1800  # taller than this (pixels): wrap into columns


@dataclass
class Box:
    """A node, or a block collapsed to one box."""

    id: str
    x: int
    y: int
    w: int
    h: int
    family: str
    lines: tuple[str, str]
    tooltip: str
    node: str  # the node's name, or the block's path


@dataclass
class Frame:
    id: str
    x: int
    y: int
    w: int
    h: int
    level: int
    title: str
    tooltip: str


@dataclass
class Edge:
    points: list[tuple[int, int]]
    dashed: bool


@dataclass
class Label:
    x: int
    y: int  # baseline
    text: str


@dataclass
class Layout:
    width: int
    height: int
    title: str
    subtitle: str
    legend: list[tuple[str, str, str]]  # (label, fill, stroke)
    frames: list[Frame] = field(default_factory=list)
    edges: list[Edge] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)
    boxes: list[Box] = field(default_factory=list)


# ---------------------------------------------------------------------------
# Layout
# ---------------------------------------------------------------------------


@dataclass
class _Unit:
    """A node or a block at one level, laid out in its own coordinates (0, 0 top left)."""

    key: str
    w: int
    h: int
    port: int  # x of where edges enter (top) and leave (bottom)
    out: str  # the node whose tensor leaves the unit
    shape: str  # that tensor's shape, as written on the edges
    items: list  # Box, Frame, Edge, Label in the unit's coordinates


def _shape(shape) -> str:
    return "x".join(str(d) for d in shape)


def _shift(items: list, dx: int, dy: int) -> list:
    out = []
    for it in items:
        if isinstance(it, Edge):
            out.append(Edge([(x + dx, y + dy) for x, y in it.points], it.dashed))
        elif isinstance(it, Label):
            out.append(Label(it.x + dx, it.y + dy, it.text))
        elif isinstance(it, Box):
            out.append(
                Box(
                    it.id,
                    it.x + dx,
                    it.y + dy,
                    it.w,
                    it.h,
                    it.family,
                    it.lines,
                    it.tooltip,
                    it.node,
                )
            )
        else:
            out.append(
                Frame(it.id, it.x + dx, it.y + dy, it.w, it.h, it.level, it.title, it.tooltip)
            )
    return out  # fmt: skip


def _arg(v) -> str:
    if isinstance(v, list):
        return "[" + ",".join(_arg(x) for x in v) + "]"
    if isinstance(v, bool):
        return str(v).lower()
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _box_width(lines: tuple[str, str]) -> int:
    w = max(text_width(lines[0], SIZE_KIND, bold=True), text_width(lines[1], SIZE_NAME))
    return max(MIN_W, w + 2 * PAD_X)


def _params(n: int) -> str:
    return f"{n:,} params" if n else "no params"


class _Builder:
    def __init__(self, model: Model, depth: int | None):
        self.model = model
        self.depth = depth
        self.blocks = {b.path: b for b in model.blocks}
        self.skips = getattr(model, "_skips", None) or {}
        self.scope = {n.name: n.scope for n in model.nodes}

    # -- units ---------------------------------------------------------------

    def node_unit(self, n) -> _Unit:
        args = n.describe()
        head = f"{n.kind}({args})" if args else n.kind
        local = n.name.rsplit(".", 1)[-1]
        lines = (head, f"{local} \u00b7 {_params(n.params)}")
        w = _box_width(lines)
        tip = [n.name, head, f"output {_shape(n.out_shape)}"]
        if n.in_shapes and n.kind != "input":
            tip.append("input " + ", ".join(_shape(s) for s in n.in_shapes))
        tip.append(f"{n.params:,} parameters ({n.trainable:,} trainable)")
        if n.macs:
            tip.append(f"{n.macs:,} MACs")
        if n.name in self.skips:
            tip.append(f"reads @{self.skips[n.name]}")
        box = Box("n-" + n.name, 0, 0, w, BOX_H, FAMILY_OF.get(n.kind, UNLISTED), lines,
                  "\n".join(tip), n.name)  # fmt: skip
        return _Unit(n.name, w, BOX_H, w // 2, n.name, _shape(n.out_shape), [box])

    def block_call(self, path: str) -> str:
        b = self.blocks.get(path)
        if b is None or not b.block:
            return ""
        return f"{b.block}({', '.join(f'{k}={_arg(v)}' for k, v in b.args.items())})"

    def block_unit(self, path: str, nodes: list, level: int) -> _Unit:
        local = path.rsplit(".", 1)[-1]
        call = self.block_call(path)
        params = sum(n.params for n in nodes)
        out = nodes[-1].name
        shape = _shape(nodes[-1].out_shape)
        tip = "\n".join(
            x
            for x in (
                path,
                call,
                f"{len(nodes)} layers, {params:,} parameters",
                f"output {_shape(nodes[-1].out_shape)}",
            )
            if x
        )
        if self.depth is not None and level >= self.depth:
            lines = (call or local, f"{local} \u00b7 {len(nodes)} layers \u00b7 {_params(params)}")
            w = _box_width(lines)
            box = Box("b-" + path, 0, 0, w, BOX_H, "block", lines, tip, path)
            return _Unit(path, w, BOX_H, w // 2, out, shape, [box])
        inner = self.container(path, nodes, level + 1)
        cw, ch, cport, items = inner.w, inner.h, inner.port, inner.items
        title = f"{local}: {call}" if call else local
        title += f" \u00b7 {_params(params)}"
        w = max(cw, text_width(title, SIZE_TITLE, bold=True) + 2 * PAD_X - 2 * FRAME_PAD)
        dx = FRAME_PAD + (w - cw) // 2
        w += 2 * FRAME_PAD
        dy = HEADER + ENTRY
        h = dy + ch + FRAME_PAD
        frame = Frame("b-" + path, 0, 0, w, h, level, title, tip)
        return _Unit(path, w, h, dx + cport, out, shape, [frame, *_shift(items, dx, dy)])

    def units(self, path: str, nodes: list, level: int) -> list[_Unit]:
        """The units of the container `path` (level = its nesting depth), in order."""
        order: list[str] = []
        members: dict[str, list] = {}
        for n in nodes:
            parts = n.scope.split(".") if n.scope else []
            key = n.name if len(parts) == level else ".".join(parts[: level + 1])
            if key not in members:
                members[key] = []
                order.append(key)
            members[key].append(n)
        out = []
        for key in order:
            group = members[key]
            if len(group) == 1 and group[0].name == key:
                out.append(self.node_unit(group[0]))
            else:
                out.append(self.block_unit(key, group, level))
        return out

    def unit_of(self, node: str, level: int) -> str:
        parts = self.scope[node].split(".") if self.scope[node] else []
        return node if len(parts) <= level else ".".join(parts[: level + 1])

    def edges(self, path: str, nodes: list, level: int, keys: set[str]):
        """(source unit or None for the container's input, target unit, dashed), in order."""
        seen: dict[tuple, bool] = {}
        for n in nodes:
            dst = self.unit_of(n.name, level)
            for i in n.inputs:
                src = self.unit_of(i, level)
                if src not in keys:
                    src = None
                if src == dst:
                    continue
                k = (src, dst)
                seen[k] = seen.get(k, False) or n.name in self.skips
        return [(s, d, dashed) for (s, d), dashed in seen.items()]

    # -- one container -------------------------------------------------------

    def container(self, path: str, nodes: list, level: int) -> _Placed:
        units = self.units(path, nodes, level)
        keys = {u.key for u in units}
        edges = self.edges(path, nodes, level, keys)
        out_key = self.unit_of(nodes[-1].name, level)
        return _arrange(units, edges, out_key, label_output=False)


@dataclass
class _Placed:
    w: int
    h: int
    port: int  # x where the output leaves (and a frame's input enters)
    in_port: int  # x where the first unit's input enters
    out_bottom: int  # y of the output unit's bottom
    items: list


def _arrange(units: list[_Unit], edges, out_key: str, label_output: bool) -> _Placed:
    """Place `units` in lanes. Coordinates: the units' area starts at y 0; the
    container's input (edges from None) fans out from (port, -ENTRY)."""
    index = {u.key: i for i, u in enumerate(units)}
    n = len(units)
    preds: list[list] = [[] for _ in range(n)]
    succs: dict = {}  # source index or None -> [target index]
    dashed_edge: dict = {}
    for s, d, dashed in edges:
        si = None if s is None else index[s]
        di = index[d]
        preds[di].append(si)
        succs.setdefault(si, []).append(di)
        dashed_edge[(si, di)] = dashed
    y = [0] * n
    for i, u in enumerate(units):
        top = 0
        for p in preds[i]:
            if p is not None:
                top = max(top, y[p] + units[p].h + GAP)
        y[i] = top
    asap = list(y)
    # a unit that reads only through references `@name` (a U-Net crop) stands just
    # above its consumer: the long way is the skip's, drawn dashed in its own lane
    for i in range(n - 1, -1, -1):
        if preds[i] and i in succs and all(dashed_edge[(p, i)] for p in preds[i]):
            below = min(y[t] for t in succs[i]) - GAP - units[i].h
            y[i] = max(y[i], below)
    # each source's continuation: its highest consumer; deeper ones get a corridor
    cont = {s: min(ts, key=lambda t: (y[t], t)) for s, ts in succs.items()}
    corridor = {(s, t) for s, ts in succs.items() for t in ts if y[t] > y[cont[s]]}
    end = [0] * n
    for i in range(n):
        e = y[i] + units[i].h
        for t in succs.get(i, ()):
            if (i, t) not in corridor:
                e = max(e, y[t] - GAP // 2)
        end[i] = e

    lanes: list[list[tuple[int, int]]] = []

    def free(lane: int, a: int, b: int) -> bool:
        if lane >= len(lanes):
            return True
        return all(b <= a2 or b2 <= a for a2, b2 in lanes[lane])

    def take(lane: int, a: int, b: int) -> None:
        while len(lanes) <= lane:
            lanes.append([])
        lanes[lane].append((a, b))

    def lowest_free(a: int, b: int) -> int:
        lane = 0
        while not free(lane, a, b):
            lane += 1
        return lane

    lane_of = [0] * n
    span: dict[int, tuple[int, int]] = {}  # merges centred over several lanes
    corridor_lane: dict[tuple, int] = {}
    entry_lane_taken = False
    for i in range(n):
        a, b = y[i], end[i]
        real = sorted({lane_of[p] for p in preds[i] if p is not None and (p, i) not in corridor})
        if len(real) >= 3 and all(free(lane, a, b) for lane in range(real[0], real[-1] + 1)):
            span[i] = (real[0], real[-1])
            for lane in range(real[0], real[-1] + 1):
                take(lane, a, b)
            lane_of[i] = real[0]
        else:
            choice = None
            # a merge continues the lane of its longest input (the main path, wherever
            # the spec writes it), so the path runs straight through the merge
            main_first = sorted(
                (p for p in preds[i] if p is not None and cont[p] == i),
                key=lambda p: (-(y[p] + units[p].h), -asap[p], lane_of[p]),
            )
            for lane in (lane_of[p] for p in main_first):
                if free(lane, a, b):
                    choice = lane
                    break
            if choice is None and None in preds[i] and not entry_lane_taken and free(0, a, b):
                choice = 0
            if choice is None:
                choice = lowest_free(a, b)
            if None in preds[i] and choice == 0:
                entry_lane_taken = True
            lane_of[i] = choice
            take(choice, a, b)
        for p in preds[i]:
            if (p, i) in corridor:
                top = -ENTRY if p is None else y[p] + units[p].h
                c = lowest_free(top, y[i] - GAP // 2)
                take(c, top, y[i] - GAP // 2)
                corridor_lane[(p, i)] = c

    nl = max(1, len(lanes))
    left = [0] * nl
    right = [0] * nl
    for i, u in enumerate(units):
        if i in span:
            continue
        left[lane_of[i]] = max(left[lane_of[i]], u.port)
        right[lane_of[i]] = max(right[lane_of[i]], u.w - u.port)
    for c in corridor_lane.values():
        left[c] = max(left[c], CORRIDOR // 2)
        right[c] = max(right[c], CORRIDOR // 2)
    axis = [0] * nl
    x0 = 0
    for lane in range(nl):
        axis[lane] = x0 + left[lane]
        x0 = axis[lane] + right[lane] + HGAP
    x = [0] * n
    for i, u in enumerate(units):
        if i in span:
            lo, hi = span[i]
            x[i] = (axis[lo] + axis[hi]) // 2 - u.port
        else:
            x[i] = axis[lane_of[i]] - u.port
    shift = -min(min(x), 0)
    x = [v + shift for v in x]
    axis = [v + shift for v in axis]
    width = max(max(x[i] + u.w for i, u in enumerate(units)), axis[-1] + right[-1])
    height = max(end[i] for i in range(n))
    out_i = index[out_key]
    port = x[out_i] + units[out_i].port

    items: list = []
    for i, u in enumerate(units):
        items.extend(_shift(u.items, x[i], y[i]))

    # where each edge arrives on its target's top: spread when several arrive
    def source_x(p, t):
        if (p, t) in corridor_lane:
            return axis[corridor_lane[(p, t)]]
        return port if p is None else x[p] + units[p].port

    arrive: dict[tuple, int] = {}
    for t in range(n):
        ins = preds[t]
        tp = x[t] + units[t].port
        if len(ins) == 1:
            arrive[(ins[0], t)] = tp
            continue
        ordered = sorted(ins, key=lambda p: (source_x(p, t), -1 if p is None else p))
        straight = [p for p in ordered if source_x(p, t) == tp and (p, t) not in corridor]
        if straight and len(ordered) <= 2:
            arrive[(straight[0], t)] = tp
            rest = [p for p in ordered if p != straight[0]]
            for p in rest:
                side = 1 if source_x(p, t) > tp else -1
                arrive[(p, t)] = tp + side * (units[t].w // 4)
        else:
            k = len(ordered)
            for j, p in enumerate(ordered):
                arrive[(p, t)] = x[t] + units[t].w * (j + 1) // (k + 1)

    for t in range(n):
        for p in preds[t]:
            tx, ty = arrive[(p, t)], y[t]
            mid = ty - GAP // 2
            if p is None:
                sx, sy, turn = port, -ENTRY, -ENTRY // 2
            else:
                sx, sy = x[p] + units[p].port, y[p] + units[p].h
                turn = sy + GAP // 2
            if (p, t) in corridor_lane:
                cx = axis[corridor_lane[(p, t)]]
                pts = [(sx, sy), (sx, turn), (cx, turn), (cx, mid), (tx, mid), (tx, ty)]
                dashed = True
            else:
                if p is None:
                    pts = [(sx, sy), (sx, turn), (tx, turn), (tx, ty)]
                else:
                    pts = [(sx, sy), (sx, mid), (tx, mid), (tx, ty)]
                dashed = dashed_edge[(p, t)]
            items.append(Edge(_simplify(pts), dashed))
    for i, u in enumerate(units):
        if i in succs or (label_output and u.key == out_key):
            lx = x[i] + u.port + 4
            ly = y[i] + u.h + 11
            items.append(Label(lx, ly, u.shape))
            if label_output and u.key == out_key:
                height = max(height, y[i] + u.h + GAP // 2)
    return _Placed(width, height, port, x[0] + units[0].port, y[out_i] + units[out_i].h, items)


def _simplify(pts: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for p in pts:
        if out and out[-1] == p:
            continue
        if len(out) >= 2:
            (ax, ay), (bx, by) = out[-2], out[-1]
            if (ax == bx == p[0]) or (ay == by == p[1]):
                out[-1] = p
                continue
        out.append(p)
    return out


# ---------------------------------------------------------------------------
# The whole model: segments, columns, title and legend
# ---------------------------------------------------------------------------


def _columns(heights: list[int], width: int) -> list[list[int]]:
    """Which segments (of these heights) go in which column: one column up to
    MAX_SINGLE_COLUMN pixels; beyond, at most as many columns as make the drawing
    about square, and the fewest whose tallest column is within a quarter of what
    that most would give (a U-Net, one long segment from its input to its output,
    stays one column). The cuts are the best ones (dynamic programming over where
    each column starts; ties: the earliest)."""
    n = len(heights)
    total = sum(heights)
    if total <= MAX_SINGLE_COLUMN:
        return [list(range(n))]
    most = max(1, min(n, round(math.sqrt(total / (width + COLUMN_GAP)))))
    prefix = [0]
    for h in heights:
        prefix.append(prefix[-1] + h)
    # best[j][i]: the tallest column when heights[:i] fill j columns; start[j][i]:
    # where the last of them starts
    best = [[total + 1] * (n + 1) for _ in range(most + 1)]
    start = [[0] * (n + 1) for _ in range(most + 1)]
    best[0][0] = 0
    for j in range(1, most + 1):
        for i in range(j, n + 1):
            for m in range(j - 1, i):
                v = max(best[j - 1][m], prefix[i] - prefix[m])
                if v < best[j][i]:
                    best[j][i], start[j][i] = v, m
    k = next(j for j in range(1, most + 1) if best[j][n] <= best[most][n] * 1.25)
    runs: list[list[int]] = []
    i = n
    for j in range(k, 0, -1):
        m = start[j][i]
        runs.append(list(range(m, i)))
        i = m
    return runs[::-1]


def layout(model: Model, depth: int | None = None) -> Layout:
    """The diagram of `model`: blocks nested `depth` levels deep or more are drawn
    as one box each (0: every block collapsed; None: none)."""
    b = _Builder(model, depth)
    nodes = list(model.nodes)
    units = b.units("", nodes, 0)
    keys = {u.key for u in units}
    edges = b.edges("", nodes, 0, keys)
    index = {u.key: i for i, u in enumerate(units)}
    # a cut after unit c is where only the edge c -> c+1 runs: the model can be
    # wrapped into another column there
    n = len(units)
    blocked = [0] * (n + 1)
    for s, d, _ in edges:
        if s is None:
            continue
        si, di = index[s], index[d]
        if di - si > 1:
            blocked[si] += 1
            blocked[di] -= 1
    segments: list[list[int]] = [[]]
    open_spans = 0
    for i in range(n):
        segments[-1].append(i)
        open_spans += blocked[i]
        if open_spans == 0 and i + 1 < n:
            segments.append([])
    out_key = b.unit_of(model.output, 0)
    placed = []
    for seg in segments:
        members = {units[i].key for i in seg}
        seg_edges = [(s, d, x) for s, d, x in edges if s in members and d in members]
        last = out_key if out_key in members else units[seg[-1]].key
        placed.append(_arrange([units[i] for i in seg], seg_edges, last, label_output=True))

    # columns
    def step(p: _Placed) -> int:  # from a segment's top to the next one's
        return max(p.h, p.out_bottom + GAP // 2) + GAP // 2

    columns = _columns([step(p) for p in placed], max(p.w for p in placed))

    title = model.name
    subtitle = (
        f"{model.params:,} parameters \u00b7 {model.macs:,} MACs \u00b7 input "
        f"{_shape(model.input_shape)} \u00b7 output {_shape(model.output_shape)}"
    )
    body: list = []
    x0 = 0
    ends: list[tuple[int, int, int]] = []  # per column: out x, out bottom, right edge
    starts: list[tuple[int, int]] = []  # per column: in x, top
    for col in columns:
        left = max(placed[k].in_port for k in col)
        right = max(placed[k].w - placed[k].in_port for k in col)
        y0 = 0
        prev = None
        for k in col:
            p = placed[k]
            dx = x0 + left - p.in_port
            body.extend(_shift(p.items, dx, y0))
            if prev is not None:
                (px, pb) = prev
                body.append(Edge(_simplify([(px, pb), (px, y0 - GAP // 2),
                                            (dx + p.in_port, y0 - GAP // 2),
                                            (dx + p.in_port, y0)]), False))  # fmt: skip
            if k == col[0]:
                starts.append((dx + p.in_port, y0))
            prev = (dx + p.port, y0 + p.out_bottom)
            y0 += step(p)
        ends.append((prev[0], prev[1], x0 + left + right))
        x0 += left + right + COLUMN_GAP
    for c in range(len(columns) - 1):
        ox, ob, edge_x = ends[c]
        ix, it = starts[c + 1]
        gutter = edge_x + COLUMN_GAP // 2
        body.append(Edge(_simplify([(ox, ob), (ox, ob + GAP // 2), (gutter, ob + GAP // 2),
                                    (gutter, it - GAP // 2), (ix, it - GAP // 2), (ix, it)]),
                         False))  # fmt: skip
    # the legend: the colours the drawing uses, and the dashed edges if any
    drawn = {it.family for it in body if isinstance(it, Box)}
    legend = [(label, fill, stroke) for fam, (label, fill, stroke, _) in FAMILIES.items()
              if fam in drawn]  # fmt: skip
    if "block" in drawn:
        legend.append(BLOCK_FAMILY)
    if any(isinstance(it, Edge) and it.dashed for it in body):
        legend.append(DASHED)
    width = max(x0 - COLUMN_GAP, 1)
    height = max(
        max((it.y + it.h for it in body if isinstance(it, (Box, Frame))), default=0),
        max((it.y for it in body if isinstance(it, Label)), default=0) + 4,
        max((y for it in body if isinstance(it, Edge) for _, y in it.points), default=0),
    )
    # title, subtitle and legend rows above the drawing
    inner_w = max(width, 560)
    legend_pos = []
    lx, ly = MARGIN, MARGIN + 40
    for label, fill, stroke in legend:
        w = 14 + 6 + text_width(label, SIZE_NAME) + 16
        if lx + w > MARGIN + inner_w and lx > MARGIN:
            lx, ly = MARGIN, ly + 18
        legend_pos.append((lx, ly, label, fill, stroke))
        lx += w
    top = ly + 18 + GAP
    items = _shift(body, MARGIN, top)
    out = Layout(
        width=inner_w + 2 * MARGIN,
        height=top + height + MARGIN,
        title=title,
        subtitle=subtitle,
        legend=legend_pos,
    )
    for it in items:
        if isinstance(it, Frame):
            out.frames.append(it)
        elif isinstance(it, Edge):
            out.edges.append(it)
        elif isinstance(it, Label):
            out.labels.append(it)
        else:
            out.boxes.append(it)
    return out


# ---------------------------------------------------------------------------
# SVG
# ---------------------------------------------------------------------------


def _colours(family: str) -> tuple[str, str]:
    if family == "block":
        return BLOCK_FAMILY[1], BLOCK_FAMILY[2]
    _, fill, stroke, _ = FAMILIES[family]
    return fill, stroke


def _band(f: Frame) -> str:
    """The path of a frame's title band: rounded top corners, square bottom."""
    r = 8
    x, y, w = f.x, f.y, f.w
    return (
        f"M{x},{y + HEADER} V{y + r} Q{x},{y} {x + r},{y} H{x + w - r} "
        f"Q{x + w},{y} {x + w},{y + r} V{y + HEADER} Z"
    )


def svg(model: Model, depth: int | None = None) -> str:
    """The diagram as SVG text (identical for identical input)."""
    return render_svg(layout(model, depth))


def render_svg(lay: Layout) -> str:
    w, h = lay.width, lay.height
    out = [
        (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
            f'viewBox="0 0 {w} {h}" font-family="{FONT_FAMILY}">'
        ),
        f"<title>{escape(lay.title)}</title>",
        (
            '<defs><marker id="archc-arrow" viewBox="0 0 8 8" refX="8" refY="4" '
            'markerWidth="7" markerHeight="7" orient="auto">'
            f'<path d="M0,0 L8,4 L0,8 z" fill="{EDGE}"/></marker></defs>'
        ),
        f'<rect width="{w}" height="{h}" fill="#ffffff"/>',
        (
            f'<text x="{MARGIN}" y="{MARGIN + 12}" font-size="15" font-weight="bold">'
            f"{escape(lay.title)}</text>"
        ),
        (
            f'<text x="{MARGIN}" y="{MARGIN + 28}" font-size="{SIZE_NAME}" fill="{LABEL}">'
            f"{escape(lay.subtitle)}</text>"
        ),
        '<g class="legend">',
    ]
    for x, y, label, fill, stroke in lay.legend:
        if fill:
            out.append(
                f'<rect x="{x}" y="{y}" width="14" height="12" rx="2" fill="{fill}" '
                f'stroke="{stroke}"/>'
            )
        else:
            out.append(
                f'<path d="M{x},{y + 6} L{x + 14},{y + 6}" stroke="{EDGE}" stroke-width="1.2" '
                'stroke-dasharray="4 2"/>'
            )
        out.append(
            f'<text x="{x + 20}" y="{y + 10}" font-size="{SIZE_NAME}">{escape(label)}</text>'
        )
    out.append("</g>")
    for f in lay.frames:
        out.append(
            f'<g id={quoteattr(f.id)} class="block"><title>{escape(f.tooltip)}</title>'
            f'<rect x="{f.x}" y="{f.y}" width="{f.w}" height="{f.h}" rx="8" '
            f'fill="{FRAME_FILL[f.level % 2]}" stroke="{FRAME_STROKE}"/></g>'
        )
    for e in lay.edges:
        d = " ".join(f"{'M' if i == 0 else 'L'}{x},{y}" for i, (x, y) in enumerate(e.points))
        dash = ' stroke-dasharray="5 3"' if e.dashed else ""
        out.append(
            f'<path d="{d}" fill="none" stroke="{EDGE}" stroke-width="1.2"{dash} '
            'marker-end="url(#archc-arrow)"/>'
        )
    for f in lay.frames:
        out.append(
            f'<path d="{_band(f)}" fill="#e2e4ec" stroke="{FRAME_STROKE}"/>'
            f'<text x="{f.x + PAD_X}" y="{f.y + 14}" font-size="{SIZE_TITLE}" '
            f'font-weight="bold">{escape(f.title)}</text>'
        )
    for lb in lay.labels:
        out.append(
            f'<text x="{lb.x}" y="{lb.y}" font-size="{SIZE_LABEL}" fill="{LABEL}">'
            f"{escape(lb.text)}</text>"
        )
    for bx in lay.boxes:
        fill, stroke = _colours(bx.family)
        cls = "node" if bx.family != "block" else "block collapsed"
        out.append(
            f'<g id={quoteattr(bx.id)} class="{cls} {bx.family}" data-name={quoteattr(bx.node)}>'
            f"<title>{escape(bx.tooltip)}</title>"
            f'<rect x="{bx.x}" y="{bx.y}" width="{bx.w}" height="{bx.h}" rx="4" '
            f'fill="{fill}" stroke="{stroke}"/>'
            f'<text x="{bx.x + PAD_X}" y="{bx.y + 14}" font-size="{SIZE_KIND}" '
            f'font-weight="bold">{escape(bx.lines[0])}</text>'
            f'<text x="{bx.x + PAD_X}" y="{bx.y + 28}" font-size="{SIZE_NAME}" fill="#333333">'
            f"{escape(bx.lines[1])}</text></g>"
        )
    out.append("</svg>")
    return "\n".join(out) + "\n"


# ---------------------------------------------------------------------------
# PNG (Pillow, imported here only: `archc diagram -o x.png` needs the diagram extra)
# ---------------------------------------------------------------------------


def png_scale(lay: Layout) -> int:
    """Pixels per layout unit in the PNG: 2 (sharp) unless the drawing is large."""
    return 2 if lay.width * lay.height <= 4_000_000 else 1


def png(model: Model, depth: int | None = None) -> bytes:
    """The diagram as PNG bytes (needs Pillow)."""
    return render_png(layout(model, depth))


def _rgb(colour: str) -> tuple[int, int, int]:
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def render_png(lay: Layout) -> bytes:
    import io

    from PIL import Image, ImageDraw, ImageFont

    s = png_scale(lay)
    img = Image.new("RGB", (lay.width * s, lay.height * s), "#ffffff")
    draw = ImageDraw.Draw(img)
    fonts: dict[int, object] = {}

    def font(size: int):
        if size not in fonts:
            fonts[size] = ImageFont.load_default(size * s)
        return fonts[size]

    def text(x: int, y: int, value: str, size: int, fill: str = "#000000", bold=False) -> None:
        draw.text((x * s, y * s), value, font=font(size), fill=_rgb(fill), anchor="ls",
                  stroke_width=(0.35 * s if bold else 0), stroke_fill=_rgb(fill))  # fmt: skip

    def line(points, dashed: bool) -> None:
        pts = [(x * s, y * s) for x, y in points]
        width = max(1, round(1.2 * s))
        if not dashed:
            draw.line(pts, fill=_rgb(EDGE), width=width, joint="curve")
        else:
            on, off = 5 * s, 3 * s
            phase = 0.0
            for (ax, ay), (bx, by) in itertools.pairwise(pts):
                length = math.hypot(bx - ax, by - ay)
                t = 0.0
                while t < length:
                    seg = (on if phase < on else on + off) - phase
                    t2 = min(length, t + seg)
                    if phase < on:
                        draw.line([(ax + (bx - ax) * t / length, ay + (by - ay) * t / length),
                                   (ax + (bx - ax) * t2 / length, ay + (by - ay) * t2 / length)],
                                  fill=_rgb(EDGE), width=width)  # fmt: skip
                    phase = (phase + (t2 - t)) % (on + off)
                    t = t2
        (ax, ay), (bx, by) = pts[-2], pts[-1]
        length = math.hypot(bx - ax, by - ay) or 1.0
        ux, uy = (bx - ax) / length, (by - ay) / length
        head, half = 7 * s, 3.5 * s
        draw.polygon(
            [(bx, by), (bx - ux * head - uy * half, by - uy * head + ux * half),
             (bx - ux * head + uy * half, by - uy * head - ux * half)],
            fill=_rgb(EDGE),
        )  # fmt: skip

    text(MARGIN, MARGIN + 12, lay.title, 15, bold=True)
    text(MARGIN, MARGIN + 28, lay.subtitle, SIZE_NAME, LABEL)
    for x, y, label, fill, stroke in lay.legend:
        if fill:
            draw.rounded_rectangle([x * s, y * s, (x + 14) * s, (y + 12) * s], radius=2 * s,
                                   fill=_rgb(fill), outline=_rgb(stroke), width=s)  # fmt: skip
        else:
            for a in (0, 6, 12):
                draw.line([((x + a) * s, (y + 6) * s), ((x + min(a + 4, 14)) * s, (y + 6) * s)],
                          fill=_rgb(EDGE), width=max(1, round(1.2 * s)))  # fmt: skip
        text(x + 20, y + 10, label, SIZE_NAME)
    for f in lay.frames:
        draw.rounded_rectangle([f.x * s, f.y * s, (f.x + f.w) * s, (f.y + f.h) * s],
                               radius=8 * s, fill=_rgb(FRAME_FILL[f.level % 2]),
                               outline=_rgb(FRAME_STROKE), width=s)  # fmt: skip
    for e in lay.edges:
        line(e.points, e.dashed)
    for f in lay.frames:
        draw.rounded_rectangle([f.x * s, f.y * s, (f.x + f.w) * s, (f.y + HEADER) * s],
                               radius=8 * s, corners=(True, True, False, False),
                               fill=_rgb("#e2e4ec"), outline=_rgb(FRAME_STROKE), width=s)  # fmt: skip
        text(f.x + PAD_X, f.y + 14, f.title, SIZE_TITLE, bold=True)
    for lb in lay.labels:
        text(lb.x, lb.y, lb.text, SIZE_LABEL, LABEL)
    for bx in lay.boxes:
        fill, stroke = _colours(bx.family)
        draw.rounded_rectangle([bx.x * s, bx.y * s, (bx.x + bx.w) * s, (bx.y + bx.h) * s],
                               radius=4 * s, fill=_rgb(fill), outline=_rgb(stroke), width=s)  # fmt: skip
        text(bx.x + PAD_X, bx.y + 14, bx.lines[0], SIZE_KIND, bold=True)
        text(bx.x + PAD_X, bx.y + 28, bx.lines[1], SIZE_NAME, "#333333")
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=False)
    return buf.getvalue()
