"""``fit``: Keras's ``Model.fit`` semantics over the compiled epoch, with callbacks, resumable
checkpoints and data-parallel training on a mesh."""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Iterator, KeysView, Sequence
from typing import Any, NamedTuple

import jax

from fnn import callbacks as callbacks_, checkpoint as checkpoint_, parallel
from fnn._validate import integer, key as check_key, path as check_path
from fnn.train._checks import (
    check_opt_state,
    check_params_dtypes,
    check_schedules,
    hyperparams_differ,
    resolve_opt,
)
from fnn.train._epoch import epoch_keys, epoch_permutation, logs
from fnn.train._loop import copy_tree, init_state, prepare, run_epochs

Array = jax.Array


class History:
    """What ``fit`` recorded: ``history`` maps each name (``loss``, metrics, ``val_*``) to one
    value per epoch; ``epochs`` lists the epoch indices run."""

    def __init__(self, iterations_per_epoch: int = 0):
        self.history: dict[str, list[float]] = {}
        self.epochs: list[int] = []
        self.iterations_per_epoch = iterations_per_epoch
        self.stop_reason: str = "epochs"
        self.stopped_epoch: int | None = None
        self.times: list[float] = []

    @property
    def epochs_run(self) -> int:
        return len(self.epochs)

    def append(self, epoch: int, logs: dict[str, float], seconds: float) -> None:
        self.epochs.append(epoch)
        self.times.append(seconds)
        for k, v in logs.items():
            self.history.setdefault(k, []).append(v)

    def update_last(self, logs: dict[str, float]) -> None:
        """Entries added to the last epoch's logs after it was appended (by callbacks)."""
        for k, v in logs.items():
            values = self.history.setdefault(k, [])
            if len(values) == len(self.epochs):
                values[-1] = v
            else:
                values.append(v)

    def __getitem__(self, name: str) -> list[float]:
        return self.history[name]

    def __contains__(self, name: str) -> bool:
        return name in self.history

    def keys(self) -> KeysView[str]:
        return self.history.keys()

    def __iter__(self) -> Iterator[str]:
        return iter(self.history)

    def to_dict(self) -> dict:
        return {
            "history": self.history,
            "epochs": self.epochs,
            "times": self.times,
            "iterations_per_epoch": self.iterations_per_epoch,
            "stop_reason": self.stop_reason,
            "stopped_epoch": self.stopped_epoch,
        }

    @classmethod
    def from_dict(cls, d: dict) -> History:
        h = cls(int(d.get("iterations_per_epoch", 0)))
        h.history = {k: list(v) for k, v in d.get("history", {}).items()}
        h.epochs = list(d.get("epochs", []))
        h.times = list(d.get("times", []))
        h.stop_reason = d.get("stop_reason", "epochs")
        h.stopped_epoch = d.get("stopped_epoch")
        return h

    def __repr__(self) -> str:
        last = {k: round(v[-1], 6) for k, v in self.history.items() if v}
        return f"History(epochs_run={self.epochs_run}, iterations_per_epoch={self.iterations_per_epoch}, last={last})"


class FitResult(NamedTuple):
    params: Any
    opt_state: Any
    history: History


def fit(
    net: Any,
    params: Any,
    opt: Any,
    loss: Any,
    x: Any,
    y: Any,
    *,
    batch_size: int | None = 32,
    epochs: int = 1,
    shuffle: bool = True,
    key: Array | None = None,
    validation_split: float = 0.0,
    validation_data: tuple | None = None,
    validation_batch_size: int | None = None,
    metrics: Sequence = (),
    callbacks: Sequence = (),
    grad: str = "manual",
    verbose: int = 1,
    initial_epoch: int = 0,
    opt_state: Any = None,
    checkpoint: str | None = None,
    unroll: int | None = None,
    mesh: Any = None,
    sample_weight: Any = None,
    class_weight: dict[int, float] | None = None,
) -> FitResult:
    """Trains ``net`` from ``params`` with ``opt`` on ``loss(y, net(params, x))``, Keras-style.

    * Iterations per epoch = ``ceil(N / batch_size)``; the last, partial batch is used as it is
      (``batch_size=N``: full-batch GD; ``batch_size=1``: SGD). ``None`` means 32.
    * ``shuffle=True`` draws a new permutation each epoch from ``key`` (epoch ``e`` uses
      ``fold_in(key, e)``, so resumed runs repeat the same order); ``False`` keeps the order.
    * ``validation_split`` holds out the LAST fraction of the samples, before any shuffling;
      ``validation_data=(x_val, y_val)`` or ``(x_val, y_val, sample_weight_val)`` takes precedence.
    * ``sample_weight`` (``(N,)``, finite, >= 0) weighs each sample's loss as Keras does: a
      batch's loss is ``sum(w * loss) / batch size``, and metrics are weighted means.
      ``class_weight={class: weight}`` gives each training sample its class's weight (1 for
      classes not named; the class is the label, or the argmax of one-hot rows). Not both.
    * The epoch's ``loss`` is the batch-size-weighted mean of the batch losses, each computed
      with the weights before that batch's update; ``val_*`` use the end-of-epoch weights.
    * ``opt_state`` continues a previous run (default ``opt.init(params)``); ``checkpoint=path``
      saves after every epoch and, if the file exists, resumes from it.
    * ``mesh=fnn.parallel.data_mesh()`` trains data-parallel: params, optimizer state and data
      are replicated on the mesh's devices, every batch is split along its ``"batch"`` axis
      (any batch size; uneven splits are fine) and the gradient is summed across devices, so
      the result equals one device's up to float rounding. After ``fnn.parallel.initialize``
      (many processes) each process passes ITS OWN SHARD of ``x``/``y`` (and of
      ``validation_data``); the data set is their concatenation in process order.
    * ``opt`` is a GradientTransformation or an optimizer name (``"adam"``: its defaults). When
      ``opt_state`` (or a checkpoint) is given, its hyperparameters win over ``opt``'s (they are
      the run's, with any ReduceLROnPlateau reduction); a given ``opt_state`` whose values differ
      from ``opt``'s is named in a warning.
    * ``grad="manual"`` runs the hand-written backward pass; ``"autodiff"`` is ``jax.grad``
      (and also trains a plain callable loss).

    Returns ``FitResult(params, opt_state, history)``. The caller's arrays are never donated.
    """
    initial_epoch = integer("initial_epoch", initial_epoch, 0)
    if key is not None:
        check_key("key", key)
    if mesh is not None:
        mesh = parallel.check_mesh(mesh)
        # Many processes: each passed its own shard; every one now holds the same global data.
        x, y, validation_data = parallel.gather_process_data(x, y, validation_data, mesh=mesh)
    opt = resolve_opt(opt)
    check_params_dtypes(params)
    cbs = callbacks_.CallbackList(callbacks)
    run = prepare(
        net, params, opt, loss, x, y, grad=grad, batch_size=batch_size, epochs=epochs, unroll=unroll,
        shuffle=shuffle, verbose=verbose, validation_split=validation_split, validation_data=validation_data,
        validation_batch_size=validation_batch_size, metrics=metrics, stop_on_nan=cbs.has(callbacks_.TerminateOnNaN),
        mesh=mesh, sample_weight=sample_weight, class_weight=class_weight,
    )  # fmt: skip
    check_schedules(opt, max(epochs * run.iterations_per_epoch, 1))
    log_names = {"loss", *(m.name for m in run.metrics)}
    if run.data[3] is not None:
        log_names |= {"val_" + name for name in log_names}
    for cb in cbs.items:  # a checkpoint name the logs cannot fill fails now, not after an epoch
        if isinstance(cb, callbacks_.ModelCheckpoint):
            cb.check_logs(log_names | {"learning_rate"})
    if opt_state is not None:
        check_opt_state(opt, params, opt_state)
        differ = hyperparams_differ(opt, opt_state)
        if differ:
            warnings.warn(
                f"fit: opt_state holds {', '.join(differ)}; training continues with the state's values "
                "(set them with fnn.optimizers.set_hyperparams(opt_state, ...), or pass opt_state=None)",
                RuntimeWarning,
                stacklevel=2,
            )
    # The checkpoint is read before any work, against abstract templates: a bad file costs nothing.
    resumed = None
    if checkpoint is not None:
        # Where it will be written is checked too: a bad path fails now, not after training.
        checkpoint = check_path("checkpoint", checkpoint, writable=True)
        template = jax.eval_shape(opt.init, params) if opt_state is None else opt_state
        # against the arrays training will hold (NumPy float64 becomes float32 without x64)
        params_template = jax.eval_shape(lambda tree: tree, params)
        resumed = checkpoint_.resume(checkpoint, params=params_template, opt_state=template)
    if key is None:
        key = jax.random.PRNGKey(0)

    # ---- working copies on the device -------------------------------------------------------
    params = copy_tree(params)
    opt_state = init_state(opt, params) if opt_state is None else copy_tree(opt_state)
    history = History(run.iterations_per_epoch)
    if resumed is not None:
        params, opt_state = copy_tree(resumed.params), copy_tree(resumed.opt_state)
        initial_epoch = int(resumed.epoch)
        if resumed.history:
            history = History.from_dict(resumed.history)
        if history.stop_reason != "epochs":
            # The interrupted run had stopped (early stopping, NaN, a callback): so does this one.
            initial_epoch = max(initial_epoch, epochs)
    # Data parallel: params, state and data replicated on every device; each batch is split.
    place = (lambda tree: tree) if mesh is None else functools.partial(parallel.replicate, mesh=mesh)
    run = run._replace(data=place(run.data))
    params, opt_state = place((params, opt_state))

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

    def inputs(epoch):
        perm_key, drop_key = epoch_keys(key, epoch)
        perm = epoch_permutation(perm_key, run.n) if run.spec.shuffle else None
        return place((perm, drop_key if net.needs_key else None))

    def end(epoch, params, opt_state, bad, sums, val, seconds):
        entries = logs(run.metrics, sums, val)
        ctx.params, ctx.opt_state = params, opt_state
        if bad:
            history.stop_reason, history.stopped_epoch = "nan", epoch
            ctx.stop_training = True
        elif not warned and not math.isfinite(entries["loss"]):
            warned.append(epoch)
            warnings.warn(
                f"fit: epoch {epoch + 1} loss is {entries['loss']} (non-finite); "
                "add fnn.callbacks.TerminateOnNaN() to stop at the first bad batch",
                RuntimeWarning,
                stacklevel=4,
            )
        # The epoch is in the history while the callbacks run (a checkpoint they ask for holds
        # it); what they add to the logs (learning_rate) joins it afterwards.
        history.append(epoch, entries, seconds)
        cbs.on_epoch_end(epoch, entries, ctx)
        history.update_last(entries)
        if ctx.stop_training and history.stop_reason == "epochs":
            history.stop_reason, history.stopped_epoch = ctx.stop_reason or "callback", epoch
        # Every checkpoint of the epoch is written now, with the whole epoch and the callbacks'
        # state: resuming from any of them continues exactly as the uninterrupted run.
        for path in [*ctx.pending_saves, *([checkpoint] if checkpoint is not None else [])]:
            callbacks_.write_checkpoint(path, ctx, cbs, key)
        ctx.pending_saves.clear()
        progress.update(epoch, entries, seconds)
        return ctx.params, ctx.opt_state, ctx.stop_training

    cbs.on_train_begin(ctx)
    if resumed is not None:
        cbs.set_state(resumed.callbacks, f"fit: resuming from {checkpoint}")
    ctx.params, ctx.opt_state = run_epochs(
        run, params, opt_state, epochs=epochs, initial_epoch=initial_epoch, inputs=inputs, begin=begin, end=end
    )
    cbs.on_train_end(ctx)
    progress.close()
    return FitResult(ctx.params, ctx.opt_state, history)
