"""Clean shutdown: SIGINT, SIGTERM and SIGHUP ask the frame loop to stop."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable


def install_stop_handlers(stop_event: threading.Event) -> Callable[[], None]:
    """SIGINT, SIGTERM and SIGHUP set stop_event so the frame loop can finish cleanly (SIGHUP: the terminal
    of an ssh session closed; its default would end the run without a stop record).

    A second SIGINT while stopping raises KeyboardInterrupt, so a stuck shutdown can still be
    broken with Ctrl-C. Call from the main thread; returns a function restoring the old handlers.
    """

    def handler(signum, frame) -> None:
        if signum == signal.SIGINT and stop_event.is_set():
            raise KeyboardInterrupt
        stop_event.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old if old is not None else signal.SIG_DFL)

    return restore
