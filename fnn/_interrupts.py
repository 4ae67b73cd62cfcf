"""Ctrl-C held over a section that must not be cut in two.

An epoch's end in ``fit`` is several steps: its logs go into the history, the callbacks see it
(the CLI's keeps the state it would save on Ctrl-C), its progress line is printed, its
checkpoints are written. A Ctrl-C that lands between two of them (Python raises
``KeyboardInterrupt`` at the next bytecode, or inside the ``write`` of the line) leaves an epoch
kept or saved that the user was never shown. :func:`interrupts_held` holds SIGINT over such a
section and delivers it when the section ends, as the handler in place would have.

A Ctrl-C can also be lost: Python reports an exception raised in a garbage-collector callback
as "Exception ignored" and goes on, and JAX registers one that runs at every collection, so a
Ctrl-C that lands while it runs ends nothing. Within :func:`ctrl_c_recorded` (the CLI's
commands) each Ctrl-C is also recorded, and the end of an :func:`interrupts_held` section (each
epoch's end in ``fit``) raises one that was recorded and never reached the command.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

# Process-wide, as signals are: set by ctrl_c_recorded's handler, cleared by caught().
_RECORDED = [False]


@contextlib.contextmanager
def ctrl_c_recorded() -> Iterator[None]:
    """SIGINT raises ``KeyboardInterrupt`` as Python's default handler does, and is recorded
    until :func:`caught` says the command has it, so that one raised where Python drops it (a
    gc callback) still ends the run at the next section's end. Main thread only, and only over
    Python's default handler (a debugger's or a host application's is left alone)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.getsignal(signal.SIGINT)
    if previous is not signal.default_int_handler:
        yield
        return

    def record(signum: int, frame: Any) -> None:
        _RECORDED[0] = True
        previous(signum, frame)

    signal.signal(signal.SIGINT, record)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        _RECORDED[0] = False


def caught() -> None:
    """The command has caught the Ctrl-C recorded: nothing is left to deliver."""
    _RECORDED[0] = False


@contextlib.contextmanager
def interrupts_held() -> Iterator[None]:
    """Holds Ctrl-C (SIGINT) until the block ends, then calls the handler that was in place
    with it (Python's default raises ``KeyboardInterrupt`` there). A second Ctrl-C inside the
    block goes to that handler at once, so a block that hangs (a user's callback) can still be
    interrupted. A block that raises drops a held Ctrl-C (the exception ends the run anyway).

    It holds nothing outside the main thread of the main interpreter (where Python runs no
    signal handler and none can be set), or where SIGINT's handler was not set from Python
    (ignored, the OS default). At its end it also raises a Ctrl-C that
    :func:`ctrl_c_recorded` recorded and that was dropped before the block."""
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
    elif _RECORDED[0]:  # a Ctrl-C raised and dropped (in a gc callback) before this section
        raise KeyboardInterrupt
