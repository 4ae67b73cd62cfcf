"""The loss and metric sums an epoch adds up on the device, batch by batch, and the log entries
the host makes of them once per epoch (the training epoch's and the validation pass's alike)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp

from fnn._dtypes import promoted
from fnn.losses._reduction import row_mask
from fnn.metrics import Metric
from fnn.metrics._registry import is_builtin

Array = jax.Array
Sums = dict[str, tuple[Array, ...]]  # each metric's partial sums


def add_sums(a: Any, b: Any) -> Any:
    """``a + b`` leaf by leaf, in the dtype standard promotion gives (the epoch's running loss
    sum is float64 under x64 for float32 params: cast explicitly, as
    ``jax_numpy_dtype_promotion="strict"`` asks)."""

    def add(u: Any, v: Any) -> Any:
        t = promoted(u, v)
        return u.astype(t) + v.astype(t)

    return jax.tree.map(add, a, b)


def batch_sums(
    loss: Any,
    metrics: Sequence[Metric],
    y: Array,
    y_pred: Array,
    value: Array,
    w: Any = None,
    rows: Any = None,
    weighted: Sequence[Metric] = (),
) -> Sums:
    """Loss and metric partial sums of one batch: the loss weighted by the batch size (with
    sample weights, the batch loss is already Keras's ``sum(w * loss) / batch size``);
    ``metrics`` unweighted and ``weighted`` weighted by ``w`` (Keras 3's ``metrics`` and
    ``weighted_metrics``). ``rows``: the samples that count (bool ``(B,)``), or None for all:
    the others weigh 0 in every metric and the batch size is their count."""
    n: Any = y_pred.shape[0]
    mask = None
    if rows is not None:
        n = jnp.sum(rows).astype(value.dtype)
        mask = rows.astype(y_pred.dtype)
        if w is None:
            w = mask
        else:  # float32 weights of half-precision params: cast, as jax_numpy_dtype_promotion="strict" asks
            t = promoted(w, mask)
            w = w.astype(t) * row_mask(mask.astype(t), jnp.ndim(w))
        # padding rows weigh 0, and 0 * inf is NaN: a diverged batch's padding would turn the
        # metrics NaN where the unpadded step logs inf
        y_pred = jnp.where(row_mask(rows, y_pred.ndim), y_pred, jnp.zeros((), y_pred.dtype))
    sums: Sums = {"loss": (value * n, jnp.asarray(n, value.dtype))}
    for argument, ms, weights in (("metrics", metrics, mask), ("weighted_metrics", weighted, w)):
        for i, m in enumerate(ms):
            sums[m.name] = _metric_sums(m, f"{argument}[{i}]", y, y_pred, weights)
    return sums


def _metric_sums(m: Metric, where: str, y: Array, y_pred: Array, weights: Any) -> tuple[Array, ...]:
    """``m``'s partial sums of one batch. A metric of the user's first meets its data here, as
    the epoch is traced: its mistake (a tuple returned, a shape bug) names it, ``where`` (its
    place in the list it came in) and its name, chained from the error it raised."""
    try:
        return m.update(y, y_pred) if weights is None else m.update(y, y_pred, sample_weight=weights)
    except (TypeError, ValueError) as e:
        if is_builtin(m):  # checked against the shapes before anything was traced
            raise
        kind = TypeError if isinstance(e, TypeError) else ValueError
        said, own = str(e), f"metric {m.name!r} "  # Metric.update's own words name the metric already
        raise kind(
            f"{where} ({m.name}) {said[len(own) :]}" if said.startswith(own) else f"{where} ({m.name}): {said}"
        ) from e


def results(metrics: Sequence[Metric], sums: Sums, prefix: str = "") -> dict[str, Any]:
    """``{"loss": ..., <metric>: ...}`` from summed partials (jax arrays in, jax arrays out:
    usable under jit); ``metrics``: every metric summed, weighted or not."""
    total, count = sums["loss"]
    out = {prefix + "loss": total / count}
    for m in metrics:
        out[prefix + m.name] = m.result(*sums[m.name])
    return out


def logs(metrics: Sequence[Metric], sums: Sums, val: Sums | None) -> dict[str, float]:
    """An epoch's log entries as Python floats, from sums already on the host."""
    out = {k: float(v) for k, v in results(metrics, sums).items()}
    if val is not None:
        out.update({k: float(v) for k, v in results(metrics, val, "val_").items()})
    return out
