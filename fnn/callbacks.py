"""Callbacks: what ``fit`` consults between epochs (Keras's algorithms, host-side only).

A callback is an object with any of ``on_train_begin(ctx)``, ``on_epoch_begin(epoch, ctx)``,
``on_epoch_end(epoch, logs, ctx)``, ``on_train_end(ctx)``, or a plain callable
``fn(epoch, logs)`` called at each epoch's end (returning ``True`` stops training). ``ctx`` is a
:class:`FitContext`: the current params and optimizer state (which a callback may replace),
the history, and ``stop_training``. Epochs run on the device as one program, so callbacks see
epoch boundaries, never single batches; per-batch NaN detection happens inside the compiled
epoch when :class:`TerminateOnNaN` is present.
"""

from __future__ import annotations

import csv
import math
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from fnn import checkpoint as _checkpoint, optimizers as _optimizers
from fnn._validate import path as check_path

__all__ = [
    "Callback",
    "FitContext",
    "EarlyStopping",
    "TerminateOnNaN",
    "ReduceLROnPlateau",
    "LearningRateScheduler",
    "ModelCheckpoint",
    "CSVLogger",
    "StopAtThreshold",
    "LambdaCallback",
]


@dataclass
class FitContext:
    """The training state callbacks see (and may change) between epochs."""

    net: Any
    params: Any
    opt_state: Any
    history: Any
    epochs: int
    iterations_per_epoch: int
    epoch: int = 0
    stop_training: bool = False
    stop_reason: str | None = None

    def stop(self, reason: str) -> None:
        self.stop_training = True
        self.stop_reason = self.stop_reason or reason

    def snapshot(self, tree: Any) -> Any:
        """A copy with fresh buffers: fit donates the live params to the next epoch."""
        return jax.tree.map(lambda a: jnp.array(a, copy=True), tree)


class Callback:
    """Base class with no-op hooks; subclass and override what you need."""

    def on_train_begin(self, ctx: FitContext) -> None: ...

    def on_epoch_begin(self, epoch: int, ctx: FitContext) -> None: ...

    def on_epoch_end(self, epoch: int, logs: dict, ctx: FitContext) -> None: ...

    def on_train_end(self, ctx: FitContext) -> None: ...


class LambdaCallback(Callback):
    """Wraps ``fn(epoch, logs)``; a truthy return value stops training."""

    def __init__(self, fn: Callable[[int, dict], Any]):
        self.fn = fn

    def on_epoch_end(self, epoch: int, logs: dict, ctx: FitContext) -> None:
        if self.fn(epoch, dict(logs)):
            ctx.stop(f"callback {getattr(self.fn, '__name__', 'fn')}")


def _monitor_op(monitor: str, mode: str):
    """Keras's rule: ``mode='auto'`` maximises accuracy-like and AUC-like names, else minimises."""
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode == "auto":
        name = monitor.removeprefix("val_")
        mode = "max" if (name.startswith("acc") or name.endswith("accuracy") or name == "auc") else "min"
    return mode


def _get_monitored(logs: dict, monitor: str, who: str):
    if monitor not in logs:
        import warnings

        warnings.warn(
            f"{who}: metric {monitor!r} is not available; available: {sorted(logs)}", RuntimeWarning, stacklevel=3
        )
        return None
    return logs[monitor]


class EarlyStopping(Callback):
    """Stops when ``monitor`` stops improving (Keras 3's algorithm).

    An epoch improves when ``current - min_delta > best`` (mode max) or
    ``current + min_delta < best`` (mode min; ``min_delta`` is taken as its absolute value).
    After ``patience`` epochs without improvement (counted from ``start_from_epoch``) training
    stops. With ``baseline``, the first improvement must also beat it. With
    ``restore_best_weights``, the best epoch's weights are restored whenever training ends —
    also when the epochs run out.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        min_delta: float = 0.0,
        patience: int = 0,
        mode: str = "auto",
        baseline: float | None = None,
        restore_best_weights: bool = False,
        start_from_epoch: int = 0,
        verbose: int = 0,
    ):
        if patience < 0:
            raise ValueError(f"patience must be >= 0, got {patience}")
        self.monitor, self.patience, self.baseline = monitor, patience, baseline
        self.mode = _monitor_op(monitor, mode)
        self.min_delta = abs(min_delta) * (1 if self.mode == "max" else -1)
        self.restore_best_weights, self.start_from_epoch, self.verbose = restore_best_weights, start_from_epoch, verbose

    def _improved(self, value, reference) -> bool:
        if reference is None:
            return True
        if self.mode == "max":
            return value - self.min_delta > reference
        return value - self.min_delta < reference

    def on_train_begin(self, ctx: FitContext) -> None:
        self.wait = 0
        self.stopped_epoch = 0
        self.best = None
        self.best_weights = None
        self.best_epoch = 0

    def on_epoch_end(self, epoch: int, logs: dict, ctx: FitContext) -> None:
        current = _get_monitored(logs, self.monitor, "EarlyStopping")
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            # Keras starts from the first epoch's weights, whether or not it improves.
            self.best_weights = ctx.snapshot(ctx.params)
            self.best_epoch = epoch
        self.wait += 1
        if self._improved(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = ctx.snapshot(ctx.params)
            # Only restart the wait if we beat both the baseline and our previous best.
            if self.baseline is None or self._improved(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            ctx.stop("early_stopping")

    def on_train_end(self, ctx: FitContext) -> None:
        if self.restore_best_weights and self.best_weights is not None:
            ctx.params = self.best_weights
        if self.stopped_epoch > 0 and self.verbose:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")


class TerminateOnNaN(Callback):
    """Stops at the first non-finite batch loss; ``fit`` then returns the last finite params.

    ``fit`` sees this callback and compiles a guard into the epoch: after the first bad batch no
    further update is applied, and the epoch reports it.
    """

    def on_epoch_end(self, epoch: int, logs: dict, ctx: FitContext) -> None:
        if not math.isfinite(logs.get("loss", 0.0)):
            ctx.stop("nan")


class ReduceLROnPlateau(Callback):
    """Multiplies the learning rate (held in the optimizer state, so nothing recompiles) by
    ``factor`` after ``patience`` epochs without improvement of ``monitor``; Keras's algorithm
    with ``cooldown`` and ``min_lr``."""

    def __init__(
        self,
        monitor: str = "val_loss",
        factor: float = 0.1,
        patience: int = 10,
        mode: str = "auto",
        min_delta: float = 1e-4,
        cooldown: int = 0,
        min_lr: float = 0.0,
        verbose: int = 0,
    ):
        if not 0.0 < factor < 1.0:
            raise ValueError(f"factor must be in (0, 1), got {factor}")
        self.monitor, self.factor, self.patience = monitor, factor, patience
        self.mode = _monitor_op(monitor, mode)
        self.min_delta, self.cooldown, self.min_lr, self.verbose = min_delta, cooldown, min_lr, verbose

    def on_train_begin(self, ctx: FitContext) -> None:
        self.wait, self.cooldown_counter = 0, 0
        self.best = -math.inf if self.mode == "max" else math.inf

    def on_epoch_end(self, epoch: int, logs: dict, ctx: FitContext) -> None:
        current = _get_monitored(logs, self.monitor, "ReduceLROnPlateau")
        logs_lr = float(_optimizers.get_learning_rate(ctx.opt_state))
        logs["learning_rate"] = logs_lr  # the rate this epoch ran with, as Keras logs it
        if current is None:
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        better = current > self.best + self.min_delta if self.mode == "max" else current < self.best - self.min_delta
        if better:
            self.best, self.wait = current, 0
        elif self.cooldown_counter <= 0:
            self.wait += 1
            if self.wait >= self.patience and logs_lr > self.min_lr:
                new_lr = max(logs_lr * self.factor, self.min_lr)
                ctx.opt_state = _optimizers.set_learning_rate(ctx.opt_state, new_lr)
                if self.verbose:
                    print(f"Epoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new_lr:.6g}.")
                self.cooldown_counter, self.wait = self.cooldown, 0


class LearningRateScheduler(Callback):
    """At each epoch's start sets the learning rate to ``schedule(epoch, lr)`` (Keras's signature)."""

    def __init__(self, schedule: Callable[[int, float], float], verbose: int = 0):
        self.schedule, self.verbose = schedule, verbose

    def on_epoch_begin(self, epoch: int, ctx: FitContext) -> None:
        lr = float(_optimizers.get_learning_rate(ctx.opt_state))
        new_lr = float(self.schedule(epoch, lr))
        if not math.isfinite(new_lr) or new_lr < 0:
            raise ValueError(f"LearningRateScheduler: schedule returned an invalid learning rate {new_lr!r}")
        ctx.opt_state = _optimizers.set_learning_rate(ctx.opt_state, new_lr)
        self._lr = new_lr
        if self.verbose:
            print(f"Epoch {epoch + 1}: LearningRateScheduler setting learning rate to {new_lr:.6g}.")

    def on_epoch_end(self, epoch: int, logs: dict, ctx: FitContext) -> None:
        logs["learning_rate"] = self._lr


class ModelCheckpoint(Callback):
    """Saves params and optimizer state to ``filepath`` (``{epoch}`` and log names may appear
    in it, formatted like Keras) each epoch, or only when ``monitor`` improves with
    ``save_best_only``. Writes are atomic (see :mod:`fnn.checkpoint`)."""

    def __init__(
        self,
        filepath: str,
        monitor: str = "val_loss",
        save_best_only: bool = False,
        mode: str = "auto",
        verbose: int = 0,
    ):
        # A bad place to write fails here, not after the first epoch ("{...}" folders are formatted per epoch).
        templated = "{" in os.path.dirname(os.fspath(filepath) if isinstance(filepath, os.PathLike) else str(filepath))
        self.filepath, self.monitor, self.save_best_only, self.verbose = (
            check_path("filepath", filepath, writable=not templated),
            monitor,
            save_best_only,
            verbose,
        )
        self.mode = _monitor_op(monitor, mode)
        self.best = None

    def on_epoch_end(self, epoch: int, logs: dict, ctx: FitContext) -> None:
        path = self.filepath.format(epoch=epoch + 1, **logs)
        if self.save_best_only:
            current = _get_monitored(logs, self.monitor, "ModelCheckpoint")
            if current is None or not math.isfinite(current):
                return
            if self.best is not None and not (current > self.best if self.mode == "max" else current < self.best):
                return
            self.best = current
        _checkpoint.save(
            path, params=ctx.params, opt_state=ctx.opt_state, epoch=epoch + 1, history=ctx.history.to_dict()
        )
        if self.verbose:
            print(f"Epoch {epoch + 1}: saved checkpoint to {path}")


class CSVLogger(Callback):
    """Appends one CSV row per epoch (``epoch`` then the log names, sorted) to ``filename``."""

    def __init__(self, filename: str, separator: str = ",", append: bool = False):
        self.filename = check_path("filename", filename, writable=True)  # fails here, not after an epoch
        self.separator, self.append = separator, append
        self._keys: list[str] | None = None

    def on_train_begin(self, ctx: FitContext) -> None:
        self._keys = None
        if not self.append and os.path.exists(self.filename):
            os.remove(self.filename)

    def on_epoch_end(self, epoch: int, logs: dict, ctx: FitContext) -> None:
        new_file = not os.path.exists(self.filename) or os.path.getsize(self.filename) == 0
        if self._keys is None:
            self._keys = sorted(logs)
        with open(self.filename, "a", newline="") as f:
            w = csv.writer(f, delimiter=self.separator)
            if new_file:
                w.writerow(["epoch"] + self._keys)
            w.writerow([epoch] + [logs.get(k, "NA") for k in self._keys])


class StopAtThreshold(Callback):
    """Stops once ``monitor`` reaches ``value``: at or below it for losses, at or above it for
    accuracy-like names (``mode`` as in EarlyStopping)."""

    def __init__(self, monitor: str = "loss", value: float = 0.0, mode: str = "auto"):
        self.monitor, self.value = monitor, value
        self.mode = _monitor_op(monitor, mode)

    def on_epoch_end(self, epoch: int, logs: dict, ctx: FitContext) -> None:
        current = _get_monitored(logs, self.monitor, "StopAtThreshold")
        if current is not None and (current >= self.value if self.mode == "max" else current <= self.value):
            ctx.stop("threshold")


# --------------------------------------------------------------------------------------------
# Internal: the list fit drives, and the progress display
# --------------------------------------------------------------------------------------------


class CallbackList:
    """Normalises user callbacks (objects or plain callables) and calls them in order."""

    def __init__(self, callbacks: Sequence | None):
        if callbacks is None:
            callbacks = ()
        if isinstance(callbacks, (Callback,)) or (callable(callbacks) and not isinstance(callbacks, (list, tuple))):
            callbacks = (callbacks,)
        self.items = []
        for i, cb in enumerate(callbacks):
            hooks = ("on_train_begin", "on_epoch_begin", "on_epoch_end", "on_train_end")
            if isinstance(cb, type):
                raise TypeError(
                    f"callbacks[{i}] is the class {cb.__name__}, not a callback: pass an instance, {cb.__name__}(...)"
                )
            if any(hasattr(cb, h) for h in hooks):
                self.items.append(cb)
            elif callable(cb):
                self.items.append(LambdaCallback(cb))
            else:
                raise TypeError(
                    f"callbacks[{i}] must be a Callback or a callable fn(epoch, logs), got {type(cb).__name__}"
                )

    @property
    def stop_on_nan(self) -> bool:
        return any(isinstance(cb, TerminateOnNaN) for cb in self.items)

    def _call(self, hook, *args):
        for cb in self.items:
            fn = getattr(cb, hook, None)
            if fn is not None:
                fn(*args)

    def on_train_begin(self, ctx: FitContext) -> None:
        self._call("on_train_begin", ctx)

    def on_epoch_begin(self, epoch: int, ctx: FitContext) -> None:
        self._call("on_epoch_begin", epoch, ctx)

    def on_epoch_end(self, epoch: int, logs: dict, ctx: FitContext) -> None:
        self._call("on_epoch_end", epoch, logs, ctx)

    def on_train_end(self, ctx: FitContext) -> None:
        self._call("on_train_end", ctx)


def _format_logs(logs: dict) -> str:
    # a callback may put anything in the logs: numbers get 4 decimals, the rest is shown as it is
    return " - ".join(
        f"{k}: {v:.4f}" if isinstance(v, (int, float, np.number)) else f"{k}: {v}" for k, v in logs.items()
    )


class Progress:
    """``verbose=1``: a tqdm bar over iterations (ETA, loss and metrics), advanced by an epoch's
    iterations at a time; ``verbose=2``: one line per epoch; ``verbose=0``: silent."""

    def __init__(self, verbose: int, epochs: int, initial_epoch: int, iterations: int):
        self.verbose, self.epochs, self.iterations = verbose, epochs, iterations
        self.bar = None
        if verbose == 1 and epochs > initial_epoch:
            from tqdm.auto import tqdm

            self.bar = tqdm(
                total=(epochs - initial_epoch) * iterations,
                unit="it",
                dynamic_ncols=True,
                desc=f"Epoch {initial_epoch}/{epochs}",
                file=sys.stderr,
            )

    def update(self, epoch: int, logs: dict, seconds: float) -> None:
        if self.bar is not None:
            self.bar.set_description(f"Epoch {epoch + 1}/{self.epochs}")
            self.bar.set_postfix_str(_format_logs(logs), refresh=False)
            self.bar.update(self.iterations)
        elif self.verbose == 2:
            print(
                f"Epoch {epoch + 1}/{self.epochs} - {self.iterations} it - {seconds:.2f}s - {_format_logs(logs)}",
                flush=True,
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def __dir__() -> list[str]:
    """The public API only (implementation imports stay out of ``dir``)."""
    return sorted(__all__)
