"""``fit``'s checks, in order, once its arguments are placed (gathered over the processes of a
mesh, or on one device), and what they settle for the run: the optimizer resolved, the params
and optimizer state as native trees, the callbacks, the prepared run (settings, data, compiled
epoch), and the checkpoint it resumes with the history, first epoch and key that come with it.

Every check is made before anything compiles or trains, the optimizer state and the checkpoint
against abstract templates, so a mistake costs no compilation and no epoch; their order is the
order in which ``fit``'s errors are raised."""

from __future__ import annotations

from typing import Any, NamedTuple

import jax

from fnn import callbacks as callbacks_
from fnn._keys import key as check_key, seed_key
from fnn._native import native_tree
from fnn._validate import integer, path as check_path
from fnn.train._callback_checks import (
    check_against_logs,
    check_learning_rate_held,
    check_not_a_best_file,
    replaced_state_check,
    warn_if_learning_rate_unread,
)
from fnn.train._checks import (
    check_held_hyperparams,
    check_opt_state,
    check_opt_update,
    check_params_dtypes,
    check_schedules,
    resolve_opt,
    warn_if_hyperparams_differ,
)
from fnn.train._loop import Prepared, prepare
from fnn.train._results import History
from fnn.train._resume import continued_history, read_checkpoint, resumed_key


class CheckedFit(NamedTuple):
    """What ``fit``'s checks settle: the run may start from these."""

    opt: Any  # the GradientTransformation (a name resolved)
    params: Any  # the given params, native (a resumed checkpoint's replace them once copied)
    opt_state: Any  # the given state, native, or None (``opt.init(params)``)
    cbs: callbacks_.CallbackList
    run: Prepared
    resumed: Any  # the checkpoint read (``read_checkpoint``), or None: a fresh run
    history: History  # empty, or the resumed checkpoint's, continued
    checkpoint: str | None  # the checked path
    initial_epoch: int  # the resumed checkpoint's epochs where one is resumed
    key: jax.Array  # given, else the resumed checkpoint's, else PRNGKey(0)


def check_fit(
    net: Any, params: Any, opt: Any, loss: Any, x: Any, y: Any, *, key: Any, opt_state: Any, callbacks: Any,
    checkpoint: Any, initial_epoch: Any, epochs: Any, **settings: Any,
) -> CheckedFit:  # fmt: skip
    """Checks ``fit``'s placed arguments in order (``settings``: the rest of
    :func:`fnn.train._loop.prepare`'s keywords, ``mesh`` among them), raising the TypeError or
    ValueError ``fit`` documents, and returns what they settle. No epoch is compiled or run."""
    initial_epoch = integer("initial_epoch", initial_epoch, 0)
    if key is not None:
        key = check_key("key", key)
    opt = resolve_opt(opt)
    params, opt_state = native_tree(params, "params"), native_tree(opt_state, "opt_state")
    check_params_dtypes(params)
    cbs = callbacks_.CallbackList(callbacks)
    cbs.check_replaced = replaced_state_check(cbs.has(callbacks_.TerminateOnNaN))
    run = prepare(
        net, params, opt, loss, x, y, epochs=epochs, stop_on_nan=cbs.has(callbacks_.TerminateOnNaN), **settings
    )
    check_against_logs(cbs.items, run.metrics, validation=run.data[3] is not None)
    if opt_state is not None:
        check_opt_state(opt, params, opt_state)
        remedy = "set them with fnn.optimizers.set_hyperparams(opt_state, ...), or pass opt_state=None"
        read = check_held_hyperparams(opt_state, "fit: opt_state")
        warn_if_hyperparams_differ(opt, opt_state, "opt_state", "the state's", remedy, read=read)
    check_opt_update(opt, params)  # a plain pair that breaks the protocol fails here, not in the compiled epoch
    lr_setters = (callbacks_.ReduceLROnPlateau, callbacks_.LearningRateScheduler)
    setters = [f"callbacks[{i}] ({type(cb).__name__})" for i, cb in enumerate(cbs.items) if isinstance(cb, lr_setters)]
    template: Any = None  # the optimizer state, abstract: nothing is compiled for the checks below
    if setters or checkpoint is not None:
        template = jax.eval_shape(opt.init, params) if opt_state is None else opt_state
    if setters:  # a state holding no learning rate fails now, not after the first epoch
        check_learning_rate_held(setters[0], template)
        warn_if_learning_rate_unread(setters[0], opt, params)  # (rprop's: read at the first step only)
    # The checkpoint is read before any work, against abstract templates: a bad file costs nothing.
    resumed, history = None, History(run.iterations_per_epoch)
    if checkpoint is not None:
        # Where it will be written is checked too: a bad path fails now, not after training.
        checkpoint = check_path("checkpoint", checkpoint, writable=True, replaced=True)
        check_not_a_best_file(checkpoint, cbs.items)
        resumed = read_checkpoint(checkpoint, params, template)
        if resumed is not None:
            check_held_hyperparams(resumed.opt_state, f"fit: checkpoint {checkpoint!r}")
            history, initial_epoch = continued_history(resumed, checkpoint, run.iterations_per_epoch, epochs)
            # no key given: the file's; a key or batches other than its are warned of
            runs = int(resumed.epoch) < epochs and history.stop_reason == "epochs"
            key = resumed_key(checkpoint, resumed.key, resumed.extra, key, run.spec, runs)
    # the schedules at the steps this run's updates use: on from the (given or resumed) state's count
    start = resumed.opt_state if resumed is not None else opt_state
    check_schedules(opt, start, max(epochs - initial_epoch, 0) * run.iterations_per_epoch)
    if key is None:
        key = seed_key(0)
    return CheckedFit(opt, params, opt_state, cbs, run, resumed, history, checkpoint, initial_epoch, key)
