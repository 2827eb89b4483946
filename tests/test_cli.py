"""The command line as a new user meets it: the core commands on archc's own
dependencies alone, a clear message naming the extra when a command needs more,
help with defaults and examples, and errors in archc's words."""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import re
import subprocess
import sys

import pytest

from archc.cli import make_parser

ROOT = pathlib.Path(__file__).resolve().parent.parent
SPECS = ROOT / "specs"
# what `pip install archc` does not install: none may be imported by the core commands
OPTIONAL = (
    "numpy",
    "torch",
    "tensorflow",
    "keras",
    "sklearn",
    "matplotlib",
    "rich",
    "onnx",
    "onnxruntime",
)

# Runs archc's main() in a fresh interpreter; with BLOCK, importing any optional
# package fails as it does where it is not installed. Prints the exit status and
# which optional packages ended up imported.
RUNNER = """
import json, sys
BLOCK = {block!r}
for name in BLOCK:
    sys.modules[name] = None
from archc.cli import main
try:
    rc = main(sys.argv[1:])
except SystemExit as e:
    rc = e.code
sys.stdout.flush()
imported = sorted(m for m in {optional!r}
                  if sys.modules.get(m) is not None)
print("\\n@@" + json.dumps({{"rc": rc, "imported": imported}}))
"""


def run_archc(*args: str, block: tuple[str, ...] = (), cwd=ROOT, env=None):
    code = RUNNER.format(block=block, optional=OPTIONAL)
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    r = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=full_env,
        check=False,
        timeout=600,
    )
    out, _, tail = r.stdout.rpartition("\n@@")
    assert tail, r.stderr[-3000:]
    result = json.loads(tail)
    return result["rc"], out, r.stderr, result["imported"]


CORE = [
    ("check", "specs/vgg16.cnn", "specs/stdlib.cnn"),
    ("report", "specs/resnet18.cnn"),
    ("report", "specs/vgg16.cnn", "--json"),
    ("report", "specs/vgg16.cnn", "--markdown"),
    ("ir", "specs/vgg16.cnn"),
    ("build", "--all", "--check"),
    ("--help",),
    *[
        (command, "--help")
        for command in ("check", "report", "ir", "build", "equiv", "train", "evaluate")
    ],
]


@pytest.mark.parametrize("args", CORE, ids=" ".join)
def test_core_commands_work_without_the_optional_packages(args):
    """As on a machine with only `pip install .`: every optional package blocked."""
    rc, out, err, imported = run_archc(*args, block=OPTIONAL)
    assert rc == 0, err[-3000:]
    assert out.strip() and "Traceback" not in err
    assert imported == []


def test_core_commands_import_no_optional_package(tmp_path):
    """Where they are installed, the core commands still do not import them."""
    rc, _, err, imported = run_archc("build", "specs/vgg16.cnn", "-o", str(tmp_path))
    assert rc == 0, err
    assert imported == []
    rc, _, err, imported = run_archc("report", "specs/resnet50.cnn")
    assert rc == 0 and imported == [], err


@pytest.mark.parametrize(
    "args, extra",
    [
        (("train", "specs/digits_cnn.cnn", "--backend", "torch", "--data", "digits"), "train"),
        (("train", "specs/digits_cnn.cnn", "--backend", "keras", "--data", "shapes"), "keras"),
        (("evaluate", "specs/digits_cnn.cnn", "--weights", "x.npz", "--data", "digits"), "torch"),
        (("equiv", "specs/digits_cnn.cnn"), "keras"),
        (("build", "specs/digits_cnn.cnn", "--backend", "onnx"), "onnx"),
        (("equiv", "specs/digits_cnn.cnn", "--against", "onnx"), "keras,onnx"),
        (("import", "model.keras", "-o", "model.cnn"), "keras"),
    ],
)
def test_a_missing_extra_is_named_not_a_traceback(args, extra):
    rc, _, err, imported = run_archc(*args, block=OPTIONAL)
    assert rc == 1
    assert "Traceback" not in err
    assert re.search(r"pip install .*'archc\[[a-z,]*" + extra, err), err
    assert "not installed" in err and imported == []


def test_one_missing_framework_is_named_alone():
    rc, _, err, _ = run_archc(
        "train", "specs/digits_cnn.cnn", "--backend", "torch", "--data", "shapes", block=("torch",)
    )
    assert rc == 1 and "archc train needs torch, which is not installed" in err
    assert "'archc[torch]'" in err


# ---- help ---------------------------------------------------------------------------------


def _subparsers(parser):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action.choices
    raise AssertionError("no subcommands")


@pytest.mark.parametrize("command", sorted(_subparsers(make_parser())))
def test_every_option_has_help_with_its_default_and_every_command_an_example(command):
    sub = _subparsers(make_parser())[command]
    formatter = sub._get_formatter()
    for action in sub._actions:
        if not action.option_strings or action.dest == "help":
            continue
        text = formatter._get_help_string(action)
        assert text and text.strip() != "", (command, action.option_strings)
        assert "default" in text or "(required)" in text, (command, action.option_strings, text)
    assert "examples:" in sub.format_help()
    examples = sub.epilog.split("examples:\n", 1)[1]
    assert all(
        line.strip().startswith(f"archc {command}")
        for line in examples.splitlines()
        if line.strip()
    )


def test_ir_prints_the_json_without_a_flag():
    rc, out, err, _ = run_archc("ir", "specs/digits_cnn.cnn")
    assert rc == 0, err
    assert json.loads(out)["name"] == "digits_cnn"


def test_build_all_without_specs_says_what_is_missing(tmp_path):
    rc, _, err, _ = run_archc("build", "--all", cwd=tmp_path)
    assert rc == 2
    assert "no specs/ folder" in err and str(tmp_path) in err
    (tmp_path / "specs").mkdir()
    rc, _, err, _ = run_archc("build", "--all", cwd=tmp_path)
    assert rc == 2 and "holds no .cnn files" in err


def test_a_data_dir_that_does_not_exist_is_reported(tmp_path):
    missing = tmp_path / "nowhere"
    for command in (
        ["train", "specs/digits_cnn.cnn", "--backend", "torch"],
        ["evaluate", "specs/digits_cnn.cnn", "--weights", "w.npz"],
    ):
        rc, _, err, _ = run_archc(
            *command, "--data", "mnist", "--data-dir", str(missing), block=OPTIONAL
        )
        assert rc == 2
        assert f"argument --data-dir: {missing}: no such folder" in err


# ---- training settings on the command line -----------------------------------------------


def _setting_error(*options: str) -> str:
    rc, _, err, _ = run_archc(
        "train",
        "specs/digits_cnn.cnn",
        "--backend",
        "torch",
        "--data",
        "digits",
        *options,
        block=OPTIONAL,
    )
    assert rc == 2, err
    return err


def _caret_under(err: str, text: str, part: str) -> None:
    """The quoted option line holds `text`, and the carets sit under `part` of it."""
    lines = err.splitlines()
    i = next(k for k, line in enumerate(lines) if line == f"  | {text}")
    start = text.index(part)
    assert lines[i + 1] == "  | " + " " * start + "^" * len(part), lines[i + 1]


def test_an_unknown_optimizer_gets_a_did_you_mean():
    err = _setting_error("--optimizer", "adamm")
    assert "error[E603]: unknown optimizer `adamm`" in err
    assert " --> the command line, --optimizer" in err
    _caret_under(err, "--optimizer adamm", "adamm")
    assert "did you mean `adam`?" in err
    assert "expected: sgd, adam, adamw, rmsprop" in err


def test_an_unknown_schedule_setting_gets_a_did_you_mean():
    err = _setting_error("--schedule", "cosine(min=0)")
    assert "`cosine` has no setting `min`" in err
    _caret_under(err, "--schedule cosine(min=0)", "min=0")
    assert "did you mean `min_lr`?" in err


@pytest.mark.parametrize(
    "option, value, part, message",
    [
        ("--optimizer", "sgd(momentum=2)", "2", "`momentum` of `sgd` must be less than 1"),
        (
            "--weight-decay",
            "-1",
            "-1",
            "training setting `weight_decay` must be greater than or equal to 0",
        ),
        (
            "--schedule",
            "step(rate=0.5, every=2.5)",
            "2.5",
            "`every` of `step` must be a whole number",
        ),
        ("--schedule", "cosinus", "cosinus", "unknown schedule `cosinus`"),
    ],
)
def test_setting_errors_speak_archcs_language(option, value, part, message):
    err = _setting_error(option, value)
    assert f"error[E603]: {message}" in err
    _caret_under(err, f"{option} {value}", part)
    for pydantic_words in (
        "Input should",
        "Extra inputs",
        "Value error",
        "<command line>",
        ":2:",
        "Field required",
    ):
        assert pydantic_words not in err


def test_spec_file_setting_errors_speak_archcs_language():
    from archc.diagnostics import SpecError
    from tests.helpers import compile_str

    text = (
        "input 8x8x1\nFlatten\nDense(10, softmax)\n"
        "train {\n  optimizer: sgd(momentum=2, nesterovv=true)\n  schedule: step(every=2)\n"
        "  loss: mse\n}\n"
    )
    with pytest.raises(SpecError) as e:
        compile_str(text)
    messages = [d.message for d in e.value.diagnostics]
    assert "`momentum` of `sgd` must be less than 1" in messages
    assert "`sgd` has no setting `nesterovv`" in messages
    assert "`step` needs the setting `rate`" in messages
    assert "unknown loss `mse`" in messages
    rendered = e.value.render()
    assert "Input should" not in rendered and "Extra inputs" not in rendered
    assert "did you mean `nesterov`?" in rendered


def test_resume_message_and_docs_agree_on_what_may_change():
    from archc.train.checkpoints import MAY_CHANGE, same_settings
    from archc.train.errors import RunError

    options = sorted("--" + k.replace("_", "-") for k in MAY_CHANGE)
    docs = " ".join((ROOT / "docs" / "training.md").read_text(encoding="utf-8").split())
    stated = re.search(r"only ((?:`--[a-z-]+`(?:, | and )?)+) may change", docs)
    assert stated, "docs/training.md states what a resumed run may change"
    assert sorted(re.findall(r"`(--[a-z-]+)`", stated.group(1))) == options
    train = " ".join(_subparsers(make_parser())["train"].format_help().split())
    stated = re.search(r"--resume .*?only (.*?) may differ", train)  # the option's help
    assert sorted(re.findall(r"--[a-z-]+", stated.group(1))) == options
    with pytest.raises(RunError) as e:
        same_settings({"lr": 0.1, "epochs": 3}, _settings(lr=0.2), "last.ckpt")
    assert all(o in str(e.value) for o in options)
    assert "lr: 0.1 -> 0.2" in str(e.value)


def _settings(**changes):
    from archc.pipeline import compile_spec
    from archc.train.settings import resolve

    model = compile_spec(str(SPECS / "digits_cnn.cnn"))
    return resolve(model, "torch", "digits", changes)


# ---- the frameworks keep quiet unless asked ----------------------------------------------

FRAMEWORK_NOISE = (
    "absl::InitializeLog",
    "oneDNN",
    "cpu_feature_guard",
    "This TensorFlow binary",
    "UserWarning",
    "I0000",
    "W0000",
)


def _archc_process(*args: str, cwd=ROOT):
    """`python -W error::UserWarning -m archc ...`: a Keras UserWarning fails the command."""
    env = {
        k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "GRPC_VERBOSITY")
    }
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-W", "error::UserWarning", "-m", "archc", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        check=False,
        timeout=600,
    )


@pytest.mark.keras
def test_keras_equiv_prints_no_framework_lines_and_no_warning():
    pytest.importorskip("keras")
    pytest.importorskip("torch")
    r = _archc_process("equiv", "specs/digits_cnn.cnn", "--nodes")  # --nodes: a probe model
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stderr == ""
    assert ": ok" in r.stdout
    loud = _archc_process("equiv", "specs/digits_cnn.cnn", "-v")
    assert loud.returncode == 0 and any(n in loud.stderr for n in FRAMEWORK_NOISE[:3])


@pytest.mark.keras
def test_keras_train_with_q_prints_nothing_on_stderr(tmp_path):
    pytest.importorskip("keras")
    r = _archc_process(
        "train",
        "specs/digits_cnn.cnn",
        "--backend",
        "keras",
        "--data",
        "digits",
        "--epochs",
        "1",
        "-q",
        "--out",
        str(tmp_path / "run"),
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stderr == ""  # 45 steps: batch norm at momentum 0.9 converges, no warning
    assert "val_accuracy" in r.stdout and "best" in r.stdout
    r = _archc_process(
        "evaluate",
        "specs/digits_cnn.cnn",
        "--backend",
        "keras",
        "--weights",
        str(tmp_path / "run"),
        "--data",
        "digits",
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stderr == "" and "top-1" in r.stdout


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("--lr", "nan", "argument --lr: expected a finite number, got nan"),
        ("--weight-decay", "inf", "argument --weight-decay: expected a finite number, got inf"),
        ("--epochs", "2.5", "argument --epochs: expected a whole number, got 2.5"),
        ("--batch-size", "0", "argument --batch-size: must be positive, got 0"),
    ],
)
def test_setting_numbers_are_checked_by_the_command_line(option, value, message):
    err = _setting_error(option, value)  # exit status 2
    assert message in err and "Traceback" not in err
