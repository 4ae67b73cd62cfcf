"""Callbacks that change the learning rate between epochs (Keras 3's algorithms): on a plateau
of a logged value, or by a schedule of the epoch."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from fnn import optimizers as optimizers_
from fnn._placement import to_host
from fnn._validate import integer, real
from fnn.callbacks._base import Callback, FitContext
from fnn.callbacks._monitor import MonitorCallback, monitored
from fnn.optimizers._learning_rates import set_learning_rate_in_proportion


class ReduceLROnPlateau(MonitorCallback):
    """Multiplies the learning rate (held in the optimizer state, so nothing recompiles) by
    ``factor`` after ``patience`` epochs without improvement of ``monitor``; Keras 3's
    algorithm with ``cooldown`` and ``min_lr`` (``best`` starts unset, ``abs(min_delta)``).
    Logs ``learning_rate`` as Keras 3 does: the rate the optimizer state holds at the epoch's
    end, before this epoch's reduction, i.e. the rate of the next step. With a constant rate
    that is the rate the epoch ran with; with a per-step schedule (:mod:`fnn.schedules`) it is
    the schedule's rate at the next epoch's first step, not any rate of this epoch's steps.
    Its state is saved with fit's checkpoints.

    Keras 3's algorithm, at each epoch's end: ``best`` starts unset (the first monitored value
    is an improvement), and a value improves when ``current + |min_delta| < best`` (mode min)
    or ``current - |min_delta| > best`` (mode max). An improvement resets the wait; otherwise,
    outside a cooldown, the wait grows, and when it reaches ``patience`` while the rate is above
    ``min_lr`` the rate becomes ``max(lr * factor, min_lr)`` and the wait restarts; then each
    of ``cooldown`` epochs resets the wait (Keras's counting: the last of them already counts
    toward the next wait). The new rate is written into the optimizer state
    with :func:`fnn.optimizers.set_learning_rates` (a schedule is rescaled), so it holds in the
    next epoch, in the returned ``opt_state``, and in checkpoints. Resumed from a checkpoint,
    the wait, cooldown and best value continue.

    A state holding several learning rates (parameter groups, e.g. ``chain(masked(sgd(0.1),
    w_mask), masked(sgd(0.01), b_mask))``; see :func:`fnn.optimizers.get_learning_rates`) has
    each group reduced as PyTorch's ReduceLROnPlateau reduces its param groups: every group
    above ``min_lr`` becomes ``max(its lr * factor, min_lr)``, the others keep theirs (a
    reduction happens when any group is above ``min_lr``). The logged ``learning_rate`` is the
    first group's.

    Args:
        monitor: The logged value to watch.
        factor: The factor the rate is multiplied by, in (0, 1).
        patience: Epochs without improvement before a reduction.
        mode: ``"min"``, ``"max"`` or ``"auto"`` (as in :class:`EarlyStopping`).
        min_delta: The least change that counts as an improvement (its absolute value is used).
        cooldown: Epochs after a reduction that reset the wait.
        min_lr: The rate is never reduced below this.
        verbose: 1 prints each reduction.

    Attributes:
        best: The best monitored value so far (None before the first).
        wait: Epochs counted without improvement.
        cooldown_counter: Cooldown epochs left.

    Raises:
        ValueError: For a ``factor`` outside (0, 1) or an unknown ``mode``. ``fit`` raises one
            before training for ``mode="auto"`` with a monitor whose direction is not known (as
            in :class:`EarlyStopping`), and for an optimizer state that holds no learning rate (see
            :func:`fnn.optimizers.get_learning_rate`: a named optimizer, one built with
            :func:`fnn.optimizers.inject_hyperparams` or ``optax.inject_hyperparams`` holds it).

    Warns:
        RuntimeWarning: At each epoch whose logs lack ``monitor`` (no change is made then).

    Examples:
        >>> import fnn, jax, numpy as np
        >>> net = fnn.mlp([1])
        >>> params = net.init(jax.random.PRNGKey(0), (3,))
        >>> x = np.linspace(-1, 1, 24, dtype=np.float32).reshape(8, 3)
        >>> y = x.sum(axis=1, keepdims=True)
        >>> plateau = fnn.callbacks.ReduceLROnPlateau(monitor="loss", min_delta=100.0, patience=1, factor=0.5)
        >>> h = fnn.fit(net, params, "sgd", "mse", x, y, batch_size=4, epochs=3, verbose=0, callbacks=[plateau]).history
        >>> [round(lr, 6) for lr in h["learning_rate"]]  # a constant rate: the one each epoch ran with
        [0.01, 0.01, 0.005]
        >>> sorted(plateau.get_state())
        ['best', 'cooldown_counter', 'wait']
    """

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
        factor = real("factor", factor, 0.0, 1.0, lo_open=True, hi_open=True)
        patience, cooldown = integer("patience", patience, 0), integer("cooldown", cooldown, 0)
        min_lr = real("min_lr", min_lr, lo=0.0)
        super().__init__(monitor, mode, min_delta)
        self.factor, self.patience = factor, patience
        self.cooldown, self.min_lr, self.verbose = cooldown, min_lr, verbose
        self.on_train_begin(None)

    def on_train_begin(self, ctx: FitContext | None) -> None:
        """Starts afresh: no best value, no wait, no cooldown."""
        self.wait, self.cooldown_counter, self.best = 0, 0, None

    def on_epoch_end(self, epoch: int, logs: dict, ctx: FitContext) -> None:
        """Logs ``learning_rate`` (the first group's) and reduces each group's rate in
        ``ctx.opt_state`` on a plateau."""
        current = monitored(logs, self.monitor, "ReduceLROnPlateau")
        rates = [float(lr) for lr in jax.device_get(optimizers_.get_learning_rates(ctx.opt_state))]  # one transfer
        logs["learning_rate"] = rates[0]
        if current is None:
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self.improved(current, self.best):
            self.best, self.wait = current, 0
        elif self.cooldown_counter <= 0:
            self.wait += 1
            # Keras compares with the float32 min_lr: a rate stored in float32 stops there.
            floor = float(np.float32(self.min_lr))
            if self.wait >= self.patience and any(lr > floor for lr in rates):
                new = [max(lr * self.factor, self.min_lr) if lr > floor else lr for lr in rates]
                ctx.opt_state = optimizers_.set_learning_rates(ctx.opt_state, new)
                if self.verbose:
                    shown = f"rate to {new[0]:.6g}" if len(new) == 1 else f"rates to {[float(f'{v:.6g}') for v in new]}"
                    print(f"Epoch {epoch + 1}: ReduceLROnPlateau reducing learning {shown}.")
                self.cooldown_counter, self.wait = self.cooldown, 0

    def get_state(self) -> dict[str, Any]:
        """``{"wait", "cooldown_counter", "best"}`` (the rate itself lives in the optimizer
        state, which the checkpoint holds)."""
        return {"wait": self.wait, "cooldown_counter": self.cooldown_counter, "best": self.best}

    def set_state(self, state: dict[str, Any]) -> None:
        """Takes back :meth:`get_state`'s dict."""
        self.wait, self.cooldown_counter, self.best = int(state["wait"]), int(state["cooldown_counter"]), state["best"]


def _scheduled_rate(value: Any, epoch: int) -> float:
    """A schedule's result as a rate: a real scalar (Python, NumPy, or a 0-d array of a real
    dtype), finite and >= 0; a bool, a string, None or an array of several is refused, as Keras
    refuses what is not a float."""
    return real(f"LearningRateScheduler: the schedule's learning rate for epoch {epoch}", value, lo=0.0)


def _takes_two_arguments(fn: Callable[..., Any]) -> bool:
    """Whether ``fn`` can be called as ``fn(epoch, lr)`` (True when its signature cannot be read)."""
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return True
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return True
    return sum(p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD) for p in params) >= 2


class LearningRateScheduler(Callback):
    """At each epoch's start sets the learning rate to ``schedule(epoch, lr)`` (Keras's signature).

    ``lr`` is the rate the optimizer state holds (the rate of the next step); the new one is
    written by scaling the state's rate by ``new / lr`` (:func:`fnn.optimizers.scale_learning_rates`:
    a schedule is rescaled as a whole), so nothing recompiles. Returning ``lr`` changes nothing
    (a warmup from 0 keeps warming up). The rate lives in the optimizer state, so a resumed run continues it with no
    state of the callback's own. For a rate that changes every step, give the optimizer a
    schedule (:mod:`fnn.schedules`) instead.

    A state holding several learning rates (parameter groups; see
    :func:`fnn.optimizers.get_learning_rates`): ``lr`` is the first group's, and every group is
    scaled by the same ``new / lr``, so they keep their proportions (a group at 0 stays at 0; a
    schedule giving 0 now is scaled as a whole). Where the first group's ``lr`` is 0 there is no
    ratio: a nonzero rate is then set into every group, as :func:`fnn.optimizers.set_learning_rate`
    does (refused for a schedule giving 0 at this step: a warmup from 0 before its first update).

    The epoch's logs get ``learning_rate`` (the first group's) as Keras 3 logs it: the rate the optimizer state
    holds at the epoch's end (in its dtype), i.e. the rate of the next step. With a constant
    rate that is the rate this callback set and the epoch ran with; with a per-step schedule it
    is the schedule's rate at the next epoch's first step (as :class:`ReduceLROnPlateau` logs).

    Args:
        schedule: ``schedule(epoch, lr) -> new lr``, epoch counted from 0, or ``schedule(epoch)``
            (Keras's older form; a function of one positional argument is called so); the
            result must be a real number (Python's or NumPy's, or a 0-d array of one), finite
            and >= 0.
        verbose: 1 prints each new rate.

    Raises:
        TypeError: For a ``schedule`` that is not callable; at an epoch's start, for a schedule
            that returns something else than a real number (None, a string, a bool, an array of
            several values), as Keras refuses what is not a float.
        ValueError: At an epoch's start, for a schedule that returns a negative or non-finite
            rate. ``fit`` raises one before training for an optimizer state that holds no
            learning rate (as :class:`ReduceLROnPlateau`).

    Examples:
        >>> import fnn, jax, numpy as np
        >>> net = fnn.mlp([1])
        >>> params = net.init(jax.random.PRNGKey(0), (3,))
        >>> x = np.linspace(-1, 1, 24, dtype=np.float32).reshape(8, 3)
        >>> y = x.sum(axis=1, keepdims=True)
        >>> halve = fnn.callbacks.LearningRateScheduler(lambda epoch, lr: 0.1 * 0.5**epoch)
        >>> h = fnn.fit(net, params, "sgd", "mse", x, y, batch_size=4, epochs=3, verbose=0, callbacks=[halve]).history
        >>> [round(lr, 6) for lr in h["learning_rate"]]
        [0.1, 0.05, 0.025]
    """

    def __init__(self, schedule: Callable[[int, float], float] | Callable[[int], float], verbose: int = 0):
        if not callable(schedule):
            raise TypeError(f"LearningRateScheduler: schedule must be callable, got {type(schedule).__name__}")
        self.schedule, self.verbose = schedule, verbose
        self._takes_lr = _takes_two_arguments(schedule)

    def on_epoch_begin(self, epoch: int, ctx: FitContext) -> None:
        """Sets the rate in ``ctx.opt_state`` to ``schedule(epoch, lr)`` (every group's in
        proportion)."""
        held = to_host(optimizers_.get_learning_rate(ctx.opt_state))
        lr = float(held)
        returned = self.schedule(epoch, lr) if self._takes_lr else self.schedule(epoch)  # type: ignore[call-arg]
        new_lr = _scheduled_rate(returned, epoch)
        # the rate already held changes nothing (a warmup from 0 still warms up); compared in the
        # state's dtype, so a float32 state's 0.1 is the 0.1 a schedule returns
        if np.asarray(new_lr, held.dtype) != held:
            # every group scaled by new_lr / lr; from 0, no ratio: every group gets the rate
            ctx.opt_state = set_learning_rate_in_proportion(ctx.opt_state, new_lr)
        if self.verbose:
            print(f"Epoch {epoch + 1}: LearningRateScheduler setting learning rate to {new_lr:.6g}.")

    def on_epoch_end(self, epoch: int, logs: dict, ctx: FitContext) -> None:
        """Logs ``learning_rate``: the rate the optimizer state holds now (the next step's),
        in its dtype, as Keras logs ``float(optimizer.learning_rate)``."""
        logs["learning_rate"] = float(to_host(optimizers_.get_learning_rate(ctx.opt_state)))
