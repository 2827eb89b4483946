"""The IR (immutable, JSON round trip, names) and the CLI (reports, no framework)."""

from __future__ import annotations

import json
import subprocess
import sys

import pydantic
import pytest

from archc.ir import Model
from archc.ir.kinds import KINDS
from archc.pipeline import compile_spec
from tests.helpers import SPECS, compile_str
from tests.test_specs import ALL_SPECS


@pytest.mark.parametrize("spec", ALL_SPECS)
def test_json_round_trip(spec):
    model = compile_spec(str(SPECS / spec))
    again = Model.model_validate_json(model.model_dump_json())
    assert again == model
    assert [type(n) for n in again.nodes] == [type(n) for n in model.nodes]


@pytest.mark.parametrize("spec", ALL_SPECS)
def test_names_are_unique_and_inputs_come_first(spec):
    model = compile_spec(str(SPECS / spec))
    seen = set()
    for n in model.nodes:
        assert n.name not in seen
        assert all(i in seen for i in n.inputs)  # topological order
        seen.add(n.name)
        assert all(part.isidentifier() for part in n.name.split("."))
    scopes = {b.path for b in model.blocks} | {""}
    assert {n.scope for n in model.nodes} <= scopes


def test_ir_is_immutable():
    m = compile_str("input 8*8*1\nC(2*3*3)")
    with pytest.raises(pydantic.ValidationError):
        m.nodes[1].filters = 3
    with pytest.raises(pydantic.ValidationError):
        m.name = "other"


def test_every_kind_loads_back_as_itself():
    from tests.test_kinds import ROWS, _model

    seen = set()
    for row in ROWS:
        m = _model(row)
        back = Model.model_validate_json(m.model_dump_json())
        assert back == m
        for node in back.nodes:
            assert type(node) is KINDS[node.kind]
            seen.add(node.kind)
    assert seen == set(KINDS)


def test_an_unknown_kind_is_refused_by_name():
    m = compile_spec(str(SPECS / "course_lenet5.cnn")).model_dump(mode="json")
    m["nodes"][1]["kind"] = "bogus"
    with pytest.raises(ValueError, match="unknown layer kind 'bogus'"):
        Model.model_validate(m)


def _archc(*args):
    return subprocess.run([sys.executable, "-m", "archc", *args], capture_output=True, text=True)


def test_ir_json_command_loads_back_equal():
    r = _archc("ir", str(SPECS / "resnet18.cnn"), "--json")
    assert r.returncode == 0, r.stderr
    assert Model.model_validate_json(r.stdout) == compile_spec(str(SPECS / "resnet18.cnn"))


def test_report_text_vgg16():
    r = _archc("report", str(SPECS / "vgg16.cnn"))
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert "Total params:         138,357,544 (527.79 MiB float32)" in out
    assert "Trainable params:     138,357,544" in out
    assert "Non-trainable params: 0" in out
    assert (
        "Total MACs:           15,470,264,320 (15.47 G); FLOPs = 2 x MACs: 30,940,528,640 (30.94 G)"
        in out
    )
    assert "MACs counted as:      conv: H_out * W_out * C_out * kh * kw * C_in / groups\n" in out
    assert "                      dense: inputs * units\n" in out
    assert "vgg_block1  VGGBlock(ch=64, n=2)" in out
    assert "Input 224 x 224 x 3 -> output 1000" in out


def test_report_groups_by_block():
    r = _archc("report", str(SPECS / "resnet18.cnn"))
    lines = r.stdout.splitlines()
    i = next(k for k, line in enumerate(lines) if line.startswith("resnet_block3 "))
    assert "ResnetBlock(filters=128, s=2, residual_path=1)" in lines[i]
    assert lines[i + 1].startswith("  c1 ") and "conv(128*3*3, s2, same, nobias)" in lines[i + 1]
    assert "16 x 16 x 128" in lines[i + 1]


def test_report_json_and_markdown():
    r = _archc("report", "--json", str(SPECS / "course_baseline.cnn"))
    data = json.loads(r.stdout)
    assert data["totals"]["params"] == 198_506
    assert data["totals"]["macs"] == sum(n["macs"] for n in data["nodes"])
    assert data["totals"]["flops"] == 2 * data["totals"]["macs"]
    assert list(data["totals"]["macs_rules"]) == ["conv", "dense"]
    assert [n["name"] for n in data["nodes"]][:4] == ["input", "c1", "b1", "a1"]
    assert data["nodes"][4]["receptive_field"] == {"size": [6, 6], "jump": [2, 2]}
    r = _archc("report", "--markdown", str(SPECS / "course_baseline.cnn"))
    assert "| c1 | conv(6*5*5, s1, same) | 32 x 32 x 6 | 456 | 460,800 | 5 /1 |" in r.stdout


def test_report_and_check_import_no_framework():
    """`archc check`, `archc report` (every format) and `archc ir` on every spec in
    specs/, in one process that must end with no framework imported."""
    specs = [str(p) for p in sorted(SPECS.glob("*.cnn"))]
    code = (
        "import contextlib, io, sys\n"
        "from archc.cli import main\n"
        f"specs = {specs!r}\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    assert main(['check', *specs]) == 0\n"
        "    for spec in specs:\n"
        "        if spec.endswith('stdlib.cnn'):\n"
        "            continue\n"
        "        for fmt in ([], ['--json'], ['--markdown']):\n"
        "            assert main(['report', spec, *fmt]) == 0\n"
        "        assert main(['ir', spec, '--json']) == 0\n"
        "bad = [m for m in ('tensorflow', 'torch', 'keras', 'jax', 'jinja2') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
