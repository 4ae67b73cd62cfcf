"""The regression losses (Keras's grouping): squared, absolute, percentage and logarithmic
errors, Huber, log-cosh and cosine similarity, each beside its hand-written gradient with respect
to ``y_pred``; the numerics are the kernels of ``_kernels.py``. See :mod:`fnn.losses` for the
rules they share.
"""

from __future__ import annotations

import jax

from fnn.losses._kernels import (
    cosine_similarity_terms,
    huber_terms,
    log_cosh_terms,
    mae_terms,
    mape_terms,
    mse_terms,
    msle_terms,
)
from fnn.losses._reduction import apply_kernel

Array = jax.Array
ArrayLike = jax.typing.ArrayLike


def mean_squared_error(y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None) -> Array:
    """``mean_i w_i mean_j (y_pred_ij - y_true_ij)^2``.

    Args:
        y_true: Targets, of the shape of ``y_pred`` (a trailing axis of size 1 may be missing
            on either side: ``(N,)`` pairs with ``(N, 1)``).
        y_pred: Predictions, ``(N, D)``, or ``(N,)`` for N samples of one output each.
        sample_weight: Optional weights ``w_i``: shape ``(N,)``, a scalar, or the per-sample
            shape. Default: 1 for every sample.

    Returns:
        The scalar loss, the weighted mean of the per-sample losses (Keras's
        ``"sum_over_batch_size"``).

    Raises:
        ValueError: If the shapes of ``y_true`` and ``y_pred`` (or ``sample_weight``) do not
            match.
        TypeError: For inputs that do not hold real numbers.

    Examples:
        >>> import fnn
        >>> float(fnn.losses.mean_squared_error([[0.0, 0.0]], [[1.0, 3.0]]))
        5.0
    """
    return apply_kernel(mse_terms, y_true, y_pred, sample_weight, {}, "value")


def mean_squared_error_grad(y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None) -> Array:
    """``2 w_i (y_pred - y_true) / (n D)``.

    The hand-written gradient of :func:`mean_squared_error` with respect to ``y_pred`` (``jax.grad``
    of the loss gives the same, at kinks too).

    Args:
        y_true: Targets, of the shape of ``y_pred`` (a trailing axis of size 1 may be missing
            on either side: ``(N,)`` pairs with ``(N, 1)``).
        y_pred: Predictions, ``(N, D)``, or ``(N,)`` for N samples of one output each.
        sample_weight: Optional weights ``w_i``: shape ``(N,)``, a scalar, or the per-sample
            shape. Default: 1 for every sample.

    Returns:
        ``d loss / d y_pred``, of the shape of ``y_pred``.

    Raises:
        ValueError: If the shapes of ``y_true`` and ``y_pred`` (or ``sample_weight``) do not
            match.
        TypeError: For inputs that do not hold real numbers.

    Examples:
        >>> import fnn
        >>> fnn.losses.mean_squared_error_grad([[0.0, 0.0]], [[1.0, 3.0]]).tolist()
        [[1.0, 3.0]]
    """
    return apply_kernel(mse_terms, y_true, y_pred, sample_weight, {}, "grad")


def mean_absolute_error(y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None) -> Array:
    """``mean_i w_i mean_j |y_pred_ij - y_true_ij|``.

    Args:
        y_true: Targets, of the shape of ``y_pred`` (a trailing axis of size 1 may be missing
            on either side: ``(N,)`` pairs with ``(N, 1)``).
        y_pred: Predictions, ``(N, D)``, or ``(N,)`` for N samples of one output each.
        sample_weight: Optional weights ``w_i``: shape ``(N,)``, a scalar, or the per-sample
            shape. Default: 1 for every sample.

    Returns:
        The scalar loss, the weighted mean of the per-sample losses (Keras's
        ``"sum_over_batch_size"``).

    Raises:
        ValueError: If the shapes of ``y_true`` and ``y_pred`` (or ``sample_weight``) do not
            match.
        TypeError: For inputs that do not hold real numbers.
    """
    return apply_kernel(mae_terms, y_true, y_pred, sample_weight, {}, "value")


def mean_absolute_error_grad(y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None) -> Array:
    """``w_i sign(y_pred - y_true) / (n D)`` (+1 at a tie).

    The hand-written gradient of :func:`mean_absolute_error` with respect to ``y_pred`` (``jax.grad``
    of the loss gives the same, at kinks too).

    Args:
        y_true: Targets, of the shape of ``y_pred`` (a trailing axis of size 1 may be missing
            on either side: ``(N,)`` pairs with ``(N, 1)``).
        y_pred: Predictions, ``(N, D)``, or ``(N,)`` for N samples of one output each.
        sample_weight: Optional weights ``w_i``: shape ``(N,)``, a scalar, or the per-sample
            shape. Default: 1 for every sample.

    Returns:
        ``d loss / d y_pred``, of the shape of ``y_pred``.

    Raises:
        ValueError: If the shapes of ``y_true`` and ``y_pred`` (or ``sample_weight``) do not
            match.
        TypeError: For inputs that do not hold real numbers.
    """
    return apply_kernel(mae_terms, y_true, y_pred, sample_weight, {}, "grad")


def mean_absolute_percentage_error(
    y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None
) -> Array:
    """``100 mean_i w_i mean_j |y_pred - y_true| / max(|y_true|, 1e-7)``.

    Args:
        y_true: Targets, of the shape of ``y_pred`` (a trailing axis of size 1 may be missing
            on either side: ``(N,)`` pairs with ``(N, 1)``).
        y_pred: Predictions, ``(N, D)``, or ``(N,)`` for N samples of one output each.
        sample_weight: Optional weights ``w_i``: shape ``(N,)``, a scalar, or the per-sample
            shape. Default: 1 for every sample.

    Returns:
        The scalar loss, the weighted mean of the per-sample losses (Keras's
        ``"sum_over_batch_size"``).

    Raises:
        ValueError: If the shapes of ``y_true`` and ``y_pred`` (or ``sample_weight``) do not
            match.
        TypeError: For inputs that do not hold real numbers.
    """
    return apply_kernel(mape_terms, y_true, y_pred, sample_weight, {}, "value")


def mean_absolute_percentage_error_grad(
    y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None
) -> Array:
    """``100 w_i sign(y_pred - y_true) / (max(|y_true|, 1e-7) n D)``.

    The hand-written gradient of :func:`mean_absolute_percentage_error` with respect to ``y_pred`` (``jax.grad``
    of the loss gives the same, at kinks too).

    Args:
        y_true: Targets, of the shape of ``y_pred`` (a trailing axis of size 1 may be missing
            on either side: ``(N,)`` pairs with ``(N, 1)``).
        y_pred: Predictions, ``(N, D)``, or ``(N,)`` for N samples of one output each.
        sample_weight: Optional weights ``w_i``: shape ``(N,)``, a scalar, or the per-sample
            shape. Default: 1 for every sample.

    Returns:
        ``d loss / d y_pred``, of the shape of ``y_pred``.

    Raises:
        ValueError: If the shapes of ``y_true`` and ``y_pred`` (or ``sample_weight``) do not
            match.
        TypeError: For inputs that do not hold real numbers.
    """
    return apply_kernel(mape_terms, y_true, y_pred, sample_weight, {}, "grad")


def mean_squared_logarithmic_error(
    y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None
) -> Array:
    """``mean_i w_i mean_j (log(1 + max(y_pred, 1e-7)) - log(1 + max(y_true, 1e-7)))^2``.

    Args:
        y_true: Targets, of the shape of ``y_pred`` (a trailing axis of size 1 may be missing
            on either side: ``(N,)`` pairs with ``(N, 1)``).
        y_pred: Predictions, ``(N, D)``, or ``(N,)`` for N samples of one output each.
        sample_weight: Optional weights ``w_i``: shape ``(N,)``, a scalar, or the per-sample
            shape. Default: 1 for every sample.

    Returns:
        The scalar loss, the weighted mean of the per-sample losses (Keras's
        ``"sum_over_batch_size"``).

    Raises:
        ValueError: If the shapes of ``y_true`` and ``y_pred`` (or ``sample_weight``) do not
            match.
        TypeError: For inputs that do not hold real numbers.
    """
    return apply_kernel(msle_terms, y_true, y_pred, sample_weight, {}, "value")


def mean_squared_logarithmic_error_grad(
    y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None
) -> Array:
    """``2 w_i r / ((1 + y_pred) n D)`` where ``y_pred >= 1e-7`` (0 below); r the log ratio.

    The hand-written gradient of :func:`mean_squared_logarithmic_error` with respect to ``y_pred`` (``jax.grad``
    of the loss gives the same, at kinks too).

    Args:
        y_true: Targets, of the shape of ``y_pred`` (a trailing axis of size 1 may be missing
            on either side: ``(N,)`` pairs with ``(N, 1)``).
        y_pred: Predictions, ``(N, D)``, or ``(N,)`` for N samples of one output each.
        sample_weight: Optional weights ``w_i``: shape ``(N,)``, a scalar, or the per-sample
            shape. Default: 1 for every sample.

    Returns:
        ``d loss / d y_pred``, of the shape of ``y_pred``.

    Raises:
        ValueError: If the shapes of ``y_true`` and ``y_pred`` (or ``sample_weight``) do not
            match.
        TypeError: For inputs that do not hold real numbers.
    """
    return apply_kernel(msle_terms, y_true, y_pred, sample_weight, {}, "grad")


def huber(y_true: ArrayLike, y_pred: ArrayLike, delta: float = 1.0, sample_weight: ArrayLike | None = None) -> Array:
    """Huber: quadratic ``e^2/2`` for ``|e| <= delta``, linear ``delta |e| - delta^2/2`` beyond.

    Args:
        y_true: Targets, of the shape of ``y_pred`` (a trailing axis of size 1 may be missing
            on either side: ``(N,)`` pairs with ``(N, 1)``).
        y_pred: Predictions, ``(N, D)``, or ``(N,)`` for N samples of one output each.
        delta: Where the quadratic part ends and the linear part begins (> 0).
        sample_weight: Optional weights ``w_i``: shape ``(N,)``, a scalar, or the per-sample
            shape. Default: 1 for every sample.

    Returns:
        The scalar loss, the weighted mean of the per-sample losses (Keras's
        ``"sum_over_batch_size"``).

    Raises:
        ValueError: If the shapes of ``y_true`` and ``y_pred`` (or ``sample_weight``) do not
            match.
        TypeError: For inputs that do not hold real numbers, or a ``delta`` that is not a number.
    """
    return apply_kernel(huber_terms, y_true, y_pred, sample_weight, {"delta": delta}, "value")


def huber_grad(
    y_true: ArrayLike, y_pred: ArrayLike, delta: float = 1.0, sample_weight: ArrayLike | None = None
) -> Array:
    """``w_i clip(y_pred - y_true, -delta, delta) / (n D)``.

    The hand-written gradient of :func:`huber` with respect to ``y_pred`` (``jax.grad``
    of the loss gives the same, at kinks too).

    Args:
        y_true: Targets, of the shape of ``y_pred`` (a trailing axis of size 1 may be missing
            on either side: ``(N,)`` pairs with ``(N, 1)``).
        y_pred: Predictions, ``(N, D)``, or ``(N,)`` for N samples of one output each.
        delta: Where the quadratic part ends and the linear part begins (> 0).
        sample_weight: Optional weights ``w_i``: shape ``(N,)``, a scalar, or the per-sample
            shape. Default: 1 for every sample.

    Returns:
        ``d loss / d y_pred``, of the shape of ``y_pred``.

    Raises:
        ValueError: If the shapes of ``y_true`` and ``y_pred`` (or ``sample_weight``) do not
            match.
        TypeError: For inputs that do not hold real numbers, or a ``delta`` that is not a number.
    """
    return apply_kernel(huber_terms, y_true, y_pred, sample_weight, {"delta": delta}, "grad")


def log_cosh(y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None) -> Array:
    """``mean_i w_i mean_j log cosh(y_pred - y_true)``, overflow-free.

    Args:
        y_true: Targets, of the shape of ``y_pred`` (a trailing axis of size 1 may be missing
            on either side: ``(N,)`` pairs with ``(N, 1)``).
        y_pred: Predictions, ``(N, D)``, or ``(N,)`` for N samples of one output each.
        sample_weight: Optional weights ``w_i``: shape ``(N,)``, a scalar, or the per-sample
            shape. Default: 1 for every sample.

    Returns:
        The scalar loss, the weighted mean of the per-sample losses (Keras's
        ``"sum_over_batch_size"``).

    Raises:
        ValueError: If the shapes of ``y_true`` and ``y_pred`` (or ``sample_weight``) do not
            match.
        TypeError: For inputs that do not hold real numbers.
    """
    return apply_kernel(log_cosh_terms, y_true, y_pred, sample_weight, {}, "value")


def log_cosh_grad(y_true: ArrayLike, y_pred: ArrayLike, sample_weight: ArrayLike | None = None) -> Array:
    """``w_i tanh(y_pred - y_true) / (n D)``.

    The hand-written gradient of :func:`log_cosh` with respect to ``y_pred`` (``jax.grad``
    of the loss gives the same, at kinks too).

    Args:
        y_true: Targets, of the shape of ``y_pred`` (a trailing axis of size 1 may be missing
            on either side: ``(N,)`` pairs with ``(N, 1)``).
        y_pred: Predictions, ``(N, D)``, or ``(N,)`` for N samples of one output each.
        sample_weight: Optional weights ``w_i``: shape ``(N,)``, a scalar, or the per-sample
            shape. Default: 1 for every sample.

    Returns:
        ``d loss / d y_pred``, of the shape of ``y_pred``.

    Raises:
        ValueError: If the shapes of ``y_true`` and ``y_pred`` (or ``sample_weight``) do not
            match.
        TypeError: For inputs that do not hold real numbers.
    """
    return apply_kernel(log_cosh_terms, y_true, y_pred, sample_weight, {}, "grad")


def cosine_similarity(
    y_true: ArrayLike, y_pred: ArrayLike, axis: int = -1, sample_weight: ArrayLike | None = None
) -> Array:
    """``-mean_i w_i cos(y_true_i, y_pred_i)`` (NEGATIVE cosine, as Keras; norms floored at 1e-7).

    Args:
        y_true: Targets (vectors along ``axis``), of the shape of ``y_pred``.
        y_pred: Predictions ``(N, C)``, the vectors along ``axis``.
        axis: The class (feature) axis of ``y_pred``.
        sample_weight: Optional weights ``w_i``: shape ``(N,)``, a scalar, or the per-sample
            shape. Default: 1 for every sample.

    Returns:
        The scalar loss, the weighted mean of the per-sample losses (Keras's
        ``"sum_over_batch_size"``).

    Raises:
        ValueError: If the shapes of ``y_true`` and ``y_pred`` (or ``sample_weight``) do not
            match.
        TypeError: For inputs that do not hold real numbers, or an option of the wrong type (e.g.
            a non-integer ``axis``).
    """
    return apply_kernel(cosine_similarity_terms, y_true, y_pred, sample_weight, {"axis": axis}, "value")


def cosine_similarity_grad(
    y_true: ArrayLike, y_pred: ArrayLike, axis: int = -1, sample_weight: ArrayLike | None = None
) -> Array:
    """``-w_i (t^ - cos p^) / (|p| n)`` with ``t^``, ``p^`` the unit vectors.

    The hand-written gradient of :func:`cosine_similarity` with respect to ``y_pred`` (``jax.grad``
    of the loss gives the same, at kinks too).

    Args:
        y_true: Targets (vectors along ``axis``), of the shape of ``y_pred``.
        y_pred: Predictions ``(N, C)``, the vectors along ``axis``.
        axis: The class (feature) axis of ``y_pred``.
        sample_weight: Optional weights ``w_i``: shape ``(N,)``, a scalar, or the per-sample
            shape. Default: 1 for every sample.

    Returns:
        ``d loss / d y_pred``, of the shape of ``y_pred``.

    Raises:
        ValueError: If the shapes of ``y_true`` and ``y_pred`` (or ``sample_weight``) do not
            match.
        TypeError: For inputs that do not hold real numbers, or an option of the wrong type (e.g.
            a non-integer ``axis``).
    """
    return apply_kernel(cosine_similarity_terms, y_true, y_pred, sample_weight, {"axis": axis}, "grad")
