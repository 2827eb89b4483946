"""`archc report`: the wiring column, block rows, --depth, Markdown, memory, --input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from archc import report
from archc.pipeline import compile_spec
from tests.helpers import SPECS


def _model(name: str, **kw):
    return compile_spec(str(SPECS / name), **kw)


def _rows(model, depth=None) -> dict[str, dict]:
    """Rows by full path (node name or block instance path)."""
    return {r["path"]: r for r in report.rows(model, depth)}


def _archc(*args):
    return subprocess.run(
        [sys.executable, "-m", "archc", *args], capture_output=True, text=True, timeout=120
    )


# ---- wiring ------------------------------------------------------------------------------


def test_inception_branches_start_at_the_block_input_and_merge_by_name():
    rows = _rows(_model("course_inception10.cnn"))
    blk = "inception_blk2"
    # branches 2-4 start at the block's input: the previous block, named from the top
    for branch in ("conv_bn_relu2", "conv_bn_relu4"):
        assert rows[f"{blk}.{branch}"]["inputs"] == ["/inception_blk1"]
        assert rows[f"{blk}.{branch}.c1"]["inputs"] == []  # its header says it
    assert rows[f"{blk}.p1"]["inputs"] == ["/inception_blk1"]
    assert rows[f"{blk}.conv_bn_relu1"]["inputs"] == []  # the row before it
    assert rows[f"{blk}.conv_bn_relu3"]["inputs"] == []  # continues branch 2
    assert rows[f"{blk}.cat1"]["inputs"] == [
        "conv_bn_relu1",
        "conv_bn_relu3",
        "conv_bn_relu5",
        "conv_bn_relu6",
    ]
    line = next(x for x in report.text(_model("course_inception10.cnn")).splitlines() if "p1 " in x)
    assert line.rstrip().endswith("/conv_bn_relu1")


def test_resnet_identity_and_projection_shortcuts_differ():
    rows = _rows(_model("resnet18.cnn"))
    # identity: the add reads the block's input, the previous block
    assert rows["resnet_block2.add1"]["inputs"] == ["b2", "/resnet_block1"]
    # projection: the shortcut's conv reads the block's input, the add reads its batch norm
    assert rows["resnet_block3.c3"]["inputs"] == ["/resnet_block2"]
    assert rows["resnet_block3.add1"]["inputs"] == ["b2", "b3"]
    assert rows["resnet_block3.c2"]["inputs"] == []


def test_unet_skips_read_the_encoder_blocks():
    rows = _rows(_model("unet.cnn"))
    assert rows["crop1"]["inputs"] == ["enc4"]
    assert rows["cat1"]["inputs"] == ["crop1", "ct1"]
    assert rows["enc2"]["inputs"] == []


def test_densenet_layers_concatenate_their_input_and_their_new_features():
    rows = _rows(_model("densenet121.cnn"))
    first = next(p for p in rows if p.endswith(".cat1"))
    scope = first.rsplit(".", 1)[0]
    assert rows[first]["inputs"][1] == "c2"
    assert rows[first]["inputs"][0].startswith("/")  # the block's input, outside it
    nxt = [p for p in rows if p.endswith(".cat1")][1]
    assert rows[nxt]["inputs"] == [f"/{scope}", "c2"]


def test_block_rows_carry_output_shape_macs_and_full_arguments():
    model = _model("resnet18.cnn")
    rows = _rows(model)
    block = rows["resnet_block3"]
    nodes = [n for n in model.nodes if n.scope == "resnet_block3"]
    assert block["out_shape"] == nodes[-1].out_shape == (16, 16, 128)
    assert block["macs"] == sum(n.macs for n in nodes) and block["params"] == sum(
        n.params for n in nodes
    )
    line = next(x for x in report.text(model).splitlines() if x.startswith("resnet_block3 "))
    assert "ResnetBlock(filters=128, s=2, residual_path=1)" in line
    assert "16 x 16 x 128" in line and "58.72 M" in line
    # a long argument list is written in full (it was cut at 48 columns with an ellipsis)
    text = report.text(_model("efficientnet_b0.cnn"))
    assert "…" not in text
    label = next(r["label"] for r in report.rows(_model("efficientnet_b0.cnn")) if r["header"])
    assert label in text


# ---- --depth -------------------------------------------------------------------------------


def test_depth_collapses_blocks_to_their_header_rows():
    model = _model("resnet152.cnn")
    flat = report.rows(model)
    top = report.rows(model, depth=0)
    assert len(flat) == len(model.nodes) + len(model.blocks)
    top_nodes = sum(1 for n in model.nodes if not n.scope)
    assert len(top) == top_nodes + len(model.blocks)  # 50 bottlenecks, one row each
    assert all(r["depth"] == 0 for r in top)
    assert sum(r["params"] for r in top) == model.params
    assert sum(r["macs"] for r in top) == model.macs
    assert top[-1]["out_shape"] == model.output_shape
    nested = _model("course_inception10.cnn")  # blocks in blocks
    one = report.rows(nested, depth=1)
    assert {r["depth"] for r in one} == {0, 1}
    assert len(report.rows(nested, depth=0)) < len(one) < len(report.rows(nested))
    assert sum(r["params"] for r in one if r["depth"] == 1 or not r["header"]) == nested.params
    text = report.text(model, depth=0)
    assert f"Total params:         {model.params:,}" in text
    assert len(text.splitlines()) < 90


# ---- Markdown ---------------------------------------------------------------------------------


def test_markdown_has_the_text_reports_content():
    model = _model("course_inception10.cnn")
    md = report.markdown(model)
    assert "| Layer | Kind (arguments) | Output | Params | MACs | RF | Inputs |" in md
    # not applicable is `-`: batch norm's MACs, the dense layer's receptive field
    b1 = next(x for x in md.splitlines() if "| batchnorm |" in x)
    assert b1.split("|")[5].strip() == "-"
    f1 = next(x for x in md.splitlines() if "dense(10, softmax)" in x)
    assert f1.split("|")[6].strip() == "-"
    table = [x.split("|") for x in md.splitlines() if x.startswith("| ") and "---" not in x]
    assert all(cells[5].strip() != "0" for cells in table)  # no 0 standing for "none"
    assert "conv_bn_relu1, conv_bn_relu3, conv_bn_relu5, conv_bn_relu6" in md
    # the totals, memory and the train section, as in the text
    text = report.text(model)
    for needle in (
        "Total params",
        "Trainable params",
        "Total MACs",
        "activations kept",
        "inference peak",
        "optimizer adam, lr 0.001",
    ):
        assert needle in md and needle in text


# ---- memory, --input, the train section -----------------------------------------------------


def test_memory_choice_comes_from_the_command_line_or_the_train_section():
    model = _model("course_inception10.cnn")  # train { optimizer: adam ... batch_size: 32 }
    c = report.memory_choice(model)
    assert (c.batch, c.dtype, c.optimizer) == (32, "float32", "adam")
    assert c.sources["batch"] == "the spec's train section"
    c = report.memory_choice(model, 4, "bfloat16", "sgd_momentum")
    assert (c.batch, c.dtype, c.optimizer) == (4, "bfloat16", "sgd_momentum")
    assert set(c.sources.values()) == {"--batch", "--dtype", "--optimizer"}
    text = report.text(model, choice=c)
    assert "batch 4 (--batch), bfloat16 (--dtype), mixed precision" in text
    assert "low-precision copy" in text


def test_json_has_memory_training_and_block_wiring():
    r = _archc("report", "--json", "--batch", "2", str(SPECS / "resnet18.cnn"))
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    mem = data["memory"]
    assert mem["batch"] == 2 and mem["optimizer"] == "adam"
    assert mem["activations_kept"] == sum(n["kept_bytes"] for n in data["nodes"])
    assert data["training"] is None or isinstance(data["training"], dict)
    block3 = next(b for b in data["blocks"] if b["path"] == "resnet_block3")
    assert block3["inputs"] == ["resnet_block2.a2"] and block3["output"] == "resnet_block3.a2"


def test_input_override_compiles_at_another_size():
    model = _model("resnet18.cnn", input_shape=(64, 64, 3))
    assert model.input_shape == (64, 64, 3) and model.node("c1").out_shape == (64, 64, 64)
    assert model.params == _model("resnet18.cnn").params
    r = _archc("report", "--input", "64*64*3", "--depth", "0", str(SPECS / "resnet18.cnn"))
    assert r.returncode == 0, r.stderr
    assert "Input 64 x 64 x 3 -> output 10" in r.stdout


def test_input_override_errors_are_the_usual_diagnostics():
    r = _archc("report", "--input", "8x8x3", str(SPECS / "course_lenet5.cnn"))
    assert r.returncode == 1 and "E401" in r.stderr and "Traceback" not in r.stderr
    assert "compiled at --input 8 x 8 x 3" in r.stderr
    assert r.stdout == ""
    r = _archc("report", "--input", "8x8", str(SPECS / "course_lenet5.cnn"))
    assert r.returncode == 2 and "is not an input size" in r.stderr


@pytest.mark.parametrize("fmt", [(), ("--markdown",)])
def test_the_train_section_is_shown(fmt):
    r = _archc("report", *fmt, str(SPECS / "course_inception10.cnn"))
    assert r.returncode == 0, r.stderr
    assert "optimizer adam, lr 0.001, epochs 5, batch size 32" in r.stdout
