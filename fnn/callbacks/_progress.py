"""What ``fit`` prints: a progress bar or one line per epoch."""

from __future__ import annotations

import functools
import sys
from typing import Any

import numpy as np


def format_value(value: Any) -> str:
    """Keras's progress format: 4 decimals, or 4 significant digits in e-notation below 1e-3
    (a learning rate of 1e-5 shows as ``1.0000e-05``, not ``0.0000``)."""
    if isinstance(value, (int, float, np.number)) and not isinstance(value, bool):
        v = float(value)
        return f"{v:.4f}" if abs(v) > 1e-3 or v == 0 else f"{v:.4e}"
    return str(value)  # a callback may put anything in the logs


def format_logs(logs: dict) -> str:
    return " - ".join(f"{k}: {format_value(v)}" for k, v in logs.items())


@functools.cache
def _bar_class() -> Any:
    """``tqdm.auto.tqdm`` without its monitor thread, for fnn's bars only (the user's tqdm keeps
    its ``monitor_interval``). tqdm starts the monitor, a daemon thread ``tqdm_monitor``, with
    the first bar of a class whose ``monitor_interval`` is not 0, and tqdm 4.70 leaves it
    running, waking every 10 s, after every bar has closed: ``fit(verbose=1)`` would leave a
    thread behind in the caller's process. What it does, printing a bar whose updates came
    faster than ``mininterval`` (0.1 s) and then stopped for ``maxinterval`` (10 s), fnn's bar
    hardly needs: it moves an epoch at a time and its epochs take alike times."""
    from tqdm.auto import tqdm

    tqdm.get_lock()  # the lock every bar shares, made on tqdm's class (a subclass's would be its own)

    class Bar(tqdm):
        monitor_interval = 0

    return Bar


class Progress:
    """``verbose=1``: a tqdm bar over iterations (ETA, loss and metrics), advanced by an epoch's
    iterations at a time; ``verbose=2``: one line per epoch; ``verbose=0``: silent."""

    def __init__(self, verbose: int, epochs: int, initial_epoch: int, iterations: int):
        self.verbose, self.epochs, self.iterations = verbose, epochs, iterations
        self.bar = None
        if verbose == 1 and epochs > initial_epoch:
            self.bar = _bar_class()(
                total=(epochs - initial_epoch) * iterations,
                unit="it",
                dynamic_ncols=True,
                desc=f"Epoch {initial_epoch + 1}/{epochs}",  # the epoch running, counted from 1
                file=sys.stderr,
            )

    def begin(self, epoch: int) -> None:
        if self.bar is not None:
            self.bar.set_description(f"Epoch {epoch + 1}/{self.epochs}")

    def update(self, epoch: int, logs: dict, seconds: float) -> None:
        if self.bar is not None:
            self.bar.set_description(f"Epoch {epoch + 1}/{self.epochs}")
            self.bar.set_postfix_str(format_logs(logs), refresh=False)
            self.bar.update(self.iterations)
        elif self.verbose == 2:
            print(
                f"Epoch {epoch + 1}/{self.epochs} - {self.iterations} it - {seconds:.2f}s - {format_logs(logs)}",
                flush=True,
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
