"""archc's optional dependencies: which command needs which package, and what to
install when one is missing. The one place that knows the extras of pyproject.toml.

`pip install archc` gives check, report, ir, build and `diagram -o x.svg` (lark,
pydantic, jinja2); train, evaluate, equiv, `build --backend onnx` and `diagram -o
x.png` need an extra. Every framework, NumPy and Pillow is imported lazily, inside
the command that needs it, so the core commands start without them
(tests/test_cli.py runs them with these modules blocked).
"""

from __future__ import annotations

import importlib
import importlib.util
import logging
import os
import sys
import tempfile

# top-level module -> (the distribution pip installs, the archc extra that has it)
PACKAGES = {
    "numpy": ("numpy", "train"),
    "sklearn": ("scikit-learn", "train"),
    "matplotlib": ("matplotlib", "train"),
    "rich": ("rich", "train"),
    "tensorflow": ("tensorflow-cpu", "keras"),
    "keras": ("keras", "keras"),
    "torch": ("torch", "torch"),
    "onnx": ("onnx", "onnx"),
    "onnxruntime": ("onnxruntime", "onnx"),
    "PIL": ("pillow", "diagram"),
}

# what each backend's trainer and builds import
BACKEND_MODULES = {"keras": ("numpy", "tensorflow", "keras"), "torch": ("numpy", "torch")}


class MissingPackage(Exception):
    """A command needs a package that is not installed: the message says what to install."""

    def __init__(self, command: str, modules: list[str]):
        self.modules = modules
        dists = ", ".join(PACKAGES[m][0] if m in PACKAGES else m for m in modules)
        extras = sorted({PACKAGES[m][1] for m in modules if m in PACKAGES})
        install = (
            f"pip install 'archc[{','.join(extras)}]' (in a checkout of archc: "
            f"pip install -c constraints.txt '.[{','.join(extras)}]')"
            if extras
            else f"pip install {dists}"
        )
        super().__init__(
            f"archc {command} needs {dists}, which "
            f"{'is' if len(modules) == 1 else 'are'} not installed; "
            f"install with: {install}"
        )


def missing(modules) -> list[str]:
    """The modules of `modules` that cannot be imported here (without importing them)."""
    out = []
    for name in modules:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):  # ValueError: sys.modules[name] is None
            found = False
        if not found:
            out.append(name)
    return out


def require(command: str, modules) -> None:
    """Raise MissingPackage naming the extra to install if any of `modules` is missing."""
    absent = missing(modules)
    if absent:
        raise MissingPackage(command, absent)


# ---------------------------------------------------------------------------
# quiet frameworks: TensorFlow's, absl's and oneDNN's start-up lines
# ---------------------------------------------------------------------------


def quiet_frameworks() -> None:
    """Keep the frameworks' log lines off stderr (errors still show). Must run
    before TensorFlow is imported; the user's own settings of these variables win."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # C++ INFO/WARNING (cpu_feature_guard)
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")
    for name in ("tensorflow", "absl", "h5py"):
        logging.getLogger(name).setLevel(logging.ERROR)


def import_framework(name: str, verbose: bool = False):
    """Import `name` (tensorflow, keras, torch), quietly unless `verbose`.

    TensorFlow 2.21 writes "All log messages before absl::InitializeLog() is
    called are written to STDERR" and oneDNN's notice from C++ while it is imported,
    before any logging setting applies, so the import runs with file descriptor 2
    sent to a temporary file; what it wrote is replayed only if the import fails."""
    if verbose or name in sys.modules:
        return importlib.import_module(name)
    quiet_frameworks()
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no file descriptor 2: nothing to keep quiet
        return importlib.import_module(name)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            module = importlib.import_module(name)
        except BaseException:
            os.dup2(saved, 2)
            captured.seek(0)
            sys.stderr.write(captured.read().decode("utf-8", "replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    if name in ("tensorflow", "keras"):
        try:
            from absl import logging as absl_logging

            absl_logging.set_verbosity(absl_logging.ERROR)
        except ImportError:
            pass
    return module
