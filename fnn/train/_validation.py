"""The evaluation pass: a data set's summed loss and metrics in eval mode, in batches
(:func:`eval_sums`), and its compiled program (:func:`compiled_validation`).

The validation pass after each epoch is a program of its own, queued right behind the epoch: it
depends on the network, loss and metrics alone, so runs that differ only in the optimizer
(``fnn compare``'s) share it, where inside the epoch it was compiled again with every
optimizer's epoch (12 of the 44 kernels of compare's digits epoch, and XLA:CPU's compile time
goes by kernels).

Every evaluation (the validation pass, :func:`fnn.evaluate`, :func:`fnn.eval_step`) goes
through :func:`eval_sums`, so all three report the same numbers.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from fnn import parallel
from fnn._cache import structural_cache
from fnn.losses._custom import check_plain_loss_value
from fnn.metrics import Metric
from fnn.train._sums import Array, Sums, add_sums, batch_sums


def eval_sums(
    net: Any,
    loss: Any,
    metrics: Sequence[Metric],
    params: Any,
    x: Array,
    y: Array,
    batch_size: int,
    shard=None,
    w: Any = None,
    weighted: Sequence[Metric] = (),
) -> Sums:
    """Summed loss and metrics of ``net.apply(params, x)`` against ``y`` (eval mode), in batches
    of ``batch_size`` in order: the full ones in one scan, then the rest (Keras's batching).
    ``w``: per-sample weights, or None; they weigh the loss and the ``weighted`` metrics, not
    ``metrics``."""
    n = x.shape[0]
    nb, rem = divmod(n, batch_size)
    arrays = (x, y) if w is None else (x, y, w)

    def one(*batch):
        if shard is not None:
            batch = shard(*batch)
        xb, yb, wb = (*batch, None)[:3]
        y_pred = net.apply(params, xb)
        value = loss(yb, y_pred) if wb is None else loss(yb, y_pred, sample_weight=wb)
        check_plain_loss_value(loss, jnp.shape(value))
        return batch_sums(loss, metrics, yb, y_pred, jnp.asarray(value), wb, weighted=weighted)

    total = None
    if nb:

        def body(acc, i):
            batch = (jax.lax.dynamic_slice_in_dim(a, i * batch_size, batch_size) for a in arrays)
            return add_sums(acc, one(*batch)), None

        first = one(*(a[:batch_size] for a in arrays))
        total = jax.lax.scan(body, first, jnp.arange(1, nb))[0] if nb > 1 else first
    if rem:
        s = one(*(a[nb * batch_size :] for a in arrays))
        total = s if total is None else add_sums(total, s)
    assert total is not None  # n >= 1: checked before anything is traced
    return total


class ValidationSpec(NamedTuple):
    """Everything static about a compiled evaluation pass (fit's validation after each epoch,
    :func:`fnn.evaluate`); its cache key (compared by value). No optimizer, batch size or
    shuffling: fits that differ only in those share the program."""

    net: Any
    loss: Any
    metrics: tuple
    batch_size: int
    mesh: Any = None
    models: bool = False
    weighted_metrics: tuple = ()  # weighted by the sample weights; ``metrics`` are not (Keras 3)


def validation_fn(spec: ValidationSpec) -> Callable:
    """The pure evaluation pass ``(params, x_val, y_val, w_val) -> sums`` (:func:`eval_sums` in
    batches of ``spec.batch_size``); ``spec.models``: vmapped over stacked models, the data shared."""
    net, loss, ms, wms, B = spec.net, spec.loss, spec.metrics, spec.weighted_metrics, spec.batch_size
    shard = None if spec.mesh is None else functools.partial(parallel.shard_batch, mesh=spec.mesh)

    def validation(params, x_val, y_val, w_val):
        return eval_sums(net, loss, ms, params, x_val, y_val, B, shard, w_val, wms)

    return jax.vmap(validation, in_axes=(0, None, None, None)) if spec.models else validation


@structural_cache(maxsize=32)
def compiled_validation(spec: ValidationSpec) -> Callable:
    """:func:`validation_fn` jitted: fit runs it after each epoch on the epoch's params (not
    donated: the next epoch takes them), :func:`fnn.evaluate` once."""
    validation = validation_fn(spec)
    if spec.mesh is None or spec.models:
        return jax.jit(validation)
    return parallel.jit_replicated(validation, spec.mesh)
