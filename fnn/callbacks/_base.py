"""The callback protocol: the context callbacks see, the base class, and the list ``fit`` drives."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import jax
import jax.numpy as jnp

from fnn import checkpoint as checkpoint_


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
    # fit sets this: checkpoints asked for during an epoch's callbacks are then written once
    # every callback has run, so that each holds the whole epoch (history, callbacks' state).
    defer_saves: bool = False
    pending_saves: list[str] = field(default_factory=list)

    def stop(self, reason: str) -> None:
        self.stop_training = True
        self.stop_reason = self.stop_reason or reason

    def snapshot(self, tree: Any) -> Any:
        """A copy with fresh buffers: fit donates the live params to the next epoch."""
        return jax.tree.map(lambda a: jnp.array(a, copy=True), tree)

    def save(self, path: str, epoch: int) -> None:
        """A checkpoint of the run after ``epoch`` at ``path``. Under ``fit`` it is resumable
        (params, optimizer state, epoch, key, history and callbacks' state) and written at the
        end of the epoch, after every callback has run; otherwise now, without the key and the
        callbacks' state."""
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
    """

    def on_train_begin(self, ctx: FitContext) -> None: ...

    def on_epoch_begin(self, epoch: int, ctx: FitContext) -> None: ...

    def on_epoch_end(self, epoch: int, logs: dict, ctx: FitContext) -> None: ...

    def on_train_end(self, ctx: FitContext) -> None: ...

    def get_state(self) -> dict[str, Any]:
        """The state to save with a checkpoint (default: none)."""
        return {}

    def set_state(self, state: dict[str, Any]) -> None:
        """Takes back what ``get_state`` returned (default: nothing to restore)."""


class LambdaCallback(Callback):
    """Wraps ``fn(epoch, logs)``; a truthy return value stops training."""

    def __init__(self, fn: Callable[[int, dict], Any]):
        self.fn = fn

    def on_epoch_end(self, epoch: int, logs: dict, ctx: FitContext) -> None:
        if self.fn(epoch, dict(logs)):
            ctx.stop(f"callback {getattr(self.fn, '__name__', 'fn')}")


HOOKS = ("on_train_begin", "on_epoch_begin", "on_epoch_end", "on_train_end")


class CallbackList:
    """Normalises user callbacks (objects or plain callables) and calls them in order."""

    def __init__(self, callbacks: Sequence | None):
        if callbacks is None:
            callbacks = ()
        if isinstance(callbacks, (Callback,)) or (callable(callbacks) and not isinstance(callbacks, (list, tuple))):
            callbacks = (callbacks,)
        self.items = []
        for i, cb in enumerate(callbacks):
            if isinstance(cb, type):
                raise TypeError(
                    f"callbacks[{i}] is the class {cb.__name__}, not a callback: pass an instance, {cb.__name__}(...)"
                )
            if any(hasattr(cb, h) for h in HOOKS):
                self.items.append(cb)
            elif callable(cb):
                self.items.append(LambdaCallback(cb))
            else:
                raise TypeError(
                    f"callbacks[{i}] must be a Callback or a callable fn(epoch, logs), got {type(cb).__name__}"
                )

    def has(self, kind: type) -> bool:
        return any(isinstance(cb, kind) for cb in self.items)

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

    def get_state(self) -> list[dict[str, Any]]:
        """Each callback's class name and state, in order (what a checkpoint stores)."""
        out = []
        for cb in self.items:
            get = getattr(cb, "get_state", None)
            out.append({"class": type(cb).__name__, "state": get() if callable(get) else {}})
        return out

    def set_state(self, saved: Any, where: str) -> None:
        """Gives each callback the state saved for the callback of the same class at the same
        place; a stateful callback with nothing to take back is named in a warning."""
        saved = saved if isinstance(saved, list) else []
        lost = []
        for i, cb in enumerate(self.items):
            put = getattr(cb, "set_state", None)
            entry = saved[i] if i < len(saved) and isinstance(saved[i], dict) else None
            if entry is not None and entry.get("class") == type(cb).__name__:
                if callable(put):
                    put(entry.get("state") or {})
            elif callable(getattr(cb, "get_state", None)) and cb.get_state():
                lost.append(f"callbacks[{i}] ({type(cb).__name__})")
        if lost:
            import warnings

            warnings.warn(
                f"{where}: no saved state for {', '.join(lost)} (the checkpoint was written with other "
                "callbacks): they start afresh, so the resumed run may differ from an uninterrupted one",
                RuntimeWarning,
                stacklevel=3,
            )


def write_checkpoint(path: str, ctx: FitContext, callbacks: CallbackList, key: Any = None) -> None:
    """The one way a run's checkpoint is written (fit's own and ModelCheckpoint's)."""
    checkpoint_.save(
        path, params=ctx.params, opt_state=ctx.opt_state, epoch=ctx.epoch + 1, key=key,
        history=ctx.history.to_dict(), callbacks=callbacks.get_state(),
    )  # fmt: skip
