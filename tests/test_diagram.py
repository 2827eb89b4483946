"""`archc diagram`: the drawing is valid SVG naming every node, identical for
identical input, and laid out as the graph is (branches side by side, merges below
their inputs, blocks framed around their nodes or collapsed); the PNG is the same
layout; the command's errors are archc's."""

from __future__ import annotations

import io
import pathlib
import xml.etree.ElementTree as ET

import pytest

from archc import diagram
from archc.ir.kinds import KINDS
from archc.pipeline import compile_spec, compile_text
from tests.test_cli import OPTIONAL, run_archc

ROOT = pathlib.Path(__file__).resolve().parent.parent
SVG = "{http://www.w3.org/2000/svg}"
LOOKED_AT = ("course_lenet5", "course_inception10", "resnet18", "densenet121", "unet")
MERGES = ("concat", "add", "mul")


@pytest.fixture(scope="module")
def models():
    return {name: compile_spec(str(ROOT / "specs" / f"{name}.cnn")) for name in LOOKED_AT}


def rects(svg_text: str) -> dict[str, tuple[int, int, int, int]]:
    """id -> (x, y, w, h) of every element with an id and a rectangle (nodes, blocks)."""
    out = {}
    for g in ET.fromstring(svg_text).iter(f"{SVG}g"):
        if "id" not in g.attrib:
            continue
        r = g.find(f"{SVG}rect")
        out[g.attrib["id"]] = tuple(int(r.attrib[k]) for k in ("x", "y", "width", "height"))
    return out


def overlap(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def test_every_kind_has_exactly_one_colour_family():
    listed = [k for _, _, _, kinds in diagram.FAMILIES.values() for k in kinds]
    assert sorted(listed) == sorted(set(listed)), "a kind in two families"
    assert set(listed) == set(KINDS), set(KINDS) ^ set(listed)


@pytest.mark.parametrize("name", LOOKED_AT)
def test_svg_parses_and_names_every_node(models, name):
    model = models[name]
    root = ET.fromstring(diagram.svg(model))
    assert root.tag == f"{SVG}svg"
    named = {g.attrib["id"]: g for g in root.iter(f"{SVG}g") if "id" in g.attrib}
    for n in model.nodes:
        g = named[f"n-{n.name}"]
        assert g.attrib["data-name"] == n.name
        title = g.find(f"{SVG}title").text
        assert title.splitlines()[0] == n.name
        assert f"output {'x'.join(map(str, n.out_shape))}" in title
    frames = {i for i in named if i.startswith("b-")}
    assert frames == {f"b-{b.path}" for b in model.blocks}


@pytest.mark.parametrize("name", LOOKED_AT)
def test_boxes_do_not_overlap_and_frames_hold_their_nodes(models, name):
    model = models[name]
    boxes = rects(diagram.svg(model))
    nodes = [(n, boxes[f"n-{n.name}"]) for n in model.nodes]
    ordered = sorted(nodes, key=lambda t: t[1][0])
    for i, (a, ra) in enumerate(ordered):
        for b, rb in ordered[i + 1 :]:
            if rb[0] >= ra[0] + ra[2]:
                break
            assert not overlap((ra[1], ra[1] + ra[3]), (rb[1], rb[1] + rb[3])), (a.name, b.name)
    for n, (x, y, w, h) in nodes:
        parts = n.scope.split(".") if n.scope else []
        for k in range(1, len(parts) + 1):
            fx, fy, fw, fh = boxes["b-" + ".".join(parts[:k])]
            assert fx < x and x + w < fx + fw and fy < y and y + h < fy + fh, n.name


def edges_through_boxes(lay: diagram.Layout) -> list[tuple[str, tuple]]:
    """Edge segments that pass through the inside of a box (touching its border, where
    an edge leaves or arrives, is not inside)."""
    found = []
    for e in lay.edges:
        for (ax, ay), (bx, by) in zip(e.points, e.points[1:]):
            x0, x1 = sorted((ax, bx))
            y0, y1 = sorted((ay, by))
            for b in lay.boxes:
                if x1 > b.x and x0 < b.x + b.w and y1 > b.y and y0 < b.y + b.h:
                    found.append((b.id, (ax, ay, bx, by)))
    return found


def boxes_overlapping(lay: diagram.Layout) -> list[tuple[str, str]]:
    found = []
    ordered = sorted(lay.boxes, key=lambda b: (b.x, b.y))
    for i, a in enumerate(ordered):
        for b in ordered[i + 1 :]:
            if b.x >= a.x + a.w:
                break
            if overlap((a.y, a.y + a.h), (b.y, b.y + b.h)):
                found.append((a.id, b.id))
    return found


@pytest.mark.parametrize("depth", [None, 0, 1])
@pytest.mark.parametrize("name", LOOKED_AT)
def test_no_edge_runs_through_a_box(models, name, depth):
    lay = diagram.layout(models[name], depth)
    assert not edges_through_boxes(lay)
    assert not boxes_overlapping(lay)


def test_the_edge_check_can_fail(models):
    lay = diagram.layout(models["course_lenet5"])
    b = lay.boxes[3]
    lay.edges.append(diagram.Edge([(b.x + 5, b.y - 20), (b.x + 5, b.y + b.h + 20)], False))
    assert edges_through_boxes(lay) == [(b.id, (b.x + 5, b.y - 20, b.x + 5, b.y + b.h + 20))]


@pytest.mark.slow
def test_every_spec_draws_without_crossings():
    from archc.pipeline import check_spec

    for path in sorted((ROOT / "specs").glob("*.cnn")):
        model = check_spec(str(path))
        if isinstance(model, list):  # a library of blocks
            continue
        for depth in (None, 1):
            lay = diagram.layout(model, depth)
            assert not edges_through_boxes(lay), (path.name, depth)
            assert not boxes_overlapping(lay), (path.name, depth)
            ET.fromstring(diagram.render_svg(lay))


@pytest.mark.parametrize("name", LOOKED_AT)
def test_a_merge_sits_below_all_its_inputs(models, name):
    model = models[name]
    boxes = rects(diagram.svg(model))
    merges = [n for n in model.nodes if n.kind in MERGES]
    assert merges or name == "course_lenet5"
    for n in merges:
        top = boxes[f"n-{n.name}"][1]
        # the column the merge stands in: its outermost frame (or itself)
        outer = boxes[f"b-{n.scope.split('.')[0]}" if n.scope else f"n-{n.name}"]
        for i in n.inputs:
            x, y, w, h = boxes[f"n-{i}"]
            if x + w < outer[0]:  # the end of the previous column (a long model wraps)
                continue
            assert y + h < top, (n.name, i)


def test_the_branches_of_an_inception_module_stand_side_by_side(models):
    model = models["course_inception10"]
    boxes = rects(diagram.svg(model))
    by_name = {n.name: n for n in model.nodes}
    (cat,) = [n for n in model.nodes if n.scope == "inception_blk1" and n.kind == "concat"]
    assert len(cat.inputs) == 4
    spans = []
    for start in cat.inputs:  # each branch: back from the concat to the module's input
        xs, ys, todo = [], [], [start]
        while todo:
            n = by_name[todo.pop()]
            if not n.scope.startswith("inception_blk1"):
                continue
            x, y, w, h = boxes[f"n-{n.name}"]
            xs += [x, x + w]
            ys += [y, y + h]
            todo += n.inputs
        spans.append(((min(xs), max(xs)), (min(ys), max(ys))))
    for i, (xa, ya) in enumerate(spans):
        for xb, yb in spans[i + 1 :]:
            assert not overlap(xa, xb), "branches share columns"
            assert overlap(ya, yb), "branches do not stand at one height"


def test_shortcuts_and_skips_are_dashed_edges_routed_around(models):
    def dashed(model) -> int:
        root = ET.fromstring(diagram.svg(model))
        edges = [p for p in root.iter(f"{SVG}path") if "marker-end" in p.attrib]
        return sum(1 for p in edges if "stroke-dasharray" in p.attrib)

    # resnet18: the identity shortcuts (blocks 1, 2, 4, 6, 8); the projections are
    # layers of their own, drawn beside the main path
    identity = [
        b
        for b in models["resnet18"].blocks
        if b.block == "ResnetBlock" and not b.args["residual_path"]
    ]
    assert dashed(models["resnet18"]) == len(identity) == 5
    assert dashed(models["unet"]) == 4  # @enc1 .. @enc4
    assert dashed(models["course_lenet5"]) == 0


def test_every_tensor_shape_is_written_on_its_edge(models):
    model = models["course_lenet5"]
    texts = [t.text for t in ET.fromstring(diagram.svg(model)).iter(f"{SVG}text")]
    for n in model.nodes:
        assert "x".join(map(str, n.out_shape)) in texts, n.name


def test_identical_input_gives_identical_bytes():
    path = str(ROOT / "specs" / "course_inception10.cnn")
    a, b = compile_spec(path), compile_spec(path)
    assert diagram.svg(a) == diagram.svg(b)
    assert diagram.svg(a, depth=1) == diagram.svg(b, depth=1)
    pytest.importorskip("PIL")
    assert diagram.png(a, depth=1) == diagram.png(b, depth=1)


def test_depth_collapses_blocks_to_one_box(models):
    model = models["course_inception10"]
    full = rects(diagram.svg(model))
    one = rects(diagram.svg(model, depth=1))
    zero = rects(diagram.svg(model, depth=0))

    def nodes(boxes):
        return {i for i in boxes if i.startswith("n-")}

    assert len(nodes(zero)) < len(nodes(one)) < len(nodes(full)) == len(model.nodes)
    # depth 1: the Inception modules stay open, the ConvBNRelu inside them are boxes
    assert "b-inception_blk1" in one and "n-inception_blk1.p1" in one
    assert "n-inception_blk1.conv_bn_relu1.c1" not in one
    assert "b-inception_blk1.conv_bn_relu1" in one
    # depth 0: every top-level block is one box; nested ones are not drawn
    assert {i for i in zero if i.startswith("b-")} == {
        f"b-{b.path}" for b in model.blocks if "." not in b.path
    }
    assert nodes(zero) == {f"n-{n.name}" for n in model.nodes if not n.scope}
    root = ET.fromstring(diagram.svg(model, depth=0))
    box = next(g for g in root.iter(f"{SVG}g") if g.attrib.get("id") == "b-inception_blk1")
    assert "collapsed" in box.attrib["class"]
    texts = [t.text for t in box.iter(f"{SVG}text")]
    assert texts[0] == "InceptionBlk(ch=16, s=2)"
    assert "10,208 params" in texts[1]


def test_text_is_escaped():
    lay = diagram.Layout(
        width=100,
        height=100,
        title='a<b & "c"',
        subtitle="x > y",
        legend=[(0, 0, "<&>", "#ffffff", "#000000")],
        boxes=[diagram.Box('n-<&"', 1, 2, 3, 4, "conv", ("<", "&amp;"), "]]>", '"')],
        labels=[diagram.Label(0, 0, "</text>")],
    )
    root = ET.fromstring(diagram.render_svg(lay))
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert {'a<b & "c"', "x > y", "<&>", "<", "&amp;", "</text>"} <= set(texts)
    (g,) = [g for g in root.iter(f"{SVG}g") if "id" in g.attrib]
    assert g.attrib["id"] == 'n-<&"' and g.find(f"{SVG}title").text == "]]>"


def test_the_width_table_holds_the_png_font():
    """Every line the PNG writes fits its box in Pillow's own font."""
    pytest.importorskip("PIL")
    from PIL import ImageFont

    lay = diagram.layout(compile_spec(str(ROOT / "specs" / "densenet121.cnn")), depth=1)
    kind = ImageFont.load_default(diagram.SIZE_KIND)
    name = ImageFont.load_default(diagram.SIZE_NAME)
    for b in lay.boxes:
        assert kind.getlength(b.lines[0]) + 2 * diagram.PAD_X <= b.w, b.lines[0]
        assert name.getlength(b.lines[1]) + 2 * diagram.PAD_X <= b.w, b.lines[1]
    title = ImageFont.load_default(diagram.SIZE_TITLE)
    for f in lay.frames:
        assert title.getlength(f.title) + diagram.PAD_X <= f.w, f.title


def test_a_long_chain_wraps_into_columns():
    model = compile_spec(str(ROOT / "specs" / "resnet152.cnn"))
    lay = diagram.layout(model)
    assert lay.height < 2 * lay.width and lay.width < 2 * lay.height  # roughly square
    # one straight model: each column's first box stands at the top
    tops = sorted({b.y for b in lay.boxes})
    assert sum(1 for b in lay.boxes if b.y == tops[0]) == 1  # the input
    assert len({f.x for f in lay.frames if "." not in f.id}) > 3  # blocks in several columns


def test_a_short_model_is_one_column():
    model = compile_text("input 28*28*1\nC(8*3*3) P(max, 2, 2) Flatten Dense(10)", name="tiny")
    lay = diagram.layout(model)
    xs = {b.x + b.w // 2 for b in lay.boxes}
    assert len(xs) <= 2  # centred on one axis (integer halves aside)
    ys = [b.y for b in lay.boxes]
    assert ys == sorted(ys) and len(set(ys)) == len(ys)


# ---- the command ---------------------------------------------------------------------------


def test_cli_writes_svg_without_any_optional_package(tmp_path):
    out = tmp_path / "r.svg"
    rc, stdout, err, imported = run_archc(
        "diagram", "specs/resnet18.cnn", "-o", str(out), block=(*OPTIONAL, "PIL")
    )
    assert rc == 0, err
    assert imported == [] and f"wrote {out}" in stdout
    assert out.read_text("utf-8") == diagram.svg(compile_spec(str(ROOT / "specs/resnet18.cnn")))


def test_cli_writes_png_of_the_layouts_size(tmp_path):
    PIL = pytest.importorskip("PIL.Image")
    out = tmp_path / "r.png"
    rc, _, err, _ = run_archc("diagram", "specs/course_lenet5.cnn", "-o", str(out), "--depth", "0")
    assert rc == 0, err
    lay = diagram.layout(compile_spec(str(ROOT / "specs/course_lenet5.cnn")), depth=0)
    scale = diagram.png_scale(lay)
    assert scale == 2
    with PIL.open(io.BytesIO(out.read_bytes())) as img:
        img.load()
        assert img.format == "PNG" and img.size == (lay.width * scale, lay.height * scale)
        # drawn, not blank: the input box's outline is dark
        assert img.convert("L").getextrema()[0] < 100


def test_cli_names_the_extra_for_png(tmp_path):
    out = tmp_path / "r.png"
    rc, _, err, _ = run_archc("diagram", "specs/resnet18.cnn", "-o", str(out), block=("PIL",))
    assert rc == 1 and "Traceback" not in err
    assert "archc diagram needs pillow, which is not installed" in err
    assert "'archc[diagram]'" in err
    assert not out.exists()


@pytest.mark.parametrize(
    "args, rc, message",
    [
        (("specs/resnet18.cnn", "-o", "{tmp}/r.jpg"), 2, "must end in .svg or .png"),
        (("specs/resnet18.cnn", "-o", "{tmp}/r.svg", "--depth", "-1"), 2, "between 0 and"),
        (("specs/resnet18.cnn",), 2, "required: -o"),
        (("{tmp}/bad.cnn", "-o", "{tmp}/r.svg"), 1, "error"),
        (("{tmp}/missing.cnn", "-o", "{tmp}/r.svg"), 1, "missing.cnn"),
        (("specs/resnet18.cnn", "-o", "{tmp}/no/such/r.svg"), 1, "cannot write"),
    ],
)
def test_cli_errors(tmp_path, args, rc, message):
    (tmp_path / "bad.cnn").write_text("input 28*28*1\nC(8*3*3) Q(1)\n", "utf-8")
    got, _, err, _ = run_archc("diagram", *(a.format(tmp=tmp_path) for a in args))
    assert got == rc, err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "r.svg").exists() and not (tmp_path / "r.jpg").exists()
