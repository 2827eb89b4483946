"""SIGINT / SIGTERM: stop after the current step, save, exit 128 + the signal."""

from __future__ import annotations

import signal


class StopFlag:
    """Set by SIGINT/SIGTERM (or a test): the run stops after the current step,
    saves a checkpoint and exits with 128 + the signal's number."""

    def __init__(self):
        self.signum: int | None = None
        self._old: dict = {}

    def __bool__(self) -> bool:
        return self.signum is not None

    def request(self, signum: int = signal.SIGINT) -> None:
        if self.signum is None:
            self.signum = signum

    def __enter__(self):
        for s in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[s] = signal.signal(s, lambda num, frame: self.request(num))
            except ValueError:  # not the main thread: leave signals alone
                pass
        return self

    def __exit__(self, *exc):
        for s, handler in self._old.items():
            signal.signal(s, handler)
