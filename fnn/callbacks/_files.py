"""Callbacks that write files: checkpoints and a CSV log. Both continue a resumed run: the best
value so far and the rows already written survive the interruption."""

from __future__ import annotations

import csv
import math
import os
import string
from typing import Any

import numpy as np

from fnn._validate import path as check_path
from fnn.callbacks._base import Callback, FitContext
from fnn.callbacks._monitor import MonitorCallback, monitored


def _fields(template: str) -> list[str]:
    """The replacement-field names of a ``str.format`` template (``"{epoch:02d}"`` -> ``epoch``)."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as err:
        raise ValueError(f"ModelCheckpoint: filepath {template!r} is not a valid format string: {err}") from None
    return [name.split(".")[0].split("[")[0] for _, name, _, _ in parsed if name is not None]


class ModelCheckpoint(MonitorCallback):
    """Saves a resumable checkpoint (params, optimizer state, epoch, key, history, callbacks'
    state: ``fit(checkpoint=<that file>)`` continues from it) to ``filepath`` each epoch, or only
    when ``monitor`` improves with ``save_best_only``. ``{epoch}`` and log names may appear in
    ``filepath``, formatted like Keras (``"ck-{epoch:02d}-{val_loss:.3f}.npz"``); a name the logs
    will not have is an error before training starts. Writes are atomic (see
    :mod:`fnn.checkpoint`)."""

    def __init__(
        self,
        filepath: str,
        monitor: str = "val_loss",
        save_best_only: bool = False,
        mode: str = "auto",
        verbose: int = 0,
    ):
        text = os.fspath(filepath) if isinstance(filepath, os.PathLike) else filepath
        if not isinstance(text, str):
            raise TypeError(f"filepath must be a path (str or os.PathLike), got {type(filepath).__name__}")
        self.fields = _fields(text)
        # A bad place to write fails here, not after the first epoch ("{...}" folders are formatted per epoch).
        templated = "{" in os.path.dirname(text)
        super().__init__(monitor, mode, 0.0)
        self.filepath = check_path("filepath", filepath, writable=not templated)
        self.save_best_only, self.verbose = save_best_only, verbose

    def check_logs(self, names: set[str]) -> None:
        """Called by ``fit`` before anything is compiled, with the names the logs will hold."""
        unknown = [f for f in self.fields if f not in names and f != "epoch"]
        if unknown:
            why = " (there is no validation data)" if any(f.startswith("val_") for f in unknown) else ""
            raise ValueError(
                f"ModelCheckpoint: filepath {self.filepath!r} names {', '.join('{' + f + '}' for f in unknown)}, "
                f"which the logs will not have{why}; available: epoch, {', '.join(sorted(names))}"
            )

    def on_epoch_end(self, epoch: int, logs: dict, ctx: FitContext) -> None:
        try:
            path = self.filepath.format(epoch=epoch + 1, **logs)
        except (KeyError, IndexError) as err:
            raise ValueError(
                f"ModelCheckpoint: filepath {self.filepath!r} names {err}, which the logs do not have; "
                f"available: epoch, {', '.join(sorted(logs))}"
            ) from None
        if self.save_best_only:
            current = monitored(logs, self.monitor, "ModelCheckpoint")
            if current is None or not math.isfinite(current) or not self.improved(current, self.best):
                return
            self.best = current
        ctx.save(check_path("filepath", path, writable=True), epoch)
        if self.verbose:
            print(f"Epoch {epoch + 1}: saving checkpoint to {path}")

    def get_state(self) -> dict[str, Any]:
        return {"best": self.best}

    def set_state(self, state: dict[str, Any]) -> None:
        self.best = state["best"]


def csv_number(value: Any) -> Any:
    """A float as the shortest text that reads back as the same float32 when it is one (logs
    come from float32 sums: ``0.001``, not ``0.0010000000474974513``); otherwise exact."""
    if isinstance(value, float) and math.isfinite(value) and float(np.float32(value)) == value:
        return np.format_float_positional(np.float32(value), unique=True, trim="-")
    return value


class CSVLogger(Callback):
    """Writes one CSV row per epoch (``epoch`` then the log names, sorted) to ``filename``.

    ``append=False`` (Keras's default) starts a new file when training starts; a resumed run
    keeps the rows of the epochs its checkpoint holds (and drops any written after it).
    """

    def __init__(self, filename: str, separator: str = ",", append: bool = False):
        self.filename = check_path("filename", filename, writable=True)  # fails here, not after an epoch
        self.separator, self.append = separator, append
        self._keys: list[str] | None = None
        self._resumed = False

    def on_train_begin(self, ctx: FitContext) -> None:
        self._keys, self._resumed, self._started = None, False, False

    def _start(self, epoch: int) -> None:
        """The file as this run continues it: rows of earlier epochs only when resumed (or
        ``append``), a new file otherwise."""
        self._started = True
        if self._resumed and os.path.exists(self.filename):
            with open(self.filename, newline="") as f:
                rows = list(csv.reader(f, delimiter=self.separator))
            keep = rows[:1] + [r for r in rows[1:] if r and r[0].lstrip("-").isdigit() and int(r[0]) < epoch]
            with open(self.filename, "w", newline="") as f:
                csv.writer(f, delimiter=self.separator).writerows(keep)
        elif not self.append and not self._resumed and os.path.exists(self.filename):
            os.remove(self.filename)

    def on_epoch_end(self, epoch: int, logs: dict, ctx: FitContext) -> None:
        if not self._started:
            self._start(epoch)
        new_file = not os.path.exists(self.filename) or os.path.getsize(self.filename) == 0
        if self._keys is None:
            self._keys = sorted(logs)
        with open(self.filename, "a", newline="") as f:
            w = csv.writer(f, delimiter=self.separator)
            if new_file:
                w.writerow(["epoch"] + self._keys)
            w.writerow([epoch] + [csv_number(logs.get(k, "NA")) for k in self._keys])

    def on_train_end(self, ctx: FitContext) -> None:
        if not self._started and not self._resumed and not self.append and os.path.exists(self.filename):
            os.remove(self.filename)  # a fresh run that trained no epoch leaves no old rows behind

    def get_state(self) -> dict[str, Any]:
        return {"keys": self._keys}

    def set_state(self, state: dict[str, Any]) -> None:
        self._keys, self._resumed = state.get("keys"), True
