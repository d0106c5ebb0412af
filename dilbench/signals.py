"""Signal handlers for the length of a block, the one idiom the trainer, the sweep and Slurm tasks use."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator, Mapping
from types import FrameType
from typing import Any

Handler = Callable[[int, FrameType | None], Any]


@contextlib.contextmanager
def handled(handlers: Mapping[signal.Signals, Handler]) -> Iterator[None]:
    """Install `handlers` for the block and restore the previous ones after it. Off the main thread it
    does nothing: only the main thread may set handlers (and only it receives signals)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, handler) for sig, handler in handlers.items()}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def raise_interrupt(signum: int, frame: FrameType | None) -> None:
    """A handler that makes a signal (a plain `kill`) stop the program as Ctrl-C does."""
    raise KeyboardInterrupt
