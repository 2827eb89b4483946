"""The README cannot lie: its two set-up commands are what CI runs (the main job
in a bare clone), the main job works on archc's own dependencies, it names a real
spec, and the README's spec table is what archc computes."""

from __future__ import annotations

import pathlib
import re
import shlex
import shutil
import subprocess
import sys

from archc.ir.shapes import describe
from archc.pipeline import compile_spec
from tests import readme_commands

ROOT = pathlib.Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def _commands() -> list[str]:
    found = readme_commands.commands(README)
    return [found["main-job"], found["tests"]]


def _ci_lines() -> list[str]:
    return (ROOT / ".ci" / "run").read_text(encoding="utf-8").splitlines()


def test_ci_runs_the_readme_test_command():
    _main_job, tests = _commands()
    assert tests in _ci_lines()
    assert "pytest" in tests and "constraints.txt" in tests


def test_ci_runs_the_readme_main_job_verbatim_in_a_bare_clone():
    """.ci/run reads the main job out of README.md with this same reader, and runs
    exactly that text, in a fresh clone, before any environment exists."""
    main_job, _ = _commands()
    out = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "readme_commands.py"), "main-job"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out == main_job + "\n"  # what .ci/run's $MAIN_JOB holds
    lines = _ci_lines()
    assert 'MAIN_JOB="$(python3 tests/readme_commands.py main-job)"' in lines
    run = next(i for i, line in enumerate(lines) if 'bash -c "$MAIN_JOB"' in line)
    assert 'git clone -q . "$BARE/archc"' in lines[:run]
    assert lines[run] == (
        '(cd "$BARE/archc" && env -u VIRTUAL_ENV -u PYTHONPATH bash -c "$MAIN_JOB")'
    )
    # before the test command makes .venv here, and nothing installs the extras first
    tests_at = lines.index(_commands()[1])
    assert run < tests_at
    assert not any("pip install" in line for line in lines[:run])


def test_main_job_installs_only_the_core_and_its_commands_need_no_more(tmp_path):
    """The main job's archc commands, run as the README writes them, with every
    optional package blocked (a bare `pip install .`)."""
    from tests.test_cli import OPTIONAL, run_archc

    main_job, _ = _commands()
    steps = main_job.split(" && ")
    assert "pip install -q -c constraints.txt ." in steps  # no extra: the core alone
    archc_steps = [shlex.split(s)[1:] for s in steps if s.startswith("archc ")]
    assert archc_steps, main_job
    shutil.copytree(ROOT / "specs", tmp_path / "specs")
    for args in archc_steps:
        rc, out, err, imported = run_archc(*args, block=OPTIONAL, cwd=tmp_path)
        assert rc == 0, (args, err[-2000:])
        assert imported == [] and out.strip()
    assert (tmp_path / "generated" / "keras" / "vgg16.py").is_file()


def test_main_job_reports_a_real_spec():
    main_job, _ = _commands()
    spec = re.search(r"archc (?:report|build) (specs/\S+\.cnn)", main_job).group(1)
    assert (ROOT / spec).is_file()
    assert "constraints.txt" in main_job


def test_spec_table():
    rows = re.findall(
        r"^\| \[(\S+\.cnn)\]\(specs/\S+\) \| ([^|]+) \| ([^|]+) \| ([\d,]+) \| "
        r"([\d,]+) \| ([^|]+) \|$",
        README,
        flags=re.MULTILINE,
    )
    specs = sorted(p.name for p in (ROOT / "specs").glob("*.cnn") if p.name != "stdlib.cnn")
    assert sorted(r[0] for r in rows) == specs
    for name, inp, out, params, macs, source in rows:
        m = compile_spec(str(ROOT / "specs" / name))
        assert (inp.strip(), out.strip()) == (describe(m.input_shape), describe(m.output_shape))
        assert (int(params.replace(",", "")), int(macs.replace(",", ""))) == (m.params, m.macs)
        assert source.strip()
