"""Atomic writes: a reader sees the old file or the new one, never half of one."""

from __future__ import annotations

import os
from collections.abc import Callable


def atomic_write(path: str, write: Callable[[str], None]) -> None:
    """write(tmp) then fsync and rename over `path`: a reader sees the old file or
    the new one, never half of one."""
    tmp = f"{path}.tmp-{os.getpid()}"
    try:
        write(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    _fsync_dir(os.path.dirname(path) or ".")


def _fsync_dir(d: str) -> None:
    try:
        fd = os.open(d, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_text(path: str, text: str) -> None:
    def write(tmp):
        with open(tmp, "w", encoding="utf-8", newline="") as f:
            f.write(text)

    atomic_write(path, write)


def rotate_in(path: str, write: Callable[[str], None]) -> None:
    """Replace checkpoint `path`, keeping the one it replaces as `<path>.prev`."""
    tmp = f"{path}.new"
    atomic_write(tmp, write)
    if os.path.exists(path):
        os.replace(path, path + ".prev")
    os.replace(tmp, path)
    _fsync_dir(os.path.dirname(path) or ".")
