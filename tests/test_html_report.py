"""`archc report --html`: the page as data (it parses, every node and block has
its row with the report's numbers, every link lands, nothing is fetched from a
network, text is escaped, the bytes are deterministic), and the page in a real
browser: headless Chromium (tests/browser.py) loads it without a console error,
a block expands under a real click, the links between source and table lead
where they say, and a screenshot is saved (also into $ARCHC_SCREENSHOTS, when set)."""

from __future__ import annotations

import base64
import math
import os
import pathlib
import shutil
from html import escape
from html.parser import HTMLParser

import pytest

from archc import diagram, html_report, report
from archc.ir.shapes import describe
from archc.pipeline import compile_spec, compile_text
from tests import browser
from tests.test_cli import OPTIONAL, run_archc

ROOT = pathlib.Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
SHOWN = ("course_inception10", "resnet18", "densenet121")  # the three


def _page(name: str):
    """The model of specs/NAME.cnn and its page, its includes' text given."""
    model = compile_spec(str(SPECS / f"{name}.cnn"))
    included = {
        f: pathlib.Path(f).read_text(encoding="utf-8") for f in html_report.included_files(model)
    }
    text = pathlib.Path(model.source).read_text(encoding="utf-8")
    return model, html_report.page(model, text, included)


VOID = {"meta", "br", "hr", "img", "input", "link", "col", "area", "base", "wbr", "source"}
RESOURCE_ATTRS = {"src", "href", "xlink:href", "data", "action", "poster", "srcset", "background"}


class Page(HTMLParser):
    """What the tests read off a page: ids, links, rows, resource references, and
    whether every element closes in order."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.ids: list[str] = []
        self.links: list[tuple[str, str]] = []  # (href, id of the element it is in)
        self.resources: list[str] = []
        self.tags: list[str] = []
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.rows: dict[str, dict] = {}  # tr id -> its attributes and its cells' text
        self._row: str | None = None
        self._cell: list[str] | None = None
        self._in_style = False
        self.style = ""
        self.feed(text)
        self.close()
        if self.stack:
            self.problems.append(f"unclosed: {self.stack}")

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        if "id" in a:
            self.ids.append(a["id"])
        for k, v in attrs:
            if k in RESOURCE_ATTRS and v is not None:
                if k == "href" and v.startswith("#"):
                    self.links.append((v[1:], a.get("id", "")))
                    if self._row:
                        self.rows[self._row]["links"].append(v[1:])
                else:
                    self.resources.append(f"{tag} {k}={v}")
        if tag == "tr" and "id" in a:
            self._row = a["id"]
            self.rows[a["id"]] = {"attrs": a, "cells": [], "links": []}
        if tag in ("td", "th") and self._row:
            self._cell = []
        if tag == "style":
            self._in_style = True
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.stack.pop()

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-1:]}")
        else:
            self.stack.pop()
        if tag in ("td", "th") and self._cell is not None and self._row:
            self.rows[self._row]["cells"].append("".join(self._cell).strip())
            self._cell = None
        if tag == "tr":
            self._row = None
        if tag == "style":
            self._in_style = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        if self._in_style:
            self.style += data


@pytest.fixture(scope="module")
def pages():
    return {name: _page(name) for name in SHOWN}


@pytest.mark.parametrize("name", SHOWN)
def test_page_parses_and_every_link_lands(pages, name):
    _model, text = pages[name]
    page = Page(text)
    assert page.problems == []
    assert text.startswith("<!DOCTYPE html>\n")
    assert len(page.ids) == len(set(page.ids)), "ids are unique"
    ids = set(page.ids)
    assert page.links, "the page has links"
    assert [href for href, _ in page.links if href not in ids] == []
    assert page.tags.count("svg") >= 1  # the diagram, inline


@pytest.mark.parametrize("name", SHOWN)
def test_every_node_and_block_has_its_row_with_the_reports_numbers(pages, name):
    model, text = pages[name]
    page = Page(text)
    shown = {r["path"]: r for r in report.rows(model)}
    for n in model.nodes:
        row = page.rows[f"row-{n.name}"]
        layer, kind, shape, params, macs, memory, rf, inputs, src = row["cells"]
        assert layer == n.name.rsplit(".", 1)[-1]
        assert kind == report._kind(n, model)
        assert shape == describe(n.out_shape)
        assert params == f"{n.params:,}"
        size = 4 * math.prod(n.out_shape) if n.kind != "input" else 0
        assert memory == (report._bytes(size) if size else "-")
        assert rf == report._rf(n.rf)
        assert inputs == ", ".join(shown[n.name]["inputs"])
        assert macs == (report._si(n.macs) if n.macs else "-")
        assert row["attrs"]["data-scope"] == n.scope
        assert src == f"{n.loc.line}:{n.loc.col}"
    for b in model.blocks:
        row = page.rows[f"blk-{b.path}"]
        assert row["attrs"]["data-path"] == b.path
        assert row["attrs"]["data-scope"] == b.path.rpartition(".")[0]
        layer, kind, shape, params, macs, memory, rf, inputs, src = row["cells"]
        r = shown[b.path]
        assert (layer, kind, shape) == (
            b.path.rsplit(".", 1)[-1],
            r["label"],
            describe(r["out_shape"]),
        )
        assert (params, macs, memory) == (
            f"{r['params']:,}",
            report._si(r["macs"]) if r["macs"] else "-",
            "",
        )
        assert (rf, inputs, src) == (
            report._rf(r["rf"]),
            ", ".join(r["inputs"]),
            f"{b.loc.line}:{b.loc.col}",
        )
    assert len(page.rows) == len(model.nodes) + len(model.blocks)
    # the lines the text report prints after its table, memory and train section included
    assert f"<dd>{model.params:,}</dd>" in text
    for _label, value in report._summary(model, report.memory_choice(model)):
        assert f"<td>{escape(value)}</td>" in text or f'"2">{escape(value)}</td>' in text


def test_the_overview_is_the_most_detailed_drawing_that_fits(pages):
    """Inception10's overview opens the Inception blocks (their branches side by
    side) and folds the ConvBNRelu inside them; ResNet18's opened blocks would be
    too wide, so it folds every block. The overview's ids are its own."""
    _, text = pages["course_inception10"]
    ids = set(Page(text).ids)
    assert {"o-n-inception_blk1.cat1", "o-b-inception_blk1.conv_bn_relu1"} <= ids
    assert "o-n-inception_blk1.conv_bn_relu1.c1" not in ids
    assert "Overview: blocks inside blocks drawn as one box" in text
    _, text = pages["resnet18"]
    ids = set(Page(text).ids)
    assert "o-b-resnet_block1" in ids and "o-n-resnet_block1.add1" not in ids
    assert "n-resnet_block1.add1" in ids  # in the full drawing
    assert "Overview: every block drawn as one box" in text
    for svg_id in (i for i in ids if i.startswith("o-")):
        assert svg_id[2:] in ids or svg_id.startswith(("o-b-", "o-archc")), svg_id


def test_bars_are_each_layers_share_of_the_largest(pages):
    model, text = pages["resnet18"]
    biggest = max(model.nodes, key=lambda n: n.params)
    row = text[text.index(f'id="row-{biggest.name}"') :]
    row = row[: row.index("</tr>")]
    assert 'style="width:100.00%"' in row.split("<td", 4)[4]  # the params cell
    small = next(n for n in model.nodes if 0 < n.params < biggest.params)
    row = text[text.index(f'id="row-{small.name}"') :]
    share = f"{100 * small.params / biggest.params:.2f}%"
    assert f'style="width:{share}"' in row[: row.index("</tr>")]


def test_each_layer_links_to_its_source_and_back(pages):
    model, text = pages["course_inception10"]
    page = Page(text)
    rows_at: dict[str, list[str]] = {}
    for row_id, row in page.rows.items():
        rows_at.setdefault(row["attrs"]["data-loc"], []).append(row_id)
    for n in model.nodes:
        anchor = page.rows[f"row-{n.name}"]["attrs"]["data-loc"]
        assert anchor in page.ids  # the row links to its source position
        assert page.rows[f"row-{n.name}"]["links"] == [anchor]
        # the source position links to the first row written there
        back = next(href for href, own in page.links if own == anchor)
        assert back == rows_at[anchor][0]
    # the included file is shown, and the Inception block's concat, written
    # there, links to its rows; a block call in the spec links to its header
    stdlib = html_report.included_files(model)
    assert [pathlib.Path(f).name for f in stdlib] == ["stdlib.cnn"]
    assert "<code>" + str(stdlib[0]) + "</code>" in text
    concat = next(n for n in model.nodes if n.kind == "concat")
    assert page.rows[f"row-{concat.name}"]["attrs"]["data-loc"].startswith("s1-")
    block = model.blocks[0]
    assert block.loc.file == model.source
    assert page.rows[f"blk-{block.path}"]["links"] == [f"s0-{block.loc.line}-{block.loc.col}"]


def test_no_resource_comes_from_a_network(pages):
    for _model, text in pages.values():
        page = Page(text)
        assert page.resources == []  # no src=, no external href= at all
        assert "link" not in page.tags and "iframe" not in page.tags and "img" not in page.tags
        assert "url(" not in page.style and "@import" not in page.style
        assert "@font-face" not in page.style


def test_text_is_escaped():
    hostile = (
        "# </pre><script>alert(1)</script> & <b>\n"
        "model m\ninput 8*8*1\nC(4*3*3, s1, same) A(relu)\nGAP\nDense(2)\n"
    )
    model = compile_text(hostile, path="t<x>.cnn")
    text = html_report.page(model, hostile)
    page = Page(text)
    assert page.problems == []
    assert "<script>alert(1)" not in text and "<b>" not in text
    assert "&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt; &amp; &lt;b&gt;" in text
    assert "<code>t&lt;x&gt;.cnn</code>" in text
    assert page.tags.count("script") == 1  # the page's own


def test_page_bytes_are_deterministic(pages):
    model, text = pages["densenet121"]
    again_model, again = _page("densenet121")
    assert again == text
    assert html_report.page(model, "x", {}) == html_report.page(again_model, "x", {})


def test_cli_writes_the_page_with_the_core_dependencies_only(tmp_path):
    out = tmp_path / "r.html"
    pages = []
    for seed in ("1", "2"):
        rc, stdout, err, imported = run_archc(
            "report",
            "specs/resnet18.cnn",
            "--html",
            str(out),
            block=OPTIONAL,
            env={"PYTHONHASHSEED": seed},
        )
        assert rc == 0, err[-2000:]
        assert stdout.strip() == f"wrote {out}" and imported == []
        pages.append(out.read_bytes())
    assert pages[0] == pages[1]  # the same bytes in another process, another hash seed
    model = compile_spec("specs/resnet18.cnn")
    included = {
        f: (ROOT / f).read_text(encoding="utf-8") for f in html_report.included_files(model)
    }
    spec = (ROOT / "specs/resnet18.cnn").read_text(encoding="utf-8")
    assert pages[0].decode() == html_report.page(model, spec, included)


def test_cli_options_reach_the_page(tmp_path):
    out = tmp_path / "r.html"
    rc, _, err, _ = run_archc(
        "report", "specs/resnet18.cnn", "--html", str(out),
        "--batch", "8", "--dtype", "bfloat16", "--input", "64x64x3", "--depth", "1",
    )  # fmt: skip
    assert rc == 0, err[-2000:]
    text = out.read_text(encoding="utf-8")
    assert "batch 8 (--batch), bfloat16 (--dtype)" in text
    assert "input 64 x 64 x 3" in text and 'data-depth="1"' in text


def test_cli_refuses_a_page_it_cannot_write(tmp_path):
    target = tmp_path / "missing" / "r.html"
    rc, _, err, _ = run_archc("report", "specs/resnet18.cnn", "--html", str(target))
    assert rc == 1 and "cannot write" in err and "Traceback" not in err
    assert not target.parent.exists()
    folder = tmp_path / "a_folder"  # written whole, then it cannot take the folder's place
    folder.mkdir()
    rc, _, err, _ = run_archc("report", "specs/resnet18.cnn", "--html", str(folder))
    assert rc == 1 and "cannot write" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_folder"]  # no partial page left
    rc, _, err, _ = run_archc("report", "specs/resnet18.cnn", "--html", "x.html", "--json")
    assert rc == 2 and "not allowed with" in err


# ---------------------------------------------------------------------------
# In a real browser
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chromium(tmp_path_factory):
    exe = browser.executable()
    if exe is None:
        pytest.skip(
            "Chromium is not installed, so the HTML report is not checked in a browser "
            "(Debian: `apt-get install chromium`; .ci/run installs it when run as root)"
        )
    with browser.Chromium.start(exe, tmp_path_factory.mktemp("chromium")) as b:
        for domain in ("Runtime", "Log", "Page"):
            b.call(f"{domain}.enable")
        b.call(
            "Emulation.setDeviceMetricsOverride",
            width=1600,
            height=1000,
            deviceScaleFactor=1,
            mobile=False,
        )
        yield b


def _load(b: browser.Chromium, path: pathlib.Path) -> None:
    b.events.clear()
    b.call("Page.navigate", url=path.as_uri())
    b.wait_for("Page.loadEventFired")


def _screenshot(b: browser.Chromium, path: pathlib.Path, max_height: int = 6000) -> bytes:
    """The whole page (down to max_height) as PNG, saved at `path` and, when
    $ARCHC_SCREENSHOTS is set, into that folder too."""
    size = b.call("Page.getLayoutMetrics")["cssContentSize"]
    clip = {"x": 0, "y": 0, "width": 1600, "height": min(size["height"], max_height), "scale": 1}
    data = b.call("Page.captureScreenshot", format="png", clip=clip, captureBeyondViewport=True)
    png = base64.b64decode(data["data"])
    path.write_bytes(png)
    if os.environ.get("ARCHC_SCREENSHOTS"):
        folder = pathlib.Path(os.environ["ARCHC_SCREENSHOTS"])
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, folder / path.name)
    return png


def _visible(b: browser.Chromium, element_id: str) -> bool:
    return b.evaluate(
        f"(function () {{ var e = document.getElementById({element_id!r});"
        " return !!e && e.getClientRects().length > 0; })()"
    )


def test_the_browser_harness_sees_errors(chromium, tmp_path):
    """The check below can fail: a page that throws and logs an error is caught."""
    bad = tmp_path / "bad.html"
    bad.write_text(
        "<!DOCTYPE html><title>bad</title><script>console.error('boom');"
        "undefinedFunction();</script>",
        encoding="utf-8",
    )
    _load(chromium, bad)
    chromium.evaluate("1")  # let the page's events arrive
    errors = chromium.errors()
    assert any("boom" in e for e in errors) and any("exception" in e for e in errors)


def test_the_page_in_chromium(chromium, pages, tmp_path):
    model, text = pages["resnet18"]
    path = tmp_path / "resnet18.html"
    path.write_text(text, encoding="utf-8")
    _load(chromium, path)
    b = chromium
    # collapsed below the top level: top-level rows show, rows inside blocks do not
    for n in model.nodes:
        assert _visible(b, f"row-{n.name}") == (n.scope == ""), n.name
    # a real click on a block's toggle shows its rows, and only its rows
    block = model.blocks[2]
    inside = [n for n in model.nodes if n.scope == block.path]
    x, y = b.evaluate(
        f"(function () {{ var t = document.getElementById('blk-{block.path}').querySelector('.tog');"
        " t.scrollIntoView({block: 'center'}); var r = t.getBoundingClientRect();"
        " return [r.x + r.width / 2, r.y + r.height / 2]; })()"
    )
    b.click_at(x, y)
    assert inside and all(_visible(b, f"row-{n.name}") for n in inside)
    others = [n for n in model.nodes if n.scope and n.scope != block.path]
    assert not any(_visible(b, f"row-{n.name}") for n in others)
    b.click_at(x, y)
    assert not any(_visible(b, f"row-{n.name}") for n in inside)
    # a source position in the included file: its link leads to the first row
    # written there and opens the blocks around every row written there
    conv = next(n for n in model.nodes if n.scope and n.kind == "conv")
    anchor = Page(text).rows[f"row-{conv.name}"]["attrs"]["data-loc"]
    same = [n.name for n in model.nodes if n.loc == conv.loc]
    assert len(same) > 1
    b.evaluate(f"document.getElementById({anchor!r}).click()")
    assert b.evaluate("location.hash") == f"#row-{same[0]}"
    assert all(_visible(b, f"row-{name}") for name in same)
    hits = b.evaluate("Array.from(document.querySelectorAll('tr.hit')).map(r => r.id)")
    assert hits == [f"row-{name}" for name in same]
    # and back: the row's source link leads to that position, on screen
    b.evaluate(f"document.getElementById('row-{same[-1]}').querySelector('td.src a').click()")
    assert b.evaluate("location.hash") == f"#{anchor}"
    assert b.evaluate(
        f"(function () {{ var r = document.getElementById({anchor!r}).getBoundingClientRect();"
        " return r.top >= 0 && r.bottom <= innerHeight; })()"
    )
    # a box of the diagram leads to its row, opening the blocks around it: a
    # folded block of the overview, and a layer inside a block in the full view
    b.evaluate("document.getElementById('collapse-all').click()")
    deep = next(n for n in model.nodes if n.scope and n.kind == "add")
    assert not _visible(b, f"row-{deep.name}")
    b.evaluate("document.querySelectorAll('details.view > summary')[1].click()")  # open it
    for box, row in (
        (f"o-b-{block.path}", f"blk-{block.path}"),
        (f"n-{deep.name}", f"row-{deep.name}"),
    ):
        x, y = b.evaluate(
            f"(function () {{ var g = document.getElementById('{box}');"
            " g.scrollIntoView({block: 'center', inline: 'center'});"
            " var r = g.querySelector('rect').getBoundingClientRect();"
            " return [r.x + r.width / 2, r.y + r.height / 2]; })()"
        )
        b.click_at(x, y)
        assert b.evaluate("location.hash") == f"#{row}"
        assert _visible(b, row)
    png = _screenshot(b, tmp_path / "html_report_resnet18_clicked.png")
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert b.errors() == []


def test_depth_says_which_blocks_start_open(chromium, tmp_path):
    model, _ = _page("course_inception10")
    text = html_report.page(model, "", {}, depth=1)
    path = tmp_path / "depth1.html"
    path.write_text(text, encoding="utf-8")
    _load(chromium, path)
    for n in model.nodes:
        level = len(n.scope.split(".")) if n.scope else 0
        assert _visible(chromium, f"row-{n.name}") == (level <= 1), n.name
    for b in model.blocks:
        assert _visible(chromium, f"blk-{b.path}") == (b.path.count(".") <= 1), b.path
    assert chromium.errors() == []


def test_without_javascript_every_row_shows(chromium, pages, tmp_path):
    model, text = pages["course_inception10"]
    path = tmp_path / "no_js.html"
    path.write_text(text, encoding="utf-8")
    chromium.call("Emulation.setScriptExecutionDisabled", value=True)
    try:
        _load(chromium, path)
        # (evaluate runs even so: the page's own script does not)
        assert chromium.evaluate("document.documentElement.className") == "nojs"
        assert all(_visible(chromium, f"row-{n.name}") for n in model.nodes)
        assert not _visible(chromium, "expand-all")
    finally:
        chromium.call("Emulation.setScriptExecutionDisabled", value=False)
    assert chromium.errors() == []


@pytest.mark.parametrize("name", SHOWN)
def test_pages_load_without_errors_and_are_screenshotted(chromium, pages, tmp_path, name):
    _model, text = pages[name]
    path = tmp_path / f"{name}.html"
    path.write_text(text, encoding="utf-8")
    _load(chromium, path)
    assert chromium.evaluate("document.documentElement.className") == "js"  # the script ran
    # the page's style leaves the diagrams' drawing alone (a class such as
    # `shape` names a table column in the page and a kind of box in the SVG)
    fonts = chromium.evaluate(
        "Array.from(new Set(Array.from(document.querySelectorAll('.diagram svg text'),"
        " t => getComputedStyle(t).fontFamily)))"
    )
    assert fonts == [diagram.FONT_FAMILY]
    png = _screenshot(chromium, tmp_path / f"html_report_{name}.png")
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert chromium.errors() == []
