"""Callbacks that watch a logged value between epochs and stop training (Keras 3's algorithms
where Keras has one), and the monitoring they share with the other callbacks that watch one."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

from fnn._registry import normalize
from fnn._validate import boolean, integer, real
from fnn.callbacks._base import Callback, FitContext
from fnn.metrics._registry import direction, is_builtin


def monitor_mode(monitor: str, mode: str) -> str:
    """``mode`` checked; ``"auto"`` is ``"min"`` for ``loss`` and ``val_loss`` and stays
    ``"auto"`` otherwise, for :func:`auto_mode` to settle from the run's metrics."""
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
    return "min" if mode == "auto" and monitor.removeprefix("val_") == "loss" else mode


def auto_mode(who: str, monitor: str, metrics: Sequence[Any] | None) -> str:
    """Keras 3's ``mode="auto"`` (``MonitorCallback._set_monitor_op``): ``"min"`` for ``loss``
    and ``val_loss``, else the direction of the run's metric logged as ``monitor`` (without
    ``val_``); anything else is a ValueError, where a guess from the name would silently pick
    the wrong way for a metric of your own (``hit_rate``).

    Args:
        who: The callback, for the message.
        monitor: The monitored log name.
        metrics: The run's resolved metrics; None outside ``fit``, where none is known.

    Returns:
        ``"min"`` or ``"max"``.

    Raises:
        ValueError: For a monitor that is neither the loss nor a metric whose direction is
            known (a metric of your own, a value a callback logs, a name not logged).
    """
    name = monitor.removeprefix("val_")
    if name == "loss":
        return "min"
    watched = [m for m in metrics or () if m.name == name]
    way = direction(watched[0]) if watched else None
    if way is not None:
        return "max" if way == "up" else "min"
    if metrics is None:
        why = "outside fit, no metric is known"
    elif watched and is_builtin(watched[0]):
        why = f"{name!r} is a count, for which Keras declares no direction"
    elif watched:
        why = f"{name!r} is a metric of yours"
    else:
        why = f"it is neither the loss nor one of the run's metrics {sorted(m.name for m in metrics)}"
    raise ValueError(
        f"{who}: mode='auto' cannot tell whether monitor {monitor!r} should be maximized or minimized ({why}); "
        "pass mode='max' to monitor its highest value, or mode='min' its lowest (Keras 3 refuses it too)"
    )


def monitored(logs: dict, monitor: str, who: str) -> Any:
    """``logs[monitor]``, or None with a warning naming what is available."""
    if monitor not in logs:
        warnings.warn(
            f"{who}: metric {monitor!r} is not available; available: {sorted(logs)}", RuntimeWarning, stacklevel=3
        )
        return None
    return logs[monitor]


def _integer(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


class MonitorCallback(Callback):
    """Keras 3's ``MonitorCallback``: ``best`` starts unset (the first value is always an
    improvement), ``min_delta`` is taken as its absolute value, and a value improves on the
    reference when ``value - min_delta > reference`` (mode max) or ``value + min_delta <
    reference`` (mode min), both sides taken as float32 after the sum, integers exactly (as
    Keras's ``ops.less`` and ``ops.greater`` take them: a float32 loss of 0.9 plus a
    ``min_delta`` of 0.1 ties with 1.0). ``mode="auto"`` is settled as Keras 3 settles it (:func:`auto_mode`):
    ``fit`` does it before training, from the run's metrics."""

    def __init__(self, monitor: str, mode: str, min_delta: float):
        if not isinstance(monitor, str):
            raise TypeError(f"monitor must be a log name (str), got {type(monitor).__name__}")
        self.monitor = monitor
        self.mode = monitor_mode(monitor, mode)
        # a metric's direction is known only with the run's metrics: fit settles it each run
        self.auto_mode = mode == "auto"
        self.min_delta = abs(real("min_delta", min_delta))
        self.best: float | None = None

    def check_monitor(self, names: set[str]) -> None:
        """Called by ``fit`` before anything is compiled, with the names the logs will hold: a
        ``monitor`` that is not among them but matches one but for case and underscores
        (``"val_auc"`` for ``metrics=["AUC"]``, logged as ``val_AUC``) is a ValueError, where it
        would only warn every epoch and never act. Any other missing name warns at each epoch,
        as Keras does (``val_loss`` without validation data).

        Args:
            names: The log names of the run.

        Raises:
            ValueError: For a ``monitor`` that differs from a logged name in case or underscores.
        """
        near = sorted(n for n in names if normalize(n) == normalize(self.monitor))
        if self.monitor not in names and near:
            raise ValueError(
                f"{type(self).__name__}: monitor {self.monitor!r} is not logged, {near[0]!r} is (a metric is "
                "logged under the name it was given, as Keras logs it)"
            )

    def improved(self, value: float, reference: float | None) -> bool:
        if self.mode == "auto":  # driven outside fit, which would have settled it
            self.mode = auto_mode(type(self).__name__, self.monitor, None)
        if reference is None:
            return True
        # Keras's ops.less / ops.greater take both sides as tensors after the min_delta's Python
        # arithmetic: floats as float32 (0.9 in float32 plus 0.1 ties with 1.0 there), integers
        # exactly (16777216 < 16777217, one float32)
        delta = -self.min_delta if self.mode == "max" else self.min_delta
        if _integer(value) and _integer(reference) and float(delta).is_integer():
            left: Any = int(value) + int(delta)
            return left > int(reference) if self.mode == "max" else left < int(reference)
        with np.errstate(over="ignore"):  # beyond float32's range: inf, as the tensor holds it
            left, right = np.float32(value + delta), np.float32(reference)
        return bool(left > right) if self.mode == "max" else bool(left < right)


class EarlyStopping(MonitorCallback):
    """Stops when ``monitor`` stops improving (Keras 3's algorithm).

    An epoch improves when ``current - min_delta > best`` (mode max) or
    ``current + min_delta < best`` (mode min; ``min_delta`` is taken as its absolute value).
    After ``patience`` epochs without improvement (counted from ``start_from_epoch``) training
    stops. With ``baseline``, the first improvement must also beat it. With
    ``restore_best_weights``, the best epoch's weights are restored whenever training ends —
    also when the epochs run out. Its state (best value and weights, wait) is saved with fit's
    checkpoints.

    Keras 3's details: ``best`` starts unset, so the first monitored epoch always improves;
    the wait counts every monitored epoch and is reset by an improvement that also beats
    ``baseline``; training stops when ``wait >= patience`` (never at epoch 0), with
    ``history.stop_reason == "early_stopping"``. ``restore_best_weights`` keeps a copy of the
    best epoch's weights (from the first monitored epoch on) and puts it in ``ctx.params`` at
    the end. Epochs before ``start_from_epoch`` and epochs whose logs lack ``monitor`` are not
    counted. Resumed from a checkpoint, the wait, the best value and the best weights continue.

    Args:
        monitor: The logged value to watch (``"val_loss"``, ``"loss"``, ``"val_accuracy"``...).
        min_delta: The least change that counts as an improvement (its absolute value is used).
        patience: Epochs without improvement before stopping, an int >= 0.
        mode: ``"min"``, ``"max"``, or ``"auto"``, Keras 3's rule: min for ``loss`` and
            ``val_loss``, else the direction of the run's metric logged under that name (without
            ``val_``): max for the accuracies, auc, precision, recall, f1_score, fbeta_score,
            r2_score, cosine_similarity, precision_at_recall (and its kin), the IoU family and
            the correlations, min for the errors and the other metrics that are losses (and
            fnn's losses given as metrics).
            Any other monitor, a metric of your own (``val_hit_rate``), a confusion count
            (``true_positives``...), a value a callback logs or a name not logged, needs
            ``"min"`` or ``"max"``: no name can tell which way it improves.
        baseline: A value the monitored one must beat for the wait to be reset, or None.
        restore_best_weights: Return the best epoch's weights instead of the last ones.
        start_from_epoch: The first epoch (counted from 0) that is monitored.
        verbose: 1 prints the epoch it stopped at (``Epoch 4: early stopping``) and, with
            ``restore_best_weights``, the epoch whose weights it restores (``Restoring model
            weights from the end of the best epoch: 2.``), as Keras 3 prints them.

    Attributes:
        best: The best monitored value so far (None before the first).
        best_epoch: The epoch it was logged at.
        best_weights: The weights of that epoch with ``restore_best_weights``, else None.
        wait: Epochs counted since the last improvement.
        stopped_epoch: The epoch training stopped at (0 if it did not stop).

    Raises:
        TypeError: For a ``restore_best_weights`` that is not a bool.
        ValueError: For ``patience < 0`` or a ``mode`` other than ``"auto"``, ``"min"``,
            ``"max"``; from ``fit``, before training, for ``mode="auto"`` with a monitor whose
            direction is not known (above), where Keras 3 raises after the first epoch.

    Warns:
        RuntimeWarning: At each epoch whose logs lack ``monitor`` (the message lists those
            available), e.g. ``"val_loss"`` without validation data.

    Examples:
        >>> import fnn, jax, numpy as np
        >>> net = fnn.mlp([1])
        >>> params = net.init(jax.random.PRNGKey(0), (3,))
        >>> x = np.linspace(-1, 1, 24, dtype=np.float32).reshape(8, 3)
        >>> y = x.sum(axis=1, keepdims=True)
        >>> stop = fnn.callbacks.EarlyStopping(monitor="loss", min_delta=100.0, patience=1)
        >>> h = fnn.fit(net, params, "sgd", "mse", x, y, batch_size=4, epochs=5, verbose=0, callbacks=[stop]).history
        >>> h.epochs, h.stop_reason, stop.best_epoch  # no later epoch improves by 100
        ([0, 1], 'early_stopping', 0)

        A metric of your own has no direction ``mode="auto"`` can know (pass ``mode="max"``):

        >>> def hit_rate(y_true, y_pred):
        ...     return (abs(y_true - y_pred) < 0.5).astype("float32")
        >>> stop = fnn.callbacks.EarlyStopping(monitor="hit_rate", patience=1)
        >>> fnn.fit(net, params, "sgd", "mse", x, y, metrics=[hit_rate], verbose=0, callbacks=[stop])
        Traceback (most recent call last):
        ...
        ValueError: EarlyStopping: mode='auto' cannot tell whether monitor 'hit_rate' should be maximized or ...
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
        patience = integer("patience", patience, 0)
        start_from_epoch = integer("start_from_epoch", start_from_epoch, 0)
        super().__init__(monitor, mode, min_delta)
        self.patience, self.baseline = patience, None if baseline is None else real("baseline", baseline)
        # checked as CSVLogger's append is: "no" would restore the best weights
        self.restore_best_weights = boolean("restore_best_weights", restore_best_weights)
        self.start_from_epoch, self.verbose = start_from_epoch, verbose
        self.on_train_begin(None)

    def on_train_begin(self, ctx: FitContext | None) -> None:
        """Starts afresh: no best value, no wait (a resumed run's state is restored after)."""
        self.wait = 0
        self.stopped_epoch = 0
        self.best = None
        self.best_weights: Any = None
        self.best_epoch = 0
        self._best_leaves: list | None = None  # restored weights, shaped like ctx.params on first use

    def _weights(self, ctx: FitContext) -> Any:
        if self._best_leaves is not None:
            self.best_weights = jax.tree.unflatten(jax.tree.structure(ctx.params), self._best_leaves)
            self._best_leaves = None
        return self.best_weights

    def on_epoch_end(self, epoch: int, logs: dict, ctx: FitContext) -> None:
        """Compares ``logs[monitor]`` with the best so far; stops after ``patience`` epochs
        without improvement."""
        current = monitored(logs, self.monitor, "EarlyStopping")
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self._weights(ctx) is None:
            # Keras starts from the first epoch's weights, whether or not it improves.
            self.best_weights = ctx.snapshot(ctx.params)
            self.best_epoch = epoch
        self.wait += 1
        if self.improved(current, self.best):
            self.best = current
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_weights = ctx.snapshot(ctx.params)
            # Only restart the wait if we beat both the baseline and our previous best.
            if self.baseline is None or self.improved(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            ctx.stop("early_stopping")

    def on_train_end(self, ctx: FitContext) -> None:
        """With ``restore_best_weights``, puts the best epoch's weights in ``ctx.params``."""
        if self.stopped_epoch > 0 and self.verbose:
            print(f"Epoch {self.stopped_epoch + 1}: early stopping")
        if self.restore_best_weights and self._weights(ctx) is not None:
            ctx.params = self.best_weights
            if self.verbose:  # Keras's words, also when the epochs ran out
                print(f"Restoring model weights from the end of the best epoch: {self.best_epoch + 1}.")

    def get_state(self) -> dict[str, Any]:
        """``{"wait", "stopped_epoch", "best", "best_epoch", "best_weights"}`` (the weights as
        a list of leaves, or None)."""
        weights = self._best_leaves if self._best_leaves is not None else self.best_weights
        return {
            "wait": self.wait,
            "stopped_epoch": self.stopped_epoch,
            "best": self.best,
            "best_epoch": self.best_epoch,
            "best_weights": None if weights is None else jax.tree.leaves(weights),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        """Takes back :meth:`get_state`'s dict (the weights are rebuilt in the params'
        structure when next used)."""
        self.wait, self.stopped_epoch = int(state["wait"]), int(state["stopped_epoch"])
        self.best, self.best_epoch = state["best"], int(state["best_epoch"])
        self.best_weights, self._best_leaves = None, state.get("best_weights")


class TerminateOnNaN(Callback):
    """Stops at the first batch whose loss or updated params are non-finite; ``fit`` then
    returns (and checkpoints) the last finite params.

    ``fit`` sees this callback and compiles a guard into the epoch: the update of a bad batch is
    not applied, no further update is, and the epoch reports it.

    Training then ends with ``history.stop_reason == "nan"`` and ``history.stopped_epoch`` the
    epoch of the bad batch, and, as Keras's, it prints a line saying so whatever fit's
    ``verbose`` (``Epoch 3: Invalid loss, terminating training``); that epoch's logs count its
    batches up to the bad one included. A
    checkpoint written at that epoch holds the last finite params, and resuming it stays
    stopped. Without this callback a non-finite epoch loss only warns (RuntimeWarning) and
    training goes on. It has no state.

    ``raise_error=True`` (Keras 3's strict failure) raises a RuntimeError instead, at the end
    of the epoch of the bad batch, as this callback runs: the callbacks after it, the epoch's
    checkpoints and every ``on_train_end`` do not run, and ``fit`` returns nothing, so the
    files hold the run as it was before that epoch. (Keras raises at the bad batch itself;
    fnn's epoch is one compiled program, which the guard above ends early.)

    Args:
        raise_error: Raise a RuntimeError rather than stop (a bool).

    Raises:
        TypeError: For a ``raise_error`` that is not a bool.
        RuntimeError: With ``raise_error=True``, at the end of an epoch with a non-finite
            batch loss (or params).

    Examples:
        >>> import fnn, jax, numpy as np
        >>> net = fnn.mlp([1])
        >>> params = net.init(jax.random.PRNGKey(0), (3,))
        >>> x, y = np.full((8, 3), 0.5, np.float32), np.ones((8, 1), np.float32)
        >>> huge = fnn.optimizers.sgd(1e30)  # the second step's loss overflows float32
        >>> run = dict(batch_size=4, epochs=3, verbose=0)
        >>> h = fnn.fit(net, params, huge, "mse", x, y, callbacks=[fnn.callbacks.TerminateOnNaN()], **run).history
        Epoch 1: Invalid loss, terminating training
        >>> h.epochs, h.stop_reason
        ([0], 'nan')
        >>> fnn.fit(net, params, huge, "mse", x, y, callbacks=[fnn.callbacks.TerminateOnNaN(raise_error=True)], **run)
        Traceback (most recent call last):
        ...
        RuntimeError: TerminateOnNaN: NaN or Inf loss encountered in epoch 1 (loss inf). Terminating training ...
    """

    def __init__(self, raise_error: bool = False):
        self.raise_error = boolean("raise_error", raise_error)

    def on_epoch_end(self, epoch: int, logs: dict, ctx: FitContext) -> None:
        """Stops training (or raises, with ``raise_error``) if the epoch had a non-finite batch."""
        loss = logs.get("loss", 0.0)
        # fit's compiled guard has already marked the epoch; driven by hand, the loss tells
        history = ctx.history
        guarded = getattr(history, "stop_reason", None) == "nan" and getattr(history, "stopped_epoch", None) == epoch
        if not (guarded or not math.isfinite(loss)):
            return
        if self.raise_error:
            raise RuntimeError(
                f"TerminateOnNaN: NaN or Inf loss encountered in epoch {epoch + 1} (loss {loss}). Terminating "
                "training immediately (raise_error=True: no further callback, checkpoint or on_train_end runs)"
            )
        # Keras prints its line whatever fit's verbose (its batch; fnn's guard ends the epoch)
        print(f"Epoch {epoch + 1}: Invalid loss, terminating training", flush=True)
        ctx.stop("nan")


class StopAtThreshold(Callback):
    """Stops once ``monitor`` reaches ``value``: at or below it for losses, at or above it for
    metrics that grow as predictions improve (``mode`` as in EarlyStopping).

    Checked at each epoch's end; training then ends with ``history.stop_reason ==
    "threshold"`` (a resumed run stays stopped). Not a Keras callback: the stopping criterion
    "train until the loss is below a target". It has no state.

    Args:
        monitor: The logged value to watch.
        value: The target.
        mode: ``"min"`` (stop at ``<= value``), ``"max"`` (stop at ``>= value``) or ``"auto"``
            (the metric's direction, as in :class:`EarlyStopping`).

    Raises:
        TypeError: For a ``monitor`` that is not a str.
        ValueError: For a ``mode`` other than ``"auto"``, ``"min"``, ``"max"``; from ``fit``,
            before training, for ``mode="auto"`` with a monitor whose direction is not known
            (as in :class:`EarlyStopping`).

    Warns:
        RuntimeWarning: At each epoch whose logs lack ``monitor``.

    Examples:
        >>> import fnn, jax, numpy as np
        >>> net = fnn.mlp([1])
        >>> params = net.init(jax.random.PRNGKey(0), (3,))
        >>> x = np.linspace(-1, 1, 24, dtype=np.float32).reshape(8, 3)
        >>> y = x.sum(axis=1, keepdims=True)
        >>> target = fnn.callbacks.StopAtThreshold(monitor="loss", value=100.0)
        >>> h = fnn.fit(net, params, "sgd", "mse", x, y, batch_size=4, epochs=5, verbose=0, callbacks=[target]).history
        >>> h.epochs, h.stop_reason
        ([0], 'threshold')
    """

    def __init__(self, monitor: str = "loss", value: float = 0.0, mode: str = "auto"):
        if not isinstance(monitor, str):
            raise TypeError(f"monitor must be a log name (str), got {type(monitor).__name__}")
        self.monitor, self.value = monitor, real("value", value)
        self.mode, self.auto_mode = monitor_mode(monitor, mode), mode == "auto"

    def on_epoch_end(self, epoch: int, logs: dict, ctx: FitContext) -> None:
        """Stops training once ``logs[monitor]`` has reached ``value``."""
        current = monitored(logs, self.monitor, "StopAtThreshold")
        if current is None:
            return
        if self.mode == "auto":  # driven outside fit, which would have settled it
            self.mode = auto_mode("StopAtThreshold", self.monitor, None)
        if current >= self.value if self.mode == "max" else current <= self.value:
            ctx.stop("threshold")
