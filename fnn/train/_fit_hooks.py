"""What ``fit`` does around each compiled epoch: its hooks for the epoch loops of
``fnn.train._loop`` (the callbacks before and after each epoch, the epoch's inputs, the entry in
the history with its non-finite-loss warning, the progress line, the checkpoints written once the
epoch is whole), over the :class:`fnn.callbacks.FitContext` the callbacks see."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any, NamedTuple

from fnn import callbacks as callbacks_
from fnn._interrupts import interrupts_held
from fnn.train._epoch import epoch_keys
from fnn.train._loop import Prepared, epoch_inputs
from fnn.train._results import History
from fnn.train._resume import SETTINGS, run_settings
from fnn.train._sums import logs


class FitHooks(NamedTuple):
    """A run's context and progress line, and the hooks :func:`fnn.train._loop.run_epochs` (``begin``,
    ``inputs``, ``end``) or :func:`fnn.train._loop.run_epochs_queued` (``inputs``, ``queued_end``) call."""

    ctx: callbacks_.FitContext  # what the callbacks see; it holds the run's params and state between epochs
    progress: callbacks_.Progress  # closed by fit once training ends
    begin: Callable
    inputs: Callable
    end: Callable
    queued_end: Callable
    finish: Callable  # after on_train_end: writes the checkpoints the callbacks asked for there


def fit_hooks(
    net: Any,
    run: Prepared,
    params: Any,
    opt_state: Any,
    *,
    history: History,
    cbs: Any,
    place: Callable,
    key: Any,
    checkpoint: str | None,
    epochs: int,
    initial_epoch: int,
    verbose: int,
) -> FitHooks:
    """The hooks of one ``fit`` run, over a new context holding ``params`` and ``opt_state``:
    ``cbs`` the run's CallbackList, ``place`` what puts a tree where training holds it (replicated
    on a mesh's devices, or as it is), ``checkpoint`` the run's own file (or None). The
    warnings their calls give name fit's caller: ``end`` and ``queued_end`` are called by the epoch
    loops that fit calls, so their stack levels count those frames."""
    ctx = callbacks_.FitContext(
        net=net, params=params, opt_state=opt_state, history=history, epochs=epochs,
        iterations_per_epoch=history.iterations_per_epoch, defer_saves=True,
    )  # fmt: skip
    progress = callbacks_.Progress(verbose, epochs, initial_epoch, history.iterations_per_epoch)
    warned: list[int] = []

    def begin(epoch, params, opt_state):
        ctx.epoch = epoch
        progress.begin(epoch)
        cbs.on_epoch_begin(epoch, ctx)
        # callbacks may have changed hyperparameters held in the state (with a mesh, their new
        # arrays are put back on every device; a no-op otherwise)
        return place((ctx.params, ctx.opt_state))

    draw = epoch_inputs(
        epoch_keys, key, n=run.n, shuffle=run.spec.shuffle, needs_key=net.needs_key, epochs=epochs,
        put=None if run.spec.mesh is None else place,
    )  # fmt: skip

    def inputs(epoch):
        return place(draw(epoch))

    def recorded(epoch, bad, sums, val, seconds, stacklevel):
        """The epoch's logs, appended to the history (``stacklevel``: the warning's, the caller
        of fit)."""
        entries = logs(run.metrics, sums, val)
        if bad:
            history.stop_reason, history.stopped_epoch = "nan", epoch
            ctx.stop_training = True
        elif not warned and not math.isfinite(entries["loss"]):
            warned.append(epoch)
            warnings.warn(
                f"fit: epoch {epoch + 1} loss is {entries['loss']} (non-finite); "
                "add fnn.callbacks.TerminateOnNaN() to stop at the first bad batch",
                RuntimeWarning,
                stacklevel=stacklevel + 1,
            )
        history.append(epoch, entries, seconds)
        return entries

    def queued_end(epoch, bad, sums, val, seconds):
        progress.update(epoch, recorded(epoch, bad, sums, val, seconds, stacklevel=5), seconds)

    def end(epoch, params, opt_state, bad, sums, val, seconds):
        # One piece for Ctrl-C: the epoch is recorded, shown to the callbacks, printed and saved,
        # or (a Ctrl-C before this) none of these; one during it is delivered at its end.
        with interrupts_held():
            ctx.params, ctx.opt_state = params, opt_state
            # The epoch is in the history while the callbacks run (a checkpoint they ask for
            # holds it); what they add to the logs (learning_rate) joins it afterwards.
            entries = recorded(epoch, bad, sums, val, seconds, stacklevel=4)
            cbs.on_epoch_end(epoch, entries, ctx)
            history.update_last(entries)
            if ctx.stop_training and history.stop_reason == "epochs":
                history.stop_reason, history.stopped_epoch = ctx.stop_reason or "callback", epoch
            progress.update(epoch, entries, seconds)
            # Every checkpoint of the epoch is written now, with the whole epoch and the
            # callbacks' state: resuming from any of them continues exactly as the uninterrupted run.
            write([*ctx.pending_saves, *([checkpoint] if checkpoint is not None else [])])
        return ctx.params, ctx.opt_state, ctx.stop_training

    def write(paths, epochs_done=None):
        for path in paths:
            callbacks_.write_checkpoint(path, ctx, cbs, key, epochs_done, **{SETTINGS: run_settings(run.spec)})
        ctx.pending_saves.clear()

    def finish():
        """The saves asked for in on_train_end (no epoch end follows to write them): the run as
        it ends, its params restored by EarlyStopping or replaced by a callback included."""
        if ctx.pending_saves:
            with interrupts_held():
                # the epochs done: the history's (a resumed run's included), else initial_epoch's
                write(list(ctx.pending_saves), history.epochs[-1] + 1 if history.epochs else initial_epoch)

    return FitHooks(ctx, progress, begin, inputs, end, queued_end, finish)
