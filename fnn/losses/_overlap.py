"""The overlap losses of segmentation (Keras's "image segmentation" losses): Dice and Tversky,
``1 - overlap / size`` of predictions in [0, 1] against 0/1 (or soft) targets, each kernel beside
its hand-written derivative with respect to ``y_pred`` and its public functions. See
:mod:`fnn.losses` for the rules they share.

Both reduce over ``axis``; Keras's default ``axis=None`` reduces over every axis, the batch's too,
so the loss is ONE ratio of the batch's sums, not a mean of per-sample values (a sample weight
scales it by the weights' mean, as Keras's reduction does; fit's padded last batch leaves the
padding out of the sums). An int or a tuple of ints names axes of each sample (``axis=-1``: one
ratio per row of an ``(N, D)`` output), and the per-sample values are then averaged and weighted
as every other loss's. The batch axis cannot be one of them (Keras would take it: use ``None``).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from fnn.losses._checks import check_option_range, norm_axis, pair
from fnn.losses._kernels import EPSILON
from fnn.losses._reduction import Terms, apply_kernel, row_mask, whole_batch

Array = jax.Array
ArrayLike = jax.typing.ArrayLike
Axis = int | tuple[int, ...] | None


def overlap_axes(axis: Any, ndim: int, loss: str) -> tuple[int, ...] | None:
    """``axis`` as sorted non-negative axes of each sample, or None for every axis (the batch's too)."""
    if axis is None:
        return None
    axes = tuple(axis) if isinstance(axis, (tuple, list)) else (axis,)
    out = sorted({norm_axis(a, ndim, loss) for a in axes})
    if len(out) != len(axes) or not out:
        raise ValueError(f"{loss}: axis must name distinct axes, got {axis!r}")
    if out[0] == 0:
        raise ValueError(
            f"{loss}: axis {axis!r} includes the batch axis 0 of y_pred of rank {ndim}; "
            "axis=None reduces over the whole batch, an axis of each sample over that sample"
        )
    return tuple(out)


def _overlap_inputs(y_true: Any, y_pred: Any, axis: Any, rows: Any, loss: str):
    """``(t, p, axes, sums)``: the samples outside ``rows`` zeroed (they add nothing to any sum),
    ``sums(x)`` the sum over ``axes`` with them kept as axes of 1."""
    t, p = pair(y_true, y_pred, loss)
    axes = overlap_axes(axis, p.ndim, loss)
    if rows is not None:
        keep = row_mask(jnp.asarray(rows), p.ndim)
        t, p = jnp.where(keep, t, 0), jnp.where(keep, p, 0)
    return t, p, axes, lambda x: jnp.sum(x, axis=axes, keepdims=True)


def _one_minus_ratio(num: Array, den: Array, dnum: Array, dden: Any, axes: tuple[int, ...] | None) -> Terms:
    """``l = 1 - num / den`` (sums over ``axes``, kept as axes of 1) and, with ``num`` and ``den``
    linear in ``p`` (elementwise derivatives ``dnum``, ``dden``), ``dl/dp = (num/den dden - dnum) / den``."""
    ratio = num / den
    per = 1 - ratio
    return Terms(per.reshape(()) if axes is None else jnp.squeeze(per, axes), (ratio * dden - dnum) / den, axes)


@whole_batch(lambda options: options["axis"] is None)
def dice_terms(y_true, y_pred, axis, rows=None) -> Terms:
    """``l = 1 - 2 sum(t p) / (sum t + sum p + eps)`` over ``axis``;
    ``dl/dp = (1 - l - 2 t) / (sum t + sum p + eps)``."""
    t, p, axes, s = _overlap_inputs(y_true, y_pred, axis, rows, "dice")
    return _one_minus_ratio(2 * s(t * p), s(t) + s(p) + EPSILON, 2 * t, 1.0, axes)


@whole_batch(lambda options: options["axis"] is None)
def tversky_terms(y_true, y_pred, alpha, beta, axis, rows=None) -> Terms:
    """``tp = sum(t p)``, ``fp = sum((1 - p) t)``, ``fn = sum(p (1 - t))`` over ``axis``;
    ``l = 1 - tp / (tp + alpha fp + beta fn + eps)``;
    ``dl/dp = ((1 - l) ((1 - alpha) t + beta (1 - t)) - t) / (tp + alpha fp + beta fn + eps)``."""
    for option, value in (("alpha", alpha), ("beta", beta)):
        check_option_range(value, option, "tversky")
    t, p, axes, s = _overlap_inputs(y_true, y_pred, axis, rows, "tversky")
    tp = s(t * p)
    den = tp + alpha * s((1 - p) * t) + beta * s(p * (1 - t)) + EPSILON
    return _one_minus_ratio(tp, den, t, (1 - alpha) * t + beta * (1 - t), axes)


def dice(y_true: ArrayLike, y_pred: ArrayLike, axis: Axis = None, sample_weight: ArrayLike | None = None) -> Array:
    """``1 - 2 sum(t p) / (sum t + sum p + 1e-7)``, the sums over ``axis``: the whole batch
    (Keras's default ``None``) or the axes of each sample, then the mean over the samples.

    Args:
        y_true: Targets (0/1 masks, or soft ones in [0, 1]), of the shape of ``y_pred`` (a
            trailing axis of size 1 may be missing on either side).
        y_pred: Predictions in [0, 1] (a sigmoid or softmax output), ``(N, D)`` or ``(N, ...)``.
        axis: None: one value for the whole batch, its sums over every axis (Keras's default);
            an int or a tuple of ints: the axes of each sample to sum over (``-1``: one value per
            row), never the batch axis 0.
        sample_weight: Optional weights: shape ``(N,)``, a scalar, or the per-sample shape
            (``axis=None``: they scale the one value by their mean, as Keras's reduction does).

    Returns:
        The scalar loss: the whole batch's value (``axis=None``), or the weighted mean of the
        per-sample values (Keras's ``"sum_over_batch_size"``).

    Raises:
        ValueError: If the shapes of ``y_true`` and ``y_pred`` (or ``sample_weight``) do not
            match; if ``axis`` is out of range, repeats an axis or names the batch axis.
        TypeError: For inputs that do not hold real numbers, or a non-integer ``axis``.

    Examples:
        >>> import fnn
        >>> t, p = [[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]], [[0.8, 0.1, 0.6], [0.3, 0.7, 0.9]]
        >>> round(float(fnn.losses.dice(t, p)), 6)  # 1 - 2 * 3.0 / (4 + 3.4 + 1e-7), as Keras gives
        0.189189
        >>> round(float(fnn.losses.dice(t, p, axis=-1)), 6)  # the mean of the rows' 0.2 and 0.179487
        0.189744
    """
    return apply_kernel(dice_terms, y_true, y_pred, sample_weight, {"axis": axis}, "value")


def dice_grad(y_true: ArrayLike, y_pred: ArrayLike, axis: Axis = None, sample_weight: ArrayLike | None = None) -> Array:
    """``(1 - l - 2 t) / (sum t + sum p + 1e-7)`` for each value ``l`` of :func:`dice` (its sums
    over ``axis``), times ``mean(w)`` (``axis=None``) or ``w_i / n`` (per-sample values).

    The hand-written gradient of :func:`dice` with respect to ``y_pred``
    (``jax.grad`` of the loss gives the same); it takes that function's arguments and raises
    its errors.

    Returns:
        ``d loss / d y_pred``, of the shape of ``y_pred``.
    """
    return apply_kernel(dice_terms, y_true, y_pred, sample_weight, {"axis": axis}, "grad")


def tversky(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    alpha: float = 0.5,
    beta: float = 0.5,
    axis: Axis = None,
    sample_weight: ArrayLike | None = None,
) -> Array:
    """Tversky (Salehi et al. 2017): ``1 - tp / (tp + alpha fp + beta fn + 1e-7)`` with
    ``tp = sum(t p)``, ``fp = sum((1 - p) t)``, ``fn = sum(p (1 - t))`` over ``axis``, as
    Keras's (whose ``fp`` counts missed targets and ``fn`` false alarms: ``alpha`` weighs the
    targets' misses, ``beta`` the predictions' excess). ``alpha = beta = 0.5`` is Dice but for
    the 1e-7 (added to the half-sum here).

    Args:
        y_true: Targets (0/1 masks, or soft ones in [0, 1]), of the shape of ``y_pred`` (a
            trailing axis of size 1 may be missing on either side).
        y_pred: Predictions in [0, 1] (a sigmoid or softmax output), ``(N, D)`` or ``(N, ...)``.
        alpha: The weight of ``fp``, >= 0.
        beta: The weight of ``fn``, >= 0.
        axis: None: one value for the whole batch, its sums over every axis (Keras's default);
            an int or a tuple of ints: the axes of each sample to sum over (``-1``: one value per
            row), never the batch axis 0.
        sample_weight: Optional weights: shape ``(N,)``, a scalar, or the per-sample shape
            (``axis=None``: they scale the one value by their mean, as Keras's reduction does).

    Returns:
        The scalar loss: the whole batch's value (``axis=None``), or the weighted mean of the
        per-sample values (Keras's ``"sum_over_batch_size"``).

    Raises:
        ValueError: If the shapes of ``y_true`` and ``y_pred`` (or ``sample_weight``) do not
            match; if ``axis`` is out of range, repeats an axis or names the batch axis; if
            ``alpha`` or ``beta`` is negative.
        TypeError: For inputs that do not hold real numbers, or an option of the wrong type.

    Examples:
        >>> import fnn
        >>> t, p = [[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]], [[0.8, 0.1, 0.6], [0.3, 0.7, 0.9]]
        >>> round(float(fnn.losses.tversky(t, p, alpha=0.7, beta=0.3)), 6)  # 1 - 3 / (3 + 0.7 + 0.12)
        0.21466
    """
    opts = {"alpha": alpha, "beta": beta, "axis": axis}
    return apply_kernel(tversky_terms, y_true, y_pred, sample_weight, opts, "value")


def tversky_grad(
    y_true: ArrayLike,
    y_pred: ArrayLike,
    alpha: float = 0.5,
    beta: float = 0.5,
    axis: Axis = None,
    sample_weight: ArrayLike | None = None,
) -> Array:
    """``((1 - l) ((1 - alpha) t + beta (1 - t)) - t) / (tp + alpha fp + beta fn + 1e-7)`` for
    each value ``l`` of :func:`tversky`, times ``mean(w)`` (``axis=None``) or ``w_i / n``.

    The hand-written gradient of :func:`tversky` with respect to ``y_pred``
    (``jax.grad`` of the loss gives the same); it takes that function's arguments and raises
    its errors.

    Returns:
        ``d loss / d y_pred``, of the shape of ``y_pred``.
    """
    opts = {"alpha": alpha, "beta": beta, "axis": axis}
    return apply_kernel(tversky_terms, y_true, y_pred, sample_weight, opts, "grad")


def check_axis_option(value: Any, loss: str) -> Axis:
    """``get``'s check of an overlap loss's ``axis``: None, an int, or a tuple of ints (a list
    becomes a tuple, so that the :class:`~fnn.losses.Loss` stays hashable)."""
    if value is None:
        return None
    axes = tuple(value) if isinstance(value, (tuple, list)) else value
    for a in axes if isinstance(axes, tuple) else (axes,):
        if isinstance(a, bool) or not isinstance(a, (int, np.integer)):
            raise TypeError(f"loss {loss!r}: axis must be None, an int or a tuple of ints, got {value!r}")
    return tuple(int(a) for a in axes) if isinstance(axes, tuple) else int(axes)
