"""The list ``fit`` drives: the user's callbacks normalised (a plain callable wrapped in a
:class:`LambdaCallback`), each hook checked against fnn's signatures before training, the hooks
called in list order, the callbacks' states saved and given back, and the run's checkpoint
written."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import jax

from fnn import checkpoint as checkpoint_
from fnn._native import native_tree
from fnn.callbacks._base import (
    BATCH_HOOKS,
    PASS_HOOKS,
    Callback,
    FitContext,
    LambdaCallback,
    hook_mismatch,
    refused_hook,
)
from fnn.callbacks._files import CSVLogger, ModelCheckpoint

HOOKS = ("on_train_begin", "on_epoch_begin", "on_epoch_end", "on_train_end")
# The arguments fit passes each hook (after self). Keras's hooks take ``logs=None`` where fnn's
# begin and train-end hooks take ``ctx``, and no ``ctx`` in ``on_epoch_end``.
HOOK_ARGS = {
    "on_train_begin": ("ctx",),
    "on_epoch_begin": ("epoch", "ctx"),
    "on_epoch_end": ("epoch", "logs", "ctx"),
    "on_train_end": ("ctx",),
}


def check_hooks(cb: Any, where: str) -> None:
    """Every hook ``cb`` defines takes what fit passes it, checked before training: a
    Keras-style hook would otherwise fail (or get the ctx as its ``logs``) after an epoch, and
    a per-batch one would never be called."""
    for hook in (*BATCH_HOOKS, *PASS_HOOKS):
        if callable(getattr(cb, hook, None)):
            raise TypeError(
                f"{where}: {type(cb).__name__}.{hook} ({refused_hook(hook)}); fit calls {', '.join(HOOKS)}, "
                "between epochs"
            )
    if isinstance(cb, LambdaCallback):
        shown = hook_mismatch(cb.fn, ("epoch", "logs"))
        if shown is not None:
            name = getattr(cb.fn, "__name__", type(cb.fn).__name__)
            raise TypeError(f"{where}: {name}{shown} cannot be called as fn(epoch, logs), how fit calls a callable")
        return
    for hook, args in HOOK_ARGS.items():
        fn = getattr(cb, hook, None)
        if fn is None or getattr(fn, "__func__", None) is getattr(Callback, hook):
            continue
        shown = hook_mismatch(fn, args)
        if shown is not None:
            expected = ", ".join(f"{h}(self, {', '.join(a)})" for h, a in HOOK_ARGS.items())
            raise TypeError(
                f"{where}: {type(cb).__name__}.{hook}{shown} does not take fnn's arguments: fit calls "
                f"{hook}(self, {', '.join(args)}). Unlike Keras's, fnn's hooks take ctx (the run's FitContext), "
                f"and the begin and train-end hooks no logs: {expected}"
            )


class CallbackList:
    """Normalises user callbacks (objects or plain callables) and calls them in order.

    ``check_replaced`` (fit sets it): called as ``check_replaced(ctx, (params, opt_state), who)``
    after a hook replaced ``ctx.params`` or ``ctx.opt_state`` (the pair: what it held before),
    ``who`` naming the callback and hook; the arrays the hook put there are then copied (fit
    donates the live state to the next epoch, and they are the callback's, perhaps kept by it). A
    hook that replaces nothing costs nothing."""

    check_replaced: Callable[[Any, tuple, str], None] | None = None

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
            check_hooks(self.items[-1], f"callbacks[{i}]")

    def has(self, kind: type) -> bool:
        return any(isinstance(cb, kind) for cb in self.items)

    def _call(self, hook, *args):
        ctx = args[-1]  # every hook takes the run's FitContext last
        for i, cb in enumerate(self.items):
            fn = getattr(cb, hook, None)
            if fn is None:
                continue
            if self.check_replaced is None:
                fn(*args)
                continue
            held = (ctx.params, ctx.opt_state)
            fn(*args)
            if ctx.params is not held[0] or ctx.opt_state is not held[1]:
                # values read back from a big-endian file are the callback's values, not another dtype
                ctx.params, ctx.opt_state = (
                    native_tree(ctx.params, "ctx.params"),
                    native_tree(ctx.opt_state, "ctx.opt_state"),
                )
                self.check_replaced(ctx, held, f"callbacks[{i}] ({type(cb).__name__}).{hook}")
                ctx.params, ctx.opt_state = _owned((ctx.params, ctx.opt_state), held)

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
        for i, cb in enumerate(self.items):
            get = getattr(cb, "get_state", None)
            state = get() if callable(get) else {}
            if not isinstance(state, dict):
                raise TypeError(
                    f"callbacks[{i}] ({type(cb).__name__}).get_state() must return a dict, got {type(state).__name__} "
                    f"{state!r:.60}: return {{'name': value, ...}} and read it back in set_state"
                )
            out.append({"class": type(cb).__name__, "state": state})
        return out

    def set_state(self, saved: Any, where: str) -> None:
        """Gives each callback the state saved for the callback of the same class at the same
        place; a stateful callback with nothing to take back is named in a warning, and so is
        a saved state that no callback takes (:func:`_dropped`)."""
        saved = saved if isinstance(saved, list) else []
        lost, taken = [], set()
        for i, cb in enumerate(self.items):
            put = getattr(cb, "set_state", None)
            entry = saved[i] if i < len(saved) and isinstance(saved[i], dict) else None
            if entry is not None and entry.get("class") == type(cb).__name__:
                taken.add(i)
                if callable(put):
                    state = entry.get("state")
                    put({} if state is None else state)
            elif callable(getattr(cb, "get_state", None)) and cb.get_state():
                lost.append(f"callbacks[{i}] ({type(cb).__name__})")
        if lost:
            warnings.warn(
                f"{where}: no saved state for {', '.join(lost)} (the checkpoint was written with other "
                "callbacks): they start afresh, so the resumed run may differ from an uninterrupted one",
                RuntimeWarning,
                stacklevel=3,
            )
        dropped = _dropped(saved, taken)
        if dropped:
            warnings.warn(
                f"{where}: the checkpoint holds the state of {'; '.join(dropped)}, which no callback of this run "
                "takes (none of that class at that place in callbacks): it is dropped, so the resumed run may "
                "differ from an uninterrupted one; pass the callbacks the checkpoint was written with",
                RuntimeWarning,
                stacklevel=3,
            )


# fnn's callbacks whose state decides only what they write (CSVLogger's columns, ModelCheckpoint's
# best value: which epochs it saves), never training or what fit returns: dropped with the
# callback, their state changes nothing in the resumed run.
_WRITES_ONLY = frozenset(cls.__name__ for cls in (CSVLogger, ModelCheckpoint))


def _owned(tree: Any, held: Any) -> Any:
    """``tree`` (checked to have ``held``'s structure) with a copy of each leaf that is not
    ``held``'s at its place: the live arrays stay as they are, what a callback put there (its own
    average, say) is copied, so donating the state never deletes the callback's. Each copy is a
    transfer on its device(s), not a program: a new learning rate's scalar compiles nothing."""
    leaves, treedef = jax.tree.flatten(tree)
    put = [i for i, (new, old) in enumerate(zip(leaves, jax.tree.leaves(held), strict=True)) if new is not old]
    for i, copy in zip(put, jax.device_put([leaves[i] for i in put], may_alias=False), strict=True):
        leaves[i] = copy
    return jax.tree.unflatten(treedef, leaves)


def _dropped(saved: list, taken: set[int]) -> list[str]:
    """The saved callbacks' states that no callback took (``taken``: their places) and that could
    change training or its result (not a logger's: :data:`_WRITES_ONLY`), each as its place,
    class and what it held: its values that are set (an EarlyStopping's ``best_weights`` among
    them, which that run would have restored)."""
    out = []
    for i, entry in enumerate(saved):
        state = entry.get("state") if isinstance(entry, dict) else None
        held = [k for k, v in state.items() if v is not None] if isinstance(state, dict) else []
        if i not in taken and held and entry.get("class") not in _WRITES_ONLY:
            out.append(f"callbacks[{i}] ({entry.get('class')}: {', '.join(map(str, held))})")
    return out


def write_checkpoint(
    path: str, ctx: FitContext, callbacks: CallbackList, key: Any = None, epochs_done: int | None = None, **extra: Any
) -> None:
    """The one way a run's checkpoint is written (fit's own and ModelCheckpoint's), of
    ``epochs_done`` epochs (None: the context's epoch and those before); ``extra``:
    :func:`fnn.checkpoint.save`'s (fit records its run's settings there)."""
    checkpoint_.save(
        path, params=ctx.params, opt_state=ctx.opt_state, epoch=ctx.epoch + 1 if epochs_done is None else epochs_done,
        key=key,
        history=ctx.history.to_dict(), callbacks=callbacks.get_state(), **extra,
    )  # fmt: skip
