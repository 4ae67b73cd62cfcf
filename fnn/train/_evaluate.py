"""Evaluation: :func:`evaluate` over a data set and :func:`eval_step` on one batch, both through
the epoch's own validation pass (:func:`fnn.train._epoch.eval_sums`), so the three agree."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import jax
import numpy as np

from fnn import metrics as metrics_
from fnn._cache import structural_cache
from fnn._validate import integer
from fnn.data import check_arrays
from fnn.train._checks import check_against_network, check_sample_weight, resolve_loss
from fnn.train._epoch import eval_sums, results


@structural_cache(maxsize=32)
def _compiled(net: Any, loss: Any, metrics: tuple, batch_size: int) -> Callable:
    return jax.jit(lambda params, x, y, w: eval_sums(net, loss, metrics, params, x, y, batch_size, w=w))


def evaluate(
    net: Any,
    params: Any,
    loss: Any,
    x: Any,
    y: Any,
    metrics: Sequence[Any] = (),
    batch_size: int | None = None,
    sample_weight: Any = None,
) -> dict[str, float]:
    """Loss and metrics of ``net.apply(params, .)`` on ``(x, y)``, computed batch by batch.

    Batches follow Keras (``batch_size`` default 32, the last partial batch kept, order kept);
    the whole pass is one compiled program (the full batches scanned, then the remainder),
    cached on the network, loss, metrics and batch size. The loss is
    ``sum_b n_b loss_b / N`` (the exact mean over samples for a batch-mean loss) and each
    metric is ``result(sum, count)`` of its summed partials.

    ``sample_weight`` (``(N,)``, finite, >= 0) weighs the samples as in :func:`fit`.

    Returns:
      ``{"loss": float, <metric name>: float, ...}``.
    """
    batch_size = integer("batch_size", 32 if batch_size is None else batch_size, 1)
    x, y = check_arrays(x, y)
    loss = resolve_loss(loss)
    out_shape = check_against_network(net, params, loss, x, y, "x", "y")
    ms = metrics_.resolve(metrics, loss=loss, y_true_shape=y.shape, y_pred_shape=out_shape)
    metrics_.check_targets(ms, y, out_shape, name="y", loss=loss)
    w = None if sample_weight is None else check_sample_weight(sample_weight, x.shape[0])
    if w is not None:  # in the params' float dtype, as fit moves them
        w = w.astype(
            next((a.dtype for a in jax.tree.leaves(params) if np.issubdtype(a.dtype, np.floating)), np.float32)
        )
    sums = _compiled(net, loss, ms, min(batch_size, x.shape[0]))(params, x, y, w)
    return {k: float(v) for k, v in results(ms, jax.device_get(sums)).items()}


def eval_step(net: Any, loss: Any, metrics: Sequence[Any] = ()) -> Callable:
    """A jitted ``(params, x, y) -> {"loss": ..., metric: ...}`` on one batch (eval mode)."""
    loss = resolve_loss(loss)
    ms = metrics_.resolve(metrics, loss=loss)

    @jax.jit
    def step(params, x, y):
        return results(ms, eval_sums(net, loss, ms, params, x, y, x.shape[0]))

    return step
