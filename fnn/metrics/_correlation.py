"""Pearson's and Lin's concordance correlation with Keras 3's semantics (``PearsonCorrelation``,
``ConcordanceCorrelation``).

Keras's metrics are not the correlation of the whole data set: each batch gives one
correlation per sample (along ``axis``, the last by default: the correlation between a sample's
target vector and its prediction vector), and Keras's ``Mean`` averages those over the samples
of every batch. Streamed here the same way: a batch gives ``(sum w r, sum w)`` and the value is
their ratio, with Keras's reduction rules (a batch whose correlation is one number, as for
rank-1 inputs, counts once, whatever its size).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from fnn._validate import integer
from fnn.losses._checks import same_rank
from fnn.metrics._base import Entry, as_arrays, divide_no_nan, float_dtype, namespace

Array = jax.Array
Axis = int | tuple[int, ...]

EPSILON = 1e-7  # Keras's backend.epsilon()


def _inputs(y_true: Any, y_pred: Any) -> tuple[Array, Array]:
    t, p = as_arrays(y_true, y_pred)
    dtype = float_dtype(t, p)
    t, p = same_rank(t.astype(dtype), p.astype(dtype))
    if t.shape != p.shape:
        raise ValueError(f"y_true and y_pred must have the same shape; got y_true {t.shape} and y_pred {p.shape}")
    return t, p


def _pearson(t: Array, p: Array, axis: Axis) -> Array:
    """Keras's ``pearson_correlation``: the mean product of the standardised vectors along
    ``axis`` (population standard deviations; a constant vector gives NaN)."""
    t = t - jnp.mean(t, axis=axis, keepdims=True)
    p = p - jnp.mean(p, axis=axis, keepdims=True)
    t = t / jnp.std(t, axis=axis, keepdims=True)
    p = p / jnp.std(p, axis=axis, keepdims=True)
    return jnp.mean(t * p, axis=axis)


def _concordance(t: Array, p: Array, axis: Axis) -> Array:
    """Keras's ``concordance_correlation``: ``2 cov / (var_t + var_p + (mean_t - mean_p)^2 + 1e-7)``
    along ``axis`` (population moments), written elementwise as Keras writes it."""
    mt, mp = jnp.mean(t, axis=axis, keepdims=True), jnp.mean(p, axis=axis, keepdims=True)
    vt, vp = jnp.var(t - mt, axis=axis, keepdims=True), jnp.var(p - mp, axis=axis, keepdims=True)
    # Keras centres y_true on the mean of y_pred here; the mean of the products is cov all the same
    covariance = (t - mp) * (p - mp)
    return jnp.mean(2 * covariance / (vt + vp + jnp.square(mt - mp) + EPSILON), axis=axis)


def _mean_sums(values: Array, sample_weight: Any) -> tuple[Array, Array]:
    """``(sum w v, sum w)`` by the rules of Keras's ``Mean.update_state``: values are reduced to
    one per sample (to the weights' rank, by means), and a scalar counts once."""
    if sample_weight is None:
        if values.ndim > 1:
            values = jnp.mean(values, axis=tuple(range(1, values.ndim)))
        return jnp.sum(values), jnp.asarray(values.shape[0] if values.ndim else 1, values.dtype)
    v, w = same_rank(values, jnp.asarray(sample_weight, values.dtype))
    if v.ndim > w.ndim:
        v = jnp.mean(v, axis=tuple(range(w.ndim, v.ndim)))
    try:
        w = jnp.broadcast_to(w, v.shape)
    except ValueError:
        raise ValueError(
            f"sample_weight of shape {np.shape(sample_weight)} does not fit the correlations of shape "
            f"{values.shape} (one per sample along the other axes; a batch's single correlation takes no "
            "weights, as in Keras)"
        ) from None
    v = v * w
    if w.ndim > 1:
        w, v = jnp.mean(w, axis=tuple(range(1, w.ndim))), jnp.mean(v, axis=tuple(range(1, v.ndim)))
    return jnp.sum(v), jnp.sum(w)


def _sums(kernel: Callable[[Array, Array, Axis], Array]) -> Callable[..., tuple[Array, Array]]:
    def sums(y_true: Any, y_pred: Any, sample_weight: Any, axis: Axis) -> tuple[Array, Array]:
        t, p = _inputs(y_true, y_pred)
        for a in axis if isinstance(axis, tuple) else (axis,):
            if not -t.ndim <= a < t.ndim:
                raise ValueError(f"axis {a} is out of range for inputs of shape {t.shape} ({t.ndim} axes)")
        return _mean_sums(kernel(t, p, axis), sample_weight)

    sums.__name__ = sums.__qualname__ = f"{kernel.__name__}_sums"
    return sums


_pearson_sums = _sums(_pearson)
_concordance_sums = _sums(_concordance)


def _value(total: Any, count: Any, **_: Any) -> Any:
    """``total / count``, 0 for a count of 0 (Keras's ``Mean.result``)."""
    xp = namespace(total, count)
    return divide_no_nan(xp, xp.asarray(total), xp.asarray(count))


def _axis_options(options: dict[str, Any]) -> dict[str, Any]:
    axis = options["axis"]
    if isinstance(axis, (tuple, list)):
        return {"axis": tuple(integer("axis", a) for a in axis)}
    return {"axis": integer("axis", axis)}


def pearson_correlation(y_true: jax.typing.ArrayLike, y_pred: jax.typing.ArrayLike, axis: Axis = -1) -> Array:
    """Pearson's correlation along ``axis``, averaged over the samples (Keras's
    ``PearsonCorrelation``): ``r = mean(z(y_true) z(y_pred))`` along ``axis`` with
    ``z(y) = (y - mean(y)) / std(y)`` (population moments), then the mean of ``r`` over the
    other axes. Streamed (``get("pearson_correlation")``), the mean runs over every sample of the
    data set, which is not the correlation of the data set. A rank-1 batch (N,) gives one ``r``
    per batch, and the streamed value is the plain mean of the batches' values, as in Keras;
    (N, 1) against (N,) or (N, 1) is N vectors of one value each: NaN, as in Keras.

    Args:
        y_true: Targets, (N, D) (or any rank; (N,) against (N, 1) gains a trailing 1).
        y_pred: Predictions of the same shape.
        axis: The axis (or axes) the correlation runs along.

    Returns:
        The scalar mean correlation, in [-1, 1] (NaN where a vector is constant).

    Raises:
        ValueError: For shapes that differ beyond a trailing 1.
        TypeError: For an ``axis`` that is not an int or a tuple of ints.

    Examples:
        >>> import fnn
        >>> t, p = [[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]], [[2.0, 4.0, 6.0], [3.0, 2.0, 1.0]]
        >>> round(float(fnn.metrics.pearson_correlation(t, p)), 4)  # mean of 1 and -1
        0.0
    """
    return _value(*_pearson_sums(y_true, y_pred, None, **_axis_options({"axis": axis})))


def concordance_correlation(y_true: jax.typing.ArrayLike, y_pred: jax.typing.ArrayLike, axis: Axis = -1) -> Array:
    """Lin's concordance correlation along ``axis``, averaged over the samples (Keras's
    ``ConcordanceCorrelation``): ``2 cov(t, p) / (var(t) + var(p) + (mean(t) - mean(p))^2 + 1e-7)``
    along ``axis`` (population moments), then the mean over the other axes and, streamed, over
    every sample of the data set (the reduction of :func:`pearson_correlation`).

    Args:
        y_true: Targets, (N, D) (or any rank; (N,) against (N, 1) gains a trailing 1).
        y_pred: Predictions of the same shape.
        axis: The axis (or axes) the correlation runs along.

    Returns:
        The scalar mean concordance, in [-1, 1] (1: ``y_pred == y_true``).

    Raises:
        ValueError: For shapes that differ beyond a trailing 1.
        TypeError: For an ``axis`` that is not an int or a tuple of ints.

    Examples:
        >>> import fnn
        >>> round(float(fnn.metrics.concordance_correlation([[1.0, 2.0, 3.0]], [[1.0, 2.0, 4.0]])), 4)
        0.8571
    """
    return _value(*_concordance_sums(y_true, y_pred, None, **_axis_options({"axis": axis})))


ENTRIES = {
    "pearson_correlation": Entry(_pearson_sums, {"axis": -1}, finish=_value, check=_axis_options, direction="up"),
    "concordance_correlation": Entry(
        _concordance_sums, {"axis": -1}, finish=_value, check=_axis_options, direction="up"
    ),
}
