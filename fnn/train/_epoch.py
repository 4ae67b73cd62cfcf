"""One step and one epoch, as pure functions, the epoch compiled once per structure (the loss
and metric sums they add up: ``fnn.train._sums``).

The lesson's loop (forward, loss, backward, update, repeated for ``ceil(N / batch_size)``
iterations per epoch) runs as ONE XLA program per epoch: the full batches in a ``lax.scan``,
the last partial batch (kept, as Keras keeps it) as one more iteration of that scan, padded to
the full batch with rows that count for nothing (:func:`can_pad_last`, :func:`pad_worth`;
otherwise as a step of its own, a second copy of the step to compile), with losses and metrics
summed on the device and read by the host once per epoch.

The validation pass after each epoch is a program of its own: ``fnn.train._validation``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fnn import parallel
from fnn._cache import structural_cache
from fnn._dtypes import moved_as_fit_moves
from fnn._executables import debugging_nonfinite
from fnn._native import natively
from fnn._per_key import per_key
from fnn._random import permutation_of_bits
from fnn.data._checks import check_batch
from fnn.grad import value_and_grad
from fnn.layers._base import check_net
from fnn.layers._core import rows_independent
from fnn.layers._programs import for_programs
from fnn.losses import Loss
from fnn.losses._reduction import row_mask
from fnn.metrics import Metric
from fnn.metrics._registry import is_builtin
from fnn.optimizers import apply_updates
from fnn.train._checks import check_grad, resolve_loss, resolve_opt
from fnn.train._data_checks import check_required
from fnn.train._flat import flat_plan
from fnn.train._sums import add_sums, batch_sums

Array = jax.Array


def step_fn(net: Any, loss: Any, update: Callable, grad: str) -> Callable:
    """Pure ``(params, opt_state, x, y, key, w=None, rows=None) -> (params, opt_state, loss,
    y_pred)``; ``w``: per-sample weights of the batch (Keras's ``sample_weight``); ``rows``: a
    bool ``(B,)`` mask of the samples that count (a padded last batch; hand-written gradient
    and a :class:`fnn.losses.Loss` only), None for all."""
    vg = value_and_grad(net, loss, grad, train=True, return_output=True)

    def step(params, opt_state, x, y, key, w=None, rows=None):
        if rows is None:
            value, grads, y_pred = vg(params, x, y, key=key, sample_weight=w)
        else:  # the padded rows get a zero gradient, so they add nothing to the layers' sums
            y_pred, cache = net.forward(params, x, key=key, train=True)
            value, dy = loss.rows_value_and_grad(y, y_pred, w, rows)
            grads, _ = net.backward(params, cache, dy)
        updates, opt_state = update(grads, opt_state, params)
        return apply_updates(params, updates), opt_state, value, y_pred

    return step


def all_finite(tree: Any) -> Array:
    """Whether every floating leaf of ``tree`` is finite (a scalar bool)."""
    flags = [jnp.all(jnp.isfinite(leaf)) for leaf in jax.tree.leaves(tree) if jnp.issubdtype(leaf.dtype, jnp.inexact)]
    return jnp.all(jnp.stack(flags)) if flags else jnp.asarray(True)


class EpochSpec(NamedTuple):
    """Everything static about a compiled epoch; its cache key (compared by value)."""

    net: Any
    loss: Any
    update: Callable
    grad: str
    metrics: tuple
    batch_size: int
    shuffle: bool
    stop_on_nan: bool
    unroll: int
    mesh: Any = None  # a data mesh (fnn.parallel.data_mesh): batches sharded along "batch"
    models: bool = False  # K models stacked along axis 0 (fit_many): the epoch under vmap
    pad_last: bool = False  # the last partial batch padded into the scan (pad_worth, can_pad_last)
    weighted_metrics: tuple = ()  # weighted by the sample weights; ``metrics`` are not (Keras 3)
    flat: bool = False  # the update on one vector of the leaves where that is the same (fnn.train._flat)


def pad_worth(batch_size: int, n: int) -> bool:
    """Whether padding the last partial batch of ``n`` samples to ``batch_size`` pays: it saves
    compiling a second copy of the step, and costs ``batch_size - n % batch_size`` rows of
    wasted work every epoch, so it is taken where that is at most 64 rows (cheap however many
    epochs run) or 1/32 of the epoch (at batch 1024 on 12,800 samples it would be 4 %)."""
    rem = n % batch_size
    return n > batch_size and rem > 0 and batch_size - rem <= max(64, n // 32)


def can_pad_last(net: Any, loss: Any, metrics: Sequence[Metric], grad: str, mesh: Any) -> bool:
    """Whether an epoch may run its last partial batch padded to the full batch size in the
    scan: the result is the unpadded step's (up to float summation order) when the network
    computes each sample alone and draws no randomness (Dropout's mask would be drawn for the
    padded shape), the loss is an :class:`fnn.losses.Loss` with its hand-written gradient, and
    every metric is a built-in one (they weigh the padding 0); not on a mesh."""
    return (
        mesh is None
        and grad == "manual"
        and isinstance(loss, Loss)
        and all(is_builtin(m) for m in metrics)
        and rows_independent(net)
        and not net.needs_key
    )


def _one_model(tree: Any) -> Any:
    """Shapes and dtypes of one of the models stacked along axis 0 of ``tree``'s leaves."""
    return jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape[1:], a.dtype, weak_type=jax.typeof(a).weak_type), tree)


def epoch_fn(spec: EpochSpec, models: bool = False) -> Callable:
    """The pure epoch ``(params, opt_state, x, y, w, perm, key) -> (params, opt_state, bad,
    sums)`` for ONE model (``w``: sample weights or None); with ``models``, for K models stacked
    along axis 0 of params, optimizer states, sample orders and dropout keys (the data shared),
    each step vmapped over them inside the epoch's scan (:func:`models_epoch_fn`)."""
    net, loss, ms, wms, B = spec.net, spec.loss, spec.metrics, spec.weighted_metrics, spec.batch_size
    shard = None if spec.mesh is None else functools.partial(parallel.shard_batch, mesh=spec.mesh)
    # over the models: what varies per model (the carry, sample order, dropout key) mapped, the
    # rest shared; for one model, the function itself
    axes = (0, None, 0 if spec.shuffle else None, 0 if spec.net.needs_key else None)
    per_model = (lambda f: jax.vmap(f, in_axes=axes)) if models else (lambda f: f)

    def guarded_step(step, carry, xb, yb, wb, key, rows=None):
        params, opt_state, bad, sums = carry
        new_params, new_state, value, y_pred = step(params, opt_state, xb, yb, key, wb, rows)
        s = batch_sums(loss, ms, yb, y_pred, value, wb, rows, wms)
        if spec.stop_on_nan:
            # Once a batch loss or its update is non-finite (a finite loss can still give a NaN
            # step: eps=0 on a dead unit, a rate that overflows) the rest of the epoch leaves the
            # weights alone: fit returns the last finite params (TerminateOnNaN).
            now_bad = bad | ~jnp.isfinite(value) | ~all_finite(new_params)
            keep = lambda old, new: jax.tree.map(lambda o, n_: jnp.where(now_bad, o, n_), old, new)
            new_params, new_state = keep(params, new_params), keep(opt_state, new_state)
            s = jax.tree.map(lambda v: jnp.where(bad, jnp.zeros_like(v), v), s)
            bad = now_bad
        return (new_params, new_state, bad, add_sums(sums, s)), value

    def epoch(params, opt_state, x, y, w, perm, key):
        n = x.shape[0]
        nb, rem = divmod(n, B)
        # The last partial batch runs as one more iteration of the scan, padded to B with the
        # samples before it, which count for nothing (rows); else as a step of its own, which
        # is a second copy of the whole step to compile.
        padded = spec.pad_last and nb > 0 and rem > 0
        all_rows = jnp.ones((B,), bool) if padded else None
        one_params, one_state = (_one_model(params), _one_model(opt_state)) if models else (params, opt_state)

        def first_sums(p):
            y_pred = net.apply(p, x[:B])
            value = jnp.zeros((), jnp.result_type(float))
            return batch_sums(loss, ms, y[:B], y_pred, value, None if w is None else w[:B], all_rows, wms)

        n_models = jax.tree.leaves(params)[0].shape[0] if models else 0
        k_models: tuple[int, ...] = (n_models,) if models else ()
        stacked = lambda s: jax.ShapeDtypeStruct(k_models + s.shape, s.dtype, weak_type=s.weak_type)
        zero_sums = jax.tree.map(lambda s: jnp.zeros_like(stacked(s)), jax.eval_shape(first_sums, one_params))
        # the update on one vector of the leaves where that computes the same (fewer kernels to
        # compile), its state's params-shaped parts held as vectors through the epoch
        plan = flat_plan(spec.update, one_params, one_state) if spec.flat and spec.mesh is None else None
        step = step_fn(net, loss, spec.update if plan is None else plan.update, spec.grad)
        # (axis_size: a state without arrays, a stateless optimizer's, still maps over the models)
        over_models = lambda f: jax.vmap(f, axis_size=n_models) if models else f
        state = opt_state if plan is None else over_models(plan.collapse)(opt_state)
        carry = (params, state, jnp.zeros(k_models, bool), zero_sums)
        arrays = (x, y) if w is None else (x, y, w)

        def take(start, size, perm):
            if spec.shuffle:
                idx = jax.lax.dynamic_slice_in_dim(perm, start, size)
                batch = tuple(jnp.take(a, idx, axis=0) for a in arrays)
            else:
                batch = tuple(jax.lax.dynamic_slice_in_dim(a, start, size) for a in arrays)
            batch = batch if shard is None else shard(*batch)
            return (*batch, None)[:3]

        @per_model
        def body_step(carry, i, perm, key):
            k = None if key is None else jax.random.fold_in(key, i)
            if not padded:
                xb, yb, wb = take(i * B, B, perm)
                return guarded_step(step, carry, xb, yb, wb, k)
            # iteration nb: the last B samples, of which the first B - rem were in batch nb - 1
            xb, yb, wb = take(jnp.minimum(i * B, n - B), B, perm)
            rows = (i < nb) | (jnp.arange(B) >= B - rem)
            xb = jnp.where(row_mask(rows, xb.ndim), xb, jnp.zeros((), xb.dtype))
            return guarded_step(step, carry, xb, yb, wb, k, rows)

        @per_model
        def last_step(carry, i, perm, key):  # the last partial batch (i = nb), unpadded: a step of its own
            xb, yb, wb = take(i * B, rem, perm)
            return guarded_step(step, carry, xb, yb, wb, None if key is None else jax.random.fold_in(key, i))

        steps = nb + 1 if padded else nb
        if steps:
            body = lambda carry, i: body_step(carry, i, perm, key)
            carry, _ = jax.lax.scan(body, carry, jnp.arange(steps), unroll=min(spec.unroll, steps))
        if rem and not padded:
            carry, _ = last_step(carry, nb, perm, key)
        if plan is not None:
            carry = (carry[0], over_models(plan.expand)(carry[1]), *carry[2:])
        return carry

    return epoch


def donated() -> tuple[int, ...]:
    """The arguments a training program donates: params and optimizer state, ``(0, 1)``; none
    while ``jax_debug_nans`` or ``jax_debug_infs`` is on (set here, or by their context
    managers): JAX then re-runs a program whose output holds a NaN or inf on the same inputs, to
    name the operation, and a donated input is deleted by then ("Array has been deleted")."""
    return () if debugging_nonfinite() else (0, 1)


def compiled_epoch(spec: EpochSpec) -> Callable:
    """The jitted epoch for ``spec``, params and state donated (but under JAX's NaN/inf
    debugging: :func:`donated`); a second ``fit`` with an equal spec (the same structure: equal
    network, loss, metrics and optimizer ``update``) reuses it, and jit's own cache handles the
    shapes. ``spec.models``: vmapped over stacked models, the data shared."""
    return _compiled_epoch(spec, donated())


def models_epoch_fn(spec: EpochSpec) -> Callable:
    """:func:`epoch_fn` over K stacked models (``spec.models``): params, optimizer states,
    sample orders and dropout keys stacked, the data shared. The step is vmapped inside the
    scan, which is then traced once: the epoch vmapped whole had JAX batch the scan's body again
    from its jaxpr (a program of six optimizers' epochs on the digits job: traced in 0.22 s
    against 0.28 s, the same bits)."""
    return epoch_fn(spec, models=True)


@structural_cache(maxsize=32)
def _compiled_epoch(spec: EpochSpec, donate: tuple[int, ...]) -> Callable:
    if spec.models:
        return jax.jit(models_epoch_fn(spec), donate_argnums=donate)
    epoch = epoch_fn(spec)
    if spec.mesh is None:
        return jax.jit(epoch, donate_argnums=donate)
    return parallel.jit_replicated(epoch, spec.mesh, donate_argnums=donate)


def default_unroll(batch_size: int, n: int) -> int:
    # Small steps gain from overlapping two scan bodies, but only a long epoch repays the ~1.5x
    # compile time; large steps are matmul-bound and only compile longer (figures:
    # benchmarks/RESULTS.md, "What changed in the library" and "time to result").
    return 2 if batch_size <= 64 and n >= 256 * batch_size else 1


def _split_fold_in(key: Any, epoch: Any) -> tuple[Any, Any]:
    perm_key, drop_key = jax.random.split(jax.random.fold_in(key, epoch))
    return perm_key, drop_key


@jax.jit
def epoch_keys(key: Any, epoch: Any) -> tuple[Any, Any]:
    """fit's ``(permutation key, dropout key)`` of ``epoch``: ``split(fold_in(key, epoch))``, as
    one compiled call (eagerly, three); vmapped over keys or epochs (fit_many's models, a block
    of epochs), each key and epoch alone, whatever the key's kind (:func:`fnn._per_key.per_key`)."""
    return per_key(_split_fold_in, key, epoch)


def epoch_permutation(bits: np.ndarray, n: int) -> np.ndarray:
    """An epoch's sample order (:func:`fnn.data.permutation` of its permutation key, given as
    the key's raw bits on the host) as int32 indices, whatever ``jax_enable_x64`` says: ``(n,)``
    for one key's bits ``(d,)``, ``(K, n)`` for K keys' ``(K, d)``."""
    if bits.ndim > 1:
        return np.stack([epoch_permutation(b, n) for b in bits])
    return permutation_of_bits(bits, n).astype(np.int32)


def train_step(net: Any, loss: Any, opt: Any, grad: str = "manual") -> Callable:
    """A jitted ``step(params, opt_state, x, y, key=None) -> (params, opt_state, loss)``.

    ``params`` and ``opt_state`` are donated: do not reuse the arrays you pass in (pass the
    returned ones to the next call, and a copy of params you still want, as the example does).
    Differentiating through the step (meta-learning) works inside ``jax.jit``; ``jax.grad`` run
    eagerly hands the step arrays it reads again afterwards ("Array has been deleted"), as with
    any jitted function that donates.
    Arrays you gave to build the state are not affected: an optimizer state holds its own copy
    of every value it was built or set from (a learning rate given to the constructor,
    :func:`fnn.optimizers.set_learning_rate`, ``set_hyperparams``; vmapped over an array of
    values too) and no leaf of the params ``opt.init`` was given.

    ``key`` feeds Dropout (train mode); networks without Dropout ignore it.

    One optimizer step on one batch, the step :func:`fit` scans over: forward in train mode,
    ``loss(y, y_pred)``, the gradient (hand-written or ``jax.grad``), ``opt.update``, then
    ``params + updates``, on the batch as ``fit`` holds it (``x`` in the params' dtype, float
    targets in at least float32). The returned loss is the batch's, computed with the weights
    before the update. For your own training loop; :func:`fit` adds batching, shuffling, metrics,
    validation and callbacks.

    Args:
        net: The network (:func:`fnn.mlp`, :func:`fnn.serial`).
        loss: A loss name, an :class:`fnn.losses.Loss`, or with ``grad="autodiff"`` any
            callable ``(y_true, y_pred) -> scalar`` (one value per sample is refused, as in
            :func:`fit`: make such a function ``fnn.losses.custom(name, fn)``).
        opt: The optimizer, a GradientTransformation, or its name (:func:`fnn.optimizers.get`'s,
            with its defaults); ``opt_state`` is ``opt.init(params)`` (for a name,
            ``fnn.optimizers.get(name).init(params)``).
        grad: ``"manual"`` (the hand-written backward pass) or ``"autodiff"`` (``jax.grad``).

    Returns:
        ``step(params, opt_state, x, y, key=None) -> (params, opt_state, loss)``, jitted, its
        first two arguments donated (their buffers are reused: do not read them afterwards);
        ``x`` a batch of inputs ``(B, ...)``, ``y`` its targets, ``loss`` a 0-d array. The
        step is cached on structure (the network, loss and ``opt.update`` compared by value,
        and ``grad``): building it again from equal pieces returns the same compiled step, so
        nothing compiles twice.

    When the step is called it checks what the batch's shapes and dtypes say, while tracing
    (so for free, and inside your own jitted loop too): ``x`` must hold real numbers and at
    least one sample, samples first; the params must fit the network as :func:`fit` checks them
    (against what ``net.init`` builds: a wrong leaf or ``x`` named), and the data the network
    and the loss. The VALUES are not checked: that would make every step wait for the device.
    Sparse labels outside ``[0, C)`` or fractional, and NaN/inf in the data, train on a wrong or
    NaN loss, unseen; check the data once with :func:`fnn.evaluate` (or
    :func:`fnn.data.check_arrays` and :func:`fnn.losses.check_targets`), or train with
    :func:`fit`, which refuse them.

    Raises:
        TypeError: For a ``grad`` that is not a string, a ``loss`` that is neither a name nor
            callable, or a plain callable loss with ``grad="manual"`` (it carries no
            hand-written gradient); when the step is called, for a complex ``x``.
        ValueError: For an unknown ``grad`` or loss name. When the step is called (traced,
            before it compiles): for an ``x`` of 0 samples, params that do not fit the network
            (an ``x`` of rank 1 is one sample, checked as a batch of one), shape errors of the
            data, and a plain callable loss that returns one value per sample.

    Examples:
        >>> import fnn, jax, numpy as np
        >>> net = fnn.mlp([1])
        >>> params = net.init(jax.random.PRNGKey(0), (3,))
        >>> x = np.linspace(-1, 1, 24, dtype=np.float32).reshape(8, 3)
        >>> y = x.sum(axis=1, keepdims=True)
        >>> opt = fnn.optimizers.sgd(0.1)
        >>> step = fnn.train_step(net, "mse", opt)
        >>> p, s = jax.tree.map(jax.numpy.copy, params), opt.init(params)  # copies: they are donated
        >>> p, s, first = step(p, s, x, y)
        >>> p, s, second = step(p, s, x, y)
        >>> bool(second < first)
        True
    """
    check_grad(grad)
    check_net(net)
    return _compiled_step(for_programs(net), resolve_loss(loss), resolve_opt(opt).update, grad, donated())


@structural_cache(maxsize=32)
def _compiled_step(net: Any, loss: Any, update: Callable, grad: str, donate: tuple[int, ...]) -> Callable:
    # Keyed on structure as compiled_epoch is: a step built again from equal pieces (a network
    # built again, a new adam(lr) of the same family) is this very jitted function, so jit's own
    # cache answers and nothing is traced or compiled again.
    inner = step_fn(net, loss, update, grad)

    @functools.partial(jax.jit, donate_argnums=donate)
    def step(params, opt_state, x, y, key=None):
        check_required("y", y)
        check_batch(x)  # before the cast: a complex x is named, not cast with a warning
        x, y = moved_as_fit_moves(params, x, y)  # fit's data, in the params' dtype (bfloat16 x for bf16 params)
        params, opt_state, value, _ = inner(params, opt_state, x, y, key)
        return params, opt_state, value

    return natively(step, ("params", "opt_state", "x", "y", "key"))
