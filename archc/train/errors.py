"""How a run ends when it does not end well, and the exit status of each way."""

import signal

EXIT_OK, EXIT_FAILED, EXIT_NONFINITE = 0, 1, 3
EXIT_SIGNAL = {signal.SIGINT: 130, signal.SIGTERM: 143}


class RunError(Exception):
    """A run cannot start or continue: the message says why and what to do."""


class NonFiniteLoss(Exception):
    pass
