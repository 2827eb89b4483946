"""The README cannot lie: its test command is what CI runs, its main-job command
names a real spec, and its spec table is what archc computes."""

from __future__ import annotations

import pathlib
import re

from archc.pipeline import compile_spec
from archc.shapes import describe

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _commands() -> list[str]:
    return [line.strip() for line in README.splitlines()
            if line.startswith("    python3 -m venv .venv")]


def test_ci_runs_the_readme_test_command():
    main_job, tests = _commands()
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert tests in ci.splitlines()
    assert "pytest" in tests and "constraints.txt" in tests


def test_main_job_reports_a_real_spec():
    main_job, _ = _commands()
    spec = re.search(r"archc (?:report|build) (specs/\S+\.cnn)", main_job).group(1)
    assert (ROOT / spec).is_file()
    assert "constraints.txt" in main_job


def test_spec_table():
    rows = re.findall(r"^\| \[(\S+\.cnn)\]\(specs/\S+\) \| ([^|]+) \| ([^|]+) \| ([\d,]+) \| "
                      r"([\d,]+) \| ([^|]+) \|$", README, flags=re.M)
    specs = sorted(p.name for p in (ROOT / "specs").glob("*.cnn") if p.name != "stdlib.cnn")
    assert sorted(r[0] for r in rows) == specs
    for name, inp, out, params, macs, source in rows:
        m = compile_spec(str(ROOT / "specs" / name))
        assert (inp.strip(), out.strip()) == (describe(m.input_shape), describe(m.output_shape))
        assert (int(params.replace(",", "")), int(macs.replace(",", ""))) == (m.params, m.macs)
        assert source.strip()
