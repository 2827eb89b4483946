"""The layout docs/architecture.md describes is the one that exists, and its import
rules hold: the IR imports neither lark nor the language, and the core commands
import no numpy or framework."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
DOC = (ROOT / "docs" / "architecture.md").read_text("utf-8")


def _imports_after(statement: str) -> set[str]:
    code = f"import sys\n{statement}\nprint(' '.join(sorted(sys.modules)))"
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=False
    )
    assert r.returncode == 0, r.stderr
    return set(r.stdout.split())


def test_every_path_the_architecture_page_names_exists():
    paths = set(re.findall(r"`((?:archc|backends|tests|docs)/[\w./]*)`", DOC))
    assert len(paths) > 20
    missing = sorted(p for p in paths if not (ROOT / p.rstrip("/")).exists())
    assert not missing, missing


def test_every_archc_package_is_on_the_architecture_page():
    packages = sorted(
        p.parent.relative_to(ROOT).as_posix() + "/" for p in (ROOT / "archc").glob("*/__init__.py")
    )
    assert packages, "archc has packages"
    for p in packages:
        assert f"`{p}`" in DOC, f"{p} is not described in docs/architecture.md"


def test_the_ir_imports_neither_lark_nor_the_language():
    loaded = _imports_after("import archc.ir; from archc.ir import Model, KINDS")
    assert "lark" not in loaded
    assert not [m for m in loaded if m.startswith("archc.language")]


def test_a_compile_imports_no_numpy_or_framework():
    loaded = _imports_after(
        "from archc.pipeline import compile_spec\ncompile_spec('specs/resnet50.cnn')"
    )
    assert not {"numpy", "torch", "keras", "tensorflow"} & loaded


def test_ci_lints_and_checks_the_format_of_everything():
    ci = (ROOT / ".ci" / "run").read_text("utf-8").splitlines()
    assert "ruff check ." in ci
    assert "ruff format --check ." in ci
