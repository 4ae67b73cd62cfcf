"""Training: one compiled step, one compiled epoch, and ``fit`` with Keras's semantics.

The lesson's loop — forward, loss, backward, update, repeated for ``ceil(N / batch_size)``
iterations per epoch until a stopping criterion holds — runs here as ONE XLA program per epoch:
the full batches in a ``lax.scan``, the last partial batch (kept, as Keras keeps it) as one more
step, then the validation pass, with losses and metrics summed on the device and read by the
host once per epoch. ``batch_size=N`` is full-batch gradient descent, ``batch_size=1`` is SGD.
"""
from __future__ import annotations

import functools
import math
import time
import warnings
from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from fnn import callbacks as _callbacks
from fnn import checkpoint as _checkpoint
from fnn import data as _data
from fnn import losses as _losses
from fnn import metrics as _metrics
from fnn import optimizers as _optimizers
from fnn import _fit_checks as _checks
from fnn._validate import integer as _integer
from fnn.grad import value_and_grad
from fnn.layers import Network

Array = jax.Array

__all__ = ["train_step", "eval_step", "fit", "FitResult", "History"]


# --------------------------------------------------------------------------------------------
# One step
# --------------------------------------------------------------------------------------------


def _step_fn(net: Network, loss, opt, grad: str):
    """Pure ``(params, opt_state, x, y, key) -> (params, opt_state, loss, y_pred)``."""
    vg = value_and_grad(net, loss, grad, train=True, return_output=True)

    def step(params, opt_state, x, y, key):
        value, grads, y_pred = vg(params, x, y, key=key)
        updates, opt_state = opt.update(grads, opt_state, params)
        return _optimizers.apply_updates(params, updates), opt_state, value, y_pred

    return step


def train_step(net: Network, loss, opt, grad: str = "manual") -> Callable:
    """A jitted ``step(params, opt_state, x, y, key=None) -> (params, opt_state, loss)``.

    ``params`` and ``opt_state`` are donated: pass the returned ones to the next call.
    ``key`` feeds Dropout (train mode); networks without Dropout ignore it.
    """
    loss = _losses.get(loss) if isinstance(loss, str) else loss
    _checks.check_grad(grad)
    inner = _step_fn(net, loss, opt, grad)

    @functools.partial(jax.jit, donate_argnums=(0, 1))
    def step(params, opt_state, x, y, key=None):
        params, opt_state, value, _ = inner(params, opt_state, x, y, key)
        return params, opt_state, value

    return step


def eval_step(net: Network, loss, metrics: Sequence = ()) -> Callable:
    """A jitted ``(params, x, y) -> {"loss": ..., metric: ...}`` on one batch (eval mode)."""
    loss = _losses.get(loss) if isinstance(loss, str) else loss
    ms = _metrics.resolve(metrics, loss=loss)

    @jax.jit
    def evaluate(params, x, y):
        y_pred = net.apply(params, x)
        out = {"loss": loss(y, y_pred)}
        for m in ms:
            out[m.name] = m.result(*m.update(y, y_pred))
        return out

    return evaluate


# --------------------------------------------------------------------------------------------
# One epoch, compiled
# --------------------------------------------------------------------------------------------


def _add(a, b):
    return jax.tree.map(jnp.add, a, b)


def _batch_sums(loss, ms, y, y_pred, value):
    """Loss and metric partial sums of one batch: the loss weighted by the batch size."""
    n = y_pred.shape[0]
    sums = {"loss": (value * n, jnp.asarray(n, value.dtype))}
    for m in ms:
        sums[m.name] = m.update(y, y_pred)
    return sums


def _eval_sums(net, loss, ms, params, x, y, batch_size: int, shard=None):
    """Summed loss/metrics of ``(x, y)`` in batches of ``batch_size`` (full ones scanned, then the rest)."""
    n = x.shape[0]
    nb, rem = divmod(n, batch_size)

    def one(xb, yb):
        if shard is not None:
            xb, yb = shard(xb, yb)
        y_pred = net.apply(params, xb)
        return _batch_sums(loss, ms, yb, y_pred, loss(yb, y_pred))

    total = None
    if nb:
        def body(acc, i):
            xb = jax.lax.dynamic_slice_in_dim(x, i * batch_size, batch_size)
            yb = jax.lax.dynamic_slice_in_dim(y, i * batch_size, batch_size)
            s = one(xb, yb)
            return (s if acc is None else _add(acc, s)), None

        first = one(x[:batch_size], y[:batch_size])
        total, _ = jax.lax.scan(body, first, jnp.arange(1, nb)) if nb > 1 else (first, None)
    if rem:
        s = one(x[nb * batch_size:], y[nb * batch_size:])
        total = s if total is None else _add(total, s)
    return total


class _EpochSpec(NamedTuple):
    """Everything static about a compiled epoch (its cache key, with the objects it closes over)."""

    net: Network
    loss: Any
    opt: Any
    grad: str
    metrics: tuple
    batch_size: int
    shuffle: bool
    stop_on_nan: bool
    val_batch_size: int
    unroll: int
    mesh: Any = None  # a data mesh (fnn.parallel.data_mesh): batches sharded along "batch"


@functools.lru_cache(maxsize=32)
def _compiled_epoch(spec: _EpochSpec):
    """The jitted epoch for ``spec``; cached so a second ``fit`` with the same objects and
    shapes reuses the compiled program (jit's own cache handles the shapes)."""
    epoch = _epoch_fn(spec)
    if spec.mesh is None:
        return jax.jit(epoch, donate_argnums=(0, 1))
    from fnn import parallel as _parallel  # parallel builds on train, not the other way round

    return _parallel.jit_replicated(epoch, spec.mesh, donate_argnums=(0, 1))


def _epoch_fn(spec: _EpochSpec):
    """The pure epoch ``(params, opt_state, x, y, perm, key, x_val, y_val) -> (params,
    opt_state, bad, sums, val)`` for ``spec`` (``fnn.many.fit_many`` vmaps it)."""
    net, loss, ms, B = spec.net, spec.loss, spec.metrics, spec.batch_size
    step = _step_fn(net, loss, spec.opt, spec.grad)
    if spec.mesh is None:
        shard = lambda *arrays: arrays  # noqa: E731
    else:
        from fnn import parallel as _parallel

        shard = functools.partial(_parallel.shard_batch, mesh=spec.mesh)

    def guarded_step(carry, xb, yb, key):
        params, opt_state, bad, sums = carry
        new_params, new_state, value, y_pred = step(params, opt_state, xb, yb, key)
        s = _batch_sums(loss, ms, yb, y_pred, value)
        if spec.stop_on_nan:
            # Once a batch loss is non-finite the rest of the epoch leaves the weights alone:
            # fit returns the last finite params (TerminateOnNaN).
            now_bad = bad | ~jnp.isfinite(value)
            keep = lambda old, new: jax.tree.map(lambda o, n_: jnp.where(now_bad, o, n_), old, new)  # noqa: E731
            new_params, new_state = keep(params, new_params), keep(opt_state, new_state)
            s = jax.tree.map(lambda v: jnp.where(bad, jnp.zeros_like(v), v), s)
            bad = now_bad
        return (new_params, new_state, bad, _add(sums, s)), value

    def epoch(params, opt_state, x, y, perm, key, x_val, y_val):
        n = x.shape[0]
        nb, rem = divmod(n, B)
        zero_sums = jax.tree.map(
            jnp.zeros_like, jax.eval_shape(lambda: _batch_sums(
                loss, ms, y[:B], net.apply(params, x[:B]), jnp.zeros((), jnp.result_type(float))))
        )
        carry = (params, opt_state, jnp.zeros((), bool), zero_sums)

        def take(start, size):
            if spec.shuffle:
                idx = jax.lax.dynamic_slice_in_dim(perm, start, size)
                return shard(jnp.take(x, idx, axis=0), jnp.take(y, idx, axis=0))
            return shard(jax.lax.dynamic_slice_in_dim(x, start, size),
                         jax.lax.dynamic_slice_in_dim(y, start, size))

        def body(carry, i):
            xb, yb = take(i * B, B)
            k = None if key is None else jax.random.fold_in(key, i)
            return guarded_step(carry, xb, yb, k)

        if nb:
            carry, _ = jax.lax.scan(body, carry, jnp.arange(nb), unroll=min(spec.unroll, nb))
        if rem:
            xb, yb = take(nb * B, rem)
            k = None if key is None else jax.random.fold_in(key, nb)
            carry, _ = guarded_step(carry, xb, yb, k)
        params, opt_state, bad, sums = carry
        val = None if x_val is None else _eval_sums(net, loss, ms, params, x_val, y_val, spec.val_batch_size,
                                                    shard=shard)
        return params, opt_state, bad, sums, val

    return epoch


# --------------------------------------------------------------------------------------------
# fit
# --------------------------------------------------------------------------------------------


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

    def __getitem__(self, name: str) -> list[float]:
        return self.history[name]

    def __contains__(self, name: str) -> bool:
        return name in self.history

    def keys(self):
        return self.history.keys()

    def to_dict(self) -> dict:
        return {"history": self.history, "epochs": self.epochs, "times": self.times,
                "iterations_per_epoch": self.iterations_per_epoch, "stop_reason": self.stop_reason,
                "stopped_epoch": self.stopped_epoch}

    @classmethod
    def from_dict(cls, d: dict) -> "History":
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


def _copy_tree(tree):
    # A fresh buffer for every leaf: fit donates its working copies, never the caller's arrays.
    return jax.tree.map(lambda a: jnp.array(a, copy=True), tree)


def _param_dtype(params):
    leaves = [l for l in jax.tree.leaves(params) if jnp.issubdtype(l.dtype, jnp.floating)]
    return leaves[0].dtype if leaves else jnp.float32


def fit(
    net: Network,
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
) -> FitResult:
    """Trains ``net`` from ``params`` with ``opt`` on ``loss(y, net(params, x))``, Keras-style.

    * Iterations per epoch = ``ceil(N / batch_size)``; the last, partial batch is used as it is
      (``batch_size=N``: full-batch GD; ``batch_size=1``: SGD). ``None`` means 32.
    * ``shuffle=True`` draws a new permutation each epoch from ``key`` (epoch ``e`` uses
      ``fold_in(key, e)``, so resumed runs repeat the same order); ``False`` keeps the order.
    * ``validation_split`` holds out the LAST fraction of the samples, before any shuffling;
      ``validation_data=(x_val, y_val)`` takes precedence.
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

    Returns ``FitResult(params, opt_state, history)``. The caller's arrays are never donated.
    """
    # ---- validate everything before anything is compiled (SPEC §5) --------------------------
    loss, batch_size = _checks.check_settings(grad, loss, opt, batch_size, epochs, unroll, validation_split)
    _integer("initial_epoch", initial_epoch, 0)
    if verbose not in (0, 1, 2):
        raise ValueError(f"verbose must be 0, 1 or 2, got {verbose!r}")
    if validation_batch_size is not None:
        _integer("validation_batch_size", validation_batch_size, 1)
    if not isinstance(shuffle, (bool, np.bool_)):
        raise TypeError(f"shuffle must be a bool, got {shuffle!r}")
    if key is not None:
        _checks.check_key(key)
    if mesh is not None:
        from fnn import parallel as _parallel

        mesh = _parallel.check_mesh(mesh)
        # Many processes: each passed its own shard; every one now holds the same global data.
        x, y, validation_data = _parallel.gather_process_data(x, y, validation_data, mesh=mesh)
    x_tr, y_tr, x_val, y_val, ms = _checks.prepare_data(net, params, loss, x, y, validation_split, validation_data,
                                                 metrics)
    n = x_tr.shape[0]
    if opt_state is not None:
        _checks.check_opt_state(opt, params, opt_state)
    cbs = _callbacks.CallbackList(callbacks)
    # The checkpoint is read before any work, against abstract templates: a bad file costs nothing.
    resumed = None if checkpoint is None else _checkpoint.resume(
        checkpoint, params=params, opt_state=jax.eval_shape(opt.init, params) if opt_state is None else opt_state)
    if net.needs_key and key is None:
        key = jax.random.PRNGKey(0)
    if key is None:
        key = jax.random.PRNGKey(0)

    # ---- working copies on the device -------------------------------------------------------
    x_tr, y_tr, x_val, y_val = _to_device(_param_dtype(params), x_tr, y_tr, x_val, y_val)
    params = _copy_tree(params)
    opt_state = _jitted_init(opt)(params) if opt_state is None else _copy_tree(opt_state)
    history = History(math.ceil(n / batch_size))

    if resumed is not None:
        params, opt_state = _copy_tree(resumed.params), _copy_tree(resumed.opt_state)
        initial_epoch = int(resumed.epoch)
        if resumed.history:
            history = History.from_dict(resumed.history)

    place = (lambda tree: tree) if mesh is None else functools.partial(_parallel.replicate, mesh=mesh)  # noqa: E731
    # Data parallel: params, state and data replicated on every device; each batch is split.
    x_tr, y_tr, x_val, y_val, params, opt_state = place((x_tr, y_tr, x_val, y_val, params, opt_state))
    spec = _epoch_spec(net, loss, opt, grad, ms, batch_size, n, shuffle, cbs.stop_on_nan, x_val,
                       validation_batch_size, unroll, mesh)
    epoch_fn = _compiled_epoch(spec)

    ctx = _callbacks.FitContext(net=net, params=params, opt_state=opt_state, history=history,
                                epochs=epochs, iterations_per_epoch=history.iterations_per_epoch)
    progress = _callbacks.Progress(verbose, epochs, initial_epoch, history.iterations_per_epoch)
    cbs.on_train_begin(ctx)
    warned = False
    for epoch in range(initial_epoch, epochs):
        ctx.epoch = epoch
        cbs.on_epoch_begin(epoch, ctx)
        opt_state = ctx.opt_state  # callbacks may have changed hyperparameters held in the state
        perm_key, drop_key = jax.random.split(jax.random.fold_in(key, epoch))
        t0 = time.perf_counter()
        perm = _epoch_permutation(perm_key, n) if shuffle else None
        # (with a mesh, callbacks' new arrays are put back on every device; a no-op otherwise)
        params, opt_state, perm, drop_key = place((params, opt_state, perm, drop_key))
        params, opt_state, bad, sums, val = epoch_fn(
            params, opt_state, x_tr, y_tr, perm, drop_key if net.needs_key else None, x_val, y_val)
        sums, val, bad = jax.device_get((sums, val, bad))  # the one host sync of the epoch
        seconds = time.perf_counter() - t0
        logs = _logs(ms, sums, val)
        ctx.params, ctx.opt_state = params, opt_state
        if bad:
            history.stop_reason, history.stopped_epoch = "nan", epoch
            ctx.stop_training = True
        elif not warned and not math.isfinite(logs["loss"]):
            warned = True
            warnings.warn(f"fit: epoch {epoch + 1} loss is {logs['loss']} (non-finite); "
                          "add fnn.callbacks.TerminateOnNaN() to stop at the first bad batch", RuntimeWarning,
                          stacklevel=2)
        cbs.on_epoch_end(epoch, logs, ctx)
        history.append(epoch, logs, seconds)  # after the callbacks, which may add entries (learning_rate)
        params, opt_state = ctx.params, ctx.opt_state
        progress.update(epoch, logs, seconds)
        if checkpoint is not None:
            _checkpoint.save(checkpoint, params=params, opt_state=opt_state, epoch=epoch + 1,
                             key=key, history=history.to_dict())
        if ctx.stop_training:
            if history.stop_reason == "epochs":
                history.stop_reason, history.stopped_epoch = ctx.stop_reason or "callback", epoch
            break
    cbs.on_train_end(ctx)
    progress.close()
    return FitResult(ctx.params, ctx.opt_state, history)


@functools.lru_cache(maxsize=32)
def _jitted_init(opt):
    """``opt.init`` as one compiled call (eagerly it dispatches once per leaf and buffer)."""
    return jax.jit(opt.init)


def _epoch_permutation(perm_key, n: int) -> np.ndarray:
    """An epoch's sample order (``fnn.data.permutation``), as int32 indices for the epoch
    program whatever ``jax_enable_x64`` says."""
    return _data.permutation(perm_key, n).astype(np.int32)


def _default_unroll(batch_size: int, n: int) -> int:
    # Measured on CPU (784-256-256-10, Adam, N=12800, fit(unroll=k) vs a hand scan at the same
    # k, interleaved): at batch 1 unroll 2 is +30 % samples/s (4: +26 %, 8: -25 %), at batch 32
    # +7 %, at 128 within noise; the batch-1 epoch compiles in 0.63 s instead of 0.34 s. Small
    # steps gain from overlapping two bodies; large ones are matmul-bound and only compile longer.
    return 2 if batch_size <= 64 and n >= 2 * batch_size else 1


def _logs(ms, sums, val) -> dict[str, float]:
    logs = {"loss": float(sums["loss"][0] / sums["loss"][1])}
    for m in ms:
        logs[m.name] = float(m.result(*sums[m.name]))
    if val is not None:
        logs["val_loss"] = float(val["loss"][0] / val["loss"][1])
        for m in ms:
            logs["val_" + m.name] = float(m.result(*val[m.name]))
    return logs


def _epoch_spec(net, loss, opt, grad, ms, batch_size, n, shuffle, stop_on_nan, x_val,
                validation_batch_size, unroll, mesh=None) -> _EpochSpec:
    return _EpochSpec(
        net=net, loss=loss, opt=opt, grad=grad, metrics=ms, batch_size=min(batch_size, n),
        shuffle=bool(shuffle), stop_on_nan=stop_on_nan,
        val_batch_size=min(validation_batch_size or max(batch_size, 256), x_val.shape[0] if x_val is not None else 1),
        unroll=unroll or _default_unroll(batch_size, n), mesh=mesh,
    )


def _to_device(dtype, *arrays):
    """Floating arrays in the parameters' dtype (None stays None)."""
    return tuple(None if a is None else
                 jnp.asarray(a, dtype) if np.issubdtype(a.dtype, np.floating) else jnp.asarray(a)
                 for a in arrays)


