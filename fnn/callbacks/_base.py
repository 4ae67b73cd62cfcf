"""The callback protocol: the context callbacks see, the base class, :class:`LambdaCallback`
(a function as a callback), and how a hook's signature fails to take its arguments."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from fnn import checkpoint as checkpoint_
from fnn._executables import call as call_through_store
from fnn._keys import is_typed_key


@jax.jit
def copy_tree(tree: Any) -> Any:
    """A fresh buffer for every leaf, in one compiled call (leaf by leaf, each shape would
    compile and dispatch a program of its own)."""
    return jax.tree.map(jnp.copy, tree)


@dataclass
class FitContext:
    """The training state callbacks see (and may change) between epochs.

    ``fit`` builds one per run and passes it to every hook. A callback may replace ``params``
    or ``opt_state`` (``on_epoch_begin``: the next epoch trains from them; ``on_train_end``:
    ``fit`` returns them), e.g. set the learning rate with
    :func:`fnn.optimizers.set_learning_rate`. What a hook puts there is checked as ``fit``
    checks what it is given (floating params, and params and a state of the structure, shapes
    and dtypes of those they replace; finite params with :class:`TerminateOnNaN`), the error
    naming the callback and hook. The arrays of ``params`` and ``opt_state`` are
    donated to the next epoch: keep a copy with :meth:`snapshot`, never the arrays themselves.
    What a hook puts there stays its own: ``fit`` trains on a copy of the arrays it put (a
    stochastic weight average kept by the callback and set as ``ctx.params`` stays readable).

    Attributes:
        net: The network being trained.
        params: The current parameters (after the epoch, in ``on_epoch_end``).
        opt_state: The current optimizer state (its ``hparams`` hold the learning rate...).
        history: The run's :class:`fnn.History`; in ``on_epoch_end`` it already holds the
            epoch.
        epochs: The ``epochs`` ``fit`` was given (training stops before this epoch).
        iterations_per_epoch: The optimizer steps of one epoch.
        epoch: The current epoch, counted from 0.
        stop_training: Set (by :meth:`stop`) to end training after this epoch's callbacks.
        stop_reason: Why, recorded as ``history.stop_reason`` (the first reason given wins).
        defer_saves: Set by ``fit``: :meth:`save` then waits for the end of the epoch.
        pending_saves: The paths :meth:`save` was asked for this epoch (written by ``fit``).
    """

    net: Any
    params: Any
    opt_state: Any
    history: Any
    epochs: int
    iterations_per_epoch: int
    epoch: int = 0
    stop_training: bool = False
    stop_reason: str | None = None
    # fit sets this: checkpoints asked for during an epoch's callbacks are then written once
    # every callback has run, so that each holds the whole epoch (history, callbacks' state).
    defer_saves: bool = False
    pending_saves: list[str] = field(default_factory=list)

    def stop(self, reason: str) -> None:
        """Ends training after the current epoch's callbacks (Keras's
        ``model.stop_training = True``).

        Args:
            reason: Recorded as ``history.stop_reason`` unless another callback gave one first
                (``"early_stopping"``, ``"nan"``, ``"threshold"``... or your own).
        """
        self.stop_training = True
        self.stop_reason = self.stop_reason or reason

    def snapshot(self, tree: Any) -> Any:
        """A copy with fresh buffers: fit donates the live params to the next epoch.

        Args:
            tree: A pytree of arrays (``ctx.params``, ``ctx.opt_state``).

        Returns:
            The same tree with every leaf copied.
        """
        # fit's own copy program (a function of the leaves' shapes alone): an open executable
        # store (the CLI) keeps it once for every namespace, so a warm run does not trace it
        return call_through_store(copy_tree, "copy", (), tree, shared=True)

    def save(self, path: str, epoch: int) -> None:
        """A checkpoint of the run after ``epoch`` at ``path``. Under ``fit`` it is resumable
        (params, optimizer state, epoch, key, history and callbacks' state) and written at the
        end of the epoch, after every callback has run (asked for in ``on_train_end``: once every
        callback's ``on_train_end`` has run, of the run as it ends); otherwise now, without the
        key and the callbacks' state.

        Args:
            path: The file to write (atomically; its folders are created).
            epoch: The epoch just finished, counted from 0 (the file records ``epoch + 1``
                epochs done).
        """
        if self.defer_saves:
            self.pending_saves.append(path)
            return
        history = self.history.to_dict() if hasattr(self.history, "to_dict") else self.history
        checkpoint_.save(path, params=self.params, opt_state=self.opt_state, epoch=epoch + 1, history=history)


class Callback:
    """Base class with no-op hooks; subclass and override what you need.

    A callback that keeps state across epochs returns it from ``get_state`` (a dict of numbers,
    strings, None, lists, dicts and arrays) and takes it back in ``set_state``: ``fit`` saves it
    in its checkpoint and restores it (after ``on_train_begin``) when it resumes, so a resumed
    run continues exactly where the interrupted one stopped.

    ``fit`` calls the hooks of its callbacks in list order: ``on_train_begin`` once, then for
    each epoch ``on_epoch_begin`` and ``on_epoch_end``, then ``on_train_end`` (also when no
    epoch runs, e.g. a resumed run that had finished). Unlike Keras's, the hooks take ``ctx``
    (the run's :class:`FitContext`), and only ``on_epoch_end`` takes ``logs``: ``fit`` checks
    each hook you override against these signatures before training (a TypeError names a
    Keras-style ``on_epoch_end(self, epoch, logs=None)``). fnn's epochs are compiled programs,
    so a Keras per-batch hook (``on_train_batch_end``, ``on_batch_begin``...) is refused there
    too, rather than never called. The checkpoint matches each saved state
    to the callback of the same class at the same position in the list; a stateful callback
    with no saved state starts afresh, with a RuntimeWarning, and a saved state no callback
    takes is dropped, with a RuntimeWarning where it could change training (not a CSVLogger's
    or a ModelCheckpoint's).

    A Ctrl-C during ``on_epoch_end`` (or that epoch's checkpoint writes) is held until the
    epoch's end is complete and then ends the run, without ``on_train_end``; a second Ctrl-C
    goes through at once. An interrupted ``fit`` returns nothing: its checkpoints (``fit``'s
    ``checkpoint=`` or a :class:`ModelCheckpoint`) keep the work, and ``fit`` with the same
    arguments and ``checkpoint=`` resumes from them.

    Examples:
        A callback with state, resumed with its run:

        >>> import fnn, jax, numpy as np, os, tempfile
        >>> class CountEpochs(fnn.callbacks.Callback):
        ...     def __init__(self):
        ...         self.seen = 0
        ...     def on_epoch_end(self, epoch, logs, ctx):
        ...         self.seen += 1
        ...     def get_state(self):
        ...         return {"seen": self.seen}
        ...     def set_state(self, state):
        ...         self.seen = state["seen"]
        >>> net = fnn.mlp([1])
        >>> params = net.init(jax.random.PRNGKey(0), (3,))
        >>> x = np.linspace(-1, 1, 24, dtype=np.float32).reshape(8, 3)
        >>> y = x.sum(axis=1, keepdims=True)
        >>> tmp = tempfile.TemporaryDirectory()
        >>> path = os.path.join(tmp.name, "run.npz")
        >>> run = dict(batch_size=4, verbose=0, checkpoint=path)
        >>> _ = fnn.fit(net, params, "sgd", "mse", x, y, epochs=1, callbacks=[CountEpochs()], **run)
        >>> counter = CountEpochs()
        >>> _ = fnn.fit(net, params, "sgd", "mse", x, y, epochs=3, callbacks=[counter], **run)
        >>> counter.seen  # 1 epoch restored from the checkpoint, 2 run now
        3
        >>> tmp.cleanup()
    """

    def on_train_begin(self, ctx: FitContext) -> None:
        """Called once, before the first epoch (and before a resumed state is restored).

        Args:
            ctx: The run's :class:`FitContext`.
        """

    def on_epoch_begin(self, epoch: int, ctx: FitContext) -> None:
        """Called before each epoch; ``ctx.params``/``ctx.opt_state`` set here are trained.

        Args:
            epoch: The epoch about to run, counted from 0.
            ctx: The run's :class:`FitContext`.
        """

    def on_epoch_end(self, epoch: int, logs: dict, ctx: FitContext) -> None:
        """Called after each epoch, with its logs; ``ctx.stop(reason)`` ends training.

        Args:
            epoch: The epoch just run, counted from 0.
            logs: ``{"loss": ..., <metric>: ..., "val_loss": ...}`` of the epoch, Python floats.
                Entries a callback adds (``learning_rate``) join the history and the logs the
                later callbacks see.
            ctx: The run's :class:`FitContext` (``ctx.params``: the weights after the epoch).
        """

    def on_train_end(self, ctx: FitContext) -> None:
        """Called once, after the last epoch; ``ctx.params`` set here is what ``fit`` returns.

        Args:
            ctx: The run's :class:`FitContext`.
        """

    def get_state(self) -> dict[str, Any]:
        """The state to save with a checkpoint (default: none).

        Returns:
            A dict of numbers, strings, None, lists, dicts (with string keys) and arrays;
            empty for a stateless callback. Anything else makes the checkpoint's write fail
            with a TypeError.
        """
        return {}

    def set_state(self, state: dict[str, Any]) -> None:
        """Takes back what ``get_state`` returned (default: nothing to restore).

        Args:
            state: The dict ``get_state`` returned when the checkpoint was written, read back
                from the file: arrays come back as jax arrays of the same shape and dtype
                (a 64-bit one without ``jax_enable_x64`` as a NumPy array: jax would narrow
                it to 32 bits), tuples as lists, 0-d arrays as Python numbers.
        """


class LambdaCallback(Callback):
    """Wraps ``fn(epoch, logs)``; a truthy return value stops training. Or Keras's form: hooks
    given by keyword, their return values ignored.

    ``fit`` wraps a plain callable in its ``callbacks`` list in one. Training then stops with
    ``history.stop_reason == "callback <fn's name>"``. Each function gets a copy of the logs;
    the new names it adds there (``logs["custom"] = 1.5``: a number, a string, None, an array,
    a list) are recorded in the History, as Keras's LambdaCallback records them. What it changes or
    deletes of the epoch's own entries changes nothing: the callbacks after it and the History
    see fit's values. The callbacks after one with a function for the epoch's end may monitor
    the names it adds, or name them in a ModelCheckpoint's ``filepath``.

    Keras's keywords take Keras's signatures: ``on_epoch_begin(epoch, logs)``,
    ``on_epoch_end(epoch, logs)``, ``on_train_begin(logs)`` and ``on_train_end(logs)`` (the
    last epoch's logs; ``{}`` at the begin hooks). fnn's epochs are compiled programs, so the
    per-batch hooks (``on_batch_end``, ``on_train_batch_begin``...) are refused.

    Args:
        fn: ``fn(epoch, logs) -> stop``, called at each epoch's end (epoch counted from 0), or
            None when the hooks are given by keyword.
        **hooks: Keras's ``on_epoch_begin``, ``on_epoch_end``, ``on_train_begin``,
            ``on_train_end``.

    Raises:
        TypeError: For no function at all, an unknown or per-batch hook, or a function that
            cannot take its hook's arguments.

    Examples:
        >>> import fnn, jax, numpy as np
        >>> net = fnn.mlp([1])
        >>> params = net.init(jax.random.PRNGKey(0), (3,))
        >>> x = np.linspace(-1, 1, 24, dtype=np.float32).reshape(8, 3)
        >>> y = x.sum(axis=1, keepdims=True)
        >>> def second_epoch(epoch, logs):
        ...     return epoch == 1
        >>> cb = fnn.callbacks.LambdaCallback(second_epoch)
        >>> h = fnn.fit(net, params, "sgd", "mse", x, y, batch_size=4, epochs=5, verbose=0, callbacks=[cb]).history
        >>> h.epochs, h.stop_reason
        ([0, 1], 'callback second_epoch')
        >>> seen = []
        >>> keras_style = fnn.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: seen.append(epoch))
        >>> _ = fnn.fit(net, params, "sgd", "mse", x, y, batch_size=4, epochs=2, verbose=0, callbacks=[keras_style])
        >>> seen
        [0, 1]
    """

    def __init__(self, fn: Callable[[int, dict], Any] | None = None, **hooks: Callable[..., Any]):
        for name in hooks:
            if name not in _KERAS_HOOK_ARGS:
                why = refused_hook(name) or "unknown hook"
                raise TypeError(f"LambdaCallback got {name}= ({why}); it takes {', '.join(_KERAS_HOOK_ARGS)}")
        self.fn = fn  # its signature: fit's callback check names it with its place in the list
        self.hooks = {k: v for k, v in hooks.items() if v is not None}
        if fn is None and not self.hooks:
            raise TypeError("LambdaCallback needs fn(epoch, logs) or a hook by keyword (on_epoch_end=...)")
        for name, hook in self.hooks.items():
            args = _KERAS_HOOK_ARGS[name]
            shown = hook_mismatch(hook, args) if callable(hook) else repr(hook)
            if shown is not None:
                raise TypeError(f"LambdaCallback {name} must take ({', '.join(args)}), got {shown}")
        self._last: dict = {}

    def on_train_begin(self, ctx: FitContext) -> None:
        """Calls Keras's ``on_train_begin({})``."""
        self._last = {}
        if "on_train_begin" in self.hooks:
            self.hooks["on_train_begin"]({})

    def on_epoch_begin(self, epoch: int, ctx: FitContext) -> None:
        """Calls Keras's ``on_epoch_begin(epoch, {})``."""
        if "on_epoch_begin" in self.hooks:
            self.hooks["on_epoch_begin"](epoch, {})

    def on_epoch_end(self, epoch: int, logs: dict, ctx: FitContext) -> None:
        """Calls ``fn(epoch, logs)`` and stops training if it returns a truthy value; then
        Keras's ``on_epoch_end(epoch, logs)``."""
        if self.fn is not None and _on_a_copy(self.fn, epoch, logs):
            ctx.stop(f"callback {getattr(self.fn, '__name__', 'fn')}")
        if "on_epoch_end" in self.hooks:
            _on_a_copy(self.hooks["on_epoch_end"], epoch, logs)
        self._last = dict(logs)

    def on_train_end(self, ctx: FitContext) -> None:
        """Calls Keras's ``on_train_end(logs)`` with the last epoch's logs (a resumed run that
        trains no epoch: the checkpoint's last)."""
        if "on_train_end" in self.hooks:
            last = self._last or {k: v[-1] for k, v in ctx.history.history.items() if v}
            self.hooks["on_train_end"](dict(last))


def _on_a_copy(fn: Callable[[int, dict], Any], epoch: int, logs: dict) -> Any:
    """``fn(epoch, copy of logs)``'s result; the names it added to its copy join ``logs``, as a
    callback's own additions do (the History records them as it records any: a 0-d array as its
    number, an array on the host)."""
    mine = dict(logs)
    out = fn(epoch, mine)
    for name, value in mine.items():
        if name in logs:
            continue
        if hasattr(value, "shape") and hasattr(value, "dtype") and tuple(value.shape) == () and not is_typed_key(value):
            value = np.asarray(jax.device_get(value)).item()  # the later callbacks see the number the History holds
        logs[name] = value
    return out


# Keras's per-batch hooks, refused by name (LambdaCallback's keywords, a subclass's methods):
# fit would never call them, and a callback silently never running is worse than an error.
BATCH_HOOKS = tuple(f"on_{run}batch_{when}" for run in ("", "train_", "test_", "predict_") for when in ("begin", "end"))
NO_BATCH_HOOKS = "fnn's epochs are compiled programs: there are no per-batch hooks"
# Keras's hooks around evaluate's and predict's loops (fit's validation pass calls on_test_*):
# fit's validation runs inside the compiled epoch, so they would never be called either.
PASS_HOOKS = tuple(f"on_{run}_{when}" for run in ("test", "predict") for when in ("begin", "end"))
NO_PASS_HOOKS = "fit's validation pass runs inside the compiled epoch: read its val_* entries in on_epoch_end's logs"


def refused_hook(name: str) -> str | None:
    """Why fit refuses a Keras hook named ``name`` (it would never call it), or None."""
    return NO_BATCH_HOOKS if name in BATCH_HOOKS else NO_PASS_HOOKS if name in PASS_HOOKS else None


# Keras's LambdaCallback hooks fnn runs, and the arguments each takes.
_KERAS_HOOK_ARGS = {
    "on_epoch_begin": ("epoch", "logs"),
    "on_epoch_end": ("epoch", "logs"),
    "on_train_begin": ("logs",),
    "on_train_end": ("logs",),
}


def hook_mismatch(fn: Any, args: tuple[str, ...]) -> str | None:
    """How ``fn``'s signature fails to take ``args`` positionally (None when it takes them, or
    cannot be read: the call then says for itself). A parameter named ``logs`` that would
    receive another argument (Keras's ``logs=None`` getting fnn's ``ctx``) does not take them."""
    try:  # a decorator's wrapper is what fit calls, not the function it wraps
        signature = inspect.signature(fn, follow_wrapped=False)
    except (TypeError, ValueError):
        return None
    shown = str(signature)
    if inspect.ismethod(fn):
        shown = "(self" + (", " if shown != "()" else "") + shown[1:]
    try:
        bound = signature.bind(*args)  # each argument stands for itself: its name
    except TypeError:
        return shown
    single = {n for n, q in signature.parameters.items() if q.kind not in (q.VAR_POSITIONAL, q.VAR_KEYWORD)}
    wrong = [value for name, value in bound.arguments.items() if name == "logs" and name in single and value != "logs"]
    return f"{shown}, whose logs would receive {wrong[0]}," if wrong else None
