"""Ctrl-C held over a section that must not be cut in two.

An epoch's end in ``fit`` is several steps: its logs go into the history, the callbacks see it
(the CLI's keeps the state it would save on Ctrl-C), its progress line is printed, its
checkpoints are written. A Ctrl-C that lands between two of them (Python raises
``KeyboardInterrupt`` at the next bytecode, or inside the ``write`` of the line) leaves an epoch
kept or saved that the user was never shown. :func:`interrupts_held` holds SIGINT over such a
section and delivers it when the section ends, as the handler in place would have.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any


@contextlib.contextmanager
def interrupts_held() -> Iterator[None]:
    """Holds Ctrl-C (SIGINT) until the block ends, then calls the handler that was in place
    with it (Python's default raises ``KeyboardInterrupt`` there). A second Ctrl-C inside the
    block goes to that handler at once, so a block that hangs (a user's callback) can still be
    interrupted. A block that raises drops a held Ctrl-C (the exception ends the run anyway).

    It holds nothing outside the main thread of the main interpreter (where Python runs no
    signal handler and none can be set), or where SIGINT's handler was not set from Python
    (ignored, the OS default)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if not callable(previous):
        yield
        return
    held: list[tuple[int, Any]] = []

    def hold(signum: int, frame: Any) -> None:
        if held:  # the second Ctrl-C: at once
            previous(signum, frame)
        held.append((signum, frame))

    try:
        signal.signal(signal.SIGINT, hold)
        installed = True
    except ValueError:  # the main thread of another interpreter than the main one
        installed = False
    if not installed:
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
    if held:
        previous(*held[0])
