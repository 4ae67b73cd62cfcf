"""What ``fit`` and ``fit_many`` share: one preparation path (checks, the data on the device as
``fnn.train._device_data`` puts it, the compiled epoch), the optimizer state's init and working
copies, the epochs' inputs, and the epoch loop (one program run and one host sync per epoch):
:func:`run_epochs` when callbacks act between epochs, :func:`run_epochs_queued`, which keeps the
next epoch queued on the device while the host records the last, when nothing does."""

from __future__ import annotations

import contextlib
import contextvars
import functools
import math
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fnn._cache import structural_cache
from fnn._dtypes import param_dtype
from fnn._executables import call as call_through_store
from fnn._host_eval import evaluate_on_host
from fnn._interrupts import raise_dropped
from fnn._keys import is_typed_key, key_data
from fnn._random import epoch_dropout_bits, epoch_perm_bits, threefry_bits
from fnn._validate import integer
from fnn.callbacks._base import copy_tree as _copy_tree
from fnn.layers._programs import for_programs
from fnn.train._checks import check_settings, check_shuffle
from fnn.train._data_checks import prepare_data
from fnn.train._device_data import data_to_device
from fnn.train._epoch import (
    EpochSpec,
    can_pad_last,
    compiled_epoch,
    default_unroll,
    epoch_permutation,
    pad_worth,
)
from fnn.train._validation import ValidationSpec, compiled_validation


class Prepared(NamedTuple):
    """Checked settings and data, ready to train: the data on the device in the parameters'
    float dtype, the compiled epoch and validation pass."""

    loss: Any
    metrics: tuple  # every metric logged: spec.metrics (unweighted), then spec.weighted_metrics
    n: int
    iterations_per_epoch: int
    data: tuple  # (x, y, w, x_val, y_val, w_val): the w's are sample weights or None; *_val None without validation
    spec: EpochSpec
    epoch: Callable
    validation: tuple[ValidationSpec, Callable] | None  # the compiled pass and its spec; None without validation data
    # 0: one run; R: R runs' epochs in one program (fnn.train._together), params, states and
    # its outputs tuples over the runs, and the validation pass run once per run
    runs: int = 0


def copy_tree(tree: Any) -> Any:
    """A fresh buffer for every leaf, in one compiled call: training donates copies, never the
    caller's arrays. The program depends on the leaves' shapes alone, so an open executable
    store keeps it once for every run (``shared``)."""
    return call_through_store(_copy_tree, "copy", (), tree, shared=True)


# The epochs' permutation keys come this many epochs at a time: threefry keys derived on the
# host, any other kind from one program (reading an epoch's key alone would wait for the epoch
# running before it, since programs run in order on a device, so the next epoch's order could
# not be drawn while that one runs).
KEY_BLOCK = 32


@functools.cache
def _key_block(keys_of: Callable) -> Callable:
    """``keys_of``'s permutation keys of epochs ``start ... start + KEY_BLOCK - 1`` as raw bits
    (``(KEY_BLOCK, *key_bits)``), jitted. ``keys_of`` derives them through
    :func:`fnn._per_key.per_key`, so the vmap over epochs gives each epoch's own (JAX's vmap of
    unsafe_rbg's ``fold_in`` would draw every epoch's from the first)."""

    def block(key: Any, start: Any) -> Any:
        perm_keys, _ = jax.vmap(keys_of, in_axes=(None, 0))(key, start + jnp.arange(KEY_BLOCK))
        return key_data(perm_keys)

    block.__name__ = block.__qualname__ = f"{keys_of.__name__}_block"  # the program's name and store role
    return jax.jit(block)


def epoch_inputs(
    keys_of: Callable, key: Any, *, n: int, shuffle: bool, needs_key: bool, epochs: int, put: Callable | None = None
) -> Callable:
    """``inputs(epoch) -> (perm, dropout key)`` for :func:`run_epochs`, from a module-level
    jitted ``keys_of(key, epoch) -> (permutation key, dropout key)`` that splits
    ``fold_in(key, epoch)`` for each key (fit's, or fit_many's for K stacked keys): ``perm`` the
    epoch's sample order drawn on the host from its permutation key (int32 ``(n,)``, or
    ``(K, n)``) and put on the device (by ``put``, where the epoch takes it: replicated on a
    mesh; None: ``jax.device_put``, the default device), None without ``shuffle``; the dropout
    key (on the device) when ``needs_key``, else None. Every program is kept once in an open
    executable store.

    What fnn makes on the host goes to the device by ``jax.device_put`` and comes back by
    ``jax.device_get``: explicit transfers, which a caller's ``jax.transfer_guard("disallow")``
    allows (an implicit one it refuses).

    The permutation keys come :data:`KEY_BLOCK` epochs at a time: for threefry keys (jax's
    default) derived on the host from the key's bits (:func:`fnn._random.epoch_perm_bits`, the
    same bits; no program to compile); for any other implementation, read from a program on
    the device, the next block asked for as soon as one is read. Either way drawing an order
    never waits for a running epoch. A threefry key's dropout keys are derived on the host too
    (:func:`fnn._random.epoch_dropout_bits`) and go with the order in one transfer, on one
    device; any other's come from ``keys_of``."""
    host_key = threefry_bits(key) if shuffle or needs_key else None
    program = _key_block(keys_of)
    blocks: dict[int, Any] = {}  # first epoch -> the block (its host copy once read)

    def ask(start: int) -> None:
        if start < epochs and start not in blocks:
            if host_key is not None:
                blocks[start] = epoch_perm_bits(host_key, np.arange(start, start + KEY_BLOCK))
            else:
                first = jax.device_put(start)
                blocks[start] = call_through_store(program, program.__name__, (), key, first, shared=True)

    def perm_bits(epoch: int) -> np.ndarray:
        start = epoch - epoch % KEY_BLOCK
        ask(start)
        block = blocks[start] = np.asarray(jax.device_get(blocks[start]))
        blocks.pop(start - KEY_BLOCK, None)
        ask(start + KEY_BLOCK)
        return block[epoch - start]

    def inputs(epoch: int) -> tuple[Any, Any]:
        perm = epoch_permutation(perm_bits(epoch), n) if shuffle else None
        if not needs_key:
            return (put or jax.device_put)(perm), None
        if put is None and host_key is not None:  # a threefry key's, derived on the host as perm's
            perm, drop_key = jax.device_put((perm, epoch_dropout_bits(host_key, epoch)))
            if is_typed_key(key):  # the epoch takes a key of the kind it was given
                drop_key = jax.random.wrap_key_data(drop_key, impl="threefry2x32")
            return perm, drop_key
        if put is None:  # one transfer: the order and the epoch for keys_of
            perm, at = jax.device_put((perm, epoch))
        else:  # keys_of runs where the key is, the epoch takes the order where put puts it
            perm, at = put(perm), jax.device_put(epoch)
        _, drop_key = call_through_store(keys_of, keys_of.__name__, (), key, at, shared=True)  # a role per function
        return perm, drop_key

    return inputs


VALIDATION_DATA = ("validation_data[0]", "validation_data[1]", "validation_data[2]")

# The validation pass's default batch (or the training batch, if larger): a validation set up to
# this size is ONE forward pass in the epoch's program; a larger one compiles two (the batches
# in a scan, then the last partial one): about a tenth of a small network's epoch to compile.
VALIDATION_BATCH = 1024


@structural_cache(maxsize=32)
def _init_program(init: Any, models: bool, with_values: bool) -> Any:
    """``init(params[, values])`` jitted; ``models``: for params stacked over models, every
    model's state in the same program (vmapped, the hyperparameter values shared and broadcast:
    outside a jit vmap broadcasts each unbatched leaf eagerly, one small program per shape)."""

    def opt_init(*args: Any) -> Any:  # a name for the program (JAX's logs, its cache's keys)
        return init(*args)

    if models:
        return jax.jit(jax.vmap(opt_init, in_axes=(0, None) if with_values else 0))
    return jax.jit(opt_init)


def init_state(opt: Any, params: Any, models: bool = False) -> Any:
    """``opt.init(params)`` as one compiled call (eagerly it dispatches once per leaf and
    buffer), or filled on the host where it only fills constants and copies values, as every
    built-in optimizer's does (no program: :func:`fnn._host_eval.evaluate_on_host`);
    ``models``: ``vmap(opt.init)(params)`` for params stacked over models. An injected
    optimizer's hyperparameter values are inputs of that program, so optimizers that differ
    only in values share it; an open executable store (the CLI) keeps a compiled one, untraced
    on a warm run."""
    init = opt.init
    template = getattr(init, "template", None)
    fn, values = (init, ()) if template is None else (template, (init.arrays(),))
    program = _init_program(fn, models, bool(values))
    # a state of zeros and copied values (every built-in optimizer's) is filled on the host: no
    # program to compile, or to load on a warm run
    state = evaluate_on_host(program, params, *values)
    if state is not None:
        return state
    return call_through_store(program, "init", (fn, models), params, *values)


def prepare(
    net: Any,
    params: Any,
    opt: Any,
    loss: Any,
    x: Any,
    y: Any,
    *,
    grad: Any,
    batch_size: Any,
    epochs: Any,
    unroll: Any,
    shuffle: Any,
    verbose: Any,
    validation_split: Any,
    validation_data: Any,
    validation_batch_size: Any,
    metrics: Any,
    weighted_metrics: Any = None,
    stop_on_nan: bool = False,
    mesh: Any = None,
    models: bool = False,
    sample_weight: Any = None,
    class_weight: Any = None,
) -> Prepared:
    """Checks everything (nothing is compiled before the last check passed), moves the data to
    the device and fetches the compiled epoch. ``params`` is one model's params (or their
    shapes: ``jax.ShapeDtypeStruct`` leaves); ``models``: the epoch is vmapped over stacked models."""
    loss, batch_size = check_settings(grad, loss, opt, batch_size, epochs, unroll, validation_split, verbose)
    if validation_batch_size is not None:
        integer("validation_batch_size", validation_batch_size, 1)
    shuffle = check_shuffle(shuffle)
    x_tr, y_tr, w_tr, x_val, y_val, w_val, ms, wms = prepare_data(
        net, params, loss, x, y, validation_split, validation_data, metrics, sample_weight, class_weight,
        weighted_metrics,
    )  # fmt: skip
    n = x_tr.shape[0]
    net = for_programs(net)  # the programs below never draw params: initializers left out of their key
    spec = EpochSpec(
        net=net,
        loss=loss,
        update=opt.update,
        grad=grad,
        metrics=ms,
        batch_size=min(batch_size, n),
        shuffle=shuffle,
        stop_on_nan=stop_on_nan,
        unroll=unroll or default_unroll(batch_size, n),
        mesh=mesh,
        models=models,
        pad_last=pad_worth(min(batch_size, n), n) and can_pad_last(net, loss, (*ms, *wms), grad, mesh),
        weighted_metrics=wms,
    )
    validation = None
    if x_val is not None:
        # a whole-batch loss (dice, tversky with axis=None, ignore_class) is one ratio per batch: Keras's
        # default batches (batch_size), whose values differ from larger ones'
        default = batch_size if getattr(loss, "whole_batch", False) else max(batch_size, VALIDATION_BATCH)
        val_batch = min(validation_batch_size or default, x_val.shape[0])
        val_spec = ValidationSpec(net, loss, ms, val_batch, mesh, models, weighted_metrics=wms)
        validation = val_spec, compiled_validation(val_spec)
    dtype = param_dtype(params)
    data: tuple[Any, ...] = data_to_device(dtype, x_tr, y_tr, w_tr)
    if x_val is None:
        data += (None, None, None)
    else:
        # validation_split's rows are x's last ones: an overflow there is named by its index in x
        split = validation_data is None
        names = ("x", "y", "sample_weight") if split else VALIDATION_DATA
        data += data_to_device(dtype, x_val, y_val, w_val, names, n if split else 0)
    return Prepared(loss, (*ms, *wms), n, math.ceil(n / batch_size), data, spec, compiled_epoch(spec), validation)


class Cancelled(Exception):
    """Training stopped before an epoch because :func:`cancelled_by`'s event was set."""


_CANCEL: contextvars.ContextVar[threading.Event | None] = contextvars.ContextVar("fnn_cancel", default=None)


@contextlib.contextmanager
def cancelled_by(event: threading.Event) -> Iterator[None]:
    """Training in this thread raises :class:`Cancelled` before its next epoch once ``event``
    is set: how ``fnn compare`` stops the runs training in other threads on Ctrl-C, which only
    the main thread receives."""
    token = _CANCEL.set(event)
    try:
        yield
    finally:
        _CANCEL.reset(token)


def _run_epoch(run: Prepared, params: Any, opt_state: Any, perm: Any, drop_key: Any) -> tuple:
    """The compiled epoch and then its validation pass, queued on the device: ``(params,
    opt_state, bad, sums, val)``, ``val`` None without validation data."""
    x, y, w = run.data[:3]
    args = (params, opt_state, x, y, w, perm, drop_key)
    # an open executable store (the CLI) skips tracing on a warm run
    stored = run.spec.mesh is None
    if stored:
        params, opt_state, bad, sums = call_through_store(run.epoch, "epoch", tuple(run.spec), *args)
    else:
        params, opt_state, bad, sums = run.epoch(*args)
    val = None
    if run.validation is not None:
        # several runs' epochs in one program: one validation program for them all, run per run
        # (inside the epochs' program it would compile again with each run's epoch)
        val = tuple(validate(run, p) for p in params) if run.runs else validate(run, params)
    return params, opt_state, bad, sums, val


def validate(run: Prepared, params: Any) -> Any:
    """``run``'s validation pass on ``params`` (one run's), queued on the device: the sums."""
    assert run.validation is not None
    _, _, _, x_val, y_val, w_val = run.data
    val_spec, validation = run.validation
    val_args = (params, x_val, y_val, w_val)
    if run.spec.mesh is None:  # the same for every run of a command: one file (the command's namespace)
        return call_through_store(validation, "validation", tuple(val_spec), *val_args, common=True)
    return validation(*val_args)


def _cancelled(cancel: threading.Event | None, epoch: int) -> None:
    if cancel is not None and cancel.is_set():
        raise Cancelled(f"cancelled before epoch {epoch}")


def run_epochs(
    run: Prepared,
    params: Any,
    opt_state: Any,
    *,
    epochs: int,
    initial_epoch: int,
    inputs: Callable[[int], tuple[Any, Any]],
    begin: Callable[[int, Any, Any], tuple[Any, Any]],
    end: Callable[..., tuple[Any, Any, bool]],
) -> tuple[Any, Any]:
    """The epoch loop: ``begin(epoch, params, opt_state)`` may change the state (callbacks),
    ``inputs(epoch)`` gives the epoch's ``(permutation, dropout key)``, the compiled epoch runs,
    its sums come to the host in ONE transfer, and ``end(epoch, params, opt_state, bad, sums,
    val, seconds)`` returns ``(params, opt_state, stop)``. The next epoch's inputs (a pure
    function of the epoch: :func:`epoch_inputs`) are drawn while the epoch runs on the device."""
    cancel = _CANCEL.get()
    ahead = None  # the next epoch's inputs, drawn while this epoch runs on the device
    for epoch in range(initial_epoch, epochs):
        _cancelled(cancel, epoch)
        params, opt_state = begin(epoch, params, opt_state)
        t0 = time.perf_counter()
        perm, drop_key = inputs(epoch) if ahead is None else ahead
        params, opt_state, bad, sums, val = _run_epoch(run, params, opt_state, perm, drop_key)
        ahead = inputs(epoch + 1) if epoch + 1 < epochs else None
        sums, val, bad = jax.device_get((sums, val, bad))  # the one host sync of the epoch
        params, opt_state, stop = end(epoch, params, opt_state, bad, sums, val, time.perf_counter() - t0)
        if stop:
            break
    return params, opt_state


def run_epochs_queued(
    run: Prepared,
    params: Any,
    opt_state: Any,
    *,
    epochs: int,
    inputs: Callable[[int], tuple[Any, Any]],
    end: Callable[[int, Any, Any, Any, float], None],
    initial_epoch: int = 0,
) -> tuple[Any, Any]:
    """The epoch loop of a run that nothing on the host changes or stops between epochs
    (:func:`fnn.fit_many`: no callbacks): each epoch is queued on the device BEFORE the previous
    epoch's sums are read and ``end(epoch, bad, sums, val, seconds)`` records them, so the device
    never waits for the host between epochs. An epoch's ``seconds`` run from the previous
    epoch's sums reaching the host (the first epoch's: from the loop's start) to its own: they
    add up to the loop's time."""
    cancel = _CANCEL.get()
    t = time.perf_counter()
    running = None  # (epoch, bad, sums, val): the epoch queued before this one

    def record(epoch: int, bad: Any, sums: Any, val: Any) -> float:
        sums, val, bad = jax.device_get((sums, val, bad))  # the one host sync of the epoch
        now = time.perf_counter()
        end(epoch, bad, sums, val, now - t)
        return now

    ahead = inputs(initial_epoch) if epochs > initial_epoch else (None, None)  # the next epoch's inputs
    for epoch in range(initial_epoch, epochs):
        _cancelled(cancel, epoch)
        raise_dropped()  # one dropped (in a gc callback): this loop has no held end section to raise it
        perm, drop_key = ahead
        params, opt_state, bad, sums, val = _run_epoch(run, params, opt_state, perm, drop_key)
        if epoch + 1 < epochs:
            ahead = inputs(epoch + 1)
        if running is not None:
            t = record(*running)
        running = (epoch, bad, sums, val)
    if running is not None:
        record(*running)
    return params, opt_state
