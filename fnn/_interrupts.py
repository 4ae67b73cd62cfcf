"""Ctrl-C (and SIGTERM) held over a section that must not be cut in two.

An epoch's end in ``fit`` is several steps: its logs go into the history, the callbacks see it
(the CLI's keeps the state it would save on Ctrl-C), its progress line is printed, its
checkpoints are written. A Ctrl-C that lands between two of them (Python raises
``KeyboardInterrupt`` at the next bytecode, or inside the ``write`` of the line) leaves an epoch
kept or saved that the user was never shown. :func:`interrupts_held` holds SIGINT (and SIGTERM,
where Python handles it) over such a section and delivers it when the section ends, as the
handler in place would have.

A Ctrl-C can also be lost: Python reports an exception raised in a garbage-collector callback as
"Exception ignored" and goes on, and JAX registers one that runs at every collection, so a
Ctrl-C that lands while it runs ends nothing. Within :func:`ctrl_c_recorded` (the CLI's
commands; ``fit``, ``fit_many`` and ``sweep`` while they run) a Ctrl-C Python drops so (it
reports it to ``sys.unraisablehook``) is recorded instead, and the end of an
:func:`interrupts_held` section (each epoch's end in ``fit``), each epoch of a queued loop
(:func:`raise_dropped`) and the end of the recording itself raise one that was recorded and
never reached the caller; one the caller caught is gone. In the CLI, SIGTERM (``kill``,
``timeout``, a job scheduler), which would end the process on the spot, losing every finished
epoch, is a Ctrl-C too: it raises :class:`Terminated`, a ``KeyboardInterrupt`` that says which
signal it was (the library leaves SIGTERM to its caller's process). Once a command has decided
to exit, :func:`ignore_interrupts` keeps a late signal from cutting its exit (``atexit``'s
callbacks) short with a traceback.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

# Process-wide, as signals are: the signal of an interrupt ctrl_c_recorded's handler raised and
# Python dropped (0: none), cleared by caught().
_RECORDED = [0]
# The attribute that marks an interrupt ctrl_c_recorded's handler raised, holding its signal: the
# hook tells a dropped one (reported as unraisable) by it, not by an id a freed one could pass on.
_MARK = "_fnn_signal"
_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Terminated(KeyboardInterrupt):
    """SIGTERM within :func:`ctrl_c_recorded`: ended as a Ctrl-C ends a run (``except
    KeyboardInterrupt`` catches it), but telling the signal apart for the exit status and
    message."""


def _interrupt(signum: int) -> KeyboardInterrupt:
    return Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


@contextlib.contextmanager
def ctrl_c_recorded(*, sigterm: bool = False) -> Iterator[None]:
    """SIGINT raises ``KeyboardInterrupt`` as Python's default handler does; one raised where
    Python drops it (a gc callback, ``__del__``: reported to ``sys.unraisablehook``, which this
    block wraps) is recorded until :func:`caught` says the caller has it, so it still ends the
    run at the next section's end, or at the block's end: a block that ends normally with a
    recorded Ctrl-C raises it. One the caller catches is gone, as Python's own would be.
    ``sigterm=True`` (the CLI's; a library must not change what SIGTERM does to its caller's
    process) also makes SIGTERM raise :class:`Terminated`, recorded the same way. Main thread
    only; SIGINT only over Python's default handler and SIGTERM only over the OS default (a
    debugger's or a host application's handler, or an enclosing block's, is left alone, so
    nested blocks do nothing). The handlers in place before are put back at the end, unless
    another was set inside the block (a callback's own handler is kept)."""
    defaults = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL}
    previous = {s: signal.getsignal(s) for s in (_SIGNALS if sigterm else (signal.SIGINT,))}
    ours = [s for s, handler in previous.items() if handler == defaults[s]]
    if threading.current_thread() is not threading.main_thread() or not ours:
        yield
        return

    def record(signum: int, frame: Any) -> None:
        err = _interrupt(signum)
        setattr(err, _MARK, signum)
        raise err

    python_hook = sys.unraisablehook

    def hook(unraisable: Any) -> None:
        # Python drops an exception raised where it cannot propagate (a gc callback, __del__)
        # and reports it here: ours is recorded, to be raised where it can be, instead of
        # printed as "Exception ignored". One a caller caught never comes here: it is gone, as
        # Python's own Ctrl-C would be.
        if signum := getattr(unraisable.exc_value, _MARK, 0):
            _RECORDED[0] = signum
            return
        python_hook(unraisable)

    try:  # installed inside: a Ctrl-C that lands between two installs still restores both
        sys.unraisablehook = hook
        for s in ours:
            signal.signal(s, record)
        yield
    finally:
        for s in ours:
            # as the hook below: a handler set since (a callback's own, for the rest of the
            # user's program) is left in place; only ours is taken back
            if signal.getsignal(s) is record:
                signal.signal(s, previous[s])
        if sys.unraisablehook is hook:  # one set since (a debugger's, pytest's) is left in place
            sys.unraisablehook = python_hook
        dropped, _RECORDED[0] = _RECORDED[0], 0
    if dropped:  # dropped, and no section's end came to raise it
        raise _interrupt(dropped)


def caught() -> None:
    """The command has caught the Ctrl-C (or SIGTERM) recorded: nothing is left to deliver."""
    _RECORDED[0] = 0


def raise_dropped() -> None:
    """Raises a Ctrl-C (or SIGTERM) that :func:`ctrl_c_recorded` recorded and that was dropped
    (in a gc callback) without reaching the caller; nothing outside the main thread, where no
    signal is delivered (a run in another thread is not the one interrupted)."""
    if _RECORDED[0] and threading.current_thread() is threading.main_thread():
        raise _interrupt(_RECORDED[0])


def ignore_interrupts() -> None:
    """SIGINT and SIGTERM ignored from now on, in a process that has decided to exit (main
    thread only): a second Ctrl-C that lands in ``atexit``'s callbacks would print a traceback
    after the command's one line, a SIGTERM there would replace its exit status."""
    if threading.current_thread() is threading.main_thread():
        for s in _SIGNALS:
            signal.signal(s, signal.SIG_IGN)


@contextlib.contextmanager
def interrupts_held() -> Iterator[None]:
    """Holds Ctrl-C (SIGINT), and SIGTERM where a Python handler takes it, until the block
    ends, then calls the handler that was in place with it (Python's default raises
    ``KeyboardInterrupt`` there). A second signal inside the block goes to its handler at once,
    so a block that hangs (a user's callback) can still be interrupted. A block that raises
    drops a held signal (the exception ends the run anyway). A handler set inside the block (by a
    callback) is kept at its end.

    It holds nothing outside the main thread of the main interpreter (where Python runs no
    signal handler and none can be set), and no signal whose handler was not set from Python
    (ignored, the OS default). At its end it also raises a Ctrl-C (or SIGTERM) that
    :func:`ctrl_c_recorded` recorded and that was dropped before the block."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    handlers: dict[int, Callable[[int, Any], Any]] = {s: h for s in _SIGNALS if callable(h := signal.getsignal(s))}
    held: list[tuple[int, Any]] = []

    def hold(signum: int, frame: Any) -> None:
        if held:  # the second signal: at once
            handlers[signum](signum, frame)
        held.append((signum, frame))

    try:
        for s in handlers:
            signal.signal(s, hold)
    except ValueError:  # the main thread of another interpreter than the main one (none was set)
        handlers = {}
    if not handlers:
        yield
        return
    try:
        yield
    finally:
        for s, handler in handlers.items():
            if signal.getsignal(s) is hold:  # one a callback set inside the block stays
                signal.signal(s, handler)
    if held:
        handlers[held[0][0]](*held[0])
    raise_dropped()  # a signal raised and dropped (in a gc callback) before this section
