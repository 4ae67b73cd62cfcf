"""What every ``fnn`` command shares: the error for a bad setting found after parsing, output
paths checked before any work, stopping half-way (Ctrl-C, a reader that went away), and how
numbers are written (the rules of ``fit``'s progress line and of :class:`fnn.callbacks.CSVLogger`,
imported, not copied).
"""

from __future__ import annotations

import contextlib
import math
import os
import select
import signal
import sys
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from fnn._interrupts import Terminated, caught
from fnn._validate import path as check_path
from fnn.callbacks._files import csv_number
from fnn.callbacks._progress import format_value


class UsageError(Exception):
    """A bad argument found after parsing (a data set, checkpoint or loss that does not fit)."""


@contextlib.contextmanager
def nonfinite_loss_unwarned() -> Iterator[None]:
    """fit's RuntimeWarning for an epoch whose loss is not finite names fnn's source line and a
    callback to add: a command says that a run diverged its own way (fnn train's line, fnn
    compare's "diverged" in the table). Warnings filters are the process's: set in the main
    thread, they cover the runs training in threads too."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"fit: epoch \d+ loss is .* \(non-finite\)", category=RuntimeWarning)
        yield


def output_path(option: str, value: str, *, folder: bool = False, replaced: bool = False) -> str:
    """``value`` checked before any work: the run writes there at its end (``replaced``: a
    checkpoint, which a rename puts in place)."""
    try:
        return check_path(option, value, writable=True, folder=folder, replaced=replaced)
    except ValueError as err:
        raise UsageError(str(err)) from None


# --------------------------------------------------------------------------------------------
# Numbers as the commands print and write them.
# --------------------------------------------------------------------------------------------


def number(value: Any) -> str:
    """A logged value as ``fit``'s progress line shows it (Keras's rule): 4 decimals, or 4
    significant digits in e-notation below 1e-3 (``1.0000e-05``, never ``0.0000``)."""
    return format_value(value)


def csv_cell(value: Any) -> Any:
    """A value for ``results.csv``: a float as the shortest text that reads back as the same
    float32 (CSVLogger's rule: the losses are float32 sums, and a mean over seeds carries no
    more digits than they do: ``0.001``, not ``0.0010000000474974513``); None (a value not
    measured) as an empty cell; anything else as it is."""
    if value is None:
        return ""
    if isinstance(value, float) and math.isfinite(value) and abs(value) <= float(np.finfo(np.float32).max):
        return csv_number(float(np.float32(value)))
    return value


# --------------------------------------------------------------------------------------------
# Stopping half-way: Ctrl-C or SIGTERM (KeyboardInterrupt) and a reader that went away
# (BrokenPipeError).
# --------------------------------------------------------------------------------------------

EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE  # 141, as for a process SIGPIPE ended (`yes | head -1`)

# True while the console script (``fnn``, ``python -m fnn``) runs its command: the process ends
# with it, so no caller's settings are put back after it and a Ctrl-C's way out need not wait for
# work still running (the exit waits for it, after the command's line). False for ``main`` run
# in-process, where what is put back must not change under work still running.
PROCESS_ENDS = [False]


def stopped(err: KeyboardInterrupt | BrokenPipeError) -> str:
    """``"SIGINT"`` (Ctrl-C), ``"SIGTERM"`` (``kill``, ``timeout``: :class:`Terminated`) or
    ``"pipe"`` (the reader went away) for the exception caught (a signal caught here is one the
    command has: nothing is left to deliver)."""
    if isinstance(err, KeyboardInterrupt):
        caught()
        return (signal.SIGTERM if isinstance(err, Terminated) else signal.SIGINT).name
    return "pipe"


def interrupted(stop: str) -> tuple[str, int]:
    """The words of the one line and the exit status of a command that the signal ``stop``
    (:func:`stopped`'s name) ended: ``"interrupted"`` and 130 for Ctrl-C, ``"interrupted by
    SIGTERM"`` and 143 for SIGTERM (128 + the signal, as a shell reports a process it ended)."""
    signum = signal.Signals[stop]
    return ("interrupted" if signum == signal.SIGINT else f"interrupted by {stop}"), 128 + signum


def _reader_gone(stream: Any) -> bool | None:
    """Whether ``stream``'s pipe has lost its reader (None where that cannot be told)."""
    try:
        poll = select.poll()
        poll.register(stream.fileno(), select.POLLOUT)
        return any(event & select.POLLERR for _, event in poll.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll (Windows), no file descriptor (pytest)
        return None


def silence_broken_streams() -> None:
    """After a BrokenPipeError: whatever is still written to the stream whose reader has gone
    (stdout where that cannot be told) goes to /dev/null, so that neither the rest of the
    command nor Python's flush at exit fails again with a traceback."""
    gone = {s: _reader_gone(s) for s in (sys.stdout, sys.stderr)}
    if all(broken is None for broken in gone.values()):
        gone[sys.stdout] = True
    for stream, broken in gone.items():
        if not broken:
            continue
        with contextlib.suppress(AttributeError, OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, stream.fileno())
            finally:
                os.close(devnull)


def log_line(text: str) -> None:
    """One line on stderr, in one write: a Ctrl-C lands before or after it, never between the
    line and its newline."""
    sys.stderr.write(text + "\n")
    sys.stderr.flush()
