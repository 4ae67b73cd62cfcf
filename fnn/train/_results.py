"""What training returns: :class:`History` (what ``fit`` recorded, epoch by epoch),
:class:`FitResult` (``fit``'s params, optimizer state and history) and :class:`SweepResult`
(``fit_many``'s and ``sweep``'s K models, stacked)."""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any, NamedTuple

import jax
import numpy as np

from fnn._keys import is_typed_key
from fnn._placement import to_host
from fnn._validate import is_traced
from fnn.checkpoint._checks import check_history_fits
from fnn.metrics._registry import direction_of_name


def _plain(value: Any) -> Any:
    """A value a callback logged as a History records it, and a resumed run's history reads it
    back: a 0-d array (a jax or NumPy scalar) as its Python number, a jax array as a NumPy copy
    on the host (a live buffer, a param the next epoch donates, would be deleted under it), a
    tuple as a list, inside lists and dicts too; a PRNG key as it is."""
    if is_typed_key(value):
        return value
    if isinstance(value, (np.ndarray, np.generic, jax.Array)) and np.ndim(value) == 0:
        return value.item()
    if isinstance(value, jax.Array):
        return np.asarray(jax.device_get(value))
    if isinstance(value, np.ndarray):  # a copy: a buffer the callback updates in place would rewrite the past
        return value.copy()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _shown(value: Any) -> Any:
    """A logged value as a History's repr shows it: a real number rounded to 6 places, an array
    by its shape, anything else (a str, None, a bool) as it is."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return round(value, 6)
    if isinstance(value, (np.ndarray, jax.Array)):
        return _Text(f"<array {tuple(value.shape)} {value.dtype}>")
    return value


class _Text(str):
    """Text shown without quotes in a repr."""

    def __repr__(self) -> str:
        return str(self)


def _arrays(tree: Any) -> str:
    """``<n arrays, m values>``: a tree of arrays in a repr (the arrays would fill the screen;
    their count and size say what a reader needs)."""
    leaves = jax.tree.leaves(tree)
    size = sum(int(getattr(a, "size", 1)) for a in leaves)
    return f"<{len(leaves)} arrays, {size:,} values>"


# The keys of History.to_dict's record.
_RECORD_KEYS = frozenset({"history", "epochs", "times", "iterations_per_epoch", "stop_reason", "stopped_epoch"})


class History(dict[str, list[float]]):
    """What ``fit`` recorded, epoch by epoch (Keras's ``History``).

    A History IS the dict of what was logged: it maps each name (``loss``, metrics, ``val_*``,
    and what callbacks log, such as ``learning_rate``) to one value per epoch, so ``h["loss"]``,
    ``h.items()``, ``dict(h)`` and ``json.dumps(h)`` (of numbers, strings and None: arrays a
    callback logged are NumPy's) work as on any dict, and ``h.history`` (the
    Keras spelling) is ``h`` itself. Beside the dict it keeps the run's bookkeeping: ``epochs``
    lists the epoch indices run (counted from 0; a resumed run's history starts with the epochs
    its checkpoint holds).

    Args:
        iterations_per_epoch: The optimizer steps of one epoch, ``ceil(N / batch_size)``.

    Attributes:
        epochs: The epoch indices run, in order (``epoch`` is Keras's name for it).
        iterations_per_epoch: The optimizer steps of one epoch.
        stop_reason: Why training ended: ``"epochs"`` (the epochs ran out), ``"early_stopping"``,
            ``"nan"`` (a non-finite batch loss or update, with
            :class:`fnn.callbacks.TerminateOnNaN`), ``"threshold"`` (:class:`fnn.callbacks.StopAtThreshold`),
            ``"callback <name>"`` (a callable that returned True) or the reason a callback gave
            :meth:`fnn.callbacks.FitContext.stop`. A resumed run whose reason is not
            ``"epochs"`` stays stopped.
        stopped_epoch: The epoch training stopped at (None when the epochs ran out).
        directions: Which way each metric of the run improves (``"up"``, ``"down"``, None for
            one of yours), as :func:`fit_many` and :func:`sweep` record it for
            :meth:`SweepResult.best`; empty where nothing recorded it (``fit``'s).
        times: The seconds each epoch took (on the host, device work included); they add up to
            the training loop's time. Without callbacks or a checkpoint, fit queues each epoch on
            the device before recording the one before, and an epoch's time runs from the
            previous epoch's results reaching the host to its own.

    Examples:
        >>> import fnn
        >>> h = fnn.History(iterations_per_epoch=2)
        >>> h.append(0, {"loss": 0.5, "val_loss": 0.75}, seconds=0.01)
        >>> h.append(1, {"loss": 0.25, "val_loss": 0.5}, seconds=0.01)
        >>> h["loss"], h.epochs, h.epochs_run, "val_loss" in h, isinstance(h, dict)
        ([0.5, 0.25], [0, 1], 2, True, True)
        >>> dict(h) == h.history == {"loss": [0.5, 0.25], "val_loss": [0.75, 0.5]}
        True
        >>> fnn.History.from_dict(h.to_dict())["val_loss"]
        [0.75, 0.5]
    """

    def __init__(self, iterations_per_epoch: int = 0):
        super().__init__()
        self.epochs: list[int] = []
        self.iterations_per_epoch = iterations_per_epoch
        self.stop_reason: str = "epochs"
        self.stopped_epoch: int | None = None
        self.times: list[float] = []
        # Which way each metric of the run improves (fit_many's, from the metrics themselves: a
        # loss given as a metric, a metric of yours named as a built-in one), for SweepResult.best;
        # empty where no run filled it in (then the names tell). Not part of the record.
        self.directions: dict[str, str | None] = {}
        self._last: set[str] = set()  # the names recorded for the last epoch (update_last's)

    @property
    def history(self) -> dict[str, list[float]]:
        """``{name: [value per epoch]}``: the History itself (Keras's ``History.history``)."""
        return self

    @property
    def epoch(self) -> list[int]:
        """Keras's name for :attr:`epochs`."""
        return self.epochs

    @property
    def epochs_run(self) -> int:
        """The number of epochs recorded, ``len(epochs)``."""
        return len(self.epochs)

    def append(self, epoch: int, logs: dict[str, float], seconds: float) -> None:
        """Records one epoch (``fit`` calls it after each epoch).

        Args:
            epoch: The epoch's index.
            logs: ``{name: value}`` of the epoch; each value is appended to ``history[name]``.
            seconds: The time the epoch took.
        """
        self.epochs.append(epoch)
        self.times.append(seconds)
        for k, v in logs.items():
            self.setdefault(k, []).append(_plain(v))
        self._last = set(logs)

    def update_last(self, logs: dict[str, float]) -> None:
        """Entries added to the last epoch's logs after it was appended (by callbacks).

        Args:
            logs: The last epoch's logs: a name already recorded for that epoch is overwritten,
                a new one (``learning_rate``) appended.

        Raises:
            ValueError: For a History that has recorded no epoch yet.
        """
        if not self.epochs:
            raise ValueError("update_last: no epoch recorded yet (append one first)")
        last: set[str] = getattr(self, "_last", set())
        for k, v in logs.items():
            values = self.setdefault(k, [])
            # recorded for the last epoch: by append or an earlier update of it, or (a History
            # read back) a name logged at every epoch
            if k in last or len(values) == len(self.epochs):
                values[-1] = _plain(v)
            else:
                values.append(_plain(v))
                last.add(k)
        self._last = last

    def to_dict(self) -> dict:
        """Everything recorded as a JSON-like dict (what a checkpoint stores).

        Returns:
            ``{"history", "epochs", "times", "iterations_per_epoch", "stop_reason",
            "stopped_epoch"}``.
        """
        return {
            "history": {k: list(v) for k, v in self.items()},
            "epochs": list(self.epochs),  # copies: editing the dict leaves the History as it is
            "times": list(self.times),
            "iterations_per_epoch": self.iterations_per_epoch,
            "stop_reason": self.stop_reason,
            "stopped_epoch": self.stopped_epoch,
            # which way the run's metrics improve (fit_many's, for SweepResult.best), where known
            **({"directions": dict(self.directions)} if self.directions else {}),
        }

    @classmethod
    def from_dict(cls, d: dict) -> History:
        """A History from :meth:`to_dict`'s dict (missing entries take their defaults), from a
        History (a copy, its bookkeeping kept), or from plain logs ``{name: [value per epoch]}``
        (Keras's ``History.history``, or ``json.dumps`` of a History; a dict holding none of
        :meth:`to_dict`'s keys and only lists): its epochs counted from 0 up to its longest list
        (a name logged from a later epoch on keeps its shorter list, as in Keras), their times
        unknown (NaN).

        Args:
            d: The dict, as :meth:`to_dict` wrote it, a History, or the logs alone.

        Returns:
            The History.
        """
        if isinstance(d, History):
            d = {**d.to_dict(), "directions": dict(d.directions)}
        elif d and _RECORD_KEYS.isdisjoint(d) and all(isinstance(v, (list, tuple)) for v in d.values()):
            n = max(len(v) for v in d.values())
            d = {"history": d, "epochs": list(range(n)), "times": [math.nan] * n}
        h = cls(int(d.get("iterations_per_epoch", 0)))
        h.update({k: list(v) for k, v in d.get("history", {}).items()})
        h.epochs = list(d.get("epochs", []))
        h.times = list(d.get("times", []))
        h.stop_reason = d.get("stop_reason", "epochs")
        h.stopped_epoch = d.get("stopped_epoch")
        h.directions = dict(d.get("directions") or {})
        return h

    def __repr__(self) -> str:
        """The epochs run and each name's last value (numbers rounded; what else a callback
        logged, a str or None, as it is)."""
        last = {k: _shown(v[-1]) for k, v in self.items() if v}
        return f"History(epochs_run={self.epochs_run}, iterations_per_epoch={self.iterations_per_epoch}, last={last})"


def resumed_history(saved: Mapping[str, Any] | None, epoch: int, where: str) -> History:
    """The History a resumed run continues, from what its checkpoint stores (``where`` names
    the file in errors): a :meth:`History.to_dict` record (``fit``'s, or a History given to
    :func:`fnn.checkpoint.save`) as it is, or a plain ``{name: [value per epoch]}`` whose ``n``
    values are the last ``n`` epochs before ``epoch`` (numbered as in the uninterrupted run,
    their times unknown: NaN). A record that names an epoch not before ``epoch``, or logs of
    different lengths or longer than ``epoch``, does not belong to that checkpoint: ValueError
    (:func:`fnn.checkpoint.save` refuses them; a file of an older fnn may hold one)."""
    if not saved:
        return History()
    try:
        check_history_fits(saved, epoch)
    except ValueError as err:
        raise ValueError(f"{where}: its {err}") from None
    if isinstance(saved.get("history"), Mapping):
        return History.from_dict(dict(saved))
    n = max(len(v) for v in saved.values())
    h = History()
    h.update({k: list(v) for k, v in saved.items()})
    h.epochs, h.times = list(range(epoch - n, epoch)), [math.nan] * n
    return h


class FitResult(NamedTuple):
    """What :func:`fit` returns: ``params, opt_state, history = fnn.fit(...)``.

    Attributes:
        params: The trained parameters, with the structure of the ``params`` given (fresh
            arrays: the caller's are never donated). With
            ``EarlyStopping(restore_best_weights=True)``, the best epoch's.
        opt_state: The optimizer state after the last update (pass it as ``opt_state`` to
            continue training); its hyperparameters are the run's, ReduceLROnPlateau's
            reductions included.
        history: The :class:`History` of the run.
    """

    params: Any
    opt_state: Any
    history: History

    def __repr__(self) -> str:
        """The number of arrays and values of ``params`` and ``opt_state``, and the history."""
        return (
            f"FitResult(params={_arrays(self.params)}, opt_state={_arrays(self.opt_state)}, history={self.history!r})"
        )


class SweepResult(NamedTuple):
    """What :func:`fit_many` / :func:`sweep` return for K models.

    ``params`` and ``opt_state`` are stacked: every leaf has a leading axis of length K.
    ``histories[i]`` is model i's :class:`fnn.History` (same entries as ``fit``'s);
    ``configs[i]`` the settings that made model i (``seed``, swept hyperparameters).

    Attributes:
        params: The trained parameters of the K models, each leaf ``(K, ...)``.
        opt_state: Their optimizer states, each leaf ``(K, ...)`` (per-model hyperparameters
            included).
        histories: K :class:`fnn.History` objects, model i's at index i.
        configs: K dicts: the grid point of each model (:func:`sweep`: ``{"seed": s,
            "learning_rate": lr, ...}``), or the ``configs`` given to :func:`fit_many` (empty
            dicts by default).

    Examples:
        >>> import fnn
        >>> h0, h1 = fnn.History(), fnn.History()
        >>> h0.append(0, {"loss": 0.5}, seconds=0.0)
        >>> h1.append(0, {"loss": 0.25}, seconds=0.0)
        >>> result = fnn.SweepResult(None, None, [h0, h1], [{"seed": 0}, {"seed": 1}])
        >>> i = result.best()  # the lowest last-epoch loss (no val_loss was recorded)
        >>> i, result.configs[i]
        (1, {'seed': 1})
    """

    params: Any
    opt_state: Any
    histories: list
    configs: list

    def __repr__(self) -> str:
        """The number of models, of arrays and values of ``params`` and ``opt_state`` (all
        models together), the configs and the histories."""
        return (
            f"SweepResult(models={len(self.histories)}, params={_arrays(self.params)}, "
            f"opt_state={_arrays(self.opt_state)}, configs={self.configs!r}, histories={self.histories!r})"
        )

    def result(self, i: int) -> FitResult:
        """Model ``i`` as a ``FitResult``, as ``fit`` would have returned it.

        Args:
            i: The model's index, an int in ``[-K, K)`` (negative counts from the end): a
                Python or NumPy integer, or a 0-d integer array (``jnp.argmin``'s).

        Returns:
            ``FitResult(params, opt_state, history)`` of model ``i``, its arrays sliced off the
            stacked ones.

        Raises:
            IndexError: For an index out of range or not an integer (a bool, a float).
        """
        k = len(self.histories)
        i = _model_index(i)
        if not -k <= i < k:
            raise IndexError(f"model index {i!r} out of range for {k} models")
        params, opt_state = _take_model((self.params, self.opt_state), int(i) % k)
        return FitResult(params, opt_state, self.histories[i])

    def best(self, monitor: str | None = None, mode: str = "auto") -> int:
        """Index of the model with the best last-epoch ``monitor`` (default ``val_loss`` when
        recorded, else ``loss``); non-finite values rank last, and so does a model whose last
        ``loss`` or ``val_loss`` is non-finite (a diverged model's NaN outputs can still score
        a finite accuracy: the share of the class they all fall in).

        Args:
            monitor: A logged name (``"val_accuracy"``...), or None for ``val_loss`` when
                recorded, else ``loss``.
            mode: ``"min"`` (lowest is best), ``"max"`` (highest is best), or ``"auto"``, the
                rule of Keras 3's callbacks: lowest for ``loss`` and ``val_loss``, else the way
                the run's metric of that name improves, as :func:`fit_many` and :func:`sweep`
                record it (a loss given as a metric falls; a metric of your own named
                ``"accuracy"`` has none), else that of the built-in metric of that name
                (highest accuracy, lowest ``mae``...). A name that is no built-in metric's (a metric of
                your own, a logged learning rate) or one without a direction (the confusion
                counts) needs ``"min"`` or ``"max"``.

        Returns:
            The index of the best model (the first one on ties).

        Raises:
            ValueError: For a ``mode`` other than ``"auto"``/``"min"``/``"max"``, a ``monitor``
                that was not recorded (the message lists those that were), or ``mode="auto"``
                with a monitor whose direction is not known.
        """
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
        h0 = self.histories[0]
        monitor = monitor or ("val_loss" if "val_loss" in h0 else "loss")
        if monitor not in h0:
            raise ValueError(f"monitor {monitor!r} was not recorded; recorded: {sorted(h0.keys())}")
        if mode == "auto":
            mode = _auto_mode(monitor, getattr(h0, "directions", {}))

        def lasts(name: str) -> np.ndarray:
            return np.array([h[name][-1] if h.get(name) else np.nan for h in self.histories], float)

        values = [h[monitor][-1] for h in self.histories if h.get(monitor)]
        if any(not isinstance(v, numbers.Real) or isinstance(v, (bool, np.bool_)) for v in values):
            raise ValueError(
                f"monitor {monitor!r} must hold one number per epoch to rank the models by; its last values are "
                f"{sorted({type(v).__name__ for v in values})}"
            )
        last = lasts(monitor)
        usable = np.isfinite(last)
        for name in ("loss", "val_loss"):
            if name in h0:  # a model that diverged is not ranked by what its NaN outputs score
                usable &= np.isfinite(lasts(name))
        last = np.where(usable, last if mode == "min" else -last, np.inf)
        return int(np.argmin(last))


def _model_index(i: Any) -> int:
    """``i`` as an int: a Python or NumPy integer, or a 0-d integer array (NumPy's or jax's, as
    ``jnp.argmin`` gives it), not a bool or a float."""
    dtype = getattr(i, "dtype", None)
    integral = isinstance(i, (int, np.integer)) or (np.ndim(i) == 0 and dtype is not None and dtype.kind in "iu")
    if isinstance(i, (bool, np.bool_)) or not integral or is_traced(i):
        raise IndexError(f"model index must be an int, got {type(i).__name__} {i!r}")
    return int(to_host(i))


def _auto_mode(monitor: str, directions: Mapping[str, str | None]) -> str:
    """``best``'s ``mode="auto"``: "min" for the loss, else the direction of the run's metric of
    that name (``directions``: which way each improves, read off the metrics the run had), else
    the built-in metric's of that name."""
    name = monitor.removeprefix("val_")
    way = "down" if name == "loss" else directions[name] if name in directions else direction_of_name(name)
    if way is None:
        raise ValueError(
            f"best: mode='auto' cannot tell whether monitor {monitor!r} should be maximized or minimized (it is "
            "not the loss, nor a built-in metric with a direction: a metric of yours, or a count); pass "
            "mode='max' for its highest value or mode='min' for its lowest"
        )
    return "max" if way == "up" else "min"


@jax.jit
def _take_leaf(a, i):
    return a[i]


def _take_model(tree, i):
    """Model ``i``'s slice of a stacked tree: one small program per leaf shape and dtype, which
    every optimizer's state shares (a program per tree would compile again for each optimizer
    family; ``a[i]`` eagerly, several per leaf)."""
    i = np.int32(i)
    return jax.tree.map(lambda a: _take_leaf(a, i), tree)
