"""``fit``: Keras's ``Model.fit`` semantics over the compiled epoch, with callbacks, resumable
checkpoints and data-parallel training on a mesh: where its arguments are placed (compared over
a mesh's processes first) and the run its checks let start (its checks, in order, and what they
settle are ``fnn.train._fit_checks``; what it returns, :class:`History` and :class:`FitResult`,
``fnn.train._results``; what it takes from a checkpoint it resumes, ``fnn.train._resume``; what
it does around each epoch, ``fnn.train._fit_hooks``)."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Sequence
from typing import Any

import jax

from fnn import callbacks as callbacks_, parallel
from fnn._interrupts import ctrl_c_recorded
from fnn._placement import on_one_device
from fnn.train._callback_checks import set_by_callbacks
from fnn.train._checks import warn_if_hyperparams_differ
from fnn.train._fit_checks import check_fit
from fnn.train._fit_hooks import fit_hooks
from fnn.train._loop import copy_tree, init_state, run_epochs, run_epochs_queued
from fnn.train._results import FitResult
from fnn.train._resume import resumed_opt_state

Array = jax.Array


def _callback_kinds(callbacks: Any) -> Any:
    """The callbacks' kinds that must be the same on every process of a run over many: all but
    those that only write files (a process may log alone); any other could stop or steer one
    process alone, which leaves the others waiting."""
    if not isinstance(callbacks, Sequence):
        return callbacks  # refused after the comparison, alike on every process
    writers = (callbacks_.CSVLogger, callbacks_.ModelCheckpoint)
    return [type(cb).__qualname__ for cb in callbacks if not isinstance(cb, writers)]


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
    weighted_metrics: Sequence = (),
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
    * ``shuffle=True`` draws a new permutation each epoch from ``key`` (epoch ``e`` draws it from
      the first key of ``split(fold_in(key, e))``, so resumed runs repeat the same order);
      ``False`` keeps the order.
    * ``validation_split`` holds out the LAST fraction of the samples, before any shuffling;
      ``validation_data=(x_val, y_val)`` or ``(x_val, y_val, sample_weight_val)`` takes precedence.
    * ``sample_weight`` (``(N,)``, finite, >= 0) weighs each sample's loss as Keras does: a
      batch's loss is ``sum(w * loss) / batch size``. As in Keras 3, ``metrics`` are not
      weighted and ``weighted_metrics`` are weighted means (``sum(w * score) / sum(w)``).
      ``class_weight={class: weight}`` gives each training sample its class's weight (1 for
      classes not named; the class is the label, or the argmax of one-hot rows). Not both.
      Validation data's own weights (its third element) weigh ``val_loss`` and the weighted
      metrics alike.
    * The epoch's ``loss`` is the batch-size-weighted mean of the batch losses, each computed
      with the weights before that batch's update; ``val_*`` use the end-of-epoch weights.
    * ``opt_state`` continues a previous run (default ``opt.init(params)``); ``checkpoint=path``
      saves after every epoch and, if the file exists, resumes from it.
    * ``mesh=fnn.parallel.data_mesh()`` trains data-parallel: params, optimizer state and data
      are replicated on the mesh's devices, every batch is split along its ``"batch"`` axis
      (any batch size; uneven splits are fine) and the gradient is summed across devices, so
      the result equals one device's up to float rounding. After ``fnn.parallel.initialize``
      (many processes) each process passes ITS OWN SHARD of ``x``/``y``, of ``sample_weight``
      (one weight per row of its ``x``) and of ``validation_data`` (each part); the data set is
      their concatenation in process order. All other arguments (but ``verbose``,
      ``checkpoint`` and callbacks that only write files) must be the same on every process:
      params, ``opt_state`` and ``key`` are compared by value, the settings and the network,
      loss and optimizer by their ``repr``, and a difference is the same ValueError on every
      process. Without a mesh, fit trains on one device: the params' (their local copy where
      they are replicated over a mesh, as a mesh fit returns them), the data following them
      from any device or mesh.
    * ``opt`` is a GradientTransformation or an optimizer name (``"adam"``: its defaults). When
      ``opt_state`` (or a checkpoint) is given, its hyperparameters win over ``opt``'s (they are
      the run's, with any ReduceLROnPlateau reduction); a given ``opt_state`` or checkpoint
      whose values differ from ``opt``'s is named in a warning (a checkpoint's learning rate
      not where a ReduceLROnPlateau or LearningRateScheduler sets it).
    * ``grad="manual"`` runs the hand-written backward pass; ``"autodiff"`` is ``jax.grad``
      (and also trains a plain callable loss).

    Returns ``FitResult(params, opt_state, history)``. The caller's arrays are never donated.

    Every argument is checked, and the data against the network and the loss (by tracing),
    before anything is compiled: a mistake costs no compilation and no epoch. Each epoch is ONE
    compiled program (the batches in a ``lax.scan``), then the validation pass (a program of the
    network, loss and metrics alone, which fits with other optimizers or batch sizes share), with
    one host sync; a second ``fit`` with the same structure (network, loss, metrics, optimizer
    family, batch size, data shapes, validation or not) compiles nothing. Structure means what
    the programs compute: a network built again, or drawn with other initializers; a named
    optimizer (``adam``, ``sgd``...) with other values, which its state holds. Functions
    compare as Python compares them, by identity (a closure or lambda made anew may read other
    values than one alike, from its module's globals or an object since changed): a custom
    layer's or loss's functions made anew, an optax optimizer built again (``optax.adam(1e-3)``
    twice) compile the epoch again. A value held in a function rather than a state is
    structure: a chain of fnn's building blocks (``clip_by_global_norm``,
    ``add_decayed_weights``, ``scale``...: they hold their values, as optax's do) with other
    values compiles the epoch again; make such values state with a factory made once, injected:
    ``clipped = fnn.optimizers.inject_hyperparams(my_factory)``, then ``clipped(1.0, 1e-3)``,
    ``clipped(0.5, 1e-3)``... share one epoch (``my_factory(max_norm, learning_rate)`` returning
    ``chain(clip_by_global_norm(max_norm), adam(learning_rate))``).

    **Resuming** (``checkpoint=path``). The file is written atomically after every epoch, once
    every callback has run: params, optimizer state, the epochs done, ``key``, the batch size
    and ``shuffle``, the history and each callback's ``get_state()``. When ``path`` exists at
    the start, the run continues from it: its params and optimizer state replace the ``params``
    and ``opt_state`` given (which then serve as templates the file must match in structure,
    shapes and dtypes), ``initial_epoch`` becomes the epochs it holds, its history is continued
    (a :class:`History` or its ``to_dict()`` as stored; a plain ``{name: [value per epoch]}``
    given to :func:`fnn.checkpoint.save` counts as the epochs just before the ones the file
    holds, their times NaN), and each callback's state is given back (``set_state``, after
    ``on_train_begin``). With the same ``key`` and settings the resumed run is bit-identical to
    an uninterrupted one (the order of epoch ``e`` depends on ``key`` and ``e`` only); ``key``
    None takes the file's. A ``key``, batch size or ``shuffle`` other than the ones the file
    records is named in a UserWarning (the run goes on with them, but will not repeat the
    uninterrupted one); another key only where the run draws from it (``shuffle``, or a network
    that draws randomness in training: without either, any key gives the same run), and so is
    an ``opt`` built otherwise than the file's run in what its state does not hold (a schedule's
    step counts, a clipping norm: the file's values go on under this ``opt``'s rule). A run that
    stopped (early stopping, NaN, a callback: its ``history.stop_reason`` is not ``"epochs"``)
    stays stopped whatever ``epochs`` says: no epoch runs and the stored result comes back. One
    that ran out of epochs runs only the epochs beyond those it holds: none for the same
    ``epochs``, the rest for a larger one.

    **Ctrl-C** (``KeyboardInterrupt``). An interrupted ``fit`` returns nothing: to keep its work
    across a Ctrl-C, pass ``checkpoint=path`` (or a :class:`fnn.callbacks.ModelCheckpoint`), and
    resume by calling ``fit`` again with the same arguments (from a ModelCheckpoint's file:
    ``checkpoint=`` a copy of it), which continues after the last finished epoch. A Ctrl-C
    during an epoch's end (the callbacks' ``on_epoch_end``, its progress line, its checkpoint
    writes) is held until that end is complete, so no epoch is saved half-reported; a second
    Ctrl-C there goes through at once (a callback that hangs can still be stopped). One that
    Python drops (landing in JAX's garbage-collector callback) still ends the run, at the next
    epoch's end or when ``fit`` would return. (Main thread only, where Python delivers signals;
    a SIGINT handler of your own is left in place.)

    Args:
        net: The network (:func:`fnn.mlp`, :func:`fnn.serial`): anything with
            ``init``/``apply``/``forward``/``backward`` and ``needs_key``.
        params: The initial parameters, ``net.init(key, input_shape)``'s structure, shapes and
            floating dtypes (training runs in their dtype; the data is cast to it). Never
            modified or donated.
        opt: An optimizer (a GradientTransformation such as ``fnn.optimizers.adam(1e-3)``, or
            a plain ``(init, update)`` pair of callables, or an object with those methods such
            as ``optax.MultiSteps``: ``update(grads, state, params) ->
            (updates, new_state)``, the updates shaped like params and the new state like
            ``init(params)``) or an optimizer name (``"adam"``, ``"SGD"``...:
            :func:`fnn.optimizers.get` with its defaults). ``update`` is called without
            optax's extra keyword arguments: one that needs them (a chain holding
            ``optax.contrib.reduce_on_plateau``, which needs ``value=``) is refused before
            anything compiles; :class:`fnn.callbacks.ReduceLROnPlateau` lowers the rate instead.
        loss: A loss name (``"mse"``, ``"sparse_categorical_crossentropy"``...), an
            :class:`fnn.losses.Loss` (:func:`fnn.losses.get` with options, or
            :func:`fnn.losses.custom`), or with ``grad="autodiff"`` any callable
            ``(y_true, y_pred) -> scalar`` (taking ``sample_weight=`` when weights are given:
            ``sample_weight``, ``class_weight`` or weighted ``validation_data``). The callable
            returns the batch's loss: one returning one value per sample (Keras's custom-loss
            form) is refused; make it ``fnn.losses.custom(name, fn)``, which takes their mean
            as Keras does.
        x: Inputs ``(N, *input_shape)`` (``(N, features)`` for Dense first; any rank >= 2 for
            a network that starts with Flatten): a NumPy or jax array or nested lists, finite.
        y: Targets with ``N`` rows, of the shape the loss expects for the network's outputs
            (``(N,)`` or ``(N, 1)`` integer labels for a sparse loss, ``(N, C)`` one-hot...).
        batch_size: Samples per optimizer step, an int >= 1 (None: 32); above ``N``, one
            batch of ``N``.
        epochs: The epoch to stop at (Keras's meaning: the last epoch run is ``epochs - 1``,
            counted from 0, whatever ``initial_epoch``), an int >= 0.
        shuffle: Draw a new sample order each epoch (from ``key``); False keeps the order.
        key: A PRNG key (``jax.random.key(s)`` or ``jax.random.PRNGKey(s)``) for the shuffles
            and Dropout; epoch ``e`` uses ``split(fold_in(key, e))``, the first key for its
            permutation (``fnn.data.permutation(first, N)``), the second for its Dropout masks
            (batch ``i`` of the epoch: ``fold_in(second, i)``, the key its step gets, as
            :func:`fnn.train_step`'s ``key``). None: ``PRNGKey(0)``, or when resuming a
            checkpoint, the key it holds.
        validation_split: The fraction in [0, 1) of the samples held out, the LAST ones (before
            any shuffling), with their ``sample_weight``; ignored when ``validation_data`` is
            given.
        validation_data: ``(x_val, y_val)`` or ``(x_val, y_val, sample_weight_val)``, evaluated
            after each epoch (eval mode) and logged as ``val_loss`` and ``val_<metric>``.
            ``class_weight`` does not apply to it.
        validation_batch_size: Samples per batch of the validation pass, an int >= 1 (None:
            ``max(batch_size, 1024)``, or ``batch_size``, Keras's default, for a loss whose value
            is one ratio over its batch: dice and tversky with ``axis=None``, a sparse
            cross-entropy with ``ignore_class``, see :attr:`fnn.losses.Loss.whole_batch`); it
            changes memory use and the summation order,
            not the values beyond float rounding, except for such a loss, whose ``val_loss``
            is the batch-size-weighted mean of its batches' values, as Keras's.
        metrics: Metric names (``"accuracy"`` resolved from the loss and shapes:
            :func:`fnn.metrics.get`; ``"mae"``, ``"AUC"``...), :class:`fnn.metrics.Metric`
            objects, or callables ``(y_true, y_pred) -> scores``; each is logged under its name
            (the string as given, ``val_`` prefixed for validation), computed over the whole
            epoch from summed partials, unweighted whatever the sample or class weights.
        weighted_metrics: Metrics as in ``metrics``, weighted by ``sample_weight`` /
            ``class_weight`` (and ``val_*`` by the validation data's weights). Logged under
            their names; one whose name ``metrics`` (or an earlier weighted one) already took
            is logged as ``weighted_<name>`` (Keras 3's naming: ``metrics=["mae"],
            weighted_metrics=["mae"]`` logs ``mae`` and ``weighted_mae``).
        callbacks: :class:`fnn.callbacks.Callback` objects (or any object with the hooks), or
            callables ``fn(epoch, logs)`` called at each epoch's end (a truthy return stops
            training); run in order, between epochs.
        grad: ``"manual"`` (the hand-written backward pass) or ``"autodiff"`` (``jax.grad``).
        verbose: 0 silent, 1 a progress bar (tqdm, on stderr), 2 one line per epoch (stdout).
        initial_epoch: The epoch to start at, an int >= 0 (epochs before it are not run); a
            checkpoint being resumed sets it.
        opt_state: The optimizer state to continue from (None: ``opt.init(params)``); it must
            be what ``opt.init(params)`` builds (structure, shapes, dtypes), and its
            hyperparameters (its schedules' values included) are the ones used.
        checkpoint: A file path: saved after every epoch and, if it exists at the start,
            resumed from (see above). Its folder must be writable (checked first).
        unroll: The ``lax.scan`` unroll of the epoch's steps, an int >= 1 (None: 2 for small
            batches of long epochs, else 1); a speed setting: the results are the same up to
            float rounding.
        mesh: A data mesh (:func:`fnn.parallel.data_mesh`) to train data-parallel on, or None
            for one device.
        sample_weight: Per-sample weights ``(N,)`` (or ``(N, 1)``, or a scalar), finite and
            >= 0 (bools weigh 0 and 1), for the loss and the ``weighted_metrics``. With many
            processes, this process's shard, one weight per row of its ``x`` (a scalar weighs
            its rows); the whole data set's weights are refused: pass
            ``fnn.parallel.process_shard(sample_weight)``, as for ``x``.
        class_weight: ``{class: weight}`` (weights finite, >= 0; a class an int, negative too
            (a hinge loss's -1 and 1), or a whole-number float such as ``np.float32(1.0)``, as
            Keras takes ``int(key)``): each training sample gets its class's weight, 1 for
            classes not named; the class is the rounded label, or the argmax of a one-hot or
            probability row. Not with ``sample_weight``.

    Returns:
        ``FitResult(params, opt_state, history)`` (:class:`FitResult`): the trained parameters,
        the optimizer state, and the :class:`History` (one entry per epoch run, and why
        training ended).

    Raises:
        TypeError: For an argument of the wrong type, named in the message: an ``opt`` that is
            neither a GradientTransformation nor a name (or whose ``update`` cannot be called as
            ``update(grads, state, params)`` or returns no pair), a ``loss`` that is not a name, Loss or
            callable (or a plain callable with ``grad="manual"``, or one without a
            ``sample_weight=`` keyword when weights are given), params with non-floating
            leaves, a non-int ``batch_size``/``epochs``/``unroll``/``initial_epoch``/
            ``validation_batch_size``, a non-bool ``shuffle``, a ``key`` that is not a PRNG key,
            non-numeric data or weights, a ``class_weight`` that is not a dict, a callback
            class instead of an instance (or something neither a callback nor callable), a
            callback hook that cannot take fnn's arguments (a Keras-style ``on_epoch_end(self,
            epoch, logs=None)``), a Keras per-batch hook (``on_train_batch_end``...: fnn's
            epochs are compiled, with none), or a callable that cannot take ``(epoch, logs)``, a
            ``checkpoint`` that is not a path, a ``mesh`` that is not a Mesh, a ``verbose`` that
            is not an int (Keras's ``"auto"``: give 1), ``metrics`` given as a dict (Keras's
            per-output form).
        ValueError: For a bad value, named in the message: an unknown optimizer, loss or metric
            name; ``grad`` not ``"manual"``/``"autodiff"``, an int ``verbose`` not 0/1/2,
            ``batch_size``/``unroll``/``validation_batch_size`` < 1, ``epochs``/``initial_epoch``
            < 0, ``validation_split`` outside [0, 1); a ``key`` holding several keys; ``y``
            or either part of ``validation_data`` None; ``x`` not ``(N, *input_shape)``, empty
            or non-finite, data or weights with finite values that overflow the dtype they are
            held in (``x`` in the params' dtype, ``y`` and
            weights in at least float32), ``x`` and ``y`` of different lengths, data that does not
            fit the network or the loss (labels out of range...), a metric that does not fit the
            targets; params or ``opt_state`` that do not match the network or
            ``opt.init(params)``, or that hold a 64-bit jax array while ``jax_enable_x64`` is off
            (made while it was on: enable x64 or cast them to 32 bits; NumPy arrays are cast as
            JAX casts them); an ``opt.update`` whose updates are not shaped
            like params, or whose new state changes the state's structure, shapes or dtypes; a
            schedule of ``opt`` that gives a non-finite value or a negative learning rate over
            the run; a plain callable loss that returns one value per sample (not a scalar);
            bad ``sample_weight`` (shape, negative, non-finite) or ``class_weight``
            keys, both of them given; a
            ``validation_data`` that is not a pair or triple; with many processes, arguments
            that differ between the processes (but the data shards), weights or targets that
            are not one per row of the process's ``x``; no training samples left after
            ``validation_split``; a ``checkpoint`` path that is a folder or cannot be written, or
            an existing checkpoint that is corrupt, does not match ``params``/``opt_state``, holds
            no optimizer state (saved with params only, as ``ModelCheckpoint(save_weights_only=True)``
            writes: it cannot resume a run), or whose history
            records more epochs than it holds (or epochs not before them, or plain lists of
            different lengths); a
            :class:`fnn.callbacks.ModelCheckpoint` filepath naming a log the run will not have;
            a mesh without a ``"batch"`` axis; a :class:`fnn.callbacks.ReduceLROnPlateau` or
            :class:`fnn.callbacks.LearningRateScheduler` with an optimizer state that holds no
            learning rate it can set; params or a state a callback puts into ``ctx`` that do not
            match the run's (NaN params with TerminateOnNaN; a TypeError for non-floating ones).
            Exceptions raised by callbacks propagate.

    Warns:
        RuntimeWarning: When the given ``opt_state`` or a resumed checkpoint holds other
            hyperparameter values than ``opt`` was built with (theirs are used); when an
            epoch's loss is not finite and there is no :class:`fnn.callbacks.TerminateOnNaN`;
            when a resumed checkpoint holds no state for a stateful callback (it starts afresh),
            or holds the state of a callback this run does not pass, where that state could change
            training or its result (an EarlyStopping's best weights: it is dropped; not a
            CSVLogger's or a ModelCheckpoint's, which only decide what those write).
        UserWarning: When resuming a checkpoint with another ``key`` (where the run draws from
            it: with ``shuffle`` or a network that draws randomness, such as Dropout), batch size
            or ``shuffle`` than it records, or an ``opt`` built otherwise (see above); once,
            before training, when a
            ReduceLROnPlateau or LearningRateScheduler sets a learning rate that ``opt``'s update
            does not read after its first step (``rprop``'s only seeds its step sizes, as in
            PyTorch): the rate would be logged, the params unchanged by it.

    Examples:
        >>> import fnn, jax, numpy as np
        >>> net = fnn.mlp([1])
        >>> params = net.init(jax.random.PRNGKey(0), (3,))
        >>> x = np.linspace(-1, 1, 24, dtype=np.float32).reshape(8, 3)
        >>> y = x.sum(axis=1, keepdims=True)
        >>> result = fnn.fit(net, params, "sgd", "mse", x, y, batch_size=4, epochs=2, verbose=0)
        >>> result.history.epochs, result.history.iterations_per_epoch, list(result.history)
        ([0, 1], 2, ['loss'])

        Resuming: a run interrupted after one epoch continues from its checkpoint to the same
        weights, bit for bit; a finished run stays finished.

        >>> import os, tempfile
        >>> tmp = tempfile.TemporaryDirectory()
        >>> path = os.path.join(tmp.name, "run.npz")
        >>> _ = fnn.fit(net, params, "sgd", "mse", x, y, batch_size=4, epochs=1, verbose=0, checkpoint=path)
        >>> resumed = fnn.fit(net, params, "sgd", "mse", x, y, batch_size=4, epochs=2, verbose=0, checkpoint=path)
        >>> resumed.history.epochs, bool((resumed.params[0]["w"] == result.params[0]["w"]).all())
        ([0, 1], True)
        >>> again = fnn.fit(net, params, "sgd", "mse", x, y, batch_size=4, epochs=2, verbose=0, checkpoint=path)
        >>> again.history.epochs_run, bool((again.params[0]["w"] == result.params[0]["w"]).all())
        (2, True)
        >>> tmp.cleanup()
    """
    # A Ctrl-C that Python drops (raised in JAX's gc callback) still ends the run: at the next
    # epoch's end, or here once the run is done.
    with ctrl_c_recorded(), contextlib.ExitStack() as stack:
        if mesh is not None:
            mesh = parallel.check_mesh(mesh)
            # Many processes: each passed its own shard; every one now holds the same global data.
            # All else (but verbose and checkpoint) must be the same everywhere: a process that
            # raises alone or runs another program leaves the others waiting in a collective, so
            # it is compared here, before any other check could fail on one process only.
            x, y, validation_data, sample_weight = parallel.gather_process_data(
                x, y, validation_data, mesh=mesh, sample_weight=sample_weight,
                same=dict(
                    net=net, params=params, opt=opt, opt_state=opt_state, loss=loss, key=key, batch_size=batch_size,
                    epochs=epochs, initial_epoch=initial_epoch, shuffle=shuffle, validation_split=validation_split,
                    validation_batch_size=validation_batch_size, metrics=metrics, weighted_metrics=weighted_metrics,
                    grad=grad, unroll=unroll, class_weight=class_weight, callbacks=_callback_kinds(callbacks),
                    mesh=(mesh.axis_names, mesh.device_ids),
                ),
            )  # fmt: skip
        else:  # one device: the params', the data following them
            params, opt_state, x, y, sample_weight, validation_data, key = on_one_device(
                (params, opt_state, x, y, sample_weight, validation_data, key),
                ("params", "opt_state", "x", "y", "sample_weight", "validation_data", "key"),
            )
        opt, params, opt_state, cbs, run, resumed, history, checkpoint, initial_epoch, key = check_fit(
            net, params, opt, loss, x, y, key=key, opt_state=opt_state, callbacks=callbacks, checkpoint=checkpoint,
            initial_epoch=initial_epoch, epochs=epochs, grad=grad, batch_size=batch_size, unroll=unroll,
            shuffle=shuffle, verbose=verbose, validation_split=validation_split, validation_data=validation_data,
            validation_batch_size=validation_batch_size, metrics=metrics, weighted_metrics=weighted_metrics,
            mesh=mesh, sample_weight=sample_weight, class_weight=class_weight,
        )  # fmt: skip

        # ---- working copies on the device -------------------------------------------------------
        if mesh is not None:  # the run's Auto mesh in force from here (the checks ran under the caller's)
            stack.enter_context(parallel.in_force(mesh))
        params = copy_tree(params)
        opt_state = init_state(opt, params) if opt_state is None else copy_tree(opt_state)
        if resumed is not None:
            kept = resumed_opt_state(resumed.opt_state, opt_state)
            params, opt_state = copy_tree(resumed.params), copy_tree(kept)
            # named as a given opt_state's are (but a rate the run's ReduceLROnPlateau set)
            remedy = "to change them, set them in its opt_state with fnn.optimizers.set_hyperparams and save it again"
            ignore = set_by_callbacks(cbs.items, resumed.callbacks)
            warn_if_hyperparams_differ(opt, kept, f"checkpoint {checkpoint!r}", "the checkpoint's", remedy, ignore)
        # Data parallel: params, state and data replicated on every device; each batch is split.
        place = (lambda tree: tree) if mesh is None else functools.partial(parallel.replicate, mesh=mesh)
        run = run._replace(data=place(run.data))
        params, opt_state = place((params, opt_state))

        hooks = fit_hooks(
            net, run, params, opt_state, history=history, cbs=cbs, place=place, key=key, checkpoint=checkpoint,
            epochs=epochs, initial_epoch=initial_epoch, verbose=verbose,
        )  # fmt: skip
        ctx = hooks.ctx
        try:
            cbs.on_train_begin(ctx)
            if resumed is not None:
                cbs.set_state(resumed.callbacks, f"fit: resuming from {checkpoint}")
            if cbs.items or checkpoint is not None or run.spec.stop_on_nan:
                ctx.params, ctx.opt_state = run_epochs(
                    run, params, opt_state, epochs=epochs, initial_epoch=initial_epoch, inputs=hooks.inputs,
                    begin=hooks.begin, end=hooks.end,
                )  # fmt: skip
            else:  # nothing between epochs reads or changes the state: each is queued before the last is recorded
                ctx.params, ctx.opt_state = run_epochs_queued(
                    run, params, opt_state, epochs=epochs, initial_epoch=initial_epoch, inputs=hooks.inputs,
                    end=hooks.queued_end,
                )  # fmt: skip
            cbs.on_train_end(ctx)
            hooks.finish()
        finally:  # an interrupted run ends its progress line before whatever is printed next
            hooks.progress.close()
        return FitResult(ctx.params, ctx.opt_state, history)
