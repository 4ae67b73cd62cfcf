"""Callbacks that write files: checkpoints and a CSV log. Both continue a resumed run: the best
value so far and the rows already written survive the interruption."""

from __future__ import annotations

import contextlib
import csv
import math
import os
import sys
import warnings
from collections.abc import Iterator
from typing import Any

import jax
import numpy as np

from fnn import checkpoint as checkpoint_
from fnn._keys import is_typed_key
from fnn._oserrors import writing
from fnn._validate import boolean, path as check_path, real
from fnn.callbacks._base import NO_BATCH_HOOKS, Callback, FitContext
from fnn.callbacks._filepath import check_formats, could_write, fields
from fnn.callbacks._monitor import MonitorCallback


class ModelCheckpoint(MonitorCallback):
    """Saves a resumable checkpoint (params, optimizer state, epoch, key, history, callbacks'
    state: ``fit(checkpoint=<that file>)`` continues from it) to ``filepath`` each epoch, or only
    when ``monitor`` improves with ``save_best_only``; with ``save_weights_only``, the params
    alone. ``{epoch}`` and log names may appear in ``filepath``, formatted like Keras
    (``"ck-{epoch:02d}-{val_loss:.3f}.npz"``); a name the logs will not have is an error
    before training starts. Writes are atomic (see :mod:`fnn.checkpoint`).

    Each checkpoint is written at the end of its epoch, after every callback has run, so it
    holds the whole epoch: the history with that epoch, and every callback's state after it
    (this one's ``best`` included); a callback that raises in that epoch's ``on_epoch_end`` ends
    the run before it, so that epoch is not saved (unlike Keras, whose ModelCheckpoint writes in
    its own hook; a :class:`CSVLogger` listed before the raising callback has its row).
    ``fnn.fit(..., checkpoint=<file>)`` with the same settings then continues exactly as the
    uninterrupted run would have; it also writes its own checkpoint to that file after every
    epoch, so resume from a copy to keep the file as it is (``fit`` refuses a ``save_best_only``
    or ``save_weights_only`` file of its own callbacks as its checkpoint). ``{epoch}`` counts
    from 1 (the epochs done), as Keras's; the other fields are the epoch's logs (``loss``,
    metrics, ``val_*``, and ``learning_rate`` when :class:`ReduceLROnPlateau` or
    :class:`LearningRateScheduler` logs it, and what a callback of your own adds: list that
    callback before this one). Before training ``fit`` checks every field against the names its
    logs will have (unless a callback of your own comes first: the logs it adds are known only
    at the epoch's end, where a missing name is the same ValueError), and the path (its folder
    writable; a folder with fields is checked when formatted).

    With ``save_best_only``, a file is written only when ``monitor`` improves on the best so
    far (Keras 3: ``best`` starts at ``initial_value_threshold``, which a value must beat to
    be saved; unset by default, so the first monitored epoch is saved; a non-finite value never
    is); ``best`` is saved with the checkpoints, so a resumed run compares with the best before
    the interruption. An epoch whose logs lack ``monitor`` (``val_loss`` without validation
    data) is saved, with a warning, as Keras 3 saves it. Without ``save_best_only`` every epoch
    is saved (a fixed ``filepath`` is overwritten each epoch).

    ``save_weights_only=True`` writes a file that holds the params and the epoch count only
    (no optimizer state, key, history or callbacks' state), at the epoch's end as this
    callback runs: ``fnn.checkpoint.load(path).params`` reads them back (pass
    ``params=<a template>`` for their structure), and a later ``fit`` starts from them. It is
    no checkpoint to resume: ``fit(checkpoint=<that file>)`` refuses it (ValueError: it holds
    no optimizer state).

    Args:
        filepath: Where to write, a str or ``os.PathLike``; may hold ``str.format`` fields
            (``"ck-{epoch:02d}-{val_loss:.3f}.npz"``).
        monitor: The logged value ``save_best_only`` watches.
        save_best_only: Save only when ``monitor`` improves.
        mode: ``"min"``, ``"max"`` or ``"auto"`` (the metric's direction, as in
            :class:`EarlyStopping`; read with ``save_best_only`` only).
        verbose: 1 prints each save.
        save_weights_only: Save the params only (see above), not a resumable checkpoint.
        save_freq: ``"epoch"``, the only frequency: fnn's epoch is one compiled program, so
            Keras's every-``N``-batches (an int) is refused.
        initial_value_threshold: The ``best`` that ``save_best_only`` starts from (a value
            must beat it to be saved), or None (unset: the first monitored value is saved).

    Attributes:
        filepath: The path template, as a str.
        fields: The names of its ``str.format`` fields.
        best: The best monitored value saved so far (``initial_value_threshold`` before the
            first).
        initial_value_threshold: The ``best`` it started from.

    Raises:
        TypeError: For a ``filepath`` that is not a str or path, a ``save_weights_only`` that
            is not a bool, a ``save_freq`` that is neither a str nor an int, or an
            ``initial_value_threshold`` that is not a real number.
        ValueError: For a ``filepath`` that is not a valid format string, names a folder, or
            cannot be written in (checked here when its folder has no fields, else at each
            save); an unknown ``mode``; a ``save_freq`` other than ``"epoch"`` (an int: fnn
            saves per epoch); a non-finite ``initial_value_threshold``; from ``fit``, before
            training, for a field the logs will not have (``{val_loss}`` without validation
            data, ``{learning_rate}`` without a callback before this one that logs it) or whose
            format spec cannot format its value (``{loss:02d}``: the logs' values are floats,
            ``{epoch}`` an int), or with ``save_best_only`` and ``mode="auto"`` for a monitor
            whose direction is not known (as in :class:`EarlyStopping`; Keras 3 refuses it
            after the first epoch even without ``save_best_only``, where the monitor is never
            read); or at an epoch's end for a field a callback of your own listed before this
            one did not log, or logged a value its format spec cannot format.

    Warns:
        RuntimeWarning: With ``save_best_only``, at each epoch whose logs lack ``monitor``
            (Keras's "Can save best model only with val_loss available."): that epoch is saved,
            as Keras 3 saves it.

    Examples:
        >>> import fnn, jax, numpy as np, os, shutil, tempfile
        >>> net = fnn.mlp([1])
        >>> params = net.init(jax.random.PRNGKey(0), (3,))
        >>> x = np.linspace(-1, 1, 24, dtype=np.float32).reshape(8, 3)
        >>> y = x.sum(axis=1, keepdims=True)
        >>> tmp = tempfile.TemporaryDirectory()
        >>> each = fnn.callbacks.ModelCheckpoint(os.path.join(tmp.name, "ck-{epoch:02d}.npz"))
        >>> _ = fnn.fit(net, params, "sgd", "mse", x, y, batch_size=4, epochs=2, verbose=0, callbacks=[each])
        >>> sorted(os.listdir(tmp.name))
        ['ck-01.npz', 'ck-02.npz']
        >>> run = shutil.copy(os.path.join(tmp.name, "ck-01.npz"), os.path.join(tmp.name, "run.npz"))
        >>> fnn.fit(net, params, "sgd", "mse", x, y, batch_size=4, epochs=2, verbose=0, checkpoint=run).history.epochs
        [0, 1]

        A field the logs will not have fails before anything is compiled:

        >>> bad = fnn.callbacks.ModelCheckpoint(os.path.join(tmp.name, "ck-{val_loss:.3f}.npz"))
        >>> fnn.fit(net, params, "sgd", "mse", x, y, verbose=0, callbacks=[bad])
        Traceback (most recent call last):
        ...
        ValueError: ModelCheckpoint: filepath '...' names {val_loss}, which the logs will not have (there is no ...
        >>> tmp.cleanup()
    """

    def __init__(
        self,
        filepath: str,
        monitor: str = "val_loss",
        save_best_only: bool = False,
        mode: str = "auto",
        verbose: int = 0,
        save_weights_only: bool = False,
        save_freq: str = "epoch",
        initial_value_threshold: float | None = None,
    ):
        text = os.fspath(filepath) if isinstance(filepath, os.PathLike) else filepath
        if not isinstance(text, str):
            raise TypeError(f"filepath must be a path (str or os.PathLike), got {type(filepath).__name__}")
        self.fields = fields(text)
        _check_save_freq(save_freq)
        self.save_weights_only = boolean("save_weights_only", save_weights_only)
        # Keras's initial "best": None leaves it unset (the first monitored value is saved)
        threshold = (
            None if initial_value_threshold is None else real("initial_value_threshold", initial_value_threshold)
        )
        # A bad place to write fails here, not after the first epoch ("{...}" folders are formatted per epoch).
        templated = "{" in os.path.dirname(text)
        super().__init__(monitor, mode, 0.0)
        self.best = self.initial_value_threshold = threshold
        self.filepath = check_path("filepath", filepath, writable=not templated, replaced=not templated)
        self.save_best_only, self.verbose, self.save_freq = save_best_only, verbose, save_freq

    def check_monitor(self, names: set[str]) -> None:
        """As :meth:`MonitorCallback.check_monitor`, with ``save_best_only`` only: saving every
        epoch reads no monitor.

        Args:
            names: The log names of the run.
        """
        if self.save_best_only:
            super().check_monitor(names)

    def check_logs(self, names: set[str]) -> None:
        """Called by ``fit`` before anything is compiled, with the names the logs will hold.

        Args:
            names: The log names of the run (``loss``, metrics, ``val_*``...); ``epoch`` is
                always available.

        Raises:
            ValueError: For a field of ``filepath`` that is not among them (the message lists
                the available names), or whose format spec cannot format its value
                (:meth:`check_formats`).
        """
        unknown = [f for f in self.fields if f not in names and f != "epoch"]
        if unknown:
            why = " (there is no validation data)" if any(f.startswith("val_") for f in unknown) else ""
            raise ValueError(
                f"ModelCheckpoint: filepath {self.filepath!r} names {', '.join('{' + f + '}' for f in unknown)}, "
                f"which the logs will not have{why}; available: epoch, {', '.join(sorted(names))}"
            )
        self.check_formats(names)

    def check_formats(self, names: set[str]) -> None:
        """Each field's format spec against the type its value will have (``epoch`` an int, the
        logs ``names`` floats), called by ``fit`` before training: ``"{loss:02d}"`` fails now,
        not at the first epoch's end.

        Args:
            names: The log names of the run whose values are floats.

        Raises:
            ValueError: For a field whose spec or conversion cannot format its value.
        """
        check_formats(self.filepath, names)

    def could_write(self, path: str) -> bool:
        """Whether ``path`` is a file this callback may write: its ``filepath`` with each field
        a number its format spec can produce (``{epoch:02d}`` gives ``05``, never ``5``), both
        as absolute paths, and through symlinks where the template's folder has no fields to
        resolve."""
        return could_write(self.filepath, path)

    def on_epoch_end(self, epoch: int, logs: dict, ctx: FitContext) -> None:
        """Formats the path from the epoch and its logs and asks ``ctx`` to save there (under
        ``fit``, once every callback has run); with ``save_best_only``, only on improvement."""
        try:
            path = self.filepath.format(epoch=epoch + 1, **logs)
        except (KeyError, IndexError) as err:
            raise ValueError(
                f"ModelCheckpoint: filepath {self.filepath!r} names {err}, which the logs do not have; "
                f"available: epoch, {', '.join(sorted(logs))}"
            ) from None
        except (ValueError, TypeError) as err:  # a spec that cannot format a value a callback logged
            raise ValueError(
                f"ModelCheckpoint: filepath {self.filepath!r} cannot be formatted at epoch {epoch + 1}: {err}"
            ) from None
        if self.save_best_only and self.monitor not in logs:
            # Keras 3 saves the epoch (as without save_best_only) rather than nothing at all
            warnings.warn(
                f"ModelCheckpoint: can save best model only with {self.monitor} available (the logs have "
                f"{sorted(logs)}): saving epoch {epoch + 1}, as Keras does",
                RuntimeWarning,
                stacklevel=2,
            )
        elif self.save_best_only:
            current = logs[self.monitor]
            if not math.isfinite(current) or not self.improved(current, self.best):
                return
            self.best = current
        path = check_path("filepath", path, writable=True, replaced=True)
        if self.save_weights_only:  # the params alone, now: there is no run state to wait for
            checkpoint_.save(path, params=ctx.params, epoch=epoch + 1)
        else:
            ctx.save(path, epoch)
        if self.verbose:
            print(f"Epoch {epoch + 1}: saving {'weights' if self.save_weights_only else 'checkpoint'} to {path}")

    def get_state(self) -> dict[str, Any]:
        """``{"best": ...}``, the best monitored value saved so far."""
        return {"best": self.best}

    def set_state(self, state: dict[str, Any]) -> None:
        """Takes back :meth:`get_state`'s dict."""
        self.best = state["best"]


def _check_save_freq(save_freq: Any) -> None:
    """Keras's ``save_freq``: ``"epoch"`` only; its every-N-batches int is refused by name, as
    fnn refuses per-batch hooks."""
    if isinstance(save_freq, bool) or not isinstance(save_freq, (str, int)):
        raise TypeError(f"save_freq must be 'epoch', got {type(save_freq).__name__} {save_freq!r}")
    if isinstance(save_freq, int):
        raise ValueError(
            f"save_freq={save_freq} (a save every {save_freq} batches) cannot be: {NO_BATCH_HOOKS}; ModelCheckpoint "
            "saves at each epoch's end, save_freq='epoch'"
        )
    if save_freq != "epoch":
        raise ValueError(f"save_freq must be 'epoch', got {save_freq!r}")


def csv_number(value: Any) -> Any:
    """A float as the shortest text that reads back as the same float32 when it is one (logs
    come from float32 sums: ``0.001``, not ``0.0010000000474974513``); otherwise exact. An
    array or list a callback logged as Keras writes it: ``"[1.0, 2.0]"``, quotes included (PRNG
    keys as their data)."""
    if is_typed_key(value):
        value = jax.random.key_data(value)
    if isinstance(value, (list, tuple)) or (hasattr(value, "__array__") and np.ndim(value) > 0):
        return f'"[{", ".join(map(str, np.asarray(value) if hasattr(value, "__array__") else value))}]"'
    if isinstance(value, float) and math.isfinite(value) and float(np.float32(value)) == value:
        single = np.float32(value)
        positional = np.format_float_positional(single, unique=True, trim="-")
        scientific = np.format_float_scientific(single, unique=True, trim="-")  # 1e-08, not 0.00000001
        return min(positional, scientific, key=len)  # (a tie keeps the positional 0.001)
    return value


def _rows_before(rows: list[list[str]], epoch: int) -> list[list[str]]:
    """The rows a run resumed at ``epoch`` keeps: every row of the runs appended before it, and
    its own (the last block of increasing epochs) before ``epoch``."""
    epochs = [int(r[0]) if r and r[0].lstrip("-").isdigit() else None for r in rows]
    start, after = len(rows), None  # where the last block of increasing epochs begins
    while start > 0:
        e = epochs[start - 1]
        if e is None or (after is not None and e >= after):
            break
        start, after = start - 1, e
    own = [r for r, e in zip(rows[start:], epochs[start:], strict=True) if e is not None and e < epoch]
    return rows[:start] + own


@contextlib.contextmanager
def _any_field_size() -> Iterator[None]:
    """csv's reader without its field size limit (131,072 characters: a logged array of ~10k
    values written as Keras writes it), put back after: a resumed run reads its rows back."""
    before = csv.field_size_limit()
    csv.field_size_limit(sys.maxsize)
    try:
        yield
    finally:
        csv.field_size_limit(before)


def _empty(path: str) -> None:
    """Truncates ``path`` in place (Keras opens the log with mode "w"): a symbolic link's
    target is emptied, not the link removed, and a device is left a device."""
    with open(path, "w"):
        pass


class CSVLogger(Callback):
    """Writes one CSV row per epoch (``epoch`` then the log names, sorted) to ``filename``.

    As Keras's CSVLogger, a run whose first epoch logs no ``val_`` name also gets a
    ``val_<name>`` column for each name (after them, written ``NA``).

    ``append=False`` (Keras's default) starts a new file when training starts; a resumed run
    keeps the rows of the epochs its checkpoint holds (and drops any written after it).

    The columns are fixed by the first epoch's logs (a name missing later is written ``NA``);
    floats are written as the shortest text that reads back as the same float32 (``0.001``,
    not ``0.0010000000474974513``), an array a callback logged as Keras writes it
    (``"[1.0, 2.0]"``, quotes included, which the CSV quoting doubles). The header is written
    when the file is new or empty.
    ``append=True`` adds the rows to an existing file. A run resumed by ``fit`` from a
    checkpoint continues the file whatever ``append`` says: it keeps the header, the rows of
    the runs appended before it and its own rows of the epochs before the first one it runs
    (its own: the last block of increasing epochs), drops its later rows (written after the
    checkpoint, by the interrupted run) and keeps the columns the checkpoint recorded; a fresh run with
    ``append=False`` that trains no epoch empties the old file. The file is written in place, as
    Keras writes it: a symbolic link is written through, and a device or pipe (``/dev/stdout``)
    is written to, never replaced by a file.

    Args:
        filename: The CSV file, a str or ``os.PathLike``; its folder must be writable (missing
            folders are created at the first row written).
        separator: The field separator, one character.
        append: Append to an existing file instead of starting a new one.

    Attributes:
        filename: The file, as a str.

    Raises:
        TypeError: For a ``filename`` that is not a str or path, or an ``append`` that is not a bool.
        ValueError: For a ``filename`` that names a folder or cannot be written in, or a
            ``separator`` that is not one character (or is a quote or a line break).

    Examples:
        >>> import fnn, jax, numpy as np, os, tempfile
        >>> net = fnn.mlp([1])
        >>> params = net.init(jax.random.PRNGKey(0), (3,))
        >>> x = np.linspace(-1, 1, 24, dtype=np.float32).reshape(8, 3)
        >>> y = x.sum(axis=1, keepdims=True)
        >>> tmp = tempfile.TemporaryDirectory()
        >>> import pathlib
        >>> path = os.path.join(tmp.name, "log.csv")
        >>> _ = fnn.fit(net, params, "sgd", "mse", x, y, batch_size=4, epochs=2, verbose=0,
        ...             callbacks=[fnn.callbacks.CSVLogger(path)])
        >>> rows = pathlib.Path(path).read_text().splitlines()
        >>> rows[0], rows[1].endswith(",NA"), len(rows)
        ('epoch,loss,val_loss', True, 3)
        >>> tmp.cleanup()
    """

    def __init__(self, filename: str, separator: str = ",", append: bool = False):
        self.filename = check_path("filename", filename, writable=True)  # fails here, not after an epoch
        if not (isinstance(separator, str) and len(separator) == 1 and separator not in "\r\n\"'"):
            raise ValueError(f"separator must be one character (not a quote or line break), got {separator!r}")
        self.separator, self.append = separator, boolean("append", append)
        self._keys: list[str] | None = None
        self._resumed = False

    def on_train_begin(self, ctx: FitContext) -> None:
        """Starts afresh (a resumed run's state, restored after, marks the run as resumed)."""
        self._keys, self._resumed, self._started, self._header = None, False, False, False

    def _start(self, epoch: int) -> None:
        """The file as this run continues it: rows of earlier epochs only when resumed (or
        ``append``), a new file otherwise."""
        self._started = True
        with writing(self.filename, "the CSV log"):
            # the constructor checked the folder can be made, and made nothing
            os.makedirs(os.path.dirname(os.path.abspath(self.filename)), exist_ok=True)
            if self._resumed and os.path.exists(self.filename):
                with open(self.filename, newline="") as f, _any_field_size():
                    rows = list(csv.reader(f, delimiter=self.separator))
                keep = rows[:1] + _rows_before(rows[1:], epoch)
                with open(self.filename, "w", newline="") as f:
                    csv.writer(f, delimiter=self.separator).writerows(keep)
            elif not self.append and not self._resumed and os.path.exists(self.filename):
                _empty(self.filename)
            # decided once: a device or pipe (/dev/stdout) reads as empty at every epoch
            self._header = not os.path.exists(self.filename) or os.path.getsize(self.filename) == 0

    def on_epoch_end(self, epoch: int, logs: dict, ctx: FitContext) -> None:
        """Writes the epoch's row (at the first epoch, prepares the file first)."""
        if not self._started:
            self._start(epoch)
        if self._keys is None:
            self._keys = sorted(logs)
            if self._keys and not any(k.startswith("val_") for k in self._keys):
                # Keras's columns: a run without validation still has val_ ones (written NA), so
                # files of runs with and without it read alike
                self._keys += [f"val_{k}" for k in self._keys]
        with writing(self.filename, "the CSV log"), open(self.filename, "a", newline="") as f:
            w = csv.writer(f, delimiter=self.separator)
            if self._header:
                w.writerow(["epoch"] + self._keys)
                self._header = False
            w.writerow([epoch] + [csv_number(logs.get(k, "NA")) for k in self._keys])

    def on_train_end(self, ctx: FitContext) -> None:
        """Empties the old file of a fresh run that trained no epoch (``append=False``)."""
        if not self._started and not self._resumed and not self.append and os.path.exists(self.filename):
            with writing(self.filename, "the CSV log"):
                _empty(self.filename)  # a fresh run that trained no epoch leaves no old rows behind

    def get_state(self) -> dict[str, Any]:
        """``{"keys": ...}``, the columns after ``epoch`` (None before the first row)."""
        return {"keys": self._keys}

    def set_state(self, state: dict[str, Any]) -> None:
        """Takes back :meth:`get_state`'s dict and marks the run as resumed (the file is
        continued, not restarted)."""
        self._keys, self._resumed = state.get("keys"), True
