"""``fnn train``: one network with a progress bar, then the final epoch, the best one (with early
stopping) and the test metrics; ``--save`` / ``--resume`` checkpoints that continue a run exactly.

A checkpoint of ``fnn train`` is one of :func:`fnn.fit`'s own (the last finished epoch's params
and optimizer state, the epochs done, the PRNG key, the history and the callbacks' state in the
layout ``fit`` writes, so ``fit(checkpoint=path, callbacks=[EarlyStopping(...)])`` continues it
too) plus the run's settings and its target ``epochs`` as ``extra`` entries. ``--resume`` takes
each saved setting the command line does not give, and compares those it gives (a differing one
is refused), so ``fnn train --resume PATH`` alone continues the run it was saved from, and
saves it back to PATH (``--save`` names another file). It is written once, after the last epoch
(before the test pass, so that a test pass that fails loses no epoch) or after Ctrl-C, from a
copy of the last finished epoch kept in memory (no file per epoch). Resuming
gives EarlyStopping back its wait, best value and best weights, after its ``on_train_begin`` as
``fit`` does, and a run that had stopped stays stopped: the resumed run is the uninterrupted one.
What the checkpoint records of the run, and how ``--resume`` reads, takes and checks it, is in
``_resume.py``; this module runs the training, stops it half-way and writes the checkpoint.
"""

from __future__ import annotations

import math
import shlex
import sys
import time
from typing import Any

import jax
import numpy as np

from fnn import callbacks as _callbacks, checkpoint as _checkpoint, optimizers as _optimizers
from fnn._executables import using
from fnn._interrupts import interrupts_held
from fnn.cli._common import (
    EXIT_BROKEN_PIPE,
    UsageError,
    interrupted,
    log_line,
    nonfinite_loss_unwarned,
    number,
    output_path,
    silence_broken_streams,
    stopped,
)
from fnn.cli._compile_cache import executable_store
from fnn.cli._problem import describe_net, initial_params, load_problem, network, split_problem
from fnn.cli._resume import (
    check_resume,
    merge_histories,
    read_resume,
    resume_error,
    take_saved,
    train_settings,
    write_back_path,
)
from fnn.train import History, evaluate, fit
from fnn.train._results import resumed_history


class _LastEpoch(_callbacks.Callback):
    """Goes last in the callbacks. Keeps what a fit has finished, also when it is interrupted:
    the last epoch's index and logs and, with ``keep``, its params and optimizer state (fresh
    buffers: fit donates its own to the next epoch) with the state of the callbacks before it,
    all taken at the same epoch's end. Given ``restore`` (a checkpoint's callbacks' state), it
    hands those callbacks their state back once their ``on_train_begin`` has reset them, as
    ``fit`` does when it resumes a checkpoint of its own."""

    def __init__(self, keep: bool, others: list, restore: Any = None, where: str = ""):
        self.keep, self.others = keep, _callbacks.CallbackList(others)
        self.restore, self.where = restore, where
        self.history: Any = None
        self.current: int | None = None
        # (epoch, (params, opt_state, callbacks' state) or None, logs, seconds)
        self.last: tuple[int, Any, dict, float] | None = None
        self._t0 = 0.0

    def on_train_begin(self, ctx) -> None:
        self.history = ctx.history
        if self.restore is not None:
            self.others.set_state(self.restore, self.where)

    def on_epoch_begin(self, epoch: int, ctx) -> None:
        self.current, self._t0 = epoch, time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict, ctx) -> None:
        seconds = time.perf_counter() - self._t0
        kept = (*ctx.snapshot((ctx.params, ctx.opt_state)), self.others.get_state()) if self.keep else None
        self.last = (epoch, kept, dict(logs), seconds)  # one assignment: never half-updated

    def finished(self) -> History:
        """The history up to the last finished epoch (fit appends an epoch's entry after the
        callbacks: an interrupt can fall in between)."""
        assert self.last is not None
        epoch, _, logs, seconds = self.last
        h = self.history if self.history is not None else History()
        out = History(h.iterations_per_epoch)
        for i, e in enumerate(h.epochs):
            if e <= epoch:
                out.append(e, {k: v[i] for k, v in h.history.items() if i < len(v)}, h.times[i])
        if epoch not in out.epochs:
            out.append(epoch, logs, seconds)
        if h.stopped_epoch is not None and h.stopped_epoch <= epoch:
            out.stop_reason, out.stopped_epoch = h.stop_reason, h.stopped_epoch
        return out


def _values(logs: dict[str, float]) -> str:
    return ", ".join(f"{k} {number(v)}" for k, v in logs.items())


def cmd_train(args) -> int:
    """``fnn train``: returns the exit status (0, or 130 / 143 / 141 when stopped half-way by
    Ctrl-C, SIGTERM or a closed pipe)."""
    if args.save is not None:  # "" too: a --save "$UNSET" must not lose the checkpoint quietly
        args.save = output_path("--save", args.save, replaced=True)
    if args.resume == "":
        raise UsageError("--resume must be a non-empty path (the checkpoint to continue)")
    saved_run = read_resume(args.resume) if args.resume else None
    if saved_run is not None:
        take_saved(args, args.resume, saved_run)
    settings = train_settings(args)
    if saved_run is not None:
        # before the data set is loaded and the settings checked against each other: a flag
        # given with another value than the saved one is what the user is told, not what that
        # value breaks further on (the saved loss on another data set, early stopping without
        # a validation split); and before anything is compiled
        check_resume(args.resume, saved_run, settings)
    # --resume without --save keeps checkpointing the run where it came from: checked now, so
    # that a checkpoint that cannot be written back is refused before anything is trained
    write_back = saved_run is not None and args.save is None
    if write_back:
        args.save = write_back_path(args.resume)
    problem = load_problem(args.dataset, args.loss, args.path)
    if args.early_stopping is not None and args.validation_split == 0:
        raise UsageError("--early-stopping watches the validation loss: give --validation-split > 0")
    lr = settings["learning_rate"]
    (x_tr, y_tr), val = split_problem(problem, args.validation_split)
    net = network(problem, args.hidden, args.activation)
    opt = _optimizers.get(args.optimizer, learning_rate=lr)
    store = executable_store(args)  # a warm run loads its programs instead of tracing them
    with using(store):  # init with split(PRNGKey(seed))[0], shuffle with [1]
        stacked, keys = jax.device_get(initial_params(net, x_tr.shape[1], [args.seed]))
    params, key = jax.device_put((jax.tree.map(lambda a: a[0], stacked), keys[0]))
    opt_state, initial_epoch, old_history, restore = None, 0, History(), None
    resumed = None  # (params, opt_state, callbacks' state, epochs): kept when no epoch runs now
    if args.resume:
        try:
            ckpt = _checkpoint.load(args.resume, params=params, opt_state=jax.eval_shape(opt.init, params))
            old_history = resumed_history(ckpt.history, ckpt.epoch, args.resume)
        except (OSError, ValueError) as err:
            raise resume_error(err) from None
        if not all(bool(np.all(np.isfinite(leaf))) for leaf in jax.tree.leaves(jax.device_get(ckpt.params))):
            raise UsageError(
                f"--resume {args.resume}: its params hold NaN or inf (the run it saved had diverged), from which "
                "no epoch can train: resume an earlier checkpoint, or train anew (a smaller --lr may train)"
            )
        params, opt_state, initial_epoch, key = ckpt.params, ckpt.opt_state, ckpt.epoch, ckpt.key
        restore = ckpt.callbacks if ckpt.callbacks is not None else []  # older files: none
        resumed = (ckpt.params, ckpt.opt_state, ckpt.callbacks, ckpt.epoch)
        print(f"resumed from {args.resume} at epoch {initial_epoch}", flush=True)
        if old_history.stop_reason != "epochs":
            # A run that had stopped (early stopping) stays stopped, as fit's own resume does.
            print(f"it had stopped ({old_history.stop_reason.replace('_', ' ')}): no epoch to run", flush=True)
            initial_epoch = max(initial_epoch, args.epochs)
    batch = x_tr.shape[0] if args.batch_size is None else args.batch_size
    net_text = describe_net(x_tr.shape[1], args.hidden, problem.output_size, args.activation, problem.output_activation)
    print(
        f"fnn train: {problem.name}, network {net_text}, "
        f"{args.optimizer}(lr={lr:g}), batch {batch} ({math.ceil(len(x_tr) / batch)} it/epoch), "
        f"loss {problem.loss.name}",
        flush=True,
    )
    stopper = (
        None
        if args.early_stopping is None
        else _callbacks.EarlyStopping(patience=args.early_stopping, restore_best_weights=True)
    )
    others = [] if stopper is None else [stopper]
    last = _LastEpoch(keep=bool(args.save), others=others, restore=restore, where=f"fnn train: --resume {args.resume}")
    returned = None  # fit's result, once it has returned
    try:
        # fit's RuntimeWarning names fnn's line and a Python callback: the command says it below
        with using(store), nonfinite_loss_unwarned():
            returned = fit(
                net,
                params,
                opt,
                problem.loss,
                x_tr,
                y_tr,
                batch_size=batch,
                epochs=args.epochs,
                key=key,
                validation_data=val,
                metrics=[problem.metric],
                callbacks=[*others, last],
                grad=args.grad,
                verbose=args.verbose,
                initial_epoch=initial_epoch,
                opt_state=opt_state,
            )
        history = merge_histories(old_history, returned.history)
        losses = returned.history.history.get("loss", [])  # (none where no epoch ran)
        diverged = next(
            (e for e, v in zip(returned.history.epochs, losses, strict=False) if not math.isfinite(v)), None
        )
        if diverged is not None:
            log_line(
                f"fnn train: warning: the loss is not finite from epoch {diverged + 1}: the run diverged "
                "(a smaller --lr may train)"
            )
        if history.stop_reason == "early_stopping" and history.stopped_epoch is not None:
            print(f"early stopping after epoch {history.stopped_epoch + 1}")
        final = {k: v[-1] for k, v in history.history.items() if v}
        if final:
            print(f"final epoch {history.epochs[-1] + 1}: {_values(final)}")
        if stopper is not None and stopper.best is not None and stopper.best_epoch in history.epochs:
            i = history.epochs.index(stopper.best_epoch)
            best = {k: v[i] for k, v in history.history.items() if i < len(v)}
            print(f"best epoch {stopper.best_epoch + 1} by val_loss (weights restored, tested below): {_values(best)}")
        stop = None
    except (KeyboardInterrupt, BrokenPipeError) as err:
        stop = stopped(err)
    # (The interrupted fit's frames are gone here, and with them its progress bar, which ends
    # its line before the one below.)
    if stop == "pipe":
        silence_broken_streams()
    saved, not_saved, epochs_done = None, None, 0
    if args.save:
        try:
            # A Ctrl-C (or SIGTERM) from here waits for the file, then ends the run as one after
            # training does.
            with interrupts_held():
                # The last finished epoch as it ended (its params, not the restored best ones, so
                # that a resumed run goes on from where this one was), else the checkpoint resumed
                # unchanged.
                if last.last is not None and last.last[1] is not None:
                    epoch, kept = last.last[0], last.last[1]
                    done = (*kept, epoch + 1, returned.history if returned is not None else last.finished())
                elif resumed is not None and not write_back:
                    done = (*resumed, History())
                else:  # no epoch ran: the checkpoint resumed stays as it is (its target too)
                    done = None
                if done is not None:
                    p, state, cb_state, epochs_done, new_history = done
                    _checkpoint.save(
                        args.save,
                        params=p,
                        opt_state=state,
                        epoch=epochs_done,
                        key=key,
                        history=merge_histories(old_history, new_history).to_dict(),
                        callbacks=cb_state,
                        epochs=args.epochs,  # the run's target: a --resume without --epochs goes on to it
                        **settings,
                    )
                    saved = epochs_done
        except KeyboardInterrupt as err:
            stop = stop or stopped(err)
        except (OSError, ValueError) as err:  # the folder went away or became read-only meanwhile
            not_saved = f"the checkpoint (epoch {epochs_done}) was not saved: {err}"
            if write_back and resumed is not None:  # the write is atomic: the old file is whole
                not_saved += f"; {args.save} still holds the checkpoint it was resumed from (epoch {resumed[3]})"
    # The test pass runs once the checkpoint is written: a run whose test pass fails (a crash, a
    # Ctrl-C) keeps its epochs.
    if stop is None and returned is not None:
        try:
            x_te, y_te, metrics = problem.x_test, problem.y_test, [problem.metric]
            with using(store):
                test = evaluate(net, returned.params, problem.loss, x_te, y_te, metrics=metrics, batch_size=1024)
            print("test: " + _values(test))
        except (KeyboardInterrupt, BrokenPipeError) as err:
            stop = stopped(err)
            if stop == "pipe":
                silence_broken_streams()
    # a resumed run that finished no epoch leaves the checkpoint it writes back to as it was
    unchanged = resumed[3] if write_back and saved is None and not_saved is None and resumed is not None else None
    if stop is None:
        if not_saved is not None:
            print(f"fnn train: error: {not_saved}", file=sys.stderr)
            return 1
        if saved is not None:
            print(f"saved checkpoint (epoch {saved}) to {args.save}")
        elif unchanged is not None:
            print(f"no epoch ran: {args.save} is unchanged (epoch {unchanged})")
        return 0
    if stop == "pipe":
        return EXIT_BROKEN_PIPE
    finished_current = last.last is not None and last.last[0] == last.current
    during = (
        " after training"
        if returned is not None
        else ""
        if last.current is None
        else f" {'after' if finished_current else 'during'} epoch {(last.current or 0) + 1}/{args.epochs}"
    )
    # the command that continues it, as it can be typed (the data files are not saved)
    again = f"--resume {shlex.quote(str(args.save))}" + (f" --path {shlex.quote(args.path)}" if args.path else "")
    if unchanged is not None and saved_run is not None and saved_run.extra.get("epochs") != args.epochs:
        again += f" --epochs {args.epochs}"  # the file still records its old target: this run's goes on the line
    if saved is not None:
        message = f"saved checkpoint (epoch {saved}) to {args.save}; continue with {again}"
    elif unchanged is not None:
        message = f"no epoch finished, {args.save} is unchanged (epoch {unchanged}); continue with {again}"
    elif not_saved is not None:
        message = not_saved
    elif args.save:
        message = "no epoch finished, nothing saved"
    else:
        message = "nothing saved (--save PATH keeps the finished epochs)"
    words, status = interrupted(stop)
    print(f"fnn train: {words}{during}; {message}", file=sys.stderr)
    return status
