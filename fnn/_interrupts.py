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
from collections.abc import Callable, Iterable, Iterator
from typing import Any

# Process-wide, as signals are: the signal of an interrupt ctrl_c_recorded's handler raised and
# Python dropped (0: none), cleared by caught().
_RECORDED = [0]
# The attribute that marks an interrupt ctrl_c_recorded's handler raised, holding its signal: the
# hook tells a dropped one (reported as unraisable) by it, not by an id a freed one could pass on.
_MARK = "_fnn_signal"
_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# The attribute that marks a handler of fnn's (a block's ``record`` or ``hold``), holding the
# handlers it was installed over; ``_LIVE`` holds ``[True]`` until its block ends.
_BEFORE, _LIVE = "_fnn_before", "_fnn_live"
# Whether an interrupts_held section holds a signal now, to be delivered at its end: within
# ctrl_c_recorded(once=True) the run is ending, and a later signal is ignored.
_HELD = [False]


def _ours(handler: Any, before: dict[int, Any]) -> None:
    """Marks ``handler`` as fnn's, installed over ``before`` (signal -> handler), live; before
    it is installed, as a signal can reach it at once."""
    setattr(handler, _BEFORE, before)
    setattr(handler, _LIVE, [True])


def _standing_for(handler: Any, signum: int) -> Any:
    """The handler ``handler`` stands for: itself, unless it is one of fnn's whose block has
    ended, which stands for the one it was installed over (followed down, as those can be
    ended too). A callback that saves the handler in place (``old = signal.signal(SIGINT,
    mine)``, ``old`` being a held section's) and puts it back later puts back an ended one;
    what it means is the handling that was in place, which this finds."""
    while getattr(handler, _LIVE, None) == [False] and signum in getattr(handler, _BEFORE):
        handler = getattr(handler, _BEFORE)[signum]
    return handler


def _take_back(mine: Any, signals: Iterable[int]) -> None:
    """At a block's end: ends ``mine`` (None: a block that installed nothing) and puts in place,
    for each signal, what the handler in place stands for (:func:`_standing_for`): the one
    ``mine`` was installed over where the handler in place is ``mine`` or an ended one of fnn's
    over it; a live one of fnn's (an enclosing block's), or a user's own (a callback's, for the
    rest of the program), stays."""
    if mine is not None:
        getattr(mine, _LIVE)[0] = False
    for s in signals:
        now = signal.getsignal(s)
        if (then := _standing_for(now, s)) is not now:
            signal.signal(s, then)


class Terminated(KeyboardInterrupt):
    """SIGTERM within :func:`ctrl_c_recorded`: ended as a Ctrl-C ends a run (``except
    KeyboardInterrupt`` catches it), but telling the signal apart for the exit status and
    message."""


def _interrupt(signum: int) -> KeyboardInterrupt:
    return Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


@contextlib.contextmanager
def ctrl_c_recorded(*, sigterm: bool = False, once: bool = False) -> Iterator[None]:
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
    another was set inside the block (a callback's own handler is kept); one of fnn's own that a
    callback saved and put back (an epoch's end section's, ended since) counts as this block's.

    ``once=True`` (the CLI's): the first signal ends the run, and one after it, while the run
    keeps its work and says so (a user pressing Ctrl-C again, a burst of SIGTERMs), is ignored,
    where it would cut that short (the final checkpoint, a command's partial results) and lose
    the finished epochs; a first one Python dropped does not count, nor one an
    :func:`interrupts_held` section holds until it is delivered."""
    defaults = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL}
    previous = {s: signal.getsignal(s) for s in (_SIGNALS if sigterm else (signal.SIGINT,))}
    ours = [s for s, handler in previous.items() if handler == defaults[s]]
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    if not ours:  # nested (fit in the CLI): an ended one of fnn's a callback put back goes too
        try:
            yield
        finally:
            _take_back(None, previous)
        return

    raised = [False]

    def record(signum: int, frame: Any) -> None:
        if once and (raised[0] or _HELD[0]):
            return  # the run is already ending, keeping its work: let it
        raised[0] = True
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
            raised[0] = False  # it reached no one: the next signal still ends the run at once
            return
        python_hook(unraisable)

    _ours(record, {s: previous[s] for s in ours})
    try:  # installed inside: a Ctrl-C that lands between two installs still restores both
        sys.unraisablehook = hook
        for s in ours:
            signal.signal(s, record)
        yield
    finally:
        # as the hook below: a handler set since (a callback's own, for the rest of the user's
        # program) is left in place; ours, or an ended one of fnn's over it, is taken back
        _take_back(record, ours)
        if sys.unraisablehook is hook:  # one set since (a debugger's, pytest's) is left in place
            sys.unraisablehook = python_hook
        dropped, _RECORDED[0], _HELD[0] = _RECORDED[0], 0, False
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
    ends, then delivers it as a signal arriving then would be: to the handler in place at the
    block's end (Python's default raises ``KeyboardInterrupt`` there). That is the one in place
    before the block, put back, unless a callback set another inside the block: that one stays,
    and gets the held signal too, as it gets every later one (one the callback set to
    ``SIG_IGN`` or ``SIG_DFL`` is raised again, to be ignored or to do what the OS does). A
    second signal inside the block goes to the handler from before at once, so a block that
    hangs (a user's callback) can still be interrupted; a signal after the block that reaches
    this block's handler (a callback saved it and put it back) goes there at once too, as it
    stands for that handler. A block that raises drops a held signal (the exception ends the
    run anyway).

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
        # the second signal, or one after the block (a callback put this handler back): at once
        if held or not getattr(hold, _LIVE)[0]:
            handlers[signum](signum, frame)
        else:
            held.append((signum, frame))
            _HELD[0] = True

    _ours(hold, handlers)
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
        _take_back(hold, handlers)  # one a callback set inside the block stays
        _HELD[0] = False  # delivered below, or dropped with the block's exception
    if held:  # to the handler in place now, as a signal that arrived now would go
        signum, frame = held[0]
        if callable(handler := signal.getsignal(signum)):
            handler(signum, frame)
        else:  # one a callback set: ignored (SIG_IGN) or the OS default (SIG_DFL)
            signal.raise_signal(signum)
    raise_dropped()  # a signal raised and dropped (in a gc callback) before this section
