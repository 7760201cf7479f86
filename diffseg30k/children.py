"""Child processes a command starts (side-by-side trainings, generation workers): a ``kill`` of the
parent must stop them too, not leave them running and holding their output locks."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator


@contextlib.contextmanager
def sigterm_raises() -> Iterator[None]:
    """Within the block a SIGTERM raises ``SystemExit(143)`` (as Ctrl-C raises KeyboardInterrupt), so
    the caller's ``finally`` stops its children; the previous handler is restored after. A no-op off
    the main thread, where Python cannot set handlers."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(128 + signum)

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
