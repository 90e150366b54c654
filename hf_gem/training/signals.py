"""Stop a training run cleanly on SIGINT or SIGTERM.

The first signal only sets a flag, which the loop reads after every optimizer update: it then
saves a checkpoint and returns. The handlers are restored at once, so a second Ctrl-C stops
the process immediately, as usual. (Handlers can only be installed from the main thread;
elsewhere the catcher does nothing and signals act as usual.)
"""

from __future__ import annotations

import signal
import threading


class StopOnSignal:
    """Turn the first SIGINT or SIGTERM into a request to stop; a second one acts as usual."""

    def __init__(self):
        self.signal_name = None
        self._previous = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for number in (signal.SIGINT, signal.SIGTERM):
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def _handle(self, number, frame):
        self.signal_name = signal.Signals(number).name
        for previous_number, handler in self._previous.items():
            signal.signal(previous_number, handler)

    def __exit__(self, *exc):
        for number, handler in self._previous.items():
            signal.signal(number, handler)
        return False
