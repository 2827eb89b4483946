"""The README's set-up commands, read out of README.md: one reader for
tests/test_readme.py and .ci/run, so that CI runs exactly what the README says.

    python3 tests/readme_commands.py main-job   # prints the main-job command
    python3 tests/readme_commands.py tests      # prints the test command

Standard library only: .ci/run calls it before any virtual environment exists.
"""

from __future__ import annotations

import pathlib
import sys

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"
NAMES = ("main-job", "tests")  # in the order the README gives them


def commands(text: str | None = None) -> dict[str, str]:
    """The README's indented `python3 -m venv .venv ...` lines, by name."""
    text = README.read_text(encoding="utf-8") if text is None else text
    found = [
        line.strip() for line in text.splitlines() if line.startswith("    python3 -m venv .venv")
    ]
    if len(found) != len(NAMES):
        raise SystemExit(
            f"README.md: expected {len(NAMES)} set-up commands "
            f"(`    python3 -m venv .venv ...`), found {len(found)}"
        )
    return dict(zip(NAMES, found))


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] not in NAMES:
        raise SystemExit(f"usage: python3 {sys.argv[0]} {{{','.join(NAMES)}}}")
    print(commands()[sys.argv[1]])
